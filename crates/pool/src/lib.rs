//! Bounded pools of backend connections: one pool per shard in the proxy.
//!
//! Sits between routing and the backend on the data path. A pool hands out at most `max_size` connections at a
//! time, waits at most `acquire_timeout` for one, and reuses idle ones before opening new ones. It knows nothing of
//! SQL or of what a connection is: the [`Manager`] opens them.
//!
//! A checkout ([`Pooled`]) goes back to the pool only through [`Pooled::release`]. Dropping it closes the
//! connection instead: if a statement is cancelled half-way through a reply, the connection's state is unknown and
//! must not serve anyone else.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Opens connections for a pool.
pub trait Manager: Send + Sync + 'static {
    /// The pooled connection.
    type Conn: Send + 'static;
    /// Why a connection could not be opened.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Opens one connection (the manager bounds its own connect time).
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;
}

/// Sizes and timeouts of one pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Most connections open at once (idle plus in use).
    pub max_size: usize,
    /// Longest a caller waits for a free connection.
    pub acquire_timeout: Duration,
}

/// Why no connection was handed out.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<E: std::error::Error + 'static> {
    /// Every connection stayed busy for the whole acquire timeout.
    #[error("no connection free after waiting {waited:?} ({max_size} in use)")]
    Timeout { waited: Duration, max_size: usize },
    /// Opening a new connection failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] E),
    /// The pool was closed.
    #[error("pool is closed")]
    Closed,
}

/// A snapshot of a pool's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub idle: usize,
    pub in_use: usize,
    pub max_size: usize,
}

struct Inner<M: Manager> {
    manager: M,
    config: PoolConfig,
    idle: Mutex<Vec<M::Conn>>,
    permits: Arc<Semaphore>,
    in_use: AtomicUsize,
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

impl<M: Manager> Pool<M> {
    /// An empty pool; connections are opened on demand.
    pub fn new(manager: M, config: PoolConfig) -> Self {
        let inner = Inner {
            manager,
            config,
            idle: Mutex::new(Vec::with_capacity(config.max_size)),
            permits: Arc::new(Semaphore::new(config.max_size)),
            in_use: AtomicUsize::new(0),
        };
        Pool {
            inner: Arc::new(inner),
        }
    }

    /// The manager that opens this pool's connections.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Checks out a connection: an idle one if any, else a new one, waiting at most the acquire timeout for room.
    pub async fn get(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        let timeout = self.inner.config.acquire_timeout;
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PoolError::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                match tokio::time::timeout(timeout, self.inner.permits.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(PoolError::Closed),
                    Err(_) => {
                        return Err(PoolError::Timeout {
                            waited: timeout,
                            max_size: self.inner.config.max_size,
                        });
                    }
                }
            }
        };
        let reused = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let (conn, reused) = match reused {
            Some(c) => (c, true),
            None => (
                self.inner
                    .manager
                    .connect()
                    .await
                    .map_err(PoolError::Connect)?,
                false,
            ),
        };
        self.inner.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(Pooled {
            conn: Some(conn),
            pool: Arc::clone(&self.inner),
            _permit: permit,
            reused,
        })
    }

    /// Occupancy right now.
    pub fn status(&self) -> PoolStatus {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        PoolStatus {
            idle,
            in_use: self.inner.in_use.load(Ordering::Relaxed),
            max_size: self.inner.config.max_size,
        }
    }

    /// Closes every idle connection and refuses new checkouts; connections in use close when they come back.
    pub fn close(&self) {
        self.inner.permits.close();
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// A checked-out connection. Call [`Pooled::release`] to return it; dropping it closes it.
pub struct Pooled<M: Manager> {
    conn: Option<M::Conn>,
    pool: Arc<Inner<M>>,
    _permit: OwnedSemaphorePermit,
    reused: bool,
}

impl<M: Manager> Pooled<M> {
    /// True when this connection served an earlier checkout (a failure on it may be a stale socket, not the
    /// statement's fault, and the statement may be retried on a fresh connection).
    pub fn was_reused(&self) -> bool {
        self.reused
    }

    /// Returns the connection to the pool for reuse. Only call this when it is idle and clean.
    pub fn release(mut self) {
        if let Some(c) = self.conn.take()
            && !self.pool.permits.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(c);
        }
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        // `conn` is only taken in `release`, which consumes self: it is always present here.
        match &self.conn {
            Some(c) => c,
            None => unreachable!("a released checkout is consumed"),
        }
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("a released checkout is consumed"),
        }
    }
}

#[cfg(test)]
mod tests;
