//! Applying a primary's hello reply and selecting a server, in replica sets of 3, 50 and 500
//! members: both must cost time linear in the set's size.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mongo_events::ServerAddress;
use mongo_sdam::{
    Operation, ReadMode, ReadPreference, ServerDescription, Topology, TopologyConfig,
};

fn hosts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("host{i}.example.com:27017"))
        .collect()
}

fn primary_reply(hosts: &[String], set_version: i32) -> Document {
    doc! {
        "ok": 1, "helloOk": true, "isWritablePrimary": true, "setName": "rs",
        "setVersion": set_version, "maxWireVersion": 21, "minWireVersion": 0,
        "logicalSessionTimeoutMinutes": 30,
        "hosts": hosts.iter().map(|h| Bson::String(h.clone())).collect::<Vec<_>>(),
    }
}

/// A set whose every member is known: the primary, and secondaries with varied RTTs.
fn discovered(n: usize) -> (Topology, Vec<String>) {
    let hosts = hosts(n);
    let first = ServerAddress::parse(&hosts[0]).unwrap();
    let mut config = TopologyConfig::new(vec![first.clone()]);
    config.set_name = Some("rs".into());
    let mut topology = Topology::new(&config).unwrap();
    topology.set_record_events(false);
    let now = Instant::now();
    topology.apply(ServerDescription::from_hello(
        first,
        &primary_reply(&hosts, 1),
        Some(Duration::from_millis(2)),
        now,
    ));
    for (i, h) in hosts.iter().enumerate().skip(1) {
        let reply = doc! {"ok": 1, "secondary": true, "setName": "rs", "maxWireVersion": 21,
        "logicalSessionTimeoutMinutes": 30,
        "hosts": hosts.iter().map(|h| Bson::String(h.clone())).collect::<Vec<_>>()};
        let rtt = Duration::from_millis(u64::try_from(i % 40).unwrap());
        topology.apply(ServerDescription::from_hello(
            ServerAddress::parse(h).unwrap(),
            &reply,
            Some(rtt),
            now,
        ));
    }
    (topology, hosts)
}

fn bench(c: &mut Criterion) {
    let mut apply = c.benchmark_group("apply_primary_hello");
    for n in [3usize, 50, 500] {
        let (mut topology, hosts) = discovered(n);
        let first = ServerAddress::parse(&hosts[0]).unwrap();
        let reply = primary_reply(&hosts, 1);
        apply.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let sd = ServerDescription::from_hello(
                    first.clone(),
                    black_box(&reply),
                    Some(Duration::from_millis(2)),
                    Instant::now(),
                );
                black_box(topology.apply(sd));
            })
        });
    }
    apply.finish();

    let mut select = c.benchmark_group("select_nearest");
    for n in [3usize, 50, 500] {
        let (topology, _) = discovered(n);
        let rp = ReadPreference::new(ReadMode::Nearest);
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut random = move |k: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % u64::try_from(k).unwrap()).unwrap()
        };
        select.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let chosen = topology
                    .description()
                    .select_server(Operation::Read(&rp), &[], |_| 0, &mut random)
                    .unwrap();
                black_box(chosen.map(|s| s.address.clone()));
            })
        });
    }
    select.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
