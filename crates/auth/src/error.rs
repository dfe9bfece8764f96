//! The crate's one error type, [`AuthError`], grouped by who is at fault.

use crate::credential::AuthMechanism;

/// Everything that can go wrong while validating a credential or running an authentication
/// conversation.
///
/// Variants fall into four groups:
/// - **invalid credential** (the application's configuration breaks a rule of the auth spec),
/// - **unsupported** (a mechanism this crate recognises but does not implement),
/// - **peer misbehaved** (the server sent something malformed, or failed to prove that it knows
///   the password),
/// - **server refused** (the server answered with an error, e.g. bad credentials).
///
/// Messages never contain a password or anything derived from one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    // ---- invalid credential -------------------------------------------------------------
    /// The mechanism name is not one the auth spec defines.
    #[error("unknown authentication mechanism {0:?}")]
    UnknownMechanism(String),
    /// The mechanism needs a (non-empty) username and none was given. `mechanism` is `None`
    /// when no mechanism was specified (the default SCRAM negotiation also needs a username).
    #[error("{} requires a non-empty username", mechanism_name(.mechanism))]
    MissingUsername {
        /// The mechanism that needs it (`None`: the default mechanism).
        mechanism: Option<AuthMechanism>,
    },
    /// A username was given to a mechanism (or mechanism environment) that must not have one.
    #[error("{mechanism} does not accept a username here")]
    UsernameNotAllowed {
        /// The mechanism that refused it.
        mechanism: AuthMechanism,
    },
    /// The mechanism needs a password and none was given.
    #[error("{mechanism} requires a password")]
    MissingPassword {
        /// The mechanism that needs it.
        mechanism: AuthMechanism,
    },
    /// A password was given to a mechanism that must not have one.
    #[error("{mechanism} does not accept a password")]
    PasswordNotAllowed {
        /// The mechanism that refused it.
        mechanism: AuthMechanism,
    },
    /// The authentication source was given but is empty.
    #[error("the authentication source must not be empty")]
    EmptySource,
    /// The mechanism requires a particular source (e.g. `$external`) and another was given.
    #[error("{mechanism} requires the authentication source $external, not {source_db:?}")]
    InvalidSource {
        /// The mechanism.
        mechanism: AuthMechanism,
        /// The source that was given.
        source_db: String,
    },
    /// Mechanism properties were given to a mechanism that takes none.
    #[error("{} does not take mechanism properties", mechanism_name(.mechanism))]
    MechanismPropertiesNotAllowed {
        /// The mechanism (`None`: the default mechanism).
        mechanism: Option<AuthMechanism>,
    },
    /// A mechanism property this mechanism does not know.
    #[error("{mechanism} does not support the mechanism property {property:?}")]
    UnknownMechanismProperty {
        /// The mechanism.
        mechanism: AuthMechanism,
        /// The property name as given.
        property: String,
    },
    /// A mechanism property has a value the spec does not allow.
    #[error("invalid value for mechanism property {property}: {reason}")]
    InvalidMechanismProperty {
        /// The (upper-cased) property name.
        property: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A mechanism property the mechanism needs is missing.
    #[error("{mechanism} requires the mechanism property {property}")]
    MissingMechanismProperty {
        /// The mechanism.
        mechanism: AuthMechanism,
        /// The missing property.
        property: &'static str,
    },
    /// The password contains characters SASLprep (RFC 4013) prohibits.
    #[error("the password is not valid under SASLprep")]
    InvalidPassword,
    /// The client nonce given to a conversation is empty or contains characters a SCRAM nonce
    /// cannot contain (`,` or non-printable characters).
    #[error("the client nonce is empty or not printable ASCII without commas")]
    InvalidClientNonce,

    // ---- unsupported ----------------------------------------------------------------------
    /// The mechanism is recognised but this crate cannot run it.
    #[error("authentication mechanism {0} is not supported")]
    UnsupportedMechanism(AuthMechanism),

    // ---- peer misbehaved ------------------------------------------------------------------
    /// A SCRAM server message lacks a required attribute.
    #[error("SCRAM server message is missing the {0:?} attribute")]
    MissingAttribute(char),
    /// A SCRAM server message is not well formed.
    #[error("malformed SCRAM server message: {0}")]
    MalformedServerMessage(&'static str),
    /// An attribute that must be base64 is not.
    #[error("SCRAM attribute {0:?} is not valid base64")]
    InvalidBase64(char),
    /// The server's nonce does not start with (and extend) the client's nonce.
    #[error("the server nonce does not extend the client nonce")]
    NonceMismatch,
    /// The server asked for fewer PBKDF2 iterations than the spec's minimum.
    #[error("SCRAM iteration count {iterations} is below the minimum of {minimum}")]
    IterationCountTooLow {
        /// The count the server sent.
        iterations: u32,
        /// The minimum the spec requires (4096).
        minimum: u32,
    },
    /// The server asked for more PBKDF2 iterations than the client allows (see
    /// [`crate::scram::primitives::DEFAULT_MAX_ITERATIONS`]).
    #[error("SCRAM iteration count {iterations} is above the maximum of {maximum}")]
    IterationCountTooHigh {
        /// The count the server sent.
        iterations: u32,
        /// The maximum the credential allows.
        maximum: u32,
    },
    /// The server's signature (`v=`) does not match: it does not know the password.
    #[error("the server signature is invalid: the server could not prove it knows the password")]
    ServerSignatureMismatch,
    /// The server ended the conversation without ever sending its signature.
    #[error("the server did not send its signature")]
    ServerSignatureMissing,
    /// The server said `done` before the exchange could be complete.
    #[error("the server ended the conversation early ({0})")]
    UnexpectedDone(&'static str),
    /// The server kept the conversation going after it should have ended.
    #[error("the server did not end the conversation when expected")]
    ConversationNotDone,
    /// The server reply document lacks a field or has it with the wrong type.
    #[error("malformed authentication reply: {0}")]
    MalformedReply(&'static str),
    /// The reply's `conversationId` differs from the one the conversation started with.
    #[error("the reply's conversationId does not match the conversation")]
    ConversationIdMismatch,
    /// A reply arrived for a conversation that is already finished or failed.
    #[error("the conversation is already finished")]
    ConversationFinished,

    // ---- server refused -------------------------------------------------------------------
    /// The SCRAM server-final message carried an error (`e=`).
    #[error("the server reported a SCRAM error: {0}")]
    ServerError(String),
    /// The server answered the command with `ok: 0`.
    #[error("authentication failed: {message} (code {code})")]
    CommandFailed {
        /// The server's error code (0 when absent).
        code: i32,
        /// The server's `codeName`, when present.
        code_name: Option<String>,
        /// The server's `errmsg`.
        message: String,
    },
}

fn mechanism_name(mechanism: &Option<AuthMechanism>) -> &'static str {
    match mechanism {
        Some(m) => m.as_str(),
        None => "the default authentication mechanism",
    }
}
