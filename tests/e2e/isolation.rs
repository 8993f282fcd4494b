//! Session state and server scope: nothing a statement leaves on a shared backend connection, or reaches outside
//! the shards' databases, can show up in another session. Each case here was a way through before it was closed.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::raw::RawConn;
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded};

/// A 4-shard cluster with `orders` in every shard, and a client connected through the proxy.
async fn cluster_with_orders() -> (Cluster, mysql_async::Conn) {
    let cluster = Cluster::start(1, 4).await;
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    let conn = cluster.proxy_conn().await;
    (cluster, conn)
}

/// Asserts that every statement in `sqls` is refused with 1235 and that the connection still answers.
async fn assert_refused(conn: &mut mysql_async::Conn, sqls: &[&str]) {
    for sql in sqls {
        expect::server_error(conn.query_drop(*sql).await, codes::NOT_SUPPORTED_YET, sql);
    }
    let one: Vec<u64> = conn
        .query("SELECT 1")
        .await
        .expect("the session must stay usable");
    assert_eq!(one, [1]);
}

#[tokio::test]
async fn statements_that_keep_or_read_connection_state_are_refused() {
    bounded(async {
        let (_cluster, mut conn) = cluster_with_orders().await;
        conn.query_drop(insert_order(1, 5, "mine"))
            .await
            .expect("insert");
        assert_refused(
            &mut conn,
            &[
                "SELECT @v := 'secret'",
                "SELECT FOUND_ROWS()",
                "SELECT GET_LOCK('x', 0) + 1",
                "SELECT LOAD_FILE('/etc/passwd')",
            ],
        )
        .await;
        // The parser cannot read a trailing INTO (1064): refused all the same.
        let into = "SELECT note FROM orders WHERE tenant_id = 5 INTO @v";
        assert!(conn.query_drop(into).await.is_err(), "{into}");
        // Nothing refused above left anything behind: the real row is read.
        let notes: Vec<String> = conn
            .query("SELECT note FROM orders WHERE tenant_id = 5")
            .await
            .expect("select");
        assert_eq!(notes, ["mine"]);
    })
    .await;
}

#[tokio::test]
async fn ddl_cannot_reach_a_schema_outside_the_shards() {
    bounded(async {
        let (cluster, mut conn) = cluster_with_orders().await;
        assert_refused(
            &mut conn,
            &[
                "CREATE TABLE mysql.shardgate_evil (a INT)",
                "CREATE TABLE `mysql`.`shardgate_evil` (a INT)",
                "DROP TABLE orders, mysql.shardgate_evil",
                "RENAME TABLE orders TO mysql.orders",
            ],
        )
        .await;
        let backend = &cluster.backends()[0];
        let evil: Vec<String> = backend
            .query(None, "SELECT table_name FROM information_schema.tables WHERE table_name = 'shardgate_evil'")
            .await;
        assert!(evil.is_empty(), "a table was created outside the shards: {evil:?}");
        for shard in cluster.shards() {
            let n: Vec<u64> = cluster.query_shard(shard, "SELECT COUNT(*) FROM orders").await;
            assert_eq!(n.len(), 1, "orders must still exist on {}", shard.name);
        }
    })
    .await;
}

#[tokio::test]
async fn show_statements_about_the_server_are_refused() {
    bounded(async {
        let (_cluster, mut conn) = cluster_with_orders().await;
        assert_refused(
            &mut conn,
            &[
                "SHOW FULL PROCESSLIST",
                "SHOW PROCESSLIST",
                "SHOW ENGINE INNODB STATUS",
                "SHOW GRANTS",
            ],
        )
        .await;
        let tables: Vec<String> = conn
            .query("SHOW TABLES")
            .await
            .expect("SHOW TABLES is allowed");
        assert_eq!(tables, ["orders"]);
    })
    .await;
}

#[tokio::test]
async fn multi_byte_charsets_whose_characters_can_hide_a_quote_are_refused() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        let mut conn = cluster.proxy_conn().await;
        for charset in ["gbk", "big5", "sjis", "cp932"] {
            let sql = format!("SET NAMES {charset}");
            expect::server_error(
                conn.query_drop(&sql).await,
                codes::UNKNOWN_CHARACTER_SET,
                &sql,
            );
        }
        conn.query_drop("SET NAMES latin1")
            .await
            .expect("single-byte charsets stay allowed");
        conn.query_drop("SET NAMES DEFAULT")
            .await
            .expect("SET NAMES DEFAULT, as MariaDB accepts it");
        let one: Vec<u64> = conn
            .query("SELECT 1")
            .await
            .expect("usable after SET NAMES DEFAULT");
        assert_eq!(one, [1]);
    })
    .await;
}

#[tokio::test]
async fn non_ascii_system_variable_names_get_an_error_not_a_dropped_connection() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        let mut conn = cluster.proxy_conn().await;
        for sql in ["SELECT @@loca中x", "SELECT @@local.x中"] {
            assert!(
                conn.query_drop(sql).await.is_err(),
                "{sql} names no variable"
            );
        }
        let one: Vec<u64> = conn
            .query("SELECT 1")
            .await
            .expect("the session must survive");
        assert_eq!(one, [1]);
    })
    .await;
}

#[tokio::test]
async fn commands_without_a_reply_get_none() {
    bounded(async {
        let cluster = Cluster::start(1, 4).await;
        let mut raw = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("raw login");
        // COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA: the protocol defines no reply. If the proxy answered, the
        // next command's reply would be that stray packet instead.
        raw.send_command(0x19, &7u32.to_le_bytes()).await;
        raw.send_command(0x18, &[7, 0, 0, 0, 0, 0, b'x']).await;
        raw.ping().await.expect_ok("COM_PING right after");
        let rows = raw.query("SELECT 2").await.expect_rows("a query after");
        assert_eq!(rows, vec![vec![Some("2".to_owned())]]);
    })
    .await;
}

#[tokio::test]
async fn a_backend_that_drops_the_connection_after_an_error_does_not_poison_the_pool() {
    bounded(async {
        // The proxy accepts 64 MiB, the backend 16 MiB: the backend answers 1153 (08S01) and closes.
        let cluster = Cluster::builder(1, 4)
            .max_allowed_packet(64 << 20)
            .pool_max_size(1)
            .start()
            .await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        let big = format!(
            "INSERT INTO orders (id, tenant_id, note) VALUES (1, 5, '{}')",
            "x".repeat(20 << 20)
        );
        expect::server_error(
            conn.query_drop(&big).await,
            codes::PACKET_TOO_LARGE,
            "20 MiB insert",
        );
        // Same session, same worker, same one-connection pool: this must get a fresh backend connection.
        conn.query_drop(insert_order(2, 5, "after"))
            .await
            .expect("the next statement on that shard");
        let notes: Vec<String> = conn
            .query("SELECT note FROM orders WHERE tenant_id = 5")
            .await
            .expect("select");
        assert_eq!(notes, ["after"]);
    })
    .await;
}
