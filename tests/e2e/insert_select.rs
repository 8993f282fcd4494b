//! `INSERT ... SELECT` into a sharded table, as a differential test: the same rows through the proxy (spread over 8
//! shards, several tenants per shard) and in one plain database (`flat`). Statements that copy rows within one
//! tenant must report what one server reports and leave the same rows stored, each on its tenant's shard;
//! statements that could write a row of another tenant than the one they read are refused before anything runs.
//!
//! The reference table `countries` (declared by the harness's topology) is written directly on every shard.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::outcome::{self, Outcome};
use crate::harness::{Cluster, bounded};

const DDL: [&str; 2] = [
    "CREATE TABLE items (id BIGINT NOT NULL, tenant_id BIGINT UNSIGNED NOT NULL, name VARCHAR(32), \
     country CHAR(2), PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(16), rank_no INT)",
];

const COUNTRIES: &str = "INSERT INTO countries (code, name, rank_no) VALUES ('FR', 'France', 1), \
    ('DE', 'Germany', 2), ('JP', 'Japan', 3)";

/// Every stored item, in a fixed order: through the proxy a scatter read of every shard.
const ALL_ITEMS: &str = "SELECT id, tenant_id, name, country FROM items ORDER BY tenant_id, id";

/// 60 items over tenants 1..=12 (most shards hold several tenants, so a copy that read or wrote across tenants
/// would show); ids repeat across tenants on purpose.
fn items() -> String {
    let countries = ["FR", "DE", "JP", "XX"];
    let rows: Vec<String> = (0..60u64)
        .map(|n| {
            let (tenant, id) = (n % 12 + 1, n / 12 + 1);
            let country = countries[(n % 4) as usize];
            format!("({id}, {tenant}, 'item{n}', '{country}')")
        })
        .collect();
    format!(
        "INSERT INTO items (id, tenant_id, name, country) VALUES {}",
        rows.join(", ")
    )
}

/// A cluster with the rows loaded (items through the proxy, countries on every shard directly), and the same rows
/// in `flat`.
async fn loaded() -> (Cluster, mysql_async::Conn, mysql_async::Conn) {
    let cluster = Cluster::builder(2, 8).start().await;
    let mut proxy = cluster.proxy_conn().await;
    for ddl in DDL {
        proxy.query_drop(ddl).await.expect("DDL through the proxy");
    }
    proxy
        .query_drop(items())
        .await
        .expect("multi-tenant INSERT through the proxy");
    cluster.ddl_on_every_shard(COUNTRIES).await;
    let setup: Vec<String> = DDL
        .into_iter()
        .map(str::to_owned)
        .chain([items(), COUNTRIES.to_owned()])
        .collect();
    let flat = cluster.flat_database(&setup).await;
    (cluster, proxy, flat)
}

/// Runs write `sql` through the proxy and on `flat`: same outcome (affected rows, the `Records: …` info), and it
/// inserted rows.
async fn same_write(proxy: &mut mysql_async::Conn, flat: &mut mysql_async::Conn, sql: &str) {
    let via_proxy = outcome::via_mysql_async(proxy, sql).await;
    let direct = outcome::via_mysql_async(flat, sql).await;
    assert!(
        matches!(&direct, Outcome::Done { affected_rows, .. } if *affected_rows > 0),
        "`{sql}` should insert rows on a plain MariaDB: {direct:?}"
    );
    assert_eq!(via_proxy, direct, "`{sql}`");
}

/// The rows stored through the proxy are those stored in `flat`, and each shard holds only rows of tenants routed
/// to it: a copy never lands on another tenant's shard.
async fn same_rows(cluster: &Cluster, proxy: &mut mysql_async::Conn, flat: &mut mysql_async::Conn) {
    let via_proxy = outcome::via_mysql_async(proxy, ALL_ITEMS).await;
    let direct = outcome::via_mysql_async(flat, ALL_ITEMS).await;
    assert_eq!(via_proxy, direct, "stored rows differ from one database's");
    for shard in cluster.shards() {
        let tenants: Vec<u64> = cluster
            .query_shard(shard, "SELECT DISTINCT tenant_id FROM items")
            .await;
        for tenant in tenants {
            assert_eq!(
                cluster.shard_for("items", tenant).name,
                shard.name,
                "shard {} holds rows of tenant {tenant}, routed elsewhere",
                shard.name
            );
        }
    }
}

#[tokio::test]
async fn copies_within_one_tenant_store_what_one_database_would() {
    bounded(async {
        let (cluster, mut proxy, mut flat) = loaded().await;
        for sql in [
            // The tenant copied from the rows read.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 1000, tenant_id, name FROM items WHERE tenant_id = 5",
            // The same shape for another tenant: answered from the cached plan, bound to the new tenant.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 1000, tenant_id, name FROM items WHERE tenant_id = 10",
            // The tenant written as the same literal that limits the SELECT.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 2000, 7, name FROM items WHERE tenant_id = 7",
            // A join to a reference table, present on every shard.
            "INSERT INTO items (id, tenant_id, name, country) SELECT i.id + 3000, i.tenant_id, c.name, c.code \
             FROM items i JOIN countries c ON c.code = i.country WHERE i.tenant_id = 9",
            // The preserved side of a LEFT JOIN to it.
            "INSERT INTO items (id, tenant_id, name) SELECT i.id + 4000, i.tenant_id, COALESCE(c.name, i.name) \
             FROM items i LEFT JOIN countries c ON c.code = i.country WHERE i.tenant_id = 9",
            // Rows made from a reference table alone, for the tenant the literal names.
            "INSERT INTO items (id, tenant_id, name, country) SELECT 5000 + rank_no, 3, name, code FROM countries",
            // A copy that grows its rows from themselves, per group.
            "INSERT INTO items (id, tenant_id, name) SELECT MAX(id) + 6000, tenant_id, country FROM items \
             WHERE tenant_id = 12 GROUP BY tenant_id, country",
        ] {
            same_write(&mut proxy, &mut flat, sql).await;
        }
        same_rows(&cluster, &mut proxy, &mut flat).await;
    })
    .await;
}

#[tokio::test]
async fn a_prepared_copy_reads_its_tenant_from_the_placeholder() {
    bounded(async {
        let (cluster, mut proxy, mut flat) = loaded().await;
        let sql = "INSERT INTO items (id, tenant_id, name) SELECT id + 7000, tenant_id, name FROM items \
                   WHERE tenant_id = ?";
        for tenant in [2u64, 8] {
            proxy.exec_drop(sql, (tenant,)).await.expect(sql);
            let via_proxy = proxy.affected_rows();
            flat.exec_drop(sql, (tenant,)).await.expect(sql);
            assert_eq!(via_proxy, flat.affected_rows(), "`{sql}` for tenant {tenant}");
            assert!(via_proxy > 0, "tenant {tenant} has rows to copy");
        }
        same_rows(&cluster, &mut proxy, &mut flat).await;
    })
    .await;
}

#[tokio::test]
async fn copies_not_provably_within_one_tenant_are_refused_and_write_nothing() {
    bounded(async {
        let (cluster, mut proxy, mut flat) = loaded().await;
        for sql in [
            // The SELECT reads tenant 5, the rows would be tenant 6's (maybe on another shard).
            "INSERT INTO items (id, tenant_id, name) SELECT id + 8000, 6, name FROM items WHERE tenant_id = 5",
            // No tenant in the SELECT: it would read every shard.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 8000, tenant_id, name FROM items",
            // The same, with a literal tenant for the rows.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 8000, 5, name FROM items",
            // A tenant computed by an expression.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 8000, tenant_id + 1, name FROM items \
             WHERE tenant_id = 5",
            // Several tenants.
            "INSERT INTO items (id, tenant_id, name) SELECT id + 8000, tenant_id, name FROM items \
             WHERE tenant_id IN (5, 6)",
        ] {
            expect::server_error(proxy.query_drop(sql).await, codes::NOT_SUPPORTED_YET, sql);
        }
        same_rows(&cluster, &mut proxy, &mut flat).await;
    })
    .await;
}
