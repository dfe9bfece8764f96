//! Causal consistency against a replica set whose secondaries lag: a read on a secondary
//! outside a causally consistent session can miss the client's own write, the same read in
//! the session that wrote carries `afterClusterTime` and the secondary waits until it has
//! applied the write, so the session reads its own write.

use std::time::Duration;

use bson::{Document, doc};
use mongo_client::event::EventRecorder;
use mongo_client::{CollectionOptions, ReadMode, ReadPreference, SessionOptions};
use mongo_testkit::{ReplicaSet, ServerOptions};

use crate::common::{client_for, started};

#[tokio::test]
async fn a_causal_session_reads_its_own_write_on_a_lagging_secondary() {
    let lag = Duration::from_millis(1500);
    let rs = ReplicaSet::start_with(
        "causalLag",
        3,
        ServerOptions::default().with_replication_lag(lag),
    )
    .await
    .unwrap();
    let recorder = EventRecorder::shared();
    let client = client_for(&rs.uri(), Some(recorder.clone())).await;
    assert!(client.wait_for_discovery(Duration::from_secs(5)).await);
    let coll = client.database("app").collection_with_options::<Document>(
        "c",
        CollectionOptions::default().read_preference(ReadPreference::new(ReadMode::Secondary)),
    );
    let mut session = client
        .start_session(SessionOptions::default().causal_consistency(true))
        .unwrap();
    coll.insert_one(doc! {"_id": 1})
        .session(&mut session)
        .await
        .unwrap();

    // Outside the session the secondary answers at once, with what it has: nothing yet.
    let stale = coll
        .find(doc! {})
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert!(stale.is_empty(), "{stale:?}");

    // In the session, the read waits for the secondary to apply the insert.
    let own = coll
        .find(doc! {})
        .session(&mut session)
        .await
        .unwrap()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(own, vec![doc! {"_id": 1}]);

    let finds: Vec<Document> = started(&recorder)
        .into_iter()
        .filter(|e| e.command_name == "find")
        .map(|e| e.command)
        .collect();
    assert_eq!(finds.len(), 2, "{finds:?}");
    let insert_time = session.operation_time().unwrap();
    let causal = finds[1].get_document("readConcern").unwrap();
    assert_eq!(
        causal.get_timestamp("afterClusterTime").ok(),
        Some(insert_time)
    );
    assert!(
        !finds[0]
            .get_document("readConcern")
            .is_ok_and(|rc| rc.contains_key("afterClusterTime"))
    );
    for find in &finds {
        let mode = find
            .get_document("$readPreference")
            .and_then(|rp| rp.get_str("mode"))
            .unwrap();
        assert_eq!(mode, "secondary");
    }
    let primary = rs.primary().unwrap().host_port();
    assert!(
        started(&recorder)
            .iter()
            .filter(|e| e.command_name == "find")
            .all(|e| e.connection.address.to_string() != primary),
        "the reads went to secondaries"
    );
    client.shutdown().await;
    rs.stop().await;
}
