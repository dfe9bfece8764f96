//! A tracing layer that records (target, level, message) of every event, for assertions.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<(String, Level, String)>>>);

impl Captured {
    pub(crate) fn lines(&self) -> Vec<(String, Level, String)> {
        self.0.lock().unwrap().clone()
    }
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = MessageVisitor(String::new());
        event.record(&mut v);
        self.0.lock().unwrap().push((
            event.metadata().target().to_string(),
            *event.metadata().level(),
            v.0,
        ));
    }
}
