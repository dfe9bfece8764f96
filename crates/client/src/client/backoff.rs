//! The I/O half of an overload retry's backoff: where its jitter comes from and how the
//! executor waits it out. The decision itself (retry or not, how long) is the sans-I/O
//! policy's (`retry.rs`); this trait is what a test, or an application that wants
//! reproducible timing, replaces through [`ClientBuilder::backoff`](super::ClientBuilder::backoff).
#![allow(
    clippy::disallowed_methods,
    reason = "the default backoff draws its jitter from the thread's random number generator \
              and sleeps on tokio's timer"
)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A sleep handed out by a [`Backoff`].
pub type BackoffSleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The randomness and the waiting of the backoff before a retry that follows an overload
/// error (client backpressure spec: `backoff = jitter * min(MAX_BACKOFF, base * 2^attempt)`).
///
/// The client calls [`jitter`](Backoff::jitter) once per backoff it computes and then
/// awaits [`sleep`](Backoff::sleep) with the result; the connection of the failed attempt is
/// back in its pool by then. The default, [`RandomBackoff`], draws the jitter uniformly from
/// `[0, 1)` and sleeps on tokio's timer. Replace it to pin the jitter (the spec's prose tests
/// do), to record the backoffs, or to skip the waiting in a simulation.
pub trait Backoff: Send + Sync + fmt::Debug {
    /// A jitter in `[0, 1)`; values outside are clamped.
    fn jitter(&self) -> f64;

    /// Waits `duration`. Dropping the future cancels the wait.
    fn sleep(&self, duration: Duration) -> BackoffSleep;
}

/// The default [`Backoff`]: uniform jitter from the thread's random number generator, tokio's
/// `sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomBackoff;

impl Backoff for RandomBackoff {
    fn jitter(&self) -> f64 {
        rand::random::<f64>()
    }

    fn sleep(&self, duration: Duration) -> BackoffSleep {
        Box::pin(tokio::time::sleep(duration))
    }
}
