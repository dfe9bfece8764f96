//! Unit tests of the fail point modes and predicates.

use super::*;

fn target<'a>(command: &'a str, app: Option<&'a str>) -> Target<'a> {
    Target {
        command,
        app_name: app,
        namespace: "db.coll",
    }
}

fn configure(fp: &FailPoints, cmd: Document) -> Document {
    fp.configure(&cmd).unwrap()
}

#[test]
fn times_counts_only_matching_commands_and_count_reports_activations() {
    let fp = FailPoints::default();
    let r = configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 2 },
            "data": { "failCommands": ["find"], "errorCode": 91, "errorLabels": ["X"] },
        },
    );
    assert_eq!(r.get_i32("count").unwrap(), 0);
    assert!(fp.check(&target("insert", None)).is_noop());
    let a = fp.check(&target("find", None));
    assert_eq!(a.error.as_ref().map(|e| e.0), Some(91));
    assert_eq!(a.labels, Some(vec!["X".to_string()]));
    assert!(fp.check(&target("find", None)).error.is_some());
    assert!(fp.check(&target("find", None)).is_noop());
    let r = configure(
        &fp,
        doc! { "configureFailPoint": "failCommand", "mode": "off" },
    );
    assert_eq!(r.get_i32("count").unwrap(), 2);
}

#[test]
fn skip_lets_the_first_n_through() {
    let fp = FailPoints::default();
    configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand",
            "mode": { "skip": 2 },
            "data": { "failCommands": ["ping"], "errorCode": 2 },
        },
    );
    assert!(fp.check(&target("ping", None)).is_noop());
    assert!(fp.check(&target("ping", None)).is_noop());
    assert!(fp.check(&target("ping", None)).error.is_some());
    assert!(fp.check(&target("ping", None)).error.is_some());
}

#[test]
fn activation_probability_zero_and_one() {
    let fp = FailPoints::default();
    let data = doc! { "failCommands": ["ping"], "errorCode": 2 };
    configure(
        &fp,
        doc! { "configureFailPoint": "failCommand", "mode": { "activationProbability": 0.0 }, "data": data.clone() },
    );
    for _ in 0..200 {
        assert!(fp.check(&target("ping", None)).is_noop());
    }
    configure(
        &fp,
        doc! { "configureFailPoint": "failCommand", "mode": { "activationProbability": 1 }, "data": data },
    );
    for _ in 0..200 {
        assert!(fp.check(&target("ping", None)).error.is_some());
    }
    let bad = fp.configure(&doc! {
        "configureFailPoint": "failCommand", "mode": { "activationProbability": 1.5 },
    });
    assert_eq!(bad.unwrap_err().code, 2);
}

#[test]
fn app_name_namespace_aliases_close_and_block() {
    let fp = FailPoints::default();
    configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["ismaster"], "closeConnection": true,
                      "blockConnection": true, "blockTimeMS": 50, "appName": "app" },
        },
    );
    assert!(fp.check(&target("isMaster", Some("other"))).is_noop());
    assert!(fp.check(&target("isMaster", None)).is_noop());
    assert!(fp.check(&target("hello", Some("app"))).is_noop());
    let a = fp.check(&target("isMaster", Some("app")));
    assert!(a.close);
    assert_eq!(a.block, Some(Duration::from_millis(50)));
    configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["find"], "errorCode": 2, "namespace": "db.other" },
        },
    );
    assert!(fp.check(&target("find", None)).is_noop());
    let unknown = fp
        .configure(&doc! { "configureFailPoint": "nope", "mode": "alwaysOn" })
        .unwrap_err();
    assert_eq!(unknown.code, 266);
    assert_eq!(
        fp.configure(&doc! { "configureFailPoint": "failCommand", "mode": "sometimes" })
            .unwrap_err()
            .code,
        2
    );
}

#[test]
fn block_without_time_is_an_error_when_it_fires() {
    let fp = FailPoints::default();
    configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn",
            "data": { "failCommands": ["ping"], "blockConnection": true },
        },
    );
    assert_eq!(fp.check(&target("ping", None)).error.map(|e| e.0), Some(72));
}

#[test]
fn write_concern_error_is_a_separate_step() {
    let fp = FailPoints::default();
    configure(
        &fp,
        doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "writeConcernError": { "code": 91, "errmsg": "x" } },
        },
    );
    // The before-run step does not fire (nothing to do) and does not consume the activation.
    assert!(fp.check(&target("insert", None)).is_noop());
    let (wce, labels) = fp.write_concern_error(&target("insert", None)).unwrap();
    assert_eq!(wce.get_i32("code").unwrap(), 91);
    assert_eq!(labels, None);
    assert!(fp.write_concern_error(&target("insert", None)).is_none());
}

#[test]
fn other_fail_points() {
    let fp = FailPoints::default();
    assert_eq!(fp.get_more_after_checkout("db.c"), None);
    configure(
        &fp,
        doc! { "configureFailPoint": "failGetMoreAfterCursorCheckout", "mode": { "times": 1 }, "data": { "errorCode": 237 } },
    );
    assert_eq!(fp.get_more_after_checkout("db.c"), Some(237));
    assert_eq!(fp.get_more_after_checkout("db.c"), None);
    configure(
        &fp,
        doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": "alwaysOn" },
    );
    assert_eq!(
        fp.on_primary_transactional_write(),
        Some(TxnWriteFault {
            close: true,
            fail_code: None
        })
    );
    configure(
        &fp,
        doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": "alwaysOn",
        "data": { "closeConnection": false, "failBeforeCommitExceptionCode": 1 } },
    );
    assert_eq!(
        fp.on_primary_transactional_write(),
        Some(TxnWriteFault {
            close: false,
            fail_code: Some(1)
        })
    );
    fp.clear();
    assert_eq!(fp.on_primary_transactional_write(), None);
}
