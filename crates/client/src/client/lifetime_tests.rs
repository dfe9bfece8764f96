//! `maxLifeTimeMS` (issue 18): from the URI and the builder to the pool, where a connection
//! past its lifetime is closed (reason `expired`) and replaced.
#![allow(
    clippy::disallowed_methods,
    reason = "the test waits out a connection's lifetime"
)]

use std::time::Duration;

use bson::doc;
use mongo_events::EventRecorder;
use mongo_events::cmap::CmapEvent;
use mongo_testkit::{ServerOptions, TestServer};

use super::options_tests::{client_with, recorded};
use crate::options::ClientOptions;

#[tokio::test]
async fn max_lifetime_replaces_connections() {
    use mongo_events::cmap::ConnectionClosedReason;
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    // From the URI (the Java driver's name, any case) and from the builder.
    let uri = format!("{}&maxPoolSize=1&maxLifeTimeMS=300", server.uri());
    let parsed = ClientOptions::parse(&uri).unwrap();
    assert_eq!(parsed.max_lifetime, Some(Duration::from_millis(300)));
    let built = ClientOptions::builder()
        .host(crate::ServerAddress::parse(&server.host_port()).unwrap())
        .max_lifetime(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(built.max_lifetime, Some(Duration::from_secs(5)));
    // An invalid value is ignored with a warning, as the URI options spec has it.
    let negative = ClientOptions::parse(&format!("{}&maxlifetimems=-1", server.uri())).unwrap();
    assert_eq!(negative.max_lifetime, None);

    let (recorder, listeners) = recorded();
    let client = client_with(&uri, listeners).await;
    let checked_out = |r: &EventRecorder| -> Vec<u64> {
        r.cmap_events()
            .into_iter()
            .filter_map(|e| match e {
                CmapEvent::ConnectionCheckedOut(c) => Some(c.connection_id.0),
                _ => None,
            })
            .collect()
    };
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let created = recorder
        .cmap_events()
        .into_iter()
        .find_map(|e| match e {
            CmapEvent::PoolCreated(c) => Some(c.options),
            _ => None,
        })
        .expect("PoolCreated");
    assert_eq!(created.max_lifetime, Some(Duration::from_millis(300)));
    // Within its lifetime the one connection is reused.
    let first = checked_out(&recorder);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0], first[1], "{first:?}");
    tokio::time::sleep(Duration::from_millis(450)).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    let after = checked_out(&recorder);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_ne!(
        after[2], first[0],
        "the expired connection was reused: {after:?}"
    );
    let expired = recorder.cmap_events().into_iter().any(|e| {
        matches!(e, CmapEvent::ConnectionClosed(c)
            if c.connection_id.0 == first[0] && c.reason == ConnectionClosedReason::Expired)
    });
    assert!(expired, "{:?}", recorder.cmap_names());
    client.shutdown().await;
}
