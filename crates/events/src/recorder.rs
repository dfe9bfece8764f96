//! A listener that records every event, for tests.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::cmap::CmapEvent;
use crate::command::CommandEvent;
use crate::listener::*;
use crate::sdam::{HeartbeatEvent, ServerEvent, TopologyEvent};

/// Any event of any family.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum Event {
    Command(CommandEvent),
    Cmap(CmapEvent),
    Server(ServerEvent),
    Heartbeat(HeartbeatEvent),
    Topology(TopologyEvent),
}

/// Records every event it is given, in order, for tests to inspect.
///
/// ```
/// use std::sync::Arc;
/// use mongo_events::{EventRecorder, Listeners};
///
/// let recorder = Arc::new(EventRecorder::new());
/// let mut listeners = Listeners::new();
/// listeners.add_all(recorder.clone());
/// assert!(recorder.events().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct EventRecorder {
    events: Mutex<Vec<Event>>,
}

impl EventRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        EventRecorder::default()
    }

    /// An empty recorder, already shared, to hand to [`Listeners::add_all`].
    pub fn shared() -> Arc<Self> {
        Arc::new(EventRecorder::new())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, e: Event) {
        self.lock().push(e);
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Takes every event so far, leaving the recorder empty.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }

    /// Forgets every event so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The command events so far.
    pub fn command_events(&self) -> Vec<CommandEvent> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Command(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The CMAP events so far.
    pub fn cmap_events(&self) -> Vec<CmapEvent> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Cmap(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The server events so far.
    pub fn server_events(&self) -> Vec<ServerEvent> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Server(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The heartbeat events so far.
    pub fn heartbeat_events(&self) -> Vec<HeartbeatEvent> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Heartbeat(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The topology events so far.
    pub fn topology_events(&self) -> Vec<TopologyEvent> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Topology(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The CMAP event names so far, as the CMAP tests spell them.
    pub fn cmap_names(&self) -> Vec<&'static str> {
        self.cmap_events().iter().map(CmapEvent::name).collect()
    }
}

impl CommandListener for EventRecorder {
    fn handle(&self, event: &CommandEvent) {
        self.push(Event::Command(event.clone()));
    }
}
impl PoolListener for EventRecorder {
    fn handle(&self, event: &CmapEvent) {
        self.push(Event::Cmap(event.clone()));
    }
}
impl ServerListener for EventRecorder {
    fn handle(&self, event: &ServerEvent) {
        self.push(Event::Server(event.clone()));
    }
}
impl HeartbeatListener for EventRecorder {
    fn handle(&self, event: &HeartbeatEvent) {
        self.push(Event::Heartbeat(event.clone()));
    }
}
impl TopologyListener for EventRecorder {
    fn handle(&self, event: &TopologyEvent) {
        self.push(Event::Topology(event.clone()));
    }
}
