//! A checked-out connection and how it goes back.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::{Idle, Inner, Manager};

/// A checked-out connection. Call [`Pooled::release`] to return it; dropping it closes it.
pub struct Pooled<M: Manager> {
    pub(crate) conn: Option<M::Conn>,
    pub(crate) key: M::Key,
    pub(crate) opened: Instant,
    pub(crate) pool: Arc<Inner<M>>,
    pub(crate) _permit: OwnedSemaphorePermit,
    pub(crate) reused: bool,
}

impl<M: Manager> Pooled<M> {
    /// True when this connection served an earlier checkout (a failure on it may be a stale socket, not the
    /// statement's fault, and the statement may be retried on a fresh connection).
    pub fn was_reused(&self) -> bool {
        self.reused
    }

    /// The manager of the pool this connection came from.
    pub fn manager(&self) -> &M {
        &self.pool.manager
    }

    /// Returns the connection to the pool for reuse. Only call this when it is idle and clean. A connection past
    /// its lifetime, or returning to a closed pool, is closed instead.
    pub fn release(mut self) {
        let now = Instant::now();
        let too_old = self
            .pool
            .config
            .max_lifetime
            .is_some_and(|l| now - self.opened >= l);
        if let Some(conn) = self.conn.take()
            && !self.pool.permits.is_closed()
        {
            if too_old {
                self.pool.counters.expired.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let (key, opened) = (self.key, self.opened);
            self.pool.lock_idle().push(Idle {
                conn,
                key,
                opened,
                since: now,
            });
        }
    }

    /// Resets the connection to a fresh one's state (its session state would otherwise leak to the next user),
    /// then returns it; closes it if the reset fails.
    pub async fn reset_and_release(mut self) {
        let pool = Arc::clone(&self.pool);
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        // Bounded like a health check: a stalled server must not hold up whoever returns the connection.
        let reset = tokio::time::timeout(pool.config.check_timeout, pool.manager.reset(conn)).await;
        if matches!(reset, Ok(Ok(()))) {
            self.release();
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
