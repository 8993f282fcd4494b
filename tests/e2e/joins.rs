//! Joins and subqueries over several sharded tables pinned to one tenant, and reads of a reference table, as
//! differential tests: the same rows through the proxy (spread over 8 shards, several tenants per shard) and in one
//! plain database (`flat`); every query must give the same answer both ways. Statements that are not provably about
//! one tenant are refused.
//!
//! The reference table `countries` (declared by the harness's topology) is written directly on every shard: writes to
//! reference tables through the proxy are not part of this test.

use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};

use crate::harness::expect::{self, codes};
use crate::harness::outcome::{self, Outcome};
use crate::harness::{Cluster, bounded};

const DDL: [&str; 3] = [
    "CREATE TABLE orders (id BIGINT NOT NULL, tenant_id BIGINT UNSIGNED NOT NULL, country CHAR(2), \
     status VARCHAR(8), PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE order_items (id BIGINT NOT NULL, tenant_id BIGINT UNSIGNED NOT NULL, order_id BIGINT NOT NULL, \
     sku VARCHAR(8), qty INT, PRIMARY KEY (tenant_id, id))",
    "CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(16))",
];

const COUNTRIES: &str = "INSERT INTO countries (code, name) VALUES ('FR', 'France'), ('DE', 'Germany'), \
    ('JP', 'Japan')";

/// Tenants 1..=12 over 8 shards: most shards hold several, so a statement that forgot a tenant condition would see
/// another tenant's rows. Order ids repeat across tenants on purpose.
fn inserts() -> [String; 2] {
    let countries = ["FR", "DE", "JP", "XX"];
    let statuses = ["open", "paid", "void"];
    let orders: Vec<String> = (0..48u64)
        .map(|n| {
            let (tenant, id) = (n % 12 + 1, n / 12 + 1);
            let country = countries[((n / 12 + n) % 4) as usize];
            let status = statuses[(n % 3) as usize];
            format!("({id}, {tenant}, '{country}', '{status}')")
        })
        .collect();
    let items: Vec<String> = (0..120u64)
        .map(|n| {
            let (tenant, id) = (n % 12 + 1, n / 12 + 1);
            let order = n % 5 + 1;
            format!("({id}, {tenant}, {order}, 'sku{}', {})", n % 7, n % 9)
        })
        .collect();
    [
        format!(
            "INSERT INTO orders (id, tenant_id, country, status) VALUES {}",
            orders.join(", ")
        ),
        format!(
            "INSERT INTO order_items (id, tenant_id, order_id, sku, qty) VALUES {}",
            items.join(", ")
        ),
    ]
}

/// A cluster with the rows loaded through the proxy (countries on every shard directly), and the same rows in `flat`.
async fn loaded() -> (Cluster, mysql_async::Conn, mysql_async::Conn) {
    let cluster = Cluster::builder(2, 8).start().await;
    let mut proxy = cluster.proxy_conn().await;
    for ddl in DDL {
        proxy.query_drop(ddl).await.expect("DDL through the proxy");
    }
    for insert in inserts() {
        proxy
            .query_drop(&insert)
            .await
            .expect("multi-tenant INSERT through the proxy");
    }
    cluster.ddl_on_every_shard(COUNTRIES).await;
    let setup: Vec<String> = DDL
        .into_iter()
        .map(str::to_owned)
        .chain(inserts())
        .chain([COUNTRIES.to_owned()])
        .collect();
    let flat = cluster.flat_database(&setup).await;
    (cluster, proxy, flat)
}

/// `sql` gives the same rows through the proxy as on `flat`, and some rows.
async fn same(proxy: &mut mysql_async::Conn, flat: &mut mysql_async::Conn, sql: &str) {
    let via_proxy = outcome::via_mysql_async(proxy, sql).await;
    let direct = outcome::via_mysql_async(flat, sql).await;
    assert!(
        matches!(&direct, Outcome::Rows { rows, .. } if !rows.is_empty()),
        "`{sql}` should give rows on a plain MariaDB: {direct:?}"
    );
    assert_eq!(via_proxy, direct, "`{sql}`");
}

#[tokio::test]
async fn joins_pinned_to_one_tenant_answer_as_one_database_would() {
    bounded(async {
        let (_cluster, mut proxy, mut flat) = loaded().await;
        for tenant in [1, 6, 12] {
            for sql in [
                format!(
                    "SELECT o.id, o.status, i.id, i.sku, i.qty FROM orders o JOIN order_items i \
                     ON i.order_id = o.id AND i.tenant_id = o.tenant_id WHERE o.tenant_id = {tenant} \
                     ORDER BY o.id, i.id"
                ),
                format!(
                    "SELECT o.id, i.id FROM orders o, order_items i WHERE i.order_id = o.id \
                     AND o.tenant_id = {tenant} AND i.tenant_id = {tenant} ORDER BY o.id, i.id"
                ),
                format!(
                    "SELECT o.id, COUNT(i.id), SUM(i.qty) FROM orders o LEFT JOIN order_items i \
                     ON i.order_id = o.id AND i.tenant_id = o.tenant_id WHERE o.tenant_id = {tenant} \
                     GROUP BY o.id ORDER BY o.id"
                ),
                format!(
                    "SELECT o.id, c.name FROM orders o JOIN countries c ON c.code = o.country \
                     WHERE o.tenant_id = {tenant} ORDER BY o.id"
                ),
                format!(
                    "SELECT o.id, c.name, i.sku FROM orders o JOIN order_items i ON i.tenant_id = o.tenant_id \
                     AND i.order_id = o.id LEFT JOIN countries c ON c.code = o.country \
                     WHERE i.tenant_id = {tenant} ORDER BY o.id, i.id"
                ),
                format!(
                    "SELECT id, status FROM orders WHERE tenant_id = {tenant} AND id IN \
                     (SELECT order_id FROM order_items WHERE tenant_id = {tenant} AND qty > 3) ORDER BY id"
                ),
                format!(
                    "SELECT o.id FROM orders o WHERE o.tenant_id = {tenant} AND NOT EXISTS \
                     (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.tenant_id = o.tenant_id \
                     AND i.qty > 6) ORDER BY o.id"
                ),
                format!(
                    "SELECT o.id, (SELECT COUNT(*) FROM order_items i WHERE i.order_id = o.id \
                     AND i.tenant_id = o.tenant_id) AS n FROM orders o WHERE o.tenant_id = {tenant} ORDER BY o.id"
                ),
                format!(
                    "SELECT o.id, t.q FROM orders o JOIN (SELECT order_id, SUM(qty) AS q FROM order_items \
                     WHERE tenant_id = {tenant} GROUP BY order_id) t ON t.order_id = o.id \
                     WHERE o.tenant_id = {tenant} ORDER BY o.id"
                ),
                format!(
                    "SELECT a.id, b.id FROM orders a JOIN orders b ON b.tenant_id = a.tenant_id \
                     AND b.status = a.status AND b.id > a.id WHERE a.tenant_id = {tenant} ORDER BY a.id, b.id"
                ),
                format!(
                    "SELECT id FROM orders WHERE tenant_id = {tenant} UNION \
                     SELECT order_id FROM order_items WHERE tenant_id = {tenant} ORDER BY 1"
                ),
            ] {
                same(&mut proxy, &mut flat, &sql).await;
            }
        }
        same(
            &mut proxy,
            &mut flat,
            "SELECT code, name FROM countries ORDER BY code",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_prepared_join_reads_its_tenant_from_the_one_placeholder() {
    bounded(async {
        let (_cluster, mut proxy, mut flat) = loaded().await;
        let sql = "SELECT o.id, i.id, i.qty FROM orders o JOIN order_items i \
                   ON i.order_id = o.id AND i.tenant_id = o.tenant_id WHERE o.tenant_id = ? ORDER BY o.id, i.id";
        let unwrap = |rows: Vec<Row>| -> Vec<Vec<Value>> { rows.into_iter().map(Row::unwrap).collect() };
        for tenant in [2u64, 7, 11] {
            let via_proxy: Vec<Row> = proxy.exec(sql, (tenant,)).await.expect(sql);
            let direct: Vec<Row> = flat.exec(sql, (tenant,)).await.expect(sql);
            assert!(!direct.is_empty(), "tenant {tenant} has rows");
            assert_eq!(unwrap(via_proxy), unwrap(direct), "`{sql}` for tenant {tenant}");
        }
    })
    .await;
}

#[tokio::test]
async fn joins_not_provably_about_one_tenant_are_refused() {
    bounded(async {
        let (_cluster, mut proxy, _flat) = loaded().await;
        for sql in [
            // Two tenants, likely on two shards.
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.tenant_id = 1 AND i.tenant_id = 2",
            // `i` is not limited at all.
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.tenant_id = 1",
            // Under OR, the condition limits nothing.
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id \
             WHERE o.tenant_id = 1 AND (i.tenant_id = 1 OR i.qty > 5)",
            // A LEFT JOIN's ON does not limit its left side.
            "SELECT * FROM orders o LEFT JOIN order_items i ON i.order_id = o.id AND o.tenant_id = 1 \
             AND i.tenant_id = o.tenant_id",
            // No tenant at all: a scatter join.
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id AND i.tenant_id = o.tenant_id",
            // The subquery reads every tenant.
            "SELECT * FROM orders WHERE tenant_id = 1 AND id IN (SELECT order_id FROM order_items)",
        ] {
            expect::server_error(proxy.query_drop(sql).await, codes::NOT_SUPPORTED_YET, sql);
        }
        let one: Vec<u64> = proxy.query("SELECT 1").await.expect("still usable");
        assert_eq!(one, [1]);
    })
    .await;
}

#[tokio::test]
async fn writes_to_a_reference_table_reach_every_shard_or_none() {
    bounded(async {
        let cluster = Cluster::builder(2, 4).start().await;
        cluster
            .ddl_on_every_shard(
                "CREATE TABLE countries (code CHAR(2) PRIMARY KEY, name VARCHAR(16))",
            )
            .await;
        let mut conn = cluster.proxy_conn().await;
        let copies = |sql: &'static str| {
            let cluster = &cluster;
            async move {
                let mut all = Vec::new();
                for shard in cluster.shards() {
                    let rows: Vec<(String, String)> = cluster.query_shard(shard, sql).await;
                    all.push(rows);
                }
                all
            }
        };
        conn.query_drop(
            "INSERT INTO countries (code, name) VALUES ('FR', 'France'), ('DE', 'Germany')",
        )
        .await
        .expect("insert into a reference table");
        assert_eq!(
            conn.affected_rows(),
            2,
            "affected rows as one server would report"
        );
        conn.query_drop("UPDATE countries SET name = 'Deutschland' WHERE code = 'DE'")
            .await
            .expect("update a reference table");
        let want = vec![
            ("DE".to_string(), "Deutschland".to_string()),
            ("FR".to_string(), "France".to_string()),
        ];
        for rows in copies("SELECT code, name FROM countries ORDER BY code").await {
            assert_eq!(rows, want);
        }
        // A write that fails on one shard (its copy already has 'JP') leaves no shard changed.
        let odd = &cluster.shards()[2];
        cluster
            .backend_of(odd)
            .conn_db(Some(&odd.database))
            .await
            .query_drop("INSERT INTO countries (code, name) VALUES ('JP', 'Japan')")
            .await
            .expect("seed one shard's copy");
        assert!(
            conn.query_drop(
                "INSERT INTO countries (code, name) VALUES ('IT', 'Italy'), ('JP', 'Japan')"
            )
            .await
            .is_err()
        );
        for (shard, rows) in cluster
            .shards()
            .iter()
            .zip(copies("SELECT code, name FROM countries WHERE code = 'IT'").await)
        {
            assert!(
                rows.is_empty(),
                "shard {} kept part of a failed reference write",
                shard.name
            );
        }
    })
    .await;
}
