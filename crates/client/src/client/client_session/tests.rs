//! The sans-I/O session rules: what a command gets in each state of a session, and what a
//! reply teaches it.
#![allow(
    clippy::disallowed_methods,
    reason = "a server session is created at a point in time; any will do"
)]

use std::time::Instant;

use bson::{Document, Timestamp, doc};

use super::core::{CommandFacts, SessionCore, later_cluster_time};
use crate::client::session::ServerSession;

const READ: CommandFacts = CommandFacts {
    takes_read_concern: true,
    max_wire_version: 25,
};
const WRITE: CommandFacts = CommandFacts {
    takes_read_concern: false,
    max_wire_version: 25,
};

fn ts(time: u32, increment: u32) -> Timestamp {
    Timestamp { time, increment }
}

fn cluster_time(t: Timestamp) -> Document {
    doc! {"clusterTime": t, "signature": {"keyId": 0_i64}}
}

fn applied(core: &SessionCore, mut body: Document, facts: CommandFacts) -> Document {
    core.apply_read_concern(&mut body, facts).unwrap();
    body
}

#[test]
fn a_causally_consistent_session_sends_after_cluster_time_on_reads_after_the_first() {
    let mut core = SessionCore::new(1, true, false, None);
    // First read: no operation time yet, nothing added.
    assert_eq!(applied(&core, doc! {"find": "c"}, READ), doc! {"find": "c"});
    core.observe(
        &doc! {"ok": 1, "operationTime": ts(5, 1), "$clusterTime": cluster_time(ts(5, 1))},
    );
    assert_eq!(core.operation_time(), Some(ts(5, 1)));
    // Later reads wait for it, beside the level already there.
    assert_eq!(
        applied(&core, doc! {"find": "c"}, READ),
        doc! {"find": "c", "readConcern": {"afterClusterTime": ts(5, 1)}}
    );
    assert_eq!(
        applied(
            &core,
            doc! {"find": "c", "readConcern": {"level": "majority"}},
            READ
        ),
        doc! {"find": "c", "readConcern": {"level": "majority", "afterClusterTime": ts(5, 1)}}
    );
    // The writes that take it get `afterClusterTime` alone (read and write concern spec);
    // commands that take no read concern get nothing.
    assert_eq!(
        applied(&core, doc! {"insert": "c"}, WRITE),
        doc! {"insert": "c", "readConcern": {"afterClusterTime": ts(5, 1)}}
    );
    assert_eq!(applied(&core, doc! {"ping": 1}, WRITE), doc! {"ping": 1});
    // An error reply still advances the operation time; an older one does not go back.
    core.observe(&doc! {"ok": 0, "code": 2, "operationTime": ts(6, 0)});
    core.observe(&doc! {"ok": 1, "operationTime": ts(4, 9)});
    assert_eq!(core.operation_time(), Some(ts(6, 0)));
}

#[test]
fn a_session_without_causal_consistency_sends_no_after_cluster_time() {
    let mut core = SessionCore::new(1, false, false, None);
    core.observe(&doc! {"ok": 1, "operationTime": ts(5, 1)});
    assert_eq!(applied(&core, doc! {"find": "c"}, READ), doc! {"find": "c"});
    // advanceOperationTime moves it forward only.
    core.advance_operation_time(ts(7, 0));
    core.advance_operation_time(ts(6, 0));
    assert_eq!(core.operation_time(), Some(ts(7, 0)));
}

#[test]
fn a_snapshot_session_reads_at_the_first_reads_cluster_time() {
    let mut core = SessionCore::new(1, false, true, None);
    // First command: the level only.
    assert_eq!(
        applied(&core, doc! {"find": "c"}, READ),
        doc! {"find": "c", "readConcern": {"level": "snapshot"}}
    );
    // find / aggregate answer in `cursor`, distinct at the top level; the first one wins.
    core.observe(
        &doc! {"ok": 1, "cursor": {"id": 0_i64, "firstBatch": [], "atClusterTime": ts(9, 2)}},
    );
    core.observe(&doc! {"ok": 1, "atClusterTime": ts(10, 0)});
    assert_eq!(core.snapshot_time(), Some(ts(9, 2)));
    let snapshot = doc! {"level": "snapshot", "atClusterTime": ts(9, 2)};
    assert_eq!(
        applied(&core, doc! {"distinct": "c"}, READ),
        doc! {"distinct": "c", "readConcern": snapshot.clone()}
    );
    // Every command gets it, writes too (the server refuses them), the level replacing any
    // other; a cursor's getMore and killCursors do not.
    assert_eq!(
        applied(
            &core,
            doc! {"insert": "c", "readConcern": {"level": "local"}},
            WRITE
        ),
        doc! {"insert": "c", "readConcern": snapshot}
    );
    for cmd in [doc! {"getMore": 5_i64}, doc! {"killCursors": "c"}] {
        assert_eq!(applied(&core, cmd.clone(), READ), cmd);
    }
    // Causal consistency is off in a snapshot session.
    core.observe(&doc! {"ok": 1, "operationTime": ts(11, 0)});
    assert!(
        !applied(&core, doc! {"find": "c"}, READ)
            .get_document("readConcern")
            .unwrap()
            .contains_key("afterClusterTime")
    );
}

#[test]
fn a_given_snapshot_time_is_used_from_the_first_read_and_old_servers_are_refused() {
    let core = SessionCore::new(1, false, true, Some(ts(3, 3)));
    assert_eq!(
        applied(&core, doc! {"aggregate": "c"}, READ),
        doc! {"aggregate": "c", "readConcern": {"level": "snapshot", "atClusterTime": ts(3, 3)}}
    );
    let old = CommandFacts {
        max_wire_version: 12,
        ..READ
    };
    let err = core
        .apply_read_concern(&mut doc! {"find": "c"}, old)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Snapshot reads require MongoDB 5.0 or later"),
        "{err}"
    );
}

#[test]
fn the_cluster_time_sent_is_the_later_of_the_clients_and_the_sessions() {
    let mut core = SessionCore::new(1, true, false, None);
    assert_eq!(core.cluster_time(), None);
    core.advance_cluster_time(&cluster_time(ts(8, 0)));
    core.advance_cluster_time(&cluster_time(ts(7, 0)));
    assert_eq!(core.cluster_time(), Some(&cluster_time(ts(8, 0))));
    let client = Some(cluster_time(ts(6, 0)));
    assert_eq!(
        later_cluster_time(client.clone(), core.cluster_time()),
        Some(cluster_time(ts(8, 0)))
    );
    let newer = Some(cluster_time(ts(9, 0)));
    assert_eq!(
        later_cluster_time(newer.clone(), core.cluster_time()),
        newer
    );
    assert_eq!(
        later_cluster_time(None, core.cluster_time()),
        Some(cluster_time(ts(8, 0)))
    );
    assert_eq!(later_cluster_time(client.clone(), None), client);
}

#[test]
fn the_server_session_is_taken_at_first_use_and_given_back_once() {
    let now = Instant::now();
    let mut core = SessionCore::new(1, true, false, None);
    let mut taken = 0;
    let id = core
        .server_session(|| {
            taken += 1;
            ServerSession::new(now)
        })
        .unwrap()
        .id
        .clone();
    // Later uses keep it (and its transaction numbers).
    let again = core.server_session(|| panic!("taken twice")).unwrap();
    assert_eq!(again.id, id);
    assert_eq!(again.next_txn_number(), 1);
    assert_eq!(
        core.server_session(|| panic!()).unwrap().next_txn_number(),
        2
    );
    assert_eq!(taken, 1);
    assert!(!core.is_dirty());
    core.mark_dirty();
    assert!(core.is_dirty());
    // The end gives it back once; the id stays; later use is an error.
    let back = core.end().unwrap();
    assert!(back.dirty);
    assert!(core.end().is_none());
    assert_eq!(core.id(|| panic!(), || panic!()), id);
    assert!(core.server_session(|| panic!()).is_err());
    assert!(core.check_usable().is_err());
}

#[test]
fn an_unused_session_takes_its_id_on_demand() {
    let now = Instant::now();
    let mut core = SessionCore::new(1, true, false, None);
    let id = core.id(|| ServerSession::new(now), || panic!("not ended"));
    // Its first operation uses that server session.
    assert_eq!(core.server_session(|| panic!()).unwrap().id, id);
    // A session ended unused makes one up for its id; there is nothing to give back.
    let mut unused = SessionCore::new(1, true, false, None);
    assert!(unused.end().is_none());
    let made = ServerSession::new(now).id;
    assert_eq!(unused.id(|| panic!(), || made.clone()), made);
}
