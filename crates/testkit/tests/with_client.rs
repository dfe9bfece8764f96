//! The project's driver against every `Deployment` kind, through the URIs a test runner gets:
//! CRUD, the topology it discovers, and a retried write deduplicated by the session table.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests own their clock and tasks"
)]

use bson::doc;
use mongo_client::{Client, ClientOptions};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

async fn client(uri: &str) -> Client {
    // Streaming monitors wait up to heartbeatFrequencyMS: keep it short.
    let sep = if uri.contains('?') { '&' } else { '?' };
    let uri = format!("{uri}{sep}heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000");
    Client::builder()
        .options(ClientOptions::parse(&uri).unwrap())
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_driver_works_against_every_kind() {
    for kind in [
        DeploymentKind::Single,
        DeploymentKind::ReplicaSet { members: 3 },
        DeploymentKind::Sharded { routers: 2 },
        DeploymentKind::LoadBalanced,
    ] {
        let d = Deployment::start(kind, ServerOptions::default())
            .await
            .unwrap();
        for uri in [d.uri(), d.single_mongos_uri()] {
            let c = client(&uri).await;
            let coll = c.database("db").collection("c");
            coll.insert_one(doc! { "k": d.topology_name() })
                .await
                .unwrap_or_else(|e| panic!("{kind:?} {uri}: {e}"));
            let found = coll.find_one(doc! {}).await.unwrap();
            assert!(found.is_some(), "{kind:?} {uri}");
            d.reset();
        }
        d.stop().await;
    }
}

#[tokio::test]
async fn a_retried_write_is_not_applied_twice() {
    let d = Deployment::start(
        DeploymentKind::ReplicaSet { members: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let c = client(&d.uri()).await;
    let coll = c.database("db").collection("c");
    coll.insert_one(doc! { "_id": 0 }).await.unwrap();
    d.configure_fail_point(doc! {
        "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 },
    })
    .unwrap();
    // The first attempt commits and the connection is closed; the retry is answered from the
    // session table instead of failing with a duplicate key.
    coll.insert_one(doc! { "_id": 1 }).await.unwrap();
    assert_eq!(d.store().documents("db", "c").len(), 2);
    let off = d
        .configure_fail_point(
            doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": "off" },
        )
        .unwrap();
    assert_eq!(off.get_i32("count").ok(), Some(1), "the fail point fired");
}

#[tokio::test]
async fn tailable_cursors_stay_open_and_see_later_inserts() {
    let d = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    let c = client(&d.uri()).await;
    let db = c.database("tail");
    db.run_command(doc! {"create": "capped", "capped": true, "size": 4096})
        .await
        .unwrap();
    db.run_command(doc! {"create": "plain"}).await.unwrap();
    let coll = db.collection("capped");
    coll.insert_one(doc! {"_id": 1}).await.unwrap();
    let mut cursor = db
        .run_cursor_command(doc! {"find": "capped", "tailable": true, "batchSize": 5})
        .await
        .unwrap();
    assert_eq!(cursor.try_next_once().await.unwrap(), Some(doc! {"_id": 1}));
    // Nothing new: an empty batch, and the cursor stays open.
    assert_eq!(cursor.try_next_once().await.unwrap(), None);
    assert_ne!(cursor.id(), 0);
    coll.insert_one(doc! {"_id": 2}).await.unwrap();
    assert_eq!(cursor.try_next_once().await.unwrap(), Some(doc! {"_id": 2}));
    cursor.close().await;
    // As on mongod, a tailable cursor needs a capped collection.
    let err = db
        .run_cursor_command(doc! {"find": "plain", "tailable": true})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(2));
}

#[tokio::test]
async fn check_metadata_consistency_is_a_mongos_cursor_command() {
    let d = Deployment::start(
        DeploymentKind::Sharded { routers: 2 },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let c = client(&d.single_mongos_uri()).await;
    let found = c
        .database("db")
        .run_cursor_command(doc! {"checkMetadataConsistency": 1})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert!(found.is_empty());
    let single = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    let c = client(&single.uri()).await;
    let err = c
        .run_command("db", doc! {"checkMetadataConsistency": 1})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(59));
}

#[tokio::test]
async fn merge_stages_merge_into_their_target() {
    let d = Deployment::start(DeploymentKind::Single, ServerOptions::default())
        .await
        .unwrap();
    let c = client(&d.uri()).await;
    let db = c.database("m");
    db.collection("src")
        .insert_many(vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 2}])
        .await
        .unwrap();
    db.collection("dst")
        .insert_one(doc! {"_id": 1, "y": 9})
        .await
        .unwrap();
    let out = db
        .collection::<mongo_client::bson::Document>("src")
        .aggregate(vec![doc! {"$merge": {"into": "dst"}}])
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert!(out.is_empty());
    // The default: matched documents merged, unmatched inserted.
    assert_eq!(
        d.store().documents("m", "dst"),
        vec![doc! {"_id": 1, "y": 9, "x": 1}, doc! {"_id": 2, "x": 2}]
    );
    let err = db
        .collection::<mongo_client::bson::Document>("src")
        .aggregate(vec![
            doc! {"$merge": {"into": "dst", "whenMatched": "fail"}},
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(11000));
}
