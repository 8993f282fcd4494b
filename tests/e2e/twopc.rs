//! `transaction_mode: twopc`: XA on the shards and a durable decision log. A proxy killed between PREPARE and
//! COMMIT leaves prepared branches on the servers; the next start commits them if the decision was recorded, and
//! rolls them back if it was not — on every shard alike.

use mysql_async::prelude::Queryable;

use crate::harness::schema::{committed_notes, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded};

/// Prepared XA branches left on all the servers.
async fn prepared_branches(cluster: &Cluster) -> usize {
    let mut n = 0;
    for backend in cluster.backends() {
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = backend.query(None, "XA RECOVER").await;
        n += rows.len();
    }
    n
}

async fn twopc_cluster() -> Cluster {
    start_with_orders(Cluster::builder(2, 4).transaction_mode("twopc")).await
}

#[tokio::test]
async fn twopc_commits_and_rolls_back_on_every_shard() {
    bounded(async {
        let cluster = twopc_cluster().await;
        let (a, b) = cluster.tenants_on_two_shards("orders", 1);
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(1, a, "a1"))
            .await
            .expect("insert a");
        conn.query_drop(insert_order(2, b, "b1"))
            .await
            .expect("insert b");
        assert!(committed_notes(&cluster, a).await.is_empty());
        conn.query_drop("COMMIT").await.expect("two-phase COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);

        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(format!(
            "UPDATE orders SET note = 'x' WHERE tenant_id IN ({a}, {b})"
        ))
        .await
        .expect("update");
        conn.query_drop("ROLLBACK").await.expect("ROLLBACK");
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);

        // One shard: committed in one phase.
        conn.query_drop("BEGIN").await.expect("BEGIN");
        conn.query_drop(insert_order(3, a, "a2"))
            .await
            .expect("insert");
        conn.query_drop("COMMIT").await.expect("one-phase COMMIT");
        assert_eq!(committed_notes(&cluster, a).await, ["a1", "a2"]);
        assert_eq!(prepared_branches(&cluster).await, 0);
    })
    .await;
}

/// Runs a two-shard transaction on a proxy that aborts at `fault`, and returns the tenants it wrote.
async fn crash_during_commit(cluster: &mut Cluster, fault: &str) -> (u64, u64) {
    let (a, b) = cluster.tenants_on_two_shards("orders", 1);
    cluster.restart_proxy(&[("SHARDGATE_FAULT", fault)]).await;
    let mut conn = cluster.proxy_conn().await;
    conn.query_drop("BEGIN").await.expect("BEGIN");
    conn.query_drop(insert_order(1, a, "a1"))
        .await
        .expect("insert a");
    conn.query_drop(insert_order(2, b, "b1"))
        .await
        .expect("insert b");
    assert!(
        conn.query_drop("COMMIT").await.is_err(),
        "the proxy must die during COMMIT"
    );
    // Both branches are prepared and wait, invisible, on their servers.
    assert_eq!(prepared_branches(cluster).await, 2);
    assert!(committed_notes(cluster, a).await.is_empty());
    assert!(committed_notes(cluster, b).await.is_empty());
    (a, b)
}

#[tokio::test]
async fn a_crash_after_the_commit_decision_is_committed_everywhere_at_restart() {
    bounded(async {
        let mut cluster = twopc_cluster().await;
        let (a, b) = crash_during_commit(&mut cluster, "twopc-after-decision").await;
        cluster.restart_proxy(&[]).await;
        assert_eq!(prepared_branches(&cluster).await, 0);
        assert_eq!(committed_notes(&cluster, a).await, ["a1"]);
        assert_eq!(committed_notes(&cluster, b).await, ["b1"]);
        // And the restarted proxy serves on.
        let mut conn = cluster.proxy_conn().await;
        let notes: Vec<String> = conn
            .query(format!("SELECT note FROM orders WHERE tenant_id = {a}"))
            .await
            .expect("read through the new proxy");
        assert_eq!(notes, ["a1"]);
    })
    .await;
}

#[tokio::test]
async fn a_crash_before_the_commit_decision_is_rolled_back_everywhere_at_restart() {
    bounded(async {
        let mut cluster = twopc_cluster().await;
        let (a, b) = crash_during_commit(&mut cluster, "twopc-after-prepare").await;
        cluster.restart_proxy(&[]).await;
        assert_eq!(prepared_branches(&cluster).await, 0);
        assert!(committed_notes(&cluster, a).await.is_empty());
        assert!(committed_notes(&cluster, b).await.is_empty());
    })
    .await;
}
