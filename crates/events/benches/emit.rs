//! Cost of publishing a CMAP event with 0, 1 and 8 listeners. With no listener the event is
//! not built, so emitting is a length check.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mongo_events::cmap::{CmapEvent, ConnectionCheckedOutEvent};
use mongo_events::{ConnectionId, FnListener, Listener, Listeners, ServerAddress};

fn bench_emit(c: &mut Criterion) {
    let address = ServerAddress::tcp("localhost", 27017);
    let mut group = c.benchmark_group("emit_checked_out");
    for n in [0usize, 1, 8] {
        let counter = Arc::new(AtomicU64::new(0));
        let mut set = Listeners::new();
        for _ in 0..n {
            let c = counter.clone();
            set.add(Listener::pool(FnListener(move |e: &CmapEvent| {
                if e.connection_id().is_some() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            })));
        }
        group.bench_function(format!("{n}_listeners"), |b| {
            let mut id = 0u64;
            b.iter(|| {
                id += 1;
                set.emit_pool(|| {
                    CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                        address: address.clone(),
                        connection_id: ConnectionId(black_box(id)),
                        duration: Duration::from_micros(3),
                    })
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_emit);
criterion_main!(benches);
