//! A shard splits in two under load: afterwards the source shard is gone from the topology, each new shard holds
//! exactly the tenants the new topology routes to it, every acknowledged write is there, and nothing is left on
//! the source.

use super::check::{self, Place};
use super::data::{Tenant, create_tables, keyspace_byte, load_bulk, tenants_on};
use super::workload::Workload;
use super::{LOAD, metric_sum};
use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded};

#[tokio::test]
async fn a_shard_splits_under_load() {
    bounded(async {
        // Shards -40 and 40-80 on db0, 80-c0 and c0- on db1; 40-80 splits onto db1.
        let cluster = Cluster::builder(2, 4).start().await;
        create_tables(&cluster, 64).await;
        // Two tenants of 40-80 on each side of 60.
        let on_source = tenants_on(&cluster, "40-80", 1, 400);
        let (mut low, mut high): (Vec<u64>, Vec<u64>) = on_source
            .into_iter()
            .partition(|t| keyspace_byte(&cluster, *t) < 0x60);
        low.truncate(2);
        high.truncate(2);
        assert_eq!((low.len(), high.len()), (2, 2), "tenants on both halves");
        let mut tenants: Vec<Tenant> = low
            .iter()
            .chain(&high)
            .map(|&id| Tenant {
                id,
                bulk: [3_000, 2_000, 1_000],
                moving: true,
            })
            .collect();
        for shard in ["-40", "80-c0"] {
            tenants.push(Tenant {
                id: tenants_on(&cluster, shard, 1, 1)[0],
                bulk: [500, 500, 500],
                moving: false,
            });
        }
        load_bulk(&cluster, &tenants).await;

        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(&cluster, &tenants, LOAD);
        let run = ctl
            .run_creating(&[
                "split",
                "--workflow",
                "split40",
                "--shard",
                "40-80",
                "--into",
                "40-60,60-80",
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

        let record = ctl.status("split40").await;
        record.assert_ended("complete");
        assert_eq!(record.str("kind").as_deref(), Some("split"));
        let topology = check::served_topology(&cluster).await;
        let names: Vec<&str> = topology.shards().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["-40", "40-60", "60-80", "80-c0", "c0-"],
            "40-80 replaced by its halves"
        );
        check::no_moves_left(&topology);
        for (half, tenants) in [("40-60", &low), ("60-80", &high)] {
            let place = check::place_of(&cluster, &topology, half);
            assert_eq!(place.backend, 1, "{half} lives on db1");
            assert_eq!(
                place.database,
                format!("app_{}", half.replace('-', "_")),
                "the default database name"
            );
            for t in tenants.iter() {
                assert_eq!(
                    check::owner_name(&topology, *t),
                    half,
                    "tenant {t} routes to {half}"
                );
            }
        }
        let compared = check::rows_match_ledger(&cluster, &topology, &tenants, &report).await;
        // The source database is no longer in the topology: it is checked as an extra place, and must be empty.
        let source = Place {
            backend: 0,
            database: cluster.shard_named("40-80").database.clone(),
        };
        let extra = std::slice::from_ref(&source);
        let counts = check::rows_only_on_owners(&cluster, &topology, &tenants, extra).await;
        assert_eq!(
            counts.get(&source),
            Some(&0),
            "nothing left on the source: {counts:?}"
        );
        for half in ["40-60", "60-80"] {
            let place = check::place_of(&cluster, &topology, half);
            assert!(counts[&place] > 0, "{half} holds rows: {counts:?}");
        }
        check::no_triggers_left(&cluster).await;
        println!(
            "split: {} operations, {} ledger keys, {compared} rows compared, \
             rows per place {counts:?}; held statements: {:?}; cutovers: {:?}",
            report.ops,
            report.ledger.len(),
            metric_sum(&cluster, "shardgate_reshard_held_statements_total").await,
            record.cutovers()
        );
    })
    .await;
}
