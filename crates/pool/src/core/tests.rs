use std::time::{Duration, Instant};

use mongo_events::cmap::{CmapEvent, ConnectionCheckOutFailedReason, ConnectionClosedReason};
use mongo_events::{ConnectionId, EventError, ServerAddress};

use super::*;

fn core(f: impl FnOnce(&mut PoolOptions)) -> PoolCore<u64> {
    let mut o = PoolOptions::default();
    f(&mut o);
    PoolCore::new(ServerAddress::default(), o, true).unwrap()
}

fn names(c: &mut PoolCore<u64>) -> Vec<&'static str> {
    std::iter::from_fn(|| c.poll_event())
        .map(|e| e.name())
        .collect()
}

fn actions(c: &mut PoolCore<u64>) -> Vec<Action<u64>> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

fn establish_all(c: &mut PoolCore<u64>, now: Instant) -> Vec<Action<u64>> {
    let mut out = Vec::new();
    let mut todo: Vec<ConnectionId> = Vec::new();
    loop {
        for a in actions(c) {
            match a {
                Action::Establish { id, .. } => todo.push(id),
                other => out.push(other),
            }
        }
        let Some(id) = todo.pop() else { break };
        c.handle_established(id, id.0, None, now).unwrap();
    }
    out
}

fn checked_out(c: &mut PoolCore<u64>, now: Instant) -> CheckedOut<u64> {
    match c.handle_checkout_request(now) {
        CheckoutStart::Ready(conn) => conn,
        CheckoutStart::Waiting(w) => {
            for a in establish_all(c, now) {
                if let Action::Deliver { waiter, conn } = a {
                    assert_eq!(waiter, w);
                    return conn;
                }
            }
            panic!("no delivery");
        }
        CheckoutStart::Failed(e) => panic!("{e}"),
    }
}

#[test]
fn starts_paused_and_refuses_checkouts() {
    let now = Instant::now();
    let mut c = core(|_| {});
    assert_eq!(c.state(), PoolState::Paused);
    match c.handle_checkout_request(now) {
        CheckoutStart::Failed(PoolError::PoolCleared { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        names(&mut c),
        [
            "ConnectionPoolCreated",
            "ConnectionCheckOutStarted",
            "ConnectionCheckOutFailed"
        ]
    );
}

#[test]
fn rejects_min_above_max_and_zero_max_connecting() {
    let o = PoolOptions {
        max_pool_size: Some(2),
        min_pool_size: Some(3),
        ..Default::default()
    };
    assert!(PoolCore::<u64>::new(ServerAddress::default(), o, false).is_err());
    let o = PoolOptions {
        max_connecting: Some(0),
        ..Default::default()
    };
    assert!(PoolCore::<u64>::new(ServerAddress::default(), o, false).is_err());
}

#[test]
fn warm_checkout_is_immediate_and_lifo() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let a = checked_out(&mut c, now);
    let b = checked_out(&mut c, now);
    assert_eq!(
        (a.meta().id(), b.meta().id()),
        (ConnectionId(1), ConnectionId(2))
    );
    c.handle_checkin(a, now).unwrap();
    c.handle_checkin(b, now).unwrap();
    match c.handle_checkout_request(now) {
        CheckoutStart::Ready(conn) => assert_eq!(conn.meta().id(), ConnectionId(2)),
        other => panic!("{other:?}"),
    }
    assert!(actions(&mut c).is_empty());
}

#[test]
fn max_connecting_limits_establishment_and_waiters_claim_in_order() {
    let now = Instant::now();
    let mut c = core(|o| o.max_connecting = Some(1));
    c.ready(now);
    let w1 = match c.handle_checkout_request(now) {
        CheckoutStart::Waiting(w) => w,
        other => panic!("{other:?}"),
    };
    let w2 = match c.handle_checkout_request(now) {
        CheckoutStart::Waiting(w) => w,
        other => panic!("{other:?}"),
    };
    let a = actions(&mut c);
    assert_eq!(a.len(), 1, "only one establishment at a time: {a:?}");
    assert_eq!(c.stats().pending, 1);
    c.handle_established(ConnectionId(1), 1, None, now).unwrap();
    let a = actions(&mut c);
    assert!(matches!(&a[0], Action::Deliver { waiter, .. } if *waiter == w1));
    assert!(matches!(
        a[1],
        Action::Establish {
            id: ConnectionId(2),
            ..
        }
    ));
    c.handle_established(ConnectionId(2), 2, None, now).unwrap();
    assert!(matches!(&actions(&mut c)[0], Action::Deliver { waiter, .. } if *waiter == w2));
}

#[test]
fn wait_queue_timeout_fails_the_waiter() {
    let now = Instant::now();
    let mut c = core(|o| {
        o.max_pool_size = Some(1);
        o.wait_queue_timeout = Some(Duration::from_millis(50));
    });
    c.ready(now);
    let _held = checked_out(&mut c, now);
    let _ = c.handle_checkout_request(now);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(50)));
    c.handle_timeout(now + Duration::from_millis(50));
    let a = actions(&mut c);
    assert!(matches!(
        &a[0],
        Action::FailWaiter {
            error: PoolError::WaitQueueTimeout { .. },
            ..
        }
    ));
    let failed = std::iter::from_fn(|| c.poll_event())
        .find_map(|e| match e {
            CmapEvent::ConnectionCheckOutFailed(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.reason, ConnectionCheckOutFailedReason::Timeout);
    assert_eq!(failed.duration, Duration::from_millis(50));
}

#[test]
fn clear_makes_connections_stale_and_pauses() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let a = checked_out(&mut c, now);
    c.clear(None, false, Some(EventError::msg("network")), now);
    assert_eq!(c.state(), PoolState::Paused);
    assert_eq!(c.generation(), Generation(1));
    c.handle_checkin(a, now).unwrap();
    let closed = actions(&mut c);
    assert!(matches!(
        closed[0],
        Action::Close {
            reason: ConnectionClosedReason::Stale,
            ..
        }
    ));
    match c.handle_checkout_request(now) {
        CheckoutStart::Failed(e) => {
            assert!(e.to_string().contains("network"), "{e}");
            assert!(e.is_retryable());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn clearing_a_paused_pool_emits_nothing() {
    let now = Instant::now();
    let mut c = core(|_| {});
    names(&mut c);
    c.clear(None, false, None, now);
    assert!(names(&mut c).is_empty());
    assert_eq!(c.generation(), Generation(1));
}

#[test]
fn interrupting_clear_marks_in_use_connections() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let a = checked_out(&mut c, now);
    assert!(!c.is_interrupted(a.meta()));
    c.clear(None, true, None, now);
    assert!(c.is_interrupted(a.meta()));
    c.ready(now);
    let b = checked_out(&mut c, now);
    assert!(!c.is_interrupted(b.meta()));
}

#[test]
fn idle_and_expired_connections_are_pruned_on_time() {
    let now = Instant::now();
    let mut c = core(|o| {
        o.max_idle_time = Some(Duration::from_millis(100));
        o.max_lifetime = Some(Duration::from_millis(150));
    });
    c.ready(now);
    let a = checked_out(&mut c, now);
    let later = now + Duration::from_millis(60);
    c.handle_checkin(a, later).unwrap();
    // lifetime (150) comes before idle (60 + 100)
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(150)));
    c.handle_timeout(now + Duration::from_millis(150));
    assert!(matches!(
        actions(&mut c)[0],
        Action::Close {
            reason: ConnectionClosedReason::Expired,
            ..
        }
    ));
    assert_eq!(c.stats().total, 0);
}

#[test]
fn min_pool_size_waits_for_ready_and_respects_max_connecting() {
    let now = Instant::now();
    let mut c = core(|o| o.min_pool_size = Some(3));
    assert!(actions(&mut c).is_empty());
    c.ready(now);
    assert_eq!(actions(&mut c).len(), 2);
    c.handle_established(ConnectionId(1), 1, None, now).unwrap();
    assert!(matches!(
        actions(&mut c)[..],
        [Action::Establish {
            id: ConnectionId(3),
            ..
        }]
    ));
    let events = names(&mut c);
    assert_eq!(events[1], "ConnectionPoolReady");
}

#[test]
fn connect_timeout_fails_the_requester_with_labels() {
    let now = Instant::now();
    let mut c = core(|o| o.connect_timeout = Some(Duration::from_millis(30)));
    c.ready(now);
    let _ = c.handle_checkout_request(now);
    let _ = actions(&mut c);
    c.handle_timeout(now + Duration::from_millis(30));
    let a = actions(&mut c);
    assert!(matches!(
        a[0],
        Action::CancelEstablish {
            id: ConnectionId(1)
        }
    ));
    match &a[1] {
        Action::FailWaiter { error, .. } => {
            assert!(error.has_label(crate::SYSTEM_OVERLOADED_ERROR));
            assert!(error.has_label(crate::RETRYABLE_ERROR));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.stats().total, 0);
    assert!(c.handle_established(ConnectionId(1), 1, None, now).is_err());
}

#[test]
fn establishment_failure_labels_only_overload_errors() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let _ = c.handle_checkout_request(now);
    let _ = c.handle_checkout_request(now);
    let _ = actions(&mut c);
    c.handle_establish_failed(ConnectionId(1), EventError::msg("auth failed"), false, now);
    c.handle_establish_failed(ConnectionId(2), EventError::msg("reset"), true, now);
    let errors: Vec<PoolError> = actions(&mut c)
        .into_iter()
        .filter_map(|a| match a {
            Action::FailWaiter { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert!(errors[0].labels().is_empty());
    assert!(errors[1].has_label(crate::SYSTEM_OVERLOADED_ERROR));
}

#[test]
fn foreign_checkin_is_rejected() {
    let now = Instant::now();
    let mut a = core(|_| {});
    let mut b = core(|_| {});
    a.ready(now);
    let conn = checked_out(&mut a, now);
    let rejected = b.handle_checkin(conn, now).unwrap_err();
    assert!(matches!(
        rejected.error,
        PoolError::ForeignConnection { id: 1 }
    ));
    a.handle_checkin(rejected.conn, now).unwrap();
    assert_eq!(a.stats().available, 1);
}

#[test]
fn close_fails_waiters_and_closes_available() {
    let now = Instant::now();
    let mut c = core(|o| o.max_pool_size = Some(1));
    c.ready(now);
    let held = checked_out(&mut c, now);
    let _ = c.handle_checkout_request(now);
    c.close(now);
    let a = actions(&mut c);
    assert!(matches!(
        &a[0],
        Action::FailWaiter {
            error: PoolError::PoolClosed { .. },
            ..
        }
    ));
    c.handle_checkin(held, now).unwrap();
    assert!(matches!(
        actions(&mut c)[0],
        Action::Close {
            reason: ConnectionClosedReason::PoolClosed,
            ..
        }
    ));
    assert_eq!(c.stats().total, 0);
    c.ready(now);
    assert_eq!(c.state(), PoolState::Closed);
}
