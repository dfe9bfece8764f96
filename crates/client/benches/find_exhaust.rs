//! find-many with and without an exhaust cursor: 10,000 small documents read in batches of
//! 100 from the testkit server over TCP, directly (`localhost`) and through a proxy that
//! delays every chunk by 500 µs each way (`rtt_1ms`, nominally a same-datacenter network;
//! tokio's 1 ms timer granularity makes the round trip measured about 4 ms). Without
//! exhaust each batch after the first costs a getMore round trip; with it the server streams
//! the batches after the first getMore.
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const DOCS: i32 = 10_000;
const BATCH: i32 = 100;

/// One direction of the proxy: every chunk read is written `delay` later (latency, not a
/// bandwidth limit: chunks in flight overlap).
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || tx
                .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A TCP proxy to `upstream` adding `delay` each way; its address.
async fn latency_proxy(upstream: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(delayed_copy(cr, sw, delay));
            tokio::spawn(delayed_copy(sr, cw, delay));
        }
    });
    addr
}

async fn client_at(uri: &str) -> Client {
    let options = ClientOptions::parse(uri).expect("uri");
    Client::builder()
        .options(options)
        .build()
        .await
        .expect("client")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestServer::start(ServerOptions::default()))
        .expect("server");
    let client = rt.block_on(client_at(&server.uri()));
    let proxy = rt.block_on(latency_proxy(server.address(), Duration::from_micros(500)));
    let far = rt.block_on(client_at(&format!(
        "mongodb://{proxy}/?directConnection=true"
    )));
    let coll = client.database("bench").collection("many");
    rt.block_on(async {
        coll.insert_many(
            (0..DOCS).map(|i| doc! {"_id": i, "name": format!("item {i}"), "n": i64::from(i) * 7}),
        )
        .await
        .expect("seed");
    });
    for (label, client) in [("localhost", &client), ("rtt_1ms", &far)] {
        let coll = client
            .database("bench")
            .collection::<bson::Document>("many");
        let mut group = c.benchmark_group(format!("find_many_{label}"));
        group.throughput(Throughput::Elements(u64::try_from(DOCS).unwrap_or(0)));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(4));
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
    }
    rt.block_on(far.shutdown());
    rt.block_on(client.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
