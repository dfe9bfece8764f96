//! What the writes report (CRUD specification, "Write Results"). Each result serializes with
//! the specification's camelCase names (`insertedId`, `matchedCount`, …; index maps with
//! string keys, `{"0": id}`), so that it can be compared with a test's expected result.

use std::collections::BTreeMap;

use bson::Bson;
use serde::{Serialize, Serializer};

/// Serializes an index → value map with string keys (BSON documents have string keys).
fn index_map<S: Serializer>(map: &BTreeMap<usize, Bson>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (k.to_string(), v)))
}

/// What `insert_one` did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InsertOneResult {
    /// The document's `_id` (generated when it had none).
    pub inserted_id: Bson,
}

/// What `insert_many` did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InsertManyResult {
    /// The `_id` of each inserted document, by its index in the input.
    #[serde(serialize_with = "index_map")]
    pub inserted_ids: BTreeMap<usize, Bson>,
}

/// What an update or a replace did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdateResult {
    /// Documents matched (an upserted document is not counted).
    pub matched_count: i64,
    /// Documents modified.
    pub modified_count: i64,
    /// Documents upserted (0 or 1).
    pub upserted_count: i64,
    /// The upserted document's `_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upserted_id: Option<Bson>,
}

/// What a delete did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeleteResult {
    /// Documents deleted.
    pub deleted_count: i64,
}

/// What a bulk write did: the sums over its commands. Also the partial result a failed bulk
/// write carries in its error ([`WriteFailure::partial_result`](crate::error::WriteFailure)).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BulkWriteResult {
    /// Documents inserted.
    pub inserted_count: i64,
    /// Documents matched by updates and replacements.
    pub matched_count: i64,
    /// Documents modified.
    pub modified_count: i64,
    /// Documents deleted.
    pub deleted_count: i64,
    /// Documents upserted.
    pub upserted_count: i64,
    /// The `_id` of each upserted document, by the index of its model.
    #[serde(serialize_with = "index_map")]
    pub upserted_ids: BTreeMap<usize, Bson>,
    /// The `_id` of each inserted document, by the index of its model.
    #[serde(serialize_with = "index_map")]
    pub inserted_ids: BTreeMap<usize, Bson>,
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn results_serialize_with_the_specification_names() {
        let r = UpdateResult {
            matched_count: 1,
            modified_count: 1,
            upserted_count: 0,
            upserted_id: None,
        };
        assert_eq!(
            bson::serialize_to_document(&r).unwrap(),
            doc! {"matchedCount": 1_i64, "modifiedCount": 1_i64, "upsertedCount": 0_i64}
        );
        let r = InsertManyResult {
            inserted_ids: [(0, Bson::Int32(7)), (2, Bson::Int32(9))].into(),
        };
        assert_eq!(
            bson::serialize_to_document(&r).unwrap(),
            doc! {"insertedIds": {"0": 7, "2": 9}}
        );
        let b = BulkWriteResult {
            upserted_ids: [(3, Bson::Int32(1))].into(),
            ..BulkWriteResult::default()
        };
        let d = bson::serialize_to_document(&b).unwrap();
        assert_eq!(d.get_document("upsertedIds").unwrap(), &doc! {"3": 1});
        assert_eq!(d.get_i64("insertedCount").unwrap(), 0);
    }
}
