//! The `pool` section: per-shard pool sizes and limits, health checks and the circuit breaker of each backend
//! server.

use std::time::Duration;

use serde::Deserialize;

use super::Defaults;

/// Per-shard pool settings, and the health checks and circuit breaker of each backend server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    /// Most backend connections per shard (all workers together).
    #[serde(default = "default_pool_max_size")]
    pub max_size: usize,
    /// Connections per shard kept open while idle.
    #[serde(default)]
    pub min_idle: usize,
    /// Longest a statement waits for a backend connection.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Statements per shard that may wait for a connection at once; past it they fail at once.
    #[serde(default = "default_max_waiters")]
    pub max_waiters: usize,
    /// Longest a backend connect and login may take.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// An idle connection beyond `min_idle` is closed after this long; 0 never.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A connection is closed once this old (when it is next idle); 0 never.
    #[serde(default = "default_max_lifetime_ms")]
    pub max_lifetime_ms: u64,
    /// How often each backend server is pinged.
    #[serde(default = "default_health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Connect failures in a row that mark a backend server down (the breaker opens).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// First wait before a down server is tried again; it doubles per failed try, with jitter.
    #[serde(default = "default_breaker_backoff_ms")]
    pub breaker_backoff_ms: u64,
    /// Longest wait between tries of a down server.
    #[serde(default = "default_breaker_max_backoff_ms")]
    pub breaker_max_backoff_ms: u64,
    /// Overrides by shard name (`max_size`, `min_idle`).
    #[serde(default)]
    pub shards: std::collections::BTreeMap<String, ShardPoolOverride>,
}

/// Pool sizes of one shard that differ from the `pool` defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardPoolOverride {
    pub max_size: Option<usize>,
    pub min_idle: Option<usize>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: Defaults::POOL_MAX_SIZE,
            min_idle: 0,
            acquire_timeout_ms: Defaults::ACQUIRE_TIMEOUT_MS,
            max_waiters: Defaults::MAX_WAITERS,
            connect_timeout_ms: Defaults::CONNECT_TIMEOUT_MS,
            idle_timeout_ms: Defaults::IDLE_TIMEOUT_MS,
            max_lifetime_ms: Defaults::MAX_LIFETIME_MS,
            health_check_interval_ms: Defaults::HEALTH_CHECK_INTERVAL_MS,
            breaker_failures: Defaults::BREAKER_FAILURES,
            breaker_backoff_ms: Defaults::BREAKER_BACKOFF_MS,
            breaker_max_backoff_ms: Defaults::BREAKER_MAX_BACKOFF_MS,
            shards: Default::default(),
        }
    }
}

impl PoolSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `max_size` and `min_idle` of shard `name`, overrides applied.
    pub fn sizes_of(&self, name: &str) -> (usize, usize) {
        let o = self.shards.get(name);
        (
            o.and_then(|o| o.max_size).unwrap_or(self.max_size),
            o.and_then(|o| o.min_idle).unwrap_or(self.min_idle),
        )
    }

    /// The breaker and health-check settings of every backend server.
    pub fn health(&self) -> shardgate_pool::HealthConfig {
        shardgate_pool::HealthConfig {
            failure_threshold: self.breaker_failures,
            base_backoff: Duration::from_millis(self.breaker_backoff_ms),
            max_backoff: Duration::from_millis(self.breaker_max_backoff_ms),
            check_interval: Duration::from_millis(self.health_check_interval_ms),
        }
    }
}

fn default_pool_max_size() -> usize {
    Defaults::POOL_MAX_SIZE
}
fn default_max_waiters() -> usize {
    Defaults::MAX_WAITERS
}
fn default_idle_timeout_ms() -> u64 {
    Defaults::IDLE_TIMEOUT_MS
}
fn default_max_lifetime_ms() -> u64 {
    Defaults::MAX_LIFETIME_MS
}
fn default_health_check_interval_ms() -> u64 {
    Defaults::HEALTH_CHECK_INTERVAL_MS
}
fn default_breaker_failures() -> u32 {
    Defaults::BREAKER_FAILURES
}
fn default_breaker_backoff_ms() -> u64 {
    Defaults::BREAKER_BACKOFF_MS
}
fn default_breaker_max_backoff_ms() -> u64 {
    Defaults::BREAKER_MAX_BACKOFF_MS
}
fn default_acquire_timeout_ms() -> u64 {
    Defaults::ACQUIRE_TIMEOUT_MS
}
fn default_connect_timeout_ms() -> u64 {
    Defaults::CONNECT_TIMEOUT_MS
}
