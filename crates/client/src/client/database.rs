//! [`Database`]: commands, cursor commands, database-level aggregation, collection creation
//! and enumeration, `dropDatabase`; the client's database enumeration; and the helpers every
//! handle uses to hand an operation to the executor.

use bson::{Bson, Document};

use super::Client;
use super::collection::Collection;
use super::cursor::CursorCore;
use super::executor::{OperationContext, Route};
use super::handle::CollectionOptions;
use crate::crud::{
    AggregateOptions, CreateCollectionOptions, ListCollectionsOptions, ListDatabasesOptions,
    ModifyCollectionOptions, RunCursorCommandOptions, TimeoutMode,
};
use crate::error::{Error, Result};
use crate::operation::{
    GetMoreOptions, OpKind, OpenCursor, OpensCursor, Operation, create_collection, drop_database,
    list_databases, modify_collection,
};

impl Client {
    /// Runs `op` to completion with a fresh context: a read with the client's read
    /// preference, anything else on the primary.
    pub(crate) async fn run_op<O: Operation>(&self, mut op: O) -> Result<O::Output> {
        self.run_op_mut(&mut op).await
    }

    /// As [`run_op`](Self::run_op), keeping the operation (a caller that goes on after a
    /// failed batch).
    pub(crate) async fn run_op_mut<O: Operation>(&self, op: &mut O) -> Result<O::Output> {
        // An aggregate with `$out` / `$merge` carries the read preference too: the executor
        // decides whether the deployment lets it use it.
        let ctx = match op.kind() {
            OpKind::Read => self.read_context(),
            OpKind::Write if op.write_uses_read_preference() => self.read_context(),
            OpKind::Write | OpKind::Command => self.context(Route::Select),
        };
        Ok(self.execute(op, ctx, None).await?.output)
    }

    /// Runs a cursor-opening operation and wraps its first batch; `db.coll` names the cursor
    /// when the reply has no `ns`.
    pub(crate) async fn open_cursor(
        &self,
        mut op: OpenCursor,
        db: &str,
        coll: &str,
        get_more: GetMoreOptions,
    ) -> Result<CursorCore> {
        self.open_cursor_with(&mut op, db, coll, get_more, None)
            .await
    }

    /// As [`open_cursor`](Self::open_cursor), for any operation that opens a cursor (a
    /// change stream's aggregate, which reads its reply afterwards), in `ctx` when given
    /// (a change stream's resume: the session and deadline of the `next` call); else in a
    /// fresh context for the operation's kind.
    pub(crate) async fn open_cursor_with<O: OpensCursor>(
        &self,
        op: &mut O,
        db: &str,
        coll: &str,
        get_more: GetMoreOptions,
        ctx: Option<OperationContext>,
    ) -> Result<CursorCore> {
        // Client-side operation timeouts: what timeoutMS bounds for this cursor.
        let timeout = self.timeout();
        let kind = op.kind();
        let opener = op.opener();
        let tailable = opener.is_tailable();
        if let Some(mode) = opener.timeout_mode {
            if timeout.is_none() {
                return Err(Error::invalid_argument(
                    "timeoutMode needs timeoutMS (on the operation, its handle or the client)",
                ));
            }
            if tailable && mode == TimeoutMode::CursorLifetime {
                return Err(Error::invalid_argument(
                    "a tailable cursor only supports timeoutMode iteration",
                ));
            }
            if mode == TimeoutMode::Iteration && kind == OpKind::Write {
                return Err(Error::invalid_argument(
                    "timeoutMode iteration does not apply to an aggregate with $out or $merge",
                ));
            }
        }
        let awaits = opener.is_await_data() || opener.name() == "aggregate";
        if let (true, Some(t), Some(max_await)) =
            (awaits, timeout.filter(|t| !t.is_zero()), get_more.max_time)
            && max_await >= t
        {
            return Err(Error::invalid_argument(format!(
                "maxAwaitTimeMS ({max_await:?}) must be less than timeoutMS ({t:?})"
            )));
        }
        opener.per_iteration = opener.timeout_mode == Some(TimeoutMode::Iteration);
        let per_iteration = opener.per_iteration || tailable;
        // An aggregate with `$out` / `$merge` carries the read preference too: the executor
        // decides whether the deployment lets it use it.
        let ctx = ctx.unwrap_or_else(|| match kind {
            OpKind::Read => self.read_context(),
            OpKind::Write if op.write_uses_read_preference() => self.read_context(),
            OpKind::Write | OpKind::Command => self.context(Route::Select),
        });
        let lifetime = (timeout.is_some() && !per_iteration).then_some(ctx.deadline);
        let executed = self.execute(op, ctx, None).await?;
        let mut core = CursorCore::new(self, executed, db, coll, get_more);
        core.set_lifetime(lifetime);
        Ok(core)
    }

    /// The databases (`listDatabases` on admin): `name`, `sizeOnDisk`, `empty`, … of each
    /// (only `name` with `nameOnly`).
    ///
    /// # Errors
    /// Network, selection and command errors; a reply without a `databases` array.
    pub(crate) async fn exec_list_databases(
        &self,
        filter: Option<Document>,
        options: ListDatabasesOptions,
    ) -> Result<Vec<Document>> {
        let options = options;
        self.run_op(list_databases(filter, &options)).await
    }

    /// The databases' names (`listDatabases` with `nameOnly: true`).
    ///
    /// # Errors
    /// As [`list_databases`](Self::list_databases).
    pub(crate) async fn exec_list_database_names(
        &self,
        filter: Option<Document>,
        options: ListDatabasesOptions,
    ) -> Result<Vec<String>> {
        let options = options.name_only(true);
        names(self.exec_list_databases(filter, options).await?)
    }
}

/// The `name` of each entry.
fn names(entries: Vec<Document>) -> Result<Vec<String>> {
    entries
        .into_iter()
        .map(|mut d| match d.remove("name") {
            Some(Bson::String(n)) => Ok(n),
            _ => Err(Error::invalid_reply("an entry has no name")),
        })
        .collect()
}

/// A database handle: cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pub(super) client: Client,
    name: String,
}

impl Database {
    pub(crate) fn new(client: Client, name: &str) -> Self {
        Database {
            client,
            name: name.to_owned(),
        }
    }

    /// The client (with this handle's options) its operations run on.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle on the collection `name`, whose documents are `T` (`Document` for untyped
    /// use: `db.collection::<Document>("c")`).
    pub fn collection<T>(&self, name: &str) -> Collection<T> {
        Collection::new(self.client.clone(), &self.name, name)
    }

    /// A collection handle whose operations use `options` over this database's.
    pub fn collection_with_options<T>(
        &self,
        name: &str,
        options: CollectionOptions,
    ) -> Collection<T> {
        Collection::new(self.client.with_handle(options), &self.name, name)
    }

    /// Runs a command on this database (see [`Client::run_command`]).
    ///
    /// # Errors
    /// As [`Client::run_command`].
    pub(crate) async fn exec_run_command(&self, cmd: Document) -> Result<Document> {
        self.client.run_command(&self.name, cmd).await
    }

    /// Runs a command that opens a cursor (run command specification, runCursorCommand):
    /// the command is sent as written, on the primary, never retried; the cursor's getMores
    /// go to the same server with the options' `batchSize`, `maxTimeMS` and `comment`.
    ///
    /// # Errors
    /// An empty command (before anything is sent), a reply without a cursor; network,
    /// selection and command errors.
    pub(crate) async fn exec_run_cursor_command(
        &self,
        command: Document,
        options: RunCursorCommandOptions,
    ) -> Result<CursorCore> {
        let options = options;
        // The collection a getMore names when the reply has no `ns`: the command's target.
        let coll = match command.iter().next() {
            Some((_, Bson::String(c))) => c.clone(),
            _ => "$cmd".to_owned(),
        };
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options.max_time,
            comment: options.comment.clone(),
            exhaust: false,
        };
        // `cursorType` needs nothing here: a tailable cursor's `try_next` keeps asking for
        // more while its id is not 0, as any cursor's does.
        let mut op = OpenCursor::command(&self.name, command);
        op.timeout_mode = options.timeout_mode;
        self.client
            .open_cursor(op, &self.name, &coll, get_more)
            .await
    }

    /// Runs a database-level aggregation (`aggregate: 1`), for collection-less sources such
    /// as `$currentOp`, `$listLocalSessions` or `$documents`.
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub(crate) async fn exec_aggregate(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> Result<CursorCore> {
        let options = options;
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options.max_await_time,
            comment: options.comment.clone(),
            exhaust: options.exhaust.unwrap_or(false),
        };
        let mut op = OpenCursor::aggregate(&self.name, Bson::Int32(1), pipeline, &options);
        op.timeout_mode = options.timeout_mode;
        self.client
            .open_cursor(op, &self.name, "$cmd.aggregate", get_more)
            .await
    }

    /// Creates a collection (or a view, with `viewOn` and `pipeline`).
    ///
    /// # Errors
    /// A collection that exists (`NamespaceExists`), write concern, command, network and
    /// selection errors.
    pub(crate) async fn exec_create_collection(
        &self,
        name: &str,
        options: CreateCollectionOptions,
    ) -> Result<()> {
        let options = options;
        self.client
            .run_op(create_collection(&self.name, name, &options)?)
            .await
    }

    /// `collMod` on the collection or view `name`.
    pub(crate) async fn exec_modify_collection(
        &self,
        name: &str,
        options: ModifyCollectionOptions,
    ) -> Result<()> {
        self.client
            .run_op(modify_collection(&self.name, name, &options)?)
            .await
    }

    /// Drops the database.
    ///
    /// # Errors
    /// Write concern, command, network and selection errors.
    pub(crate) async fn exec_drop(&self) -> Result<()> {
        self.client.run_op(drop_database(&self.name)).await
    }

    /// The collections (and views) matching `filter`: a cursor over `listCollections`.
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub(crate) async fn exec_list_collections(
        &self,
        filter: Option<Document>,
        options: ListCollectionsOptions,
    ) -> Result<CursorCore> {
        let options = options;
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: None,
            comment: options.comment.clone(),
            exhaust: false,
        };
        let mut op = OpenCursor::list_collections(&self.name, filter, &options);
        op.timeout_mode = options.timeout_mode;
        self.client
            .open_cursor(op, &self.name, "$cmd.listCollections", get_more)
            .await
    }

    /// The names of the collections matching `filter` (`listCollections` with
    /// `nameOnly: true`).
    ///
    /// # Errors
    /// As [`list_collections`](Self::list_collections).
    pub(crate) async fn exec_list_collection_names(
        &self,
        filter: Option<Document>,
    ) -> Result<Vec<String>> {
        let options = ListCollectionsOptions::default().name_only(true);
        let entries = self
            .exec_list_collections(filter, options)
            .await?
            .collect_all()
            .await?;
        names(entries)
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn names_need_a_string_name() {
        assert_eq!(
            names(vec![doc! {"name": "a"}, doc! {"name": "b", "type": "view"}]).unwrap(),
            ["a", "b"]
        );
        assert!(names(vec![doc! {"name": 1}]).is_err());
    }
}
