//! Administration commands: `create` (a collection or a view), `collMod`, `dropDatabase` and
//! `listDatabases`, and [`AdminCommand`], the one-round-trip command they (and the index
//! commands) are.

use bson::{Bson, Document, doc};

use super::cursor::{put, put_flag};
use super::{Command, ConnectionDescription, OpKind, Operation, Step};
use crate::crud::{
    CreateCollectionOptions, ListDatabasesOptions, ModifyCollectionOptions, RenameCollectionOptions,
};
use crate::error::{Error, Result};

/// A command of one round trip whose body is built once: a write on the primary that takes
/// the write concern and is not retried (create, drop, createIndexes, dropIndexes), or a
/// retryable read (listDatabases).
#[derive(Debug)]
pub(crate) struct AdminCommand<T> {
    name: &'static str,
    db: String,
    body: Document,
    kind: OpKind,
    parse: fn(Document) -> Result<T>,
}

impl<T> AdminCommand<T> {
    /// A non-retryable write that takes the write concern.
    pub(crate) fn write(
        name: &'static str,
        db: &str,
        body: Document,
        parse: fn(Document) -> Result<T>,
    ) -> Self {
        AdminCommand {
            name,
            db: db.to_owned(),
            body,
            kind: OpKind::Write,
            parse,
        }
    }
}

impl<T> Operation for AdminCommand<T> {
    type Output = T;

    fn kind(&self) -> OpKind {
        self.kind
    }

    fn name(&self) -> &str {
        self.name
    }

    fn is_retryable(&self) -> bool {
        // The retryable reads specification lists listDatabases; these writes are not in
        // the retryable writes list.
        self.kind == OpKind::Read
    }

    fn takes_write_concern(&self) -> bool {
        self.kind == OpKind::Write
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(self.db.clone(), self.body.clone()))
    }

    fn handle_reply(&mut self, reply: Document, _: &ConnectionDescription) -> Result<Step<T>> {
        (self.parse)(reply).map(Step::Done)
    }
}

/// A reply whose content does not matter.
pub(crate) fn nothing(_: Document) -> Result<()> {
    Ok(())
}

/// `create` of `db.name` with `options` (a capped collection, a view, a validator, …).
pub(crate) fn create_collection(
    db: &str,
    name: &str,
    options: &CreateCollectionOptions,
) -> Result<AdminCommand<()>> {
    let mut body = doc! { "create": name };
    body.extend(bson::serialize_to_document(options)?);
    Ok(AdminCommand::write("create", db, body, nothing))
}

/// `collMod` of `db.name` with `options` (a validator, a view's pipeline, …).
pub(crate) fn modify_collection(
    db: &str,
    name: &str,
    options: &ModifyCollectionOptions,
) -> Result<AdminCommand<()>> {
    let mut body = doc! { "collMod": name };
    body.extend(bson::serialize_to_document(options)?);
    Ok(AdminCommand::write("collMod", db, body, nothing))
}

/// `renameCollection` of `db.from` to `db.to`, on `admin`.
pub(crate) fn rename_collection(
    db: &str,
    from: &str,
    to: &str,
    o: &RenameCollectionOptions,
) -> AdminCommand<()> {
    let mut body = doc! { "renameCollection": format!("{db}.{from}"), "to": format!("{db}.{to}") };
    put(&mut body, "dropTarget", o.drop_target);
    put(&mut body, "comment", o.comment.clone());
    AdminCommand::write("renameCollection", "admin", body, nothing)
}

/// `dropDatabase` of `db`.
pub(crate) fn drop_database(db: &str) -> AdminCommand<()> {
    AdminCommand::write("dropDatabase", db, doc! { "dropDatabase": 1 }, nothing)
}

/// `listDatabases` on admin: a retryable read; its `databases`.
pub(crate) fn list_databases(
    filter: Option<Document>,
    o: &ListDatabasesOptions,
) -> AdminCommand<Vec<Document>> {
    let mut body = doc! { "listDatabases": 1 };
    put(&mut body, "filter", filter);
    put_flag(&mut body, "nameOnly", o.name_only);
    put(&mut body, "authorizedDatabases", o.authorized_databases);
    put(&mut body, "comment", o.comment.clone());
    AdminCommand {
        name: "listDatabases",
        db: "admin".to_owned(),
        body,
        kind: OpKind::Read,
        parse: |mut reply| match reply.remove("databases") {
            Some(Bson::Array(dbs)) => dbs
                .into_iter()
                .map(|d| match d {
                    Bson::Document(d) => Ok(d),
                    _ => Err(Error::invalid_reply(
                        "a listDatabases entry is not a document",
                    )),
                })
                .collect(),
            _ => Err(Error::invalid_reply(
                "listDatabases' reply has no databases array",
            )),
        },
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
            server_type: ServerType::RsPrimary,
            max_wire_version: 21,
            limits: SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn create_sends_the_options_with_server_names() {
        let o = CreateCollectionOptions::default()
            .capped(true)
            .size(4096)
            .view_on("src")
            .pipeline(vec![doc! {"$match": {}}]);
        let mut op = create_collection("db", "v", &o).unwrap();
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {"create": "v", "capped": true, "size": 4096_i64, "viewOn": "src",
            "pipeline": [{"$match": {}}]}
        );
        assert!(!op.is_retryable() && op.takes_write_concern());
    }

    #[test]
    fn coll_mod_sends_the_changes_with_server_names() {
        let o = ModifyCollectionOptions::default()
            .validator(doc! {"x": {"$type": "string"}})
            .validation_level("moderate")
            .validation_action("warn");
        let mut op = modify_collection("db", "c", &o).unwrap();
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {"collMod": "c", "validator": {"x": {"$type": "string"}},
            "validationLevel": "moderate", "validationAction": "warn"}
        );
        assert!(!op.is_retryable() && op.takes_write_concern());
    }

    #[test]
    fn list_databases_is_a_retryable_read_on_admin() {
        let mut op = list_databases(
            Some(doc! {"name": "a"}),
            &ListDatabasesOptions::default().name_only(true),
        );
        assert!(op.is_retryable() && !op.takes_write_concern());
        assert_eq!(op.kind(), OpKind::Read);
        let c = op.build(&conn()).unwrap();
        assert_eq!(c.db, "admin");
        assert_eq!(
            c.body,
            doc! {"listDatabases": 1, "filter": {"name": "a"}, "nameOnly": true}
        );
        let Step::Done(dbs) = op
            .handle_reply(doc! {"ok": 1, "databases": [{"name": "a"}]}, &conn())
            .unwrap()
        else {
            panic!("done")
        };
        assert_eq!(dbs, vec![doc! {"name": "a"}]);
        assert!(
            op.handle_reply(doc! {"ok": 1, "databases": [1]}, &conn())
                .is_err()
        );
        assert!(op.handle_reply(doc! {"ok": 1}, &conn()).is_err());
    }
}
