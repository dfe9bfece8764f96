//! Database and collection handles with their own concerns and read preference
//! (`DatabaseOptions` / `CollectionOptions`): each operation sends the handle's read concern,
//! write concern and read preference instead of the client's, a collection inherits what its
//! database sets, a `w: 0` write goes out unacknowledged (no reply read, no session), and
//! `runCommand` inherits none of them. Also `$clusterTime` gossip on a replica set.

use std::time::Duration;

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::{
    Acknowledgment, CollectionOptions, DatabaseOptions, ReadConcern, ReadMode, ReadPreference,
    WriteConcern,
};
use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};

use crate::common::{client_for, started};

fn command_of(r: &EventRecorder, name: &str) -> bson::Document {
    started(r)
        .into_iter()
        .rev()
        .find(|e| e.command_name == name)
        .map(|e| e.command)
        .unwrap_or_else(|| panic!("no {name} was sent"))
}

#[tokio::test]
async fn handles_send_their_own_concerns() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("{}&w=1&readConcernLevel=local", server.uri());
    let client = client_for(&uri, Some(recorder.clone())).await;

    let db = client.database_with_options(
        "h",
        DatabaseOptions::default()
            .read_concern(ReadConcern::new("majority"))
            .write_concern(WriteConcern::with_w(Acknowledgment::Majority)),
    );
    let coll = db.collection("c");
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    assert_eq!(
        command_of(&recorder, "insert")
            .get_document("writeConcern")
            .unwrap(),
        &doc! {"w": "majority"}
    );
    coll.find(doc! {})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(
        command_of(&recorder, "find")
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "majority"}
    );
    // A collection's own read concern wins over its database's; the rest is inherited.
    let local = db.collection_with_options(
        "c",
        CollectionOptions::default().read_concern(ReadConcern::new("available")),
    );
    local
        .find(doc! {})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(
        command_of(&recorder, "find")
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "available"}
    );
    local.insert_one(doc! {"_id": 2}).await.unwrap();
    assert_eq!(
        command_of(&recorder, "insert")
            .get_document("writeConcern")
            .unwrap(),
        &doc! {"w": "majority"}
    );
    // The client's own handles keep the client's concerns.
    client
        .database("h")
        .collection("c")
        .insert_one(doc! {"_id": 3})
        .await
        .unwrap();
    assert_eq!(
        command_of(&recorder, "insert")
            .get_document("writeConcern")
            .unwrap(),
        &doc! {"w": 1_i64}
    );
    // runCommand inherits nothing from the handle.
    db.run_command(doc! {"ping": 1}).await.unwrap();
    let ping = command_of(&recorder, "ping");
    assert!(!ping.contains_key("readConcern") && !ping.contains_key("writeConcern"));
}

#[tokio::test]
async fn an_unacknowledged_handle_writes_without_waiting_for_a_reply() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&server.uri(), Some(recorder.clone())).await;
    let coll = client.database("h").collection_with_options(
        "w0",
        CollectionOptions::default().write_concern(WriteConcern::with_w(Acknowledgment::Nodes(0))),
    );
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let insert = command_of(&recorder, "insert");
    assert_eq!(
        insert.get_document("writeConcern").unwrap(),
        &doc! {"w": 0_i64}
    );
    // No session on an unacknowledged write (sessions spec).
    assert!(!insert.contains_key("lsid"));
    // The write still happens.
    let mut found = false;
    for _ in 0..100 {
        if !server.store().documents("h", "w0").is_empty() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(found, "the unacknowledged insert never reached the server");
}

#[tokio::test]
async fn a_handle_read_preference_routes_its_reads() {
    let rs = ReplicaSet::start("rs0", 3).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let coll = client
        .database("h")
        .collection_with_options::<mongo_client::bson::Document>(
            "c",
            CollectionOptions::default().read_preference(ReadPreference::new(ReadMode::Secondary)),
        );
    coll.find(doc! {})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    let find = command_of(&recorder, "find");
    assert_eq!(
        find.get_document("$readPreference")
            .unwrap()
            .get_str("mode")
            .unwrap(),
        "secondary"
    );
    // Replica-set members report $clusterTime; the client sends back the highest it saw.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert!(command_of(&recorder, "ping").contains_key("$clusterTime"));
}

#[tokio::test]
async fn an_operation_s_own_concerns_win_over_its_handle_s() {
    let rs = ReplicaSet::start("opConcerns", 2).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    client.wait_for_discovery(Duration::from_secs(5)).await;
    let coll = client
        .database_with_options(
            "h",
            DatabaseOptions::default().read_concern(ReadConcern::new("local")),
        )
        .collection::<bson::Document>("c");
    coll.insert_one(doc! {"_id": 1})
        .write_concern(WriteConcern::with_w(Acknowledgment::Majority))
        .await
        .unwrap();
    assert_eq!(
        command_of(&recorder, "insert")
            .get_document("writeConcern")
            .unwrap(),
        &doc! {"w": "majority"}
    );
    // The next write, without its own, has none (the handle sets none).
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    assert!(!command_of(&recorder, "insert").contains_key("writeConcern"));

    coll.count_documents(doc! {})
        .read_concern(ReadConcern::new("majority"))
        .read_preference(ReadPreference::new(ReadMode::SecondaryPreferred))
        .await
        .unwrap();
    let aggregate = command_of(&recorder, "aggregate");
    assert_eq!(
        aggregate.get_document("readConcern").unwrap(),
        &doc! {"level": "majority"}
    );
    assert_eq!(
        aggregate
            .get_document("$readPreference")
            .unwrap()
            .get_str("mode")
            .unwrap(),
        "secondaryPreferred"
    );
    // The handle's read concern again for an operation that sets none.
    coll.find_one(doc! {}).await.unwrap();
    assert_eq!(
        command_of(&recorder, "find")
            .get_document("readConcern")
            .unwrap(),
        &doc! {"level": "local"}
    );
}
