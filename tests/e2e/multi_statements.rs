//! Several statements in one COM_QUERY (CLIENT_MULTI_STATEMENTS, which mysql_async asks for): each is routed on
//! its own, the replies come back as one multi-result reply in order, and the first error ends it — the same
//! results as a plain MariaDB gives for the same text.

use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};

use crate::harness::schema::ORDERS_DDL;
use crate::harness::{Cluster, bounded};

/// What one result of a multi-result reply carried.
#[derive(Debug, PartialEq)]
enum Part {
    Rows(Vec<Vec<Value>>),
    Done { affected_rows: u64 },
    Failed(u16),
}

/// Every result of `sql`, in order, ending at the first error.
async fn results(conn: &mut mysql_async::Conn, sql: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut result = match conn.query_iter(sql).await {
        Ok(r) => r,
        Err(mysql_async::Error::Server(e)) => return vec![Part::Failed(e.code)],
        Err(e) => panic!("`{sql}`: {e}"),
    };
    while !result.is_empty() {
        let has_columns = result.columns().is_some_and(|c| !c.is_empty());
        match result.collect::<Row>().await {
            Ok(rows) if has_columns => {
                parts.push(Part::Rows(rows.into_iter().map(Row::unwrap).collect()))
            }
            Ok(_) => parts.push(Part::Done {
                affected_rows: result.affected_rows(),
            }),
            Err(mysql_async::Error::Server(e)) => {
                parts.push(Part::Failed(e.code));
                break;
            }
            Err(e) => panic!("`{sql}`: {e}"),
        }
    }
    parts
}

#[tokio::test]
async fn statements_in_one_query_are_routed_one_by_one_and_answered_in_order() {
    bounded(async {
        let cluster = Cluster::builder(2, 4).start().await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut proxy = cluster.proxy_conn().await;
        let mut flat = cluster.flat_database(&[ORDERS_DDL]).await;
        for (sql, parts) in [
            ("INSERT INTO orders (id, tenant_id, note) VALUES (1, 5, 'a'); \
             INSERT INTO orders (id, tenant_id, note) VALUES (2, 6, 'b'), (3, 7, 'c'); \
             SELECT note FROM orders WHERE tenant_id = 5; \
             SELECT id, note FROM orders ORDER BY id; \
             UPDATE orders SET note = 'x' WHERE tenant_id IN (6, 7); \
             SELECT COUNT(*) FROM orders WHERE note = 'x'", 6),
            // The first error ends the reply: the statement after it never runs.
            // (mysql_async surfaces the rows before the error and stops there, against MariaDB as through the proxy.)
            ("SELECT 1; SELECT nosuch FROM orders WHERE tenant_id = 5; DELETE FROM orders WHERE tenant_id = 5", 1),
            ("SELECT note FROM orders WHERE tenant_id = 5;", 1),
            ("BEGIN; UPDATE orders SET note = 'y' WHERE tenant_id = 5; ROLLBACK; SELECT note FROM orders WHERE tenant_id = 5", 4),
        ] {
            let via_proxy = results(&mut proxy, sql).await;
            let direct = results(&mut flat, sql).await;
            assert_eq!(via_proxy, direct, "`{sql}`");
            assert_eq!(via_proxy.len(), parts, "`{sql}`: {via_proxy:?}");
        }
        let notes: Vec<String> = proxy
            .query("SELECT note FROM orders WHERE tenant_id = 5")
            .await
            .expect("the DELETE after the error must not have run");
        assert_eq!(notes, ["a"]);
        // The connection is in step afterwards.
        let one: Vec<u64> = proxy.query("SELECT 1").await.expect("usable");
        assert_eq!(one, [1]);
    })
    .await;
}
