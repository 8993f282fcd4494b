//! Pool housekeeping: idle and lifetime limits, `min_idle`, and the server's health check or breaker probe.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use crate::health::Admit;
use crate::{Idle, Manager, Pool, ProbeClaim};

impl<M: Manager> Pool<M> {
    /// Housekeeping, called every second or so by whoever owns the pool: closes idle connections past their idle
    /// timeout (keeping `min_idle`) or lifetime, runs the server's health check or breaker probe when it is this
    /// pool's turn, and opens connections up to `min_idle`.
    pub async fn maintain(&self) {
        let inner = &*self.inner;
        let now = Instant::now();
        {
            let mut idle = inner.lock_idle();
            let mut keep = inner.config.min_idle;
            // Newest last: walk from the newest so the ones kept for min_idle are the freshest.
            let before = idle.len();
            let mut kept: Vec<Idle<M::Conn, M::Key>> = Vec::with_capacity(before);
            while let Some(i) = idle.pop() {
                let too_old = inner
                    .config
                    .max_lifetime
                    .is_some_and(|l| now - i.opened >= l);
                let idle_long = inner
                    .config
                    .idle_timeout
                    .is_some_and(|t| now - i.since >= t);
                if too_old || (idle_long && keep == 0) {
                    continue;
                }
                keep = keep.saturating_sub(1);
                kept.push(i);
            }
            kept.reverse();
            let closed = before - kept.len();
            *idle = kept;
            inner
                .counters
                .expired
                .fetch_add(closed as u64, Ordering::Relaxed);
        }
        if let Some(admit) = inner.health.claim_check(now) {
            self.check(admit == Admit::Probe).await;
        }
        while inner.health.status().is_up()
            && inner.lock_idle().len() + inner.in_use.load(Ordering::Relaxed)
                < inner.config.min_idle
        {
            let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
                break;
            };
            let key = M::Key::default();
            match self.open(key, false).await {
                Ok(conn) => self
                    .checked_out(conn, key, Instant::now(), permit, false)
                    .release(),
                Err(_) => break,
            }
        }
    }

    /// One health check: ping an idle connection (or a new one; always a new one for a probe).
    async fn check(&self, probe: bool) {
        let inner = &*self.inner;
        let mut claim = ProbeClaim {
            health: &inner.health,
            armed: probe,
        };
        // A pool with every connection busy is evidently talking to its server; the next interval checks again.
        let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
            return;
        };
        let started = Instant::now();
        let idle = if probe {
            None
        } else {
            self.pop_idle(None, started)
        };
        let reused = idle.is_some();
        let (conn, key, opened) = match idle {
            Some(i) => (Ok(i.conn), i.key, i.opened),
            None => {
                self.make_room();
                let key = M::Key::default();
                let opened =
                    tokio::time::timeout(inner.config.check_timeout, self.open(key, probe)).await;
                claim.armed = false;
                match opened {
                    Ok(c) => (c, key, Instant::now()),
                    Err(_) => {
                        let msg =
                            format!("connect timed out after {:?}", inner.config.check_timeout);
                        inner.health.record_failure(started, msg, probe);
                        return;
                    }
                }
            }
        };
        let Ok(conn) = conn else { return };
        let mut pooled = self.checked_out(conn, key, opened, permit, true);
        let ping =
            tokio::time::timeout(inner.config.check_timeout, inner.manager.check(&mut pooled))
                .await;
        match ping {
            Ok(Ok(())) => {
                inner.health.record_success(started, true);
                pooled.release();
            }
            Ok(Err(_)) if reused => {
                // A stale idle socket (the server restarted, or closed it for idleness) says nothing about the
                // server now: a fresh connection does, and counts.
                drop(pooled);
                let Ok(permit) = inner.permits.clone().try_acquire_owned() else {
                    return;
                };
                let key = M::Key::default();
                let fresh =
                    tokio::time::timeout(inner.config.check_timeout, self.open(key, false)).await;
                match fresh {
                    Ok(Ok(conn)) => {
                        inner.health.record_success(started, true);
                        self.checked_out(conn, key, Instant::now(), permit, false)
                            .release();
                    }
                    // `open` counted the failure.
                    Ok(Err(_)) => {}
                    Err(_) => {
                        let msg =
                            format!("connect timed out after {:?}", inner.config.check_timeout);
                        inner.health.record_failure(started, msg, false);
                    }
                }
            }
            Ok(Err(e)) => inner.health.record_failure(started, e.to_string(), false),
            Err(_) => {
                let msg = format!("ping timed out after {:?}", inner.config.check_timeout);
                inner.health.record_failure(started, msg, false);
            }
        }
    }
}
