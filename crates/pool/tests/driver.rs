//! The tokio driver under paused time: many tasks check out with random hold times, random
//! deadlines and random cancellation (the check-out future dropped mid-wait, including while
//! its connection is being established); afterwards every count is back to baseline. Then
//! per-checkout deadlines and the interrupt watch of a checked-out connection.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]
#![cfg(feature = "tokio")]

use std::time::Duration;

use mongo_events::{ConnectionId, Generation, Listeners, ServerAddress, ServiceId};
use mongo_pool::{Establish, Pool, PoolError, PoolOptions, PooledConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Slow;

impl Establish for Slow {
    type Conn = u64;
    type Error = std::io::Error;
    async fn establish(&self, id: ConnectionId, _g: Generation) -> Result<u64, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(7 * (id.0 % 5))).await;
        if id.0 % 11 == 0 {
            return Err(std::io::Error::other("refused"));
        }
        Ok(id.0)
    }
}

#[tokio::test(start_paused = true)]
async fn cancelled_checkouts_leave_counts_right() {
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut options = PoolOptions::default();
        options.max_pool_size = Some(rng.random_range(1..=4));
        options.max_connecting = Some(rng.random_range(1..=2));
        let pool = Pool::new(ServerAddress::default(), options, Slow, Listeners::new()).unwrap();
        pool.ready();
        let mut tasks = Vec::new();
        for _ in 0..30 {
            let pool = pool.clone();
            let wait = Duration::from_millis(rng.random_range(0..40));
            let hold = Duration::from_millis(rng.random_range(0..20));
            let errored = rng.random_bool(0.1);
            // Half the check-outs also carry their own deadline (sometimes already past).
            let deadline = rng.random_bool(0.5).then(|| {
                tokio::time::Instant::now().into_std()
                    + Duration::from_millis(rng.random_range(0..40))
            });
            tasks.push(tokio::spawn(async move {
                let checkout = pool.checkout_until(deadline);
                if let Ok(Ok(mut conn)) = tokio::time::timeout(wait, checkout).await {
                    tokio::time::sleep(hold).await;
                    if errored {
                        conn.mark_errored();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = pool.stats();
        assert_eq!(
            (s.in_use, s.waiters, s.pending),
            (0, 0, 0),
            "seed {seed}: {s:?}"
        );
        assert_eq!(s.total, s.available, "seed {seed}: {s:?}");
        let conn = tokio::time::timeout(Duration::from_secs(1), pool.checkout()).await;
        assert!(conn.is_ok(), "seed {seed}: pool still serves");
        drop(conn);
        pool.close();
        assert_eq!(pool.stats().total, 0, "seed {seed}");
    }
}

/// With a pool listener, events arrive in the core's order: per connection, check-outs and
/// check-ins alternate, and after close every created connection was closed.
#[tokio::test(start_paused = true)]
async fn events_stay_ordered_under_cancellation() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use mongo_events::cmap::CmapEvent;
    use mongo_events::{FnListener, Listener};

    for seed in 0..10u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let seen: Arc<Mutex<Vec<CmapEvent>>> = Arc::default();
        let sink = Arc::clone(&seen);
        let listeners = Listeners::new().with(Listener::pool(FnListener(move |e: &CmapEvent| {
            sink.lock().unwrap().push(e.clone());
        })));
        let mut options = PoolOptions::default();
        options.max_pool_size = Some(rng.random_range(1..=3));
        let pool = Pool::new(ServerAddress::default(), options, Slow, listeners).unwrap();
        pool.ready();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let pool = pool.clone();
            let wait = Duration::from_millis(rng.random_range(0..30));
            let hold = Duration::from_millis(rng.random_range(0..15));
            tasks.push(tokio::spawn(async move {
                if let Ok(Ok(conn)) = tokio::time::timeout(wait, pool.checkout()).await {
                    tokio::time::sleep(hold).await;
                    drop(conn);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pool.close();
        let events = seen.lock().unwrap().clone();
        let mut out: HashMap<ConnectionId, bool> = HashMap::new();
        let (mut created, mut closed) = (0, 0);
        for e in &events {
            match e {
                CmapEvent::ConnectionCheckedOut(e) => {
                    let was = out.insert(e.connection_id, true);
                    assert_ne!(was, Some(true), "seed {seed}: checked out twice");
                }
                CmapEvent::ConnectionCheckedIn(e) => {
                    let was = out.insert(e.connection_id, false);
                    assert_eq!(was, Some(true), "seed {seed}: checked in while not out");
                }
                CmapEvent::ConnectionCreated(_) => created += 1,
                CmapEvent::ConnectionClosed(_) => closed += 1,
                _ => {}
            }
        }
        assert!(
            out.values().all(|o| !o),
            "seed {seed}: a connection left out"
        );
        assert_eq!(created, closed, "seed {seed}");
        assert!(matches!(events.last(), Some(CmapEvent::PoolClosed(_))));
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Establishes connection n after `delay`; connection n reaches `services[(n - 1) % len]`.
struct After {
    delay: Duration,
    services: Vec<ServiceId>,
}

impl After {
    fn new(delay: Duration) -> Self {
        After {
            delay,
            services: Vec::new(),
        }
    }
}

impl Establish for After {
    type Conn = (u64, Option<ServiceId>);
    type Error = std::io::Error;
    async fn establish(
        &self,
        id: ConnectionId,
        _g: Generation,
    ) -> Result<Self::Conn, std::io::Error> {
        tokio::time::sleep(self.delay).await;
        let service = match self.services.len() {
            0 => None,
            n => self
                .services
                .get(usize::try_from(id.0 - 1).unwrap() % n)
                .copied(),
        };
        Ok((id.0, service))
    }
    fn service_id(&self, conn: &Self::Conn) -> Option<ServiceId> {
        conn.1
    }
}

fn pool_with(delay: Duration, f: impl FnOnce(&mut PoolOptions)) -> Pool<After> {
    let mut options = PoolOptions::default();
    f(&mut options);
    let pool = Pool::new(
        ServerAddress::default(),
        options,
        After::new(delay),
        Listeners::new(),
    )
    .unwrap();
    pool.ready();
    pool
}

fn in_ms(d: Duration) -> std::time::Instant {
    tokio::time::Instant::now().into_std() + d
}

#[tokio::test(start_paused = true)]
async fn checkout_until_fails_at_its_deadline_while_queued() {
    let pool = pool_with(Duration::ZERO, |o| {
        o.max_pool_size = Some(1);
        o.wait_queue_timeout = Some(ms(100));
    });
    let held = pool.checkout().await.unwrap();
    let start = tokio::time::Instant::now();
    let err = pool.checkout_until(Some(in_ms(ms(30)))).await.unwrap_err();
    assert!(matches!(err, PoolError::WaitQueueTimeout { .. }), "{err}");
    assert_eq!(start.elapsed(), ms(30));
    // Without a deadline, waitQueueTimeoutMS as before.
    let start = tokio::time::Instant::now();
    let err = pool.checkout().await.unwrap_err();
    assert!(matches!(err, PoolError::WaitQueueTimeout { .. }), "{err}");
    assert_eq!(start.elapsed(), ms(100));
    drop(held);
    let s = pool.stats();
    assert_eq!((s.waiters, s.in_use, s.available), (0, 0, 1), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn checkout_until_fails_while_its_connection_is_established_and_the_pool_keeps_it() {
    // waitQueueTimeoutMS (10) does not bound a request waiting for its connection; its own
    // deadline (30) does.
    let pool = pool_with(ms(100), |o| o.wait_queue_timeout = Some(ms(10)));
    let start = tokio::time::Instant::now();
    let err = pool.checkout_until(Some(in_ms(ms(30)))).await.unwrap_err();
    assert!(matches!(err, PoolError::WaitQueueTimeout { .. }), "{err}");
    assert_eq!(start.elapsed(), ms(30));
    let s = pool.stats();
    assert_eq!((s.pending, s.waiters), (1, 0), "{s:?}");
    tokio::time::sleep(ms(100)).await;
    let s = pool.stats();
    assert_eq!((s.total, s.available), (1, 1), "{s:?}");
    let start = tokio::time::Instant::now();
    let conn = pool.checkout().await.unwrap();
    assert_eq!(
        (conn.id(), start.elapsed()),
        (ConnectionId(1), Duration::ZERO)
    );
    // No deadline: waits for the whole establishment, beyond waitQueueTimeoutMS.
    let start = tokio::time::Instant::now();
    let second = pool.checkout_until(None).await.unwrap();
    assert_eq!((second.id(), start.elapsed()), (ConnectionId(2), ms(100)));
}

#[tokio::test(start_paused = true)]
async fn checkout_until_a_past_deadline_takes_only_an_available_connection() {
    let pool = pool_with(ms(5), |_| {});
    let now = tokio::time::Instant::now().into_std();
    let err = pool.checkout_until(Some(now)).await.unwrap_err();
    assert!(matches!(err, PoolError::WaitQueueTimeout { .. }), "{err}");
    assert_eq!(pool.stats().total, 0, "nothing was established for it");
    drop(pool.checkout().await.unwrap());
    let now = tokio::time::Instant::now().into_std();
    let conn = pool.checkout_until(Some(now)).await.unwrap();
    assert_eq!(conn.id(), ConnectionId(1));
}

/// Holds the connection mutably across a wait on its interruption; returns what the watch
/// reported, having written through the connection.
fn watch(mut conn: PooledConnection<After>) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        let (c, interruption) = conn.split();
        interruption.wait().await;
        c.0 += 1000;
        let seen = interruption.is_interrupted();
        assert!(matches!(
            interruption.error(),
            PoolError::Interrupted { .. }
        ));
        assert!(conn.is_interrupted());
        seen
    })
}

async fn still_waiting(task: &mut tokio::task::JoinHandle<bool>) -> bool {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .is_err()
}

#[tokio::test(start_paused = true)]
async fn interruption_wakes_on_an_interrupting_clear_only() {
    let pool = pool_with(Duration::ZERO, |_| {});
    let mut task = watch(pool.checkout().await.unwrap());
    assert!(still_waiting(&mut task).await);
    pool.clear(None, false);
    assert!(still_waiting(&mut task).await, "woke on a plain clear");
    pool.ready();
    pool.clear(None, true);
    let seen = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(
        seen.unwrap().unwrap(),
        "the interrupting clear woke the watch"
    );
    // A connection checked out after the clear is not interrupted.
    pool.ready();
    let conn = pool.checkout().await.unwrap();
    assert!(!conn.is_interrupted());
}

#[tokio::test(start_paused = true)]
async fn interruption_in_load_balanced_mode_follows_the_service() {
    let services: Vec<ServiceId> = (1..=2u8)
        .map(|n| {
            let mut bytes = [0u8; 12];
            bytes[11] = n;
            ServiceId(bson::oid::ObjectId::from_bytes(bytes))
        })
        .collect();
    let mut options = PoolOptions::default();
    options.load_balanced = true;
    let establisher = After {
        delay: Duration::ZERO,
        services: services.clone(),
    };
    let pool = Pool::new(
        ServerAddress::default(),
        options,
        establisher,
        Listeners::new(),
    )
    .unwrap();
    pool.ready();
    let first = pool.checkout().await.unwrap();
    let second = pool.checkout().await.unwrap();
    assert_eq!(first.service_id(), Some(services[0]));
    assert_eq!(second.service_id(), Some(services[1]));
    let mut first = watch(first);
    let mut second = watch(second);
    pool.clear(Some(services[0]), false);
    assert!(
        still_waiting(&mut first).await,
        "woke on a plain service clear"
    );
    pool.clear(Some(services[0]), true);
    let seen = tokio::time::timeout(Duration::from_secs(5), &mut first).await;
    assert!(seen.unwrap().unwrap());
    assert!(
        still_waiting(&mut second).await,
        "another service's connection woke"
    );
    pool.clear(Some(services[1]), true);
    let seen = tokio::time::timeout(Duration::from_secs(5), &mut second).await;
    assert!(seen.unwrap().unwrap());
}

/// A connection handed to a waiting check-out before an interrupting clear, but taken by
/// the check-out's task after it, is interrupted (the watch must not start from the epoch
/// the clear produced).
#[tokio::test(start_paused = true)]
async fn a_connection_delivered_before_an_interrupting_clear_is_interrupted() {
    let pool = pool_with(Duration::ZERO, |o| o.max_pool_size = Some(1));
    let held = pool.checkout().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let conn = pool.checkout().await.unwrap();
            (conn.id(), conn.is_interrupted())
        })
    };
    tokio::time::sleep(ms(1)).await;
    assert_eq!(pool.stats().waiters, 1);
    // Both without yielding: the connection is delivered, then the pool is cleared.
    drop(held);
    pool.clear(None, true);
    let (id, interrupted) = waiter.await.unwrap();
    assert_eq!(id, ConnectionId(1));
    assert!(interrupted);
}

/// Fails every establishment.
struct Refused;

impl Establish for Refused {
    type Conn = u64;
    type Error = std::io::Error;
    async fn establish(&self, _id: ConnectionId, _g: Generation) -> Result<u64, std::io::Error> {
        Err(std::io::Error::other("authentication failed"))
    }
}

#[tokio::test(start_paused = true)]
async fn the_establish_error_handler_sees_check_outs_errors_and_clears_first() {
    use std::sync::{Arc, Mutex};

    use mongo_events::cmap::CmapEvent;
    use mongo_events::{FnListener, Listener};

    let seen: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let listeners = Listeners::new().with(Listener::pool(FnListener(move |e: &CmapEvent| {
        sink.lock().unwrap().push(e.name());
    })));
    let pool = Pool::new(
        ServerAddress::default(),
        PoolOptions::default(),
        Refused,
        listeners,
    )
    .unwrap();
    let handled = Arc::new(Mutex::new(0));
    let (count, weak) = (Arc::clone(&handled), pool.downgrade());
    pool.on_establish_error(move |_| {
        *count.lock().unwrap() += 1;
        if let Some(p) = weak.upgrade() {
            p.clear(None, false);
        }
    });
    pool.ready();
    let error = pool.checkout().await.map(|_| ()).unwrap_err();
    assert!(
        matches!(error, PoolError::Establish { .. }),
        "the request fails with its establishment's error: {error}"
    );
    assert_eq!(*handled.lock().unwrap(), 1);
    let events = seen.lock().unwrap().clone();
    let from = events
        .iter()
        .position(|n| *n == "ConnectionCreated")
        .unwrap();
    assert_eq!(
        events[from..],
        [
            "ConnectionCreated",
            "ConnectionPoolCleared",
            "ConnectionClosed",
            "ConnectionCheckOutFailed"
        ]
    );
}
