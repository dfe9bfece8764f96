//! find-many with and without an exhaust cursor: 10,000 small documents read in batches of
//! 100 from the testkit server over TCP. Without exhaust each batch after the first costs a
//! getMore round trip; with it the server streams the batches after the first getMore.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks own their clock and runtime"
)]
#![allow(missing_docs)]

use std::time::Duration;

use bson::doc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mongo_client::{Client, ClientOptions};
use mongo_testkit::{ServerOptions, TestServer};

const DOCS: i32 = 10_000;
const BATCH: i32 = 100;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestServer::start(ServerOptions::default()))
        .expect("server");
    let client = rt.block_on(async {
        let options = ClientOptions::parse(&server.uri()).expect("uri");
        Client::builder()
            .options(options)
            .build()
            .await
            .expect("client")
    });
    let coll = client.database("bench").collection("many");
    rt.block_on(async {
        coll.insert_many(
            (0..DOCS).map(|i| doc! {"_id": i, "name": format!("item {i}"), "n": i64::from(i) * 7}),
        )
        .await
        .expect("seed");
    });
    let mut group = c.benchmark_group("find_many");
    group.throughput(Throughput::Elements(u64::try_from(DOCS).unwrap_or(0)));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for exhaust in [false, true] {
        let name = if exhaust { "exhaust" } else { "getMore" };
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let docs = coll
                        .find(doc! {})
                        .batch_size(BATCH)
                        .exhaust(exhaust)
                        .await
                        .expect("find")
                        .collect_all()
                        .await
                        .expect("documents");
                    assert_eq!(docs.len(), 10_000);
                });
            });
        });
    }
    group.finish();
    rt.block_on(client.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
