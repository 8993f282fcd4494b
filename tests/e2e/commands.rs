//! Protocol commands besides `COM_QUERY`: `COM_PING`, `COM_INIT_DB`, `COM_RESET_CONNECTION`, `COM_QUIT`, through
//! mysql_async where it can send them and through the raw client where it cannot.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::raw::{self, RawConn};
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded};

/// A cluster with `orders` holding one order of tenant 3, note `"three"`.
async fn cluster_with_an_order() -> Cluster {
    let cluster = Cluster::start(1, 2).await;
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    let mut conn = cluster.proxy_conn().await;
    conn.query_drop(insert_order(1, 3, "three"))
        .await
        .expect("insert failed");
    conn.disconnect().await.expect("disconnect failed");
    cluster
}

/// The rows of tenant 3's notes, as the raw client sees them.
fn tenant_three() -> Vec<Vec<Option<String>>> {
    vec![vec![Some("three".to_owned())]]
}

/// Reads tenant 3's notes.
const TENANT_THREE: &str = "SELECT note FROM orders WHERE tenant_id = 3";

#[tokio::test]
async fn ping_is_answered_with_ok() {
    bounded(async {
        let cluster = Cluster::start(1, 2).await;
        let mut conn = cluster.proxy_conn().await;
        conn.ping().await.expect("COM_PING through mysql_async");
        conn.ping()
            .await
            .expect("second COM_PING through mysql_async");
        conn.disconnect().await.expect("disconnect failed");
        let mut raw = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        raw.ping().await.expect_ok("raw COM_PING");
        raw.ping().await.expect_ok("second raw COM_PING");
    })
    .await;
}

#[tokio::test]
async fn init_db_selects_the_keyspace_for_a_session_that_connected_without_one() {
    bounded(async {
        let cluster = cluster_with_an_order().await;
        let mut conn = RawConn::login(cluster.proxy_port(), "app", "app", None)
            .await
            .expect("login without a database refused");
        conn.init_db("app").await.expect_ok("COM_INIT_DB app");
        assert_eq!(
            conn.query(TENANT_THREE)
                .await
                .expect_rows("routed query after COM_INIT_DB"),
            tenant_three()
        );

        let err = conn
            .init_db("no_such_keyspace")
            .await
            .expect_err("COM_INIT_DB to an unknown keyspace");
        expect::raw_error(
            &err,
            codes::UNKNOWN_DATABASE,
            "COM_INIT_DB no_such_keyspace",
        );
        assert_eq!(
            conn.query(TENANT_THREE)
                .await
                .expect_rows("routed query after a failed COM_INIT_DB"),
            tenant_three(),
            "a failed COM_INIT_DB must leave the session on its keyspace"
        );
    })
    .await;
}

#[tokio::test]
async fn reset_connection_answers_ok_and_keeps_the_session_usable() {
    bounded(async {
        let cluster = cluster_with_an_order().await;
        let mut conn = cluster.proxy_conn().await;
        let sent = conn
            .reset()
            .await
            .expect("COM_RESET_CONNECTION through mysql_async");
        assert!(
            sent,
            "mysql_async sends COM_RESET_CONNECTION only to servers announcing MySQL > 5.7.2 or MariaDB >= 10.2.4; \
             the proxy announced {:?}",
            conn.server_version()
        );
        let notes: Vec<String> = conn.query(TENANT_THREE).await.expect("query after reset");
        assert_eq!(notes, ["three"]);
        conn.disconnect().await.expect("disconnect failed");

        let mut raw = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        raw.reset_connection()
            .await
            .expect_ok("raw COM_RESET_CONNECTION");
        raw.ping().await.expect_ok("COM_PING after reset");
        assert_eq!(
            raw.query(TENANT_THREE)
                .await
                .expect_rows("query after reset"),
            tenant_three()
        );
    })
    .await;
}

#[tokio::test]
async fn quit_closes_the_session_without_a_reply() {
    bounded(async {
        let cluster = Cluster::start(1, 2).await;
        let mut conn = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        conn.send_command(raw::COM_QUIT, &[]).await;
        let closed = raw::read_until_closed(conn.stream(), Duration::from_secs(15)).await;
        assert!(closed.bytes.is_empty(), "COM_QUIT got a reply: {closed:?}");
    })
    .await;
}
