//! The client-level bulk write's vocabulary (MongoDB 8.0's `bulkWrite` command, the CRUD
//! specification's bulk-write.md): [`Namespace`], the namespaced [`ClientWriteModel`], the
//! [`ClientBulkWriteOptions`], the summary and verbose [`ClientBulkWriteResult`], and the
//! [`ClientBulkWriteError`] that carries a top-level error, write concern errors, write errors
//! by model index and the partial result.
//!
//! These are new types, apart from the collection-level bulk write's, as the specification
//! asks: their options and results differ (`verboseResults`, per-model results).

use std::collections::BTreeMap;
use std::fmt;

use bson::{Bson, Document};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DeleteResult, InsertOneResult, WriteModel};
use crate::error::{Error, WriteConcernError, WriteError};
use crate::options::WriteConcern;

/// A collection's full name: its database and its name (`db.coll`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    /// The database.
    pub db: String,
    /// The collection.
    pub coll: String,
}

impl Namespace {
    /// `db.coll`.
    pub fn new(db: impl Into<String>, coll: impl Into<String>) -> Self {
        Namespace {
            db: db.into(),
            coll: coll.into(),
        }
    }

    /// Reads `db.coll` (split at the first dot; a collection name may hold more dots).
    ///
    /// # Errors
    /// A name without a dot, or with an empty database or collection part.
    pub fn parse(ns: &str) -> crate::Result<Self> {
        match ns.split_once('.') {
            Some((db, coll)) if !db.is_empty() && !coll.is_empty() => Ok(Namespace::new(db, coll)),
            _ => Err(Error::invalid_argument(format!(
                "{ns:?} is not a namespace (database.collection)"
            ))),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.coll)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Namespace::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One write of a [`Client::bulk_write`](crate::Client::bulk_write): a [`WriteModel`] and
/// the collection it writes to. Deserializes from the specification's shape,
/// `{ "insertOne": { "namespace": "db.coll", "document": … } }`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClientWriteModel {
    /// The collection written to.
    pub namespace: Namespace,
    /// The write.
    pub model: WriteModel,
}

impl ClientWriteModel {
    /// `model` on `namespace`.
    pub fn new(namespace: Namespace, model: WriteModel) -> Self {
        ClientWriteModel { namespace, model }
    }

    /// Whether the write may touch several documents (`updateMany`, `deleteMany`): a bulk
    /// write holding one is not a retryable write.
    pub fn is_multi(&self) -> bool {
        matches!(
            self.model,
            WriteModel::UpdateMany(_) | WriteModel::DeleteMany(_)
        )
    }
}

impl<'de> Deserialize<'de> for ClientWriteModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let outer = Document::deserialize(d)?;
        let mut entries = outer.into_iter();
        let (Some((kind, Bson::Document(mut inner))), None) = (entries.next(), entries.next())
        else {
            return Err(D::Error::custom(
                "a client write model is one key (insertOne, updateOne, ...) over a document",
            ));
        };
        let namespace = match inner.remove("namespace") {
            Some(Bson::String(ns)) => Namespace::parse(&ns).map_err(D::Error::custom)?,
            _ => return Err(D::Error::custom(format!("{kind}: namespace is required"))),
        };
        let mut model = Document::new();
        model.insert(kind, inner);
        let model = bson::deserialize_from_document(model).map_err(D::Error::custom)?;
        Ok(ClientWriteModel { namespace, model })
    }
}

options_struct! {
    /// Options of [`Client::bulk_write`](crate::Client::bulk_write).
    pub struct ClientBulkWriteOptions for [<'a> crate::client::action::ClientBulkWrite<'a>] {
        /// `ordered` (default true): stop at the first write error. Unordered writes run every
        /// model and report every error. An unacknowledged write concern needs `false`.
        ordered: bool,
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `comment`.
        comment: Bson,
        /// `let`: variables every filter and update may read as `$$name`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// The write concern of this bulk write (else the client's). Set in code; argument
        /// documents name it apart.
        #[serde(skip)]
        write_concern: WriteConcern,
        /// `rawData` (sent to servers 8.2 and later only; for internal use).
        raw_data: bool,
        /// Report each model's result (`insertResults`, `updateResults`, `deleteResults`),
        /// not only the counts (default false). Not allowed with an unacknowledged write.
        verbose_results: bool,
    }
}

/// Serializes an index → value map with string keys (BSON documents have string keys).
fn index_map<S: Serializer, T: Serialize>(
    map: &BTreeMap<usize, T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (k.to_string(), v)))
}

/// What one update or replacement model of a client bulk write did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientUpdateResult {
    /// Documents matched.
    pub matched_count: i64,
    /// Documents modified.
    pub modified_count: i64,
    /// The upserted document's `_id`, when the model upserted one (which may be a null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upserted_id: Option<Bson>,
}

/// Each successful model's result, by its index in the caller's models (with
/// `verboseResults`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VerboseResults {
    /// The inserts.
    #[serde(serialize_with = "index_map")]
    pub insert_results: BTreeMap<usize, InsertOneResult>,
    /// The updates and replacements.
    #[serde(serialize_with = "index_map")]
    pub update_results: BTreeMap<usize, ClientUpdateResult>,
    /// The deletes.
    #[serde(serialize_with = "index_map")]
    pub delete_results: BTreeMap<usize, DeleteResult>,
}

/// What a client bulk write did, summed over its `bulkWrite` commands. Serializes with the
/// specification's names (`insertedCount`, …, `insertResults` …).
///
/// An unacknowledged bulk write (`w: 0`) reports `acknowledged: false`: its counts are 0 and
/// say nothing about what the server did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientBulkWriteResult {
    /// Whether the server acknowledged the writes.
    pub acknowledged: bool,
    /// Documents inserted.
    pub inserted_count: i64,
    /// Documents upserted.
    pub upserted_count: i64,
    /// Documents matched by updates and replacements.
    pub matched_count: i64,
    /// Documents modified.
    pub modified_count: i64,
    /// Documents deleted.
    pub deleted_count: i64,
    /// Each model's result: present exactly when `verboseResults` was asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub verbose_results: Option<VerboseResults>,
}

/// The error of a client bulk write that did not do everything it was asked: the write
/// errors by model index, the write concern errors, the top-level error that stopped it (if
/// one did), and what it did before (`partial_result`, present when at least one write is
/// known to have succeeded).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientBulkWriteError {
    /// The error that stopped the bulk write (a network, selection or command error), when
    /// one did.
    pub error: Option<Error>,
    /// The write concern errors, one per command that had one.
    pub write_concern_errors: Vec<WriteConcernError>,
    /// The failed models' errors by their index in the caller's models (at most one when
    /// ordered); each error's `index` is that index too.
    pub write_errors: BTreeMap<usize, WriteError>,
    /// The successful writes' results.
    pub partial_result: Option<ClientBulkWriteResult>,
    /// The index of the first model of each command sent, to name a model's batch.
    pub(crate) batch_starts: Vec<usize>,
}

impl ClientBulkWriteError {
    /// The number (from 0) of the `bulkWrite` command that carried model `index`.
    pub fn batch_of(&self, index: usize) -> Option<usize> {
        self.batch_starts.iter().rposition(|start| *start <= index)
    }
}

impl fmt::Display for ClientBulkWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client bulk write failed")?;
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        for (i, e) in &self.write_errors {
            write!(f, "; model {i}")?;
            if let Some(b) = self.batch_of(*i) {
                write!(f, " (batch {b})")?;
            }
            write!(f, ": ({}) {}", e.code, e.message)?;
        }
        for wce in &self.write_concern_errors {
            write!(f, "; write concern error ({}) {}", wce.code, wce.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn models_read_the_specification_shape() {
        let m: ClientWriteModel = bson::deserialize_from_bson(bson::bson!(
            {"updateOne": {"namespace": "db.c.sub", "filter": {}, "update": {"$set": {"x": 1}}}}
        ))
        .unwrap();
        assert_eq!(m.namespace, Namespace::new("db", "c.sub"));
        assert!(!m.is_multi());
        let m: ClientWriteModel = bson::deserialize_from_bson(bson::bson!(
            {"deleteMany": {"namespace": "db.c", "filter": {}}}
        ))
        .unwrap();
        assert!(m.is_multi());
        for bad in [
            bson::bson!({"insertOne": {"document": {}}}),
            bson::bson!({"insertOne": {"namespace": "nodot", "document": {}}}),
            bson::bson!({"insertOne": {"namespace": "db.c", "doc": {}}}),
            bson::bson!({"insertOne": {"namespace": "db.c", "document": {}}, "x": 1}),
        ] {
            assert!(
                bson::deserialize_from_bson::<ClientWriteModel>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn options_read_camel_case_and_refuse_unknown_keys() {
        let o: ClientBulkWriteOptions = bson::deserialize_from_document(
            doc! {"verboseResults": true, "ordered": false, "let": {"a": 1}},
        )
        .unwrap();
        assert_eq!(o.verbose_results, Some(true));
        assert_eq!(o.let_vars, Some(doc! {"a": 1}));
        assert!(
            bson::deserialize_from_document::<ClientBulkWriteOptions>(doc! {"errorsOnly": true})
                .is_err()
        );
    }

    #[test]
    fn results_serialize_verbose_maps_only_when_present() {
        let mut r = ClientBulkWriteResult {
            acknowledged: true,
            inserted_count: 1,
            ..ClientBulkWriteResult::default()
        };
        let d = bson::serialize_to_document(&r).unwrap();
        assert!(!d.contains_key("insertResults"));
        r.verbose_results = Some(VerboseResults {
            insert_results: [(
                2,
                InsertOneResult {
                    inserted_id: Bson::Int32(5),
                },
            )]
            .into(),
            ..VerboseResults::default()
        });
        let d = bson::serialize_to_document(&r).unwrap();
        assert_eq!(
            d.get_document("insertResults").unwrap(),
            &doc! {"2": {"insertedId": 5}}
        );
        assert_eq!(d.get_document("updateResults").unwrap(), &doc! {});
    }

    #[test]
    fn the_error_names_each_failed_model_and_its_batch() {
        let e = ClientBulkWriteError {
            write_errors: [(
                5,
                WriteError {
                    index: 5,
                    code: 11000,
                    code_name: None,
                    message: "dup".into(),
                    details: None,
                },
            )]
            .into(),
            batch_starts: vec![0, 3],
            ..ClientBulkWriteError::default()
        };
        assert_eq!(e.batch_of(2), Some(0));
        assert_eq!(e.batch_of(5), Some(1));
        assert!(
            e.to_string().contains("model 5 (batch 1): (11000) dup"),
            "{e}"
        );
    }
}
