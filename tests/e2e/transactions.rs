//! Transactions and session variables: a transaction holds one backend connection per shard it touches until
//! COMMIT or ROLLBACK; session variables, `LAST_INSERT_ID()` and `ROW_COUNT()` belong to the client session, not
//! to whichever pooled connection ran its last statement.
//!
//! What a transaction has or has not made visible is checked directly on the shard databases, from connections
//! of their own, the way another application would see it.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::schema::{committed_notes, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded};

#[tokio::test]
async fn a_transaction_on_two_shards_commits_both_and_a_rollback_undoes_both() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 4)).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;

        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(1, a, "a1"))
            .await
            .expect("insert a");
        conn.query_drop(insert_order(2, b, "b1"))
            .await
            .expect("insert b");
        // Inside the transaction its own writes are visible; outside, nothing yet.
        let own: Vec<String> = conn
            .query(format!("SELECT note FROM orders WHERE tenant_id = {b}"))
            .await
            .expect("read own write");
        assert_eq!(own, ["b1"]);
        assert!(committed_notes(&cluster, a).await.is_empty());
        assert!(committed_notes(&cluster, b).await.is_empty());
        conn.query_drop("COMMIT").await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);

        conn.query_drop("START TRANSACTION")
            .await
            .expect("START TRANSACTION");
        for t in [a, b] {
            conn.query_drop(format!(
                "UPDATE orders SET note = 'changed' WHERE tenant_id = {t}"
            ))
            .await
            .expect("update");
        }
        conn.query_drop("ROLLBACK").await.expect("ROLLBACK");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);
    })
    .await;
}

#[tokio::test]
async fn autocommit_off_holds_writes_until_commit_and_reports_itself() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("SET autocommit = 0")
            .await
            .expect("SET autocommit = 0");
        let autocommit: Vec<u64> = conn
            .query("SELECT @@autocommit")
            .await
            .expect("@@autocommit");
        assert_eq!(autocommit, [0]);
        conn.query_drop(insert_order(1, a, "a1"))
            .await
            .expect("insert a");
        conn.query_drop(insert_order(2, b, "b1"))
            .await
            .expect("insert b");
        assert!(committed_notes(&cluster, a).await.is_empty());
        conn.query_drop("COMMIT").await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);

        // The next statement opens the next transaction; turning autocommit back on commits it.
        conn.query_drop(insert_order(3, a, "a2"))
            .await
            .expect("insert a2");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        conn.query_drop("SET autocommit = 1")
            .await
            .expect("SET autocommit = 1");
        assert_eq!(committed_notes(&cluster, a).await, ["a1", "a2"]);
        let autocommit: Vec<u64> = conn
            .query("SELECT @@autocommit")
            .await
            .expect("@@autocommit");
        assert_eq!(autocommit, [1]);

        expect::server_error(
            conn.query_drop("SET autocommit = 'maybe'").await,
            codes::WRONG_VALUE_FOR_VAR,
            "SET autocommit = 'maybe'",
        );
    })
    .await;
}

#[tokio::test]
async fn a_savepoint_means_the_same_point_on_a_shard_that_joins_later() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(1, a, "before"))
            .await
            .expect("insert");
        conn.query_drop("SAVEPOINT s1").await.expect("SAVEPOINT");
        // Shard of `b` joins after the savepoint: rolling back to it must undo this insert too.
        conn.query_drop(insert_order(2, b, "after"))
            .await
            .expect("insert b");
        conn.query_drop(insert_order(3, a, "after"))
            .await
            .expect("insert a");
        conn.query_drop("ROLLBACK TO SAVEPOINT s1")
            .await
            .expect("ROLLBACK TO");
        conn.query_drop(insert_order(4, b, "kept"))
            .await
            .expect("insert b again");
        conn.query_drop("RELEASE SAVEPOINT s1")
            .await
            .expect("RELEASE");
        conn.query_drop("COMMIT").await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["before"]);
        assert_eq!(committed_notes(&cluster, b).await, ["kept"]);

        expect::server_error(
            conn.query_drop("ROLLBACK TO SAVEPOINT s1").await,
            codes::SP_DOES_NOT_EXIST,
            "ROLLBACK TO outside a transaction",
        );
    })
    .await;
}

#[tokio::test]
async fn single_mode_refuses_a_second_shard_and_keeps_the_transaction() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4).transaction_mode("single")).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(1, a, "a1"))
            .await
            .expect("insert a");
        expect::server_error(
            conn.query_drop(insert_order(2, b, "b1")).await,
            codes::NOT_SUPPORTED_YET,
            "a second shard in single mode",
        );
        conn.query_drop(insert_order(3, a, "a2"))
            .await
            .expect("same shard still works");
        conn.query_drop("COMMIT").await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1", "a2"]);
        assert!(committed_notes(&cluster, b).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_transaction_leaves_nothing_behind() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4).pool_max_size(1)).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(1, a, "lost"))
            .await
            .expect("insert a");
        conn.query_drop(insert_order(2, b, "lost"))
            .await
            .expect("insert b");
        drop(conn);
        // With one connection per shard, the next session can only run once the old one's were given up.
        let mut next = cluster.proxy_conn().await;
        next.query_drop(insert_order(3, a, "next"))
            .await
            .expect("next session writes");
        let notes: Vec<String> = next
            .query(format!("SELECT note FROM orders WHERE tenant_id = {a}"))
            .await
            .expect("select");
        assert_eq!(notes, ["next"]);
        assert!(committed_notes(&cluster, b).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn session_variables_follow_the_session_not_the_pooled_connection() {
    bounded(async {
        // One backend connection per shard: both sessions must share it.
        let cluster = start_with_orders(Cluster::builder(1, 2).pool_max_size(1)).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        let default_mode: Vec<String> = b.query("SELECT @@sql_mode").await.expect("sql_mode");
        a.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES', wait_timeout = 1234")
            .await
            .expect("SET");
        for _ in 0..2 {
            let mine: Vec<(String, u64)> = a
                .query("SELECT @@sql_mode, @@wait_timeout")
                .await
                .expect("a reads");
            assert_eq!(mine, [("ANSI_QUOTES".to_string(), 1234)]);
            let theirs: Vec<String> = b.query("SELECT @@sql_mode").await.expect("b reads");
            assert_eq!(theirs, default_mode);
        }
        // A value computed from the connection's own state is resolved once, when it is set.
        a.query_drop("SET sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE')")
            .await
            .expect("SET from an expression");
        b.query_drop("SELECT 1")
            .await
            .expect("b uses the connection");
        let mine: Vec<String> = a.query("SELECT @@sql_mode").await.expect("a reads");
        assert_eq!(mine, ["ANSI_QUOTES,NO_ZERO_DATE"]);
        // The server's own checks apply, and a refused SET changes nothing.
        expect::server_error(
            a.query_drop("SET SESSION nosuch_variable = 1").await,
            codes::UNKNOWN_SYSTEM_VARIABLE,
            "unknown variable",
        );
        expect::server_error(
            a.query_drop("SET GLOBAL wait_timeout = 5").await,
            codes::NOT_SUPPORTED_YET,
            "SET GLOBAL",
        );
        let mine: Vec<u64> = a.query("SELECT @@wait_timeout").await.expect("a reads");
        assert_eq!(mine, [1234]);
    })
    .await;
}

#[tokio::test]
async fn last_insert_id_and_row_count_are_the_sessions_own() {
    bounded(async {
        let cluster = Cluster::builder(1, 2).pool_max_size(1).start().await;
        cluster
            .ddl_on_every_shard(
                "CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, what VARCHAR(16))",
            )
            .await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        a.query_drop("INSERT INTO events (tenant_id, what) VALUES (7, 'x')")
            .await
            .expect("a inserts");
        let a_id = a.last_insert_id().expect("an id");
        b.query_drop("INSERT INTO events (id, tenant_id, what) VALUES (500, 7, 'y')")
            .await
            .expect("b inserts");
        b.query_drop("INSERT INTO events (tenant_id, what) VALUES (7, 'z')")
            .await
            .expect("b inserts again");
        let seen: Vec<u64> = a.query("SELECT LAST_INSERT_ID()").await.expect("a reads");
        assert_eq!(seen, [a_id]);
        let seen: Vec<u64> = b.query("SELECT LAST_INSERT_ID()").await.expect("b reads");
        assert_eq!(seen, [501]);
        // ROW_COUNT() after an UPDATE is the rows it changed; after a SELECT, -1.
        a.query_drop("UPDATE events SET what = 'w' WHERE tenant_id = 7")
            .await
            .expect("update");
        let rows: Vec<i64> = a.query("SELECT ROW_COUNT()").await.expect("row_count");
        assert_eq!(rows, [3]);
        let rows: Vec<i64> = a.query("SELECT ROW_COUNT()").await.expect("row_count");
        assert_eq!(rows, [-1]);
    })
    .await;
}

#[tokio::test]
async fn transaction_characteristics_apply_as_on_mysql() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 2).pool_max_size(1)).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        a.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await
            .expect("session isolation");
        let mine: Vec<String> = a.query("SELECT @@tx_isolation").await.expect("a reads");
        assert_eq!(mine, ["READ-COMMITTED"]);
        let theirs: Vec<String> = b.query("SELECT @@tx_isolation").await.expect("b reads");
        assert_eq!(
            theirs,
            ["REPEATABLE-READ"],
            "one session's setting must not reach another"
        );

        // The next transaction only: read-only, so its write fails on the shard, and the one after is writable.
        a.query_drop("SET TRANSACTION READ ONLY")
            .await
            .expect("next transaction");
        a.query_drop("BEGIN").await.expect("BEGIN");
        expect::server_error(
            a.query_drop(insert_order(1, 5, "x")).await,
            codes::READ_ONLY_TRANSACTION,
            "a write in a READ ONLY transaction",
        );
        expect::server_error(
            a.query_drop("SET TRANSACTION READ WRITE").await,
            codes::CANT_CHANGE_TX_CHARACTERISTICS,
            "SET TRANSACTION inside a transaction",
        );
        a.query_drop("COMMIT").await.expect("COMMIT");
        a.query_drop("BEGIN").await.expect("BEGIN");
        a.query_drop(insert_order(2, 5, "y"))
            .await
            .expect("the next transaction is writable");
        a.query_drop("COMMIT").await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, 5).await, ["y"]);
        a.query_drop("UNLOCK TABLES")
            .await
            .expect("UNLOCK TABLES is a no-op");
    })
    .await;
}

#[tokio::test]
async fn transaction_statements_can_be_prepared_as_sysbench_does() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        let begin = conn.prep("BEGIN").await.expect("prepare BEGIN");
        let commit = conn.prep("COMMIT").await.expect("prepare COMMIT");
        let rollback = conn.prep("ROLLBACK").await.expect("prepare ROLLBACK");
        let insert = conn
            .prep("INSERT INTO orders (id, tenant_id, note) VALUES (?, ?, ?)")
            .await
            .expect("prepare INSERT");
        conn.exec_drop(&begin, ()).await.expect("BEGIN");
        conn.exec_drop(&insert, (1, a, "a1"))
            .await
            .expect("insert a");
        conn.exec_drop(&insert, (2, b, "b1"))
            .await
            .expect("insert b");
        assert!(committed_notes(&cluster, a).await.is_empty());
        conn.exec_drop(&commit, ()).await.expect("COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);
        conn.exec_drop(&begin, ()).await.expect("BEGIN");
        conn.exec_drop(&insert, (3, a, "gone"))
            .await
            .expect("insert");
        conn.exec_drop(&rollback, ()).await.expect("ROLLBACK");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
    })
    .await;
}

#[tokio::test]
async fn user_variables_follow_the_session_not_the_pooled_connection() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 2).pool_max_size(1)).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        for (id, tenant) in [(1, 7), (2, 8)] {
            a.query_drop(insert_order(id, tenant, &format!("n{id}")))
                .await
                .expect("insert");
        }
        // As mariadb-dump's header does: save a system variable into a user variable, change it, restore it.
        a.query_drop("SET @OLD_SQL_MODE = @@SQL_MODE, SQL_MODE = 'ANSI_QUOTES', @t = 8")
            .await
            .expect("SET with user variables");
        let theirs: Vec<Option<String>> = b.query("SELECT @t").await.expect("b reads @t");
        assert_eq!(theirs, [None], "another session must not see @t");
        let mine: Vec<(u64, String)> = a.query("SELECT @t, @@sql_mode").await.expect("a reads");
        assert_eq!(mine, [(8, "ANSI_QUOTES".to_string())]);
        // A user variable in a condition is evaluated by every shard the statement reaches.
        let notes: Vec<String> = a
            .query("SELECT note FROM orders WHERE tenant_id = @t")
            .await
            .expect("select by @t");
        assert_eq!(notes, ["n2"]);
        a.query_drop("SET SQL_MODE = @OLD_SQL_MODE")
            .await
            .expect("restore");
        let restored: Vec<String> = a.query("SELECT @@sql_mode").await.expect("a reads");
        let default_mode: Vec<String> = b.query("SELECT @@sql_mode").await.expect("b reads");
        assert_eq!(restored, default_mode);
        expect::server_error(
            a.query_drop("SELECT @u := 1").await,
            codes::NOT_SUPPORTED_YET,
            "assignment inside a statement",
        );
    })
    .await;
}

#[tokio::test]
async fn a_deadlock_victim_loses_its_whole_transaction_on_every_shard() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let (x, y) = cluster.tenants_on_two_shards("orders", 1);
        let mut setup = cluster.proxy_conn().await;
        for (id, tenant) in [(1, x), (2, x), (3, x), (4, y)] {
            setup
                .query_drop(insert_order(id, tenant, "orig"))
                .await
                .expect("insert");
        }
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        // B changes two rows on shard X; A changes one on shard Y and one on X, so A is the lighter transaction
        // and InnoDB picks it as the deadlock victim.
        b.query_drop("BEGIN").await.expect("B BEGIN");
        b.query_drop(format!(
            "UPDATE orders SET note = 'B' WHERE tenant_id = {x} AND id IN (2, 3)"
        ))
        .await
        .expect("B locks 2 and 3");
        a.query_drop("BEGIN").await.expect("A BEGIN");
        a.query_drop(format!(
            "UPDATE orders SET note = 'A' WHERE tenant_id = {y} AND id = 4"
        ))
        .await
        .expect("A changes shard Y");
        a.query_drop(format!(
            "UPDATE orders SET note = 'A' WHERE tenant_id = {x} AND id = 1"
        ))
        .await
        .expect("A locks 1");
        let waiting = tokio::spawn(async move {
            let r = a
                .query_drop(format!(
                    "UPDATE orders SET note = 'A' WHERE tenant_id = {x} AND id = 2"
                ))
                .await;
            (a, r)
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        b.query_drop(format!(
            "UPDATE orders SET note = 'B' WHERE tenant_id = {x} AND id = 1"
        ))
        .await
        .expect("B wins the deadlock");
        let (mut a, victim) = waiting.await.expect("A's task");
        expect::server_error(victim, codes::DEADLOCK, "A is the deadlock victim");
        // A's transaction is gone everywhere: its COMMIT commits nothing, not even shard Y's change.
        a.query_drop("COMMIT").await.expect("A COMMIT");
        b.query_drop("COMMIT").await.expect("B COMMIT");
        let y_notes: Vec<String> = cluster
            .query_shard(
                cluster.shard_for("orders", y),
                "SELECT note FROM orders WHERE id = 4",
            )
            .await;
        assert_eq!(
            y_notes,
            ["orig"],
            "the victim's change on the other shard must be rolled back"
        );
        let x_notes: Vec<String> = cluster
            .query_shard(
                cluster.shard_for("orders", x),
                "SELECT note FROM orders WHERE id IN (1, 2, 3) ORDER BY id",
            )
            .await;
        assert_eq!(x_notes, ["B", "B", "B"]);
    })
    .await;
}
