//! Bad SQL: statements the proxy cannot parse or cannot route get MySQL error packets, nothing is written, and
//! the connection stays usable for the next statement.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded};

/// Asserts that `conn` still routes statements: writes an order for `tenant` and reads it back.
async fn assert_usable(conn: &mut mysql_async::Conn, id: u64, tenant: u64) {
    conn.query_drop(insert_order(id, tenant, "still-usable"))
        .await
        .expect("the connection must stay usable");
    let notes: Vec<String> = conn
        .query(format!(
            "SELECT note FROM orders WHERE tenant_id = {tenant}"
        ))
        .await
        .expect("the connection must stay usable");
    assert_eq!(notes, ["still-usable"]);
}

#[tokio::test]
async fn unparsable_sql_gets_1064_and_the_connection_stays_usable() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        let garbage = [
            "SELEC id FROM orders WHERE tenant_id = 1",
            "SELECT id FROM orders WHERE tenant_id = = 1",
            "INSERT INTO orders (id, tenant_id) VALUES (1,",
            "this is not sql",
        ];
        for sql in garbage {
            expect::server_error(conn.query_drop(sql).await, codes::PARSE_ERROR, sql);
        }
        assert_usable(&mut conn, 1, 7).await;
    })
    .await;
}

#[tokio::test]
async fn statement_without_tenant_key_gets_1235_naming_table_and_column() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        let sql = "INSERT INTO orders (id, note) VALUES (1, 'no tenant')";
        let message =
            expect::server_error(conn.query_drop(sql).await, codes::NOT_SUPPORTED_YET, sql);
        assert!(
            message.contains("orders") && message.contains("tenant_id"),
            "the message must name the table and the sharding column: {message:?}"
        );
        for shard in cluster.shards() {
            let count: Vec<u64> = cluster
                .query_shard(shard, "SELECT COUNT(*) FROM orders")
                .await;
            assert_eq!(
                count,
                [0],
                "an unroutable insert reached shard {}",
                shard.name
            );
        }
        assert_usable(&mut conn, 2, 7).await;
    })
    .await;
}

#[tokio::test]
async fn empty_and_comment_only_queries_get_what_mariadb_answers_and_the_connection_stays_usable() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        let backend_port = cluster.backends()[0].port();
        let mut direct = crate::harness::raw::RawConn::login(backend_port, "root", "", None)
            .await
            .expect("raw login to MariaDB refused");
        let mut proxied =
            crate::harness::raw::RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
                .await
                .expect("raw login to the proxy refused");
        // MariaDB: blank text or a lone `;` is ER_EMPTY_QUERY (1065); comments alone are an OK.
        let cases = [
            ("", true),
            ("   ", true),
            (";", true),
            ("/* c */", false),
            ("-- x\n", false),
        ];
        for (sql, want_err) in cases {
            let want = direct.query(sql).await;
            let got = proxied.query(sql).await;
            if want_err {
                let (want, got) = (want.expect_err("MariaDB"), got.expect_err("the proxy"));
                assert_eq!((got.code, &got.state), (want.code, &want.state), "{sql:?}");
                assert_eq!(got.code, 1065, "{sql:?}: {}", got.message);
            } else {
                want.expect_ok("MariaDB");
                got.expect_ok("the proxy");
            }
        }
        let rows = proxied
            .query("SELECT 1")
            .await
            .expect_rows("a query after the empty ones");
        assert_eq!(rows, vec![vec![Some("1".to_owned())]]);
    })
    .await;
}
