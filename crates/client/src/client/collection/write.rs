//! The single writes of [`Collection`]: insert_one, update_one / update_many, replace_one,
//! delete_one / delete_many, and the findAndModify helpers (find_one_and_delete,
//! find_one_and_replace, find_one_and_update).

use bson::{Bson, Document, RawDocumentBuf};

use super::Collection;
use crate::crud::{
    DeleteOptions, DeleteResult, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, Hint, InsertOneOptions, InsertOneResult, ReplaceOptions,
    UpdateModifications, UpdateOptions, UpdateResult,
};
use crate::error::Result;
use crate::operation::{
    DeleteStatement, FindAndModify, UpdateStatement, WriteBatches, WriteCounts, WriteKind,
    check_replacement, check_update, with_id,
};

/// The command-level fields of a write (`bypassDocumentValidation`, `comment`, `let`,
/// `rawData`), present only when set.
pub(super) fn write_extras(
    bypass_document_validation: Option<bool>,
    comment: Option<Bson>,
    let_vars: Option<Document>,
    raw_data: Option<bool>,
) -> Document {
    let mut d = Document::new();
    if let Some(b) = bypass_document_validation {
        d.insert("bypassDocumentValidation", b);
    }
    if let Some(c) = comment {
        d.insert("comment", c);
    }
    if let Some(l) = let_vars {
        d.insert("let", l);
    }
    if raw_data == Some(true) {
        d.insert("rawData", true);
    }
    d
}

/// An update result from the counts of a one-statement update.
fn update_result(counts: &WriteCounts) -> UpdateResult {
    UpdateResult {
        matched_count: counts.matched(),
        modified_count: counts.n_modified,
        upserted_count: i64::try_from(counts.upserted.len()).unwrap_or(i64::MAX),
        upserted_id: counts.upserted.first().map(|(_, id)| id.clone()),
    }
}

/// The parts of an update statement the update and replace helpers share.
struct StatementParts {
    upsert: Option<bool>,
    array_filters: Option<Vec<Document>>,
    collation: Option<Document>,
    hint: Option<Hint>,
    sort: Option<Document>,
}

impl<T> Collection<T> {
    /// Runs one update statement (`update` command) with the command-level `extras`.
    async fn update_statement(
        &self,
        filter: Document,
        update: Bson,
        multi: bool,
        parts: StatementParts,
        extras: Document,
    ) -> Result<UpdateResult> {
        let statement = UpdateStatement {
            filter,
            update,
            multi,
            upsert: parts.upsert,
            array_filters: parts.array_filters,
            collation: parts.collation,
            hint: parts.hint,
            sort: parts.sort,
        };
        let raw = RawDocumentBuf::try_from(&statement.to_document())?;
        let mut op = WriteBatches::new(&self.db, &self.name, WriteKind::Update, vec![raw], true)
            .with_extras(extras);
        if multi {
            op = op.not_retryable();
        }
        Ok(update_result(&self.client.run_op(op).await?))
    }

    /// Inserts one document (an `_id` is generated, first, when it has none).
    ///
    /// # Errors
    /// A write error (duplicate key, validation, …: [`ErrorKind::Write`](crate::ErrorKind)),
    /// a write concern error, network and selection errors.
    pub(crate) async fn exec_insert_one(
        &self,
        document: Document,
        options: InsertOneOptions,
    ) -> Result<InsertOneResult> {
        let o = options;
        let (inserted_id, document) = with_id(document);
        let raw = RawDocumentBuf::try_from(&document)?;
        let extras = write_extras(o.bypass_document_validation, o.comment, None, o.raw_data);
        let op = WriteBatches::new(&self.db, &self.name, WriteKind::Insert, vec![raw], true)
            .with_extras(extras);
        self.client.run_op(op).await?;
        Ok(InsertOneResult { inserted_id })
    }

    /// `update` (one statement; `multi` for updateMany, which is not retried): the update
    /// is checked first (an update document's first key must be an operator; a pipeline
    /// must not be empty).
    pub(crate) async fn exec_update(
        &self,
        filter: Document,
        update: UpdateModifications,
        multi: bool,
        o: UpdateOptions,
    ) -> Result<UpdateResult> {
        let update = check_update(&update)?;
        let parts = StatementParts {
            upsert: o.upsert,
            array_filters: o.array_filters,
            collation: o.collation,
            hint: o.hint,
            sort: o.sort,
        };
        let extras = write_extras(
            o.bypass_document_validation,
            o.comment,
            o.let_vars,
            o.raw_data,
        );
        self.update_statement(filter, update, multi, parts, extras)
            .await
    }

    /// Replaces the first document matching `filter` with `replacement` (its `_id` stays).
    ///
    /// # Errors
    /// A replacement with update operators (before anything is sent); write, write concern,
    /// network and selection errors.
    pub(crate) async fn exec_replace_one(
        &self,
        filter: Document,
        replacement: Document,
        options: ReplaceOptions,
    ) -> Result<UpdateResult> {
        let o = options;
        let replacement = check_replacement(&replacement)?;
        let parts = StatementParts {
            upsert: o.upsert,
            array_filters: None,
            collation: o.collation,
            hint: o.hint,
            sort: o.sort,
        };
        let extras = write_extras(
            o.bypass_document_validation,
            o.comment,
            o.let_vars,
            o.raw_data,
        );
        self.update_statement(filter, replacement, false, parts, extras)
            .await
    }

    /// `delete` (one statement; `many` for deleteMany, which is not retried).
    pub(crate) async fn exec_delete(
        &self,
        filter: Document,
        many: bool,
        o: DeleteOptions,
    ) -> Result<DeleteResult> {
        let statement = DeleteStatement {
            filter,
            many,
            collation: o.collation,
            hint: o.hint,
        };
        let raw = RawDocumentBuf::try_from(&statement.to_document())?;
        let extras = write_extras(None, o.comment, o.let_vars, o.raw_data);
        let mut op = WriteBatches::new(&self.db, &self.name, WriteKind::Delete, vec![raw], true)
            .with_extras(extras);
        if many {
            op = op.not_retryable();
        }
        let counts = self.client.run_op(op).await?;
        Ok(DeleteResult {
            deleted_count: counts.n,
        })
    }

    /// Deletes the first document matching `filter` (by `sort` when several match) and
    /// returns it.
    ///
    /// # Errors
    /// Write concern, command, network and selection errors.
    pub(crate) async fn exec_find_one_and_delete(
        &self,
        filter: Document,
        options: FindOneAndDeleteOptions,
    ) -> Result<Option<Document>> {
        let o = options;
        self.client
            .run_op(FindAndModify::delete(&self.db, &self.name, filter, o))
            .await
    }

    /// Replaces the first document matching `filter` and returns it as it was before
    /// (default) or after ([`ReturnDocument::After`](crate::ReturnDocument)); `None` when
    /// nothing matched (or an upsert's "before").
    ///
    /// # Errors
    /// A replacement with update operators (before anything is sent); write concern,
    /// command, network and selection errors.
    pub(crate) async fn exec_find_one_and_replace(
        &self,
        filter: Document,
        replacement: Document,
        options: FindOneAndReplaceOptions,
    ) -> Result<Option<Document>> {
        let o = options;
        let replacement = check_replacement(&replacement)?;
        self.client
            .run_op(FindAndModify::replace(
                &self.db,
                &self.name,
                filter,
                replacement,
                o,
            ))
            .await
    }

    /// Updates the first document matching `filter` and returns it as it was before
    /// (default) or after.
    ///
    /// # Errors
    /// An invalid update (as [`update_one`](Self::update_one)); write concern, command,
    /// network and selection errors.
    pub(crate) async fn exec_find_one_and_update(
        &self,
        filter: Document,
        update: UpdateModifications,
        options: FindOneAndUpdateOptions,
    ) -> Result<Option<Document>> {
        let o = options;
        let update = check_update(&update)?;
        self.client
            .run_op(FindAndModify::update(
                &self.db, &self.name, filter, update, o,
            ))
            .await
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn extras_hold_only_what_is_set() {
        assert_eq!(write_extras(None, None, None, Some(false)), doc! {});
        assert_eq!(
            write_extras(
                Some(false),
                Some("c".into()),
                Some(doc! {"v": 1}),
                Some(true)
            ),
            doc! {"bypassDocumentValidation": false, "comment": "c", "let": {"v": 1}, "rawData": true}
        );
    }

    #[test]
    fn update_results_do_not_count_the_upsert_as_matched() {
        let r = update_result(&WriteCounts {
            n: 1,
            n_modified: 0,
            upserted: vec![(0, Bson::Int32(9))],
        });
        assert_eq!(
            (r.matched_count, r.modified_count, r.upserted_count),
            (0, 0, 1)
        );
        assert_eq!(r.upserted_id, Some(Bson::Int32(9)));
    }
}
