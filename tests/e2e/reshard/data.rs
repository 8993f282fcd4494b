//! The resharding tests' schema and bulk data: three sharded tables with non-deterministic columns, and bulk rows
//! loaded directly on each tenant's shard (fast: one `INSERT … SELECT` from MariaDB's Sequence engine per table).
//!
//! Bulk rows are deterministic (`ver` 0, `note` `bulk-<id>`, `created_at` 2020-01-01 plus `id` seconds, `uid`
//! `bulk-<id padded>`), so that a row no client touched can be recognised on any shard without remembering it.

use mysql_async::prelude::Queryable;

use crate::harness::Cluster;

/// The tables every test moves.
pub const TABLES: [&str; 3] = ["orders", "items", "events"];

/// First id of the ids clients insert (bulk ids are `1..=bulk`, far below).
pub const FRESH_IDS: i64 = 1_000_000_000;

/// One table's definition.
pub fn ddl(table: &str) -> String {
    format!(
        "CREATE TABLE `{table}` (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, \
         ver BIGINT NOT NULL, note VARCHAR(64), created_at DATETIME(6) NOT NULL, \
         uid CHAR(36) NOT NULL, PRIMARY KEY (tenant_id, id))"
    )
}

/// The columns a check compares, `created_at` as text with its microseconds.
pub const ROW_COLUMNS: &str = "ver, note, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'), uid";

/// Whether a row is a bulk row no client touched (alias-free, for a `WHERE`).
pub const PRISTINE: &str = "ver = 0 AND note = CONCAT('bulk-', id) \
     AND created_at = TIMESTAMP('2020-01-01') + INTERVAL id SECOND \
     AND uid = CONCAT('bulk-', LPAD(id, 31, '0'))";

/// The bulk row with `id` as [`load_bulk`] writes it (and [`PRISTINE`] recognises it).
pub fn bulk_row(id: i64) -> super::workload::Row {
    assert!(
        (1..31 * 86_400).contains(&id),
        "bulk ids stay within January 2020"
    );
    let (day, rest) = (id / 86_400 + 1, id % 86_400);
    super::workload::Row {
        ver: 0,
        note: Some(format!("bulk-{id}")),
        created_at: format!(
            "2020-01-{day:02} {:02}:{:02}:{:02}.000000",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        ),
        uid: format!("bulk-{id:031}"),
    }
}

/// A tenant of a test and its bulk rows per table (in [`TABLES`] order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant id.
    pub id: u64,
    /// Bulk rows per table: ids `1..=bulk[t]`.
    pub bulk: [i64; 3],
    /// Whether the workflow moves it.
    pub moving: bool,
}

/// Creates the tables in every shard database and lets InnoDB keep them in memory (the harness's servers start
/// with a 16 MB buffer pool, too small for 200,000 rows twice over).
pub async fn create_tables(cluster: &Cluster, buffer_pool_mb: u64) {
    for backend in cluster.backends() {
        backend
            .exec(&format!(
                "SET GLOBAL innodb_buffer_pool_size = {}",
                buffer_pool_mb << 20
            ))
            .await;
    }
    for table in TABLES {
        cluster.ddl_on_every_shard(&ddl(table)).await;
    }
}

/// Loads each tenant's bulk rows on the shard the cluster's topology routes it to, servers concurrently.
pub async fn load_bulk(cluster: &Cluster, tenants: &[Tenant]) {
    let mut tasks = tokio::task::JoinSet::new();
    for tenant in tenants {
        let shard = cluster.shard_for(TABLES[0], tenant.id).clone();
        let opts = cluster.backend_of(&shard).opts(Some(&shard.database));
        let tenant = *tenant;
        tasks.spawn(async move {
            let mut conn = mysql_async::Conn::new(opts)
                .await
                .expect("connect for bulk load");
            for (table, rows) in TABLES.iter().zip(tenant.bulk) {
                if rows == 0 {
                    continue;
                }
                let sql = format!(
                    "INSERT INTO `{table}` (tenant_id, id, ver, note, created_at, uid) \
                     SELECT {}, seq, 0, \
                     CONCAT('bulk-', seq), TIMESTAMP('2020-01-01') + INTERVAL seq SECOND, \
                     CONCAT('bulk-', LPAD(seq, 31, '0')) FROM seq_1_to_{rows}",
                    tenant.id
                );
                conn.query_drop(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("bulk load failed: {e}\n{sql}"));
            }
            let _ = conn.disconnect().await;
        });
    }
    crate::harness::join_all(tasks).await;
}

/// Tenants from `from` on whose rows the cluster's topology routes to the shard named `shard`.
pub fn tenants_on(cluster: &Cluster, shard: &str, from: u64, count: usize) -> Vec<u64> {
    (from..from + 100_000)
        .filter(|t| cluster.shard_for(TABLES[0], *t).name == shard)
        .take(count)
        .collect()
}

/// The first byte of a tenant's keyspace id (which key range it falls in), ignoring pins.
pub fn keyspace_byte(cluster: &Cluster, tenant: u64) -> u8 {
    let id = cluster
        .topology()
        .keyspace_id(TABLES[0], shardgate_topology::TenantRef::Int(tenant))
        .expect("a sharded table");
    id.to_bytes()[0]
}
