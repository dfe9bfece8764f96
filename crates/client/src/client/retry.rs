//! The retry policy, sans-I/O: after a failed attempt, whether the executor tries again, after
//! how long a backoff, and whether it moves away from the server that failed; and, once it
//! stops, which of the attempts' errors the caller gets. No clock, no randomness, no sleep:
//! the executor passes in the time left before the operation's deadline and a jitter source,
//! and does the waiting itself (`executor.rs`, through [`super::Backoff`]).
//!
//! It is the client backpressure spec's unified retry loop ("Overload retry policy",
//! "Interaction with Other Retry Policies" and its pseudocode), which folds in the retryable
//! reads and writes rules:
//!
//! - an attempt is retried when the retryable reads / writes rules allow it (the executor
//!   judges those: [`Failure::retryable_by_rules`]) or when its error is a *retryable overload
//!   error* (labels `SystemOverloadedError` and `RetryableError`) and the client options let the
//!   operation's kind retry ([`Failure::overload_eligible`]: retryReads for reads,
//!   retryWrites for writes, both for runCommand);
//! - the number of retries is 1 (unbounded under `timeoutMS`, within its deadline) until an
//!   error carries `SystemOverloadedError`; from then on it is `maxAdaptiveRetries`
//!   (default [`DEFAULT_MAX_ADAPTIVE_RETRIES`]), counting every retry of the operation's
//!   command, overload or not;
//! - a retry after an overload error waits `jitter * min(MAX_BACKOFF, base * 2^attempt)`,
//!   `attempt` being the retry's number (1 for the first), `base` the error's `baseBackoffMS`
//!   when positive, else [`BASE_BACKOFF`]; other retries do not wait; a backoff that would end
//!   after the deadline ends the loop instead;
//! - the failed server is deprioritized for the next selection when the deployment is
//!   sharded (retryable reads / writes specs: every retryable error), or when the error is an
//!   overload error and `enableOverloadRetargeting` is on (backpressure spec, rule 4; the
//!   retryable reads / writes specs allow it on other topologies only for overload errors).
//!
//! The specification's earlier token bucket ("retry budget") was withdrawn ("phase 1 support
//! without token buckets"); `maxAdaptiveRetries` and the deadline are the only budget.

use std::time::Duration;

/// The backpressure spec's `BASE_BACKOFF`.
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// The backpressure spec's `MAX_BACKOFF`.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The backpressure spec's default `MAX_RETRIES` (`maxAdaptiveRetries`).
pub(crate) const DEFAULT_MAX_ADAPTIVE_RETRIES: u32 = 2;

/// The client's settings of the retry loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// `maxAdaptiveRetries`: the most retries once an overload error was seen.
    pub(crate) max_adaptive_retries: u32,
    /// `enableOverloadRetargeting`: deprioritize a server that answered with an overload
    /// error.
    pub(crate) overload_retargeting: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_adaptive_retries: DEFAULT_MAX_ADAPTIVE_RETRIES,
            overload_retargeting: false,
        }
    }
}

/// What the executor knows about one failed attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The retryable reads / writes rules allow a retry (the operation is retryable, the
    /// client option is on, the error is retryable for its kind, the server supports it).
    pub(crate) retryable_by_rules: bool,
    /// The client options let this operation be retried on an overload error (retryReads for
    /// a read, retryWrites for a write, both for runCommand) and it can be run again (a
    /// pinned connection is still usable).
    pub(crate) overload_eligible: bool,
    /// The error carries `SystemOverloadedError`.
    pub(crate) overloaded: bool,
    /// The error carries `RetryableError`.
    pub(crate) retryable_label: bool,
    /// The error's `baseBackoffMS`, when the server sent one.
    pub(crate) base_backoff: Option<Duration>,
    /// The attempt ran in a sharded deployment.
    pub(crate) sharded: bool,
}

/// Why the loop ends with the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Neither the retryable reads / writes rules nor the overload policy retry this error.
    NotRetryable,
    /// The retries allowed are used up (1, or `maxAdaptiveRetries` after an overload error).
    Exhausted,
    /// The deadline (`timeoutMS`) leaves no time for the retry or its backoff.
    Deadline,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Wait `backoff` (zero unless the error was an overload error), then try again,
    /// avoiding the failed server when `deprioritize`.
    Retry {
        /// How long to wait before the next attempt.
        backoff: Duration,
        /// Add the failed server to the deprioritized servers of the next selection.
        deprioritize: bool,
    },
    /// Give up: the caller gets the error [`Errors`] chooses.
    Stop(Stop),
}

/// The retry state of one command (each batch of a batched write has its own).
#[derive(Clone, Debug)]
pub(crate) struct RetryState {
    policy: RetryPolicy,
    /// `timeoutMS` is set: without overload errors, retries are bounded by the deadline only.
    csot: bool,
    /// Retries decided so far (the spec's `attempt` after its increment).
    attempt: u32,
    /// An overload error was seen: `maxAdaptiveRetries` caps every retry from now on.
    overloaded: bool,
}

impl RetryState {
    /// A command's first attempt is about to run.
    pub(crate) fn new(policy: RetryPolicy, csot: bool) -> Self {
        RetryState {
            policy,
            csot,
            attempt: 0,
            overloaded: false,
        }
    }

    /// The retries decided so far.
    #[cfg(test)]
    pub(crate) fn retries(&self) -> u32 {
        self.attempt
    }

    /// Judges a failed attempt. `jitter` is called (once) only when the retry backs off; it
    /// returns a value in `[0, 1)` (anything outside is clamped). `remaining` is the time left
    /// before the operation's deadline (`None`: no deadline).
    pub(crate) fn on_failure(
        &mut self,
        failure: &Failure,
        jitter: impl FnOnce() -> f64,
        remaining: Option<Duration>,
    ) -> Decision {
        let overload_retryable =
            failure.overloaded && failure.retryable_label && failure.overload_eligible;
        if !failure.retryable_by_rules && !overload_retryable {
            return Decision::Stop(Stop::NotRetryable);
        }
        self.attempt = self.attempt.saturating_add(1);
        self.overloaded |= failure.overloaded;
        let allowed = if self.overloaded {
            Some(self.policy.max_adaptive_retries)
        } else if self.csot {
            None
        } else {
            Some(1)
        };
        if allowed.is_some_and(|allowed| self.attempt > allowed) {
            return Decision::Stop(Stop::Exhausted);
        }
        let backoff = if failure.overloaded {
            let base = failure
                .base_backoff
                .filter(|b| !b.is_zero())
                .unwrap_or(BASE_BACKOFF);
            backoff(self.attempt, base, jitter())
        } else {
            Duration::ZERO
        };
        if remaining.is_some_and(|left| left.is_zero() || backoff > left) {
            return Decision::Stop(Stop::Deadline);
        }
        Decision::Retry {
            backoff,
            deprioritize: failure.sharded
                || (failure.overloaded && self.policy.overload_retargeting),
        }
    }
}

/// `jitter * min(MAX_BACKOFF, base * 2^attempt)` (backpressure spec, rule 3).
pub(crate) fn backoff(attempt: u32, base: Duration, jitter: f64) -> Duration {
    let exponential = 2_u32
        .checked_pow(attempt)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF));
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    exponential.mul_f64(jitter)
}

/// The error the caller gets when the loop stops (retryable reads / writes specs, "error
/// propagation"; the backpressure spec's rule 6 counts runCommand as a write).
///
/// - Reads: the latest error, except that an attempt that found no server gives way to the
///   error before it ("If the driver cannot select a server for a retry attempt … raise the
///   previous retryable error").
/// - Writes and runCommand: the latest error of an attempt that may have written (the
///   command was sent and the error is not labelled `NoWritesPerformed`); when none may
///   have, the first error.
#[derive(Debug)]
pub(crate) struct Errors<E> {
    first: Option<E>,
    chosen: Option<E>,
}

impl<E> Default for Errors<E> {
    fn default() -> Self {
        Errors {
            first: None,
            chosen: None,
        }
    }
}

impl<E> Errors<E> {
    /// Records the error of an attempt that is retried. `counts` says whether the rules above
    /// let it replace the earlier ones (a read that found a server; a write that may have
    /// written).
    pub(crate) fn record(&mut self, error: E, counts: bool) {
        if counts {
            self.chosen = Some(error);
        } else if self.first.is_none() && self.chosen.is_none() {
            self.first = Some(error);
        }
    }

    /// The error to report, given the last attempt's.
    pub(crate) fn finish(self, last: E, counts: bool) -> E {
        if counts {
            return last;
        }
        self.chosen.or(self.first).unwrap_or(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLOAD: Failure = Failure {
        retryable_by_rules: false,
        overload_eligible: true,
        overloaded: true,
        retryable_label: true,
        base_backoff: None,
        sharded: false,
    };

    const NETWORK: Failure = Failure {
        retryable_by_rules: true,
        overload_eligible: true,
        overloaded: false,
        retryable_label: false,
        base_backoff: None,
        sharded: false,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn retry(backoff: Duration) -> Decision {
        Decision::Retry {
            backoff,
            deprioritize: false,
        }
    }

    fn no_jitter() -> f64 {
        panic!("no backoff expected")
    }

    #[test]
    fn the_backoff_doubles_from_the_first_retry_and_is_capped() {
        assert_eq!(backoff(1, BASE_BACKOFF, 1.0), ms(200));
        assert_eq!(backoff(2, BASE_BACKOFF, 1.0), ms(400));
        assert_eq!(backoff(2, BASE_BACKOFF, 0.5), ms(200));
        assert_eq!(backoff(1, BASE_BACKOFF, 0.0), Duration::ZERO);
        assert_eq!(backoff(7, BASE_BACKOFF, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(40, BASE_BACKOFF, 1.0), MAX_BACKOFF, "no overflow");
        assert_eq!(backoff(u32::MAX, BASE_BACKOFF, 0.5), MAX_BACKOFF / 2);
        assert_eq!(backoff(1, BASE_BACKOFF, 7.0), ms(200), "clamped");
        assert_eq!(backoff(1, BASE_BACKOFF, f64::NAN), Duration::ZERO);
        assert_eq!(backoff(1, ms(50), 1.0), ms(100));
    }

    #[test]
    fn overload_errors_are_retried_max_adaptive_retries_times_with_backoff() {
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(s.on_failure(&OVERLOAD, || 1.0, None), retry(ms(200)));
        assert_eq!(s.on_failure(&OVERLOAD, || 1.0, None), retry(ms(400)));
        assert_eq!(
            s.on_failure(&OVERLOAD, || 1.0, None),
            Decision::Stop(Stop::Exhausted)
        );
        assert_eq!(s.retries(), 3);

        let policy = RetryPolicy {
            max_adaptive_retries: 0,
            ..RetryPolicy::default()
        };
        let mut s = RetryState::new(policy, false);
        assert_eq!(
            s.on_failure(&OVERLOAD, || 1.0, None),
            Decision::Stop(Stop::Exhausted)
        );
        let policy = RetryPolicy {
            max_adaptive_retries: 5,
            ..RetryPolicy::default()
        };
        let mut s = RetryState::new(policy, false);
        for _ in 0..5 {
            assert!(matches!(
                s.on_failure(&OVERLOAD, || 0.0, None),
                Decision::Retry { .. }
            ));
        }
        assert_eq!(
            s.on_failure(&OVERLOAD, || 0.0, None),
            Decision::Stop(Stop::Exhausted)
        );
    }

    #[test]
    fn an_overload_retry_needs_both_labels_and_the_options() {
        let mut s = RetryState::new(RetryPolicy::default(), false);
        for failure in [
            Failure {
                retryable_label: false,
                ..OVERLOAD
            },
            Failure {
                overloaded: false,
                ..OVERLOAD
            },
            Failure {
                overload_eligible: false,
                ..OVERLOAD
            },
        ] {
            assert_eq!(
                s.on_failure(&failure, no_jitter, None),
                Decision::Stop(Stop::NotRetryable),
                "{failure:?}"
            );
        }
        assert_eq!(s.retries(), 0);
    }

    #[test]
    fn other_retryable_errors_are_retried_once_without_backoff() {
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            retry(Duration::ZERO)
        );
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            Decision::Stop(Stop::Exhausted)
        );
        let mut s = RetryState::new(RetryPolicy::default(), false);
        let not_retryable = Failure {
            retryable_by_rules: false,
            ..NETWORK
        };
        assert_eq!(
            s.on_failure(&not_retryable, no_jitter, None),
            Decision::Stop(Stop::NotRetryable)
        );
    }

    #[test]
    fn an_overload_error_raises_the_limit_for_every_later_retry() {
        // Network error (1 of 1), then an overload error: the limit becomes 2, and the
        // backoff exponent counts the first retry too.
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            retry(Duration::ZERO)
        );
        assert_eq!(s.on_failure(&OVERLOAD, || 1.0, None), retry(ms(400)));
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            Decision::Stop(Stop::Exhausted)
        );
        // Overload first, then a plain retryable error: still retried (limit 2), no backoff.
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(s.on_failure(&OVERLOAD, || 1.0, None), retry(ms(200)));
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            retry(Duration::ZERO)
        );
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, None),
            Decision::Stop(Stop::Exhausted)
        );
        // An overload-labelled error the rules retry (no RetryableError) also backs off.
        let mut s = RetryState::new(RetryPolicy::default(), false);
        let labelled = Failure {
            retryable_by_rules: true,
            retryable_label: false,
            ..OVERLOAD
        };
        assert_eq!(s.on_failure(&labelled, || 1.0, None), retry(ms(200)));
    }

    #[test]
    fn under_timeout_ms_only_the_deadline_bounds_other_retries() {
        let mut s = RetryState::new(RetryPolicy::default(), true);
        for _ in 0..10 {
            assert_eq!(
                s.on_failure(&NETWORK, no_jitter, Some(ms(1000))),
                retry(Duration::ZERO)
            );
        }
        assert_eq!(
            s.on_failure(&NETWORK, no_jitter, Some(Duration::ZERO)),
            Decision::Stop(Stop::Deadline)
        );
        // Once an overload error is seen, maxAdaptiveRetries caps them (11 > 2).
        assert_eq!(
            s.on_failure(&OVERLOAD, || 0.0, Some(ms(1000))),
            Decision::Stop(Stop::Exhausted)
        );
        // A backoff that would end after the deadline ends the loop.
        let mut s = RetryState::new(RetryPolicy::default(), true);
        assert_eq!(
            s.on_failure(&OVERLOAD, || 1.0, Some(ms(150))),
            Decision::Stop(Stop::Deadline)
        );
        let mut s = RetryState::new(RetryPolicy::default(), true);
        assert_eq!(
            s.on_failure(&OVERLOAD, || 0.5, Some(ms(150))),
            retry(ms(100))
        );
    }

    #[test]
    fn base_backoff_ms_replaces_the_base_when_positive() {
        let with_base = |ms: Duration| Failure {
            base_backoff: Some(ms),
            ..OVERLOAD
        };
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(
            s.on_failure(&with_base(ms(50)), || 1.0, None),
            retry(ms(100))
        );
        assert_eq!(
            s.on_failure(&with_base(ms(50)), || 1.0, None),
            retry(ms(200))
        );
        let mut s = RetryState::new(RetryPolicy::default(), false);
        assert_eq!(
            s.on_failure(&with_base(Duration::ZERO), || 1.0, None),
            retry(ms(200))
        );
    }

    #[test]
    fn deprioritization_follows_the_topology_and_retargeting() {
        let retargeting = RetryPolicy {
            overload_retargeting: true,
            ..RetryPolicy::default()
        };
        let deprioritizes = |policy: RetryPolicy, failure: Failure| match RetryState::new(
            policy, false,
        )
        .on_failure(&failure, || 0.0, None)
        {
            Decision::Retry { deprioritize, .. } => deprioritize,
            Decision::Stop(s) => panic!("{s:?}"),
        };
        assert!(!deprioritizes(RetryPolicy::default(), OVERLOAD));
        assert!(deprioritizes(retargeting, OVERLOAD));
        // Other errors only in a sharded deployment, whatever the option says.
        assert!(!deprioritizes(retargeting, NETWORK));
        let sharded = Failure {
            sharded: true,
            ..NETWORK
        };
        assert!(deprioritizes(RetryPolicy::default(), sharded));
        assert!(deprioritizes(
            RetryPolicy::default(),
            Failure {
                sharded: true,
                ..OVERLOAD
            }
        ));
    }

    #[test]
    fn the_reported_error_follows_the_propagation_rules() {
        // Every attempt counts: the latest.
        let mut e = Errors::default();
        e.record(1, true);
        e.record(2, true);
        assert_eq!(e.finish(3, true), 3);
        // None counts: the first.
        let mut e = Errors::default();
        e.record(1, false);
        e.record(2, false);
        assert_eq!(e.finish(3, false), 1);
        // Mixed: the latest that counts.
        let mut e = Errors::default();
        e.record(1, false);
        e.record(2, true);
        assert_eq!(e.finish(3, false), 2);
        let mut e = Errors::default();
        e.record(1, true);
        e.record(2, false);
        assert_eq!(e.finish(3, false), 1);
        // No retry: the only error, whatever it is.
        assert_eq!(Errors::default().finish(1, false), 1);
    }
}
