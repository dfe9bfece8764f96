//! The single writes against the testkit: upsert, arrayFilters, replace_one, the update and
//! replacement checks (nothing sent), delete options, the findAndModify helpers (sort,
//! returnDocument, upsert, projection), and the shape of write errors and write concern
//! errors.

use bson::{Bson, Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{
    Collection, DeleteOptions, ErrorKind, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, InsertOneOptions, ReplaceOptions, ReturnDocument, UpdateOptions,
};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started, started_names};

async fn setup() -> (TestServer, Collection, std::sync::Arc<EventRecorder>) {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("app").collection("w");
    (server, coll, recorder)
}

fn stored(server: &TestServer) -> Vec<Document> {
    server.store().documents("app", "w")
}

#[tokio::test]
async fn upsert_inserts_and_reports_the_new_id() {
    let (server, coll, recorder) = setup().await;
    let options: UpdateOptions = bson::deserialize_from_document(doc! {"upsert": true}).unwrap();
    let r = coll
        .update_one(doc! {"_id": 7}, doc! {"$set": {"x": 1}})
        .with_options(options.clone())
        .await
        .unwrap();
    assert_eq!(
        (r.matched_count, r.modified_count, r.upserted_count),
        (0, 0, 1)
    );
    assert_eq!(r.upserted_id, Some(Bson::Int32(7)));
    assert_eq!(stored(&server), [doc! {"_id": 7, "x": 1}]);
    // The result serializes with the specification's names.
    assert_eq!(
        bson::serialize_to_document(&r).unwrap(),
        doc! {"matchedCount": 0_i64, "modifiedCount": 0_i64, "upsertedCount": 1_i64, "upsertedId": 7}
    );

    // Matching now: an update, no upsert.
    let r = coll
        .update_one(doc! {"_id": 7}, doc! {"$set": {"x": 2}})
        .with_options(options)
        .await
        .unwrap();
    assert_eq!(
        (r.matched_count, r.modified_count, r.upserted_count),
        (1, 1, 0)
    );
    assert_eq!(r.upserted_id, None);
    // Without upsert nothing is created.
    let r = coll
        .update_one(doc! {"_id": 8}, doc! {"$set": {"x": 1}})
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.upserted_count), (0, 0));
    assert_eq!(stored(&server).len(), 1);
    let sent = started(&recorder)
        .into_iter()
        .find(|e| e.command_name == "update")
        .unwrap()
        .command;
    let statement = sent.get_array("updates").unwrap()[0].as_document().unwrap();
    assert!(statement.get_bool("upsert").unwrap());
    assert!(!statement.contains_key("multi"), "{statement:?}");
}

#[tokio::test]
async fn array_filters_choose_the_elements_to_update() {
    let (server, coll, _recorder) = setup().await;
    coll.insert_one(doc! {"_id": 1, "a": [{"x": 1}, {"x": 5}, {"x": 9}]})
        .await
        .unwrap();
    let options: UpdateOptions =
        bson::deserialize_from_document(doc! {"arrayFilters": [{"e.x": {"$gt": 2}}]}).unwrap();
    let r = coll
        .update_one(doc! {"_id": 1}, doc! {"$set": {"a.$[e].big": true}})
        .with_options(options)
        .await
        .unwrap();
    assert_eq!(r.modified_count, 1);
    assert_eq!(
        stored(&server),
        [doc! {"_id": 1, "a": [{"x": 1}, {"x": 5, "big": true}, {"x": 9, "big": true}]}]
    );
}

#[tokio::test]
async fn update_many_replace_one_and_deletes() {
    let (server, coll, recorder) = setup().await;
    coll.insert_many((0..6).map(|i| doc! {"_id": i, "even": i % 2 == 0}))
        .await
        .unwrap();
    let r = coll
        .update_many(doc! {"even": true}, doc! {"$inc": {"n": 1}})
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (3, 3));

    let options: ReplaceOptions =
        bson::deserialize_from_document(doc! {"comment": "swap"}).unwrap();
    let r = coll
        .replace_one(doc! {"_id": 1}, doc! {"replaced": true})
        .with_options(options)
        .await
        .unwrap();
    assert_eq!(r.modified_count, 1);
    assert!(stored(&server).contains(&doc! {"_id": 1, "replaced": true}));
    let sent = started(&recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == "update")
        .unwrap()
        .command;
    assert_eq!(sent.get_str("comment").unwrap(), "swap");

    // Checked before anything is sent: an update without operators, a replacement with them.
    let before = started_names(&recorder).len();
    let err = coll.update_one(doc! {}, doc! {"x": 1}).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidArgument(_)),
        "{err:?}"
    );
    let err = coll
        .replace_one(doc! {}, doc! {"$set": {"x": 1}})
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidArgument(_)),
        "{err:?}"
    );
    let err = coll
        .find_one_and_update(doc! {}, doc! {"x": 1})
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidArgument(_)),
        "{err:?}"
    );
    assert_eq!(started_names(&recorder).len(), before, "nothing sent");

    let options: DeleteOptions =
        bson::deserialize_from_document(doc! {"hint": {"_id": 1}, "comment": 5}).unwrap();
    let r = coll
        .delete_one(doc! {"even": true})
        .with_options(options)
        .await
        .unwrap();
    assert_eq!(r.deleted_count, 1);
    let sent = started(&recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == "delete")
        .unwrap()
        .command;
    assert_eq!(sent.get_i32("comment").unwrap(), 5);
    let r = coll.delete_many(doc! {"even": true}).await.unwrap();
    assert_eq!(r.deleted_count, 2);
    assert_eq!(stored(&server).len(), 3);
}

#[tokio::test]
async fn find_and_modify_helpers_pick_by_sort_and_return_the_chosen_image() {
    let (server, coll, _recorder) = setup().await;
    coll.insert_many((1..=3).map(|i| doc! {"_id": i, "k": "same", "n": i * 10}))
        .await
        .unwrap();
    // sort: the highest n; Before (the default) returns the document as it was.
    let before = coll
        .find_one_and_update(doc! {"k": "same"}, doc! {"$inc": {"n": 1}})
        .with_options(FindOneAndUpdateOptions::default().sort(doc! {"n": -1}))
        .await
        .unwrap();
    assert_eq!(before, Some(doc! {"_id": 3, "k": "same", "n": 30}));
    let options: FindOneAndUpdateOptions = bson::deserialize_from_document(
        doc! {"returnDocument": "After", "sort": {"n": 1}, "projection": {"k": 0}},
    )
    .unwrap();
    let after = coll
        .find_one_and_update(doc! {"k": "same"}, doc! {"$inc": {"n": 1}})
        .with_options(options)
        .await
        .unwrap();
    assert_eq!(after, Some(doc! {"_id": 1, "n": 11}));

    // An upsert with After returns the new document; with Before, nothing.
    let upserted = coll
        .find_one_and_replace(doc! {"_id": 9}, doc! {"fresh": true})
        .with_options(
            FindOneAndReplaceOptions::default()
                .upsert(true)
                .return_document(ReturnDocument::After),
        )
        .await
        .unwrap();
    assert_eq!(upserted, Some(doc! {"_id": 9, "fresh": true}));
    let none = coll
        .find_one_and_replace(doc! {"_id": 10}, doc! {"fresh": true})
        .with_options(FindOneAndReplaceOptions::default().upsert(true))
        .await
        .unwrap();
    assert_eq!(none, None);
    assert!(stored(&server).contains(&doc! {"_id": 10, "fresh": true}));

    // Delete by sort: the lowest n goes, and is returned.
    let deleted = coll
        .find_one_and_delete(doc! {"k": "same"})
        .with_options(FindOneAndDeleteOptions::default().sort(doc! {"n": 1}))
        .await
        .unwrap();
    assert_eq!(deleted, Some(doc! {"_id": 1, "k": "same", "n": 11}));
    assert!(
        !stored(&server)
            .iter()
            .any(|d| d.get_i32("_id").ok() == Some(1))
    );
    assert_eq!(
        coll.find_one_and_delete(doc! {"k": "none"}).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn write_errors_and_write_concern_errors_keep_the_server_information() {
    let (server, coll, recorder) = setup().await;
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let err = coll.insert_one(doc! {"_id": 1}).await.unwrap_err();
    assert_eq!(err.code(), Some(11000));
    let failure = err.write_failure().expect("a write failure");
    let e = &failure.write_errors[0];
    assert_eq!((e.index, e.code), (0, 11000));
    assert!(e.message.contains("duplicate key"), "{e:?}");
    assert!(failure.write_concern_error.is_none());

    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["insert"], "writeConcernError": {
                "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting timed out",
                "errInfo": {"wtimeout": true},
            }},
        })
        .unwrap();
    let options: InsertOneOptions =
        bson::deserialize_from_document(doc! {"bypassDocumentValidation": true}).unwrap();
    let err = coll
        .insert_one(doc! {"_id": 2})
        .with_options(options)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(64));
    let wce = err
        .write_failure()
        .and_then(|f| f.write_concern_error.clone())
        .expect("a write concern error");
    assert_eq!(wce.code_name, "WriteConcernFailed");
    assert_eq!(wce.message, "waiting timed out");
    assert_eq!(wce.details, Some(doc! {"wtimeout": true}));
    // The write itself happened.
    assert_eq!(stored(&server).len(), 2);
    let sent = started(&recorder)
        .into_iter()
        .rev()
        .find(|e| e.command_name == "insert")
        .unwrap()
        .command;
    assert!(sent.get_bool("bypassDocumentValidation").unwrap());
}
