//! The auth spec's per-mechanism rules: [`CredentialBuilder::build`] checks username,
//! password and source for each mechanism and fills in defaults; the helpers below check and
//! normalise mechanism properties (GSSAPI, MONGODB-AWS, MONGODB-OIDC).

use bson::{Bson, Document};

use super::{ADMIN_SOURCE, AuthMechanism, Credential, CredentialBuilder, EXTERNAL_SOURCE, Secret};
use crate::error::AuthError;
use crate::scram::ScramCache;

impl CredentialBuilder {
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
            max_scram_iterations,
        } = self;
        let max_scram_iterations =
            max_scram_iterations.unwrap_or(crate::scram::primitives::DEFAULT_MAX_ITERATIONS);

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
                max_scram_iterations,
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
            max_scram_iterations,
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
