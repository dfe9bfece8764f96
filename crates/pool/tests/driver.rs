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
