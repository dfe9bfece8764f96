//! `Credential` (the spec's MongoCredential), `AuthMechanism`, and the validating builder that
//! applies the auth spec's per-mechanism rules and default sources.

// The files (not in the public docs): this one holds `Credential` (and how it is printed
// without its secrets); `mechanism` the `AuthMechanism` names and their default sources;
// `builder` the `CredentialBuilder` setters; `rules` `CredentialBuilder::build` with the
// per-mechanism validation rules and mechanism-property checks; `tests` the unit tests.

mod builder;
mod mechanism;
mod rules;

use std::fmt;

use bson::Document;

use crate::scram::ScramCache;

pub use builder::CredentialBuilder;
pub use mechanism::AuthMechanism;
pub use rules::OIDC_ENVIRONMENTS;

/// The database external mechanisms authenticate against.
pub const EXTERNAL_SOURCE: &str = "$external";
/// The default source of SCRAM credentials (and of credentials with no mechanism).
pub const ADMIN_SOURCE: &str = "admin";

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
    max_scram_iterations: u32,
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

    /// The most PBKDF2 iterations a server may ask of a SCRAM conversation with this
    /// credential.
    pub fn max_scram_iterations(&self) -> u32 {
        self.max_scram_iterations
    }

    /// The credential's SCRAM salted-password cache (shared by its clones).
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
            && self.max_scram_iterations == other.max_scram_iterations
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
            .field("max_scram_iterations", &self.max_scram_iterations)
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

#[cfg(test)]
mod tests;
