//! The routing table: one topology snapshot plus the backend pools of its shards, swapped as one value.
//!
//! A statement loads one [`Routing`] (one `ArcSwap` load) and keeps it until it finishes, so the shard it was
//! routed to and the pool it runs on always come from the same topology version.

use std::sync::Arc;

use shardgate_pool::{Pool, PoolConfig};
use shardgate_topology::{ShardId, Topology};

use crate::backend::{BackendTarget, ShardConnector};
use crate::config::Config;

/// A shard's pools: CLIENT_FOUND_ROWS changes what UPDATE reports, so connections opened with and without it are
/// never mixed.
pub struct ShardPools {
    plain: Pool<ShardConnector>,
    found_rows: Pool<ShardConnector>,
}

impl ShardPools {
    /// The pool whose connections match the client's CLIENT_FOUND_ROWS choice.
    pub fn get(&self, found_rows: bool) -> &Pool<ShardConnector> {
        if found_rows {
            &self.found_rows
        } else {
            &self.plain
        }
    }
}

/// A topology snapshot and the pools of its shards, one set per worker thread (indexed by worker, then
/// [`ShardId`]). A session only uses its own worker's pools, so a backend connection is always driven by the
/// thread whose reactor it is registered with.
pub struct Routing {
    pub topology: Arc<Topology>,
    pools: Vec<Vec<ShardPools>>,
}

impl Routing {
    /// Pools for every shard of `topology` and every worker; `pool.max_size` is split evenly between workers
    /// (rounded up), so a shard sees at most about `max_size` connections. Connections open lazily, on first use.
    pub fn new(topology: Arc<Topology>, config: &Config, workers: usize) -> Routing {
        let workers = workers.max(1);
        let pool_config = PoolConfig {
            max_size: config.pool.max_size.div_ceil(workers),
            acquire_timeout: config.pool.acquire_timeout(),
        };
        let pools = (0..workers)
            .map(|_| worker_pools(&topology, config, pool_config))
            .collect();
        Routing { topology, pools }
    }

    /// The pools of one shard of this snapshot, as seen by one worker.
    pub fn pools(&self, worker: usize, shard: ShardId) -> Option<&ShardPools> {
        self.pools.get(worker)?.get(shard.0 as usize)
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

/// One worker's pools, indexed by shard.
fn worker_pools(topology: &Topology, config: &Config, pool_config: PoolConfig) -> Vec<ShardPools> {
    topology
        .shards()
        .iter()
        .map(|shard| {
            let (host, port) = topology
                .backend_of(shard)
                .map_or((String::new(), 0), |b| (b.host.clone(), b.port));
            let target = |found_rows| ShardConnector {
                target: BackendTarget {
                    host: host.clone(),
                    port,
                    database: shard.database.clone(),
                    user: config.backend.user.clone(),
                    password: config.backend.password.clone(),
                    found_rows,
                    connect_timeout: config.pool.connect_timeout(),
                },
            };
            ShardPools {
                plain: Pool::new(target(false), pool_config),
                found_rows: Pool::new(target(true), pool_config),
            }
        })
        .collect()
}
