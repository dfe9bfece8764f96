//! Client-side operation timeouts in the error type: [`ErrorKind::Timeout`]'s
//! [`TimeoutError`] (what timed out, the original error), and the spec's "Error
//! Transformations" from a time limit reached to the timeout error.

use std::fmt;

use super::{Error, ErrorKind, pool_source};

/// What was under way when an operation's `timeoutMS` expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutStage {
    /// Server selection.
    ServerSelection,
    /// Connection check-out (the wait queue, or opening a connection).
    Checkout,
    /// The command: its socket I/O, or the server's own time limit (`MaxTimeMSExpired`).
    Command,
    /// Before sending: the time left could not cover the server's minimum round trip.
    BeforeSend,
    /// Between the commands of an operation (a retry, a `withTransaction` loop).
    Between,
}

/// An expired `timeoutMS` ([`ErrorKind::Timeout`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TimeoutError {
    /// What was under way.
    pub stage: TimeoutStage,
    /// The error the stage failed with (a socket timeout, a selection or check-out timeout,
    /// the server's `MaxTimeMSExpired`, the last transient error of a transaction).
    pub source: Option<Error>,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            TimeoutStage::ServerSelection => "during server selection",
            TimeoutStage::Checkout => "during connection check-out",
            TimeoutStage::Command => "during the command",
            TimeoutStage::BeforeSend => {
                "before sending the command (the time left is less than the server's minimum \
                 round-trip time)"
            }
            TimeoutStage::Between => "between the operation's commands",
        };
        write!(f, "operation timed out (timeoutMS) {stage}")?;
        if let Some(e) = &self.source {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl Error {
    /// A network timeout (socket or connect timeout).
    pub fn is_network_timeout(&self) -> bool {
        match &*self.kind {
            ErrorKind::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
            ErrorKind::Timeout(TimeoutError {
                source: Some(e), ..
            }) => e.is_network_timeout(),
            ErrorKind::Pool(mongo_pool::PoolError::ConnectTimeout { .. }) => true,
            ErrorKind::Pool(p) => pool_source(p).is_some_and(Error::is_network_timeout),
            _ => false,
        }
    }

    /// An expired `timeoutMS` at `stage`, with no underlying error.
    pub(crate) fn timeout(stage: TimeoutStage) -> Self {
        Error::new(ErrorKind::Timeout(TimeoutError {
            stage,
            source: None,
        }))
    }

    /// Whether this is an expired `timeoutMS` ([`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(&*self.kind, ErrorKind::Timeout(_))
    }

    /// The error an expired `timeoutMS` wraps (the error itself otherwise).
    pub(crate) fn unwrapped(&self) -> &Error {
        match &*self.kind {
            ErrorKind::Timeout(TimeoutError {
                source: Some(e), ..
            }) => e,
            _ => self,
        }
    }

    /// With `timeoutMS` set, this error as the timeout error when it says a time limit was
    /// reached (client-side operation timeouts spec, "Error Transformations"): a socket
    /// timeout, a server selection or check-out timeout, or `MaxTimeMSExpired` (code 50, at
    /// the top, in a write error or in a write concern error). Labels, the address and the
    /// detail stay on the outer error; the original is its source.
    ///
    /// A server selection error is a timeout only when the deadline has `expired` (it may
    /// also say that no server is compatible).
    pub(crate) fn into_timeout(self, expired: bool) -> Self {
        let stage = match &*self.kind {
            ErrorKind::Timeout(_) => return self,
            ErrorKind::ServerSelection(_) if expired => TimeoutStage::ServerSelection,
            ErrorKind::Pool(
                mongo_pool::PoolError::WaitQueueTimeout { .. }
                | mongo_pool::PoolError::ConnectTimeout { .. },
            ) => TimeoutStage::Checkout,
            ErrorKind::Pool(_) if self.is_network_timeout() => TimeoutStage::Checkout,
            _ if self.is_network_timeout() => TimeoutStage::Command,
            _ if self.has_max_time_expired() => TimeoutStage::Command,
            _ => return self,
        };
        self.wrapped_in_timeout(stage)
    }

    /// This error as the source of a timeout error at `stage` (labels and address kept on
    /// the outer error).
    pub(crate) fn wrapped_in_timeout(self, stage: TimeoutStage) -> Self {
        if self.is_timeout() {
            return self;
        }
        let mut outer = Error::new(ErrorKind::Timeout(TimeoutError {
            stage,
            source: None,
        }));
        outer.labels = self.labels.clone();
        outer.address = self.address.clone();
        if let ErrorKind::Timeout(t) = &mut *outer.kind {
            t.source = Some(self);
        }
        outer
    }

    /// Whether the server's `MaxTimeMSExpired` (code 50) is the error, a write error or
    /// the write concern error.
    fn has_max_time_expired(&self) -> bool {
        const MAX_TIME_MS_EXPIRED: i32 = 50;
        match &*self.kind {
            ErrorKind::Command(c) => c.code == MAX_TIME_MS_EXPIRED,
            ErrorKind::Write(w) => {
                w.write_concern_error
                    .as_ref()
                    .is_some_and(|e| e.code == MAX_TIME_MS_EXPIRED)
                    || w.write_errors.iter().any(|e| e.code == MAX_TIME_MS_EXPIRED)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn time_limits_become_the_timeout_error_with_their_source() {
        // MaxTimeMSExpired at the top, in a write error and in a write concern error: by code
        // only (client-side operation timeouts spec, "Error Transformations").
        let top =
            Error::from_reply(&doc! {"ok": 0, "code": 50, "errmsg": "x", "errorLabels": ["L"]});
        let write = Error::from_write_reply(&doc! {
            "ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 50, "errmsg": "x"}]
        })
        .unwrap();
        let wce = Error::from_write_reply(&doc! {
            "ok": 1, "n": 1, "writeConcernError": {"code": 50, "errmsg": "x"}
        })
        .unwrap();
        for e in [top, write, wce] {
            let t = e.clone().into_timeout(false);
            let ErrorKind::Timeout(inner) = t.kind() else {
                panic!("a timeout error: {t}");
            };
            assert_eq!(inner.stage, TimeoutStage::Command);
            // The original stays reachable, its code and labels with it.
            assert_eq!(t.code(), Some(50));
            assert_eq!(
                t.labels().collect::<Vec<_>>(),
                e.labels().collect::<Vec<_>>()
            );
            assert!(t.to_string().contains(&e.to_string()), "{t}");
        }
        // A socket timeout is one too, and stays a network error for the callers that ask.
        let io = Error::io(std::io::Error::new(std::io::ErrorKind::TimedOut, "late"));
        let t = io.into_timeout(false);
        assert!(t.is_timeout() && t.is_network_error() && t.is_network_timeout());
        // A selection error only once the deadline has passed (it may say "incompatible").
        let selection = Error::new(ErrorKind::ServerSelection("none".into()));
        assert!(!selection.clone().into_timeout(false).is_timeout());
        let t = selection.into_timeout(true);
        assert!(matches!(
            t.kind(),
            ErrorKind::Timeout(TimeoutError {
                stage: TimeoutStage::ServerSelection,
                ..
            })
        ));
        // Other errors pass through.
        let other = Error::from_reply(&doc! {"ok": 0, "code": 11000, "errmsg": "dup"});
        assert!(!other.into_timeout(true).is_timeout());
        // With no underlying error, the message says where the time ran out.
        let before = Error::timeout(TimeoutStage::BeforeSend);
        assert!(before.to_string().contains("round-trip"), "{before}");
    }
}
