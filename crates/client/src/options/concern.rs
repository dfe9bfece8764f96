//! Write concern: [`WriteConcern`] from `w`, `journal` and `wTimeoutMS`, and how it is sent.

use std::time::Duration;

use bson::Document;

/// The `w` of a write concern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Acknowledgment {
    /// Acknowledged by this many members (`0` = unacknowledged).
    Nodes(u32),
    /// `"majority"`.
    Majority,
    /// A custom write concern name (a tag set defined on the replica set).
    Custom(String),
}

/// A write concern from `w`, `journal` and `wTimeoutMS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteConcern {
    /// `w`.
    pub w: Option<Acknowledgment>,
    /// `journal` (the `j` field).
    pub journal: Option<bool>,
    /// `wTimeoutMS`; zero means no timeout.
    pub w_timeout: Option<Duration>,
}

impl WriteConcern {
    /// A write concern with only `w` set.
    pub fn with_w(w: Acknowledgment) -> Self {
        WriteConcern {
            w: Some(w),
            ..WriteConcern::default()
        }
    }
}

impl WriteConcern {
    /// The `writeConcern` document sent with a write, `None` when nothing is set (the
    /// server's default, which the read and write concern spec says to omit).
    pub fn to_document(&self) -> Option<Document> {
        let mut d = Document::new();
        match &self.w {
            Some(Acknowledgment::Nodes(n)) => {
                d.insert("w", i64::from(*n));
            }
            Some(Acknowledgment::Majority) => {
                d.insert("w", "majority");
            }
            Some(Acknowledgment::Custom(s)) => {
                d.insert("w", s.clone());
            }
            None => {}
        }
        if let Some(j) = self.journal {
            d.insert("j", j);
        }
        if let Some(t) = self.w_timeout {
            d.insert("wtimeout", i64::try_from(t.as_millis()).unwrap_or(i64::MAX));
        }
        (!d.is_empty()).then_some(d)
    }

    /// Whether writes are acknowledged: `w` is not 0, or `journal` asks for an
    /// acknowledgement of the journal anyway (read and write concern spec).
    pub fn is_acknowledged(&self) -> bool {
        self.w != Some(Acknowledgment::Nodes(0)) || self.journal == Some(true)
    }

    /// Whether this is the server's default write concern: nothing set, so nothing is sent.
    pub fn is_server_default(&self) -> bool {
        self.to_document().is_none()
    }

    /// Checks the rule the read and write concern spec puts on the fields together: `w: 0`
    /// cannot ask for `journal: true`. (A negative `w` or `wtimeoutMS`, the spec's other
    /// invalid values, cannot be expressed in these types.)
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::error::ErrorKind::InvalidArgument) naming the
    /// conflict.
    pub fn validate(&self) -> crate::error::Result<()> {
        if self.w == Some(Acknowledgment::Nodes(0)) && self.journal == Some(true) {
            return Err(crate::error::Error::invalid_argument(
                "a write concern with w: 0 cannot ask for journal: true",
            ));
        }
        Ok(())
    }
}
