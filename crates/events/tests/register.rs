//! The process-wide registry: listeners registered before a client's set is built are in it,
//! later ones are not. Its own test binary, so that no other test shares the global registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mongo_events::cmap::{CmapEvent, PoolReadyEvent};
use mongo_events::{FnListener, Listener, Listeners, ServerAddress, register};

fn counter() -> (Arc<AtomicUsize>, Listener) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let l = Listener::pool(FnListener(move |_: &CmapEvent| {
        m.fetch_add(1, Ordering::SeqCst);
    }));
    (n, l)
}

fn ready() -> CmapEvent {
    CmapEvent::PoolReady(PoolReadyEvent {
        address: ServerAddress::default(),
    })
}

#[test]
fn global_listeners_reach_clients_built_after_registration_only() {
    let (early, early_listener) = counter();
    register(early_listener);

    let (own, own_listener) = counter();
    let client_a = Listeners::with_global(&Listeners::new().with(own_listener));

    let (late, late_listener) = counter();
    register(late_listener);
    let client_b = Listeners::with_global(&Listeners::new());

    client_a.emit_pool(ready);
    assert_eq!(
        early.load(Ordering::SeqCst),
        1,
        "global registered before A reaches A"
    );
    assert_eq!(own.load(Ordering::SeqCst), 1, "A's own listener reaches A");
    assert_eq!(
        late.load(Ordering::SeqCst),
        0,
        "global registered after A does not reach A"
    );

    client_b.emit_pool(ready);
    assert_eq!(early.load(Ordering::SeqCst), 2, "early global reaches B");
    assert_eq!(
        late.load(Ordering::SeqCst),
        1,
        "late global reaches B, built after it"
    );
    assert_eq!(
        own.load(Ordering::SeqCst),
        1,
        "A's own listener does not reach B"
    );

    // A set built without with_global never sees global listeners.
    let plain = Listeners::new();
    assert!(!plain.has_pool());
}
