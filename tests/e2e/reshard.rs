//! Online resharding end to end: `shardctl reshard` moves rows between real MariaDB servers while 16 clients write
//! through the proxy, and no acknowledged write is lost, duplicated or changed (see `reshard/workload.rs` for the
//! ledger and `reshard/check.rs` for what is compared, shard by shard, afterwards).
//!
//! Here: a tenant moves under load (and the numbers a benchmark wants are printed as `BENCH:` lines), and a
//! controller killed in each phase resumes and loses nothing. `split.rs`: a shard splits under load.
//! `cancel.rs`: a cancelled workflow leaves the source as it was. `abort.rs`: a cutover that cannot fence the
//! source in time aborts and leaves traffic where it was.

mod abort;
mod cancel;
mod check;
mod data;
mod dedicated;
mod fleet;
mod merge;
mod reverse;
mod split;
mod strings;
mod workload;

use std::time::Duration;

use data::{Tenant, create_tables, load_bulk, tenants_on};
use workload::{Report, Settings, Workload, percentile};

use crate::harness::deadline::eventually;
use crate::harness::shardctl::{Finished, Shardctl};
use crate::harness::{Cluster, bounded};

/// The tenant the move tests move.
const MOVING: u64 = 42;

/// The load every test under load runs: 16 clients, one operation each every 10 ms at most.
const LOAD: Settings = Settings {
    clients: 16,
    pause: Duration::from_millis(10),
    limit: Duration::from_secs(150),
    touch: 4_000,
};

/// A cluster of 2 servers and 4 shards with the tables, tenant [`MOVING`] (bulk rows `moving_bulk`) and three
/// others (`other_bulk` each): one on the same shard, one on the target shard, one elsewhere.
struct MoveSetup {
    cluster: Cluster,
    tenants: Vec<Tenant>,
    /// The shard the tenant leaves.
    source: String,
    /// The shard it moves to, on the other server.
    target: String,
}

async fn move_setup(moving_bulk: [i64; 3], other_bulk: [i64; 3]) -> MoveSetup {
    let cluster = Cluster::builder(2, 4).start().await;
    create_tables(&cluster, 96).await;
    let source = cluster.shard_for(data::TABLES[0], MOVING).clone();
    let target = cluster.shard_on_another_server(&source);
    let third = cluster
        .shards()
        .iter()
        .find(|s| s.name != source.name && s.name != target.name)
        .expect("a third shard")
        .clone();
    let mut tenants = vec![Tenant {
        id: MOVING,
        bulk: moving_bulk,
        moving: true,
    }];
    for shard in [&source.name, &target.name, &third.name] {
        let id = tenants_on(&cluster, shard, 1000, 1)[0];
        tenants.push(Tenant {
            id,
            bulk: other_bulk,
            moving: false,
        });
    }
    load_bulk(&cluster, &tenants).await;
    MoveSetup {
        cluster,
        tenants,
        source: source.name,
        target: target.name,
    }
}

/// `move-tenant` arguments for [`MOVING`] to `target`.
fn move_args(ctl: &Shardctl, workflow: &str, target: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "move-tenant",
        "--workflow",
        workflow,
        "--tenant",
        &MOVING.to_string(),
        "--to",
        target,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(ctl.admin_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `move-tenant` of [`MOVING`] to `target` to its end.
async fn run_move(ctl: &Shardctl, workflow: &str, target: &str, extra: &[&str]) -> Finished {
    let args = move_args(ctl, workflow, target, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctl.run(&args, &[]).await
}

/// Sum of every sample of `name` (whatever its labels) in the proxy's `/metrics`; `None` when absent.
async fn metric_sum(cluster: &Cluster, name: &str) -> Option<f64> {
    let (_, text) = cluster.proxy().admin_get("/metrics").await;
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let bare = series.split('{').next()?;
            (bare == name).then(|| value.parse().ok()).flatten()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The checks every completed move ends with: the ledger on the final owners, rows nowhere else, no triggers and
/// no moves left, the tenant routed to `target`.
async fn check_completed_move(setup: &MoveSetup, report: &Report) -> u64 {
    let cluster = &setup.cluster;
    let topology = check::served_topology(cluster).await;
    assert_eq!(
        check::owner_name(&topology, MOVING),
        setup.target,
        "the tenant is routed to its new shard"
    );
    check::no_moves_left(&topology);
    let compared = check::rows_match_ledger(cluster, &topology, &setup.tenants, report).await;
    check::rows_only_on_owners(cluster, &topology, &setup.tenants, &[]).await;
    check::no_triggers_left(cluster).await;
    compared
}

#[tokio::test]
async fn a_tenant_moves_under_load_and_no_acknowledged_write_is_lost() {
    bounded(async {
        let setup = move_setup([100_000, 60_000, 40_000], [1_000, 1_000, 1_000]).await;
        let cluster = &setup.cluster;
        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(cluster, &setup.tenants, LOAD);
        let watch = ctl.watch("mv42");
        let extra = ["--stop-after", "complete", "--chunk-rows", "1000"];
        let run = run_move(&ctl, "mv42", &setup.target, &extra).await;
        let report = load.stop().await;
        run.assert_ok();
        report.assert_clean(false);

        let record = ctl.status("mv42").await;
        record.assert_ended("complete");
        let copied = record.tables_sum("rows_copied");
        assert!(copied >= 200_000, "every bulk row was copied ({copied})");
        assert!(
            record.tables_sum("rows_cleaned") >= 200_000,
            "cleanup deleted the source's copy: {:?}",
            record.tables()
        );
        let compared = check_completed_move(&setup, &report).await;

        let backfill: Duration = watch.spans("backfill").iter().map(|(a, b)| *b - *a).sum();
        let cutover = watch.spans("cutover");
        let delays = report.moving_latencies_during(&cutover);
        let held = metric_sum(cluster, "shardgate_reshard_held_statements_total").await;
        let timeouts = metric_sum(cluster, "shardgate_reshard_hold_timeouts_total").await;
        println!(
            "phases seen: {:?}; {} operations, {} ledger keys, {compared} rows compared; \
             cutovers: {:?}",
            watch.sequence(),
            report.ops,
            report.ledger.len(),
            record.cutovers()
        );
        println!(
            "BENCH: reshard_backfill rows={copied} seconds={:.2} rows_per_s={:.0} \
             copy_rate={:.0} total_s={:.2}",
            backfill.as_secs_f64(),
            copied as f64 / backfill.as_secs_f64().max(0.001),
            record.num("copy_rate"),
            run.took.as_secs_f64()
        );
        println!(
            "BENCH: reshard_cutover statements={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} \
             held_statements={} hold_timeouts={}",
            delays.len(),
            percentile(&delays, 50.0).as_secs_f64() * 1e3,
            percentile(&delays, 99.0).as_secs_f64() * 1e3,
            delays.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            held.map_or("absent".to_string(), |v| v.to_string()),
            timeouts.map_or("absent".to_string(), |v| v.to_string()),
        );
    })
    .await;
}

#[tokio::test]
async fn a_controller_killed_in_each_phase_resumes_and_loses_nothing() {
    bounded(async {
        let setup = move_setup([10_000, 6_000, 4_000], [500, 500, 500]).await;
        let cluster = &setup.cluster;
        let ctl = Shardctl::new(cluster.proxy());
        let load = Workload::start(cluster, &setup.tenants, LOAD);
        let first = move_args(&ctl, "kill42", &setup.target, &["--chunk-rows", "500"]);
        for (i, phase) in [
            "create",
            "dual_write",
            "backfill",
            "verify",
            "cutover",
            "cleanup",
        ]
        .into_iter()
        .enumerate()
        {
            let stall = format!("{phase}=4000");
            let env = [("SHARDCTL_STALL", stall.as_str())];
            let mut args: Vec<&str> = if i == 0 {
                first.iter().map(String::as_str).collect()
            } else {
                vec!["resume", "--workflow", "kill42"]
            };
            if phase == "cleanup" {
                args.extend(["--stop-after", "complete"]);
            }
            let mut running = ctl.spawn(&args, &env);
            ctl.wait_for(
                "kill42",
                &format!("the controller reaches {phase}"),
                Duration::from_secs(60),
                Some(&mut running),
                |r| r.phase() == phase,
            )
            .await;
            let killed = running.kill9().await;
            // Traffic goes on with the controller dead, in whatever state it left the proxies and the source.
            let before = load.done();
            eventually("the clients go on", Duration::from_secs(30), || async {
                load.done() >= before + 320
            })
            .await;
            assert!(
                killed.code().is_none(),
                "the controller was killed in {phase}, it did not exit: {killed:?}"
            );
            println!("killed in {phase} after {:?}", killed.took);
        }
        ctl.run(
            &["resume", "--workflow", "kill42", "--stop-after", "complete"],
            &[],
        )
        .await
        .assert_ok();
        let report = load.stop().await;
        report.assert_clean(false);
        let record = ctl.status("kill42").await;
        record.assert_ended("complete");
        let switched = record
            .cutovers()
            .iter()
            .filter(|c| c["outcome"] == "switched")
            .count();
        assert_eq!(switched, 1, "one cutover switched: {:?}", record.cutovers());
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
