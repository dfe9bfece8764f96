//! Unit tests of the pool core on a virtual clock: every CMAP rule, deadlines, and the
//! misuse the core refuses.
#![allow(
    clippy::disallowed_methods,
    reason = "tests start the virtual clock at an arbitrary instant"
)]
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

/// Splits the queued actions into establishment tickets and the rest.
fn split_actions(c: &mut PoolCore<u64>) -> (Vec<Establishing>, Vec<Action<u64>>) {
    let mut tickets = Vec::new();
    let mut rest = Vec::new();
    for a in actions(c) {
        match a {
            Action::Establish { ticket } => tickets.push(ticket),
            other => rest.push(other),
        }
    }
    (tickets, rest)
}

/// The establishment tickets among the queued actions (the rest are dropped).
fn tickets(c: &mut PoolCore<u64>) -> Vec<Establishing> {
    split_actions(c).0
}

fn established(c: &mut PoolCore<u64>, ticket: Establishing, now: Instant) {
    let n = ticket.id().0;
    c.handle_established(ticket, n, None, now).unwrap();
}

fn establish_all(c: &mut PoolCore<u64>, now: Instant) -> Vec<Action<u64>> {
    let mut out = Vec::new();
    let mut todo: Vec<Establishing> = Vec::new();
    loop {
        let (t, rest) = split_actions(c);
        todo.extend(t);
        out.extend(rest);
        let Some(ticket) = todo.pop() else { break };
        established(c, ticket, now);
    }
    out
}

fn checked_out(c: &mut PoolCore<u64>, now: Instant) -> CheckedOut<u64> {
    match c.handle_checkout_request(now, None) {
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
    match c.handle_checkout_request(now, None) {
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
    match c.handle_checkout_request(now, None) {
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
    let w1 = match c.handle_checkout_request(now, None) {
        CheckoutStart::Waiting(w) => w,
        other => panic!("{other:?}"),
    };
    let w2 = match c.handle_checkout_request(now, None) {
        CheckoutStart::Waiting(w) => w,
        other => panic!("{other:?}"),
    };
    let mut t = tickets(&mut c);
    assert_eq!(t.len(), 1, "only one establishment at a time: {t:?}");
    assert_eq!(c.stats().pending, 1);
    established(&mut c, t.remove(0), now);
    let (mut t, a) = split_actions(&mut c);
    assert!(matches!(&a[0], Action::Deliver { waiter, .. } if *waiter == w1));
    assert_eq!(t[0].id(), ConnectionId(2));
    established(&mut c, t.remove(0), now);
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
    let _ = c.handle_checkout_request(now, None);
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
    match c.handle_checkout_request(now, None) {
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
    let mut t = tickets(&mut c);
    assert_eq!(t.len(), 2);
    established(&mut c, t.remove(0), now);
    let (t, rest) = split_actions(&mut c);
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        t.iter().map(Establishing::id).collect::<Vec<_>>(),
        [ConnectionId(3)]
    );
    let events = names(&mut c);
    assert_eq!(events[1], "ConnectionPoolReady");
}

#[test]
fn connect_timeout_fails_the_requester_with_labels() {
    let now = Instant::now();
    let mut c = core(|o| o.connect_timeout = Some(Duration::from_millis(30)));
    c.ready(now);
    let _ = c.handle_checkout_request(now, None);
    let mut t = tickets(&mut c);
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
    assert!(c.handle_established(t.remove(0), 1, None, now).is_err());
}

#[test]
fn establishment_failure_labels_only_overload_errors() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let _ = c.handle_checkout_request(now, None);
    let _ = c.handle_checkout_request(now, None);
    let mut t = tickets(&mut c).into_iter();
    let (t1, t2) = (t.next().unwrap(), t.next().unwrap());
    assert_eq!((t1.id(), t2.id()), (ConnectionId(1), ConnectionId(2)));
    c.handle_establish_failed(t1, EventError::msg("auth failed"), false, now);
    c.handle_establish_failed(t2, EventError::msg("reset"), true, now);
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
fn a_clear_while_a_failed_establishment_is_reported_keeps_its_request_for_that_error() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    let _ = c.handle_checkout_request(now, None);
    let _ = c.handle_checkout_request(now, None);
    let mut t = tickets(&mut c).into_iter();
    let (t1, t2) = (t.next().unwrap(), t.next().unwrap());
    names(&mut c);
    // The driver reports the first failure to SDAM, which clears the pool.
    assert!(c.hold_failed_establishment(&t1));
    c.clear(None, false, Some(EventError::msg("auth failed")), now);
    c.handle_establish_failed(t1, EventError::msg("auth failed"), false, now);
    assert_eq!(
        names(&mut c),
        [
            "ConnectionPoolCleared",
            "ConnectionCheckOutFailed",
            "ConnectionClosed",
            "ConnectionCheckOutFailed"
        ]
    );
    let errors: Vec<PoolError> = actions(&mut c)
        .into_iter()
        .filter_map(|a| match a {
            Action::FailWaiter { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    // The other request fails with the clear; the held one with its own establishment's error.
    assert!(matches!(errors[0], PoolError::PoolCleared { .. }));
    assert!(
        matches!(errors[1], PoolError::Establish { .. }),
        "{errors:?}"
    );
    assert_deadlines_consistent(&c);
    // The second connection, released by the clear, is no one's.
    assert!(c.is_unclaimed(&t2));
}

#[test]
fn service_generations_follow_their_clears() {
    let mut c = core(|o| o.load_balanced = true);
    let s = mongo_events::ServiceId(bson::oid::ObjectId::from_bytes([7; 12]));
    assert_eq!(c.service_generation(s), Generation(0));
    let now = Instant::now();
    c.ready(now);
    let _ = c.handle_checkout_request(now, None);
    let t = tickets(&mut c).remove(0);
    c.handle_established(t, 1, Some(s), now).unwrap();
    c.clear(Some(s), false, None, now);
    assert_eq!(c.service_generation(s), Generation(1));
    assert_eq!(c.generation(), Generation(0));
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
    let _ = c.handle_checkout_request(now, None);
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

/// Every tracked deadline belongs to a waiting request, and every waiting request with a
/// deadline is tracked once.
fn assert_deadlines_consistent(c: &PoolCore<u64>) {
    let mut expected: BTreeSet<(Instant, u64)> = BTreeSet::new();
    for w in &c.queue {
        expected.extend(w.deadline.map(|d| (d, w.id)));
    }
    for cv in &c.covered {
        expected.extend(cv.deadline.map(|d| (d, cv.waiter)));
    }
    assert_eq!(c.deadlines, expected);
}

fn checkout_failures(c: &mut PoolCore<u64>) -> Vec<(ConnectionCheckOutFailedReason, Duration)> {
    std::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            CmapEvent::ConnectionCheckOutFailed(f) => Some((f.reason, f.duration)),
            _ => None,
        })
        .collect()
}

fn is_timeout_failure(a: &Action<u64>, w: WaiterId) -> bool {
    matches!(
        a,
        Action::FailWaiter { waiter, error: PoolError::WaitQueueTimeout { .. } } if *waiter == w
    )
}

fn waiting(start: CheckoutStart<u64>) -> WaiterId {
    match start {
        CheckoutStart::Waiting(w) => w,
        other => panic!("{other:?}"),
    }
}

#[test]
fn own_deadline_earlier_than_wait_queue_timeout_fails_the_queued_request() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    let mut c = core(|o| {
        o.max_pool_size = Some(1);
        o.wait_queue_timeout = Some(ms(100));
    });
    c.ready(now);
    let _held = checked_out(&mut c, now);
    names(&mut c);
    let early = waiting(c.handle_checkout_request(now, Some(now + ms(30))));
    let late = waiting(c.handle_checkout_request(now, Some(now + ms(500))));
    assert_deadlines_consistent(&c);
    assert_eq!(c.poll_timeout(), Some(now + ms(30)));
    c.handle_timeout(now + ms(30));
    let a = actions(&mut c);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(is_timeout_failure(&a[0], early), "{a:?}");
    assert_eq!(
        checkout_failures(&mut c),
        [(ConnectionCheckOutFailedReason::Timeout, ms(30))]
    );
    // The later own deadline loses to waitQueueTimeoutMS while queued.
    assert_eq!(c.poll_timeout(), Some(now + ms(100)));
    c.handle_timeout(now + ms(100));
    assert!(is_timeout_failure(&actions(&mut c)[0], late));
    assert_eq!(c.stats().waiters, 0);
    assert_deadlines_consistent(&c);
}

#[test]
fn own_deadline_fails_a_covered_request_and_its_connection_stays_for_the_pool() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    // waitQueueTimeoutMS (10) does not bound a covered request; its own deadline (50) does.
    let mut c = core(|o| o.wait_queue_timeout = Some(ms(10)));
    c.ready(now);
    let w = waiting(c.handle_checkout_request(now, Some(now + ms(50))));
    let mut t = tickets(&mut c);
    assert_eq!((t.len(), c.stats().waiters), (1, 1));
    assert!(!c.is_unclaimed(&t[0]));
    assert_deadlines_consistent(&c);
    assert_eq!(c.poll_timeout(), Some(now + ms(50)));
    c.handle_timeout(now + ms(20));
    assert!(actions(&mut c).is_empty());
    c.handle_timeout(now + ms(50));
    let a = actions(&mut c);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(is_timeout_failure(&a[0], w), "{a:?}");
    assert_eq!(
        checkout_failures(&mut c),
        [(ConnectionCheckOutFailedReason::Timeout, ms(50))]
    );
    let s = c.stats();
    assert_eq!((s.pending, s.waiters), (1, 0), "{s:?}");
    assert!(c.is_unclaimed(&t[0]), "the connection lost its owner");
    assert_deadlines_consistent(&c);
    established(&mut c, t.remove(0), now + ms(70));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.stats().available, 1);
}

#[test]
fn own_deadline_of_a_covered_request_hands_its_connection_to_the_next_request() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    let mut c = core(|o| o.max_connecting = Some(1));
    c.ready(now);
    let w1 = waiting(c.handle_checkout_request(now, Some(now + ms(50))));
    let w2 = waiting(c.handle_checkout_request(now, None));
    let mut t = tickets(&mut c);
    assert_eq!(
        t.len(),
        1,
        "maxConnecting 1: the second request waits in the queue"
    );
    c.handle_timeout(now + ms(50));
    let a = actions(&mut c);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(is_timeout_failure(&a[0], w1), "{a:?}");
    assert!(
        !c.is_unclaimed(&t[0]),
        "the next request claimed the connection"
    );
    assert_eq!(c.stats().waiters, 1);
    assert_deadlines_consistent(&c);
    established(&mut c, t.remove(0), now + ms(60));
    let a = actions(&mut c);
    assert!(
        matches!(&a[..], [Action::Deliver { waiter, .. }] if *waiter == w2),
        "{a:?}"
    );
}

#[test]
fn no_deadline_keeps_the_wait_queue_rules() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    let mut c = core(|o| o.wait_queue_timeout = Some(ms(10)));
    c.ready(now);
    let w = waiting(c.handle_checkout_request(now, None));
    let mut t = tickets(&mut c);
    // Covered at once: no deadline is left to wait for.
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(now + ms(3_600_000));
    assert!(actions(&mut c).is_empty());
    established(&mut c, t.remove(0), now + ms(3_600_000));
    assert!(matches!(&actions(&mut c)[..], [Action::Deliver { waiter, .. }] if *waiter == w));
    assert_deadlines_consistent(&c);
}

#[test]
fn expired_deadline_fails_at_once_unless_a_connection_is_available() {
    let now = Instant::now();
    let mut c = core(|_| {});
    c.ready(now);
    names(&mut c);
    match c.handle_checkout_request(now, Some(now)) {
        CheckoutStart::Failed(PoolError::WaitQueueTimeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(actions(&mut c).is_empty(), "nothing established for it");
    assert_eq!(c.stats().total, 0);
    assert_eq!(
        names(&mut c),
        ["ConnectionCheckOutStarted", "ConnectionCheckOutFailed"]
    );
    let conn = checked_out(&mut c, now);
    c.handle_checkin(conn, now).unwrap();
    checkout_failures(&mut c);
    match c.handle_checkout_request(now, Some(now)) {
        CheckoutStart::Ready(conn) => assert_eq!(conn.meta().id(), ConnectionId(1)),
        other => panic!("{other:?}"),
    }
    assert!(checkout_failures(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_request_given_back_its_place_keeps_its_deadline() {
    let now = Instant::now();
    let ms = Duration::from_millis;
    // Load-balanced: a pool-wide clear does not fail waiters, so the covered request sees its
    // connection come back stale and goes back to the head of the queue.
    let mut c = core(|o| {
        o.load_balanced = true;
        o.max_pool_size = Some(1);
    });
    c.ready(now);
    let w = waiting(c.handle_checkout_request(now, Some(now + ms(50))));
    let mut t = tickets(&mut c);
    c.clear(None, false, None, now);
    established(&mut c, t.remove(0), now + ms(10));
    // Re-queued and covered again by a new connection, still bounded by its deadline.
    let t2 = tickets(&mut c);
    assert_eq!(t2.len(), 1);
    assert_deadlines_consistent(&c);
    // The background run the clear scheduled, then the request's deadline.
    c.handle_timeout(now + ms(10));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(now + ms(50)));
    c.handle_timeout(now + ms(50));
    assert!(is_timeout_failure(&actions(&mut c)[0], w));
    assert_eq!(c.stats().waiters, 0);
}

#[test]
fn another_pools_waiters_and_tickets_are_refused() {
    let now = Instant::now();
    let mut a = core(|o| o.max_connecting = Some(1));
    let mut b = core(|o| o.max_connecting = Some(1));
    a.ready(now);
    b.ready(now);
    let wa = waiting(a.handle_checkout_request(now, None));
    let wb = waiting(b.handle_checkout_request(now, None));
    assert_ne!(wa, wb, "waiters of two pools never compare equal");
    assert!(!b.cancel_waiter(wa, now));
    assert_eq!(a.stats().waiters, 1);
    let ta = tickets(&mut a).remove(0);
    let _tb = tickets(&mut b).remove(0);
    assert!(!b.is_unclaimed(&ta));
    assert!(b.handle_established(ta, 7, None, now).is_err());
    let s = b.stats();
    assert_eq!((s.pending, s.waiters, s.in_use), (1, 1, 0), "{s:?}");
    let s = a.stats();
    assert_eq!((s.pending, s.waiters), (1, 1), "{s:?}");
    assert!(a.cancel_waiter(wa, now));
    assert!(!a.cancel_waiter(wa, now), "a request is cancelled once");
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let now = Instant::now();
    let mut c = core(|o| {
        o.wait_queue_timeout = Some(Duration::MAX);
        o.connect_timeout = Some(Duration::MAX);
        o.max_idle_time = Some(Duration::MAX);
        o.max_lifetime = Some(Duration::MAX);
        o.max_pool_size = Some(1);
    });
    c.ready(now);
    let held = checked_out(&mut c, now);
    let _ = waiting(c.handle_checkout_request(now, None));
    let _ = c.poll_timeout();
    c.handle_checkin(held, now).unwrap();
    let _ = c.poll_timeout();
    c.handle_timeout(now + Duration::from_secs(1));
}
