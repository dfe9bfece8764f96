//! The facade's one error type: [`Error`], with a [`kind`](Error::kind), server error labels
//! and codes, and the predicates SDAM and retries need.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document};
use mongo_events::{Generation, ServerAddress, ServiceId};

use crate::crud::{BulkWriteResult, ClientBulkWriteError};
use crate::operation::WriteCounts;
use crate::uri::UriError;

pub use mongo_auth::AuthError;
pub use mongo_pool::{PoolError, RETRYABLE_ERROR, SYSTEM_OVERLOADED_ERROR};
pub use mongo_wire::Error as WireError;

mod gridfs;
pub use gridfs::GridFsError;

/// The label a server (or the driver) puts on a write error that may be retried.
pub const RETRYABLE_WRITE_ERROR: &str = "RetryableWriteError";
/// The label of errors inside a transaction that may succeed if the transaction is retried.
pub const TRANSIENT_TRANSACTION_ERROR: &str = "TransientTransactionError";
/// The label the driver adds when a retry attempt performed no write.
pub const NO_WRITES_PERFORMED: &str = "NoWritesPerformed";

/// What replaces the message of a sensitive command's server error in events and logs.
pub(crate) const REDACTED: &str = "REDACTED";

/// Codes the retryable reads and writes specifications list as retryable.
pub const RETRYABLE_CODES: [i32; 12] = [
    11600, 11602, 10107, 13435, 13436, 189, 91, 7, 6, 89, 9001, 262,
];

/// ReadConcernMajorityNotAvailableYet: retryable for reads only (retryable reads spec, added
/// 2023-11-30), not for writes.
pub const READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET: i32 = 134;

/// A result with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error the client reports. Cheap to clone (`io` and wire errors are shared).
///
/// Inspect it with [`kind`](Error::kind), [`code`](Error::code),
/// [`labels`](Error::labels), and the predicates (`is_network_error`, `is_state_change`, ...).
#[derive(Clone)]
#[non_exhaustive]
pub struct Error {
    kind: Box<ErrorKind>,
    labels: BTreeSet<String>,
    address: Option<ServerAddress>,
    establishing: Option<(Establishing, Generation)>,
    /// What the driver adds about its own state when it failed (e.g. the load balancers spec's
    /// connection counts of a wait-queue timeout), shown after the error.
    detail: Option<std::sync::Arc<str>>,
    /// What a collection bulk write (or insert_many) had done when an error other than a
    /// write error ended it (CRUD spec: the partial result goes with the error).
    bulk_partial: Option<std::sync::Arc<crate::crud::BulkWriteResult>>,
}

/// Where opening a connection failed, which the pool's backpressure labels and SDAM's
/// handshake-error rules depend on: the load balancers spec ignores errors up to the end of
/// the `hello`, and only network errors up to then may signal an overloaded server; errors
/// during authentication go through SDAM error handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Establishing {
    /// The stream (TCP, TLS) or the `hello` exchange.
    Hello,
    /// Authentication, after a completed `hello` (which reported `service_id` behind a load
    /// balancer).
    Auth {
        /// The serviceId of the `hello` reply.
        service_id: Option<ServiceId>,
    },
}

/// What went wrong, grouped by cause.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // ----- network -----
    /// Reading or writing the socket failed (connection refused or reset, EOF, timeout).
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
    /// The peer sent bytes that are not a valid message (the connection is closed).
    #[error("protocol error: {0}")]
    Wire(Arc<mongo_wire::Error>),
    /// The peer answered something that is a valid message but not a valid reply.
    #[error("invalid reply from the server: {0}")]
    InvalidReply(String),

    // ----- the server said no -----
    /// A command failed (`ok: 0`).
    #[error("{0}")]
    Command(CommandError),
    /// A write failed: write errors and/or a write concern error.
    #[error("{0}")]
    Write(WriteFailure),
    /// A client bulk write did not do everything: write errors by model, write concern
    /// errors, the top-level error that stopped it, and the partial result.
    #[error("{0}")]
    ClientBulkWrite(ClientBulkWriteError),
    /// Authentication failed (a bad credential, a server that refused, a failed proof).
    #[error("authentication failed: {0}")]
    Auth(mongo_auth::AuthError),

    // ----- driver state, limits -----
    /// No suitable server was found within serverSelectionTimeoutMS.
    #[error("server selection timed out: {0}")]
    ServerSelection(String),
    /// Checking a connection out of a pool failed.
    #[error("{0}")]
    Pool(mongo_pool::PoolError),
    /// The client (or the pool / topology) was shut down.
    #[error("the client has been shut down")]
    Shutdown,
    /// The server speaks wire versions this driver does not.
    #[error("incompatible server: {0}")]
    IncompatibleServer(String),

    // ----- misuse / configuration -----
    /// A connection string or options are invalid.
    #[error("invalid options: {0}")]
    Uri(UriError),
    /// `mongodb+srv` discovery failed: a DNS lookup, or records the initial DNS seedlist
    /// discovery spec does not allow.
    #[error("mongodb+srv discovery failed: {0}")]
    Srv(crate::srv::SrvError),
    /// TLS could not be configured (a CA or certificate file that cannot be read or parsed).
    #[error("TLS configuration error: {0}")]
    TlsConfig(String),
    /// An argument is invalid (an empty collection name, a document too large, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A cursor was used after it was exhausted or killed, or a pinned connection was lost.
    #[error("{0}")]
    Usage(String),
    /// A document from the server does not decode as the Rust type asked for (a typed
    /// collection or cursor), or a value does not encode as BSON.
    #[error("{0}")]
    Deserialization(String),
    /// A GridFS file is missing or inconsistent, or an upload stream was misused (the
    /// GridFS specification's errors).
    #[error("{0}")]
    GridFs(GridFsError),

    // ----- client-side operation timeouts -----
    /// The operation's `timeoutMS` expired (client-side operation timeouts spec): what was
    /// under way, and the error that stage failed with, when there was one.
    #[error("{0}")]
    Timeout(TimeoutError),
}

/// A command error: the reply's code, codeName and errmsg.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CommandError {
    /// `code` (0 when the reply had none).
    pub code: i32,
    /// `codeName`.
    pub code_name: String,
    /// `errmsg`.
    pub message: String,
    /// The reply's topologyVersion, when present (SDAM compares it).
    pub topology_version: Option<Document>,
    /// The reply's `baseBackoffMS`, when positive: the base of the backoff before retrying an
    /// overload error, in place of the client's 100 ms (client backpressure spec).
    pub base_backoff: Option<Duration>,
    /// The server's whole reply (the CRUD spec's `errorResponse`: a duplicate key's
    /// `keyPattern` / `keyValue`, a validation failure's `errInfo`, …); empty when redacted.
    pub response: Document,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code_name.is_empty() {
            write!(f, "command failed ({}): {}", self.code, self.message)
        } else {
            write!(
                f,
                "command failed ({} {}): {}",
                self.code, self.code_name, self.message
            )
        }
    }
}

/// One entry of a reply's `writeErrors` (the CRUD specification's `WriteError`, and its
/// `BulkWriteError` with the index).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WriteError {
    /// Index of the failed write: in the caller's input for `insert_many` and `bulk_write`
    /// (adjusted across the commands they send), 0 for a single write.
    pub index: i64,
    /// The error code.
    pub code: i32,
    /// `codeName`, when the server sent one.
    pub code_name: Option<String>,
    /// The error message (`errmsg`).
    pub message: String,
    /// `errInfo`, as the server sent it (e.g. why a document failed validation).
    pub details: Option<Document>,
}

/// A reply's `writeConcernError`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WriteConcernError {
    /// The error code.
    pub code: i32,
    /// `codeName`.
    pub code_name: String,
    /// The error message (`errmsg`).
    pub message: String,
    /// `errInfo`, as the server sent it.
    pub details: Option<Document>,
    /// The `errorLabels` inside the write concern error (also on the [`Error`]).
    pub labels: Vec<String>,
}

/// Write errors and/or a write concern error from a write: one command's, or, for
/// `insert_many` and `bulk_write`, every command's (with the indexes of the caller's input).
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct WriteFailure {
    /// `writeErrors`.
    pub write_errors: Vec<WriteError>,
    /// `writeConcernError` (the first one, when several commands had one).
    pub write_concern_error: Option<WriteConcernError>,
    /// What `insert_many` or `bulk_write` did before (and besides) the errors: the writes
    /// that succeeded.
    pub partial_result: Option<BulkWriteResult>,
    /// The counts of the reply that carried the errors (what its other statements did).
    pub(crate) counts: WriteCounts,
    /// The reply that carried the errors (a client bulk write reads its results cursor out
    /// of a reply with a write concern error).
    pub(crate) reply: Option<Box<Document>>,
}

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("write failed:")?;
        for e in &self.write_errors {
            write!(f, " [{}] ({}) {};", e.index, e.code, e.message)?;
        }
        if let Some(wce) = &self.write_concern_error {
            write!(f, " write concern error ({}) {}", wce.code, wce.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind);
        if !self.labels.is_empty() {
            s.field("labels", &self.labels);
        }
        if let Some(a) = &self.address {
            s.field("address", a);
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)?;
        if let Some(d) = &self.detail {
            write!(f, ". {d}")?;
        }
        if let Some(a) = &self.address {
            write!(f, " (server {a})")?;
        }
        if !self.labels.is_empty() {
            let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            write!(f, " [labels: {}]", labels.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io(e) => Some(&**e),
            ErrorKind::Wire(e) => Some(&**e),
            ErrorKind::Auth(e) => Some(e),
            ErrorKind::Pool(e) => Some(e),
            ErrorKind::Timeout(TimeoutError {
                source: Some(e), ..
            }) => Some(e),
            ErrorKind::Uri(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// An error of `kind` with no labels.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
            labels: BTreeSet::new(),
            address: None,
            establishing: None,
            detail: None,
            bulk_partial: None,
        }
    }

    /// The error as the command monitoring spec lets a sensitive command show it: a server's
    /// reply keeps only its code, codeName and labels (the message reads `REDACTED`); an error
    /// of the driver's own (network, protocol) is not the server's reply and stays whole.
    pub(crate) fn redacted(&self) -> Error {
        match &*self.kind {
            ErrorKind::Command(c) => Error {
                kind: Box::new(ErrorKind::Command(CommandError {
                    code: c.code,
                    code_name: c.code_name.clone(),
                    message: REDACTED.to_owned(),
                    topology_version: None,
                    base_backoff: None,
                    response: Document::new(),
                })),
                labels: self.labels.clone(),
                address: self.address.clone(),
                establishing: self.establishing,
                detail: self.detail.clone(),
                bulk_partial: self.bulk_partial.clone(),
            },
            _ => self.clone(),
        }
    }

    /// Marks the error as one that happened while opening a connection of pool generation
    /// `generation`, at `stage`.
    pub(crate) fn while_establishing(
        mut self,
        stage: Establishing,
        generation: Generation,
    ) -> Self {
        self.establishing = Some((stage, generation));
        self
    }

    /// Whether this error, from opening a connection, may signal an overloaded server (CMAP's
    /// backpressure): a network error or timeout of the connect or the `hello` exchange,
    /// including I/O inside the TLS handshake; not a DNS failure, a SOCKS5 proxy failure, a
    /// TLS error that is not I/O (certificate, host name) nor any error after the `hello`
    /// (authentication).
    pub fn is_establishment_overload_signal(&self) -> bool {
        if matches!(self.establishing, Some((Establishing::Auth { .. }, _))) {
            return false;
        }
        match &*self.kind {
            ErrorKind::Io(e) => crate::conn::stream::may_signal_overload(e),
            ErrorKind::Wire(_) => true,
            _ => false,
        }
    }

    /// Whether a connection check-out timed out in the wait queue (CMAP's
    /// `WaitQueueTimeoutError`).
    pub fn is_wait_queue_timeout(&self) -> bool {
        matches!(
            &*self.kind,
            ErrorKind::Pool(mongo_pool::PoolError::WaitQueueTimeout { .. })
        )
    }

    /// Adds `detail` unless the error already has one.
    pub(crate) fn or_detail(self, detail: impl Into<std::sync::Arc<str>>) -> Self {
        if self.detail.is_some() {
            self
        } else {
            self.with_detail(detail)
        }
    }

    /// Adds what the driver knows about its own state when it failed (shown after the error).
    pub(crate) fn with_detail(mut self, detail: impl Into<std::sync::Arc<str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Where opening a connection failed, and the connection's pool generation, if this
    /// error happened while opening one.
    pub(crate) fn establishing(&self) -> Option<(Establishing, Generation)> {
        self.establishing
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The server the error happened on, when known.
    pub fn address(&self) -> Option<&ServerAddress> {
        self.address.as_ref()
    }

    /// The error labels (from the server's reply, or added by the driver).
    pub fn labels(&self) -> impl Iterator<Item = &str> + '_ {
        self.labels.iter().map(String::as_str)
    }

    /// Whether the error carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.contains(label)
    }

    /// Adds a label.
    pub fn add_label(&mut self, label: impl Into<String>) {
        self.labels.insert(label.into());
    }

    /// Removes a label.
    pub fn remove_label(&mut self, label: &str) {
        self.labels.remove(label);
    }

    pub(crate) fn with_address(mut self, address: &ServerAddress) -> Self {
        if self.address.is_none() {
            self.address = Some(address.clone());
        }
        self
    }

    /// The server's error code: a command error's code, or the write concern error's, or the
    /// first write error's.
    pub fn code(&self) -> Option<i32> {
        match &*self.unwrapped().kind {
            ErrorKind::Command(c) => Some(c.code),
            ErrorKind::Write(w) => w
                .write_concern_error
                .as_ref()
                .map(|e| e.code)
                .or_else(|| w.write_errors.first().map(|e| e.code)),
            ErrorKind::Auth(mongo_auth::AuthError::CommandFailed { code, .. }) => Some(*code),
            ErrorKind::ClientBulkWrite(b) => b.error.as_ref().and_then(Error::code),
            _ => None,
        }
    }

    /// The code that SDAM and retries judge: a command error's, or a write concern error's
    /// (write errors are not state changes).
    fn sdam_code(&self) -> Option<(i32, &str)> {
        match &*self.unwrapped().kind {
            ErrorKind::Command(c) => Some((c.code, c.message.as_str())),
            ErrorKind::Write(WriteFailure {
                write_concern_error: Some(wce),
                ..
            }) => Some((wce.code, wce.message.as_str())),
            _ => None,
        }
    }

    pub(crate) fn io(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io(Arc::new(e)))
    }

    pub(crate) fn invalid_argument(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument(msg.into()))
    }

    pub(crate) fn deserialization(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Deserialization(msg.into()))
    }

    pub(crate) fn invalid_reply(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidReply(msg.into()))
    }

    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage(msg.into()))
    }

    /// Reads the error out of a command reply with `ok` not 1 (code, codeName, errmsg,
    /// errorLabels, topologyVersion).
    pub fn from_reply(reply: &Document) -> Self {
        let code = reply.get("code").and_then(as_i32).unwrap_or_default();
        let message = match reply.get("errmsg").or_else(|| reply.get("$err")) {
            Some(Bson::String(s)) => s.clone(),
            _ => String::new(),
        };
        let code_name = match reply.get("codeName") {
            Some(Bson::String(s)) => s.clone(),
            _ => String::new(),
        };
        let topology_version = match reply.get("topologyVersion") {
            Some(Bson::Document(d)) => Some(d.clone()),
            _ => None,
        };
        let base_backoff = reply.get("baseBackoffMS").and_then(positive_millis);
        let mut error = Error::new(ErrorKind::Command(CommandError {
            code,
            code_name,
            message,
            topology_version,
            base_backoff,
            response: reply.clone(),
        }));
        error.labels = labels_of(reply);
        error
    }

    /// Reads write errors and a write concern error out of a write command's reply
    /// (`ok: 1`); `None` when it has neither.
    pub fn from_write_reply(reply: &Document) -> Option<Self> {
        let mut failure = WriteFailure::default();
        if let Ok(errors) = reply.get_array("writeErrors") {
            for e in errors {
                if let Bson::Document(d) = e {
                    failure.write_errors.push(WriteError {
                        index: d.get("index").and_then(Bson::as_i64_lossy).unwrap_or(0),
                        code: d.get("code").and_then(as_i32).unwrap_or(0),
                        code_name: d.get_str("codeName").ok().map(str::to_owned),
                        message: d.get_str("errmsg").unwrap_or_default().to_owned(),
                        details: d.get_document("errInfo").ok().cloned(),
                    });
                }
            }
        }
        let wce_labels = reply
            .get_document("writeConcernError")
            .map(labels_of)
            .unwrap_or_default();
        if let Ok(wce) = reply.get_document("writeConcernError") {
            failure.write_concern_error = Some(WriteConcernError {
                code: wce.get("code").and_then(as_i32).unwrap_or(0),
                code_name: wce.get_str("codeName").unwrap_or_default().to_owned(),
                message: wce.get_str("errmsg").unwrap_or_default().to_owned(),
                details: wce.get_document("errInfo").ok().cloned(),
                labels: wce_labels.iter().cloned().collect(),
            });
        }
        if failure.write_errors.is_empty() && failure.write_concern_error.is_none() {
            return None;
        }
        failure.counts = WriteCounts::from_reply(reply);
        failure.reply = Some(Box::new(reply.clone()));
        let mut error = Error::new(ErrorKind::Write(failure));
        error.labels = labels_of(reply);
        error.labels.extend(wce_labels);
        Some(error)
    }

    /// A write failure gathered over several commands (`insert_many`, `bulk_write`), with the
    /// labels of the errors it gathers.
    pub(crate) fn from_write_failure(
        failure: WriteFailure,
        labels: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut error = Error::new(ErrorKind::Write(failure));
        error.labels = labels.into_iter().collect();
        error
    }

    /// A client bulk write's error, with the labels of the top-level error it carries.
    pub(crate) fn from_client_bulk_write(failure: ClientBulkWriteError) -> Self {
        let labels = failure
            .error
            .as_ref()
            .map(|e| e.labels.clone())
            .unwrap_or_default();
        let address = failure.error.as_ref().and_then(|e| e.address.clone());
        let mut error = Error::new(ErrorKind::ClientBulkWrite(failure));
        error.labels = labels;
        error.address = address;
        error
    }

    /// The client bulk write error this error carries, if it is one.
    pub fn client_bulk_write_failure(&self) -> Option<&ClientBulkWriteError> {
        match &*self.kind {
            ErrorKind::ClientBulkWrite(b) => Some(b),
            _ => None,
        }
    }

    /// What a collection-level bulk write (or `insert_many`) had done before this error
    /// ended it: the write failure's partial result for write and write concern errors,
    /// else the partial result kept with a network, selection or command error.
    pub fn partial_bulk_result(&self) -> Option<&crate::crud::BulkWriteResult> {
        match &*self.kind {
            ErrorKind::Write(w) if w.partial_result.is_some() => w.partial_result.as_ref(),
            _ => self.bulk_partial.as_deref(),
        }
    }

    /// This error with the partial result of the bulk write it ended.
    pub(crate) fn with_bulk_partial(mut self, result: crate::crud::BulkWriteResult) -> Self {
        self.bulk_partial = Some(std::sync::Arc::new(result));
        self
    }

    /// The write failure this error carries, if it is one.
    pub fn write_failure(&self) -> Option<&WriteFailure> {
        match &*self.kind {
            ErrorKind::Write(w) => Some(w),
            _ => None,
        }
    }

    /// A network error: I/O (timeouts included) or a peer that sent garbage. The connection
    /// it happened on is closed and never returned to its pool.
    pub fn is_network_error(&self) -> bool {
        match &*self.kind {
            ErrorKind::Io(_) | ErrorKind::Wire(_) => true,
            ErrorKind::Timeout(TimeoutError {
                source: Some(e), ..
            }) => e.is_network_error(),
            ErrorKind::Pool(p) => pool_source(p).is_some_and(Error::is_network_error),
            _ => false,
        }
    }

    /// A "not writable primary" or "node is recovering" error (SDAM's state change errors).
    pub fn is_state_change(&self) -> bool {
        self.sdam_code()
            .is_some_and(|(c, m)| mongo_sdam::is_state_change(Some(c), m))
    }

    /// A "not writable primary" error (codes 10107, 13435, 10058, or the legacy message).
    pub fn is_not_writable_primary(&self) -> bool {
        self.sdam_code()
            .is_some_and(|(c, m)| mongo_sdam::is_not_writable_primary(Some(c), m))
    }

    /// A "node is recovering" error.
    pub fn is_recovering(&self) -> bool {
        self.sdam_code()
            .is_some_and(|(c, m)| mongo_sdam::is_recovering(Some(c), m))
    }

    /// A shutdown error (codes 11600, 91), or a client that was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(&*self.kind, ErrorKind::Shutdown)
            || self
                .sdam_code()
                .is_some_and(|(c, _)| mongo_sdam::is_shutdown(Some(c)))
    }

    /// An authentication error.
    pub fn is_auth_error(&self) -> bool {
        match &*self.kind {
            ErrorKind::Auth(_) => true,
            ErrorKind::Pool(p) => pool_source(p).is_some_and(Error::is_auth_error),
            _ => false,
        }
    }

    /// A pool that was cleared while the operation waited (CMAP's PoolClearedError).
    pub fn is_pool_cleared(&self) -> bool {
        matches!(
            &*self.kind,
            ErrorKind::Pool(mongo_pool::PoolError::PoolCleared { .. })
        )
    }

    /// Whether a read may be retried (retryable reads spec): a network error, a pool cleared,
    /// a retryable code, or the `RetryableError` label.
    pub fn is_retryable_read(&self) -> bool {
        self.is_network_error()
            || self.is_pool_cleared()
            || self.has_label(mongo_pool::RETRYABLE_ERROR)
            || matches!(&*self.kind, ErrorKind::Command(c)
                if RETRYABLE_CODES.contains(&c.code) || c.code == READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET)
    }

    /// Whether a write may be retried (retryable writes spec): the `RetryableWriteError`
    /// label (which the driver adds to network errors and, for servers before 4.4, to
    /// retryable codes), or a pool cleared before the write was sent.
    pub fn is_retryable_write(&self) -> bool {
        self.has_label(RETRYABLE_WRITE_ERROR)
            || self.is_pool_cleared()
            || self.has_label(mongo_pool::RETRYABLE_ERROR)
    }

    /// An overload error: the server (or the pool, for a connection it could not establish)
    /// labelled it `SystemOverloadedError` (client backpressure spec).
    pub fn is_overload_error(&self) -> bool {
        self.has_label(mongo_pool::SYSTEM_OVERLOADED_ERROR)
    }

    /// A retryable overload error: labelled both `SystemOverloadedError` and
    /// `RetryableError`. The client retries these for every command (client backpressure
    /// spec), after a backoff, up to `maxAdaptiveRetries` times.
    pub fn is_retryable_overload_error(&self) -> bool {
        self.is_overload_error() && self.has_label(mongo_pool::RETRYABLE_ERROR)
    }

    /// The server's `baseBackoffMS` on a command error, when positive: the base the client's
    /// backoff uses instead of its own before retrying an overload error.
    pub fn base_backoff(&self) -> Option<Duration> {
        match &*self.kind {
            ErrorKind::Command(c) => c.base_backoff,
            _ => None,
        }
    }

    /// Whether the code (command error or write concern error) is in the retryable list.
    pub(crate) fn has_retryable_code(&self) -> bool {
        self.sdam_code()
            .is_some_and(|(c, _)| RETRYABLE_CODES.contains(&c))
    }

    /// The SDAM view of this error, when it is one SDAM judges.
    pub(crate) fn sdam_kind(&self) -> Option<mongo_sdam::AppErrorKind> {
        if self.is_network_timeout() {
            return Some(mongo_sdam::AppErrorKind::Timeout);
        }
        if self.is_network_error() {
            return Some(mongo_sdam::AppErrorKind::Network);
        }
        if let ErrorKind::Auth(mongo_auth::AuthError::CommandFailed { code, message, .. }) =
            &*self.kind
        {
            // A command of the authentication conversation failed (a shutdown, say).
            return Some(mongo_sdam::AppErrorKind::Command {
                code: Some(*code),
                message: message.clone(),
                topology_version: None,
            });
        }
        let Some((code, message)) = self.sdam_code() else {
            // Any other error while opening a connection is a handshake error to SDAM.
            return self.establishing.map(|_| mongo_sdam::AppErrorKind::Other {
                message: self.to_string(),
            });
        };
        let topology_version = match &*self.kind {
            ErrorKind::Command(c) => c
                .topology_version
                .as_ref()
                .and_then(|d| mongo_sdam::TopologyVersion::from_bson(&Bson::Document(d.clone()))),
            _ => None,
        };
        Some(mongo_sdam::AppErrorKind::Command {
            code: Some(code),
            message: message.to_owned(),
            topology_version,
        })
    }
}

fn pool_source(p: &mongo_pool::PoolError) -> Option<&Error> {
    match p {
        mongo_pool::PoolError::Establish { source, .. } => source.downcast_ref::<Error>(),
        _ => None,
    }
}

mod bson_util;
pub(crate) use bson_util::BsonExt;
use bson_util::{as_i32, labels_of, positive_millis};

mod convert;
mod timeout;
pub use timeout::{TimeoutError, TimeoutStage};

#[cfg(test)]
mod tests;
