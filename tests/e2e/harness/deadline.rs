//! Deadlines for waiting on conditions: tests poll a condition with a short interval until a deadline, and never
//! sleep for a fixed time hoping something happened meanwhile.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to wait between two polls of a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A point in time after which waiting is a failure.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the wait gives up.
    at: Instant,
    /// The whole allowance, for error messages.
    allowance: Duration,
}

impl Deadline {
    /// A deadline `allowance` from now.
    pub fn after(allowance: Duration) -> Self {
        Self {
            at: Instant::now() + allowance,
            allowance,
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Time left before the deadline (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The whole allowance this deadline was created with.
    pub fn allowance(&self) -> Duration {
        self.allowance
    }

    /// Waits one poll interval (or less, if the deadline is nearer).
    pub async fn pause(&self) {
        tokio::time::sleep(POLL_INTERVAL.min(self.remaining())).await;
    }
}

/// How long one end-to-end test may run, see [`bounded`].
pub const TEST_ALLOWANCE: Duration = Duration::from_secs(180);

/// Runs `fut`, panicking with `what` if it does not finish within `allowance`: a proxy that stops answering must
/// fail the test, not hang CI. The future is still alive while the panic unwinds, so the servers and the proxy
/// it owns see a failing test when they drop (and print their logs).
pub async fn within<T>(allowance: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    match tokio::time::timeout(allowance, &mut fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {allowance:?}"),
    }
}

/// Polls `check` every 20 ms until it holds, panicking with `what` after `allowance`.
pub async fn eventually<F: Future<Output = bool>>(
    what: &str,
    allowance: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Deadline::after(allowance);
    while !check().await {
        assert!(!deadline.expired(), "{what}: not within {allowance:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a whole test body under [`TEST_ALLOWANCE`] (mysql_async has no read timeout of its own).
pub async fn bounded<T>(body: impl Future<Output = T>) -> T {
    within(TEST_ALLOWANCE, "the test", body).await
}
