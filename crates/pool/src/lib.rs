//! Bounded pools of backend connections: one pool per shard in the proxy.
//!
//! Sits between routing and the backend on the data path. Connections carry a key (an attribute fixed when they
//! are opened, which a checkout must match); a pool keeps at most `max_size` connections open whatever their keys,
//! closing an idle one of another key to make room. It hands out at most `max_size` at a time, lets at most `max_waiters` callers queue for one, each for at most `acquire_timeout`, and reuses idle ones
//! (newest first) before opening new ones. Idle connections past `idle_timeout` and any past `max_lifetime` are
//! closed rather than reused. A [`Health`] shared by every pool of one server carries its circuit breaker and
//! health checks ([`Pool::maintain`]). The pool knows nothing of SQL or of what a connection is: the [`Manager`]
//! opens, checks and resets them.
//!
//! A checkout ([`Pooled`]) goes back to the pool only through [`Pooled::release`] (or
//! [`Pooled::reset_and_release`] when its session state must go). Dropping it closes the connection instead: if a
//! statement is cancelled half-way through a reply, the connection's state is unknown and must not serve anyone
//! else.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod health;
mod maintain;
mod pooled;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use health::Admit;
pub use health::{BreakerState, Health, HealthConfig, HealthStatus};
pub use pooled::Pooled;

/// Opens, checks and resets connections for a pool.
pub trait Manager: Send + Sync + 'static {
    /// The pooled connection.
    type Conn: Send + 'static;
    /// Why a connection could not be opened or failed a check.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What a connection is opened with and a checkout must match; the default key is what the pool opens ahead
    /// of demand.
    type Key: Copy + Eq + Default + Send + Sync + 'static;
    /// Opens one connection (the manager bounds its own connect time).
    fn connect(
        &self,
        key: Self::Key,
    ) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;
    /// Checks that an idle connection still works (a ping).
    fn check(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Returns a connection to the state of a fresh one, or fails (and the connection is closed).
    fn reset(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Sizes and timeouts of one pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Most connections open at once (idle plus in use).
    pub max_size: usize,
    /// Connections kept open even when idle, opened ahead of demand by [`Pool::maintain`].
    pub min_idle: usize,
    /// Longest a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// Most callers waiting at once; past it a checkout fails at once.
    pub max_waiters: usize,
    /// An idle connection older than this (beyond `min_idle`) is closed.
    pub idle_timeout: Option<Duration>,
    /// A connection older than this is closed when it next comes back or is found idle.
    pub max_lifetime: Option<Duration>,
    /// Longest a health check may take.
    pub check_timeout: Duration,
}

impl PoolConfig {
    /// A pool of `max_size` connections with an acquire timeout and nothing else limited.
    pub fn new(max_size: usize, acquire_timeout: Duration) -> Self {
        PoolConfig {
            max_size,
            min_idle: 0,
            acquire_timeout,
            max_waiters: usize::MAX,
            idle_timeout: None,
            max_lifetime: None,
            check_timeout: Duration::from_secs(2),
        }
    }
}

/// Why no connection was handed out.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<E: std::error::Error + 'static> {
    /// Every connection stayed busy for the whole acquire timeout.
    #[error("no connection free after waiting {waited:?} ({max_size} in use)")]
    Timeout { waited: Duration, max_size: usize },
    /// Too many callers were already waiting.
    #[error("{waiters} statements already waiting for a connection ({max_size} in use)")]
    QueueFull { waiters: usize, max_size: usize },
    /// The server's circuit breaker is open: it failed recently and is not tried again yet.
    #[error("backend marked down (retry in {retry_in:?}): {last_error}")]
    Unavailable {
        retry_in: Duration,
        last_error: String,
    },
    /// Opening a new connection failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] E),
    /// The pool was closed.
    #[error("pool is closed")]
    Closed,
}

/// A snapshot of a pool's occupancy and counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    pub idle: usize,
    pub in_use: usize,
    pub waiting: usize,
    pub max_size: usize,
    /// Connections opened.
    pub opened: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// Checkouts that gave up waiting (timeout or full queue).
    pub acquire_timeouts: u64,
    /// Connections closed for age (idle timeout or max lifetime).
    pub expired: u64,
}

struct Idle<C, K> {
    conn: C,
    key: K,
    opened: Instant,
    since: Instant,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    connect_failures: AtomicU64,
    acquire_timeouts: AtomicU64,
    expired: AtomicU64,
}

struct Inner<M: Manager> {
    manager: M,
    config: PoolConfig,
    health: Arc<Health>,
    idle: Mutex<Vec<Idle<M::Conn, M::Key>>>,
    permits: Arc<Semaphore>,
    in_use: AtomicUsize,
    waiting: AtomicUsize,
    counters: Counters,
}

/// A bounded pool. Cloning shares the same pool.
pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Counts a caller as waiting for as long as it lives, cancelled or not.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Hands the probe of an open breaker back if its caller goes away before reporting an outcome.
struct ProbeClaim<'a> {
    health: &'a Health,
    armed: bool,
}

impl Drop for ProbeClaim<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.health.abandon_probe();
        }
    }
}

impl<M: Manager> Pool<M> {
    /// An empty pool with its own health; connections are opened on demand.
    pub fn new(manager: M, config: PoolConfig) -> Self {
        Self::with_health(
            manager,
            config,
            Arc::new(Health::new(HealthConfig::default())),
        )
    }

    /// An empty pool sharing `health` (one per backend server) with other pools.
    pub fn with_health(manager: M, config: PoolConfig, health: Arc<Health>) -> Self {
        let inner = Inner {
            manager,
            config,
            health,
            idle: Mutex::new(Vec::with_capacity(config.max_size.min(64))),
            permits: Arc::new(Semaphore::new(config.max_size)),
            in_use: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            counters: Counters::default(),
        };
        Pool {
            inner: Arc::new(inner),
        }
    }

    /// The manager that opens this pool's connections.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// The health of the server behind this pool.
    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    /// Checks out a connection with `key`: an idle one if any, else a new one, waiting at most the acquire timeout
    /// for room. Fails at once while the server's breaker is open.
    pub async fn get(&self, key: M::Key) -> Result<Pooled<M>, PoolError<M::Error>> {
        let health = &*self.inner.health;
        let probe = match health.admit() {
            Admit::Normal => false,
            Admit::Probe => true,
            Admit::Refuse {
                retry_in,
                last_error,
            } => {
                return Err(PoolError::Unavailable {
                    retry_in,
                    last_error,
                });
            }
        };
        let mut claim = ProbeClaim {
            health,
            armed: probe,
        };
        let permit = self.permit().await?;
        // A probe must show that the server accepts connections again: an idle one proves nothing.
        let idle = if probe {
            None
        } else {
            self.pop_idle(Some(key), Instant::now())
        };
        let (conn, opened, reused) = match idle {
            Some(i) => (i.conn, i.opened, true),
            None => {
                self.make_room();
                let conn = self.open(key, probe).await;
                claim.armed = false;
                (conn?, Instant::now(), false)
            }
        };
        Ok(self.checked_out(conn, key, opened, permit, reused))
    }

    /// Before opening a connection (holding a permit): if idle ones of other keys fill the pool, closes the oldest
    /// so the pool stays within `max_size` open connections.
    fn make_room(&self) {
        let inner = &*self.inner;
        let mut idle = inner.lock_idle();
        // The caller's permit is not counted in `in_use` yet: +1 for the connection about to open.
        if !idle.is_empty()
            && idle.len() + inner.in_use.load(Ordering::Relaxed) + 1 > inner.config.max_size
        {
            idle.remove(0);
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, PoolError<M::Error>> {
        let inner = &*self.inner;
        match inner.permits.clone().try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PoolError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {}
        }
        let waiters = inner.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&inner.waiting);
        if waiters >= inner.config.max_waiters {
            inner
                .counters
                .acquire_timeouts
                .fetch_add(1, Ordering::Relaxed);
            return Err(PoolError::QueueFull {
                waiters,
                max_size: inner.config.max_size,
            });
        }
        let timeout = inner.config.acquire_timeout;
        match tokio::time::timeout(timeout, inner.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(PoolError::Closed),
            Err(_) => {
                inner
                    .counters
                    .acquire_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                Err(PoolError::Timeout {
                    waited: timeout,
                    max_size: inner.config.max_size,
                })
            }
        }
    }

    /// Opens a connection and tells the server's health how it went.
    async fn open(&self, key: M::Key, probe: bool) -> Result<M::Conn, PoolError<M::Error>> {
        let started = Instant::now();
        match self.inner.manager.connect(key).await {
            Ok(c) => {
                self.inner.health.record_success(started, probe);
                self.inner.counters.opened.fetch_add(1, Ordering::Relaxed);
                Ok(c)
            }
            Err(e) => {
                self.inner
                    .health
                    .record_failure(started, e.to_string(), probe);
                self.inner
                    .counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                Err(PoolError::Connect(e))
            }
        }
    }

    fn checked_out(
        &self,
        conn: M::Conn,
        key: M::Key,
        opened: Instant,
        permit: OwnedSemaphorePermit,
        reused: bool,
    ) -> Pooled<M> {
        self.inner.in_use.fetch_add(1, Ordering::Relaxed);
        Pooled {
            conn: Some(conn),
            key,
            opened,
            pool: Arc::clone(&self.inner),
            _permit: permit,
            reused,
        }
    }

    /// The newest idle connection with `key` (any key for `None`) that is not too old; too old ones found on the
    /// way are closed.
    fn pop_idle(&self, key: Option<M::Key>, now: Instant) -> Option<Idle<M::Conn, M::Key>> {
        let mut idle = self.inner.lock_idle();
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            if key.is_some_and(|k| idle[i].key != k) {
                continue;
            }
            let found = idle.remove(i);
            if self.inner.expired(&found, now) {
                self.inner.counters.expired.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Some(found);
        }
        None
    }

    /// Occupancy right now, and the counters.
    pub fn status(&self) -> PoolStatus {
        let inner = &*self.inner;
        let c = &inner.counters;
        PoolStatus {
            idle: inner.lock_idle().len(),
            in_use: inner.in_use.load(Ordering::Relaxed),
            waiting: inner.waiting.load(Ordering::Relaxed),
            max_size: inner.config.max_size,
            opened: c.opened.load(Ordering::Relaxed),
            connect_failures: c.connect_failures.load(Ordering::Relaxed),
            acquire_timeouts: c.acquire_timeouts.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
        }
    }

    /// Closes every idle connection and refuses new checkouts; connections in use close when they come back.
    pub fn close(&self) {
        self.inner.permits.close();
        self.inner.lock_idle().clear();
    }
}

impl<M: Manager> Inner<M> {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<M::Conn, M::Key>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, i: &Idle<M::Conn, M::Key>, now: Instant) -> bool {
        self.config
            .max_lifetime
            .is_some_and(|l| now - i.opened >= l)
            || self.config.idle_timeout.is_some_and(|t| now - i.since >= t)
    }
}

#[cfg(test)]
mod tests;
