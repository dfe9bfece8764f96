//! [`AuthMechanism`]: the mechanisms the auth spec names, their spellings, which ones this
//! crate can run, and the source each defaults to.

use std::fmt;
use std::str::FromStr;

use super::{ADMIN_SOURCE, EXTERNAL_SOURCE};
use crate::error::AuthError;

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
