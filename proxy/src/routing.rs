//! The routing table: one topology snapshot plus the backend pools of its shards, swapped as one value.
//!
//! A statement loads one [`Routing`] (one `ArcSwap` load) and keeps it until it finishes, so the shard it was
//! routed to and the pool it runs on always come from the same topology version. A reload builds the next one
//! with [`Routing::next`], which keeps the pools (and their open connections), health and statistics of every
//! shard that is still the same database on the same server; those of shards that went away close once the last
//! statement using the old snapshot is done with them.

use std::sync::Arc;

use shardgate_pool::{Health, Pool};
use shardgate_topology::{Shard, ShardId, Topology};

use crate::backend::{BackendTarget, ShardConnector};
use crate::config::Config;
use crate::stats::Histogram;

/// A shard's pool (one per worker). Its connections are keyed by CLIENT_FOUND_ROWS, which changes what UPDATE
/// reports, so a client only ever gets a connection opened with its own choice.
pub type ShardPool = Pool<ShardConnector>;

/// A topology snapshot and the pools of its shards, one set per worker thread (indexed by worker, then
/// [`ShardId`]). A session only uses its own worker's pools, so a backend connection is always driven by the
/// thread whose reactor it is registered with.
pub struct Routing {
    pub topology: Arc<Topology>,
    pools: Vec<Vec<ShardPool>>,
    /// The health (breaker, checks) of each backend server, indexed like `topology.backends()`; every pool of
    /// every shard on a server shares it, on every worker.
    health: Vec<Arc<Health>>,
    /// Backend time per shard, indexed like `topology.shards()`.
    backend_time: Vec<Arc<Histogram>>,
    /// This snapshot's own `Arc`, so that a transaction can keep the snapshot it started on from a `&Routing`.
    me: std::sync::Weak<Routing>,
}

/// What makes two shards of two topology versions the same: the same database on the same server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardIdentity {
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl Routing {
    /// Pools for every shard of `topology` and every worker; pool sizes are split evenly between workers
    /// (rounded up), so a shard sees at most about `max_size` connections. Connections open on first use, or
    /// ahead of it up to `min_idle`.
    pub fn new(topology: Arc<Topology>, config: &Config, workers: usize) -> Arc<Routing> {
        Self::build(topology, config, workers, None)
    }

    /// The routing for a new topology version, keeping what it can of `self` (see the module comment).
    pub fn next(&self, topology: Arc<Topology>, config: &Config, workers: usize) -> Arc<Routing> {
        Self::build(topology, config, workers, Some(self))
    }

    /// This snapshot, to keep beyond one statement.
    pub fn snapshot(&self) -> Option<Arc<Routing>> {
        self.me.upgrade()
    }

    fn build(
        topology: Arc<Topology>,
        config: &Config,
        workers: usize,
        previous: Option<&Routing>,
    ) -> Arc<Routing> {
        let workers = workers.max(1);
        let health: Vec<Arc<Health>> = topology
            .backends()
            .iter()
            .map(|b| {
                let same = previous.and_then(|p| {
                    let i = p
                        .topology
                        .backends()
                        .iter()
                        .position(|o| o.host == b.host && o.port == b.port)?;
                    p.health.get(i).cloned()
                });
                same.unwrap_or_else(|| Arc::new(Health::new(config.pool.health())))
            })
            .collect();
        // For each new shard, the index of the same shard in the previous snapshot.
        let kept: Vec<Option<usize>> = topology
            .shards()
            .iter()
            .map(|s| {
                let p = previous?;
                let id = identity(&topology, s);
                p.topology
                    .shards()
                    .iter()
                    .position(|o| identity(&p.topology, o) == id)
            })
            .collect();
        let pools = (0..workers)
            .map(|w| {
                let fresh = worker_pools(&topology, config, workers, &health);
                fresh
                    .into_iter()
                    .zip(&kept)
                    .map(|(pool, old)| {
                        let reused = old.and_then(|i| previous?.pools.get(w)?.get(i).cloned());
                        reused.unwrap_or(pool)
                    })
                    .collect()
            })
            .collect();
        let backend_time = kept
            .iter()
            .map(|old| {
                let reused = old.and_then(|i| previous?.backend_time.get(i).cloned());
                reused.unwrap_or_default()
            })
            .collect();
        Arc::new_cyclic(|me| Routing {
            topology,
            pools,
            health,
            backend_time,
            me: me.clone(),
        })
    }

    /// The database and server of `shard`.
    pub fn identity(&self, shard: ShardId) -> Option<ShardIdentity> {
        let s = self.topology.shard(shard)?;
        Some(identity(&self.topology, s))
    }

    /// Records how long `shard` took to answer a statement.
    pub fn backend_time(&self, shard: ShardId, took: std::time::Duration) {
        if let Some(h) = self.backend_time.get(shard.0 as usize) {
            h.observe(took);
        }
    }

    /// Backend time of each shard, in shard order.
    pub fn backend_times(&self) -> &[Arc<Histogram>] {
        &self.backend_time
    }

    /// The pool of one shard of this snapshot, as seen by one worker.
    pub fn pool(&self, worker: usize, shard: ShardId) -> Option<&ShardPool> {
        self.pools.get(worker)?.get(shard.0 as usize)
    }

    /// Every shard's pool of one worker, in shard order.
    pub fn worker_pools(&self, worker: usize) -> &[ShardPool] {
        self.pools.get(worker).map_or(&[], Vec::as_slice)
    }

    /// Every worker's pool of one shard.
    pub fn shard_pools(&self, shard: ShardId) -> impl Iterator<Item = &ShardPool> {
        self.pools
            .iter()
            .filter_map(move |w| w.get(shard.0 as usize))
    }

    /// The health of each backend server, in the order of `topology.backends()`.
    pub fn health(&self) -> &[Arc<Health>] {
        &self.health
    }

    /// A readable name for a shard in messages: `-02 (127.0.0.1:3307/app_000)`.
    pub fn describe(&self, shard: ShardId) -> String {
        match self.topology.shards().get(shard.0 as usize) {
            Some(s) => {
                let b = self.topology.backends().get(s.backend);
                let addr = b
                    .map(|b| format!("{}:{}", b.host, b.port))
                    .unwrap_or_default();
                format!("{} ({addr}/{})", s.name, s.database)
            }
            None => format!("#{}", shard.0),
        }
    }
}

/// Presents a topology to the statement analyser, which knows nothing of shards. Every table is sharded (listed
/// or not) except the topology's reference tables.
pub struct TopologySchema<'a>(pub &'a Topology);

impl shardgate_sql::Schema for TopologySchema<'_> {
    fn generation(&self) -> u64 {
        self.0.version()
    }

    fn sharding_column(&self, table: &str) -> Option<&str> {
        // A reference table is whole on every shard: reads of it go anywhere, writes everywhere.
        (!self.0.is_reference_table(table)).then(|| self.0.sharding_column(table))
    }

    fn is_reference(&self, table: &str) -> bool {
        self.0.is_reference_table(table)
    }

    /// The vindex name: the topology routes a tenant by the table's vindex alone (pins apply to every table), so
    /// tables with the same vindex keep each tenant on one shard.
    fn vindex(&self, table: &str) -> Option<&str> {
        (!self.0.is_reference_table(table)).then(|| self.0.table_rule(table).vindex.name())
    }

    /// The `auto_increment` column of a listed sharded table: its ids come from the topology's sequence, never
    /// from a shard (validation keeps sequences off reference tables).
    fn sequence_column(&self, table: &str) -> Option<&str> {
        self.0.auto_increment(table).map(|a| a.column.as_str())
    }
}

fn identity(topology: &Topology, shard: &Shard) -> ShardIdentity {
    let (host, port) = topology
        .backend_of(shard)
        .map_or((String::new(), 0), |b| (b.host.clone(), b.port));
    ShardIdentity {
        host,
        port,
        database: shard.database.clone(),
    }
}

/// One worker's pools, indexed by shard.
fn worker_pools(
    topology: &Topology,
    config: &Config,
    workers: usize,
    health: &[Arc<Health>],
) -> Vec<ShardPool> {
    topology
        .shards()
        .iter()
        .map(|shard| {
            let pool_config = config.pool_config(&shard.name, workers);
            // Validation gives every shard a backend; a missing one gets a health of its own (never shared).
            let health = health
                .get(shard.backend)
                .cloned()
                .unwrap_or_else(|| Arc::new(Health::new(config.pool.health())));
            let (host, port) = topology
                .backend_of(shard)
                .map_or((String::new(), 0), |b| (b.host.clone(), b.port));
            let connector = ShardConnector {
                target: BackendTarget {
                    host,
                    port,
                    database: shard.database.clone(),
                    user: config.backend.user.clone(),
                    password: config.backend.password.clone(),
                    connect_timeout: config.pool.connect_timeout(),
                    reply_timeout: config.reply_timeout(),
                },
            };
            Pool::with_health(connector, pool_config, health)
        })
        .collect()
}
