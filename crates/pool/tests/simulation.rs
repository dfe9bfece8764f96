//! Seeded random simulation of thousands of schedules over `PoolCore`: random check-outs
//! (some with their own deadline, some already past), abandoned requests, check-ins (healthy and errored), establishments that succeed, fail or
//! hang, clears (with and without interrupting, per service in load-balanced mode), ready,
//! and time passing. After every step the invariants are checked:
//!
//! - total <= maxPoolSize (when capped), pending <= maxConnecting;
//! - the core's counts agree with what the driver side holds;
//! - no waiter sleeps while a connection is available to it (no waiters while connections
//!   are available; more waiters than connections being established only when the pool
//!   cannot create one);
//! - at the end, once all work is done, counts return to baseline.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests and benchmarks own their clock and tasks"
)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mongo_events::{EventError, ServiceId};
use mongo_pool::{
    Action, CheckedOut, CheckoutStart, Establishing, PoolCore, PoolOptions, PoolState, WaiterId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Model {
    core: PoolCore<u64>,
    now: Instant,
    waiting: HashSet<WaiterId>,
    in_use: Vec<CheckedOut<u64>>,
    establishing: Vec<Establishing>,
    max_pool: usize,
    max_connecting: usize,
    services: Vec<ServiceId>,
    closed_conns: usize,
}

impl Model {
    fn drain(&mut self) {
        while let Some(a) = self.core.poll_action() {
            match a {
                Action::Establish { ticket } => self.establishing.push(ticket),
                Action::CancelEstablish { id } => self.establishing.retain(|t| t.id() != id),
                Action::Deliver { waiter, conn } => {
                    assert!(
                        self.waiting.remove(&waiter),
                        "delivered to unknown {waiter:?}"
                    );
                    self.in_use.push(conn);
                }
                Action::FailWaiter { waiter, .. } => {
                    assert!(self.waiting.remove(&waiter), "failed unknown {waiter:?}");
                }
                Action::Close { .. } => self.closed_conns += 1,
                _ => {}
            }
        }
        while self.core.poll_event().is_some() {}
    }

    fn check(&self, step: usize, seed: u64) {
        let s = self.core.stats();
        let ctx = format!("seed {seed} step {step}: {s:?}");
        assert!(s.total <= self.max_pool, "total above maxPoolSize: {ctx}");
        assert!(
            s.pending <= self.max_connecting,
            "pending above maxConnecting: {ctx}"
        );
        assert_eq!(s.total, s.available + s.pending + s.in_use, "{ctx}");
        assert_eq!(
            s.pending,
            self.establishing.len(),
            "pending mismatch: {ctx}"
        );
        assert_eq!(s.in_use, self.in_use.len(), "in-use mismatch: {ctx}");
        assert_eq!(s.waiters, self.waiting.len(), "waiters mismatch: {ctx}");
        if s.waiters > 0 && self.core.state() == PoolState::Ready {
            assert_eq!(
                s.available, 0,
                "a waiter sleeps beside an available connection: {ctx}"
            );
            if s.waiters > s.pending {
                assert!(
                    s.total >= self.max_pool || s.pending >= self.max_connecting,
                    "a waiter sleeps although a connection could be created: {ctx}"
                );
            }
        }
        if self.core.state() != PoolState::Ready {
            assert!(
                s.waiters == 0 || self.core.options().load_balanced,
                "waiters in a paused or closed pool: {ctx}"
            );
        }
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        while let Some(t) = self.core.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn establish_one(&mut self, rng: &mut StdRng, success: bool) {
        if self.establishing.is_empty() {
            return;
        }
        let i = rng.random_range(0..self.establishing.len());
        let ticket = self.establishing.swap_remove(i);
        if success {
            let service = if self.services.is_empty() {
                None
            } else {
                Some(self.services[rng.random_range(0..self.services.len())])
            };
            let n = ticket.id().0;
            let r = self.core.handle_established(ticket, n, service, self.now);
            assert!(r.is_ok(), "established connection refused");
        } else {
            let overloaded = rng.random_bool(0.5);
            assert!(self.core.handle_establish_failed(
                ticket,
                EventError::msg("boom"),
                overloaded,
                self.now
            ));
        }
        self.drain();
    }
}

/// No deadline (half the time), one already past, or one up to 200 ms ahead.
fn random_deadline(rng: &mut StdRng, now: Instant) -> Option<Instant> {
    match rng.random_range(0..10) {
        0..=4 => None,
        5 => Some(now),
        _ => Some(now + Duration::from_millis(rng.random_range(1..200))),
    }
}

fn random_options(rng: &mut StdRng) -> PoolOptions {
    let mut o = PoolOptions::default();
    let max = rng.random_range(0..=5u32);
    o.max_pool_size = Some(max);
    let min_cap = if max == 0 { 3 } else { max.min(3) };
    o.min_pool_size = Some(rng.random_range(0..=min_cap));
    o.max_connecting = Some(rng.random_range(1..=3));
    let ms = |rng: &mut StdRng, lo: u64, hi: u64| {
        rng.random_bool(0.5)
            .then(|| Duration::from_millis(rng.random_range(lo..hi)))
    };
    o.wait_queue_timeout = ms(rng, 5, 200);
    o.max_idle_time = ms(rng, 5, 300);
    o.max_lifetime = ms(rng, 50, 500);
    o.connect_timeout = ms(rng, 20, 300);
    o.load_balanced = rng.random_bool(0.2);
    o
}

fn run_schedule(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let options = random_options(&mut rng);
    let max_pool = match options.max_pool_size() {
        0 => usize::MAX,
        n => n as usize,
    };
    let max_connecting = options.max_connecting() as usize;
    let services = if options.load_balanced {
        (1..=2u8)
            .map(|n| {
                let mut bytes = [0u8; 12];
                bytes[11] = n;
                ServiceId(bson::oid::ObjectId::from_bytes(bytes))
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = Instant::now();
    let core = PoolCore::new(
        mongo_events::ServerAddress::default(),
        options,
        seed % 2 == 0,
    )
    .expect("valid options");
    let mut m = Model {
        core,
        now,
        waiting: HashSet::new(),
        in_use: Vec::new(),
        establishing: Vec::new(),
        max_pool,
        max_connecting,
        services,
        closed_conns: 0,
    };
    m.core.ready(m.now);
    m.drain();
    for step in 0..steps {
        match rng.random_range(0..100) {
            0..=29 => match m
                .core
                .handle_checkout_request(m.now, random_deadline(&mut rng, m.now))
            {
                CheckoutStart::Ready(c) => m.in_use.push(c),
                CheckoutStart::Waiting(w) => {
                    m.waiting.insert(w);
                }
                CheckoutStart::Failed(_) => {}
            },
            30..=34 => {
                if let Some(&w) = m.waiting.iter().next() {
                    assert!(m.core.cancel_waiter(w, m.now));
                    m.waiting.remove(&w);
                }
            }
            35..=54 => {
                if !m.in_use.is_empty() {
                    let i = rng.random_range(0..m.in_use.len());
                    let c = m.in_use.swap_remove(i);
                    let r = if rng.random_bool(0.1) {
                        m.core.handle_checkin_errored(c, None, m.now)
                    } else {
                        m.core.handle_checkin(c, m.now)
                    };
                    assert!(r.is_ok());
                }
            }
            55..=69 => m.establish_one(&mut rng, true),
            70..=74 => m.establish_one(&mut rng, false),
            75..=87 => {
                let ms = rng.random_range(0..120);
                m.advance(ms);
            }
            88..=91 => {
                let service = if m.services.is_empty() || rng.random_bool(0.3) {
                    None
                } else {
                    Some(m.services[rng.random_range(0..m.services.len())])
                };
                m.core.clear(service, rng.random_bool(0.3), None, m.now);
            }
            _ => m.core.ready(m.now),
        }
        m.drain();
        m.check(step, seed);
    }

    // Finish all work: establishments succeed, connections come back, waiters are served.
    m.core.ready(m.now);
    m.drain();
    for round in 0..10_000 {
        if m.establishing.is_empty() && m.in_use.is_empty() && m.waiting.is_empty() {
            break;
        }
        assert!(round < 9_999, "seed {seed}: work never finished");
        if !m.establishing.is_empty() {
            m.establish_one(&mut rng, true);
        } else if let Some(c) = m.in_use.pop() {
            assert!(m.core.handle_checkin(c, m.now).is_ok());
        } else {
            m.advance(50);
        }
        m.drain();
        m.check(steps + round, seed);
    }
    let s = m.core.stats();
    assert_eq!(
        (s.pending, s.in_use, s.waiters),
        (0, 0, 0),
        "seed {seed}: {s:?}"
    );
    assert_eq!(s.total, s.available, "seed {seed}");
    m.core.close(m.now);
    m.drain();
    let s = m.core.stats();
    assert_eq!(
        s.total, 0,
        "seed {seed}: connections left after close: {s:?}"
    );
    assert!(m.core.poll_timeout().is_none());
}

#[test]
fn thousands_of_random_schedules_keep_the_invariants() {
    for seed in 0..3000 {
        run_schedule(seed, 300);
    }
}
