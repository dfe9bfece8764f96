//! Check-out + check-in of a no-op connection: ours (with every CMAP rule on) against deadpool
//! and bb8 pooling the same no-op object, on a 2-worker multi-thread tokio runtime.
//!
//! Cells: uncontended (1 task) and tasks x pool size = 16x16, 32x16, 64x8, 256x16. Each
//! criterion iteration is one check-out + check-in; the iterations are split across the tasks.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]
#![allow(missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mongo_events::{ConnectionId, Generation, Listeners, ServerAddress};
use mongo_pool::{Establish, Pool, PoolOptions};

struct NoopEstablish;

impl Establish for NoopEstablish {
    type Conn = u64;
    type Error = Infallible;
    async fn establish(&self, id: ConnectionId, _g: Generation) -> Result<u64, Infallible> {
        Ok(id.0)
    }
}

struct NoopDeadpool;

impl deadpool::managed::Manager for NoopDeadpool {
    type Type = u64;
    type Error = Infallible;
    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn recycle(
        &self,
        _obj: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

struct NoopBb8;

impl bb8::ManageConnection for NoopBb8 {
    type Connection = u64;
    type Error = Infallible;
    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
    async fn is_valid(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }
    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

const CELLS: &[(usize, usize)] = &[(1, 16), (16, 16), (32, 16), (64, 8), (256, 16)];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `total` check-out/check-in pairs split across `tasks` tasks; returns the elapsed time.
async fn drive<F, Fut>(tasks: usize, total: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let per_task = total.div_ceil(tasks as u64);
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op().await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("checkout_checkin");
    for &(tasks, size) in CELLS {
        let label = if tasks == 1 {
            "uncontended".to_string()
        } else {
            format!("{tasks}x{size}")
        };

        let ours = rt.block_on(async {
            let mut options = PoolOptions::default();
            options.max_pool_size = Some(u32::try_from(size).expect("size"));
            let pool = Pool::new(
                ServerAddress::default(),
                options,
                NoopEstablish,
                Listeners::new(),
            )
            .expect("pool");
            pool.ready();
            pool
        });
        group.bench_function(BenchmarkId::new("mongo-pool", &label), |b| {
            b.iter_custom(|iters| {
                let pool = ours.clone();
                rt.block_on(drive(tasks, iters, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.checkout().await.expect("checkout");
                        std::hint::black_box(*conn);
                    }
                }))
            });
        });

        let dp = deadpool::managed::Pool::<NoopDeadpool>::builder(NoopDeadpool)
            .max_size(size)
            .build()
            .expect("deadpool");
        group.bench_function(BenchmarkId::new("deadpool", &label), |b| {
            b.iter_custom(|iters| {
                let pool = dp.clone();
                rt.block_on(drive(tasks, iters, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.get().await.expect("checkout");
                        std::hint::black_box(*conn);
                    }
                }))
            });
        });

        let b8 = rt.block_on(async {
            bb8::Pool::builder()
                .max_size(u32::try_from(size).expect("size"))
                .test_on_check_out(false)
                .connection_timeout(Duration::from_secs(60))
                .build(NoopBb8)
                .await
                .expect("bb8")
        });
        group.bench_function(BenchmarkId::new("bb8", &label), |b| {
            b.iter_custom(|iters| {
                let pool = b8.clone();
                rt.block_on(drive(tasks, iters, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.get().await.expect("checkout");
                        std::hint::black_box(*conn);
                    }
                }))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
