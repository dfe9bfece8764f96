//! `Client::append_metadata`: the appended driver info reaches the options new connections are
//! opened with, once per distinct info, without touching open connections.

use bson::doc;
use mongo_testkit::{ServerOptions, TestServer};

use crate::conn::DriverInfo;
use crate::{Client, ClientOptions};

#[tokio::test]
async fn appended_metadata_is_used_by_new_connections_only_once() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = Client::with_options(ClientOptions::parse(&server.uri()).unwrap())
        .await
        .unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let opened = server.connections_accepted();
    let before = client.inner.topology.connection_options().metadata.clone();

    let info = DriverInfo::new("framework").version("2.0");
    client.append_metadata(info.clone()).unwrap();
    client.append_metadata(info).unwrap();
    let after = client.inner.topology.connection_options().metadata.clone();
    let name = |m: &bson::Document| {
        m.get_document("driver")
            .unwrap()
            .get_str("name")
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(&after), format!("{}|framework", name(&before)));
    // No connection was opened (or closed) for it; the pooled one is reused.
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    assert_eq!(server.connections_accepted(), opened);
    // A bad name is refused and changes nothing.
    assert!(client.append_metadata(DriverInfo::new("a|b")).is_err());
    assert_eq!(client.inner.topology.connection_options().metadata, after);
}
