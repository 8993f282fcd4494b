//! A workflow cancelled halfway through its copy leaves the source exactly as it was, and nothing of itself behind:
//! no copy on the target, no move in the topology, no trigger.

use std::time::Duration;

use super::check::{self, Place};
use super::data::{TABLES, Tenant};
use super::{MOVING, move_args, move_setup};
use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded};

/// How long the controller may take to reach a phase.
const MINUTE: Duration = Duration::from_secs(60);

/// `CHECKSUM TABLE` of every table of `place`, and per tenant its row count and a hash of its rows.
async fn fingerprint(cluster: &Cluster, place: &Place, tenants: &[Tenant]) -> Vec<String> {
    let backend = &cluster.backends()[place.backend];
    let tables = TABLES.map(|t| format!("`{t}`")).join(", ");
    let mut out: Vec<String> = backend
        .query::<(String, Option<u64>)>(
            Some(&place.database),
            &format!("CHECKSUM TABLE {tables} EXTENDED"),
        )
        .await
        .into_iter()
        .map(|(table, sum)| format!("{table}: {sum:?}"))
        .collect();
    for tenant in tenants {
        for table in TABLES {
            let (rows, hash): (u64, Option<u64>) = backend
                .query(
                    Some(&place.database),
                    &format!(
                        "SELECT COUNT(*), \
                         BIT_XOR(CRC32(CONCAT_WS('|', id, ver, note, created_at, uid))) \
                         FROM `{table}` WHERE tenant_id = {}",
                        tenant.id
                    ),
                )
                .await
                .pop()
                .expect("one row");
            out.push(format!(
                "{table} tenant {}: {rows} rows, {hash:?}",
                tenant.id
            ));
        }
    }
    out
}

/// Rows of [`MOVING`] in `place`.
async fn moving_rows(cluster: &Cluster, place: &Place) -> u64 {
    let mut total = 0;
    for table in TABLES {
        let n: Vec<u64> = cluster.backends()[place.backend]
            .query(
                Some(&place.database),
                &format!("SELECT COUNT(*) FROM `{table}` WHERE tenant_id = {MOVING}"),
            )
            .await;
        total += n.first().copied().unwrap_or(0);
    }
    total
}

#[tokio::test]
async fn a_cancelled_workflow_leaves_the_source_untouched() {
    bounded(async {
        let setup = move_setup([12_000, 8_000, 4_000], [500, 500, 500]).await;
        let cluster = &setup.cluster;
        let first = check::served_topology(cluster).await;
        let source = check::place_of(cluster, &first, &setup.source);
        let target = check::place_of(cluster, &first, &setup.target);
        let before_source = fingerprint(cluster, &source, &setup.tenants).await;
        let before_target = fingerprint(cluster, &target, &setup.tenants).await;
        assert_eq!(moving_rows(cluster, &target).await, 0);

        let ctl = Shardctl::new(cluster.proxy());
        let args = move_args(
            &ctl,
            "cancel42",
            &setup.target,
            &["--rows-per-second", "2000", "--chunk-rows", "200"],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut running = ctl.spawn(&args, &[]);
        let half = ctl
            .wait_for("cancel42", "half copied", MINUTE, Some(&mut running), |r| {
                let estimated = r.tables_sum("rows_estimated");
                let copied = r.tables_sum("rows_copied");
                r.phase() == "backfill" && estimated > 0 && copied * 2 >= estimated
            })
            .await;
        let on_target = moving_rows(cluster, &target).await;
        assert!(on_target > 0, "the copy had begun on the target");
        // The running controller is this test's child: it must be reaped as it exits (as an operator's shell
        // would), or its pid stays in /proc and `cancel` waits for it forever.
        let (cancel, stopped) = tokio::join!(
            ctl.run(&["cancel", "--workflow", "cancel42"], &[]),
            running.wait(MINUTE)
        );
        cancel.assert_ok();
        let record = ctl
            .wait_for("cancel42", "cancelled", MINUTE, None, |r| {
                r.phase() == "cancelled"
            })
            .await;
        println!(
            "cancelled at {} of {} rows ({on_target} rows on the target); \
             the controller exited {:?}; record: {}",
            half.tables_sum("rows_copied"),
            half.tables_sum("rows_estimated"),
            stopped.code(),
            record.0
        );
        assert_eq!(ctl.status("cancel42").await.phase(), "cancelled");

        assert_eq!(
            moving_rows(cluster, &target).await,
            0,
            "the target copy is gone"
        );
        assert_eq!(
            fingerprint(cluster, &target, &setup.tenants).await,
            before_target,
            "the target's own tenants are untouched"
        );
        assert_eq!(
            fingerprint(cluster, &source, &setup.tenants).await,
            before_source,
            "the source is exactly as before"
        );
        let topology = check::served_topology(cluster).await;
        check::no_moves_left(&topology);
        assert!(
            topology.pins().is_empty(),
            "no pin left: {}",
            topology.to_yaml()
        );
        assert_eq!(check::owner_name(&topology, MOVING), setup.source);
        check::no_triggers_left(cluster).await;
    })
    .await;
}
