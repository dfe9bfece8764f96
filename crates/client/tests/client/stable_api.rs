//! The Stable API (versioned API spec): a declared API version reaches every command of an
//! operation, a cursor's getMore included.

use bson::doc;
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, FindOptions, ServerApi};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::started;

#[tokio::test]
async fn get_more_carries_the_declared_api_version() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    let client = Client::builder()
        .options(ClientOptions::parse(&server.uri()).unwrap())
        .listeners(listeners)
        .server_api(ServerApi::v1().strict(true))
        .build()
        .await
        .unwrap();
    let coll = client.database("app").collection("items");
    coll.insert_many((0..5).map(|i| doc! {"_id": i}))
        .await
        .unwrap();
    let docs = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(docs.len(), 5);
    let events = started(&recorder);
    let get_mores: Vec<_> = events
        .iter()
        .filter(|e| e.command_name == "getMore")
        .collect();
    assert_eq!(
        get_mores.len(),
        2,
        "two getMores for five documents in batches of two"
    );
    for e in events.iter().filter(|e| e.command_name != "hello") {
        assert_eq!(
            e.command.get_str("apiVersion").ok(),
            Some("1"),
            "{}: {}",
            e.command_name,
            e.command
        );
        assert_eq!(e.command.get_bool("apiStrict").ok(), Some(true));
    }
}
