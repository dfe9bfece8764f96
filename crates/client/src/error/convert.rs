//! Conversions into [`Error`] from the lower crates' errors and from I/O, URI and BSON
//! errors, and the retryable writes spec's rewrite of a server's refusal of `txnNumber`.

use std::sync::Arc;

use super::{Error, ErrorKind};
use crate::uri::UriError;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e)
    }
}

impl From<mongo_wire::Error> for Error {
    fn from(e: mongo_wire::Error) -> Self {
        match e {
            mongo_wire::Error::Io(io) => Error::io(io),
            other => Error::new(ErrorKind::Wire(Arc::new(other))),
        }
    }
}

impl From<mongo_auth::AuthError> for Error {
    fn from(e: mongo_auth::AuthError) -> Self {
        Error::new(ErrorKind::Auth(e))
    }
}

impl From<mongo_pool::PoolError> for Error {
    fn from(e: mongo_pool::PoolError) -> Self {
        // An establishment error that wraps one of ours keeps its kind and labels.
        if let mongo_pool::PoolError::Establish { source, .. } = &e {
            if let Some(inner) = source.downcast_ref::<Error>() {
                let mut inner = inner.clone();
                for l in e.labels() {
                    inner.add_label(*l);
                }
                return inner;
            }
        }
        let mut error = Error::new(ErrorKind::Pool(e.clone()));
        for l in e.labels() {
            error.add_label(*l);
        }
        error
    }
}

impl From<crate::srv::SrvError> for Error {
    fn from(e: crate::srv::SrvError) -> Self {
        Error::new(ErrorKind::Srv(e))
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        Error::new(ErrorKind::Uri(e))
    }
}

impl From<bson::error::Error> for Error {
    fn from(e: bson::error::Error) -> Self {
        Error::invalid_argument(format!("BSON error: {e}"))
    }
}

/// The message the retryable writes spec puts in place of a server's refusal of
/// `txnNumber` on a storage engine without document-level locking.
pub(crate) const RETRYABLE_WRITES_UNSUPPORTED: &str = "This MongoDB deployment does not support retryable writes. Please add retryWrites=false to your connection string.";

impl Error {
    /// The retryable writes spec's rewrite of a server without document-level locking
    /// refusing a write's `txnNumber` (IllegalOperation 20, "Transaction numbers …"): the
    /// message tells the user to turn retryable writes off. Any other error is returned as
    /// it is.
    pub(crate) fn for_retryable_write(mut self) -> Self {
        if let ErrorKind::Command(c) = &mut *self.kind
            && c.code == 20
            && c.message.starts_with("Transaction numbers")
        {
            c.message = RETRYABLE_WRITES_UNSUPPORTED.to_owned();
        }
        self
    }
}
