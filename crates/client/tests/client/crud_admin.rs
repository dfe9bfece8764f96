//! Administration against the testkit: index management (names generated and given,
//! list_index_names, drop_index, drop_indexes, a missing collection's indexes), collections
//! (create, a duplicate, list with a filter, names, drop), databases (list, names, drop) and
//! runCursorCommand with its getMore options.

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{
    CreateCollectionOptions, ErrorKind, IndexModel, IndexOptions, ListDatabasesOptions,
    RunCursorCommandOptions,
};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started};

#[tokio::test]
async fn indexes_are_created_listed_and_dropped() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client
        .database("app")
        .collection::<mongo_client::bson::Document>("ix");
    assert!(
        coll.list_index_names().await.unwrap().is_empty(),
        "no collection: no indexes"
    );

    let name = coll
        .create_index(IndexModel::new(doc! {"a": 1, "b": -1}))
        .await
        .unwrap();
    assert_eq!(name, "a_1_b_-1");
    let from_args: IndexModel =
        bson::deserialize_from_document(doc! {"keys": {"u": 1}, "name": "uniq", "unique": true})
            .unwrap();
    let names = coll
        .create_indexes([
            from_args,
            IndexModel::new(doc! {"t": "text"})
                .options(IndexOptions::default().default_language("french")),
        ])
        .await
        .unwrap();
    assert_eq!(names, ["uniq", "t_text"]);
    let sent = started(&recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == "createIndexes")
        .unwrap()
        .command;
    assert_eq!(
        sent.get_array("indexes").unwrap()[1].as_document().unwrap(),
        &doc! {"key": {"t": "text"}, "default_language": "french", "name": "t_text"}
    );
    assert_eq!(
        coll.list_index_names().await.unwrap(),
        ["_id_", "a_1_b_-1", "uniq", "t_text"]
    );
    let specs: Vec<Document> = coll
        .list_indexes()
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    let unique = specs
        .iter()
        .find(|s| s.get_str("name").ok() == Some("uniq"))
        .unwrap();
    assert!(unique.get_bool("unique").unwrap());

    coll.drop_index("uniq").await.unwrap();
    assert_eq!(
        coll.list_index_names().await.unwrap(),
        ["_id_", "a_1_b_-1", "t_text"]
    );
    let err = coll.drop_index("*").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidArgument(_)),
        "{err:?}"
    );
    let err = coll.drop_index("nope").await.unwrap_err();
    assert_eq!(err.code(), Some(27));
    coll.drop_indexes().await.unwrap();
    assert_eq!(coll.list_index_names().await.unwrap(), ["_id_"]);
}

#[tokio::test]
async fn collections_and_databases_are_created_listed_and_dropped() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let db = client.database("admin_test");
    db.create_collection("c1").await.unwrap();
    db.create_collection("c2")
        .with_options(
            CreateCollectionOptions::default()
                .capped(true)
                .size(1 << 20),
        )
        .await
        .unwrap();
    let err = db.create_collection("c1").await.unwrap_err();
    assert_eq!(err.code(), Some(48), "{err:?}");
    let sent = started(&recorder)
        .into_iter()
        .find(|e| e.command_name == "create" && e.command.get_str("create").ok() == Some("c2"))
        .unwrap()
        .command;
    assert!(sent.get_bool("capped").unwrap());

    let mut names = db.list_collection_names().await.unwrap();
    names.sort();
    assert_eq!(names, ["c1", "c2"]);
    let listed = started(&recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == "listCollections")
        .unwrap()
        .command;
    assert!(listed.get_bool("nameOnly").unwrap());
    let only: Vec<Document> = db
        .list_collections()
        .filter(doc! {"name": "c2"})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].get_str("type").unwrap(), "collection");

    db.collection::<mongo_client::bson::Document>("c1")
        .drop()
        .await
        .unwrap();
    assert_eq!(db.list_collection_names().await.unwrap(), ["c2"]);

    client
        .database("other")
        .collection("x")
        .insert_one(doc! {"a": 1})
        .await
        .unwrap();
    let names = client.list_database_names().await.unwrap();
    assert!(names.contains(&"admin_test".to_owned()) && names.contains(&"other".to_owned()));
    let dbs = client
        .list_databases()
        .filter(doc! {"name": "other"})
        .with_options(ListDatabasesOptions::default())
        .await
        .unwrap();
    assert_eq!(dbs.len(), 1);
    assert!(dbs[0].contains_key("sizeOnDisk"), "{dbs:?}");
    client.database("other").drop().await.unwrap();
    let names = client.list_database_names().await.unwrap();
    assert!(!names.contains(&"other".to_owned()), "{names:?}");
}

#[tokio::test]
async fn run_cursor_command_iterates_with_the_get_more_options() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let db = client.database("app");
    db.collection("items")
        .insert_many((0..7).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let options: RunCursorCommandOptions =
        bson::deserialize_from_document(doc! {"batchSize": 3, "comment": {"c": 1}}).unwrap();
    let docs = db
        .run_cursor_command(doc! {"find": "items", "batchSize": 2})
        .with_options(options)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(docs.len(), 7);
    let get_mores: Vec<Document> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "getMore")
        .map(|e| e.command)
        .collect();
    assert_eq!(get_mores.len(), 2, "2 + 3 + 2");
    for g in &get_mores {
        assert_eq!(g.get_i32("batchSize").unwrap(), 3);
        assert_eq!(g.get_document("comment").unwrap(), &doc! {"c": 1});
        assert_eq!(g.get_str("collection").unwrap(), "items");
    }
    // The command went as written: no comment or batch size of the options on it.
    let find = started(&recorder)
        .into_iter()
        .find(|e| e.command_name == "find")
        .unwrap()
        .command;
    assert_eq!(find.get_i32("batchSize").unwrap(), 2);
    assert!(!find.contains_key("comment"));
    let err = db.run_cursor_command(doc! {"ping": 1}).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidReply(_)), "{err:?}");
}
