//! Helpers shared by the modules: a server's address, a bare `Connection` to it, a client
//! with an event recorder, a load-balanced server with five documents and a client on it, and
//! the names of the commands a recorder saw.

use std::sync::Arc;

use mongo_client::event::command::{CommandEvent, CommandStartedEvent};
use mongo_client::event::{EventRecorder, Generation, Listeners};
use mongo_client::{
    Client, ClientOptions, Connection, ConnectionId, ConnectionOptions, ServerAddress,
};
use mongo_testkit::{ServerOptions, TestServer};

/// The address a test server listens on.
pub(crate) fn address(server: &TestServer) -> ServerAddress {
    ServerAddress::parse(&server.host_port()).unwrap()
}

/// A `Connection` (id 1, generation 0) to `server`, established with `options`.
pub(crate) async fn connect(server: &TestServer, options: ConnectionOptions) -> Connection {
    Connection::connect(
        address(server),
        ConnectionId(1),
        Generation(0),
        Arc::new(options),
    )
    .await
    .unwrap()
}

/// A client for `uri`, with `recorder` (if any) listening to every event family.
pub(crate) async fn client_for(uri: &str, recorder: Option<Arc<EventRecorder>>) -> Client {
    let options = ClientOptions::parse(uri).expect("uri");
    let mut listeners = Listeners::new();
    if let Some(r) = recorder {
        listeners.add_all(r);
    }
    Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await
        .expect("client")
}

/// The CommandStartedEvents `r` saw, in order.
pub(crate) fn started(r: &EventRecorder) -> Vec<CommandStartedEvent> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// The names of the commands `r` saw start, in order.
pub(crate) fn started_names(r: &EventRecorder) -> Vec<String> {
    started(r).into_iter().map(|e| e.command_name).collect()
}

/// The names of the commands `r` saw fail, in order.
pub(crate) fn failed_names(r: &EventRecorder) -> Vec<String> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Failed(f) => Some(f.command_name),
            _ => None,
        })
        .collect()
}

/// A mongos in load-balancer mode holding five documents in `db.c`, a client on it that
/// records its events, and the collection.
pub(crate) async fn load_balanced_with_docs() -> (
    TestServer,
    Arc<EventRecorder>,
    Client,
    mongo_client::Collection,
) {
    let server = TestServer::start(ServerOptions::default().with_load_balancer())
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "mongodb://{}/?loadBalanced=true&serverSelectionTimeoutMS=2000",
        server.host_port()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_many((0..5).map(|i| bson::doc! {"i": i}))
        .await
        .unwrap();
    (server, recorder, client, coll)
}
