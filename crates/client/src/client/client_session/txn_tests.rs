//! The transaction state machine and command shaping, sans-I/O.

use bson::{Timestamp, doc};

use super::TransactionOptions;
use super::txn::{Transaction, TransactionState};
use crate::client::ReadConcern;

#[test]
fn first_command_starts_the_transaction_with_its_read_concern() {
    let mut t = Transaction::default();
    let opts = TransactionOptions::default().read_concern(ReadConcern::new("majority"));
    t.start(4, opts).unwrap();
    assert_eq!(t.state, TransactionState::Starting);
    let mut body = doc! {"find": "c", "readConcern": {"level": "local"}};
    let at = Timestamp {
        time: 1,
        increment: 2,
    };
    t.shape(&mut body, false, Some(at)).unwrap();
    assert_eq!(
        body,
        doc! {"find": "c", "txnNumber": 4_i64, "startTransaction": true,
        "readConcern": {"level": "majority", "afterClusterTime": at}, "autocommit": false}
    );
    t.state = TransactionState::InProgress;
    let mut body = doc! {"insert": "c"};
    t.shape(&mut body, false, Some(at)).unwrap();
    assert_eq!(
        body,
        doc! {"insert": "c", "txnNumber": 4_i64, "autocommit": false}
    );
    assert!(t.shape(&mut doc! {"insert": "c"}, true, None).is_err());
    assert!(t.start(5, TransactionOptions::default()).is_err());
}

#[test]
fn a_commit_again_uses_majority_with_a_timeout() {
    let mut t = Transaction::default();
    t.start(1, TransactionOptions::default()).unwrap();
    t.observe(&doc! {"ok": 1, "recoveryToken": {"x": 1}});
    assert_eq!(
        t.finish_command("commitTransaction", false),
        doc! {"commitTransaction": 1, "recoveryToken": {"x": 1}, "txnNumber": 1_i64,
        "autocommit": false}
    );
    let again = t.finish_command("commitTransaction", true);
    assert_eq!(
        again.get_document("writeConcern").unwrap(),
        &doc! {"w": "majority", "wtimeout": 10_000}
    );
    assert!(
        !t.finish_command("abortTransaction", true)
            .contains_key("writeConcern")
    );
}
