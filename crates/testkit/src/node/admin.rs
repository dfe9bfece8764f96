//! Administration: databases, collections and indexes (`listDatabases`, `listCollections`,
//! `listIndexes`, `createIndexes`, `dropIndexes`, `create`, `collMod`, `drop`,
//! `dropDatabase`, `renameCollection`), the replica-set commands (`replSetStepDown`, `replSetFreeze`,
//! `replSetGetStatus`), the mongos commands (`shardCollection`, `enableSharding`,
//! `checkMetadataConsistency`),
//! `serverStatus`, `getParameter` / `setParameter`, `whatsmyuri` and the testing command
//! `configureFailPoint`.

use std::time::Duration;

use bson::{Bson, Document, doc};

use super::Node;
use super::args::{array_of_docs, coll_arg, non_negative, now, ok, opt_count, opt_doc};
use crate::error::{CmdResult, CommandError, codes};
use crate::oplog::Op;
use crate::options::ServerOptions;
use crate::query;

impl Node {
    pub(super) fn list_databases(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        if db != "admin" {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                "listDatabases may only be run against the admin database.",
            ));
        }
        let name_only = cmd.get("nameOnly").is_some_and(query::truthy);
        let filter = opt_doc(cmd, "filter")?.cloned();
        if let Some(f) = &filter {
            query::check_filter(f, query::FilterContext::NoWhere)?;
        }
        let mut total = 0i64;
        let mut out = Vec::new();
        for (name, size) in self.store.database_sizes() {
            let entry = if name_only {
                doc! { "name": name }
            } else {
                doc! { "name": name, "sizeOnDisk": size, "empty": size == 0 }
            };
            if let Some(f) = &filter {
                if !query::matches(&entry, f)? {
                    continue;
                }
            }
            total += size;
            out.push(Bson::Document(entry));
        }
        let mut r = doc! { "databases": out };
        if !name_only {
            r.insert("totalSize", total);
        }
        Ok(ok(r))
    }

    pub(super) fn list_collections(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let name_only = cmd.get("nameOnly").is_some_and(query::truthy);
        let filter = opt_doc(cmd, "filter")?.cloned();
        if let Some(f) = &filter {
            query::check_filter(f, query::FilterContext::NoWhere)?;
        }
        let mut out = Vec::new();
        for name in self.store.collection_names(db) {
            // A view (`create` with `viewOn`) is read-only and has no `_id` index.
            let view = self.view_of(db, &name).is_some();
            let kind = if view { "view" } else { "collection" };
            let entry = if name_only {
                doc! { "name": name, "type": kind }
            } else {
                let mut entry = doc! {
                    "name": name.clone(),
                    "type": kind,
                    "options": self.store.with_coll(db, &name, false, |c| {
                        c.map(|c| c.options.clone()).unwrap_or_default()
                    }),
                    "info": { "readOnly": view },
                };
                if !view {
                    entry.insert(
                        "idIndex",
                        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    );
                }
                entry
            };
            if let Some(f) = &filter {
                if !query::matches(&entry, f)? {
                    continue;
                }
            }
            out.push(entry);
        }
        let batch = opt_doc(cmd, "cursor")?
            .map(|c| non_negative(c, "batchSize"))
            .transpose()?
            .flatten()
            .unwrap_or(usize::MAX);
        Ok(self.open_cursor(format!("{db}.$cmd.listCollections"), out, batch, false))
    }

    pub(super) fn list_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "listIndexes")?;
        let indexes = self
            .store
            .with_coll(db, coll, false, |c| c.map(|c| c.indexes.clone()))
            .ok_or_else(|| {
                CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("ns does not exist: {db}.{coll}"),
                )
            })?;
        let batch = opt_doc(cmd, "cursor")?
            .map(|c| non_negative(c, "batchSize"))
            .transpose()?
            .flatten()
            .unwrap_or(usize::MAX);
        Ok(self.open_cursor(format!("{db}.{coll}"), indexes, batch, false))
    }

    pub(super) fn create_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "createIndexes")?;
        let specs = array_of_docs(cmd, "indexes")?;
        let ns = format!("{db}.{coll}");
        let (before, after) = self.store.with_coll(db, coll, true, |c| {
            let Some(c) = c else { return (0, 0) };
            let before = c.indexes.len();
            let mut built = Vec::new();
            for s in specs {
                let name = s.get_str("name").unwrap_or_default();
                if !c
                    .indexes
                    .iter()
                    .any(|i| i.get_str("name").ok() == Some(name))
                {
                    let mut spec = doc! { "v": 2 };
                    spec.extend(s.clone());
                    built.push(spec.clone());
                    spec.insert("ns", ns.clone());
                    c.indexes.push(spec);
                }
            }
            if !built.is_empty() {
                c.record(Op::CreateIndexes { indexes: built });
            }
            (before, c.indexes.len())
        });
        Ok(ok(doc! {
            "numIndexesBefore": i32::try_from(before).unwrap_or(0),
            "numIndexesAfter": i32::try_from(after).unwrap_or(0),
            "createdCollectionAutomatically": before == 0,
        }))
    }

    pub(super) fn drop_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "dropIndexes")?;
        let which = cmd.get("index").cloned();
        let n = self.store.with_coll(db, coll, false, |c| {
            let Some(c) = c else {
                return Err(CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("ns not found {db}.{coll}"),
                ));
            };
            let n = c.indexes.len();
            let before = c.indexes.clone();
            match which {
                Some(Bson::String(s)) if s == "*" => {
                    c.indexes.retain(|i| i.get_str("name").ok() == Some("_id_"))
                }
                Some(Bson::String(s)) => {
                    if !c
                        .indexes
                        .iter()
                        .any(|i| i.get_str("name").ok() == Some(s.as_str()))
                    {
                        return Err(CommandError::new(
                            27,
                            "IndexNotFound",
                            format!("index not found with name [{s}]"),
                        ));
                    }
                    c.indexes
                        .retain(|i| i.get_str("name").ok() != Some(s.as_str()));
                }
                _ => {}
            }
            let dropped: Vec<Document> = before
                .into_iter()
                .filter(|i| !c.indexes.contains(i))
                .map(|mut i| {
                    i.remove("ns");
                    i
                })
                .collect();
            if !dropped.is_empty() {
                c.record(Op::DropIndexes { indexes: dropped });
            }
            Ok(n)
        })?;
        Ok(ok(doc! { "nIndexesWas": i32::try_from(n).unwrap_or(0) }))
    }

    /// `create`: an empty collection; its options are kept for `listCollections`.
    pub(super) fn create_collection(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "create")?;
        let options: Document = cmd
            .iter()
            .skip(1)
            .filter(|(k, _)| !is_generic_argument(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.store.create(db, coll, options)?;
        Ok(ok(Document::new()))
    }

    /// `collMod`: accepted for an existing collection (options are merged, nothing enforced).
    pub(super) fn coll_mod(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "collMod")?;
        let changes: Vec<(String, Bson)> = cmd
            .iter()
            .skip(1)
            .filter(|(k, _)| !is_generic_argument(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.store
            .with_coll(db, coll, false, |c| {
                c.map(|c| {
                    let before = c.options.clone();
                    let mut described = Document::new();
                    for (k, v) in changes {
                        described.insert(k.clone(), v.clone());
                        c.options.insert(k, v);
                    }
                    c.record(Op::Modify {
                        changes: described,
                        before,
                    });
                })
            })
            .ok_or_else(|| {
                CommandError::new(
                    codes::NAMESPACE_NOT_FOUND,
                    "NamespaceNotFound",
                    format!("ns does not exist: {db}.{coll}"),
                )
            })?;
        Ok(ok(Document::new()))
    }

    /// `drop`: a collection (dropping a missing one is not an error).
    pub(super) fn drop_collection(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "drop")?;
        let n = self.store.drop_collection(db, coll).unwrap_or(0);
        Ok(ok(doc! {
            "nIndexesWas": i32::try_from(n).unwrap_or(0),
            "ns": format!("{db}.{coll}"),
        }))
    }

    /// `renameCollection: "db.from", to: "db.to"` (on admin), with `dropTarget`.
    pub(super) fn rename_collection(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, "renameCollection")?;
        let split = |key: &str| -> CmdResult<(String, String)> {
            let ns = cmd.get_str(key).map_err(|_| {
                CommandError::type_mismatch(format!("'{key}' must be of type string"))
            })?;
            match ns.split_once('.') {
                Some((d, c)) if !d.is_empty() && !c.is_empty() => Ok((d.to_owned(), c.to_owned())),
                _ => Err(CommandError::new(
                    73,
                    "InvalidNamespace",
                    format!("Invalid {key} namespace: {ns}"),
                )),
            }
        };
        let from = split("renameCollection")?;
        let to = split("to")?;
        let drop_target = cmd.get("dropTarget").is_some_and(query::truthy);
        self.refuse_view(&from.0, &from.1)?;
        self.store
            .rename_collection((&from.0, &from.1), (&to.0, &to.1), drop_target)?;
        Ok(ok(Document::new()))
    }

    /// `dropDatabase`.
    pub(super) fn drop_database(&self, db: &str) -> Document {
        self.store.drop_database(db);
        ok(doc! { "dropped": db })
    }

    /// `replSetStepDown: <stepDownSecs>`: another member becomes primary; this one may not
    /// be elected again for `stepDownSecs` (default 60).
    pub(super) fn repl_set_step_down(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, "replSetStepDown")?;
        let secs = match cmd.get("replSetStepDown") {
            Some(Bson::Boolean(_)) | None => 60,
            Some(_) => opt_count(cmd, "replSetStepDown")?.unwrap_or(60),
        };
        let catch_up = opt_count(cmd, "secondaryCatchUpPeriodSecs")?.unwrap_or(10);
        if secs <= 0 {
            return Err(CommandError::bad_value(
                "stepdown period must be a positive integer",
            ));
        }
        if catch_up > secs {
            return Err(CommandError::bad_value(
                "stepdown period must be longer than secondaryCatchUpPeriodSecs",
            ));
        }
        let freeze = Duration::from_secs(u64::try_from(secs).unwrap_or(60));
        let new = self.topology.step_down(self.member, freeze)?;
        self.store.repl.promote(&self.store, new, Some(self.member));
        tracing::debug!(old = self.member, new, "replSetStepDown");
        Ok(ok(Document::new()))
    }

    /// `replSetFreeze: <secs>`: this secondary may not become primary for `secs` (0 lifts it).
    pub(super) fn repl_set_freeze(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, "replSetFreeze")?;
        let secs = opt_count(cmd, "replSetFreeze")?.unwrap_or(0);
        self.topology
            .freeze(self.member, u64::try_from(secs).unwrap_or(0))?;
        let mut r = Document::new();
        if secs == 0 {
            r.insert("info", "unfreezing");
        }
        Ok(ok(r))
    }

    /// `shardCollection` / `enableSharding` on a mongos: accepted (data is not split).
    pub(super) fn shard_collection(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, super::args::name_of(cmd))?;
        let ns = match cmd.iter().next() {
            Some((_, Bson::String(ns))) => ns.clone(),
            _ => return Err(CommandError::type_mismatch("expected a namespace")),
        };
        if super::args::name_of(cmd) == "enableSharding" {
            return Ok(ok(Document::new()));
        }
        if !ns.contains('.') {
            return Err(CommandError::new(
                73,
                "InvalidNamespace",
                format!("Invalid namespace specified '{ns}'"),
            ));
        }
        if let Some((d, c)) = ns.split_once('.') {
            let key = opt_doc(cmd, "key")?.cloned().unwrap_or_default();
            let unique = cmd.get("unique").is_some_and(query::truthy);
            self.store.with_coll(d, c, true, |coll| {
                if let Some(coll) = coll {
                    coll.shard_key = Some(key.clone());
                    coll.record(Op::ShardCollection {
                        description: doc! {
                            "shardKey": key,
                            "unique": unique,
                            "presplitHashedZones": false,
                        },
                    });
                }
            });
        }
        Ok(ok(doc! { "collectionsharded": ns }))
    }

    /// `checkMetadataConsistency` on a mongos (7.0+): a cursor over the inconsistencies found,
    /// none here (one store, nothing split), in mongos's `db.$cmd.aggregate` namespace.
    pub(super) fn check_metadata_consistency(&self, db: &str) -> Document {
        ok(
            doc! { "cursor": { "firstBatch": [], "id": 0_i64, "ns": format!("{db}.$cmd.aggregate") } },
        )
    }

    pub(super) fn repl_set_get_status(&self) -> CmdResult<Document> {
        let rs = self.topology.rs().ok_or_else(|| {
            CommandError::new(76, "NoReplicationEnabled", "not running with --replSet")
        })?;
        let members: Vec<Bson> = rs
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let primary = rs.primary == Some(i);
                let up = rs.running.get(i).copied().unwrap_or(false);
                Bson::Document(doc! {
                    "_id": i32::try_from(i).unwrap_or(0),
                    "name": h.clone(),
                    "health": if up { 1.0 } else { 0.0 },
                    "stateStr": if !up { "(not reachable/healthy)" } else if primary { "PRIMARY" } else { "SECONDARY" },
                    "self": i == self.member,
                })
            })
            .collect();
        Ok(ok(
            doc! { "set": rs.name, "members": members, "term": rs.term },
        ))
    }

    /// `serverStatus`: host, version and the server's clock.
    pub(super) fn server_status(&self) -> Document {
        ok(doc! {
            "host": self.address.lock().clone(),
            "version": self.opts.version.clone(),
            "process": "mongo-testkit",
            "localTime": now(),
            "storageEngine": {
                "name": self.opts.storage_engine.clone(),
                "supportsCommittedReads": true,
                "persistent": false,
            },
        })
    }

    /// `configureFailPoint`, on the admin database only, when test commands are enabled.
    pub(super) fn configure_fail_point(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        if !matches!(
            self.parameter("enableTestCommands"),
            Some(Bson::Boolean(true))
        ) {
            return Err(CommandError::new(
                codes::COMMAND_NOT_FOUND,
                "CommandNotFound",
                "no such command: 'configureFailPoint'",
            ));
        }
        admin_only(db, "configureFailPoint")?;
        self.fail_points.configure(cmd)
    }

    /// `getParameter`: `{getParameter: 1, <name>: 1, ...}` or `{getParameter: "*"}`.
    pub(super) fn get_parameter(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, "getParameter")?;
        let params = self.parameters.lock().clone();
        let all = matches!(cmd.get("getParameter"), Some(Bson::String(s)) if s == "*")
            || cmd
                .get_document("getParameter")
                .is_ok_and(|d| d.get("allParameters").is_some_and(query::truthy));
        let mut out = Document::new();
        for (k, v) in &params {
            if all || (cmd.contains_key(k) && !is_generic_argument(k)) {
                out.insert(k.clone(), v.clone());
            }
        }
        if out.is_empty() {
            return Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                "no option found to get",
            ));
        }
        Ok(ok(out))
    }

    /// `setParameter: 1, <name>: <value>`: replies the previous value as `was`.
    pub(super) fn set_parameter(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        admin_only(db, "setParameter")?;
        let mut params = self.parameters.lock();
        let mut was = None;
        for (k, v) in cmd.iter().skip(1) {
            if is_generic_argument(k) {
                continue;
            }
            if k == "enableTestCommands" {
                return Err(CommandError::bad_value(
                    "not allowed to change [enableTestCommands] at runtime",
                ));
            }
            let Some(old) = params.get(k).cloned() else {
                return Err(CommandError::new(
                    codes::INVALID_OPTIONS,
                    "InvalidOptions",
                    format!(
                        "attempted to set unrecognized parameter [{k}], use help:true to see options"
                    ),
                ));
            };
            params.insert(k.clone(), v.clone());
            was = Some(old);
        }
        match was {
            Some(w) => Ok(ok(doc! { "was": w })),
            None => Err(CommandError::new(
                codes::INVALID_OPTIONS,
                "InvalidOptions",
                "no option found to set, use help:true to see options ",
            )),
        }
    }
}

/// Commands mongod runs on the admin database only.
fn admin_only(db: &str, name: &str) -> CmdResult<()> {
    if db == "admin" {
        Ok(())
    } else {
        Err(CommandError::new(
            codes::UNAUTHORIZED,
            "Unauthorized",
            format!("{name} may only be run against the admin database."),
        ))
    }
}

/// Fields every command may carry that are not its own arguments.
pub(super) fn is_generic_argument(key: &str) -> bool {
    key.starts_with('$')
        || matches!(
            key,
            "lsid"
                | "txnNumber"
                | "autocommit"
                | "startTransaction"
                | "writeConcern"
                | "readConcern"
                | "maxTimeMS"
                | "apiVersion"
                | "apiStrict"
                | "apiDeprecationErrors"
                | "comment"
        )
}

/// The server parameters a node starts with: mongod's defaults for the ones drivers and the
/// spec runners ask about, then the options' own.
pub(super) fn initial_parameters(opts: &ServerOptions) -> Document {
    let fcv: String = opts
        .version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let mut params = doc! {
        "featureCompatibilityVersion": { "version": fcv },
        "enableTestCommands": true,
        "requireApiVersion": false,
        "acceptApiVersion2": false,
        "authenticationMechanisms": ["MONGODB-X509", "SCRAM-SHA-1", "SCRAM-SHA-256"],
        "transactionLifetimeLimitSeconds": 60,
        "logicalSessionTimeoutMinutes": 30,
        "maxBSONDepth": 200,
    };
    for (k, v) in &opts.parameters {
        params.insert(k.clone(), v.clone());
    }
    params
}

/// `whatsmyuri`.
pub(super) fn whatsmyuri() -> Document {
    ok(doc! { "you": "127.0.0.1:0" })
}
