//! Index management on a [`Collection`] (index management specification): create_index,
//! create_indexes, drop_index, drop_indexes, list_indexes, list_index_names.

use bson::Document;

use super::Collection;
use crate::client::cursor::CursorCore;
use crate::crud::{CreateIndexOptions, DropIndexOptions, IndexModel, ListIndexesOptions};
use crate::error::{Error, Result};
use crate::operation::{GetMoreOptions, OpenCursor, create_indexes, drop_indexes, index_names};

impl<T> Collection<T> {
    /// Creates one index; returns its name (given, or generated from the keys, e.g.
    /// `a_1_b_-1`).
    ///
    /// # Errors
    /// Write concern, command, network and selection errors.
    pub(crate) async fn exec_create_index(
        &self,
        model: IndexModel,
        options: CreateIndexOptions,
    ) -> Result<String> {
        let mut names = self.exec_create_indexes([model], options).await?;
        names
            .pop()
            .ok_or_else(|| Error::invalid_reply("createIndexes named no index"))
    }

    /// Creates indexes in one `createIndexes` command; returns their names, in order.
    ///
    /// # Errors
    /// No models (before anything is sent); as [`create_index`](Self::create_index).
    pub(crate) async fn exec_create_indexes(
        &self,
        models: impl IntoIterator<Item = IndexModel>,
        options: CreateIndexOptions,
    ) -> Result<Vec<String>> {
        let models: Vec<IndexModel> = models.into_iter().collect();
        let options = options;
        let (op, names) = create_indexes(&self.db, &self.name, &models, &options)?;
        self.client.run_op(op).await?;
        Ok(names)
    }

    /// Drops the index called `name`. `*` is refused: use
    /// [`drop_indexes`](Self::drop_indexes).
    ///
    /// # Errors
    /// `*` (before anything is sent); write concern, command (an index that does not
    /// exist), network and selection errors.
    pub(crate) async fn exec_drop_index(
        &self,
        name: &str,
        options: DropIndexOptions,
    ) -> Result<()> {
        if name == "*" {
            return Err(Error::invalid_argument(
                "drop_index(\"*\") would drop every index: use drop_indexes",
            ));
        }
        let options = options;
        self.client
            .run_op(drop_indexes(&self.db, &self.name, name, &options))
            .await
    }

    /// Drops every index but `_id_`.
    ///
    /// # Errors
    /// Write concern, command, network and selection errors.
    pub(crate) async fn exec_drop_indexes(&self, options: DropIndexOptions) -> Result<()> {
        let options = options;
        self.client
            .run_op(drop_indexes(&self.db, &self.name, "*", &options))
            .await
    }

    /// The collection's indexes (a cursor over `listIndexes`; empty when the collection does
    /// not exist).
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub(crate) async fn exec_list_indexes(
        &self,
        options: ListIndexesOptions,
    ) -> Result<CursorCore> {
        let options = options;
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: None,
            comment: options.comment.clone(),
            exhaust: false,
        };
        let mut op = OpenCursor::list_indexes(&self.db, &self.name, &options);
        op.timeout_mode = options.timeout_mode;
        self.client
            .open_cursor(op, &self.db, &self.name, get_more)
            .await
    }

    /// The names of the collection's indexes.
    ///
    /// # Errors
    /// As [`list_indexes`](Self::list_indexes); an entry without a name.
    pub(crate) async fn exec_list_index_names(&self) -> Result<Vec<String>> {
        let indexes: Vec<Document> = self
            .exec_list_indexes(ListIndexesOptions::default())
            .await?
            .collect_all()
            .await?;
        index_names(&indexes)
    }
}
