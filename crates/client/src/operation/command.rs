//! Commands that are not CRUD: a user's command (`run_command`), `drop`, `endSessions`.

use bson::{Bson, Document, doc};

use super::{Command, ConnectionDescription, OpKind, Operation, Step};
use crate::error::{Error, Result};

/// A command the user wrote, run as it is (run command spec): on the primary unless run as a
/// read with a read preference; retried only on overload errors (client backpressure spec),
/// or once under the retryable reads rules when run as a read; no concern or session added.
#[derive(Debug)]
pub(crate) struct RunCommand {
    db: String,
    body: Option<Document>,
    kind: OpKind,
    name: String,
}

impl RunCommand {
    /// `body` on `db`, on the primary.
    pub(crate) fn new(db: &str, body: Document) -> Self {
        let name = body.keys().next().cloned().unwrap_or_default();
        RunCommand {
            db: db.to_owned(),
            body: Some(body),
            kind: OpKind::Command,
            name,
        }
    }

    /// `body` on `db` as a read: the executor selects by the read preference it is given
    /// and retries once under the retryable reads rules.
    pub(crate) fn read(db: &str, body: Document) -> Self {
        RunCommand {
            kind: OpKind::Read,
            ..RunCommand::new(db, body)
        }
    }
}

impl Operation for RunCommand {
    type Output = Document;

    fn kind(&self) -> OpKind {
        self.kind
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn is_retryable(&self) -> bool {
        self.kind == OpKind::Read
    }

    fn is_run_command(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        // Kept (not taken) so that a retry can build it again.
        let body = self
            .body
            .clone()
            .ok_or_else(|| Error::invalid_argument("empty command"))?;
        if body.is_empty() {
            return Err(Error::invalid_argument("empty command"));
        }
        Ok(Command::new(self.db.clone(), body))
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<Document>> {
        Ok(Step::Done(reply))
    }
}

/// `drop`: a collection that does not exist is not an error.
#[derive(Debug)]
pub(crate) struct DropCollection {
    db: String,
    coll: String,
}

impl DropCollection {
    pub(crate) fn new(db: &str, coll: &str) -> Self {
        DropCollection {
            db: db.to_owned(),
            coll: coll.to_owned(),
        }
    }
}

/// The server's code for "ns not found".
const NAMESPACE_NOT_FOUND: i32 = 26;

impl Operation for DropCollection {
    type Output = ();

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "drop"
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(
            self.db.clone(),
            doc! { "drop": self.coll.clone() },
        ))
    }

    fn handle_reply(&mut self, _reply: Document, _: &ConnectionDescription) -> Result<Step<()>> {
        Ok(Step::Done(()))
    }

    fn handle_error(&mut self, error: Error) -> Result<()> {
        if error.code() == Some(NAMESPACE_NOT_FOUND) {
            Ok(())
        } else {
            Err(error)
        }
    }
}

/// The most session ids one `endSessions` may carry (sessions spec).
pub(crate) const END_SESSIONS_BATCH: usize = 10_000;

/// `endSessions` for the server sessions a client pooled, in batches of
/// [`END_SESSIONS_BATCH`]; sent at shutdown, errors ignored by the caller.
#[derive(Debug)]
pub(crate) struct EndSessions {
    ids: Vec<Document>,
}

impl EndSessions {
    pub(crate) fn new(ids: Vec<Document>) -> Self {
        EndSessions { ids }
    }
}

impl Operation for EndSessions {
    type Output = ();

    fn kind(&self) -> OpKind {
        // The sessions spec sends it with read preference primaryPreferred.
        OpKind::Read
    }

    fn name(&self) -> &str {
        "endSessions"
    }

    fn takes_session(&self) -> bool {
        false
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        let take = self.ids.len().min(END_SESSIONS_BATCH);
        let batch: Vec<Bson> = self.ids.drain(..take).map(Bson::Document).collect();
        Ok(Command::new("admin", doc! { "endSessions": batch }))
    }

    fn handle_reply(&mut self, _reply: Document, _: &ConnectionDescription) -> Result<Step<()>> {
        Ok(if self.ids.is_empty() {
            Step::Done(())
        } else {
            Step::More
        })
    }
}

#[cfg(test)]
mod tests {
    use mongo_events::{ServerAddress, ServerType};
    use mongo_wire::SizeLimits;

    use super::*;

    fn conn() -> ConnectionDescription {
        ConnectionDescription {
            address: ServerAddress::tcp("a", 1),
            server_type: ServerType::Standalone,
            max_wire_version: 21,
            limits: SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn end_sessions_goes_in_batches_of_ten_thousand() {
        let ids: Vec<Document> = (0..END_SESSIONS_BATCH + 5)
            .map(|i| doc! {"id": i64::try_from(i).unwrap()})
            .collect();
        let mut op = EndSessions::new(ids);
        let first = op.build(&conn()).unwrap();
        assert_eq!(
            first.body.get_array("endSessions").unwrap().len(),
            END_SESSIONS_BATCH
        );
        assert!(matches!(
            op.handle_reply(doc! {"ok": 1}, &conn()).unwrap(),
            Step::More
        ));
        let second = op.build(&conn()).unwrap();
        assert_eq!(second.body.get_array("endSessions").unwrap().len(), 5);
        assert!(matches!(
            op.handle_reply(doc! {"ok": 1}, &conn()).unwrap(),
            Step::Done(())
        ));
    }

    #[test]
    fn drop_ignores_namespace_not_found_only() {
        let mut op = DropCollection::new("db", "c");
        let missing = Error::from_reply(&doc! {"ok": 0, "code": 26, "errmsg": "ns not found"});
        assert!(op.handle_error(missing).is_ok());
        let other = Error::from_reply(&doc! {"ok": 0, "code": 13, "errmsg": "unauthorized"});
        assert!(op.handle_error(other).is_err());
    }

    #[test]
    fn run_command_is_rebuilt_identically_for_a_retry() {
        let mut op = RunCommand::read("db", doc! {"count": "c"});
        let a = op.build(&conn()).unwrap();
        let b = op.build(&conn()).unwrap();
        assert_eq!(a.body, b.body);
        assert_eq!(a.body.keys().next().map(String::as_str), Some("count"));
        assert!(op.is_retryable());
        assert!(!RunCommand::new("db", doc! {"ping": 1}).is_retryable());
        assert!(RunCommand::new("db", doc! {}).build(&conn()).is_err());
    }
}
