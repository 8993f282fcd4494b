//! The proxy's own configuration file: listeners, users, backend credentials, pool sizes, where the topology is.
//!
//! One YAML file, every section `deny_unknown_fields`, defaults in one place ([`Defaults`]), and [`Config::validate`]
//! reports every problem at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod pool;
pub use pool::PoolSettings;

/// How long a statement killed for its timeout gets to end (with the server's ERR 1317) before the proxy gives up on
/// its connection: a server that does not answer a KILL is hung.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// Defaults for every optional setting, in one place.
struct Defaults;

impl Defaults {
    const LISTEN: &'static str = "127.0.0.1:15306";
    /// MariaDB-style version: the `5.5.5-` prefix tells old MySQL clients they face a MariaDB server.
    const SERVER_VERSION: &'static str = "5.5.5-10.11.6-MariaDB-shardgate";
    /// MariaDB's own default: a larger client packet would pass the proxy and be refused by the backend.
    const MAX_ALLOWED_PACKET: usize = 16 << 20;
    /// MySQL's net_write_timeout.
    const CLIENT_WRITE_TIMEOUT_MS: u64 = 60_000;
    /// MySQL's connect_timeout.
    const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
    const POOL_MAX_SIZE: usize = 16;
    const ACQUIRE_TIMEOUT_MS: u64 = 5_000;
    const CONNECT_TIMEOUT_MS: u64 = 3_000;
    /// HikariCP's defaults: idle connections go after 10 minutes, every connection after 30.
    const IDLE_TIMEOUT_MS: u64 = 600_000;
    const MAX_LIFETIME_MS: u64 = 1_800_000;
    const MAX_WAITERS: usize = 1_000;
    const HEALTH_CHECK_INTERVAL_MS: u64 = 2_000;
    const BREAKER_FAILURES: u32 = 3;
    const BREAKER_BACKOFF_MS: u64 = 200;
    const BREAKER_MAX_BACKOFF_MS: u64 = 10_000;
    const MAX_CLIENT_CONNECTIONS: usize = 10_000;
    /// MySQL's wait_timeout.
    const CLIENT_IDLE_TIMEOUT_MS: u64 = 28_800_000;
    const DRAIN_TIMEOUT_MS: u64 = 30_000;
    const HOLD_MAX_MS: u64 = 10_000;
    const ADMIN_LISTEN: &'static str = "127.0.0.1:15001";
    /// MySQL's long_query_time is 10 s; a proxy in front of OLTP traffic wants to hear about 1 s.
    const SLOW_QUERY_LOG_MS: u64 = 1_000;
    const PLAN_CACHE_SIZE: usize = 10_000;
    const SCATTER_FANOUT: usize = 32;
    const SCATTER_MAX_ROWS: usize = 100_000;
}

/// The whole proxy configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the MySQL-protocol listener; port 0 picks a free one.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Version string sent in the handshake.
    #[serde(default = "default_server_version")]
    pub server_version: String,
    /// Largest client packet accepted, in bytes (like MySQL's max_allowed_packet).
    #[serde(default = "default_max_allowed_packet")]
    pub max_allowed_packet: usize,
    /// Longest a write of reply bytes to a client may block; past it the client is disconnected, so a client that
    /// stops reading cannot hold a backend connection.
    #[serde(default = "default_client_write_timeout_ms")]
    pub client_write_timeout_ms: u64,
    /// Longest the connection phase (greeting to OK) may take.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// Most client connections at once; one more is answered with ERR 1040 and closed.
    #[serde(default = "default_max_client_connections")]
    pub max_client_connections: usize,
    /// A client that sends nothing for this long is disconnected (MySQL's wait_timeout; its open transaction
    /// rolls back).
    #[serde(default = "default_client_idle_timeout_ms")]
    pub client_idle_timeout_ms: u64,
    /// Longest a statement may run on a shard before the proxy kills it (KILL QUERY on a side connection) and
    /// answers ERR 1969; 0 means no limit.
    #[serde(default)]
    pub statement_timeout_ms: u64,
    /// On SIGTERM or SIGINT: how long running statements and open transactions get to finish.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Longest a statement waits while a resharding cutover holds its keys, should the workflow's controller die
    /// mid-cutover; the controller itself ends a hold after its own `--hold-ms` (2 s by default).
    #[serde(default = "default_hold_max_ms")]
    pub hold_max_ms: u64,
    /// Statements taking at least this long are logged (target `shardgate::slow_query`) with their duration, shard
    /// and fingerprint; 0 turns the log off.
    #[serde(default = "default_slow_query_log_ms")]
    pub slow_query_log_ms: u64,
    /// The slow-query log shows statements as sent, literal values included, instead of their fingerprint.
    #[serde(default)]
    pub slow_query_log_values: bool,
    /// Address of the admin HTTP endpoint (/healthz, /readyz, /metrics); empty turns it off.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Auth plugin offered in the handshake: mysql_native_password or caching_sha2_password.
    #[serde(default = "default_auth_plugin")]
    pub auth_plugin: String,
    /// Accounts clients log in with.
    pub users: Vec<User>,
    /// The account the proxy logs in to every backend with.
    pub backend: BackendAuth,
    /// Per-shard pool sizing.
    #[serde(default)]
    pub pool: PoolSettings,
    /// Where the topology comes from.
    pub topology: TopologySource,
    /// Worker threads, each running its own sessions and its own share of every shard's pool; 0 means one per
    /// CPU.
    #[serde(default)]
    pub workers: usize,
    /// Statement shapes whose analysis is cached.
    #[serde(default = "default_plan_cache_size")]
    pub plan_cache_size: usize,
    /// What a transaction that touches a second shard does (ADR 11).
    #[serde(default)]
    pub transaction_mode: TransactionMode,
    /// Where `transaction_mode: twopc` keeps its decision log (relative to the config file's folder).
    #[serde(default = "default_twopc_log")]
    pub twopc_log: PathBuf,
    /// Let UPDATE and DELETE without a tenant key run on every shard (refused when false, the default).
    #[serde(default)]
    pub allow_scatter_writes: bool,
    /// Shards a scattered statement runs on at once (the connections it holds at a time).
    #[serde(default = "default_scatter_fanout")]
    pub scatter_fanout: usize,
    /// Most rows the shards may return, in all, for one scattered SELECT: the proxy buffers them to merge.
    #[serde(default = "default_scatter_max_rows")]
    pub scatter_max_rows: usize,
}

/// How transactions spanning shards commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionMode {
    /// A transaction stays on one shard; a statement for a second shard is refused.
    Single,
    /// Best-effort: COMMIT goes to each shard in turn; if one fails, the shards not yet committed roll back.
    #[default]
    Multi,
    /// Two-phase commit: XA on the shards and a durable decision log (`twopc_log`), so that a crash between
    /// PREPARE and COMMIT is resolved at the next start.
    Twopc,
}

/// A client account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// Backend credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendAuth {
    pub user: String,
    #[serde(default)]
    pub password: String,
}

/// Milliseconds as a limit: 0 means none.
fn limit(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// The topology source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySource {
    /// Topology YAML; a relative path is relative to the config file's folder. With `etcd`, the proxy keeps its
    /// copy of etcd's topology here (and seeds an empty etcd key from it).
    pub file: PathBuf,
    /// Follow a topology kept in etcd (every proxy of a fleet watching one key) instead of the file alone.
    #[serde(default)]
    pub etcd: Option<EtcdSource>,
}

/// Where in etcd the fleet's topology and the proxies' acknowledgements live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdSource {
    /// Client endpoints, `host:port` (tried in order).
    pub endpoints: Vec<String>,
    /// The key holding the topology YAML.
    #[serde(default = "default_etcd_key")]
    pub key: String,
    /// Each proxy writes the version it serves under this prefix plus its id, on a lease.
    #[serde(default = "default_etcd_acks_prefix")]
    pub acks_prefix: String,
    /// This proxy's id under `acks_prefix` (default: host name and process id).
    #[serde(default)]
    pub proxy_id: Option<String>,
}

impl EtcdSource {
    pub fn proxy_id(&self) -> String {
        self.proxy_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }
}

fn default_etcd_key() -> String {
    "/shardgate/topology".to_string()
}
fn default_etcd_acks_prefix() -> String {
    "/shardgate/proxies/".to_string()
}

fn default_listen() -> String {
    Defaults::LISTEN.to_string()
}
fn default_server_version() -> String {
    Defaults::SERVER_VERSION.to_string()
}
fn default_max_allowed_packet() -> usize {
    Defaults::MAX_ALLOWED_PACKET
}
fn default_client_write_timeout_ms() -> u64 {
    Defaults::CLIENT_WRITE_TIMEOUT_MS
}
fn default_handshake_timeout_ms() -> u64 {
    Defaults::HANDSHAKE_TIMEOUT_MS
}
fn default_auth_plugin() -> String {
    shardgate_wire::auth::MYSQL_NATIVE_PASSWORD.to_string()
}
fn default_max_client_connections() -> usize {
    Defaults::MAX_CLIENT_CONNECTIONS
}
fn default_client_idle_timeout_ms() -> u64 {
    Defaults::CLIENT_IDLE_TIMEOUT_MS
}
fn default_drain_timeout_ms() -> u64 {
    Defaults::DRAIN_TIMEOUT_MS
}
fn default_hold_max_ms() -> u64 {
    Defaults::HOLD_MAX_MS
}
fn default_slow_query_log_ms() -> u64 {
    Defaults::SLOW_QUERY_LOG_MS
}
fn default_admin_listen() -> String {
    Defaults::ADMIN_LISTEN.to_string()
}
fn default_twopc_log() -> PathBuf {
    PathBuf::from("shardgate-2pc.log")
}

fn default_scatter_fanout() -> usize {
    Defaults::SCATTER_FANOUT
}

fn default_scatter_max_rows() -> usize {
    Defaults::SCATTER_MAX_ROWS
}

fn default_plan_cache_size() -> usize {
    Defaults::PLAN_CACHE_SIZE
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: invalid configuration:\n  {}", problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl Config {
    /// See `client_write_timeout_ms`.
    pub fn client_write_timeout(&self) -> Duration {
        Duration::from_millis(self.client_write_timeout_ms)
    }

    /// The advertised version as MySQL numbers it in executable comments (`10.11.6` is 101106), read from
    /// `server_version` after MariaDB's `5.5.5-` prefix; 0 if it has no `major.minor.patch`.
    pub fn server_version_number(&self) -> u32 {
        let v = self
            .server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&self.server_version);
        let mut parts = v
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().ok());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Some(a)), Some(Some(b)), Some(Some(c))) => a * 10_000 + b * 100 + c,
            _ => 0,
        }
    }

    /// See `handshake_timeout_ms`.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// See `client_idle_timeout_ms` (0: none).
    pub fn client_idle_timeout(&self) -> Option<Duration> {
        limit(self.client_idle_timeout_ms)
    }

    /// See `slow_query_log_ms` (0: off).
    pub fn slow_query_log(&self) -> Option<Duration> {
        limit(self.slow_query_log_ms)
    }

    /// See `statement_timeout_ms` (0: none).
    pub fn statement_timeout(&self) -> Option<Duration> {
        limit(self.statement_timeout_ms)
    }

    /// How long the proxy waits for a backend's reply to a statement it runs for itself: the statement timeout plus
    /// the time a KILL gets, when there is a statement timeout.
    pub fn reply_timeout(&self) -> Option<Duration> {
        self.statement_timeout().map(|t| t + KILL_GRACE)
    }

    /// See `drain_timeout_ms`.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// See `hold_max_ms`.
    pub fn hold_max(&self) -> Duration {
        Duration::from_millis(self.hold_max_ms)
    }

    /// The pool settings of shard `name` for one of `workers` workers: each worker gets an even share of the
    /// shard's maxima (rounded up), so the shard sees at most about `max_size` connections.
    pub fn pool_config(&self, name: &str, workers: usize) -> shardgate_pool::PoolConfig {
        let workers = workers.max(1);
        let (max_size, min_idle) = self.pool.sizes_of(name);
        shardgate_pool::PoolConfig {
            max_size: max_size.div_ceil(workers),
            min_idle: min_idle.div_ceil(workers),
            acquire_timeout: self.pool.acquire_timeout(),
            max_waiters: self.pool.max_waiters.div_ceil(workers),
            idle_timeout: limit(self.pool.idle_timeout_ms),
            max_lifetime: limit(self.pool.max_lifetime_ms),
            check_timeout: self.pool.connect_timeout(),
        }
    }

    /// Worker threads to run: `workers`, or one per CPU when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }

    /// Reads, parses and validates a config file; the topology path is resolved against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config =
            serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if config.topology.file.is_relative() {
            config.topology.file = dir.join(&config.topology.file);
        }
        if config.twopc_log.is_relative() {
            config.twopc_log = dir.join(&config.twopc_log);
        }
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            });
        }
        Ok(config)
    }

    /// Every problem with the settings (empty when they are usable).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("listen: {:?} is not an address:port", self.listen));
        }
        if self.users.is_empty() {
            p.push("users: at least one user is needed".to_string());
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() {
                p.push(format!("users[{i}].name: empty"));
            }
            if self.users[..i].iter().any(|o| o.name == u.name) {
                p.push(format!("users[{i}].name: duplicate user {:?}", u.name));
            }
        }
        let plugins = [
            shardgate_wire::auth::MYSQL_NATIVE_PASSWORD,
            shardgate_wire::auth::CACHING_SHA2_PASSWORD,
        ];
        if !plugins.contains(&self.auth_plugin.as_str()) {
            p.push(format!(
                "auth_plugin: {:?} is not one of {plugins:?}",
                self.auth_plugin
            ));
        }
        if self.pool.max_size == 0 {
            p.push("pool.max_size: must be at least 1".to_string());
        }
        for (name, o) in &self.pool.shards {
            let (max_size, min_idle) = self.pool.sizes_of(name);
            if o.max_size == Some(0) {
                p.push(format!("pool.shards.{name}.max_size: must be at least 1"));
            }
            if min_idle > max_size {
                p.push(format!(
                    "pool.shards.{name}: min_idle {min_idle} is more than max_size {max_size}"
                ));
            }
        }
        if self.pool.min_idle > self.pool.max_size {
            p.push("pool.min_idle: must not be more than pool.max_size".to_string());
        }
        if self.pool.max_waiters == 0 {
            p.push("pool.max_waiters: must be at least 1".to_string());
        }
        if self.pool.breaker_failures == 0 {
            p.push("pool.breaker_failures: must be at least 1".to_string());
        }
        if self.pool.health_check_interval_ms == 0 {
            p.push("pool.health_check_interval_ms: must be at least 1".to_string());
        }
        if let Some(etcd) = &self.topology.etcd
            && etcd.endpoints.is_empty()
        {
            p.push("topology.etcd.endpoints: at least one is needed".to_string());
        }
        if self.max_client_connections == 0 {
            p.push("max_client_connections: must be at least 1".to_string());
        }
        if !self.admin_listen.is_empty()
            && self.admin_listen.parse::<std::net::SocketAddr>().is_err()
        {
            p.push(format!(
                "admin_listen: {:?} is not an address:port (or empty to turn it off)",
                self.admin_listen
            ));
        }
        if self.scatter_fanout == 0 {
            p.push("scatter_fanout: must be at least 1".to_string());
        }
        if self.scatter_max_rows == 0 {
            p.push("scatter_max_rows: must be at least 1".to_string());
        }
        if self.max_allowed_packet < 1024 {
            p.push("max_allowed_packet: must be at least 1024".to_string());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let c: Config = serde_yaml_ng::from_str(
            "users: [{name: app, password: app}]\nbackend: {user: root}\ntopology: {file: t.yaml}\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:15306");
        assert_eq!(c.pool.max_size, 16);
        assert_eq!(c.max_allowed_packet, 16 << 20);
        assert_eq!(c.client_write_timeout_ms, 60_000);
        assert_eq!(c.transaction_mode, TransactionMode::Multi);
        assert!(!c.allow_scatter_writes);
        assert_eq!(c.server_version_number(), 101106);
        assert_eq!(c.max_client_connections, 10_000);
        assert_eq!(c.statement_timeout(), None);
        assert_eq!(c.admin_listen, "127.0.0.1:15001");
        assert!(c.validate().is_empty());
    }

    #[test]
    fn transaction_modes_are_the_three_documented_ones() {
        for (mode, want) in [
            ("single", TransactionMode::Single),
            ("multi", TransactionMode::Multi),
            ("twopc", TransactionMode::Twopc),
        ] {
            let c: Config = serde_yaml_ng::from_str(&format!(
                "users: []\nbackend: {{user: root}}\ntopology: {{file: t}}\ntransaction_mode: {mode}\n"
            ))
            .unwrap();
            assert_eq!(c.transaction_mode, want);
        }
        let r: Result<Config, _> = serde_yaml_ng::from_str(
            "users: []\nbackend: {user: root}\ntopology: {file: t}\ntransaction_mode: xa\n",
        );
        assert!(r.is_err());
    }

    #[test]
    fn shard_overrides_change_only_their_shard_and_are_split_between_workers() {
        let c: Config = serde_yaml_ng::from_str(
            "users: [{name: a, password: x}]\nbackend: {user: root}\ntopology: {file: t}\n\
             pool: {max_size: 8, min_idle: 2, shards: {'-80': {max_size: 32}}}\n",
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let hot = c.pool_config("-80", 2);
        let other = c.pool_config("80-", 2);
        assert_eq!((hot.max_size, hot.min_idle), (16, 1));
        assert_eq!((other.max_size, other.min_idle), (4, 1));
        let bad: Config = serde_yaml_ng::from_str(
            "users: [{name: a, password: x}]\nbackend: {user: root}\ntopology: {file: t}\n\
             pool: {max_size: 8, shards: {'-80': {max_size: 0}, '80-': {min_idle: 9}}}\n",
        )
        .unwrap();
        let p = bad.validate().join("\n");
        assert!(p.contains("pool.shards.-80.max_size"), "{p}");
        assert!(p.contains("min_idle 9 is more than max_size 8"), "{p}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<Config, _> = serde_yaml_ng::from_str(
            "users: []\nbackend: {user: root}\ntopology: {file: t}\nlisten_port: 3306\n",
        );
        assert!(r.unwrap_err().to_string().contains("listen_port"));
    }

    #[test]
    fn validate_lists_every_problem() {
        let c: Config = serde_yaml_ng::from_str(
            "listen: nowhere\nusers: [{name: a, password: x}, {name: a, password: y}]\nbackend: {user: root}\n\
             topology: {file: t}\npool: {max_size: 0}\nauth_plugin: dialog\n",
        )
        .unwrap();
        let p = c.validate().join("\n");
        for needle in ["listen", "duplicate user", "auth_plugin", "pool.max_size"] {
            assert!(p.contains(needle), "{needle} missing from {p}");
        }
    }
}
