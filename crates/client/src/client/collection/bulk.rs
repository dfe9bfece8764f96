//! [`Collection::bulk_write`] and [`Collection::insert_many`] (a bulk write of inserts):
//! the models grouped into `insert`, `update` and `delete` commands as the CRUD specification
//! says (ordered: consecutive models of one kind, in order; unordered: one command per kind),
//! each command split into batches by the server's limits; an ordered bulk write stops at the
//! first write error, an unordered one runs every batch and reports every error, with the
//! indexes of the caller's models and the partial result.

use std::collections::{BTreeMap, BTreeSet};

use bson::{Bson, Document, RawDocumentBuf};

use super::Collection;
use super::write::write_extras;
use crate::crud::{
    BulkWriteOptions, BulkWriteResult, DeleteModel, InsertManyOptions, InsertManyResult,
    UpdateModel, WriteModel,
};
use crate::error::{Error, Result, WriteError, WriteFailure};
use crate::operation::{
    DeleteStatement, UpdateStatement, WriteBatches, WriteCounts, WriteKind, check_replacement,
    check_update, with_id,
};

/// One model, ready to send.
struct Statement {
    kind: WriteKind,
    document: RawDocumentBuf,
    /// May touch several documents: the command is not retryable.
    multi: bool,
}

/// One command's statements and the index of each in the caller's models.
struct Group {
    kind: WriteKind,
    statements: Vec<RawDocumentBuf>,
    indexes: Vec<usize>,
    multi: bool,
}

/// Checks and encodes the models; the generated or given `_id` of each insert.
fn prepare(models: Vec<WriteModel>) -> Result<(Vec<Statement>, BTreeMap<usize, Bson>)> {
    let mut statements = Vec::with_capacity(models.len());
    let mut ids = BTreeMap::new();
    for (i, model) in models.into_iter().enumerate() {
        let (kind, document, multi) = match model {
            WriteModel::InsertOne(m) => {
                let (id, document) = with_id(m.document);
                ids.insert(i, id);
                (WriteKind::Insert, document, false)
            }
            WriteModel::UpdateOne(m) => (WriteKind::Update, update_document(m, false)?, false),
            WriteModel::UpdateMany(m) => (WriteKind::Update, update_document(m, true)?, true),
            WriteModel::ReplaceOne(m) => {
                let replacement = check_replacement(&m.replacement)?;
                let statement = UpdateStatement {
                    filter: m.filter,
                    update: replacement,
                    multi: false,
                    upsert: m.upsert,
                    array_filters: None,
                    collation: m.collation,
                    hint: m.hint,
                    sort: m.sort,
                };
                (WriteKind::Update, statement.to_document(), false)
            }
            WriteModel::DeleteOne(m) => (WriteKind::Delete, delete_document(m, false), false),
            WriteModel::DeleteMany(m) => (WriteKind::Delete, delete_document(m, true), true),
        };
        statements.push(Statement {
            kind,
            document: RawDocumentBuf::try_from(&document)?,
            multi,
        });
    }
    Ok((statements, ids))
}

/// The `updates` entry of an update model.
fn update_document(m: UpdateModel, multi: bool) -> Result<Document> {
    let statement = UpdateStatement {
        update: check_update(&m.update)?,
        filter: m.filter,
        multi,
        upsert: m.upsert,
        array_filters: m.array_filters,
        collation: m.collation,
        hint: m.hint,
        sort: m.sort,
    };
    Ok(statement.to_document())
}

/// The `deletes` entry of a delete model.
fn delete_document(m: DeleteModel, many: bool) -> Document {
    DeleteStatement {
        filter: m.filter,
        many,
        collation: m.collation,
        hint: m.hint,
    }
    .to_document()
}

/// Groups the statements into commands: consecutive runs of one kind when ordered; one
/// command per kind (inserts, updates, deletes) when not.
fn group(statements: Vec<Statement>, ordered: bool) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, s) in statements.into_iter().enumerate() {
        let existing = if ordered {
            groups.last_mut().filter(|g| g.kind == s.kind)
        } else {
            groups.iter_mut().find(|g| g.kind == s.kind)
        };
        match existing {
            Some(g) => {
                g.statements.push(s.document);
                g.indexes.push(i);
                g.multi |= s.multi;
            }
            None => groups.push(Group {
                kind: s.kind,
                statements: vec![s.document],
                indexes: vec![i],
                multi: s.multi,
            }),
        }
    }
    if !ordered {
        let rank = |k: WriteKind| match k {
            WriteKind::Insert => 0,
            WriteKind::Update => 1,
            WriteKind::Delete => 2,
        };
        groups.sort_by_key(|g| rank(g.kind));
    }
    groups
}

/// Adds one command's counts to the result (upserted ids at the caller's model indexes).
fn add_counts(result: &mut BulkWriteResult, kind: WriteKind, counts: &WriteCounts, at: &[usize]) {
    match kind {
        WriteKind::Insert => result.inserted_count += counts.n,
        WriteKind::Update => {
            result.matched_count += counts.matched();
            result.modified_count += counts.n_modified;
            for (i, id) in &counts.upserted {
                if let Some(at) = at.get(*i) {
                    result.upserted_ids.insert(*at, id.clone());
                }
            }
        }
        WriteKind::Delete => result.deleted_count += counts.n,
    }
}

/// The result's last fields: the upserted count, and the inserts that happened — those whose
/// command ran, but not those that failed nor, when an ordered bulk write stopped, those after
/// the failure.
fn finish(
    mut result: BulkWriteResult,
    ids: BTreeMap<usize, Bson>,
    failure: &WriteFailure,
    attempted: &BTreeSet<usize>,
    ordered: bool,
) -> BulkWriteResult {
    result.upserted_count = i64::try_from(result.upserted_ids.len()).unwrap_or(i64::MAX);
    let failed: BTreeSet<i64> = failure.write_errors.iter().map(|e| e.index).collect();
    let first_failure = failed.first().copied();
    result.inserted_ids = ids
        .into_iter()
        .filter(|(i, _)| {
            let ran = attempted.contains(i);
            let i = i64::try_from(*i).unwrap_or(i64::MAX);
            let after_stop = ordered && first_failure.is_some_and(|f| i > f);
            ran && !failed.contains(&i) && !after_stop
        })
        .collect();
    result
}

impl<T> Collection<T> {
    /// Inserts documents (an `_id` generated, first, for each that has none), in as many
    /// commands as the server's limits need. Ordered (the default) stops at the first write
    /// error; unordered inserts every document it can.
    ///
    /// # Errors
    /// No documents (before anything is sent). Write errors and write concern errors come as
    /// one [`ErrorKind::Write`](crate::ErrorKind) with every error, indexed by the document's
    /// position, and the partial result
    /// ([`WriteFailure::partial_result`](crate::error::WriteFailure)); network and
    /// selection errors as they are.
    pub(crate) async fn exec_insert_many(
        &self,
        documents: impl IntoIterator<Item = Document>,
        options: InsertManyOptions,
    ) -> Result<InsertManyResult> {
        let o = options;
        let models: Vec<WriteModel> = documents.into_iter().map(WriteModel::insert_one).collect();
        if models.is_empty() {
            return Err(Error::invalid_argument(
                "insert_many needs at least one document",
            ));
        }
        let options = BulkWriteOptions {
            ordered: o.ordered,
            bypass_document_validation: o.bypass_document_validation,
            comment: o.comment,
            raw_data: o.raw_data,
            ..BulkWriteOptions::default()
        };
        let r = self.exec_bulk_write(models, options).await?;
        Ok(InsertManyResult {
            inserted_ids: r.inserted_ids,
        })
    }

    /// Runs `models` (inserts, updates, replacements, deletes) as `insert`, `update` and
    /// `delete` commands: ordered (the default) in the models' order, stopping at the first
    /// write error; unordered grouped by kind, running every model. Each command's batches
    /// are retryable writes unless it holds an `updateMany` or `deleteMany`.
    ///
    /// # Errors
    /// No models, an invalid update or replacement (before anything is sent). Write errors
    /// and write concern errors come as one [`ErrorKind::Write`](crate::ErrorKind) with
    /// every error, indexed by model, and the partial result; a network, selection or
    /// command error ends the bulk write with that error.
    pub(crate) async fn exec_bulk_write(
        &self,
        models: impl IntoIterator<Item = WriteModel>,
        options: BulkWriteOptions,
    ) -> Result<BulkWriteResult> {
        let o = options;
        let ordered = o.ordered.unwrap_or(true);
        let models: Vec<WriteModel> = models.into_iter().collect();
        if models.is_empty() {
            return Err(Error::invalid_argument(
                "bulk_write needs at least one model",
            ));
        }
        let (statements, ids) = prepare(models)?;
        let groups = group(statements, ordered);

        let mut result = BulkWriteResult::default();
        let mut failure = WriteFailure::default();
        let mut labels = BTreeSet::new();
        let mut stopped = false;
        // The models whose command ran (for the inserted ids).
        let mut attempted: BTreeSet<usize> = BTreeSet::new();
        // One timeoutMS for the whole bulk write, not one per command.
        let client = self.client.with_fixed_deadline();
        for g in groups {
            let extras = match g.kind {
                WriteKind::Insert => write_extras(
                    o.bypass_document_validation,
                    o.comment.clone(),
                    None,
                    o.raw_data,
                ),
                WriteKind::Update => write_extras(
                    o.bypass_document_validation,
                    o.comment.clone(),
                    o.let_vars.clone(),
                    o.raw_data,
                ),
                WriteKind::Delete => {
                    write_extras(None, o.comment.clone(), o.let_vars.clone(), o.raw_data)
                }
            };
            let mut op = WriteBatches::new(&self.db, &self.name, g.kind, g.statements, ordered)
                .with_extras(extras);
            if g.multi {
                op = op.not_retryable();
            }
            loop {
                let error = match client.run_op_mut(&mut op).await {
                    Ok(_) => break,
                    Err(e) => e,
                };
                let Some(batch_failure) = error.write_failure() else {
                    // Not a write's verdict (network, selection, a command error): the bulk
                    // write ends here, with what it had done.
                    add_counts(&mut result, g.kind, op.counts(), &g.indexes);
                    attempted.extend(g.indexes.iter().take(op.done()));
                    let partial = finish(result, ids, &failure, &attempted, ordered);
                    return Err(error.with_bulk_partial(partial));
                };
                let start = op.skip_failed_batch(&batch_failure.counts);
                labels.extend(error.labels().map(str::to_owned));
                for e in &batch_failure.write_errors {
                    let at = usize::try_from(e.index)
                        .ok()
                        .and_then(|i| start.checked_add(i))
                        .and_then(|i| g.indexes.get(i).copied());
                    let mut e: WriteError = e.clone();
                    e.index = at.map_or(e.index, |i| i64::try_from(i).unwrap_or(i64::MAX));
                    failure.write_errors.push(e);
                }
                if failure.write_concern_error.is_none() {
                    failure
                        .write_concern_error
                        .clone_from(&batch_failure.write_concern_error);
                }
                if ordered && !batch_failure.write_errors.is_empty() {
                    stopped = true;
                    break;
                }
                if op.is_finished() {
                    break;
                }
            }
            add_counts(&mut result, g.kind, op.counts(), &g.indexes);
            attempted.extend(g.indexes.iter().copied());
            if stopped {
                break;
            }
        }
        let result = finish(result, ids, &failure, &attempted, ordered);
        if failure.write_errors.is_empty() && failure.write_concern_error.is_none() {
            return Ok(result);
        }
        failure.partial_result = Some(result);
        Err(Error::from_write_failure(failure, labels))
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn kinds(groups: &[Group]) -> Vec<(WriteKind, Vec<usize>)> {
        groups.iter().map(|g| (g.kind, g.indexes.clone())).collect()
    }

    fn models() -> Vec<WriteModel> {
        vec![
            WriteModel::insert_one(doc! {"_id": 1}),
            WriteModel::insert_one(doc! {"_id": 2}),
            WriteModel::update_one(doc! {}, doc! {"$set": {"a": 1}}),
            WriteModel::delete_many(doc! {}),
            WriteModel::insert_one(doc! {}),
            WriteModel::replace_one(doc! {}, doc! {"b": 1}),
        ]
    }

    #[test]
    fn ordered_groups_follow_runs_unordered_ones_kinds() {
        let (statements, ids) = prepare(models()).unwrap();
        assert_eq!(ids.len(), 3);
        assert!(matches!(ids.get(&4), Some(Bson::ObjectId(_))));
        assert_eq!(
            kinds(&group(statements, true)),
            vec![
                (WriteKind::Insert, vec![0, 1]),
                (WriteKind::Update, vec![2]),
                (WriteKind::Delete, vec![3]),
                (WriteKind::Insert, vec![4]),
                (WriteKind::Update, vec![5]),
            ]
        );
        let (statements, _) = prepare(models()).unwrap();
        let groups = group(statements, false);
        assert_eq!(
            kinds(&groups),
            vec![
                (WriteKind::Insert, vec![0, 1, 4]),
                (WriteKind::Update, vec![2, 5]),
                (WriteKind::Delete, vec![3]),
            ]
        );
        // deleteMany makes its command not retryable; the others stay retryable.
        assert_eq!(
            groups.iter().map(|g| g.multi).collect::<Vec<_>>(),
            [false, false, true]
        );
    }

    #[test]
    fn invalid_models_are_refused_before_sending() {
        assert!(prepare(vec![WriteModel::update_one(doc! {}, doc! {"a": 1})]).is_err());
        assert!(
            prepare(vec![WriteModel::replace_one(
                doc! {},
                doc! {"$set": {"a": 1}}
            )])
            .is_err()
        );
    }
}
