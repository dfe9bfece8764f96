//! The crate's error type and the command-error value used by the dispatcher.

use bson::{Bson, Document, doc};

/// Errors from starting or running a test server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding, accepting or another socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be built (bad certificate or key files).
    #[error("TLS configuration error: {0}")]
    Tls(String),
    /// Test certificates could not be generated.
    #[error("certificate generation failed: {0}")]
    CertGen(String),
    /// The options given to the server do not make sense (e.g. a replica set of zero members).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A member index passed to a replica-set handle is out of range.
    #[error("no member with index {0}")]
    NoSuchMember(usize),
}

/// A server-side command failure: becomes `{ok: 0, errmsg, code, codeName}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandError {
    pub(crate) code: i32,
    pub(crate) code_name: &'static str,
    pub(crate) errmsg: String,
    pub(crate) labels: Vec<String>,
    /// Further fields of the error (a duplicate key's `keyPattern` / `keyValue`, a
    /// validation failure's `errInfo`), in the reply or the write error.
    pub(crate) info: Option<Box<Document>>,
}

impl CommandError {
    pub(crate) fn new(code: i32, code_name: &'static str, errmsg: impl Into<String>) -> Self {
        Self {
            code,
            code_name,
            errmsg: errmsg.into(),
            labels: Vec::new(),
            info: None,
        }
    }

    /// This error with further fields (see `info`).
    pub(crate) fn with_info(mut self, info: Document) -> Self {
        self.info = Some(Box::new(info));
        self
    }

    pub(crate) fn bad_value(msg: impl Into<String>) -> Self {
        Self::new(codes::BAD_VALUE, "BadValue", msg)
    }

    pub(crate) fn type_mismatch(msg: impl Into<String>) -> Self {
        Self::new(codes::TYPE_MISMATCH, "TypeMismatch", msg)
    }

    pub(crate) fn failed_to_parse(msg: impl Into<String>) -> Self {
        Self::new(codes::FAILED_TO_PARSE, "FailedToParse", msg)
    }

    pub(crate) fn to_doc(&self) -> Document {
        // mongod names a code it has no name for `Location<code>`.
        let code_name = if self.code_name.is_empty() {
            format!("Location{}", self.code)
        } else {
            self.code_name.to_string()
        };
        let mut d = doc! {
            "ok": 0.0,
            "errmsg": self.errmsg.clone(),
            "code": self.code,
            "codeName": code_name,
        };
        if let Some(info) = &self.info {
            d.extend((**info).clone());
        }
        if !self.labels.is_empty() {
            d.insert(
                "errorLabels",
                self.labels
                    .iter()
                    .map(|l| Bson::String(l.clone()))
                    .collect::<Vec<_>>(),
            );
        }
        d
    }
}

pub(crate) type CmdResult<T> = Result<T, CommandError>;

/// Server error codes used by the testkit (the same numbers as mongod's).
pub mod codes {
    /// BadValue.
    pub const BAD_VALUE: i32 = 2;
    /// FailedToParse.
    pub const FAILED_TO_PARSE: i32 = 9;
    /// Unauthorized.
    pub const UNAUTHORIZED: i32 = 13;
    /// TypeMismatch.
    pub const TYPE_MISMATCH: i32 = 14;
    /// AuthenticationFailed.
    pub const AUTHENTICATION_FAILED: i32 = 18;
    /// IllegalOperation.
    pub const ILLEGAL_OPERATION: i32 = 20;
    /// NamespaceNotFound.
    pub const NAMESPACE_NOT_FOUND: i32 = 26;
    /// CursorNotFound.
    pub const CURSOR_NOT_FOUND: i32 = 43;
    /// NamespaceExists.
    pub const NAMESPACE_EXISTS: i32 = 48;
    /// CommandNotFound.
    pub const COMMAND_NOT_FOUND: i32 = 59;
    /// ImmutableField.
    pub const IMMUTABLE_FIELD: i32 = 66;
    /// InvalidOptions.
    pub const INVALID_OPTIONS: i32 = 72;
    /// DocumentValidationFailure.
    pub const DOCUMENT_VALIDATION_FAILURE: i32 = 121;
    /// CommandNotSupportedOnView.
    pub const COMMAND_NOT_SUPPORTED_ON_VIEW: i32 = 166;
    /// ViewDepthLimitExceeded.
    pub const VIEW_DEPTH_LIMIT_EXCEEDED: i32 = 149;
    /// DollarPrefixedFieldName.
    pub const DOLLAR_PREFIXED_FIELD_NAME: i32 = 52;
    /// NoSuchKey.
    pub const NO_SUCH_KEY: i32 = 4;
    /// ProtocolError (used for malformed SASL payloads).
    pub const PROTOCOL_ERROR: i32 = 17;
    /// NotWritablePrimary ("not primary").
    pub const NOT_WRITABLE_PRIMARY: i32 = 10107;
    /// DuplicateKey.
    pub const DUPLICATE_KEY: i32 = 11000;
    /// NotPrimaryNoSecondaryOk.
    pub const NOT_PRIMARY_NO_SECONDARY_OK: i32 = 13435;
    /// Unrecognized pipeline stage name.
    pub const UNRECOGNIZED_STAGE: i32 = 40324;
}

/// mongod's name of an error code (`codeName`), for the codes drivers and the spec tests use;
/// `""` for others.
pub(crate) fn code_name(code: i32) -> &'static str {
    match code {
        1 => "InternalError",
        2 => "BadValue",
        4 => "NoSuchKey",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        8 => "UnknownError",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        24 => "LockTimeout",
        26 => "NamespaceNotFound",
        43 => "CursorNotFound",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        51 => "ManualInterventionRequired",
        59 => "CommandNotFound",
        63 => "OBSOLETE_StaleShardVersion",
        64 => "WriteConcernTimeout",
        72 => "InvalidOptions",
        79 => "UnknownReplWriteConcern",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        95 => "NotSecondary",
        100 => "UnsatisfiableWriteConcern",
        112 => "WriteConflict",
        133 => "FailedToSatisfyReadPreference",
        134 => "ReadConcernMajorityNotAvailableYet",
        150 => "StaleEpoch",
        189 => "PrimarySteppedDown",
        202 => "NetworkInterfaceExceededTimeLimit",
        216 => "ElectionInProgress",
        225 => "TransactionTooOld",
        234 => "RetryChangeStream",
        237 => "CursorKilled",
        246 => "SnapshotUnavailable",
        251 => "NoSuchTransaction",
        262 => "ExceededTimeLimit",
        266 => "FailPointSetFailed",
        267 => "PreparedTransactionInProgress",
        322 => "APIVersionError",
        323 => "APIStrictError",
        324 => "APIDeprecationError",
        391 => "ReauthenticationRequired",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11601 => "Interrupted",
        11602 => "InterruptedDueToReplStateChange",
        13388 => "StaleConfig",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        _ => "",
    }
}

/// mongod's `RetriableError` category.
pub(crate) fn is_retriable(code: i32) -> bool {
    matches!(
        code,
        6 | 7
            | 89
            | 91
            | 134
            | 189
            | 262
            | 317
            | 358
            | 384
            | 402
            | 406
            | 407
            | 412
            | 453
            | 462
            | 9001
            | 10107
            | 11600
            | 11602
            | 13435
            | 13436
            | 50915
            | 91331
    )
}

/// mongod's `NotPrimaryError` category: replies carry the node's topologyVersion.
pub(crate) fn is_not_primary(code: i32) -> bool {
    matches!(code, 189 | 10107 | 11602 | 13435 | 13436)
}

/// mongod's `transient transaction error` rule (without the sharding-only codes).
pub(crate) fn is_transient_transaction_error(
    code: i32,
    has_wce: bool,
    commit_or_abort: bool,
) -> bool {
    if matches!(code, 24 | 112 | 249 | 267 | 343) {
        return true;
    }
    // Snapshot errors and NeedRetargettingError.
    let mut transient = matches!(code, 150 | 239 | 246 | 250 | 272 | 13388);
    if commit_or_abort {
        transient |= code == 251 && !has_wce;
    } else {
        transient |= is_retriable(code) || code == 251;
    }
    transient
}
