//! Tests of the facade error: labels, codes, the predicates SDAM and retries use, and how
//! replies become errors.

use super::*;
use bson::doc;

#[test]
fn reply_errors_keep_code_name_and_labels() {
    let e = Error::from_reply(&doc! {
        "ok": 0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary",
        "errorLabels": ["RetryableWriteError"]
    });
    assert_eq!(e.code(), Some(10107));
    assert!(e.is_not_writable_primary());
    assert!(e.is_state_change());
    assert!(!e.is_recovering());
    assert!(e.is_retryable_write());
    assert!(e.is_retryable_read());
    assert!(!e.is_network_error());
    let shown = e.to_string();
    assert!(shown.contains("NotWritablePrimary") && shown.contains("RetryableWriteError"));
}

#[test]
fn a_reply_error_keeps_the_whole_reply_unless_redacted() {
    let reply = doc! {
        "ok": 0, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000",
        "keyPattern": {"x": 1}, "keyValue": {"x": "foo"}
    };
    let e = Error::from_reply(&reply);
    let ErrorKind::Command(c) = e.kind() else {
        panic!("a command error: {e}");
    };
    assert_eq!(c.response, reply);
    let ErrorKind::Command(c) = e.redacted().kind().clone() else {
        panic!("a command error");
    };
    assert!(c.response.is_empty());
}

#[test]
fn shutdown_and_recovering_codes() {
    let e = Error::from_reply(&doc! {"ok": 0, "code": 91, "errmsg": "shutting down"});
    assert!(e.is_shutdown() && e.is_recovering() && e.is_state_change());
    assert!(!e.is_retryable_write(), "no label: not retryable on 4.4+");
    let e = Error::from_reply(&doc! {"ok": 0.0, "code": 2.0, "errmsg": "bad value"});
    assert_eq!(e.code(), Some(2));
    assert!(!e.is_state_change() && !e.is_retryable_read());
}

#[test]
fn io_errors_are_network_errors_and_clone_cheaply() {
    let e = Error::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
    let c = e.clone();
    assert!(c.is_network_error() && c.is_network_timeout() && c.is_retryable_read());
    assert!(matches!(
        c.sdam_kind(),
        Some(mongo_sdam::AppErrorKind::Timeout)
    ));
    let reset = Error::from(mongo_wire::Error::Io(std::io::Error::from(
        std::io::ErrorKind::ConnectionReset,
    )));
    assert!(matches!(reset.kind(), ErrorKind::Io(_)));
    assert!(matches!(
        reset.sdam_kind(),
        Some(mongo_sdam::AppErrorKind::Network)
    ));
}

#[test]
fn write_replies_yield_write_failures() {
    assert!(Error::from_write_reply(&doc! {"ok": 1, "n": 1}).is_none());
    let e = Error::from_write_reply(&doc! {
        "ok": 1, "n": 0,
        "writeErrors": [{"index": 0, "code": 11000, "errmsg": "duplicate key"}],
    })
    .unwrap();
    assert_eq!(e.code(), Some(11000));
    assert!(!e.is_state_change());
    let e = Error::from_write_reply(&doc! {
        "ok": 1, "n": 1,
        "writeConcernError": {"code": 91, "errmsg": "shutdown", "errorLabels": ["RetryableWriteError"]},
    })
    .unwrap();
    assert!(e.is_shutdown() && e.is_retryable_write());
}

#[test]
fn overload_labels_and_base_backoff_ms() {
    let e = Error::from_reply(&doc! {
        "ok": 0, "code": 462, "errmsg": "rate exceeded", "baseBackoffMS": 50,
        "errorLabels": ["SystemOverloadedError", "RetryableError"],
    });
    assert!(e.is_overload_error() && e.is_retryable_overload_error());
    assert_eq!(e.base_backoff(), Some(Duration::from_millis(50)));
    let only_overloaded = Error::from_reply(&doc! {
        "ok": 0, "code": 462, "errorLabels": ["SystemOverloadedError"],
    });
    assert!(only_overloaded.is_overload_error());
    assert!(!only_overloaded.is_retryable_overload_error());
    assert_eq!(only_overloaded.base_backoff(), None);
    for (value, expected) in [
        (Bson::Int64(20), Some(Duration::from_millis(20))),
        (Bson::Double(2.5), Some(Duration::from_micros(2500))),
        (Bson::Int32(0), None),
        (Bson::Int32(-5), None),
        (Bson::Double(f64::NAN), None),
        (Bson::String("50".into()), None),
    ] {
        let e = Error::from_reply(&doc! {"ok": 0, "code": 462, "baseBackoffMS": value.clone()});
        assert_eq!(e.base_backoff(), expected, "{value:?}");
    }
}

#[test]
fn read_concern_majority_not_available_yet_is_retryable_for_reads_only() {
    let e = Error::from_reply(
        &doc! {"ok": 0, "code": 134, "codeName": "ReadConcernMajorityNotAvailableYet"},
    );
    assert!(e.is_retryable_read());
    assert!(!e.is_retryable_write());
}
