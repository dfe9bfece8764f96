//! Writes: `insert`, `update`, `delete`, `findAndModify`, and `getLastError` (which reports
//! the outcome of the connection's last legacy write opcode), with their per-document write
//! errors, and the `arrayFilters` of updates (`$[identifier]` and `$[]` paths). Pipeline
//! updates run through `query/update_pipeline.rs`.

use bson::{Bson, Document, doc};

use super::args::{array_of_docs, coll_arg, name_of, ok, opt_count, opt_doc};
use super::{ConnState, Node};
use crate::error::{CmdResult, CommandError};
use crate::query;
use crate::store::WriteKind;

impl Node {
    pub(super) fn insert(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "insert")?;
        let docs = array_of_docs(cmd, "documents")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        let bypass = bypasses_validation(cmd);
        let ns = format!("{db}.{coll}");
        self.refuse_view(db, coll)?;
        let (n, errors) = self.store.with_coll(db, coll, true, |c| {
            let mut n = 0i32;
            let mut errors = Vec::new();
            if let Some(c) = c {
                for (i, d) in docs.into_iter().enumerate() {
                    let inserted = if bypass { Ok(()) } else { c.validate(d, None) }
                        .and_then(|()| c.insert(&ns, d.clone()));
                    match inserted {
                        Ok(_) => n += 1,
                        Err(e) => {
                            errors.push(write_error(i, &e));
                            if ordered {
                                break;
                            }
                        }
                    }
                }
            }
            (n, errors)
        });
        let mut r = doc! { "n": n };
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    pub(super) fn update(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "update")?;
        let updates = array_of_docs(cmd, "updates")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        self.refuse_view(db, coll)?;
        let ctx = query::QueryCtx::of_command(cmd)?;
        let bypass = bypasses_validation(cmd);
        let ns = format!("{db}.{coll}");
        let mut n = 0i64;
        let mut modified = 0i64;
        let mut upserted = Vec::new();
        let mut errors = Vec::new();
        // mongod parses every update pipeline before any statement runs: an unknown stage
        // fails the command.
        for u in &updates {
            if let Some(Bson::Array(stages)) = u.get("u") {
                query::check_update_pipeline(stages)?;
            }
        }
        for (i, u) in updates.into_iter().enumerate() {
            match self.update_one_spec(db, coll, &ns, u, &ctx, bypass) {
                Ok(res) => {
                    n += res.matched;
                    modified += res.modified;
                    if let Some(id) = res.upserted {
                        n += 1;
                        upserted.push(Bson::Document(
                            doc! { "index": i32::try_from(i).unwrap_or(i32::MAX), "_id": id },
                        ));
                    }
                }
                Err(e) => {
                    errors.push(write_error(i, &e));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut r = doc! { "n": i32::try_from(n).unwrap_or(i32::MAX), "nModified": i32::try_from(modified).unwrap_or(i32::MAX) };
        if !upserted.is_empty() {
            r.insert("upserted", upserted);
        }
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    pub(super) fn update_one_spec(
        &self,
        db: &str,
        coll: &str,
        ns: &str,
        spec: &Document,
        ctx: &query::QueryCtx,
        bypass: bool,
    ) -> CmdResult<UpdateResult> {
        let ctx = &ctx.with_collation(opt_doc(spec, "collation")?)?;
        let empty = Document::new();
        let filter = opt_doc(spec, "q")?.unwrap_or(&empty);
        query::check_filter(filter, query::FilterContext::Query)?;
        let multi = spec.get("multi").is_some_and(query::truthy);
        let upsert = spec.get("upsert").is_some_and(query::truthy);
        let (update, pipeline) = match spec.get("u") {
            Some(Bson::Document(d)) => (d, None),
            Some(Bson::Array(stages)) => (&empty, Some(stages.as_slice())),
            _ => return Err(CommandError::failed_to_parse("update needs 'u'")),
        };
        if multi && pipeline.is_none() && !query::is_operator_update(update) {
            return Err(CommandError::failed_to_parse(
                "multi update is not supported for replacement-style update",
            ));
        }
        let sort = opt_doc(spec, "sort")?.cloned();
        let array_filters = opt_array_filters(spec)?;
        self.store.with_coll(db, coll, true, |c| {
            let Some(c) = c else {
                return Ok(UpdateResult::default());
            };
            let mut positions = c.matching(filter, ctx)?;
            if let Some(sort) = sort.filter(|_| !multi && positions.len() > 1) {
                let mut pairs: Vec<(usize, Document)> = positions
                    .iter()
                    .filter_map(|&p| c.docs.get(p).map(|d| (p, d.clone())))
                    .collect();
                let mut docs: Vec<Document> = pairs.iter().map(|(_, d)| d.clone()).collect();
                query::sort_docs_in(&mut docs, &sort, ctx.collation.as_ref())?;
                if let Some(first) = docs.first() {
                    pairs.retain(|(_, d)| d == first);
                }
                positions = pairs.into_iter().map(|(p, _)| p).take(1).collect();
            }
            if !multi {
                positions.truncate(1);
            }
            if positions.is_empty() {
                if !upsert {
                    return Ok(UpdateResult::default());
                }
                let mut d = query::upsert_seed(filter)?;
                match pipeline {
                    Some(stages) => {
                        query::apply_pipeline_update(&mut d, stages, ctx)?;
                    }
                    None => {
                        query::apply_update(&mut d, update, true)?;
                    }
                }
                if !bypass {
                    c.validate(&d, None)?;
                }
                let id = c.insert(ns, d)?;
                return Ok(UpdateResult {
                    upserted: Some(id),
                    ..UpdateResult::default()
                });
            }
            let mut res = UpdateResult::default();
            for p in positions {
                let Some(mut d) = c.docs.get(p).cloned() else {
                    continue;
                };
                res.matched += 1;
                let old = (!bypass).then(|| d.clone());
                let mut applied = None;
                let changed = match pipeline {
                    Some(stages) => query::apply_pipeline_update(&mut d, stages, ctx)?,
                    None => {
                        let update =
                            applied.insert(expand_array_filters(&d, update, &array_filters)?);
                        query::apply_update(&mut d, update, false)?
                    }
                };
                if changed {
                    if let Some(old) = &old {
                        c.validate(&d, Some(old))?;
                    }
                    let how = match &applied {
                        None => WriteKind::Pipeline,
                        Some(u) if query::is_operator_update(u) => WriteKind::Operators(u),
                        Some(_) => WriteKind::Replacement,
                    };
                    c.replace_at(ns, p, d, how)?;
                    res.modified += 1;
                }
            }
            Ok(res)
        })
    }

    pub(super) fn delete(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "delete")?;
        let deletes = array_of_docs(cmd, "deletes")?;
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        self.refuse_view(db, coll)?;
        let ctx = query::QueryCtx::of_command(cmd)?;
        let mut n = 0usize;
        let mut errors = Vec::new();
        for (i, spec) in deletes.into_iter().enumerate() {
            match self.delete_one_spec(db, coll, spec, &ctx) {
                Ok(k) => n += k,
                Err(e) => {
                    errors.push(write_error(i, &e));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut r = doc! { "n": i32::try_from(n).unwrap_or(i32::MAX) };
        if !errors.is_empty() {
            r.insert("writeErrors", errors);
        }
        Ok(ok(r))
    }

    /// Runs one `deletes` statement (`q`, `limit` 0 or 1) on `db.coll`: the number deleted.
    pub(super) fn delete_one_spec(
        &self,
        db: &str,
        coll: &str,
        spec: &Document,
        ctx: &query::QueryCtx,
    ) -> CmdResult<usize> {
        let empty = Document::new();
        let filter = opt_doc(spec, "q")?.unwrap_or(&empty);
        query::check_filter(filter, query::FilterContext::Query)?;
        let ctx = ctx.with_collation(opt_doc(spec, "collation")?)?;
        let limit = opt_count(spec, "limit")?.unwrap_or(0);
        if limit != 0 && limit != 1 {
            return Err(CommandError::failed_to_parse(
                "The limit field in delete objects must be 0 or 1",
            ));
        }
        self.store.with_coll(db, coll, false, |c| {
            let Some(c) = c else { return Ok(0) };
            let mut pos = c.matching(filter, &ctx)?;
            if limit == 1 {
                pos.truncate(1);
            }
            c.remove_positions(&pos);
            Ok(pos.len())
        })
    }

    pub(super) fn find_and_modify(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, name_of(cmd))?;
        let ns = format!("{db}.{coll}");
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty).clone();
        query::check_filter(&filter, query::FilterContext::Query)?;
        let ctx = query::QueryCtx::of_command(cmd)?;
        let sort = opt_doc(cmd, "sort")?.cloned();
        let remove = cmd.get("remove").is_some_and(query::truthy);
        let want_new = cmd.get("new").is_some_and(query::truthy);
        let upsert = cmd.get("upsert").is_some_and(query::truthy);
        let bypass = bypasses_validation(cmd);
        let fields = opt_doc(cmd, "fields")?.cloned();
        let update = match cmd.get("update") {
            None | Some(Bson::Null) => None,
            Some(Bson::Document(d)) => Some(Change::Update(d.clone())),
            Some(Bson::Array(stages)) => {
                query::check_update_pipeline(stages)?;
                Some(Change::Pipeline(stages.clone()))
            }
            Some(_) => {
                return Err(CommandError::type_mismatch(
                    "'update' must be of type object or array",
                ));
            }
        };
        let array_filters = opt_array_filters(cmd)?;
        if !remove && update.is_none() {
            return Err(CommandError::failed_to_parse(
                "Either an update or remove=true must be specified",
            ));
        }
        self.refuse_view(db, coll)?;
        let (value, last_error) = self.store.with_coll(
            db,
            coll,
            true,
            |c| -> CmdResult<(Option<Document>, Document)> {
                let Some(c) = c else {
                    return Ok((None, Document::new()));
                };
                let positions = c.matching(&filter, &ctx)?;
                let mut candidates: Vec<(usize, Document)> = positions
                    .iter()
                    .filter_map(|&p| c.docs.get(p).map(|d| (p, d.clone())))
                    .collect();
                if let Some(sort) = &sort {
                    let mut docs: Vec<Document> =
                        candidates.iter().map(|(_, d)| d.clone()).collect();
                    query::sort_docs_in(&mut docs, sort, ctx.collation.as_ref())?;
                    if let Some(first) = docs.into_iter().next() {
                        candidates.retain(|(_, d)| *d == first);
                    }
                }
                let target = candidates.into_iter().next();
                // The change made, and the operator update applied (with concrete paths).
                let change = |d: &mut Document, is_insert: bool| -> CmdResult<Option<Document>> {
                    match update.as_ref() {
                        Some(Change::Update(u)) if is_insert => {
                            query::apply_update(d, u, true)?;
                            Ok(None)
                        }
                        Some(Change::Update(u)) => {
                            let u = expand_array_filters(d, u, &array_filters)?;
                            query::apply_update(d, &u, false)?;
                            Ok(Some(u))
                        }
                        Some(Change::Pipeline(stages)) => {
                            query::apply_pipeline_update(d, stages, &ctx)?;
                            Ok(None)
                        }
                        None => Err(CommandError::failed_to_parse("missing update")),
                    }
                };
                match (target, remove) {
                    (Some((p, d)), true) => {
                        c.remove_positions(&[p]);
                        Ok((Some(d), doc! { "n": 1 }))
                    }
                    (None, true) => Ok((None, doc! { "n": 0 })),
                    (Some((p, d)), false) => {
                        let mut new = d.clone();
                        let applied = change(&mut new, false)?;
                        if !bypass {
                            c.validate(&new, Some(&d))?;
                        }
                        let how = match &applied {
                            None => WriteKind::Pipeline,
                            Some(u) if query::is_operator_update(u) => WriteKind::Operators(u),
                            Some(_) => WriteKind::Replacement,
                        };
                        c.replace_at(&ns, p, new.clone(), how)?;
                        Ok((
                            Some(if want_new { new } else { d }),
                            doc! { "n": 1, "updatedExisting": true },
                        ))
                    }
                    (None, false) if upsert => {
                        let mut d = query::upsert_seed(&filter)?;
                        change(&mut d, true)?;
                        if !bypass {
                            c.validate(&d, None)?;
                        }
                        let id = c.insert(&ns, d.clone())?;
                        let stored = c.docs.last().cloned().unwrap_or(d);
                        Ok((
                            if want_new { Some(stored) } else { None },
                            doc! { "n": 1, "updatedExisting": false, "upserted": id },
                        ))
                    }
                    (None, false) => Ok((None, doc! { "n": 0, "updatedExisting": false })),
                }
            },
        )?;
        let value = match (value, fields) {
            (Some(v), Some(f)) => Bson::Document(query::project_in(&v, &f, &ctx)?),
            (Some(v), None) => Bson::Document(v),
            (None, _) => Bson::Null,
        };
        Ok(ok(doc! { "lastErrorObject": last_error, "value": value }))
    }
}

/// What a findAndModify does to the document it finds: an update (operators or a
/// replacement) or an update pipeline.
enum Change {
    Update(Document),
    Pipeline(Vec<Bson>),
}

/// Whether a write command asks to skip document validation.
pub(super) fn bypasses_validation(cmd: &Document) -> bool {
    cmd.get("bypassDocumentValidation")
        .is_some_and(query::truthy)
}

/// `getLastError`: the outcome of the last legacy write on this connection.
pub(super) fn get_last_error(conn: &ConnState) -> Document {
    ok(conn
        .last_error
        .clone()
        .unwrap_or_else(|| doc! { "n": 0, "err": Bson::Null }))
}

/// What one update statement did.
#[derive(Debug, Default)]
pub(super) struct UpdateResult {
    pub(super) matched: i64,
    pub(super) modified: i64,
    pub(super) upserted: Option<Bson>,
}

/// A write error: the statement's index, the error's code and message and its further
/// fields (a duplicate key's `keyPattern` / `keyValue`, a validation failure's `errInfo`).
fn write_error(index: usize, e: &CommandError) -> Bson {
    let mut d = doc! {
        "index": i32::try_from(index).unwrap_or(i32::MAX),
        "code": e.code,
        "errmsg": e.errmsg.clone(),
    };
    if let Some(info) = &e.info {
        d.extend((**info).clone());
    }
    Bson::Document(d)
}

/// The `arrayFilters` of an update statement or a findAndModify (absent: none).
fn opt_array_filters(spec: &Document) -> CmdResult<Vec<Document>> {
    match spec.get("arrayFilters") {
        None | Some(Bson::Null) => Ok(Vec::new()),
        Some(Bson::Array(a)) => a
            .iter()
            .map(|f| {
                f.as_document().cloned().ok_or_else(|| {
                    CommandError::type_mismatch("arrayFilters entries must be documents")
                })
            })
            .collect(),
        Some(_) => Err(CommandError::type_mismatch("arrayFilters must be an array")),
    }
}

/// Rewrites the `$[identifier]` and `$[]` paths of an operator update into the concrete
/// paths of `doc`'s array elements that the filters select (`a.$[e].x` → `a.0.x`, `a.2.x`).
fn expand_array_filters(
    doc: &Document,
    update: &Document,
    filters: &[Document],
) -> CmdResult<Document> {
    if !update.values().any(|f| {
        f.as_document()
            .is_some_and(|f| f.keys().any(|k| k.contains("$[")))
    }) {
        return Ok(update.clone());
    }
    let root = Bson::Document(doc.clone());
    let mut out = Document::new();
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            out.insert(op.clone(), fields.clone());
            continue;
        };
        let mut concrete = Document::new();
        for (path, arg) in fields {
            if path.contains("$[") {
                let parts: Vec<&str> = path.split('.').collect();
                for p in concrete_paths(&root, &parts, filters)? {
                    concrete.insert(p, arg.clone());
                }
            } else {
                concrete.insert(path.clone(), arg.clone());
            }
        }
        out.insert(op.clone(), concrete);
    }
    Ok(out)
}

/// The concrete paths below `value` that `parts` (with `$[…]` segments) designate.
fn concrete_paths(value: &Bson, parts: &[&str], filters: &[Document]) -> CmdResult<Vec<String>> {
    let Some((first, rest)) = parts.split_first() else {
        return Ok(vec![String::new()]);
    };
    let join = |head: String, tail: String| {
        if tail.is_empty() {
            head
        } else {
            format!("{head}.{tail}")
        }
    };
    if let Some(id) = first.strip_prefix("$[").and_then(|s| s.strip_suffix(']')) {
        let Bson::Array(items) = value else {
            return Err(CommandError::bad_value(format!(
                "cannot apply array updates to a non-array element at {first}"
            )));
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if id.is_empty() || element_selected(item, id, filters)? {
                for tail in concrete_paths(item, rest, filters)? {
                    out.push(join(i.to_string(), tail));
                }
            }
        }
        return Ok(out);
    }
    let child = match value {
        Bson::Document(d) => d.get(*first),
        Bson::Array(a) => first.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    };
    match child {
        Some(c) => Ok(concrete_paths(c, rest, filters)?
            .into_iter()
            .map(|t| join((*first).to_owned(), t))
            .collect()),
        // Nothing there: a plain path is created; no element to select below it.
        None if parts.iter().any(|p| p.starts_with("$[")) => Ok(Vec::new()),
        None => Ok(vec![parts.join(".")]),
    }
}

/// Whether the array filter of `id` selects `item`.
fn element_selected(item: &Bson, id: &str, filters: &[Document]) -> CmdResult<bool> {
    let prefix = format!("{id}.");
    let filter = filters
        .iter()
        .find(|f| f.keys().any(|k| k == id || k.starts_with(&prefix)))
        .ok_or_else(|| {
            CommandError::failed_to_parse(format!("No array filter found for identifier '{id}'"))
        })?;
    query::matches(&doc! { id: item.clone() }, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_filters_select_elements() {
        let d = doc! { "a": [ { "x": 1 }, { "x": 5 }, { "x": 7 } ], "b": [1, 2] };
        let u = doc! { "$set": { "a.$[e].y": true, "b.$[]": 0, "c": 1 } };
        let out = expand_array_filters(&d, &u, &[doc! { "e.x": { "$gt": 2 } }]).unwrap();
        assert_eq!(
            out,
            doc! { "$set": { "a.1.y": true, "a.2.y": true, "b.0": 0, "b.1": 0, "c": 1 } }
        );
        assert!(expand_array_filters(&d, &doc! { "$set": { "a.$[z]": 1 } }, &[]).is_err());
        let plain = doc! { "$inc": { "n": 1 } };
        assert_eq!(expand_array_filters(&d, &plain, &[]).unwrap(), plain);
    }
}
