//! [`CredentialBuilder`]: the fields a credential is built from and their setters (`Debug`
//! hides the password); [`build`](CredentialBuilder::build) and its rules are in `rules`.

use std::fmt;

use bson::Document;

use super::AuthMechanism;
#[cfg(doc)]
use super::Credential;

/// Builds a [`Credential`], checking it against the auth spec's rules in [`build`].
///
/// [`build`]: CredentialBuilder::build
#[derive(Default, Clone)]
#[must_use]
pub struct CredentialBuilder {
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) source: Option<String>,
    pub(super) uri_database: Option<String>,
    pub(super) mechanism: Option<AuthMechanism>,
    pub(super) mechanism_properties: Option<Document>,
    pub(super) max_scram_iterations: Option<u32>,
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

    /// The most PBKDF2 iterations a server may ask of a SCRAM conversation with this
    /// credential (default [`DEFAULT_MAX_ITERATIONS`](crate::scram::primitives::DEFAULT_MAX_ITERATIONS)):
    /// a server asking for more fails authentication with
    /// [`AuthError::IterationCountTooHigh`](crate::AuthError::IterationCountTooHigh).
    pub fn max_scram_iterations(mut self, max: u32) -> Self {
        self.max_scram_iterations = Some(max);
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
}
