//! A fleet of two proxies following one etcd, clients writing the moving tenant through both, the controller talking
//! to one: every proxy holds and flips together (the controller waits for every proxy etcd lists), and nothing a
//! client was told is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::data::{Tenant, create_tables, load_bulk};
use super::{MOVING, check};
use crate::etcd::{Etcd, etcd_line};
use crate::harness::cluster::write_proxy_files;
use crate::harness::layout::ProxySettings;
use crate::harness::proxy::Proxy;
use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded};

/// Inserts rows of the moving tenant through `proxy` until `stop`, ids from `first` up; returns the ids the proxy
/// acknowledged and every error it answered.
async fn writer(
    proxy: mysql_async::Opts,
    first: i64,
    stop: Arc<AtomicBool>,
) -> (Vec<i64>, Vec<String>) {
    let mut conn = mysql_async::Conn::new(proxy).await.expect("connect");
    let (mut acked, mut errors) = (Vec::new(), Vec::new());
    let mut id = first;
    while !stop.load(Ordering::Relaxed) && id < first + 100_000 {
        let sql = format!(
            "INSERT INTO orders (tenant_id, id, ver, note, created_at, uid) \
             VALUES ({MOVING}, {id}, 1, 'fleet', NOW(6), UUID())"
        );
        match conn.query_drop(sql).await {
            Ok(()) => acked.push(id),
            Err(e) => errors.push(e.to_string()),
        }
        id += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (acked, errors)
}

#[tokio::test]
async fn a_tenant_moves_while_two_proxies_of_one_etcd_fleet_take_its_writes() {
    bounded(async {
        let etcd = Etcd::start().await;
        let cluster = Cluster::builder(2, 4)
            .topology_line(&etcd_line(etcd.port, "one"))
            .start()
            .await;
        create_tables(&cluster, 64).await;
        let tenants = [Tenant {
            id: MOVING,
            bulk: [3_000, 1_000, 1_000],
            moving: true,
        }];
        load_bulk(&cluster, &tenants).await;
        let source = cluster.shard_for("orders", MOVING).clone();
        let target = cluster.shard_on_another_server(&source);
        let dir = tempfile::tempdir().expect("dir");
        let settings = ProxySettings {
            topology_extra: vec![etcd_line(etcd.port, "two")],
            ..ProxySettings::default()
        };
        let config = write_proxy_files(dir.path(), cluster.topology_yaml(), &settings);
        let second = Proxy::start(&config).await.expect("second proxy");

        let stop = Arc::new(AtomicBool::new(false));
        let one = tokio::spawn(writer(cluster.proxy_opts(), 1_000_000_000, Arc::clone(&stop)));
        let two = tokio::spawn(writer(second.opts(), 2_000_000_000, Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The controller is given the first proxy only: it finds the second through etcd.
        let ctl = Shardctl::new(cluster.proxy());
        let moving = MOVING.to_string();
        ctl.run_creating(&[
            "move-tenant",
            "--workflow",
            "fleet42",
            "--tenant",
            &moving,
            "--to",
            &target.name,
            "--stop-after",
            "complete",
        ])
        .await
        .assert_ok();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        let (mut acked, mut errors) = one.await.expect("writer");
        let (more, more_errors) = two.await.expect("writer");
        acked.extend(more);
        errors.extend(more_errors);
        assert!(errors.is_empty(), "clients saw errors: {errors:?}");
        assert!(acked.len() > 100, "the writers wrote ({} rows)", acked.len());

        // Both proxies serve the flip, and route the tenant to the target.
        let (_, served_two) = second.admin_get("/topology").await;
        assert!(served_two.contains(&format!("shard: {}", target.name)), "{served_two}");
        let topology = check::served_topology(&cluster).await;
        assert_eq!(check::owner_name(&topology, MOVING), target.name);
        // Every acknowledged row is on the target, none is left on the source.
        let ids: Vec<i64> = cluster
            .query_shard(
                &target,
                &format!("SELECT id FROM orders WHERE tenant_id = {MOVING} AND id >= 1000000000 ORDER BY id"),
            )
            .await;
        acked.sort();
        assert_eq!(ids, acked, "the target holds exactly the acknowledged inserts");
        let left: Vec<u64> = cluster
            .query_shard(&source, &format!("SELECT COUNT(*) FROM orders WHERE tenant_id = {MOVING}"))
            .await;
        assert_eq!(left, [0], "nothing of the tenant is left on the source");
        check::no_triggers_left(&cluster).await;
    })
    .await;
}
