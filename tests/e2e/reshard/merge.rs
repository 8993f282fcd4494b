//! Two adjacent shards merge into one new shard under load: afterwards the topology lists the new shard in their
//! place, its database (on the server asked for, named by default) holds exactly what the ledger expects of the
//! merged tenants, and nothing is left on the old shards.

use super::check::{self, Place};
use super::data::{Tenant, create_tables, load_bulk, tenants_on};
use super::reverse::terminal_status;
use super::workload::Workload;
use super::{LOAD, metric_sum};
use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded};

/// The shards that merge (on db1 in a cluster of 2 servers and 4 shards).
const MERGED: [&str; 2] = ["80-c0", "c0-"];

#[tokio::test]
async fn two_shards_merge_under_load() {
    bounded(async {
        // Shards -40 and 40-80 on db0, 80-c0 and c0- on db1; the last two merge into 80- on db0.
        let cluster = Cluster::builder(2, 4).start().await;
        create_tables(&cluster, 64).await;
        let mut tenants = Vec::new();
        for shard in MERGED {
            for id in tenants_on(&cluster, shard, 1, 2) {
                tenants.push(Tenant {
                    id,
                    bulk: [3_000, 2_000, 1_000],
                    moving: true,
                });
            }
        }
        assert_eq!(tenants.len(), 4, "two tenants on each merged shard");
        tenants.push(Tenant {
            id: tenants_on(&cluster, "40-80", 1, 1)[0],
            bulk: [500, 500, 500],
            moving: false,
        });
        load_bulk(&cluster, &tenants).await;

        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(&cluster, &tenants, LOAD);
        let run = ctl
            .run_creating(&[
                "merge",
                "--workflow",
                "merge80",
                "--shards",
                &MERGED.join(","),
                "--into",
                "80-",
                "--backend",
                "db0",
                "--stop-after",
                "complete",
                "--chunk-rows",
                "500",
            ])
            .await;
        let report = load.stop().await;
        run.assert_ok();
        report.assert_clean(false);

        let record = ctl.status("merge80").await;
        record.assert_ended("complete");
        assert_eq!(record.str("kind").as_deref(), Some("merge"));
        terminal_status(&ctl, "merge80").await;
        let topology = check::served_topology(&cluster).await;
        let names: Vec<&str> = topology.shards().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["-40", "40-80", "80-"],
            "80-c0 and c0- replaced by 80-"
        );
        check::no_moves_left(&topology);
        let merged = check::place_of(&cluster, &topology, "80-");
        assert_eq!(
            merged,
            Place {
                backend: 0,
                database: "app_80_".to_string()
            },
            "80- lives on db0 in the default database"
        );
        for t in tenants.iter().filter(|t| t.moving) {
            assert_eq!(
                check::owner_name(&topology, t.id),
                "80-",
                "tenant {} routes to 80-",
                t.id
            );
        }
        let compared = check::rows_match_ledger(&cluster, &topology, &tenants, &report).await;
        // The old databases are no longer in the topology; the cluster's first topology names them, so they are
        // counted too, and must be empty.
        let counts = check::rows_only_on_owners(&cluster, &topology, &tenants, &[]).await;
        for shard in MERGED {
            let spec = cluster.shard_named(shard);
            let old = Place {
                backend: spec.backend,
                database: spec.database.clone(),
            };
            assert_eq!(
                counts.get(&old),
                Some(&0),
                "nothing left on {shard}: {counts:?}"
            );
        }
        assert!(counts[&merged] > 0, "80- holds rows: {counts:?}");
        check::no_triggers_left(&cluster).await;
        println!(
            "merge: {} operations, {} ledger keys, {compared} rows compared, \
             rows per place {counts:?}; held statements: {:?}; cutovers: {:?}",
            report.ops,
            report.ledger.len(),
            metric_sum(&cluster, "shardgate_reshard_held_statements_total").await,
            record.cutovers()
        );
    })
    .await;
}
