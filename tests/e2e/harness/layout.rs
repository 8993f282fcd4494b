//! The shard layout of a test cluster and the topology YAML describing it, written here rather than by `shardctl`
//! so that tests depend only on the proxy binary and on the topology file format.
//!
//! Shards are Vitess key ranges with two-hex-digit boundaries: for `n` shards (a power of two up to 256) shard `i`
//! covers `[i*256/n, (i+1)*256/n)` of the first keyspace-id byte, named `-02`, `02-04`, …, `fe-` when `n` is 128.
//! Shard `i` lives on backend `i*B/n` (contiguous blocks, as `shardctl topology generate` does), in database
//! `app_{i:03}`.

use std::fmt::Write as _;

/// The keyspace clients connect to (their database name).
pub const KEYSPACE: &str = "app";

/// Tables every test cluster's topology declares as reference tables (a full copy on every shard); every other
/// table is sharded by `tenant_id`.
pub const REFERENCE_TABLES: &[&str] = &["countries"];

/// Tables whose `id` comes from a sequence (sequence tables live in the first shard's database): `tickets` is
/// sharded by `tenant_id`, `counters` by that `id` itself, as sysbench's tables would be.
pub const SEQUENCED_TABLES: &[(&str, &str, &str)] = &[
    ("tickets", "tenant_id", "tickets_seq"),
    ("counters", "id", "counters_seq"),
];

/// One shard: its key-range name, where it lives, and in which database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Vitess key-range name, e.g. `"02-04"`.
    pub name: String,
    /// Index of the backend (MariaDB server) holding it.
    pub backend: usize,
    /// Database (schema) on that backend.
    pub database: String,
}

/// A tenant pinned to a named shard, overriding the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The tenant id.
    pub tenant: u64,
    /// The shard's key-range name.
    pub shard: String,
}

/// Shards for `n_shards` key ranges spread over `n_backends` servers in contiguous blocks.
pub fn shards(n_shards: usize, n_backends: usize) -> Vec<ShardSpec> {
    assert!(
        n_shards.is_power_of_two() && n_shards <= 256,
        "n_shards must be a power of two up to 256, got {n_shards}"
    );
    assert!(
        (1..=n_shards).contains(&n_backends),
        "need 1..=n_shards backends, got {n_backends}"
    );
    (0..n_shards)
        .map(|i| ShardSpec {
            name: range_name(i, n_shards),
            backend: i * n_backends / n_shards,
            database: format!("{KEYSPACE}_{i:03}"),
        })
        .collect()
}

/// Vitess name of shard `i` of `n`: start and end boundary as two hex digits, empty at the ends of the key space.
pub fn range_name(i: usize, n: usize) -> String {
    if n == 1 {
        return "-".to_owned();
    }
    let boundary = |k: usize| {
        if k == 0 || k == n {
            String::new()
        } else {
            format!("{:02x}", k * 256 / n)
        }
    };
    format!("{}-{}", boundary(i), boundary(i + 1))
}

/// Topology YAML for backends listening on `backend_ports` (named `db0`, `db1`, …).
pub fn topology_yaml(
    version: u64,
    backend_ports: &[u16],
    shards: &[ShardSpec],
    pins: &[Pin],
) -> String {
    let mut yaml = String::new();
    let _ = writeln!(yaml, "version: {version}");
    let _ = writeln!(yaml, "keyspace: {KEYSPACE}");
    let _ = writeln!(yaml, "sharding_column: tenant_id");
    let _ = writeln!(yaml, "tables:");
    for table in REFERENCE_TABLES {
        let _ = writeln!(yaml, "  - {{ name: {table}, type: reference }}");
    }
    for (table, sharding_column, sequence) in SEQUENCED_TABLES {
        let _ = writeln!(
            yaml,
            "  - {{ name: {table}, column: {sharding_column}, auto_increment: {{ column: id, sequence: {sequence} }} }}"
        );
    }
    let _ = writeln!(yaml, "backends:");
    for (i, port) in backend_ports.iter().enumerate() {
        let _ = writeln!(yaml, "  - {{ name: db{i}, host: 127.0.0.1, port: {port} }}");
    }
    let _ = writeln!(yaml, "shards:");
    for shard in shards {
        let _ = writeln!(
            yaml,
            "  - {{ name: \"{}\", backend: db{}, database: {} }}",
            shard.name, shard.backend, shard.database
        );
    }
    if pins.is_empty() {
        let _ = writeln!(yaml, "pins: []");
    } else {
        let _ = writeln!(yaml, "pins:");
        for pin in pins {
            let _ = writeln!(
                yaml,
                "  - {{ tenant: {}, shard: \"{}\" }}",
                pin.tenant, pin.shard
            );
        }
    }
    yaml
}

/// Settings of the proxy's own config file that tests vary.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// `max_allowed_packet` in bytes; `None` leaves the proxy's default.
    pub max_allowed_packet: Option<u64>,
    /// Backend connections per shard.
    pub pool_max_size: u32,
    /// `auth_plugin` the proxy offers in its greeting; `None` leaves the proxy's default.
    pub auth_plugin: Option<String>,
    /// `transaction_mode` (`single` or `multi`); `None` leaves the proxy's default.
    pub transaction_mode: Option<String>,
    /// `allow_scatter_writes`.
    pub allow_scatter_writes: bool,
    /// `pool.acquire_timeout_ms`.
    pub acquire_timeout_ms: u64,
    /// More top-level config lines (`statement_timeout_ms: 500`).
    pub extra: Vec<String>,
    /// More lines of the `pool` section (`min_idle: 1`).
    pub pool_extra: Vec<String>,
    /// More lines of the `topology` section (`etcd: {…}`).
    pub topology_extra: Vec<String>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            max_allowed_packet: None,
            pool_max_size: 8,
            auth_plugin: None,
            transaction_mode: None,
            allow_scatter_writes: false,
            acquire_timeout_ms: 5000,
            extra: Vec::new(),
            pool_extra: Vec::new(),
            topology_extra: Vec::new(),
        }
    }
}

/// The proxy's config file: port 0, user `app`/`app`, backends as passwordless `root`, topology file given
/// relative to the config file's folder.
pub fn proxy_config_yaml(settings: &ProxySettings, topology_file: &str) -> String {
    let mut yaml = String::new();
    let _ = writeln!(yaml, "listen: \"127.0.0.1:0\"");
    // Tests run many proxies at once: each takes a free admin port and announces it.
    let _ = writeln!(yaml, "admin_listen: \"127.0.0.1:0\"");
    for line in &settings.extra {
        let _ = writeln!(yaml, "{line}");
    }
    if let Some(bytes) = settings.max_allowed_packet {
        let _ = writeln!(yaml, "max_allowed_packet: {bytes}");
    }
    if let Some(plugin) = &settings.auth_plugin {
        let _ = writeln!(yaml, "auth_plugin: {plugin}");
    }
    if settings.allow_scatter_writes {
        let _ = writeln!(yaml, "allow_scatter_writes: true");
    }
    if let Some(mode) = &settings.transaction_mode {
        let _ = writeln!(yaml, "transaction_mode: {mode}");
    }
    let _ = writeln!(yaml, "users:");
    let _ = writeln!(yaml, "  - name: app");
    let _ = writeln!(yaml, "    password: app");
    let _ = writeln!(yaml, "backend:");
    let _ = writeln!(yaml, "  user: root");
    let _ = writeln!(yaml, "  password: \"\"");
    let _ = writeln!(yaml, "pool:");
    let _ = writeln!(yaml, "  max_size: {}", settings.pool_max_size);
    let _ = writeln!(
        yaml,
        "  acquire_timeout_ms: {}",
        settings.acquire_timeout_ms
    );
    let _ = writeln!(yaml, "  connect_timeout_ms: 3000");
    for line in &settings.pool_extra {
        let _ = writeln!(yaml, "  {line}");
    }
    let _ = writeln!(yaml, "topology:");
    let _ = writeln!(yaml, "  file: {topology_file}");
    for line in &settings.topology_extra {
        let _ = writeln!(yaml, "  {line}");
    }
    yaml
}

#[test]
fn shard_names_follow_vitess_for_128_shards() {
    let names: Vec<String> = shards(128, 2).into_iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 128);
    assert_eq!(names[0], "-02");
    assert_eq!(names[1], "02-04");
    assert_eq!(names[126], "fc-fe");
    assert_eq!(names[127], "fe-");
}

#[test]
fn shards_fill_backends_in_contiguous_blocks() {
    let layout = shards(128, 4);
    assert!(layout[..32].iter().all(|s| s.backend == 0));
    assert!(layout[96..].iter().all(|s| s.backend == 3));
    assert_eq!(layout[31].database, "app_031");
    assert_eq!(
        shards(4, 1)
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["-40", "40-80", "80-c0", "c0-"]
    );
}
