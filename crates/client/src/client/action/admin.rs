//! The administration actions: commands and cursor commands, collection, database and
//! index management.

use bson::Document;
use mongo_sdam::ReadPreference;

use crate::client::stream::Cursor;
use crate::client::{Client, Collection, Database};
use crate::crud::{
    CreateCollectionOptions, CreateIndexOptions, DropIndexOptions, IndexModel,
    ListCollectionsOptions, ListDatabasesOptions, ListIndexesOptions, ModifyCollectionOptions,
    RenameCollectionOptions, RunCursorCommandOptions,
};

/// A command on a database ([`Database::run_command`](crate::Database::run_command)).
#[must_use = "an action does nothing until awaited"]
pub struct RunCommand<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    command: Document,
    read_preference: Option<ReadPreference>,
}

session_setter!(RunCommand<'a>);

impl RunCommand<'_> {
    /// Runs it as a read with this read preference (retried once on a retryable error)
    /// instead of on the primary.
    pub fn read_preference(mut self, read_preference: ReadPreference) -> Self {
        self.read_preference = Some(read_preference);
        self
    }
}

action_future!(RunCommand<'a> => Document; |this| {
    let db = super::bind(this.db, this.session)?;
    match &this.read_preference {
        Some(rp) => {
            db
                .client()
                .run_read_command(db.name(), this.command, rp)
                .await
        }
        None => db.exec_run_command(this.command).await,
    }
});

/// A command that opens a cursor
/// ([`Database::run_cursor_command`](crate::Database::run_cursor_command)).
#[must_use = "an action does nothing until awaited"]
pub struct RunCursorCommand<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    command: Document,
    pub(crate) options: RunCursorCommandOptions,
}

session_setter!(RunCursorCommand<'a>);

with_options!(RunCursorCommand<'a>, RunCursorCommandOptions);
action_future!(RunCursorCommand<'a> => Cursor; |this| {
    let db = super::bind(this.db, this.session)?;
    let core = db.exec_run_cursor_command(this.command, this.options).await?;
    Ok(Cursor::new(core))
});

/// `create` ([`Database::create_collection`](crate::Database::create_collection)).
#[must_use = "an action does nothing until awaited"]
pub struct CreateCollection<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    name: String,
    pub(crate) options: CreateCollectionOptions,
}

session_setter!(CreateCollection<'a>);

with_options!(CreateCollection<'a>, CreateCollectionOptions);
action_future!(CreateCollection<'a> => (); |this| {
    let db = super::bind(this.db, this.session)?;
    db.exec_create_collection(&this.name, this.options).await
});

/// `collMod` ([`Database::modify_collection`](crate::Database::modify_collection)).
#[must_use = "an action does nothing until awaited"]
pub struct ModifyCollection<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    name: String,
    pub(crate) options: ModifyCollectionOptions,
}

session_setter!(ModifyCollection<'a>);
with_options!(ModifyCollection<'a>, ModifyCollectionOptions);
action_future!(ModifyCollection<'a> => (); |this| {
    let db = super::bind(this.db, this.session)?;
    db.exec_modify_collection(&this.name, this.options).await
});

/// `dropDatabase` ([`Database::drop`](crate::Database::drop)).
#[must_use = "an action does nothing until awaited"]
pub struct DropDatabase<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
}

session_setter!(DropDatabase<'a>);

action_future!(DropDatabase<'a> => (); |this| {
    let db = super::bind(this.db, this.session)?;
    db.exec_drop().await
});

/// `listCollections` ([`Database::list_collections`](crate::Database::list_collections)).
#[must_use = "an action does nothing until awaited"]
pub struct ListCollections<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    filter: Option<Document>,
    pub(crate) options: ListCollectionsOptions,
}

session_setter!(ListCollections<'a>);

impl ListCollections<'_> {
    /// Only the collections matching `filter` (on the `listCollections` entries: `name`,
    /// `type`, `options`, …).
    pub fn filter(mut self, filter: impl Into<Option<Document>>) -> Self {
        self.filter = filter.into();
        self
    }
}

with_options!(ListCollections<'a>, ListCollectionsOptions);
action_future!(ListCollections<'a> => Cursor; |this| {
    let db = super::bind(this.db, this.session)?;
    let core = db.exec_list_collections(this.filter, this.options).await?;
    Ok(Cursor::new(core))
});

/// The collections' names
/// ([`Database::list_collection_names`](crate::Database::list_collection_names)).
#[must_use = "an action does nothing until awaited"]
pub struct ListCollectionNames<'a> {
    db: &'a Database,
    session: super::Binding<'a>,
    filter: Option<Document>,
}

session_setter!(ListCollectionNames<'a>);

impl ListCollectionNames<'_> {
    /// Only the collections matching `filter`.
    pub fn filter(mut self, filter: impl Into<Option<Document>>) -> Self {
        self.filter = filter.into();
        self
    }
}

action_future!(ListCollectionNames<'a> => Vec<String>; |this| {
    let db = super::bind(this.db, this.session)?;
    db.exec_list_collection_names(this.filter).await
});

/// `listDatabases` ([`Client::list_databases`](crate::Client::list_databases)).
#[must_use = "an action does nothing until awaited"]
pub struct ListDatabases<'a> {
    client: &'a Client,
    session: super::Binding<'a>,
    filter: Option<Document>,
    pub(crate) options: ListDatabasesOptions,
}

session_setter!(ListDatabases<'a>);

impl ListDatabases<'_> {
    /// Only the databases matching `filter`.
    pub fn filter(mut self, filter: impl Into<Option<Document>>) -> Self {
        self.filter = filter.into();
        self
    }
}

with_options!(ListDatabases<'a>, ListDatabasesOptions);
action_future!(ListDatabases<'a> => Vec<Document>; |this| {
    let client = super::bind(this.client, this.session)?;
    client.exec_list_databases(this.filter, this.options).await
});

/// The databases' names
/// ([`Client::list_database_names`](crate::Client::list_database_names)).
#[must_use = "an action does nothing until awaited"]
pub struct ListDatabaseNames<'a> {
    client: &'a Client,
    session: super::Binding<'a>,
    filter: Option<Document>,
    pub(crate) options: ListDatabasesOptions,
}

session_setter!(ListDatabaseNames<'a>);

impl ListDatabaseNames<'_> {
    /// Only the databases matching `filter`.
    pub fn filter(mut self, filter: impl Into<Option<Document>>) -> Self {
        self.filter = filter.into();
        self
    }
}

with_options!(ListDatabaseNames<'a>, ListDatabasesOptions);
action_future!(ListDatabaseNames<'a> => Vec<String>; |this| {
    let client = super::bind(this.client, this.session)?;
    client.exec_list_database_names(this.filter, this.options).await
});

/// `drop` of a collection ([`Collection::drop`](crate::Collection::drop)).
#[must_use = "an action does nothing until awaited"]
pub struct DropCollection<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
}

session_setter!(DropCollection<'a, T>);

action_future!(DropCollection<'a, T> => (); |this| {
    let coll = super::bind(this.coll, this.session)?;
    coll.exec_drop().await
});

/// `renameCollection` ([`Collection::rename`](crate::Collection::rename)).
#[must_use = "an action does nothing until awaited"]
pub struct RenameCollection<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    to: String,
    pub(crate) options: RenameCollectionOptions,
}

session_setter!(RenameCollection<'a, T>);

with_options!(RenameCollection<'a, T>, RenameCollectionOptions);
action_future!(RenameCollection<'a, T> => (); |this| {
    let coll = super::bind(this.coll, this.session)?;
    coll.exec_rename(&this.to, this.options).await
});

/// `createIndexes` of one index ([`Collection::create_index`](crate::Collection::create_index)):
/// its name.
#[must_use = "an action does nothing until awaited"]
pub struct CreateIndex<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    model: IndexModel,
    pub(crate) options: CreateIndexOptions,
}

session_setter!(CreateIndex<'a, T>);

with_options!(CreateIndex<'a, T>, CreateIndexOptions);
action_future!(CreateIndex<'a, T> => String; |this| {
    let coll = super::bind(this.coll, this.session)?;
    coll.exec_create_index(this.model, this.options).await
});

/// `createIndexes` ([`Collection::create_indexes`](crate::Collection::create_indexes)):
/// the indexes' names, in order.
#[must_use = "an action does nothing until awaited"]
pub struct CreateIndexes<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    models: Vec<IndexModel>,
    pub(crate) options: CreateIndexOptions,
}

session_setter!(CreateIndexes<'a, T>);

with_options!(CreateIndexes<'a, T>, CreateIndexOptions);
action_future!(CreateIndexes<'a, T> => Vec<String>; |this| {
    let coll = super::bind(this.coll, this.session)?;
    coll.exec_create_indexes(this.models, this.options).await
});

/// `dropIndexes` of one index or all
/// ([`Collection::drop_index`](crate::Collection::drop_index),
/// [`Collection::drop_indexes`](crate::Collection::drop_indexes)).
#[must_use = "an action does nothing until awaited"]
pub struct DropIndex<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    name: Option<String>,
    pub(crate) options: DropIndexOptions,
}

session_setter!(DropIndex<'a, T>);

with_options!(DropIndex<'a, T>, DropIndexOptions);
action_future!(DropIndex<'a, T> => (); |this| {
    let coll = super::bind(this.coll, this.session)?;
    match this.name {
        Some(name) => coll.exec_drop_index(&name, this.options).await,
        None => coll.exec_drop_indexes(this.options).await,
    }
});

/// `listIndexes` ([`Collection::list_indexes`](crate::Collection::list_indexes)).
#[must_use = "an action does nothing until awaited"]
pub struct ListIndexes<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    pub(crate) options: ListIndexesOptions,
}

session_setter!(ListIndexes<'a, T>);

with_options!(ListIndexes<'a, T>, ListIndexesOptions);
action_future!(ListIndexes<'a, T> => Cursor; |this| {
    let coll = super::bind(this.coll, this.session)?;
    Ok(Cursor::new(coll.exec_list_indexes(this.options).await?))
});

/// The indexes' names ([`Collection::list_index_names`](crate::Collection::list_index_names)).
#[must_use = "an action does nothing until awaited"]
pub struct ListIndexNames<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
}

session_setter!(ListIndexNames<'a, T>);

action_future!(ListIndexNames<'a, T> => Vec<String>; |this| {
    let coll = super::bind(this.coll, this.session)?;
    coll.exec_list_index_names().await
});

impl Client {
    /// The databases (`listDatabases` on admin): `name`, `sizeOnDisk`, `empty`, … of each
    /// (only `name` with `nameOnly`).
    ///
    /// Errors (when awaited): network, selection and command errors; a reply without a
    /// `databases` array.
    pub fn list_databases(&self) -> ListDatabases<'_> {
        ListDatabases {
            client: self,
            session: super::Binding::default(),
            filter: None,
            options: ListDatabasesOptions::default(),
        }
    }

    /// The databases' names (`listDatabases` with `nameOnly: true`).
    ///
    /// Errors (when awaited): as [`list_databases`](Self::list_databases).
    pub fn list_database_names(&self) -> ListDatabaseNames<'_> {
        ListDatabaseNames {
            client: self,
            session: super::Binding::default(),
            filter: None,
            options: ListDatabasesOptions::default(),
        }
    }
}

impl Database {
    /// Runs a command on this database, on the primary (see [`Client::run_command`]), or as
    /// a read with [`RunCommand::read_preference`].
    ///
    /// Errors (when awaited): as [`Client::run_command`].
    pub fn run_command(&self, command: Document) -> RunCommand<'_> {
        RunCommand {
            db: self,
            session: super::Binding::default(),
            command,
            read_preference: None,
        }
    }

    /// Runs a command that opens a cursor (run command specification, runCursorCommand):
    /// the command is sent as written, on the primary, never retried; the cursor's getMores
    /// go to the same server with the options' `batchSize`, `maxTimeMS` and `comment`.
    ///
    /// Errors (when awaited): an empty command (before anything is sent), a reply without
    /// a cursor; network, selection and command errors.
    pub fn run_cursor_command(&self, command: Document) -> RunCursorCommand<'_> {
        RunCursorCommand {
            db: self,
            session: super::Binding::default(),
            command,
            options: RunCursorCommandOptions::default(),
        }
    }

    /// Creates a collection (or a view, with `viewOn` and `pipeline`).
    ///
    /// Errors (when awaited): a collection that exists (`NamespaceExists`), write concern,
    /// command, network and selection errors.
    pub fn create_collection(&self, name: impl Into<String>) -> CreateCollection<'_> {
        CreateCollection {
            db: self,
            session: super::Binding::default(),
            name: name.into(),
            options: CreateCollectionOptions::default(),
        }
    }

    /// Changes a collection's or a view's options (`collMod`): its validator, validation
    /// level and action, a view's definition, an index's options.
    ///
    /// Errors (when awaited): write concern, command, network and selection errors.
    pub fn modify_collection(&self, name: impl Into<String>) -> ModifyCollection<'_> {
        ModifyCollection {
            db: self,
            session: super::Binding::default(),
            name: name.into(),
            options: ModifyCollectionOptions::default(),
        }
    }

    /// Drops the database.
    ///
    /// Errors (when awaited): write concern, command, network and selection errors.
    pub fn drop(&self) -> DropDatabase<'_> {
        DropDatabase {
            db: self,
            session: super::Binding::default(),
        }
    }

    /// The collections (and views): a cursor over `listCollections`.
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn list_collections(&self) -> ListCollections<'_> {
        ListCollections {
            db: self,
            session: super::Binding::default(),
            filter: None,
            options: ListCollectionsOptions::default(),
        }
    }

    /// The collections' names (`listCollections` with `nameOnly: true`).
    ///
    /// Errors (when awaited): as [`list_collections`](Self::list_collections).
    pub fn list_collection_names(&self) -> ListCollectionNames<'_> {
        ListCollectionNames {
            db: self,
            session: super::Binding::default(),
            filter: None,
        }
    }
}

impl<T> Collection<T> {
    /// Drops the collection (a missing collection is not an error).
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn drop(&self) -> DropCollection<'_, T> {
        DropCollection {
            coll: self,
            session: super::Binding::default(),
        }
    }

    /// Renames the collection to `to` in the same database (`renameCollection` on admin);
    /// this handle keeps naming the old name.
    ///
    /// Errors (when awaited): a missing collection, an existing target without
    /// `drop_target`, write concern, command, network and selection errors.
    pub fn rename(&self, to: impl Into<String>) -> RenameCollection<'_, T> {
        RenameCollection {
            coll: self,
            session: super::Binding::default(),
            to: to.into(),
            options: RenameCollectionOptions::default(),
        }
    }

    /// Creates one index; its name (given, or generated from the keys, e.g. `a_1_b_-1`).
    ///
    /// Errors (when awaited): write concern, command, network and selection errors.
    pub fn create_index(&self, model: IndexModel) -> CreateIndex<'_, T> {
        CreateIndex {
            coll: self,
            session: super::Binding::default(),
            model,
            options: CreateIndexOptions::default(),
        }
    }

    /// Creates indexes in one `createIndexes` command; their names, in order.
    ///
    /// Errors (when awaited): no models (before anything is sent); as
    /// [`create_index`](Self::create_index).
    pub fn create_indexes(
        &self,
        models: impl IntoIterator<Item = IndexModel>,
    ) -> CreateIndexes<'_, T> {
        CreateIndexes {
            coll: self,
            session: super::Binding::default(),
            models: models.into_iter().collect(),
            options: CreateIndexOptions::default(),
        }
    }

    /// Drops the index called `name`. `*` is refused: use
    /// [`drop_indexes`](Self::drop_indexes).
    ///
    /// Errors (when awaited): `*` (before anything is sent); write concern, command (an
    /// index that does not exist), network and selection errors.
    pub fn drop_index(&self, name: impl Into<String>) -> DropIndex<'_, T> {
        DropIndex {
            coll: self,
            session: super::Binding::default(),
            name: Some(name.into()),
            options: DropIndexOptions::default(),
        }
    }

    /// Drops every index but `_id_`.
    ///
    /// Errors (when awaited): write concern, command, network and selection errors.
    pub fn drop_indexes(&self) -> DropIndex<'_, T> {
        DropIndex {
            coll: self,
            session: super::Binding::default(),
            name: None,
            options: DropIndexOptions::default(),
        }
    }

    /// The collection's indexes (a cursor over `listIndexes`; empty when the collection does
    /// not exist).
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn list_indexes(&self) -> ListIndexes<'_, T> {
        ListIndexes {
            coll: self,
            session: super::Binding::default(),
            options: ListIndexesOptions::default(),
        }
    }

    /// The names of the collection's indexes.
    ///
    /// Errors (when awaited): as [`list_indexes`](Self::list_indexes); an entry without a
    /// name.
    pub fn list_index_names(&self) -> ListIndexNames<'_, T> {
        ListIndexNames {
            coll: self,
            session: super::Binding::default(),
        }
    }
}
