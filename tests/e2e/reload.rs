//! Topology reloads while traffic flows: from the file (renamed over), on SIGHUP, and through the admin endpoint;
//! invalid ones refused and counted; in-flight statements and open transactions unaffected.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::task::JoinSet;

use crate::harness::deadline::eventually;
use crate::harness::schema::{committed_notes, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded, http, join_all};

/// The cluster's topology with `version` and these pins (`tenant`, shard name) in place of its own.
fn topology_with(cluster: &Cluster, version: u64, pins: &[(u64, &str)]) -> String {
    let yaml = cluster.topology_yaml();
    let body = yaml
        .split_once('\n')
        .map(|(_, rest)| rest)
        .expect("a version line first");
    let body = body.split("pins:").next().expect("pins last");
    let mut out = format!("version: {version}\n{body}");
    if pins.is_empty() {
        out.push_str("pins: []\n");
    } else {
        out.push_str("pins:\n");
        for (tenant, shard) in pins {
            out.push_str(&format!("  - {{ tenant: {tenant}, shard: \"{shard}\" }}\n"));
        }
    }
    out
}

/// Replaces the topology file the way deployment tools do: write a new file, rename it over the old one.
fn rename_over(cluster: &Cluster, yaml: &str) {
    let path = cluster.config_dir().join("topology.yaml");
    let tmp = cluster.config_dir().join("topology.yaml.new");
    std::fs::write(&tmp, yaml).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

async fn version(cluster: &Cluster) -> u64 {
    let (status, body) = cluster.proxy().admin_get("/topology/version").await;
    assert_eq!(status, 200);
    body.trim().parse().expect("a version")
}

/// How long a reload may take to be seen.
const RELOAD_ALLOWANCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_hundred_reloads_under_load_fail_no_query_and_serve_every_valid_version_in_order() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let mut setup = cluster.proxy_conn().await;
        for t in 1..=64 {
            setup
                .query_drop(insert_order(t, t, &format!("n{t}")))
                .await
                .expect("insert");
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for c in 0..32u64 {
            let (opts, stop) = (cluster.proxy_opts(), std::sync::Arc::clone(&stop));
            clients.spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.expect("login");
                let mut done = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let tenant = (c * 5 + done) % 64 + 1;
                    let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant}");
                    let notes: Vec<String> = conn.query(&sql).await.expect("no query fails");
                    assert_eq!(notes, [format!("n{tenant}")], "{sql}");
                    done += 1;
                }
                done
            });
        }
        let shards: Vec<String> = cluster.shards().iter().map(|s| s.name.clone()).collect();
        let pid = cluster.proxy().pid().to_string();
        let mut serving = 1;
        for i in 0..100u64 {
            let errors = cluster
                .proxy()
                .metric("shardgate_topology_reload_errors_total")
                .await;
            // Pins of tenants no client reads, so that routing changes while every answer stays right.
            let pin = (1_000_000 + i, shards[(i % 8) as usize].as_str());
            let (yaml, valid) = match i % 10 {
                3 => (topology_with(&cluster, serving - 1, &[pin]), false),
                7 => (
                    topology_with(&cluster, serving + 1, &[(5, "no-such-shard")]),
                    false,
                ),
                9 => ("version: [not yaml".to_string(), false),
                _ => (topology_with(&cluster, serving + 1, &[pin]), true),
            };
            if i % 2 == 0 {
                rename_over(&cluster, &yaml);
            } else {
                std::fs::write(cluster.config_dir().join("topology.yaml"), &yaml).expect("write");
                let hup = std::process::Command::new("kill")
                    .args(["-HUP", &pid])
                    .status();
                assert!(hup.expect("kill").success());
            }
            if valid {
                serving += 1;
                let want = serving;
                eventually("the new version is served", RELOAD_ALLOWANCE, || async {
                    version(&cluster).await == want
                })
                .await;
            } else {
                eventually("the refusal is counted", RELOAD_ALLOWANCE, || async {
                    cluster
                        .proxy()
                        .metric("shardgate_topology_reload_errors_total")
                        .await
                        > errors
                })
                .await;
                assert_eq!(
                    version(&cluster).await,
                    serving,
                    "a refused topology changes nothing"
                );
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let done: u64 = join_all(clients).await.into_iter().sum();
        assert!(
            done > 1000,
            "the clients ran throughout ({done} statements)"
        );
        assert_eq!(serving, 71);
        let log = cluster.proxy_stderr();
        assert!(log.contains("source=\"SIGHUP\""), "SIGHUP reloads happened");
        assert!(
            log.contains("source=\"file change\""),
            "file reloads happened"
        );
    })
    .await;
}

#[tokio::test]
async fn a_pin_moves_new_statements_at_once_while_an_open_transaction_keeps_its_snapshot() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let tenant = 77;
        let old = cluster.shard_for("orders", tenant).clone();
        let new = cluster.another_shard(&old.name);
        let mut txn = cluster.proxy_conn().await;
        txn.query_drop("BEGIN").await.expect("begin");
        txn.query_drop(insert_order(1, tenant, "in-txn"))
            .await
            .expect("insert");
        // The admin endpoint: a stale version and an invalid topology are refused with the reason.
        let put = |yaml: String| {
            let port = cluster.proxy().admin_port();
            async move { http::request(port, "PUT", "/topology", &yaml).await }
        };
        let (status, body) = put(topology_with(&cluster, 1, &[(tenant, &new.name)])).await;
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("not above"), "{body}");
        let (status, body) = put(topology_with(&cluster, 2, &[(tenant, "nowhere")])).await;
        assert_eq!(status, 409, "{body}");
        let (status, body) = put(topology_with(&cluster, 2, &[(tenant, &new.name)])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(version(&cluster).await, 2);
        // Written back to the file, so a restart serves it too.
        let file =
            std::fs::read_to_string(cluster.config_dir().join("topology.yaml")).expect("read");
        assert!(file.starts_with("version: 2"), "{file}");
        let (_, served) = cluster.proxy().admin_get("/topology").await;
        assert!(
            served.contains(&new.name) && served.contains("77"),
            "{served}"
        );
        // New statements route by the new pin at once.
        let mut other = cluster.proxy_conn().await;
        other
            .query_drop(insert_order(2, tenant, "after-pin"))
            .await
            .expect("insert after the pin");
        let on_new: Vec<String> = cluster
            .query_shard(
                &new,
                &format!("SELECT note FROM orders WHERE tenant_id = {tenant}"),
            )
            .await;
        assert_eq!(on_new, ["after-pin"]);
        // The open transaction still routes on the snapshot it started with: it sees its own row, on the old shard.
        let mine: Vec<String> = txn
            .query(format!(
                "SELECT note FROM orders WHERE tenant_id = {tenant}"
            ))
            .await
            .expect("select in txn");
        assert_eq!(mine, ["in-txn"]);
        txn.query_drop("COMMIT").await.expect("commit");
        let on_old: Vec<String> = committed_notes(&cluster, tenant).await;
        assert_eq!(on_old, ["in-txn"]);
        // After COMMIT the session routes on the new snapshot.
        let now: Vec<String> = txn
            .query(format!(
                "SELECT note FROM orders WHERE tenant_id = {tenant}"
            ))
            .await
            .expect("select after commit");
        assert_eq!(now, ["after-pin"]);
        assert_eq!(
            cluster
                .proxy()
                .metric("shardgate_topology_reloads_total")
                .await,
            1.0
        );
        assert_eq!(
            cluster
                .proxy()
                .metric("shardgate_topology_reload_errors_total")
                .await,
            2.0
        );
    })
    .await;
}

#[tokio::test]
async fn shardctl_pins_and_unpins_a_tenant_through_the_admin_endpoint() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let tenant = 55;
        let home = cluster.shard_for("orders", tenant).clone();
        let away = cluster.another_shard(&home.name);
        let admin = format!("127.0.0.1:{}", cluster.proxy().admin_port());
        let pin = |shard: Option<String>| {
            let admin = admin.clone();
            tokio::task::spawn_blocking(move || {
                use shardctl::topology::pin::{pin_via_admin, tenant_of};
                pin_via_admin(&admin, tenant_of("55"), shard.as_deref())
            })
        };
        let answer = pin(Some(away.name.clone()))
            .await
            .expect("task")
            .expect("pin");
        assert!(answer.contains("version 2"), "{answer}");
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, tenant, "pinned"))
            .await
            .expect("insert");
        let rows: Vec<String> = cluster
            .query_shard(
                &away,
                &format!("SELECT note FROM orders WHERE tenant_id = {tenant}"),
            )
            .await;
        assert_eq!(rows, ["pinned"], "routed to the pinned shard");
        let answer = pin(None).await.expect("task").expect("unpin");
        assert!(answer.contains("version 3"), "{answer}");
        conn.query_drop(insert_order(2, tenant, "hashed"))
            .await
            .expect("insert");
        let rows: Vec<String> = cluster
            .query_shard(
                &home,
                &format!("SELECT note FROM orders WHERE tenant_id = {tenant}"),
            )
            .await;
        assert_eq!(rows, ["hashed"], "back where the hash sends it");
        let refused = pin(Some("nowhere".to_string())).await.expect("task");
        assert!(
            refused.is_err(),
            "an invalid pin is refused before it is sent"
        );
    })
    .await;
}
