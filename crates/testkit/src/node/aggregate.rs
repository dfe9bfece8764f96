//! `aggregate`: the pipeline's source (a collection's documents, or a first stage that reads
//! server state: `$documents`, `$collStats`, `$listLocalSessions`), the stages of
//! `query/aggregate.rs`, and a final `$out` or `$merge`. A first `$changeStream` stage opens a
//! change stream (`change_stream.rs`).

use bson::{Bson, Document, doc};

use super::args::{non_negative, opt_doc};
use super::reads::DEFAULT_BATCH;
use super::{ConnState, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::query;
use crate::store::WriteKind;

/// InvalidNamespace: a source stage on the wrong kind of namespace.
const INVALID_NAMESPACE: i32 = 73;

impl Node {
    pub(super) fn aggregate(
        &self,
        db: &str,
        cmd: &Document,
        conn: &ConnState,
    ) -> CmdResult<Document> {
        let Some(Bson::Array(pipeline)) = cmd.get("pipeline") else {
            return Err(CommandError::type_mismatch("'pipeline' must be an array"));
        };
        let coll = match cmd.get("aggregate") {
            Some(Bson::String(coll)) => Some(coll.as_str()),
            Some(Bson::Int32(1)) | Some(Bson::Int64(1)) => None,
            _ => {
                return Err(CommandError::type_mismatch(
                    "aggregate needs a collection name or 1",
                ));
            }
        };
        let ns = match coll {
            Some(c) => format!("{db}.{c}"),
            None => format!("{db}.$cmd.aggregate"),
        };
        let first = match pipeline.first() {
            Some(Bson::Document(d)) => d.iter().next(),
            _ => None,
        };
        if let Some(("$changeStream", arg)) = first.map(|(n, a)| (n.as_str(), a)) {
            return self.change_stream(db, coll, arg, pipeline.get(1..).unwrap_or_default(), cmd);
        }
        if pipeline.iter().any(|s| {
            s.as_document()
                .is_some_and(|d| d.contains_key("$changeStream"))
        }) {
            return Err(super::change_stream::not_first());
        }
        let mut stages: &[Bson] = pipeline;
        let ctx = query::QueryCtx::of_command(cmd)?;
        let docs = match (first, coll) {
            (Some((name, arg)), _) if is_source_stage(name) => {
                stages = stages.get(1..).unwrap_or_default();
                self.source_stage(db, coll, name, arg, conn)?
            }
            (_, Some(coll)) => self.filtered(db, coll, &Document::new(), &ctx)?,
            (first, None) => {
                let what = first.map_or_else(
                    || "an empty pipeline".to_string(),
                    |(n, _)| format!("'{n}'"),
                );
                return Err(CommandError::new(
                    INVALID_NAMESPACE,
                    "InvalidNamespace",
                    format!("{{aggregate: 1}} is not valid for {what}; a collection is required."),
                ));
            }
        };
        // A final `$out` (a collection name) replaces that collection with the results; a
        // final `$merge` merges them into one.
        let out = match stages.last() {
            Some(Bson::Document(d)) if d.contains_key("$out") => match d.get("$out") {
                Some(Bson::String(target)) => Some(target.clone()),
                _ => return Err(CommandError::bad_value("$out needs a collection name")),
            },
            _ => None,
        };
        let merge = match stages.last() {
            Some(Bson::Document(d)) => match d.get("$merge") {
                Some(spec) => Some(MergeSpec::parse(db, spec)?),
                None => None,
            },
            _ => None,
        };
        if out.is_some() || merge.is_some() {
            stages = stages
                .get(..stages.len().saturating_sub(1))
                .unwrap_or_default();
        }
        if (out.is_some() || merge.is_some())
            && cmd
                .get_document("readConcern")
                .is_ok_and(|rc| rc.get_str("level").is_ok_and(|l| l == "linearizable"))
        {
            let stage = if out.is_some() { "$out" } else { "$merge" };
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                format!("{stage} cannot be used with a 'linearizable' read concern level"),
            ));
        }
        let docs = query::run_pipeline_in(docs, stages, &ctx)?;
        let batch = match opt_doc(cmd, "cursor")? {
            Some(c) => non_negative(c, "batchSize")?.unwrap_or(DEFAULT_BATCH),
            None => {
                return Err(CommandError::failed_to_parse(
                    "The 'cursor' option is required, except for aggregate with the explain argument",
                ));
            }
        };
        if let Some(m) = merge {
            self.merge_into(&m, docs)?;
            return Ok(self.open_cursor(ns, Vec::new(), batch, false));
        }
        if let Some(target) = out {
            self.store.drop_collection(db, &target);
            let ns = format!("{db}.{target}");
            self.store.with_coll(db, &target, true, |c| {
                let Some(c) = c else { return Ok(()) };
                for d in docs {
                    c.insert(&ns, d)?;
                }
                Ok::<(), CommandError>(())
            })?;
            return Ok(self.open_cursor(ns, Vec::new(), batch, false));
        }
        Ok(self.open_cursor(ns, docs, batch, false))
    }

    /// The documents a first stage that reads server state produces.
    fn source_stage(
        &self,
        db: &str,
        coll: Option<&str>,
        name: &str,
        arg: &Bson,
        conn: &ConnState,
    ) -> CmdResult<Vec<Document>> {
        match (name, coll) {
            ("$documents", None) => documents(arg),
            ("$listLocalSessions", None) => self.local_sessions.list(arg, conn),
            ("$collStats", Some(coll)) => self.coll_stats(db, coll, arg).map(|d| vec![d]),
            ("$collStats", None) => Err(CommandError::new(
                INVALID_NAMESPACE,
                "InvalidNamespace",
                "$collStats must be run against a collection namespace",
            )),
            (_, _) => Err(CommandError::new(
                INVALID_NAMESPACE,
                "InvalidNamespace",
                format!(
                    "{name} must be run against the database with {{aggregate: 1}}, not a collection"
                ),
            )),
        }
    }

    /// `$collStats` with `storageStats` and `count` (the testkit keeps no latency or query
    /// statistics, and refuses to report made-up ones). There is no disk: `storageSize` is the
    /// data size and the index sizes are 0.
    fn coll_stats(&self, db: &str, coll: &str, arg: &Bson) -> CmdResult<Document> {
        let Bson::Document(spec) = arg else {
            return Err(CommandError::type_mismatch(
                "$collStats must take a nested object but found: a non-object",
            ));
        };
        let mut out = doc! {
            "ns": format!("{db}.{coll}"),
            "host": self.address.lock().clone(),
            "localTime": super::args::now(),
        };
        let stats = self.store.with_coll(db, coll, false, |c| {
            c.map(|c| {
                let size: usize = c
                    .docs
                    .iter()
                    .map(|d| d.to_vec().map(|v| v.len()).unwrap_or(0))
                    .sum();
                (c.docs.len(), size, c.options.clone(), c.indexes.clone())
            })
        });
        for (k, v) in spec {
            match k.as_str() {
                "storageStats" => {
                    if !matches!(v, Bson::Document(_)) {
                        return Err(CommandError::type_mismatch(
                            "storageStats must be an object",
                        ));
                    }
                    let Some((count, size, options, indexes)) = &stats else {
                        return Err(CommandError::new(
                            codes::NAMESPACE_NOT_FOUND,
                            "NamespaceNotFound",
                            format!("Collection [{db}.{coll}] not found."),
                        ));
                    };
                    out.insert(
                        "storageStats",
                        storage_stats(*count, *size, options, indexes),
                    );
                }
                "count" => {
                    let n = stats.as_ref().map_or(0, |s| s.0);
                    out.insert("count", i64::try_from(n).unwrap_or(i64::MAX));
                }
                other => {
                    return Err(CommandError::bad_value(format!(
                        "the testkit's $collStats does not report '{other}'"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Stages that must come first and produce the pipeline's input themselves.
fn is_source_stage(name: &str) -> bool {
    matches!(name, "$documents" | "$collStats" | "$listLocalSessions")
}

fn documents(arg: &Bson) -> CmdResult<Vec<Document>> {
    let Bson::Array(items) = arg else {
        return Err(CommandError::type_mismatch("$documents needs an array"));
    };
    items
        .iter()
        .map(|d| {
            d.as_document()
                .cloned()
                .ok_or_else(|| CommandError::type_mismatch("$documents entries must be objects"))
        })
        .collect()
}

fn storage_stats(count: usize, size: usize, options: &Document, indexes: &[Document]) -> Document {
    let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let avg = size.checked_div(count).unwrap_or(0);
    let capped = options.get("capped").is_some_and(query::truthy);
    let mut d = doc! {
        "size": int(size),
        "count": int(count),
        "avgObjSize": int(avg),
        "numOrphanDocs": 0_i64,
        "storageSize": int(size),
        "freeStorageSize": 0_i64,
        "capped": capped,
    };
    if capped {
        if let Some(max) = options.get("max") {
            d.insert("max", max.clone());
        }
        if let Some(max_size) = options.get("size") {
            d.insert("maxSize", max_size.clone());
        }
    }
    let mut index_sizes = Document::new();
    for ix in indexes {
        if let Ok(name) = ix.get_str("name") {
            index_sizes.insert(name, 0_i64);
        }
    }
    d.insert("nindexes", int(indexes.len()));
    d.insert("indexBuilds", Vec::<Bson>::new());
    d.insert("totalIndexSize", 0_i64);
    d.insert("totalSize", int(size));
    d.insert("indexSizes", index_sizes);
    d.insert("scaleFactor", 1_i64);
    d
}

/// A `$merge` stage: the target and what to do with matched and unmatched documents (matched
/// on `_id`, the default `on`; other `on` fields are refused).
struct MergeSpec {
    db: String,
    coll: String,
    when_matched: String,
    when_not_matched: String,
}

impl MergeSpec {
    fn parse(db: &str, spec: &Bson) -> CmdResult<MergeSpec> {
        let mut m = MergeSpec {
            db: db.to_owned(),
            coll: String::new(),
            when_matched: "merge".into(),
            when_not_matched: "insert".into(),
        };
        match spec {
            Bson::String(c) => m.coll = c.clone(),
            Bson::Document(d) => {
                for (k, v) in d {
                    match (k.as_str(), v) {
                        ("into", Bson::String(c)) => m.coll = c.clone(),
                        ("into", Bson::Document(t)) => {
                            if let Ok(d) = t.get_str("db") {
                                m.db = d.to_owned();
                            }
                            m.coll = t.get_str("coll").unwrap_or_default().to_owned();
                        }
                        ("on", Bson::String(f)) if f == "_id" => {}
                        ("on", other) => {
                            return Err(CommandError::bad_value(format!(
                                "$merge on {other}: the testkit matches on _id only"
                            )));
                        }
                        ("whenMatched", Bson::String(w))
                            if matches!(
                                w.as_str(),
                                "merge" | "replace" | "keepExisting" | "fail"
                            ) =>
                        {
                            m.when_matched = w.clone();
                        }
                        ("whenNotMatched", Bson::String(w))
                            if matches!(w.as_str(), "insert" | "discard" | "fail") =>
                        {
                            m.when_not_matched = w.clone();
                        }
                        (other, v) => {
                            return Err(CommandError::bad_value(format!(
                                "$merge: unsupported option {other}: {v}"
                            )));
                        }
                    }
                }
            }
            _ => {
                return Err(CommandError::type_mismatch(
                    "$merge needs a collection or an object",
                ));
            }
        }
        if m.coll.is_empty() {
            return Err(CommandError::failed_to_parse(
                "$merge needs a target collection ('into')",
            ));
        }
        Ok(m)
    }
}

impl Node {
    /// Applies a `$merge` stage's results to its target collection.
    fn merge_into(&self, m: &MergeSpec, docs: Vec<Document>) -> CmdResult<()> {
        let ns = format!("{}.{}", m.db, m.coll);
        self.store.with_coll(&m.db, &m.coll, true, |c| {
            let Some(c) = c else { return Ok(()) };
            for d in docs {
                let id = d.get("_id").cloned();
                let pos = id
                    .as_ref()
                    .and_then(|id| c.docs.iter().position(|e| e.get("_id") == Some(id)));
                match (pos, m.when_matched.as_str(), m.when_not_matched.as_str()) {
                    (Some(i), "merge", _) => {
                        if let Some(mut merged) = c.docs.get(i).cloned() {
                            for (k, v) in d {
                                merged.insert(k, v);
                            }
                            c.replace_at(&ns, i, merged, WriteKind::Pipeline)?;
                        }
                    }
                    (Some(i), "replace", _) => {
                        c.replace_at(&ns, i, d, WriteKind::Replacement)?;
                    }
                    (Some(_), "keepExisting", _) => {}
                    (Some(_), _, _) => {
                        // whenMatched: fail inserts, and the `_id` index refuses it.
                        return Err(crate::store::duplicate_key(&ns, &id.unwrap_or(Bson::Null)));
                    }
                    (None, _, "insert") => {
                        c.insert(&ns, d)?;
                    }
                    (None, _, "discard") => {}
                    (None, _, _) => {
                        return Err(CommandError::new(
                            13113,
                            "MergeStageNoMatchingDocument",
                            "$merge could not find a matching document in the target collection",
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}
