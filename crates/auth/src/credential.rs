//! `Credential` (the spec's MongoCredential), `AuthMechanism`, and the validating builder that
//! applies the auth spec's per-mechanism rules and default sources.

use std::fmt;
use std::str::FromStr;

use bson::{Bson, Document};

use crate::error::AuthError;
use crate::scram::ScramCache;

/// The database external mechanisms authenticate against.
pub const EXTERNAL_SOURCE: &str = "$external";
/// The default source of SCRAM credentials (and of credentials with no mechanism).
pub const ADMIN_SOURCE: &str = "admin";

/// An authentication mechanism named by the auth spec.
///
/// Every mechanism the spec names parses; only SCRAM-SHA-1, SCRAM-SHA-256, PLAIN and
/// MONGODB-X509 can be run by this crate. The others validate as credentials but starting a
/// conversation with them gives [`AuthError::UnsupportedMechanism`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// `SCRAM-SHA-1` (RFC 5802 with MongoDB's MD5 password digest).
    ScramSha1,
    /// `SCRAM-SHA-256` (RFC 7677, password prepared with SASLprep).
    ScramSha256,
    /// `PLAIN` (RFC 4616, LDAP proxy authentication).
    Plain,
    /// `MONGODB-X509` (the TLS client certificate's subject is the user).
    MongoDbX509,
    /// `GSSAPI` (Kerberos). Recognised, not supported.
    Gssapi,
    /// `MONGODB-AWS`. Recognised, not supported.
    MongoDbAws,
    /// `MONGODB-OIDC`. Recognised, not supported.
    MongoDbOidc,
}

impl AuthMechanism {
    /// Every mechanism, in declaration order.
    pub const ALL: [AuthMechanism; 7] = [
        AuthMechanism::ScramSha1,
        AuthMechanism::ScramSha256,
        AuthMechanism::Plain,
        AuthMechanism::MongoDbX509,
        AuthMechanism::Gssapi,
        AuthMechanism::MongoDbAws,
        AuthMechanism::MongoDbOidc,
    ];

    /// The spec's name for the mechanism (`"SCRAM-SHA-256"`, `"MONGODB-X509"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::ScramSha1 => "SCRAM-SHA-1",
            AuthMechanism::ScramSha256 => "SCRAM-SHA-256",
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::MongoDbX509 => "MONGODB-X509",
            AuthMechanism::Gssapi => "GSSAPI",
            AuthMechanism::MongoDbAws => "MONGODB-AWS",
            AuthMechanism::MongoDbOidc => "MONGODB-OIDC",
        }
    }

    /// Whether this crate can run a conversation for the mechanism.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            AuthMechanism::ScramSha1
                | AuthMechanism::ScramSha256
                | AuthMechanism::Plain
                | AuthMechanism::MongoDbX509
        )
    }

    /// Whether the mechanism always authenticates against `$external`.
    pub fn requires_external_source(self) -> bool {
        matches!(
            self,
            AuthMechanism::MongoDbX509
                | AuthMechanism::Gssapi
                | AuthMechanism::MongoDbAws
                | AuthMechanism::MongoDbOidc
        )
    }

    /// The source the spec gives this mechanism when none was specified, given the database
    /// named in the connection string (if any).
    pub fn default_source(self, uri_database: Option<&str>) -> String {
        match self {
            AuthMechanism::ScramSha1 | AuthMechanism::ScramSha256 => {
                uri_database.unwrap_or(ADMIN_SOURCE).to_owned()
            }
            AuthMechanism::Plain => uri_database.unwrap_or(EXTERNAL_SOURCE).to_owned(),
            AuthMechanism::MongoDbX509
            | AuthMechanism::Gssapi
            | AuthMechanism::MongoDbAws
            | AuthMechanism::MongoDbOidc => EXTERNAL_SOURCE.to_owned(),
        }
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMechanism {
    type Err = AuthError;

    /// Parses the spec's mechanism names, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthMechanism::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| AuthError::UnknownMechanism(s.to_owned()))
    }
}

/// A password held in memory; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The spec's MongoCredential: who to authenticate as, against which source, with which
/// mechanism.
///
/// Build one with [`Credential::builder`], which applies the spec's validation rules and
/// default sources. `Debug` and `Display` never print the password (nor secret mechanism
/// properties such as `AWS_SESSION_TOKEN`).
///
/// Each credential carries a [`ScramCache`] shared by its clones, so that every connection of a
/// client (which clones the client's credential) derives the SCRAM salted password only once.
#[derive(Clone)]
pub struct Credential {
    username: Option<String>,
    source: String,
    password: Option<Secret>,
    mechanism: Option<AuthMechanism>,
    mechanism_properties: Option<Document>,
    cache: ScramCache,
}

impl Credential {
    /// Starts building a credential.
    pub fn builder() -> CredentialBuilder {
        CredentialBuilder::default()
    }

    /// The username, as given (never SASLprep'ed).
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The database the authentication commands are sent to.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The password. Handle with care: never log it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|s| s.0.as_str())
    }

    /// The mechanism the user asked for; `None` means "negotiate" (see
    /// [`crate::negotiate::select_mechanism`]).
    pub fn mechanism(&self) -> Option<AuthMechanism> {
        self.mechanism
    }

    /// Mechanism properties, with upper-cased names and defaults filled in (e.g. GSSAPI's
    /// `SERVICE_NAME: "mongodb"`). `None` when the mechanism has none.
    pub fn mechanism_properties(&self) -> Option<&Document> {
        self.mechanism_properties.as_ref()
    }

    /// The SCRAM salted-password cache shared by this credential and its clones.
    pub fn scram_cache(&self) -> &ScramCache {
        &self.cache
    }

    /// Returns this credential using `cache` instead of its own (e.g. one cache for a whole
    /// client, or for a test server).
    #[must_use]
    pub fn with_scram_cache(mut self, cache: ScramCache) -> Self {
        self.cache = cache;
        self
    }

    /// Whether `self` and `other` name the same login: the same source and the same user.
    pub fn same_identity(&self, other: &Credential) -> bool {
        self.source == other.source && self.username == other.username
    }
}

impl PartialEq for Credential {
    /// Compares every field except the cache.
    fn eq(&self, other: &Self) -> bool {
        self.username == other.username
            && self.source == other.source
            && self.password == other.password
            && self.mechanism == other.mechanism
            && self.mechanism_properties == other.mechanism_properties
    }
}

/// Mechanism properties whose values are secret and must not be printed.
const SECRET_PROPERTIES: &[&str] = &["AWS_SESSION_TOKEN"];

struct RedactedProperties<'a>(&'a Document);

impl fmt::Debug for RedactedProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in self.0 {
            if SECRET_PROPERTIES.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                map.entry(k, &format_args!("<redacted>"));
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("source", &self.source)
            .field("password", &self.password)
            .field("mechanism", &self.mechanism)
            .field(
                "mechanism_properties",
                &self.mechanism_properties.as_ref().map(RedactedProperties),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Credential {
    /// `user@source (MECHANISM)`; the password is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.username {
            Some(u) => write!(f, "{u}@{}", self.source)?,
            None => write!(f, "<no user>@{}", self.source)?,
        }
        match self.mechanism {
            Some(m) => write!(f, " ({m})"),
            None => f.write_str(" (negotiated)"),
        }
    }
}

/// Builds a [`Credential`], checking it against the auth spec's rules in [`build`].
///
/// [`build`]: CredentialBuilder::build
#[derive(Default, Clone)]
#[must_use]
pub struct CredentialBuilder {
    username: Option<String>,
    password: Option<String>,
    source: Option<String>,
    uri_database: Option<String>,
    mechanism: Option<AuthMechanism>,
    mechanism_properties: Option<Document>,
}

impl fmt::Debug for CredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBuilder")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("uri_database", &self.uri_database)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl CredentialBuilder {
    /// Sets the username (used as given; never normalised).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets or clears the username.
    pub fn username_opt(mut self, username: Option<String>) -> Self {
        self.username = username;
        self
    }

    /// Sets the password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets or clears the password.
    pub fn password_opt(mut self, password: Option<String>) -> Self {
        self.password = password;
        self
    }

    /// Sets the explicit source (`authSource`). An empty string is an error at build time.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets or clears the explicit source.
    pub fn source_opt(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }

    /// The database named in the connection string's path, used as the default source by
    /// SCRAM, PLAIN and the default mechanism.
    pub fn uri_database(mut self, database: Option<String>) -> Self {
        self.uri_database = database;
        self
    }

    /// Sets the mechanism (`None`: negotiate SCRAM from the handshake).
    pub fn mechanism(mut self, mechanism: Option<AuthMechanism>) -> Self {
        self.mechanism = mechanism;
        self
    }

    /// Sets the mechanism properties (names are case-insensitive).
    pub fn mechanism_properties(mut self, properties: Option<Document>) -> Self {
        self.mechanism_properties = properties;
        self
    }

    /// Validates the credential against the auth spec and fills in defaults (source,
    /// GSSAPI's `SERVICE_NAME`).
    ///
    /// Rules, per mechanism:
    /// - *none given* (negotiated SCRAM): non-empty username; source defaults to the URI
    ///   database or `admin`; no properties. The password may be absent here (it is then
    ///   missing when authenticating).
    /// - SCRAM-SHA-1 / SCRAM-SHA-256: non-empty username, a password; source defaults to the
    ///   URI database or `admin`; no properties.
    /// - PLAIN: non-empty username, a password; source defaults to the URI database or
    ///   `$external`; no properties.
    /// - MONGODB-X509: optional username, no password, source `$external`, no properties.
    /// - GSSAPI: non-empty username, optional password, source `$external`; properties
    ///   `SERVICE_NAME` (default `mongodb`), `CANONICALIZE_HOST_NAME` (`none`, `forward`,
    ///   `forwardAndReverse`, `true`, `false`), `SERVICE_REALM`, `SERVICE_HOST`.
    /// - MONGODB-AWS: source `$external`; no username, password or `AWS_SESSION_TOKEN` (the
    ///   spec requires credentials to come from the environment, not from options).
    /// - MONGODB-OIDC: no password, source `$external`; `ENVIRONMENT` required, one of `test`,
    ///   `azure`, `gcp`, `k8s`; `TOKEN_RESOURCE` required for (and only for) `azure` and `gcp`;
    ///   a username only with `azure`.
    pub fn build(self) -> Result<Credential, AuthError> {
        let CredentialBuilder {
            username,
            password,
            source,
            uri_database,
            mechanism,
            mechanism_properties,
        } = self;

        if source.as_deref() == Some("") {
            return Err(AuthError::EmptySource);
        }
        let properties = normalize_properties(mechanism_properties);
        let uri_db = uri_database.as_deref().filter(|d| !d.is_empty());

        let Some(mech) = mechanism else {
            // Default mechanism: SCRAM negotiated from the handshake.
            if username.as_deref().is_none_or(str::is_empty) {
                return Err(AuthError::MissingUsername { mechanism: None });
            }
            if properties.is_some() {
                return Err(AuthError::MechanismPropertiesNotAllowed { mechanism: None });
            }
            let source = source.unwrap_or_else(|| uri_db.unwrap_or(ADMIN_SOURCE).to_owned());
            return Ok(Credential {
                username,
                source,
                password: password.map(Secret),
                mechanism: None,
                mechanism_properties: None,
                cache: ScramCache::new(),
            });
        };

        if mech.requires_external_source() {
            if let Some(s) = &source {
                if s != EXTERNAL_SOURCE {
                    return Err(AuthError::InvalidSource {
                        mechanism: mech,
                        source_db: s.clone(),
                    });
                }
            }
        }
        let source = source.unwrap_or_else(|| mech.default_source(uri_db));
        let non_empty_user = username.as_deref().is_some_and(|u| !u.is_empty());

        let properties = match mech {
            AuthMechanism::ScramSha1 | AuthMechanism::ScramSha256 | AuthMechanism::Plain => {
                if !non_empty_user {
                    return Err(AuthError::MissingUsername {
                        mechanism: Some(mech),
                    });
                }
                if password.is_none() {
                    return Err(AuthError::MissingPassword { mechanism: mech });
                }
                no_properties(mech, properties)?
            }
            AuthMechanism::MongoDbX509 => {
                if password.is_some() {
                    return Err(AuthError::PasswordNotAllowed { mechanism: mech });
                }
                if username.as_deref() == Some("") {
                    return Err(AuthError::MissingUsername {
                        mechanism: Some(mech),
                    });
                }
                no_properties(mech, properties)?
            }
            AuthMechanism::Gssapi => {
                if !non_empty_user {
                    return Err(AuthError::MissingUsername {
                        mechanism: Some(mech),
                    });
                }
                Some(gssapi_properties(properties)?)
            }
            AuthMechanism::MongoDbAws => {
                if username.is_some() {
                    return Err(AuthError::UsernameNotAllowed { mechanism: mech });
                }
                if password.is_some() {
                    return Err(AuthError::PasswordNotAllowed { mechanism: mech });
                }
                aws_properties(properties)?
            }
            AuthMechanism::MongoDbOidc => {
                if password.is_some() {
                    return Err(AuthError::PasswordNotAllowed { mechanism: mech });
                }
                Some(oidc_properties(properties, username.is_some())?)
            }
        };

        Ok(Credential {
            username,
            source,
            password: password.map(Secret),
            mechanism: Some(mech),
            mechanism_properties: properties,
            cache: ScramCache::new(),
        })
    }
}

/// Upper-cases property names (the spec makes them case-insensitive); an empty document counts
/// as no properties.
fn normalize_properties(props: Option<Document>) -> Option<Document> {
    let props = props?;
    if props.is_empty() {
        return None;
    }
    Some(
        props
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect(),
    )
}

fn no_properties(
    mech: AuthMechanism,
    props: Option<Document>,
) -> Result<Option<Document>, AuthError> {
    match props {
        None => Ok(None),
        Some(_) => Err(AuthError::MechanismPropertiesNotAllowed {
            mechanism: Some(mech),
        }),
    }
}

fn string_property<'a>(key: &str, value: &'a Bson) -> Result<&'a str, AuthError> {
    value
        .as_str()
        .ok_or_else(|| AuthError::InvalidMechanismProperty {
            property: key.to_owned(),
            reason: "expected a string".to_owned(),
        })
}

fn gssapi_properties(props: Option<Document>) -> Result<Document, AuthError> {
    let mut props = props.unwrap_or_default();
    for (key, value) in &props {
        match key.as_str() {
            "SERVICE_NAME" | "SERVICE_REALM" | "SERVICE_HOST" => {
                string_property(key, value)?;
            }
            "CANONICALIZE_HOST_NAME" => {
                let ok = match value {
                    Bson::Boolean(_) => true,
                    Bson::String(s) => {
                        matches!(
                            s.as_str(),
                            "none" | "forward" | "forwardAndReverse" | "true" | "false"
                        )
                    }
                    _ => false,
                };
                if !ok {
                    return Err(AuthError::InvalidMechanismProperty {
                        property: key.clone(),
                        reason: "expected none, forward, forwardAndReverse, true or false"
                            .to_owned(),
                    });
                }
            }
            other => {
                return Err(AuthError::UnknownMechanismProperty {
                    mechanism: AuthMechanism::Gssapi,
                    property: other.to_owned(),
                });
            }
        }
    }
    if !props.contains_key("SERVICE_NAME") {
        props.insert("SERVICE_NAME", "mongodb");
    }
    Ok(props)
}

fn aws_properties(props: Option<Document>) -> Result<Option<Document>, AuthError> {
    let Some(props) = props else { return Ok(None) };
    if let Some((key, _)) = props.iter().next() {
        if key == "AWS_SESSION_TOKEN" {
            return Err(AuthError::InvalidMechanismProperty {
                property: key.clone(),
                reason: "AWS credentials must come from the environment, not from options"
                    .to_owned(),
            });
        }
        return Err(AuthError::UnknownMechanismProperty {
            mechanism: AuthMechanism::MongoDbAws,
            property: key.clone(),
        });
    }
    Ok(None)
}

/// The built-in OIDC environments the spec defines.
pub const OIDC_ENVIRONMENTS: &[&str] = &["test", "azure", "gcp", "k8s"];

fn oidc_properties(props: Option<Document>, has_username: bool) -> Result<Document, AuthError> {
    let mech = AuthMechanism::MongoDbOidc;
    let props = props.unwrap_or_default();
    for (key, value) in &props {
        match key.as_str() {
            "ENVIRONMENT" | "TOKEN_RESOURCE" => {
                string_property(key, value)?;
            }
            other => {
                return Err(AuthError::UnknownMechanismProperty {
                    mechanism: mech,
                    property: other.to_owned(),
                });
            }
        }
    }
    let Some(env) = props.get("ENVIRONMENT").and_then(Bson::as_str) else {
        return Err(AuthError::MissingMechanismProperty {
            mechanism: mech,
            property: "ENVIRONMENT",
        });
    };
    if !OIDC_ENVIRONMENTS.contains(&env) {
        return Err(AuthError::InvalidMechanismProperty {
            property: "ENVIRONMENT".to_owned(),
            reason: format!("unsupported environment {env:?}"),
        });
    }
    let needs_resource = matches!(env, "azure" | "gcp");
    let has_resource = props.contains_key("TOKEN_RESOURCE");
    if needs_resource && !has_resource {
        return Err(AuthError::MissingMechanismProperty {
            mechanism: mech,
            property: "TOKEN_RESOURCE",
        });
    }
    if !needs_resource && has_resource {
        return Err(AuthError::InvalidMechanismProperty {
            property: "TOKEN_RESOURCE".to_owned(),
            reason: format!("not allowed with ENVIRONMENT {env:?}"),
        });
    }
    if has_username && env != "azure" {
        return Err(AuthError::UsernameNotAllowed { mechanism: mech });
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn b() -> CredentialBuilder {
        Credential::builder()
    }

    #[test]
    fn debug_and_display_never_show_password() {
        let cred = b()
            .username("alice")
            .password("hunter2-s3cr3t")
            .mechanism(Some(AuthMechanism::ScramSha256))
            .build()
            .unwrap();
        let debug = format!("{cred:?}");
        let alt = format!("{cred:#?}");
        let display = cred.to_string();
        for s in [&debug, &alt, &display] {
            assert!(!s.contains("hunter2"), "{s}");
        }
        assert!(debug.contains("alice") && debug.contains("<redacted>"));
        assert_eq!(display, "alice@admin (SCRAM-SHA-256)");
        let builder = b().username("u").password("hunter2-s3cr3t");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn debug_redacts_secret_properties() {
        // Built directly since the builder refuses AWS_SESSION_TOKEN.
        let mut cred = b().username("u").password("p").build().unwrap();
        cred.mechanism_properties = Some(doc! { "AWS_SESSION_TOKEN": "tok-SECRET" });
        assert!(!format!("{cred:?}").contains("tok-SECRET"));
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in AuthMechanism::ALL {
            assert_eq!(m.as_str().parse::<AuthMechanism>().unwrap(), m);
        }
        assert_eq!(
            "scram-sha-256".parse::<AuthMechanism>().unwrap(),
            AuthMechanism::ScramSha256
        );
        assert!(matches!(
            "MONGODB-CR2".parse::<AuthMechanism>(),
            Err(AuthError::UnknownMechanism(_))
        ));
    }

    #[test]
    fn default_sources() {
        let c = b().username("u").password("p").build().unwrap();
        assert_eq!(c.source(), "admin");
        let c = b()
            .username("u")
            .uri_database(Some("foo".into()))
            .build()
            .unwrap();
        assert_eq!(c.source(), "foo");
        assert_eq!(c.password(), None);
        let plain = |db: Option<&str>| {
            b().username("u")
                .password("p")
                .uri_database(db.map(str::to_owned))
                .mechanism(Some(AuthMechanism::Plain))
                .build()
                .unwrap()
        };
        assert_eq!(plain(None).source(), "$external");
        assert_eq!(plain(Some("foo")).source(), "foo");
        let x509 = b()
            .uri_database(Some("foo".into()))
            .mechanism(Some(AuthMechanism::MongoDbX509))
            .build()
            .unwrap();
        assert_eq!(x509.source(), "$external");
        assert_eq!(x509.username(), None);
        let scram = b()
            .username("u")
            .password("p")
            .uri_database(Some("foo".into()))
            .source("bar")
            .mechanism(Some(AuthMechanism::ScramSha1))
            .build()
            .unwrap();
        assert_eq!(scram.source(), "bar");
    }

    #[test]
    fn invalid_credentials_give_typed_errors() {
        assert!(matches!(
            b().username("u").source("").build(),
            Err(AuthError::EmptySource)
        ));
        assert!(matches!(
            b().username("").password("").build(),
            Err(AuthError::MissingUsername { mechanism: None })
        ));
        assert!(matches!(
            b().build(),
            Err(AuthError::MissingUsername { mechanism: None })
        ));
        for m in [
            AuthMechanism::ScramSha1,
            AuthMechanism::ScramSha256,
            AuthMechanism::Plain,
        ] {
            assert!(matches!(
                b().mechanism(Some(m)).build(),
                Err(AuthError::MissingUsername { mechanism: Some(x) }) if x == m
            ));
            assert!(matches!(
                b().username("u").mechanism(Some(m)).build(),
                Err(AuthError::MissingPassword { mechanism: x }) if x == m
            ));
            assert!(matches!(
                b().username("u")
                    .password("p")
                    .mechanism(Some(m))
                    .mechanism_properties(Some(doc! {"SERVICE_NAME": "x"}))
                    .build(),
                Err(AuthError::MechanismPropertiesNotAllowed { .. })
            ));
        }
        let x509 = || b().mechanism(Some(AuthMechanism::MongoDbX509));
        assert!(matches!(
            x509().username("u").password("p").build(),
            Err(AuthError::PasswordNotAllowed { .. })
        ));
        assert!(matches!(
            x509().username("u").source("bar").build(),
            Err(AuthError::InvalidSource { .. })
        ));
        assert!(x509().source("$external").build().is_ok());
    }

    #[test]
    fn gssapi_rules() {
        let g = || b().mechanism(Some(AuthMechanism::Gssapi));
        assert!(matches!(
            g().build(),
            Err(AuthError::MissingUsername { .. })
        ));
        let c = g().username("user@REALM").build().unwrap();
        assert_eq!(
            c.mechanism_properties(),
            Some(&doc! {"SERVICE_NAME": "mongodb"})
        );
        assert_eq!(c.source(), "$external");
        let c = g()
            .username("u")
            .password("p")
            .mechanism_properties(Some(
                doc! {"service_name": "other", "CANONICALIZE_HOST_NAME": "forwardAndReverse"},
            ))
            .build()
            .unwrap();
        assert_eq!(
            c.mechanism_properties()
                .unwrap()
                .get_str("SERVICE_NAME")
                .ok(),
            Some("other")
        );
        assert!(matches!(
            g().username("u")
                .mechanism_properties(Some(doc! {"CANONICALIZE_HOST_NAME": "invalid"}))
                .build(),
            Err(AuthError::InvalidMechanismProperty { .. })
        ));
        assert!(matches!(
            g().username("u")
                .mechanism_properties(Some(doc! {"NOPE": "x"}))
                .build(),
            Err(AuthError::UnknownMechanismProperty { .. })
        ));
        assert!(matches!(
            g().username("u").source("foo").build(),
            Err(AuthError::InvalidSource { .. })
        ));
    }

    #[test]
    fn aws_rules() {
        let a = || b().mechanism(Some(AuthMechanism::MongoDbAws));
        let c = a().build().unwrap();
        assert_eq!(c.source(), "$external");
        assert!(matches!(
            a().username("u").build(),
            Err(AuthError::UsernameNotAllowed { .. })
        ));
        assert!(matches!(
            a().username("u").password("p").build(),
            Err(AuthError::UsernameNotAllowed { .. })
        ));
        assert!(matches!(
            a().mechanism_properties(Some(doc! {"AWS_SESSION_TOKEN": "t"}))
                .build(),
            Err(AuthError::InvalidMechanismProperty { .. })
        ));
    }

    #[test]
    fn oidc_rules() {
        let o = |props: Document| {
            b().mechanism(Some(AuthMechanism::MongoDbOidc))
                .mechanism_properties(Some(props))
        };
        assert!(o(doc! {"ENVIRONMENT": "test"}).build().is_ok());
        assert!(matches!(
            b().mechanism(Some(AuthMechanism::MongoDbOidc)).build(),
            Err(AuthError::MissingMechanismProperty {
                property: "ENVIRONMENT",
                ..
            })
        ));
        assert!(matches!(
            o(doc! {"ENVIRONMENT": "invalid"}).build(),
            Err(AuthError::InvalidMechanismProperty { .. })
        ));
        assert!(matches!(
            o(doc! {"UnsupportedProperty": "x"}).build(),
            Err(AuthError::UnknownMechanismProperty { .. })
        ));
        assert!(matches!(
            o(doc! {"ENVIRONMENT": "test"}).username("p").build(),
            Err(AuthError::UsernameNotAllowed { .. })
        ));
        assert!(matches!(
            o(doc! {"ENVIRONMENT": "test"}).password("p").build(),
            Err(AuthError::PasswordNotAllowed { .. })
        ));
        assert!(matches!(
            o(doc! {"ENVIRONMENT": "azure"}).username("u").build(),
            Err(AuthError::MissingMechanismProperty {
                property: "TOKEN_RESOURCE",
                ..
            })
        ));
        let c = o(doc! {"ENVIRONMENT": "azure", "TOKEN_RESOURCE": "mongodb://x"})
            .username("u")
            .build()
            .unwrap();
        assert_eq!(c.username(), Some("u"));
        assert!(matches!(
            o(doc! {"ENVIRONMENT": "gcp", "TOKEN_RESOURCE": "foo"})
                .username("u")
                .build(),
            Err(AuthError::UsernameNotAllowed { .. })
        ));
        assert!(o(doc! {"ENVIRONMENT": "k8s"}).build().is_ok());
    }

    #[test]
    fn clones_share_the_cache_and_compare_equal() {
        let a = b().username("u").password("p").build().unwrap();
        let c = a.clone();
        assert!(a.scram_cache().ptr_eq(c.scram_cache()));
        assert_eq!(a, c);
        let other = b().username("u").password("q").build().unwrap();
        assert_ne!(a, other);
        assert!(a.same_identity(&other));
    }
}
