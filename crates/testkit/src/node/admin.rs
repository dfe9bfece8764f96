//! Administration: databases, collections and indexes (`listDatabases`, `listCollections`,
//! `listIndexes`, `createIndexes`, `dropIndexes`, `create`, `drop`, `dropDatabase`), the
//! replica-set commands (`replSetStepDown`, `replSetGetStatus`), `serverStatus`,
//! `getParameter`, `whatsmyuri` and the testing command `configureFailPoint`.

use bson::{Bson, Document, doc};

use super::Node;
use super::args::{array_of_docs, coll_arg, non_negative, now, ok, opt_doc};
use crate::error::{CmdResult, CommandError, codes};
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
        let mut out = Vec::new();
        for name in self.store.collection_names(db) {
            let entry = if name_only {
                doc! { "name": name, "type": "collection" }
            } else {
                doc! {
                    "name": name,
                    "type": "collection",
                    "options": {},
                    "info": { "readOnly": false },
                    "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                }
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
        Ok(self.open_cursor(format!("{db}.{coll}"), indexes, usize::MAX, false))
    }

    pub(super) fn create_indexes(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "createIndexes")?;
        let specs = array_of_docs(cmd, "indexes")?;
        let ns = format!("{db}.{coll}");
        let (before, after) = self.store.with_coll(db, coll, true, |c| {
            let Some(c) = c else { return (0, 0) };
            let before = c.indexes.len();
            for s in specs {
                let name = s.get_str("name").unwrap_or_default();
                if !c
                    .indexes
                    .iter()
                    .any(|i| i.get_str("name").ok() == Some(name))
                {
                    let mut spec = s.clone();
                    spec.insert("v", 2);
                    spec.insert("ns", ns.clone());
                    c.indexes.push(spec);
                }
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
            Ok(n)
        })?;
        Ok(ok(doc! { "nIndexesWas": i32::try_from(n).unwrap_or(0) }))
    }

    /// `create`: an empty collection.
    pub(super) fn create_collection(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "create")?;
        self.store.create(db, coll)?;
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

    /// `dropDatabase`.
    pub(super) fn drop_database(&self, db: &str) -> Document {
        self.store.drop_database(db);
        ok(doc! { "dropped": db })
    }

    /// `replSetStepDown`: another member becomes primary.
    pub(super) fn repl_set_step_down(&self) -> CmdResult<Document> {
        let new = self.topology.step_down(self.member)?;
        tracing::debug!(old = self.member, new, "replSetStepDown");
        Ok(ok(Document::new()))
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
        })
    }

    /// `configureFailPoint`, on the admin database only.
    pub(super) fn configure_fail_point(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        if db != "admin" {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                "configureFailPoint may only be run against the admin database.",
            ));
        }
        self.fail_points.configure(cmd)
    }
}

/// `getParameter`: only the feature compatibility version.
pub(super) fn get_parameter() -> Document {
    ok(doc! { "featureCompatibilityVersion": { "version": "7.0" } })
}

/// `whatsmyuri`.
pub(super) fn whatsmyuri() -> Document {
    ok(doc! { "you": "127.0.0.1:0" })
}
