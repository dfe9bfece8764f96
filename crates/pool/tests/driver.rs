//! The tokio driver under paused time: many tasks check out with random hold times and
//! random cancellation (the check-out future dropped mid-wait, including while its connection
//! is being established); afterwards every count is back to baseline.
#![cfg(feature = "tokio")]

use std::time::Duration;

use mongo_events::{ConnectionId, Generation, Listeners, ServerAddress};
use mongo_pool::{Establish, Pool, PoolOptions};
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
            tasks.push(tokio::spawn(async move {
                if let Ok(Ok(mut conn)) = tokio::time::timeout(wait, pool.checkout()).await {
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
