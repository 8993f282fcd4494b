//! Temporary tables: a session's temporary tables live on one pinned backend connection, are used with the tenant
//! data of that shard exactly as on one MariaDB, and never show through to another session.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::schema::{ORDERS_DDL, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded};

/// ER_NO_SUCH_TABLE.
const NO_SUCH_TABLE: u16 = 1146;

#[tokio::test]
async fn temporary_tables_follow_the_session_and_answer_as_one_mariadb_would() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4).pool_max_size(2)).await;
        let mut flat = cluster.flat_database(&[ORDERS_DDL]).await;
        let (t5, other) = cluster.tenants_on_two_shards("orders", 5);
        let mut a = cluster.proxy_conn().await;
        for (id, tenant, note) in [(1, t5, "a"), (2, t5, "b"), (3, t5, "c"), (4, other, "z")] {
            a.query_drop(insert_order(id, tenant, note)).await.expect("insert");
            flat.query_drop(insert_order(id, tenant, note)).await.expect("insert flat");
        }
        let script = [
            "CREATE TEMPORARY TABLE picks (id BIGINT PRIMARY KEY)".to_string(),
            format!("INSERT INTO picks SELECT id FROM orders WHERE tenant_id = {t5} AND note <> 'b'"),
            "INSERT INTO picks VALUES (40)".to_string(),
        ];
        for sql in &script {
            a.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            flat.query_drop(sql).await.expect("same, directly");
        }
        let join = format!(
            "SELECT o.note FROM orders o JOIN picks p ON p.id = o.id WHERE o.tenant_id = {t5} ORDER BY o.note"
        );
        for _ in 0..3 {
            // Statements on other shards in between do not move the temporary table.
            let _: Vec<String> = a
                .query(format!("SELECT note FROM orders WHERE tenant_id = {other}"))
                .await
                .expect("another shard");
            let via: Vec<String> = a.query(&join).await.expect("join with the temporary table");
            let direct: Vec<String> = flat.query(&join).await.expect("join directly");
            assert_eq!(via, direct);
            assert_eq!(via, ["a", "c"]);
        }
        let count: Vec<u64> = a.query("SELECT COUNT(*) FROM picks").await.expect("count");
        assert_eq!(count, [3]);
        // A transaction on that shard uses the same connection: its temporary table is in it.
        a.query_drop("BEGIN").await.expect("begin");
        a.query_drop("INSERT INTO picks VALUES (41)").await.expect("insert in txn");
        a.query_drop(insert_order(5, t5, "d")).await.expect("insert orders in txn");
        a.query_drop("ROLLBACK").await.expect("rollback");
        let count: Vec<u64> = a.query("SELECT COUNT(*) FROM picks").await.expect("count");
        assert_eq!(count, [3], "the rolled-back insert is gone");
        // Temporary tables of this session are on t5's shard: a statement needing them elsewhere is refused.
        let msg = expect::server_error(
            a.query_drop(format!(
                "SELECT o.note FROM orders o JOIN picks p ON p.id = o.id WHERE o.tenant_id = {other}"
            ))
            .await,
            codes::NOT_SUPPORTED_YET,
            "temporary table on another shard",
        );
        assert!(msg.contains("temporary tables are on shard"), "{msg}");
        // Another session does not see them.
        let mut b = cluster.proxy_conn().await;
        match b.query_drop("SELECT COUNT(*) FROM picks").await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, NO_SUCH_TABLE, "{}", e.message),
            other => panic!("another session saw the temporary table: {other:?}"),
        }
        // Prepared statements on them are refused with the reason.
        let msg = expect::server_error(
            a.prep("SELECT id FROM picks").await,
            codes::NOT_SUPPORTED_YET,
            "prepared",
        );
        assert!(msg.contains("temporary tables"), "{msg}");
        a.query_drop("DROP TEMPORARY TABLE picks").await.expect("drop");
        match a.query_drop("SELECT COUNT(*) FROM picks").await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, NO_SUCH_TABLE, "{}", e.message),
            other => panic!("the dropped temporary table is still there: {other:?}"),
        }
        let e = expect::server_error(
            a.query_drop("DROP TEMPORARY TABLE picks").await,
            (1051, "42S02"),
            "drop twice",
        );
        assert!(e.contains("picks"), "{e}");
        // Unpinned: statements for any tenant run again.
        let notes: Vec<String> = a
            .query(format!("SELECT note FROM orders WHERE tenant_id = {other}"))
            .await
            .expect("after the drop");
        assert_eq!(notes, ["z"]);
    })
    .await;
}

#[tokio::test]
async fn a_temporary_table_never_outlives_its_session_on_a_shared_connection() {
    bounded(async {
        // One worker, one connection per shard: the next session necessarily gets the same connections.
        let builder = Cluster::builder(1, 2)
            .pool_max_size(1)
            .config_line("workers: 1");
        let cluster = start_with_orders(builder).await;
        // A real table on every shard, which a temporary table of the same name would shadow if it survived.
        cluster
            .ddl_on_every_shard("CREATE TABLE scratch (id BIGINT, tenant_id BIGINT UNSIGNED)")
            .await;
        let mut a = cluster.proxy_conn().await;
        a.query_drop("CREATE TEMPORARY TABLE scratch (id BIGINT, tenant_id BIGINT UNSIGNED)")
            .await
            .expect("create");
        a.query_drop("INSERT INTO scratch VALUES (1, 1), (2, 2)")
            .await
            .expect("insert");
        let mine: Vec<u64> = a
            .query("SELECT COUNT(*) FROM scratch")
            .await
            .expect("count");
        assert_eq!(
            mine,
            [2],
            "the temporary table shadows the real one, as on MariaDB"
        );
        a.disconnect().await.expect("disconnect");
        let mut b = cluster.proxy_conn().await;
        // Scattered to both shards, on the very connections `a` used: the real, empty tables answer.
        let theirs: Vec<u64> = b
            .query("SELECT COUNT(*) FROM scratch")
            .await
            .expect("count");
        assert_eq!(theirs, [0], "a temporary table survived its session");
    })
    .await;
}

#[tokio::test]
async fn temporary_tables_first_used_inside_a_transaction_live_on_its_connection() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4).pool_max_size(4)).await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("BEGIN").await.expect("begin");
        for id in 1..=3 {
            conn.query_drop(insert_order(id, 5, "t"))
                .await
                .expect("insert");
        }
        conn.query_drop("CREATE TEMPORARY TABLE ids (id BIGINT)")
            .await
            .expect("create");
        // Pending until now: created on the connection the transaction holds, so it sees the uncommitted rows.
        conn.query_drop("INSERT INTO ids SELECT id FROM orders WHERE tenant_id = 5")
            .await
            .expect("fill from the transaction's rows");
        let n: Vec<u64> = conn.query("SELECT COUNT(*) FROM ids").await.expect("count");
        assert_eq!(n, [3]);
        conn.query_drop("COMMIT").await.expect("commit");
        let n: Vec<u64> = conn
            .query("SELECT COUNT(*) FROM ids")
            .await
            .expect("count after commit");
        assert_eq!(n, [3], "the pin outlives the transaction");
        // As on MySQL: a second CREATE of the same name fails, IF NOT EXISTS and DROP … IF EXISTS do not.
        conn.query_drop("CREATE TEMPORARY TABLE later (a INT)")
            .await
            .expect("create");
        let e = expect::server_error(
            conn.query_drop("CREATE TEMPORARY TABLE later (a INT)")
                .await,
            (1050, "42S01"),
            "twice",
        );
        assert!(e.contains("later"), "{e}");
        conn.query_drop("CREATE TEMPORARY TABLE IF NOT EXISTS later (a INT)")
            .await
            .expect("if not exists");
        conn.query_drop("DROP TEMPORARY TABLE IF EXISTS never_made")
            .await
            .expect("drop if exists");
    })
    .await;
}
