//! Listener dispatch, closures, lazy event building, panic isolation and the loggers.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::doc;
use bson::oid::ObjectId;
use mongo_events::cmap::*;
use mongo_events::command::*;
use mongo_events::sdam::*;
use mongo_events::*;
use support::Captured;
use tracing_subscriber::layer::SubscriberExt;

fn addr() -> ServerAddress {
    ServerAddress::tcp("db.example", 27017)
}

fn conn_info() -> ConnectionInfo {
    ConnectionInfo {
        address: addr(),
        driver_connection_id: ConnectionId(3),
        server_connection_id: Some(77),
    }
}

fn started() -> CommandEvent {
    CommandEvent::Started(CommandStartedEvent {
        command: doc! {"ping": 1},
        database_name: "admin".into(),
        command_name: "ping".into(),
        request_id: 9,
        operation_id: Some(9),
        connection: conn_info(),
        service_id: None,
    })
}

/// Every CMAP event once, in a plausible order.
fn all_cmap() -> Vec<CmapEvent> {
    let a = addr();
    let id = ConnectionId(1);
    vec![
        CmapEvent::PoolCreated(PoolCreatedEvent {
            address: a.clone(),
            options: PoolOptionsSnapshot::default(),
        }),
        CmapEvent::PoolReady(PoolReadyEvent { address: a.clone() }),
        CmapEvent::ConnectionCheckOutStarted(ConnectionCheckOutStartedEvent { address: a.clone() }),
        CmapEvent::ConnectionCreated(ConnectionCreatedEvent {
            address: a.clone(),
            connection_id: id,
        }),
        CmapEvent::ConnectionReady(ConnectionReadyEvent {
            address: a.clone(),
            connection_id: id,
            duration: Duration::from_millis(2),
        }),
        CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
            address: a.clone(),
            connection_id: id,
            duration: Duration::from_millis(3),
        }),
        CmapEvent::ConnectionCheckedIn(ConnectionCheckedInEvent {
            address: a.clone(),
            connection_id: id,
        }),
        CmapEvent::PoolCleared(PoolClearedEvent {
            address: a.clone(),
            service_id: None,
            interrupt_in_use_connections: true,
        }),
        CmapEvent::ConnectionClosed(ConnectionClosedEvent {
            address: a.clone(),
            connection_id: id,
            reason: ConnectionClosedReason::Stale,
            error: None,
        }),
        CmapEvent::ConnectionCheckOutFailed(ConnectionCheckOutFailedEvent {
            address: a.clone(),
            reason: ConnectionCheckOutFailedReason::Timeout,
            error: Some(EventError::msg("timed out")),
            duration: Duration::from_millis(5),
        }),
        CmapEvent::PoolClosed(PoolClosedEvent { address: a }),
    ]
}

#[test]
fn a_listener_implements_only_what_it_needs() {
    struct OnlyFailures(AtomicUsize);
    impl CommandListener for OnlyFailures {
        fn failed(&self, _e: &CommandFailedEvent) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let l = Arc::new(OnlyFailures(AtomicUsize::new(0)));
    let set = Listeners::new().with(Listener::Command(l.clone()));
    set.emit_command(started);
    set.emit_command(|| {
        CommandEvent::Failed(CommandFailedEvent {
            duration: Duration::from_millis(1),
            command_name: "ping".into(),
            database_name: "admin".into(),
            failure: EventError::msg("boom"),
            reply: None,
            request_id: 9,
            operation_id: None,
            connection: conn_info(),
            service_id: None,
        })
    });
    assert_eq!(l.0.load(Ordering::SeqCst), 1);
}

#[test]
fn pool_listener_methods_receive_their_events() {
    #[derive(Default)]
    struct Names(std::sync::Mutex<Vec<&'static str>>);
    impl PoolListener for Names {
        fn connection_checked_out(&self, e: &ConnectionCheckedOutEvent) {
            assert_eq!(e.duration, Duration::from_millis(3));
            self.0.lock().unwrap().push("out");
        }
        fn connection_checked_in(&self, _e: &ConnectionCheckedInEvent) {
            self.0.lock().unwrap().push("in");
        }
        fn pool_cleared(&self, e: &PoolClearedEvent) {
            assert!(e.interrupt_in_use_connections);
            self.0.lock().unwrap().push("cleared");
        }
    }
    let l = Arc::new(Names::default());
    let set = Listeners::new().with(Listener::Pool(l.clone()));
    for e in all_cmap() {
        set.emit_pool(|| e);
    }
    assert_eq!(*l.0.lock().unwrap(), ["out", "in", "cleared"]);
}

#[test]
fn no_listener_means_the_event_is_not_built() {
    let built = AtomicUsize::new(0);
    let set = Listeners::new();
    set.emit_command(|| {
        built.fetch_add(1, Ordering::SeqCst);
        started()
    });
    assert_eq!(built.load(Ordering::SeqCst), 0);

    // A listener of another family does not make command events get built either.
    let set = Listeners::new().with(Listener::pool(FnListener(|_: &CmapEvent| {})));
    set.emit_command(|| {
        built.fetch_add(1, Ordering::SeqCst);
        started()
    });
    assert_eq!(built.load(Ordering::SeqCst), 0);

    let set = Listeners::new().with(Listener::command(FnListener(|_: &CommandEvent| {})));
    set.emit_command(|| {
        built.fetch_add(1, Ordering::SeqCst);
        started()
    });
    assert_eq!(built.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_listener_is_isolated_and_logged_once() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let after = Arc::new(AtomicUsize::new(0));
    let after2 = after.clone();
    let set = Listeners::new()
        .with(Listener::command(FnListener(|_: &CommandEvent| {
            panic!("listener bug")
        })))
        .with(Listener::command(FnListener(move |_: &CommandEvent| {
            after2.fetch_add(1, Ordering::SeqCst);
        })));
    // Keep the default hook's message out of the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    tracing::subscriber::with_default(subscriber, || {
        set.emit_command(started);
        set.emit_command(started);
        set.emit_command(started);
    });
    std::panic::set_hook(hook);
    assert_eq!(
        after.load(Ordering::SeqCst),
        3,
        "later listeners still get every event"
    );
    let panics: Vec<_> = captured
        .lines()
        .into_iter()
        .filter(|(target, level, _)| target == "mongo::events" && *level == tracing::Level::ERROR)
        .collect();
    assert_eq!(panics.len(), 1, "logged once: {panics:?}");
    assert!(panics[0].2.contains("panicked"));
}

#[test]
fn the_recorder_keeps_every_family_in_order() {
    let rec = EventRecorder::shared();
    let mut set = Listeners::new();
    set.add_all(rec.clone());
    let topology_id = ObjectId::new();
    set.emit_topology(|| TopologyEvent::Opening(TopologyOpeningEvent { topology_id }));
    set.emit_server(|| {
        ServerEvent::Opening(ServerOpeningEvent {
            address: addr(),
            topology_id,
        })
    });
    set.emit_heartbeat(|| {
        HeartbeatEvent::Started(ServerHeartbeatStartedEvent {
            address: addr(),
            awaited: true,
        })
    });
    set.emit_command(started);
    for e in all_cmap() {
        set.emit_pool(|| e);
    }
    assert_eq!(rec.events().len(), 4 + 11);
    assert_eq!(rec.topology_events().len(), 1);
    assert_eq!(rec.server_events().len(), 1);
    assert!(matches!(rec.heartbeat_events()[0], HeartbeatEvent::Started(ref e) if e.awaited));
    assert_eq!(rec.command_events()[0].command_name(), "ping");
    assert_eq!(
        rec.cmap_names(),
        [
            "ConnectionPoolCreated",
            "ConnectionPoolReady",
            "ConnectionCheckOutStarted",
            "ConnectionCreated",
            "ConnectionReady",
            "ConnectionCheckedOut",
            "ConnectionCheckedIn",
            "ConnectionPoolCleared",
            "ConnectionClosed",
            "ConnectionCheckOutFailed",
            "ConnectionPoolClosed",
        ]
    );
    assert_eq!(rec.take().len(), 15);
    assert!(rec.events().is_empty());
}

#[test]
fn loggers_write_each_family_to_its_target() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let set = loggers::all();
    let topology_id = ObjectId::new();
    tracing::subscriber::with_default(subscriber, || {
        set.emit_command(started);
        for e in all_cmap() {
            set.emit_pool(|| e);
        }
        set.emit_server(|| {
            ServerEvent::Closed(ServerClosedEvent {
                address: addr(),
                topology_id,
            })
        });
        set.emit_heartbeat(|| {
            HeartbeatEvent::Failed(ServerHeartbeatFailedEvent {
                address: addr(),
                awaited: false,
                duration: Duration::from_millis(4),
                failure: EventError::msg("connection refused"),
            })
        });
        set.emit_topology(|| {
            TopologyEvent::DescriptionChanged(Box::new(TopologyDescriptionChangedEvent {
                topology_id,
                previous_description: TopologyInfo::default(),
                new_description: TopologyInfo::default(),
            }))
        });
    });
    let lines = captured.lines();
    let on = |t: &str| lines.iter().filter(|(target, _, _)| target == t).count();
    assert_eq!(on("mongo::command"), 1);
    assert_eq!(on("mongo::connection"), 11);
    // server closed, heartbeat failed, topology changed + no writable + no readable
    assert_eq!(on("mongo::topology"), 5);
    assert!(
        lines
            .iter()
            .any(|(_, l, m)| *l == tracing::Level::WARN && m.contains("No writable servers"))
    );
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m.contains("connection refused"))
    );
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m.contains("Wait queue timeout elapsed"))
    );
}
