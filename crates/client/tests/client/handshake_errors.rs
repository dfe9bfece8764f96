//! SDAM error handling of errors while opening a pool's connection: an error during
//! authentication marks the server Unknown and clears its pool before the connection is
//! closed, and the operation gets that error (not the clear's); behind a load balancer,
//! errors up to the end of the hello are ignored, errors during authentication clear the
//! hello's service only, and an error on a connection of a service generation already
//! cleared is stale.

use bson::doc;
use mongo_client::FindOptions;
use mongo_client::event::cmap::CmapEvent;
use mongo_client::event::sdam::ServerEvent;
use mongo_client::event::{EventRecorder, ServerType};
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, load_balanced_with_docs};

/// The CMAP events from the first `ConnectionCreated` on, by name, without check-out starts.
fn from_first_created(r: &EventRecorder) -> Vec<&'static str> {
    let names: Vec<&'static str> = r
        .cmap_names()
        .into_iter()
        .filter(|n| *n != "ConnectionCheckOutStarted")
        .collect();
    let from = names
        .iter()
        .position(|n| *n == "ConnectionCreated")
        .unwrap_or(names.len());
    names[from..].to_vec()
}

fn marked_unknown(r: &EventRecorder) -> usize {
    r.server_events()
        .iter()
        .filter(|e| matches!(e, ServerEvent::DescriptionChanged(c) if c.new_description.server_type == ServerType::Unknown))
        .count()
}

fn pool_clears(r: &EventRecorder) -> Vec<CmapEvent> {
    r.cmap_events()
        .into_iter()
        .filter(|e| matches!(e, CmapEvent::PoolCleared(_)))
        .collect()
}

/// A server with a user, whose next `command` fails for clients named `app` as `data` says.
async fn failing_server(options: ServerOptions, command: &str, data: bson::Document) -> TestServer {
    let server = TestServer::start(options.with_user("app", "s3cret"))
        .await
        .unwrap();
    let mut data = data;
    data.insert("failCommands", vec![command]);
    data.insert("appName", "handshakeErrors");
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1}, "data": data,
        })
        .unwrap();
    server
}

fn uri(server: &TestServer, options: &str) -> String {
    format!(
        "mongodb://app:s3cret@{}/?appname=handshakeErrors&retryWrites=false&heartbeatFrequencyMS=500\
         &serverSelectionTimeoutMS=5000&{options}",
        server.host_port()
    )
}

#[tokio::test]
async fn an_authentication_error_marks_the_server_unknown_and_clears_the_pool_first() {
    for data in [
        doc! {"errorCode": 18},
        doc! {"closeConnection": true},
        doc! {"errorCode": 91},
    ] {
        let server = failing_server(ServerOptions::default(), "saslContinue", data.clone()).await;
        let recorder = EventRecorder::shared();
        let client = client_for(
            &uri(&server, "directConnection=true"),
            Some(recorder.clone()),
        )
        .await;
        let coll = client.database("db").collection("c");
        let err = coll.insert_one(doc! {"x": 1}).await.unwrap_err();
        assert!(
            !err.is_pool_cleared(),
            "{data}: the operation gets its own error: {err:?}"
        );
        assert_eq!(
            marked_unknown(&recorder),
            1,
            "{data}: {:?}",
            recorder.server_events()
        );
        assert_eq!(pool_clears(&recorder).len(), 1, "{data}");
        assert_eq!(
            from_first_created(&recorder),
            [
                "ConnectionCreated",
                "ConnectionPoolCleared",
                "ConnectionClosed",
                "ConnectionCheckOutFailed"
            ],
            "{data}: the pool is cleared before the connection is closed"
        );
        // The server is rediscovered and the next operation succeeds.
        coll.insert_one(doc! {"x": 2}).await.unwrap();
        client.shutdown().await;
    }
}

#[tokio::test]
async fn a_network_error_during_the_hello_is_an_overload_signal_sdam_ignores() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "mongodb://{}/?directConnection=true&appname=helloFails&serverSelectionTimeoutMS=5000",
        server.host_port()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    // The monitor's connection is open already: the next hello is a new pool connection's.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["hello", "isMaster"], "closeConnection": true,
                     "appName": "helloFails"},
        })
        .unwrap();
    let coll = client.database("db").collection("c");
    let (a, b) = tokio::join!(
        coll.insert_one(doc! {"x": 1}),
        coll.insert_one(doc! {"x": 2})
    );
    // One of the two needed a second connection, whose hello failed; the error is labelled
    // an overload error and retried, and the server is neither marked Unknown nor cleared.
    a.unwrap();
    b.unwrap();
    assert_eq!(
        marked_unknown(&recorder),
        0,
        "{:?}",
        recorder.server_events()
    );
    assert!(
        pool_clears(&recorder).is_empty(),
        "{:?}",
        recorder.cmap_names()
    );
    client.shutdown().await;
}

#[tokio::test]
async fn behind_a_load_balancer_hello_errors_are_ignored_and_auth_errors_clear_the_service() {
    // An error during the hello: nothing for SDAM, the pool is not cleared.
    let server = failing_server(
        ServerOptions::default().with_load_balancer(),
        "hello",
        doc! {"errorCode": 11600},
    )
    .await;
    let recorder = EventRecorder::shared();
    let client = client_for(&uri(&server, "loadBalanced=true"), Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"x": 1}).await.unwrap_err();
    assert_eq!(
        from_first_created(&recorder),
        [
            "ConnectionCreated",
            "ConnectionClosed",
            "ConnectionCheckOutFailed"
        ]
    );
    client.shutdown().await;

    // An error during authentication: the hello's service is cleared, first.
    let server = failing_server(
        ServerOptions::default().with_load_balancer(),
        "saslContinue",
        doc! {"closeConnection": true},
    )
    .await;
    let recorder = EventRecorder::shared();
    let client = client_for(&uri(&server, "loadBalanced=true"), Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_one(doc! {"x": 1}).await.unwrap_err();
    assert_eq!(
        from_first_created(&recorder),
        [
            "ConnectionCreated",
            "ConnectionPoolCleared",
            "ConnectionClosed",
            "ConnectionCheckOutFailed"
        ]
    );
    match pool_clears(&recorder).as_slice() {
        [CmapEvent::PoolCleared(c)] => assert!(c.service_id.is_some(), "{c:?}"),
        other => panic!("{other:?}"),
    }
    client.shutdown().await;
}

#[tokio::test]
async fn behind_a_load_balancer_an_error_of_a_cleared_service_generation_is_stale() {
    let (server, recorder, client, coll) = load_balanced_with_docs().await;
    // Two cursors pin two connections of the same service and generation.
    let mut first = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    let mut second = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 2},
            "data": {"failCommands": ["getMore"], "closeConnection": true},
        })
        .unwrap();
    for cursor in [&mut first, &mut second] {
        let mut outcome = Ok(());
        for _ in 0..3 {
            match cursor.try_next().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        assert!(outcome.is_err(), "the getMore failed");
    }
    // The first failure cleared the service; the second, on a connection of the generation
    // that clear ended, is stale.
    assert_eq!(
        pool_clears(&recorder).len(),
        1,
        "{:?}",
        recorder.cmap_names()
    );
    drop((first, second));
    client.shutdown().await;
}

#[tokio::test]
async fn behind_a_load_balancer_an_auth_error_of_a_service_cleared_since_its_hello_is_stale() {
    let server = TestServer::start(
        ServerOptions::default()
            .with_load_balancer()
            .with_user("app", "s3cret"),
    )
    .await
    .unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&uri(&server, "loadBalanced=true"), Some(recorder.clone())).await;
    let coll = client.database("db").collection("c");
    coll.insert_many((0..5).map(|i| doc! {"i": i}))
        .await
        .unwrap();
    // Two cursors pin two connections of the service (which keep its generation).
    let mut first = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    let second = coll
        .find(doc! {})
        .with_options(FindOptions::default().batch_size(2))
        .await
        .unwrap();
    // A third connection completes its hello, then its authentication hangs and fails.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {
                "failCommands": ["saslContinue"], "appName": "handshakeErrors",
                "blockConnection": true, "blockTimeMS": 600, "errorCode": 18,
            },
        })
        .unwrap();
    let insert = {
        let coll = coll.clone();
        tokio::spawn(async move { coll.insert_one(doc! {"x": 1}).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Meanwhile a network error on the first cursor's connection clears the service.
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["getMore"], "closeConnection": true},
        })
        .unwrap();
    let mut failed = false;
    for _ in 0..3 {
        match first.try_next().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the getMore failed");
    assert_eq!(pool_clears(&recorder).len(), 1);
    // The authentication error belongs to the generation that clear ended: stale.
    insert.await.unwrap().unwrap_err();
    assert_eq!(
        pool_clears(&recorder).len(),
        1,
        "{:?}",
        recorder.cmap_names()
    );
    drop((first, second));
    client.shutdown().await;
}

#[tokio::test]
async fn a_background_establishment_error_of_an_older_generation_is_stale() {
    // The minPoolSize connection's authentication hangs, then fails.
    let server = failing_server(
        ServerOptions::default(),
        "saslContinue",
        doc! {"blockConnection": true, "blockTimeMS": 1500, "errorCode": 18},
    )
    .await;
    let recorder = EventRecorder::shared();
    let client = client_for(
        &uri(
            &server,
            "directConnection=true&minPoolSize=1&serverMonitoringMode=poll",
        ),
        Some(recorder.clone()),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(pool_clears(&recorder).is_empty());
    // Meanwhile a failed heartbeat clears the pool (generation 0 ends).
    server
        .configure_fail_point(doc! {
            "configureFailPoint": "failCommand", "mode": {"times": 1},
            "data": {"failCommands": ["hello", "isMaster"], "closeConnection": true},
        })
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1000);
    while pool_clears(&recorder).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        pool_clears(&recorder).len(),
        1,
        "{:?}",
        recorder.cmap_names()
    );
    let unknown = marked_unknown(&recorder);
    // The background connection's error, of generation 0, is stale: no second clear, the
    // server is not marked Unknown again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let names = recorder.cmap_names();
    assert!(
        names.contains(&"ConnectionClosed"),
        "the background connection failed: {names:?}"
    );
    assert_eq!(pool_clears(&recorder).len(), 1, "{names:?}");
    assert_eq!(marked_unknown(&recorder), unknown);
    client.shutdown().await;
}
