//! Pings per second the testkit server sustains from 64 concurrent connections, each a
//! minimal mongo-wire client loop (encode OP_MSG, write, read the reply frame, decode).
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

use std::time::{Duration, Instant};

use bson::rawdoc;
use criterion::{Criterion, Throughput, criterion_main};
use mongo_testkit::{ServerOptions, TestServer};
use mongo_wire::{MessageReader, MessageRef, MessageWriter, OpMsg};
use tokio::net::TcpStream;

const CONNECTIONS: u64 = 64;

async fn ping_loop(addr: std::net::SocketAddr, n: u64) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut reader = MessageReader::default();
    let mut writer = MessageWriter::new();
    let ping = OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" });
    for i in 0..n {
        let id = i32::try_from(i % 1_000_000).unwrap_or(0);
        writer
            .write_message(&mut s, &ping, id, 0, None)
            .await
            .expect("write");
        let reply = reader.read_message(&mut s).await.expect("read");
        assert!(matches!(reply.message, MessageRef::Msg(_)));
    }
}

pub(crate) fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestServer::start(ServerOptions::default()))
        .expect("server");
    let addr = server.address();
    let mut group = c.benchmark_group("testkit");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("ping_64_connections", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let per = iters.div_ceil(CONNECTIONS).max(1);
                let start = Instant::now();
                let tasks: Vec<_> = (0..CONNECTIONS)
                    .map(|_| tokio::spawn(ping_loop(addr, per)))
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                // Scale to the number of iterations criterion asked for.
                let done = per * CONNECTIONS;
                #[allow(clippy::cast_precision_loss)]
                let scale = iters as f64 / done as f64;
                start.elapsed().mul_f64(scale)
            })
        });
    });
    group.finish();
    drop(server);
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
