//! The health of one backend server, shared by every pool whose connections go to it: the circuit breaker and the
//! result of the last health check.
//!
//! A server that refuses connections must not be hammered by every statement that wants it, nor slow down anyone
//! else. After `failure_threshold` connect failures in a row the breaker opens: checkouts fail at once with the
//! last error, and no connect is tried until a backoff (doubling per failed probe, with jitter so that many proxies
//! do not probe in step) has passed. Then exactly one caller (a checkout or the periodic health check) probes; a
//! success closes the breaker, a failure reopens it for the next, longer backoff. So the breaker closes by itself
//! when the server answers again, with or without traffic.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Breaker and health-check settings.
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    /// Connect failures in a row that open the breaker.
    pub failure_threshold: u32,
    /// Backoff after the breaker first opens; it doubles per failed probe.
    pub base_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// How often a healthy server is checked.
    pub check_interval: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            failure_threshold: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            check_interval: Duration::from_secs(2),
        }
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Connections are opened on demand.
    Closed,
    /// The server is considered down: checkouts fail fast until the backoff ends.
    Open,
    /// The backoff ended and one probe is under way.
    Probing,
}

/// A snapshot for metrics and the admin endpoint.
#[derive(Debug, Clone)]
pub struct HealthStatus {
    pub state: BreakerState,
    /// Connect failures in a row (0 once a connect succeeds).
    pub consecutive_failures: u32,
    /// Times the breaker opened since start.
    pub opened_total: u64,
    /// The last connect or check error, if the last outcome was a failure.
    pub last_error: Option<String>,
    /// When the last health check or probe finished, and how long it took.
    pub last_check: Option<(Instant, Duration)>,
}

impl HealthStatus {
    /// True when checkouts may reach the server.
    pub fn is_up(&self) -> bool {
        self.state == BreakerState::Closed
    }
}

/// What a caller may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead as usual.
    Normal,
    /// Go ahead, and this attempt is the probe: it must open a new connection and report the outcome.
    Probe,
    /// Fail fast: the breaker is open for this much longer.
    Refuse {
        retry_in: Duration,
        last_error: String,
    },
}

#[derive(Debug)]
struct State {
    consecutive_failures: u32,
    /// Failed probes since the breaker opened: the exponent of the backoff.
    failed_probes: u32,
    open_until: Option<Instant>,
    probing: bool,
    opened_total: u64,
    last_error: Option<String>,
    last_check: Option<(Instant, Duration)>,
    /// When the next periodic check of a healthy server is due.
    next_check: Instant,
}

/// One server's breaker and check results. Shared (`Arc`) by the pools of every shard on that server, across
/// worker threads; every method takes the lock briefly and never across an await.
#[derive(Debug)]
pub struct Health {
    config: HealthConfig,
    state: Mutex<State>,
    /// True while the breaker is open (or probing): every checkout reads it, so the closed case takes no lock
    /// that the other workers' checkouts would contend for.
    open: AtomicBool,
    jitter: RandomState,
}

impl Health {
    pub fn new(config: HealthConfig) -> Self {
        Health {
            config,
            state: Mutex::new(State {
                consecutive_failures: 0,
                failed_probes: 0,
                open_until: None,
                probing: false,
                opened_total: 0,
                last_error: None,
                last_check: None,
                next_check: Instant::now(),
            }),
            open: AtomicBool::new(false),
            jitter: RandomState::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a checkout may try the server now.
    pub(crate) fn admit(&self) -> Admit {
        if !self.open.load(Ordering::Acquire) {
            return Admit::Normal;
        }
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Admit {
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Admit::Normal;
        };
        if now >= until && !s.probing {
            s.probing = true;
            return Admit::Probe;
        }
        Admit::Refuse {
            retry_in: until.saturating_duration_since(now),
            last_error: s.last_error.clone().unwrap_or_default(),
        }
    }

    /// Whether the periodic check is due, claiming it if so (one caller per interval, or the probe when open).
    pub(crate) fn claim_check(&self, now: Instant) -> Option<Admit> {
        let mut s = self.lock();
        if s.open_until.is_none() {
            if now < s.next_check {
                return None;
            }
            s.next_check = now + self.config.check_interval;
            return Some(Admit::Normal);
        }
        drop(s);
        match self.admit_at(now) {
            Admit::Probe => Some(Admit::Probe),
            _ => None,
        }
    }

    /// A connect or check succeeded: the breaker closes.
    pub(crate) fn record_success(&self, started: Instant, checked: bool) {
        let now = Instant::now();
        let mut s = self.lock();
        s.consecutive_failures = 0;
        s.failed_probes = 0;
        s.open_until = None;
        self.open.store(false, Ordering::Release);
        s.probing = false;
        s.last_error = None;
        if checked {
            s.last_check = Some((now, now.saturating_duration_since(started)));
        }
    }

    /// A connect or check failed (`probe`: it was the probe of an open breaker).
    pub(crate) fn record_failure(&self, started: Instant, error: String, probe: bool) {
        let now = Instant::now();
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.last_error = Some(error);
        s.last_check = Some((now, now.saturating_duration_since(started)));
        if probe {
            s.probing = false;
            s.failed_probes = s.failed_probes.saturating_add(1);
            s.open_until = Some(now + self.backoff(s.failed_probes));
        } else if s.open_until.is_none() && s.consecutive_failures >= self.config.failure_threshold
        {
            s.opened_total += 1;
            s.open_until = Some(now + self.backoff(0));
            self.open.store(true, Ordering::Release);
        }
    }

    /// A probe that ended without an outcome (its caller went away): let another caller probe.
    pub(crate) fn abandon_probe(&self) {
        self.lock().probing = false;
    }

    /// `base · 2^n`, at most `max_backoff`, then between half and all of it, at random.
    fn backoff(&self, n: u32) -> Duration {
        let full = self
            .config
            .base_backoff
            .saturating_mul(1u32 << n.min(20))
            .min(self.config.max_backoff);
        let half = full / 2;
        let random = self.jitter.hash_one(Instant::now()) % 1_000_000;
        half + half.mul_f64(random as f64 / 1_000_000.0)
    }

    pub fn status(&self) -> HealthStatus {
        let s = self.lock();
        let state = match (s.open_until, s.probing) {
            (None, _) => BreakerState::Closed,
            (Some(_), true) => BreakerState::Probing,
            (Some(_), false) => BreakerState::Open,
        };
        HealthStatus {
            state,
            consecutive_failures: s.consecutive_failures,
            opened_total: s.opened_total,
            last_error: s.last_error.clone(),
            last_check: s.last_check,
        }
    }
}
