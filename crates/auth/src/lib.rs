//! MongoDB authentication as sans-I/O conversations: credentials, mechanism negotiation,
//! SCRAM-SHA-1 and SCRAM-SHA-256, PLAIN, MONGODB-X509, speculative authentication and the
//! per-connection credential set.
//!
//! Nothing here does I/O, reads the clock or (outside [`scram::generate_nonce`]) draws random
//! numbers: conversations produce command documents and consume reply documents; the caller
//! sends them on the credential's source database.
//!
//! - [`Credential`] / [`CredentialBuilder`]: the spec's MongoCredential, validated per
//!   mechanism; `Debug`/`Display` never show secrets.
//! - [`negotiate`]: the hello `saslSupportedMechs` request and the default mechanism rule.
//! - [`Authenticator`]: one conversation (SCRAM, PLAIN, X.509), normal or speculative.
//! - [`scram`]: the SCRAM layers, including [`scram::primitives`] for server implementations
//!   and the salted-password [`ScramCache`].
//! - [`AuthState`]: which logins a connection holds and the [`AuthPlan`] to update it.

mod authenticator;
pub mod credential;
pub mod credential_set;
mod error;
pub mod negotiate;
pub mod plain;
mod sasl;
pub mod scram;
pub mod x509;

pub use authenticator::Authenticator;
pub use credential::{AuthMechanism, Credential, CredentialBuilder};
pub use credential_set::{AuthPlan, AuthState, CredentialSet, logout_command};
pub use error::AuthError;
pub use sasl::Step;
pub use scram::{ScramCache, ScramConversation, generate_nonce};
