//! An operator steering a tenant move under load: `reverse` after the cutover sends traffic back to the source with
//! every write the target took meanwhile, and the move can cut over again and complete; `pause` stops the copy
//! where it is while the controller waits, and lifting the pause lets that controller finish. Either way no
//! acknowledged write is lost and no client sees an error.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::check::{self, Place};
use super::data::{ROW_COLUMNS, TABLES};
use super::workload::{Key, Row, Settings, Workload};
use super::{LOAD, MOVING, check_completed_move, move_args, move_setup, run_move};
use crate::harness::deadline::eventually;
use crate::harness::shardctl::{Finished, Shardctl};
use crate::harness::{Cluster, bounded};

/// How long the controller may take to reach a state.
const MINUTE: Duration = Duration::from_secs(60);

/// First id of the rows this test writes itself (far above the clients' ids).
const MARK_IDS: i64 = 2_000_000_000;

/// Bulk ids of [`MOVING`]'s first table that no client touches (they stay at or below `touch`): one this test
/// updates, and the next one it deletes.
const MARK_UPDATED: i64 = 5_000;

/// A light load for the slow copy: 4 clients.
const LIGHT: Settings = Settings {
    clients: 4,
    pause: Duration::from_millis(10),
    limit: Duration::from_secs(120),
    touch: 4_000,
};

/// The row `key` as `place` holds it, read directly.
async fn row_at(cluster: &Cluster, place: &Place, key: Key) -> Option<Row> {
    let rows: Vec<(i64, Option<String>, String, String)> = cluster.backends()[place.backend]
        .query(
            Some(&place.database),
            &format!(
                "SELECT {ROW_COLUMNS} FROM `{}` WHERE tenant_id = {} AND id = {}",
                TABLES[key.table], key.tenant, key.id
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

/// Writes through the proxy to keys of [`MOVING`] no client owns: a fresh row in each table, an update of one
/// bulk row and the delete of another; returns each key with the state the proxy reads back.
async fn write_marks(cluster: &Cluster) -> Vec<(Key, Option<Row>)> {
    let mut conn = cluster.proxy_conn().await;
    let mut keys = Vec::new();
    let mut statements = Vec::new();
    for (table, name) in TABLES.iter().enumerate() {
        let id = MARK_IDS + table as i64;
        keys.push(Key {
            table,
            tenant: MOVING,
            id,
        });
        statements.push(format!(
            "INSERT INTO `{name}` (tenant_id, id, ver, note, created_at, uid) \
             VALUES ({MOVING}, {id}, 1, 'mark-{table}', NOW(6), UUID())"
        ));
    }
    for (id, sql) in [
        (
            MARK_UPDATED,
            format!(
                "UPDATE `{}` SET ver = 7, note = 'mark-updated', created_at = NOW(6), \
                 uid = UUID() WHERE tenant_id = {MOVING} AND id = {MARK_UPDATED}",
                TABLES[0]
            ),
        ),
        (
            MARK_UPDATED + 1,
            format!(
                "DELETE FROM `{}` WHERE tenant_id = {MOVING} AND id = {}",
                TABLES[0],
                MARK_UPDATED + 1
            ),
        ),
    ] {
        keys.push(Key {
            table: 0,
            tenant: MOVING,
            id,
        });
        statements.push(sql);
    }
    let mut marks = Vec::new();
    for (key, sql) in keys.into_iter().zip(statements) {
        conn.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(conn.affected_rows(), 1, "{sql}");
        let row: Option<(i64, Option<String>, String, String)> = conn
            .query_first(format!(
                "SELECT {ROW_COLUMNS} FROM `{}` WHERE tenant_id = {MOVING} AND id = {}",
                TABLES[key.table], key.id
            ))
            .await
            .expect("read a mark back through the proxy");
        let row = row.map(|(ver, note, created_at, uid)| Row {
            ver,
            note,
            created_at,
            uid,
        });
        marks.push((key, row));
    }
    let _ = conn.disconnect().await;
    marks
}

/// The phase `status` prints for a terminal (`workflow ID: … — phase PHASE[, PAUSED] (…)`).
pub(super) fn terminal_phase(status: &Finished) -> String {
    let first = status.stdout.lines().next().unwrap_or_default();
    let (_, rest) = first
        .split_once(" — phase ")
        .unwrap_or_else(|| panic!("status printed no phase:\n{}", status.stdout));
    rest.split([',', ' '])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `status` for a terminal, after checking that its phase is the one `status --json` gives.
pub(super) async fn terminal_status(ctl: &Shardctl, workflow: &str) -> Finished {
    let text = ctl.run(&["status", "--workflow", workflow], &[]).await;
    text.assert_ok();
    let json = ctl.status(workflow).await;
    assert_eq!(
        terminal_phase(&text),
        json.phase(),
        "status and status --json agree on the phase:\n{}",
        text.stdout
    );
    text
}

/// The outcomes of the record's cutovers, in order.
fn outcomes(record: &crate::harness::shardctl::Record) -> Vec<String> {
    record
        .cutovers()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What the controller `pid` wrote on stderr so far (its output file, found through `/proc`).
fn stderr_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/2"))
        .and_then(std::fs::read_to_string)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_switched_move_reverses_under_load_and_cuts_over_again() {
    bounded(async {
        let setup = move_setup([10_000, 6_000, 4_000], [500, 500, 500]).await;
        let cluster = &setup.cluster;
        let first = check::served_topology(cluster).await;
        let source = check::place_of(cluster, &first, &setup.source);
        let target = check::place_of(cluster, &first, &setup.target);
        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(cluster, &setup.tenants, LOAD);
        let extra = ["--stop-after", "switched", "--chunk-rows", "1000"];
        run_move(&ctl, "rev42", &setup.target, &extra)
            .await
            .assert_ok();
        let record = ctl.status("rev42").await;
        assert_eq!(record.phase(), "switched", "{:?}", record.0);
        let topology = check::served_topology(cluster).await;
        assert_eq!(check::owner_name(&topology, MOVING), setup.target);

        // Writes on the target after the switch: this test's own, and the clients' for a while.
        let marks = write_marks(cluster).await;
        for (key, row) in &marks {
            assert_eq!(
                &row_at(cluster, &target, *key).await,
                row,
                "{key:?} written on the target"
            );
            assert_ne!(
                &row_at(cluster, &source, *key).await,
                row,
                "{key:?} not on the source before the reverse"
            );
        }
        let before = load.done();
        eventually("the clients write on the target", MINUTE, || async {
            load.done() >= before + 200
        })
        .await;

        let reverse = ctl.run(&["reverse", "--workflow", "rev42"], &[]).await;
        reverse.assert_ok();
        let record = ctl.status("rev42").await;
        assert_eq!(record.phase(), "reversed", "{:?}", record.0);
        assert_eq!(outcomes(&record), ["switched", "reversed"]);
        let topology = check::served_topology(cluster).await;
        check::assert_unpinned_on(&topology, MOVING, &setup.source, "after the reverse");
        for (key, row) in &marks {
            assert_eq!(
                &row_at(cluster, &source, *key).await,
                row,
                "{key:?}, written on the target after the switch, is on the source"
            );
        }
        let text = terminal_status(&ctl, "rev42").await;
        assert!(
            text.stdout.contains("reversed at"),
            "status lists the reverse:\n{}",
            text.stdout
        );

        // Clients write on the source again, then the move cuts over a second time and completes.
        let before = load.done();
        eventually("the clients write on the source", MINUTE, || async {
            load.done() >= before + 200
        })
        .await;
        let cutover = ctl.run(&["cutover", "--workflow", "rev42"], &[]).await;
        cutover.assert_ok();
        let record = ctl.status("rev42").await;
        assert_eq!(record.phase(), "switched", "{:?}", record.0);
        assert_eq!(outcomes(&record), ["switched", "reversed", "switched"]);
        ctl.run(&["complete", "--workflow", "rev42"], &[])
            .await
            .assert_ok();
        let mut report = load.stop().await;
        report.assert_clean(false);
        let record = ctl.status("rev42").await;
        assert_eq!(record.phase(), "complete", "{:?}", record.0);
        report.ledger.extend(marks);
        let compared = check_completed_move(&setup, &report).await;
        println!(
            "{} operations, {} ledger keys, {compared} rows compared; cutovers: {:?}",
            report.ops,
            report.ledger.len(),
            record.cutovers()
        );
    })
    .await;
}

#[tokio::test]
async fn pause_stops_the_copy_and_resume_finishes_it() {
    bounded(async {
        let setup = move_setup([10_000, 6_000, 4_000], [300, 300, 300]).await;
        let cluster = &setup.cluster;
        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(cluster, &setup.tenants, LIGHT);
        let extra = [
            "--rows-per-second",
            "2000",
            "--chunk-rows",
            "200",
            "--stop-after",
            "complete",
        ];
        let args = move_args(&ctl, "pause42", &setup.target, &extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut running = ctl.spawn(&args, &[]);
        let pid = running.pid().expect("the controller runs");
        ctl.wait_for(
            "pause42",
            "some rows copied",
            MINUTE,
            Some(&mut running),
            |r| r.phase() == "backfill" && r.tables_sum("rows_copied") >= 2_000,
        )
        .await;
        ctl.run(&["pause", "--workflow", "pause42"], &[])
            .await
            .assert_ok();
        // The controller stops at its next chunk and says so.
        eventually("the controller pauses", MINUTE, || async {
            stderr_of(pid).contains("backfill: paused")
        })
        .await;
        let copied = |ctl: &Shardctl| {
            ctl.record("pause42")
                .expect("the record")
                .tables_sum("rows_copied")
        };
        let paused_at = copied(&ctl);
        // Nothing to wait for: the claim is that nothing happens in this second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let later = copied(&ctl);
        assert_eq!(paused_at, later, "the copy stopped while paused");
        assert!(!running.has_exited(), "the paused controller waits");
        let estimated = ctl.status("pause42").await.tables_sum("rows_estimated");
        assert!(
            paused_at < estimated,
            "paused halfway ({paused_at} of {estimated})"
        );
        let text = terminal_status(&ctl, "pause42").await;
        assert_eq!(terminal_phase(&text), "backfill");
        assert!(
            text.stdout.contains("PAUSED")
                && text.stdout.contains(&format!("controller pid {pid}")),
            "status shows the pause and the controller:\n{}",
            text.stdout
        );

        // A second controller is refused while the first lives; the resume still lifts the pause, and the first
        // controller goes on by itself.
        let resume = ctl.run(&["resume", "--workflow", "pause42"], &[]).await;
        assert_eq!(
            resume.code(),
            Some(1),
            "resume is refused while a controller runs:\nstdout:\n{}\nstderr:\n{}",
            resume.stdout,
            resume.stderr
        );
        assert!(
            resume.stderr.contains(&format!("controller pid {pid}")),
            "the refusal names the running controller: {}",
            resume.stderr
        );
        let text = terminal_status(&ctl, "pause42").await;
        assert!(
            !text.stdout.contains("PAUSED"),
            "no longer paused:\n{}",
            text.stdout
        );
        ctl.wait_for(
            "pause42",
            "the copy goes on",
            MINUTE,
            Some(&mut running),
            |r| r.tables_sum("rows_copied") > later || r.phase() != "backfill",
        )
        .await;
        let finished = running.wait(MINUTE * 2).await;
        finished.assert_ok();
        let report = load.stop().await;
        report.assert_clean(false);

        let record = ctl.status("pause42").await;
        record.assert_ended("complete");
        let copied = record.tables_sum("rows_copied");
        assert!(copied >= 20_000, "every bulk row was copied ({copied})");
        let text = terminal_status(&ctl, "pause42").await;
        assert!(
            text.stdout.contains("no controller running"),
            "{}",
            text.stdout
        );
        let compared = check_completed_move(&setup, &report).await;
        println!(
            "paused at {paused_at} of {estimated} rows; {} operations, {compared} rows compared; \
             the controller ran {:?}",
            report.ops, finished.took
        );
    })
    .await;
}
