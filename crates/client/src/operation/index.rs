//! Index management: `createIndexes` and `dropIndexes` (writes on the primary that take the
//! write concern and are not retried). `listIndexes` opens a cursor (`cursor.rs`).

use bson::{Bson, Document, doc};

use super::admin::{AdminCommand, nothing};
use super::cursor::put;
use crate::crud::{CreateIndexOptions, DropIndexOptions, IndexModel, millis_bson};
use crate::error::{Error, Result};

/// `createIndexes` of `models` on `db.coll`; the output is the indexes' names, in order
/// (given, or generated from the keys).
pub(crate) fn create_indexes(
    db: &str,
    coll: &str,
    models: &[IndexModel],
    o: &CreateIndexOptions,
) -> Result<(AdminCommand<()>, Vec<String>)> {
    if models.is_empty() {
        return Err(Error::invalid_argument(
            "create_indexes needs at least one index",
        ));
    }
    let mut names = Vec::with_capacity(models.len());
    let mut specs = Vec::with_capacity(models.len());
    for m in models {
        let name = m.name();
        let mut spec = doc! { "key": m.keys.clone() };
        if let Some(options) = &m.options {
            spec.extend(bson::serialize_to_document(options)?);
        }
        spec.insert("name", name.clone());
        specs.push(Bson::Document(spec));
        names.push(name);
    }
    let mut body = doc! { "createIndexes": coll, "indexes": specs };
    put(&mut body, "commitQuorum", o.commit_quorum.clone());
    put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
    put(&mut body, "comment", o.comment.clone());
    Ok((
        AdminCommand::write("createIndexes", db, body, nothing),
        names,
    ))
}

/// `dropIndexes` of `index` (a name, or `*` for every index but `_id_`) on `db.coll`.
pub(crate) fn drop_indexes(
    db: &str,
    coll: &str,
    index: &str,
    o: &DropIndexOptions,
) -> AdminCommand<()> {
    let mut body = doc! { "dropIndexes": coll, "index": index };
    put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
    put(&mut body, "comment", o.comment.clone());
    AdminCommand::write("dropIndexes", db, body, nothing)
}

/// The names in `listIndexes` entries.
pub(crate) fn index_names(indexes: &[Document]) -> Result<Vec<String>> {
    indexes
        .iter()
        .map(|i| {
            i.get_str("name")
                .map(str::to_owned)
                .map_err(|_| Error::invalid_reply("a listIndexes entry has no name"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mongo_events::{ServerAddress, ServerType};
    use mongo_wire::SizeLimits;

    use super::*;
    use crate::crud::IndexOptions;
    use crate::operation::{ConnectionDescription, Operation};

    fn conn() -> ConnectionDescription {
        ConnectionDescription {
            address: ServerAddress::tcp("a", 1),
            server_type: ServerType::RsPrimary,
            max_wire_version: 21,
            limits: SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn create_indexes_names_every_index() {
        let models = [
            IndexModel::new(doc! {"a": 1, "b": -1}),
            IndexModel::new(doc! {"c": 1}).options(IndexOptions::default().unique(true).name("u")),
        ];
        let (mut op, names) = create_indexes(
            "db",
            "coll",
            &models,
            &CreateIndexOptions::default().commit_quorum("majority"),
        )
        .unwrap();
        assert_eq!(names, ["a_1_b_-1", "u"]);
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {
                "createIndexes": "coll",
                "indexes": [
                    {"key": {"a": 1, "b": -1}, "name": "a_1_b_-1"},
                    {"key": {"c": 1}, "name": "u", "unique": true},
                ],
                "commitQuorum": "majority",
            }
        );
        assert!(create_indexes("db", "c", &[], &CreateIndexOptions::default()).is_err());
    }

    #[test]
    fn index_names_need_names() {
        assert_eq!(
            index_names(&[doc! {"name": "_id_"}, doc! {"name": "a_1"}]).unwrap(),
            ["_id_", "a_1"]
        );
        assert!(index_names(&[doc! {"key": {}}]).is_err());
        let mut op = drop_indexes("db", "c", "*", &DropIndexOptions::default());
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {"dropIndexes": "c", "index": "*"}
        );
    }
}
