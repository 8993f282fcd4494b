//! A cutover that cannot fence the source in time (an open transaction holds a metadata lock on a source table)
//! aborts: statements held meanwhile go to the source, which stays the owner; the open transaction commits there;
//! a later cutover succeeds and carries that transaction's row over.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::check::{self, Place};
use super::data::{ROW_COLUMNS, TABLES};
use super::workload::{Key, Row, Settings, Workload};
use super::{MOVING, move_setup, run_move};
use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded};

/// A bulk id of [`MOVING`]'s first table no client touches (they stay at or below `touch`).
const OPEN_ID: i64 = 5_000;

/// A light load: 4 clients.
const LIGHT: Settings = Settings {
    clients: 4,
    pause: Duration::from_millis(10),
    limit: Duration::from_secs(120),
    touch: 4_000,
};

/// The open transaction's row on `place`, read directly.
async fn open_row(cluster: &Cluster, place: &Place) -> Option<Row> {
    let rows: Vec<(i64, Option<String>, String, String)> = cluster.backends()[place.backend]
        .query(
            Some(&place.database),
            &format!(
                "SELECT {ROW_COLUMNS} FROM `{}` WHERE tenant_id = {MOVING} AND id = {OPEN_ID}",
                TABLES[0]
            ),
        )
        .await;
    rows.into_iter()
        .next()
        .map(|(ver, note, created_at, uid)| Row {
            ver,
            note,
            created_at,
            uid,
        })
}

#[tokio::test]
async fn a_cutover_that_cannot_drain_in_time_aborts_and_traffic_stays_on_the_source() {
    bounded(async {
        let setup = move_setup([OPEN_ID, 1_000, 1_000], [300, 300, 300]).await;
        let cluster = &setup.cluster;
        let first = check::served_topology(cluster).await;
        let source = check::place_of(cluster, &first, &setup.source);
        let target = check::place_of(cluster, &first, &setup.target);
        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(cluster, &setup.tenants, LIGHT);
        // The hold bound is the workflow's (`cutover` takes none of its own): 1 s.
        let extra = ["--stop-after", "verify", "--hold-ms", "1000"];
        run_move(&ctl, "abort42", &setup.target, &extra)
            .await
            .assert_ok();
        assert_eq!(ctl.status("abort42").await.phase(), "verify");

        // An open transaction through the proxy on the moving tenant's source table: it holds a metadata lock
        // there until it ends, so nothing can change that table's triggers meanwhile.
        let mut txn = cluster.proxy_conn().await;
        txn.query_drop("BEGIN").await.expect("begin");
        txn.query_drop(format!(
            "UPDATE `{}` SET ver = ver + 1, note = 'in-open-txn', created_at = NOW(6), \
             uid = UUID() \
             WHERE tenant_id = {MOVING} AND id = {OPEN_ID}",
            TABLES[0]
        ))
        .await
        .expect("the update in the open transaction");
        let cut = ctl.run(&["cutover", "--workflow", "abort42"], &[]).await;
        assert_eq!(
            cut.code(),
            Some(1),
            "the cutover could not fence the source: exit 1\nstdout:\n{}\nstderr:\n{}",
            cut.stdout,
            cut.stderr
        );
        let record = ctl.status("abort42").await;
        assert_eq!(record.phase(), "verify", "back to verify: {:?}", record.0);
        let cutovers = record.cutovers();
        let last = cutovers.last().expect("the attempt is recorded");
        assert_eq!(last["outcome"], "aborted", "{cutovers:?}");
        let reason = last["reason"].as_str().unwrap_or_default().to_string();
        assert!(!reason.is_empty(), "the abort says why: {last}");
        let last_error = record.str("last_error").unwrap_or_default();
        assert!(
            !last_error.is_empty(),
            "last_error says why: {:?}",
            record.0
        );
        println!(
            "aborted after {:?}: reason {reason:?}; last_error {last_error:?}; \
             attempt {last}",
            cut.took
        );

        let topology = check::served_topology(cluster).await;
        check::assert_unpinned_on(&topology, MOVING, &setup.source, "after the abort");
        txn.query_drop("COMMIT")
            .await
            .expect("the open transaction commits after the abort");
        let committed = open_row(cluster, &source)
            .await
            .expect("the row is on the source");
        assert_eq!(
            (committed.ver, committed.note.as_deref()),
            (1, Some("in-open-txn"))
        );

        let second = ctl.run(&["cutover", "--workflow", "abort42"], &[]).await;
        second.assert_ok();
        let record = ctl.status("abort42").await;
        assert_eq!(record.phase(), "switched", "{:?}", record.0);
        assert_eq!(
            record.cutovers().last().map(|c| c["outcome"].clone()),
            Some("switched".into())
        );
        let mut report = load.stop().await;
        report.assert_clean(false);
        let topology = check::served_topology(cluster).await;
        assert_eq!(
            check::owner_name(&topology, MOVING),
            setup.target,
            "the second cutover switched"
        );
        assert_eq!(
            open_row(cluster, &target).await,
            Some(committed.clone()),
            "the committed row moved over"
        );
        report.ledger.insert(
            Key {
                table: 0,
                tenant: MOVING,
                id: OPEN_ID,
            },
            Some(committed),
        );
        let compared = check::rows_match_ledger(cluster, &topology, &setup.tenants, &report).await;
        println!(
            "{} operations, {compared} rows compared; held statements {:?}, hold timeouts {:?}",
            report.ops,
            super::metric_sum(cluster, "shardgate_reshard_held_statements_total").await,
            super::metric_sum(cluster, "shardgate_reshard_hold_timeouts_total").await
        );
    })
    .await;
}
