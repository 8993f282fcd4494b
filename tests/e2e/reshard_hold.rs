//! The proxy's side of a resharding cutover, driven by hand-written topology versions (no controller): a hold keeps
//! the moving tenant's statements (text and prepared, scatters too) waiting and lets everyone else through; the
//! flip releases them to the new owner; a hold nobody ends is released after `hold_max_ms`; while the source still
//! holds moved rows, statements reaching every shard are refused rather than counting them twice.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use shardgate_topology::{MoveSpec, MoveState, PinSpec, PinTenant, TopologySpec};
use tokio::time::Instant;

use crate::harness::schema::{committed_notes, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded, http};

/// The served topology with `change` applied, as the next version; PUT to the proxy.
async fn publish(cluster: &Cluster, change: impl FnOnce(&mut TopologySpec)) {
    let port = cluster.proxy().admin_port();
    let (status, yaml) = http::request(port, "GET", "/topology", "").await;
    assert_eq!(status, 200);
    let mut spec = TopologySpec::from_yaml_str(&yaml).expect("served topology");
    spec.version += 1;
    change(&mut spec);
    let (status, answer) = http::request(port, "PUT", "/topology", &spec.to_yaml()).await;
    assert_eq!(status, 200, "{answer}");
}

fn moving(shard: &str, tenant: u64, state: MoveState) -> MoveSpec {
    MoveSpec {
        workflow: "wf-hand".into(),
        shard: shard.into(),
        tenants: vec![PinTenant::Int(tenant)],
        state,
        hold_ms: 2000,
    }
}

async fn note_of(conn: &mut mysql_async::Conn, tenant: u64) -> String {
    let note: Option<String> = conn
        .query_first(format!(
            "SELECT note FROM orders WHERE tenant_id = {tenant}"
        ))
        .await
        .expect("select");
    note.expect("a row")
}

#[tokio::test]
async fn a_hold_keeps_the_moving_tenant_waiting_and_the_flip_releases_it_to_the_new_owner() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 4)).await;
        let (tenant, other) = (42u64, 7u64);
        let home = cluster.shard_for("orders", tenant).clone();
        let away = cluster.another_shard(&home.name);
        // A tenant living on the same shard as the moving one.
        let neighbour = (1..10_000)
            .find(|t| *t != tenant && cluster.shard_for("orders", *t).name == home.name)
            .expect("a neighbour");
        let mut setup = cluster.proxy_conn().await;
        setup
            .query_drop(insert_order(1, tenant, "source"))
            .await
            .expect("insert");
        setup
            .query_drop(insert_order(2, neighbour, "neighbour"))
            .await
            .expect("insert");
        setup
            .query_drop(insert_order(3, other, "other"))
            .await
            .expect("insert");
        // The copy a workflow would have made, marked so the test sees which side answered.
        cluster
            .backend_of(&away)
            .exec(&format!(
                "INSERT INTO {}.orders (id, tenant_id, note) VALUES (1, {tenant}, 'target')",
                away.database
            ))
            .await;
        // The workflow announces the move; a transaction touches the moving tenant, another only its neighbour.
        publish(&cluster, |s| {
            s.moves
                .push(moving(&home.name, tenant, MoveState::DualWrite))
        })
        .await;
        let mut early = cluster.proxy_conn().await;
        early.query_drop("BEGIN").await.expect("begin");
        assert_eq!(note_of(&mut early, tenant).await, "source");
        let mut bystander = cluster.proxy_conn().await;
        bystander.query_drop("BEGIN").await.expect("begin");
        assert_eq!(note_of(&mut bystander, neighbour).await, "neighbour");
        let port = cluster.proxy().admin_port();
        let (_, inflight) = http::request(port, "GET", "/reshard/inflight", "").await;
        assert_eq!(
            inflight.trim(),
            "1",
            "one transaction works on the moving keys"
        );

        publish(&cluster, |s| {
            s.moves = vec![moving(&home.name, tenant, MoveState::Hold)];
        })
        .await;
        // The bystander reaches the moving tenant only now: held like any new statement.
        let held_bystander = tokio::spawn(async move {
            let moved = bystander
                .query_first::<String, _>(format!(
                    "SELECT note FROM orders WHERE tenant_id = {tenant}"
                ))
                .await;
            (moved, bystander)
        });
        let mut text = cluster.proxy_conn().await;
        let held_text = tokio::spawn(async move {
            let started = Instant::now();
            let note = note_of(&mut text, tenant).await;
            (note, started.elapsed())
        });
        let mut prepared = cluster.proxy_conn().await;
        let held_prepared = tokio::spawn(async move {
            let note: Option<String> = prepared
                .exec_first("SELECT note FROM orders WHERE tenant_id = ?", (tenant,))
                .await
                .expect("execute");
            note
        });
        let mut scatter = cluster.proxy_conn().await;
        let held_scatter = tokio::spawn(async move {
            scatter
                .query_first::<u64, _>("SELECT COUNT(*) FROM orders")
                .await
        });
        // Everyone else goes on meanwhile, the neighbour on the very shard too.
        let mut others = cluster.proxy_conn().await;
        let started = Instant::now();
        assert_eq!(note_of(&mut others, neighbour).await, "neighbour");
        assert_eq!(note_of(&mut others, other).await, "other");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "others were held: {:?}",
            started.elapsed()
        );
        // The early transaction goes on unheld (the fence waits for it), on the source, and ends.
        assert_eq!(note_of(&mut early, tenant).await, "source");
        early.query_drop("COMMIT").await.expect("commit");
        let (_, inflight) = http::request(port, "GET", "/reshard/inflight", "").await;
        assert_eq!(
            inflight.trim(),
            "0",
            "no transaction left on the moving keys"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !held_text.is_finished(),
            "the moving tenant's statement ran during the hold"
        );
        assert!(
            !held_prepared.is_finished(),
            "the prepared statement ran during the hold"
        );
        assert!(
            !held_scatter.is_finished(),
            "the scatter ran during the hold"
        );

        // The flip: the tenant pinned to its new shard, the source left in cleanup.
        let away_name = away.name.clone();
        publish(&cluster, |s| {
            s.pins.push(PinSpec {
                tenant: PinTenant::Int(tenant),
                shard: away_name,
            });
            s.moves = vec![moving(&home.name, tenant, MoveState::Cleanup)];
        })
        .await;
        let (note, waited) = held_text.await.expect("task");
        assert_eq!(note, "target", "released to the new owner");
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
        assert_eq!(
            held_prepared.await.expect("task").as_deref(),
            Some("target")
        );
        // The bystander's transaction began on the old owner: its view cannot follow the tenant, it must restart.
        let (moved, mut bystander) = held_bystander.await.expect("task");
        match moved {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1213, "{}", e.message),
            other => panic!("a transaction straddling the flip went on: {other:?}"),
        }
        assert_eq!(
            note_of(&mut bystander, tenant).await,
            "target",
            "the retried statement runs on the new owner"
        );
        // The scatter was released into the cleanup state: it would count tenant 42's row on both shards.
        match held_scatter.await.expect("task") {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1235, "{}", e.message),
            other => panic!("the scatter was not refused: {other:?}"),
        }
        let mut after = cluster.proxy_conn().await;
        match after.query_drop("SELECT COUNT(*) FROM orders").await {
            Err(mysql_async::Error::Server(e)) => {
                assert_eq!(e.code, 1235, "{}", e.message);
                assert!(e.message.contains("wf-hand"), "{}", e.message);
            }
            other => panic!("a scatter during cleanup was not refused: {other:?}"),
        }
        assert_eq!(note_of(&mut after, tenant).await, "target");
        let held = cluster
            .proxy()
            .metric("shardgate_reshard_held_statements_total")
            .await;
        assert!(held >= 3.0, "held {held}");
        let timed = cluster
            .proxy()
            .metric("shardgate_reshard_hold_seconds_count")
            .await;
        assert!(timed >= 3.0, "timed {timed}");
        assert!(
            cluster
                .proxy()
                .metric("shardgate_reshard_refused_total")
                .await
                >= 2.0
        );
        assert_eq!(
            cluster
                .proxy()
                .metric("shardgate_reshard_hold_timeouts_total")
                .await,
            0.0
        );

        // The workflow completes: the move leaves the topology and scatters run again.
        publish(&cluster, |s| s.moves.clear()).await;
        let n: Option<u64> = after
            .query_first("SELECT COUNT(*) FROM orders")
            .await
            .expect("scatter");
        assert_eq!(
            n,
            Some(4),
            "the source's leftover copy is still there until cleanup deletes it"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hold_nobody_ends_is_released_to_the_source_after_hold_max_ms() {
    bounded(async {
        let cluster =
            start_with_orders(Cluster::builder(1, 4).config_line("hold_max_ms: 700")).await;
        let tenant = 42u64;
        let home = cluster.shard_for("orders", tenant).clone();
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, tenant, "source"))
            .await
            .expect("insert");
        publish(&cluster, |s| {
            s.moves.push(moving(&home.name, tenant, MoveState::Hold))
        })
        .await;
        let started = Instant::now();
        assert_eq!(note_of(&mut conn, tenant).await, "source");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(650),
            "released early: {waited:?}"
        );
        assert!(waited < Duration::from_secs(5), "held too long: {waited:?}");
        assert_eq!(
            cluster
                .proxy()
                .metric("shardgate_reshard_hold_timeouts_total")
                .await,
            1.0
        );
        // Still holding: a transaction's first statement waits too, then runs on the source.
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop(format!(
            "UPDATE orders SET note = 'txn' WHERE tenant_id = {tenant}"
        ))
        .await
        .expect("update");
        conn.query_drop("COMMIT").await.expect("commit");
        let rows: Vec<String> = committed_notes(&cluster, tenant).await;
        assert_eq!(rows, ["txn"]);
        assert_eq!(
            cluster
                .proxy()
                .metric("shardgate_reshard_hold_timeouts_total")
                .await,
            2.0
        );
    })
    .await;
}
