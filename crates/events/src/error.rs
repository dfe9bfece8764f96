//! The error carried by failure events.

use std::fmt;
use std::sync::Arc;

/// An error attached to an event (a failed command, heartbeat, check-out or a connection closed
/// because of an error). Cheap to clone; the original error is kept for downcasting.
#[derive(Clone)]
pub struct EventError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl EventError {
    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        EventError(Arc::new(error))
    }

    /// Wraps an already shared error.
    pub fn from_arc(error: Arc<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        EventError(error)
    }

    /// An error that is only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        EventError::new(Message(message.into()))
    }

    /// The wrapped error.
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The wrapped error, if it is of type `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl fmt::Debug for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}
