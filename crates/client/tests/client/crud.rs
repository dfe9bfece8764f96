//! CRUD through `Collection` on a single server: inserts, counts, updates, deletes, a cursor
//! whose small batches need getMores, an unfinished cursor killing itself on drop, a failed
//! command's event, the pool consistent afterwards, and no commands after shutdown.

use std::time::Duration;

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::{ErrorKind, FindOptions};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, failed_names, started_names};

#[tokio::test]
async fn single_server_crud_cursor_and_events() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;

    let pong = client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(
        pong.get_f64("ok")
            .ok()
            .or(pong.get_i32("ok").ok().map(f64::from)),
        Some(1.0)
    );

    let coll = client.database("app").collection("items");
    let ids = coll
        .insert_many((0..10).map(|i| doc! {"i": i, "even": i % 2 == 0}))
        .await
        .unwrap();
    assert_eq!(ids.inserted_ids.len(), 10);
    assert_eq!(coll.count_documents(doc! {"even": true}).await.unwrap(), 5);

    // A small batch size forces getMores.
    let cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(3).sort(doc! {"i": 1}))
        .await
        .unwrap();
    let all = cursor.collect_all().await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[9].get_i32("i").ok(), Some(9));
    let names = started_names(&recorder);
    assert!(
        names.iter().filter(|n| *n == "getMore").count() >= 3,
        "{names:?}"
    );

    let u = coll
        .update_one(doc! {"i": 1}, doc! {"$set": {"tag": "one"}})
        .await
        .unwrap();
    assert_eq!((u.matched_count, u.modified_count), (1, 1));
    let m = coll
        .update_many(doc! {"even": true}, doc! {"$set": {"tag": "even"}})
        .await
        .unwrap();
    assert_eq!(m.matched_count, 5);
    assert_eq!(
        coll.find_one(doc! {"i": 1})
            .await
            .unwrap()
            .unwrap()
            .get_str("tag")
            .ok(),
        Some("one")
    );
    assert_eq!(
        coll.delete_one(doc! {"i": 0}).await.unwrap().deleted_count,
        1
    );
    assert_eq!(
        coll.delete_many(doc! {"even": true})
            .await
            .unwrap()
            .deleted_count,
        4
    );
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 5);

    // A cursor dropped unfinished kills itself.
    let mut cursor = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    assert!(cursor.try_next().await.unwrap().is_some());
    assert_ne!(cursor.id(), 0);
    drop(cursor);
    let mut killed = false;
    for _ in 0..50 {
        if started_names(&recorder).iter().any(|n| n == "killCursors") {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed, "killCursors was sent");

    // Command events carry the spec's fields; failed commands are reported.
    let err = client
        .run_command("app", doc! {"noSuchCommand": 1})
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Command(_)), "{err:?}");
    assert!(failed_names(&recorder).iter().any(|n| n == "noSuchCommand"));

    // The pool is consistent: everything back in.
    let stats = client.pool_stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].stats.in_use, 0);
    assert!(stats[0].stats.total >= 1);
    assert!(recorder.cmap_names().contains(&"ConnectionCheckedIn"));
    client.shutdown().await;
    let after = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .unwrap_err();
    assert!(after.is_shutdown(), "{after:?}");
}
