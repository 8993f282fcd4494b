//! A big customer moves to a shard of its own, created by the workflow: a dedicated shard that owns no key range
//! and holds only the tenants pinned to it.

use mysql_async::prelude::Queryable;

use super::workload::Workload;
use super::{LOAD, MOVING, check_completed_move, move_setup};
use crate::harness::bounded;
use crate::harness::shardctl::Shardctl;

#[tokio::test]
async fn a_tenant_moves_under_load_to_a_dedicated_shard_the_workflow_creates() {
    bounded(async {
        let mut setup = move_setup([6_000, 4_000, 2_000], [500, 500, 500]).await;
        let ctl = Shardctl::new(setup.cluster.proxy());
        let load = Workload::start(&setup.cluster, &setup.tenants, LOAD);
        let moving = MOVING.to_string();
        let run = ctl
            .run_creating(&[
                "move-tenant",
                "--workflow",
                "own42",
                "--tenant",
                &moving,
                "--to",
                "big42",
                "--backend",
                "db1",
                "--stop-after",
                "complete",
                "--chunk-rows",
                "500",
            ])
            .await;
        let report = load.stop().await;
        run.assert_ok();
        report.assert_clean(false);
        assert_eq!(ctl.status("own42").await.phase(), "complete");

        // The new shard is in the topology, dedicated, on db1, with the tenant pinned to it.
        let (_, yaml) = setup.cluster.proxy().admin_get("/topology").await;
        let spec = shardgate_topology::TopologySpec::from_yaml_str(&yaml).expect("served topology");
        let shard = spec
            .shards
            .iter()
            .find(|s| s.name == "big42")
            .expect("the dedicated shard");
        assert!(shard.dedicated, "{shard:?}");
        assert_eq!(
            (shard.backend.as_str(), shard.database.as_str()),
            ("db1", "app_big42")
        );
        setup.target = "big42".to_string();
        check_completed_move(&setup, &report).await;

        // Statements reaching every shard count the dedicated shard's rows once.
        let mut conn = setup.cluster.proxy_conn().await;
        let through: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM `orders`")
            .await
            .expect("scatter");
        let mut direct = 0;
        for place in super::check::all_places(
            &setup.cluster,
            &super::check::served_topology(&setup.cluster).await,
            &[],
        ) {
            let n: Vec<u64> = setup.cluster.backends()[place.backend]
                .query(Some(&place.database), "SELECT COUNT(*) FROM `orders`")
                .await;
            direct += n.first().copied().unwrap_or(0);
        }
        assert_eq!(
            through,
            Some(direct),
            "every shard counted once, the dedicated one included"
        );
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_move_to_a_new_dedicated_shard_removes_the_shard_and_its_database() {
    bounded(async {
        let setup = move_setup([3_000, 2_000, 1_000], [200, 200, 200]).await;
        let ctl = Shardctl::new(setup.cluster.proxy());
        let moving = MOVING.to_string();
        ctl.run_creating(&[
            "move-tenant",
            "--workflow",
            "own43",
            "--tenant",
            &moving,
            "--to",
            "big43",
            "--backend",
            "db1",
            "--stop-after",
            "verify",
        ])
        .await
        .assert_ok();
        let databases = |names: Vec<String>| names.iter().any(|n| n == "app_big43");
        let db1 = &setup.cluster.backends()[1];
        assert!(
            databases(db1.query(None, "SHOW DATABASES").await),
            "the copy exists before the cancel"
        );
        let (_, yaml) = setup.cluster.proxy().admin_get("/topology").await;
        assert!(
            yaml.contains("big43"),
            "the new shard is served while the copy runs"
        );

        ctl.run(&["cancel", "--workflow", "own43"], &[])
            .await
            .assert_ok();
        assert_eq!(ctl.status("own43").await.phase(), "cancelled");
        let (_, yaml) = setup.cluster.proxy().admin_get("/topology").await;
        assert!(
            !yaml.contains("big43"),
            "the shard left the topology:\n{yaml}"
        );
        assert!(!yaml.contains("moves:"), "no move left:\n{yaml}");
        assert!(
            !databases(db1.query(None, "SHOW DATABASES").await),
            "its database is dropped"
        );
        super::check::no_triggers_left(&setup.cluster).await;
        // The tenant still reads its rows where they always were.
        let mut conn = setup.cluster.proxy_conn().await;
        let n: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM `orders` WHERE tenant_id = {MOVING}"
            ))
            .await
            .expect("select");
        assert_eq!(n, Some(3_000));
    })
    .await;
}
