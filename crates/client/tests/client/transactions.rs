//! Transactions against the testkit (transactions spec): `start_transaction` refuses a
//! deployment known not to support transactions (a standalone, a server too old), and a
//! session dropped with a transaction open outside of any Tokio runtime still aborts it.

use std::time::Duration;

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{Client, ErrorKind};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

use crate::common::{client_for, started_names};

/// Waits until every server of `client`'s topology has been checked once.
async fn discovered(client: &Client) {
    let known = client
        .wait_for_topology(Duration::from_secs(5), |d| {
            d.servers()
                .all(|s| s.server_type != mongo_client::ServerType::Unknown)
        })
        .await;
    assert!(known, "{:?}", client.topology_description());
}

/// Starts `kind` with `options`, a client on it that has discovered it, and what
/// `start_transaction` answers.
async fn start_transaction_on(
    kind: DeploymentKind,
    options: ServerOptions,
) -> mongo_client::error::Result<()> {
    let d = Deployment::start(kind, options).await.unwrap();
    let client = client_for(&d.uri(), None).await;
    discovered(&client).await;
    let mut session = client.start_session(None).unwrap();
    let result = session.start_transaction(None);
    drop(session);
    client.shutdown().await;
    d.stop().await;
    result
}

/// Transactions spec, startTransaction: "SHOULD report an error if the driver can detect
/// that transactions are not supported by the deployment". Transactions need a replica set
/// of 4.0 (wire version 7) or a sharded cluster of 4.2 (wire version 8); a standalone has
/// none.
#[tokio::test]
async fn start_transaction_refuses_deployments_without_transactions() {
    for (name, kind, version, wire) in [
        (
            "replica set 3.6",
            DeploymentKind::ReplicaSet { members: 1 },
            "3.6.23",
            6,
        ),
        (
            "sharded 4.0",
            DeploymentKind::Sharded { routers: 1 },
            "4.0.28",
            7,
        ),
    ] {
        let options = ServerOptions::default().with_version(version, wire);
        let err = start_transaction_on(kind, options).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::IncompatibleServer(_)),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("wire version {wire};")),
            "{name}: {err}"
        );
    }
    let err = start_transaction_on(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Usage(_)) && err.to_string().contains("standalone"),
        "{err}"
    );
    for (name, kind) in [
        ("replica set", DeploymentKind::ReplicaSet { members: 1 }),
        ("sharded", DeploymentKind::Sharded { routers: 1 }),
    ] {
        let r = start_transaction_on(kind, ServerOptions::default()).await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    // The lowest versions are enough: a replica set of 4.0, a sharded cluster of 4.2.
    for (name, kind, version, wire) in [
        (
            "replica set 4.0",
            DeploymentKind::ReplicaSet { members: 1 },
            "4.0.28",
            7,
        ),
        (
            "sharded 4.2",
            DeploymentKind::Sharded { routers: 1 },
            "4.2.25",
            8,
        ),
    ] {
        let options = ServerOptions::default().with_version(version, wire);
        let r = start_transaction_on(kind, options).await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
}

/// Transactions spec, endSession: a session ended with a transaction in progress aborts it.
/// Here the session is dropped on a thread outside of any Tokio runtime: the abort runs in
/// the runtime the client was built in, the transaction's write is gone, and a write to the
/// same document outside of it does not conflict.
#[test]
fn a_session_dropped_outside_the_runtime_aborts_its_transaction() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let recorder = EventRecorder::shared();
    let (d, client, session) = runtime.block_on(async {
        let d = Deployment::start(
            DeploymentKind::ReplicaSet { members: 1 },
            ServerOptions::default(),
        )
        .await
        .unwrap();
        let client = client_for(&d.uri(), Some(recorder.clone())).await;
        let coll = client.database("db").collection::<Document>("txn");
        coll.insert_one(doc! {"_id": 1, "v": 0}).await.unwrap();
        let mut session = client.start_session(None).unwrap();
        session.start_transaction(None).unwrap();
        coll.update_one(doc! {"_id": 1}, doc! {"$set": {"v": 1}})
            .session(&mut session)
            .await
            .unwrap();
        (d, client, session)
    });
    // No runtime on this thread: the drop must find the client's.
    assert!(tokio::runtime::Handle::try_current().is_err());
    drop(session);
    runtime.block_on(async {
        let aborted = tokio::time::timeout(Duration::from_secs(5), async {
            while !started_names(&recorder).contains(&"abortTransaction".to_owned()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(aborted.is_ok(), "{:?}", started_names(&recorder));
        let coll = client.database("db").collection::<Document>("txn");
        // Without the abort, this write would conflict with the open transaction's.
        coll.update_one(doc! {"_id": 1}, doc! {"$inc": {"v": 10}})
            .await
            .unwrap();
        let found = coll.find_one(doc! {"_id": 1}).await.unwrap().unwrap();
        assert_eq!(found.get_i32("v").unwrap(), 10, "{found}");
        client.shutdown().await;
        d.stop().await;
    });
}
