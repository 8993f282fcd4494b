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
        let mut args: Vec<String> = [
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
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(ctl.admin_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = ctl.run(&args, &[]).await;
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
