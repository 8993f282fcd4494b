//! Backend faults stay their shards' problem: a crashed or hung server fails only the statements that need it,
//! with clear errors and within the timeouts, and traffic recovers by itself when it is back. Statement timeouts
//! kill the statement on the server. SIGTERM drains without cutting anything off.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tokio::task::JoinSet;

use crate::harness::deadline::eventually;
use crate::harness::expect;
use crate::harness::schema::{insert_order, start_with_orders};
use crate::harness::{Cluster, bounded, join_all};

/// ER_STATEMENT_TIMEOUT, MariaDB's own for max_statement_time.
const STATEMENT_TIMEOUT: (u16, &str) = (1969, "70100");

/// Errors a statement for a dead or hung shard may get: lost connection, cannot connect (or breaker open), no
/// connection free in time, statement timeout.
const SHARD_DOWN_CODES: &[u16] = &[1158, 1429, 1040, 1969];

/// One statement's outcome in a load run.
struct Outcome {
    tenant: u64,
    at: Duration,
    took: Duration,
    error: Option<(u16, String)>,
}

/// Two servers with four shards each; tenants 1..=64 have one row each. Returns the cluster and, per tenant,
/// whether its shard lives on server 1.
async fn two_servers(builder: crate::harness::cluster::ClusterBuilder) -> (Cluster, Vec<bool>) {
    let cluster = start_with_orders(builder).await;
    // Rows on server 1 must survive its kill -9: make its commits durable.
    cluster.backends()[1]
        .exec("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        .await;
    let mut conn = cluster.proxy_conn().await;
    let mut on_second = vec![false];
    for t in 1..=64u64 {
        conn.query_drop(insert_order(t, t, &format!("n{t}")))
            .await
            .expect("insert");
        on_second.push(cluster.shard_for("orders", t).backend == 1);
    }
    assert!(
        on_second.iter().filter(|b| **b).count() > 8,
        "both servers hold tenants"
    );
    (cluster, on_second)
}

/// Runs point selects from 8 clients for `seconds`, each statement bounded by `limit`, recording every outcome.
async fn load(cluster: &Cluster, seconds: u64, limit: Duration) -> JoinSet<Vec<Outcome>> {
    let start = Instant::now();
    let mut clients = JoinSet::new();
    for c in 0..8u64 {
        let opts = cluster.proxy_opts();
        clients.spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("login");
            let mut outcomes = Vec::new();
            let mut i = 0u64;
            while start.elapsed() < Duration::from_secs(seconds) {
                let tenant = (c * 8 + i) % 64 + 1;
                i += 1;
                let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant}");
                let began = Instant::now();
                let at = start.elapsed();
                let result = tokio::time::timeout(limit, conn.query::<String, _>(&sql)).await;
                let took = began.elapsed();
                let error = match result {
                    Err(_) => Some((0, format!("no answer within {limit:?}"))),
                    Ok(Ok(notes)) => {
                        assert_eq!(notes, [format!("n{tenant}")], "{sql}");
                        None
                    }
                    Ok(Err(mysql_async::Error::Server(e))) => Some((e.code, e.message)),
                    Ok(Err(e)) => {
                        panic!("client-side error (the proxy closed the connection?): {e}")
                    }
                };
                outcomes.push(Outcome {
                    tenant,
                    at,
                    took,
                    error,
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcomes
        });
    }
    clients
}

/// Asserts what a fault on server 1 between `fault` and `back` (seconds into the run) may and may not do.
fn check_isolation(outcomes: &[Outcome], on_second: &[bool], back: f64, limit_ms: u128) {
    let mut failed_second = 0;
    let mut healthy_max = Duration::ZERO;
    for o in outcomes {
        let second = on_second[o.tenant as usize];
        match (&o.error, second) {
            (Some((code, msg)), false) => {
                panic!(
                    "tenant {} on the healthy server failed at {:?}: {code} {msg}",
                    o.tenant, o.at
                )
            }
            (None, false) => healthy_max = healthy_max.max(o.took),
            (Some((code, msg)), true) => {
                assert!(
                    SHARD_DOWN_CODES.contains(code),
                    "unexpected error {code}: {msg}"
                );
                assert!(msg.contains("shard"), "the error names the shard: {msg}");
                assert!(
                    o.at.as_secs_f64() < back + 4.0,
                    "still failing {:?} into the run, long after the server came back: {code} {msg}",
                    o.at
                );
                failed_second += 1;
            }
            (None, true) => {}
        }
        assert!(
            o.took.as_millis() <= limit_ms,
            "a statement took {:?}",
            o.took
        );
    }
    assert!(
        failed_second > 0,
        "the fault was seen by the faulty server's tenants"
    );
    // Generous: a healthy shard's statement never waits behind the dead one (connect timeouts are seconds).
    assert!(
        healthy_max < Duration::from_millis(1500),
        "a healthy shard's statement took {healthy_max:?} during the fault"
    );
    let late: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.at.as_secs_f64() > back + 4.0)
        .collect();
    assert!(
        late.iter().any(|o| on_second[o.tenant as usize]),
        "tenants of server 1 ran again"
    );
    assert!(late.iter().all(|o| o.error.is_none()), "traffic recovered");
}

#[tokio::test]
async fn a_crashed_server_fails_only_its_shards_and_traffic_recovers_when_it_restarts() {
    bounded(async {
        let builder = Cluster::builder(2, 8)
            .pool_max_size(4)
            .pool_line("breaker_backoff_ms: 100")
            .pool_line("breaker_max_backoff_ms: 500")
            .pool_line("health_check_interval_ms: 200");
        let (mut cluster, on_second) = two_servers(builder).await;
        let clients = load(&cluster, 9, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.backend_mut(1).kill9();
        let down = cluster.proxy().admin_get("/backends");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, backends) = down.await;
        assert!(
            backends.contains("\"down\""),
            "the crashed server is marked down: {backends}"
        );
        let (_, metrics) = cluster.proxy().admin_get("/metrics").await;
        assert!(
            metrics.contains("shardgate_backend_up{backend=\"db1\""),
            "{metrics}"
        );
        assert!(
            metrics.contains("\"} 0\n"),
            "db1 is reported down: {metrics}"
        );
        let restart_at = Instant::now();
        cluster.backend_mut(1).restart().await;
        // Seconds into the load run when the server answered again (the run started about 2 s before the restart).
        let back = 2.0 + restart_at.elapsed().as_secs_f64();
        let outcomes: Vec<Outcome> = join_all(clients).await.into_iter().flatten().collect();
        check_isolation(&outcomes, &on_second, back, 10_000);
        let (_, backends) = cluster.proxy().admin_get("/backends").await;
        assert!(
            !backends.contains("\"down\""),
            "marked up again: {backends}"
        );
        // With one of two servers down the proxy stayed ready: the other's shards were served throughout.
        let (status, _) = cluster.proxy().admin_get("/readyz").await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_hung_server_fails_only_its_shards_within_the_timeouts() {
    bounded(async {
        let builder = Cluster::builder(2, 8)
            .pool_max_size(4)
            .acquire_timeout_ms(1000)
            .config_line("statement_timeout_ms: 1000")
            .pool_line("breaker_backoff_ms: 100")
            .pool_line("breaker_max_backoff_ms: 500")
            .pool_line("health_check_interval_ms: 200");
        let (cluster, on_second) = two_servers(builder).await;
        let clients = load(&cluster, 13, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.backends()[1].signal("STOP");
        tokio::time::sleep(Duration::from_secs(6)).await;
        cluster.backends()[1].signal("CONT");
        let outcomes: Vec<Outcome> = join_all(clients).await.into_iter().flatten().collect();
        // A statement waits at most the 1 s acquire timeout, then either the 3 s connect timeout or its 1 s
        // statement timeout + the 2 s a KILL gets: 4 s and a little, never the whole 6 s stop.
        check_isolation(&outcomes, &on_second, 7.0, 4_600);
    })
    .await;
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_killed_on_the_server_and_the_session_goes_on() {
    bounded(async {
        let builder = Cluster::builder(1, 2).config_line("statement_timeout_ms: 500");
        let cluster = start_with_orders(builder).await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, 3, "row"))
            .await
            .expect("insert");
        let began = Instant::now();
        let msg = expect::server_error(
            conn.query_drop("SELECT SLEEP(20) FROM orders WHERE tenant_id = 3")
                .await,
            STATEMENT_TIMEOUT,
            "slow statement",
        );
        assert!(msg.contains("statement_timeout_ms = 500"), "{msg}");
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "took {:?}",
            began.elapsed()
        );
        // Killed on the server, not left running.
        let running: Vec<String> = cluster.backends()[0]
            .query(
                None,
                "SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'",
            )
            .await;
        assert!(
            running.is_empty(),
            "still running on the server: {running:?}"
        );
        // The session and a transaction around the slow statement go on, as on MySQL.
        conn.query_drop("BEGIN").await.expect("begin");
        conn.query_drop(insert_order(2, 3, "kept"))
            .await
            .expect("insert");
        expect::server_error(
            conn.query_drop("SELECT SLEEP(20) FROM orders WHERE tenant_id = 3")
                .await,
            STATEMENT_TIMEOUT,
            "slow statement in a transaction",
        );
        conn.query_drop("COMMIT").await.expect("commit");
        let notes: Vec<String> = conn
            .query("SELECT note FROM orders WHERE tenant_id = 3 ORDER BY id")
            .await
            .expect("select");
        assert_eq!(notes, ["row", "kept"]);
        // A scattered statement is bounded the same way, and killed on the shards still running it.
        let msg = expect::server_error(
            conn.query_drop("SELECT SLEEP(5) FROM orders").await,
            STATEMENT_TIMEOUT,
            "slow scatter",
        );
        assert!(msg.contains("statement_timeout_ms = 500"), "{msg}");
        let mut running = vec![String::new()];
        for _ in 0..60 {
            running = cluster.backends()[0]
                .query(None, "SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'")
                .await;
            if running.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(running.is_empty(), "still running on the server: {running:?}");
    })
    .await;
}

#[tokio::test]
async fn sigterm_drains_running_statements_and_transactions_and_refuses_new_clients() {
    bounded(async {
        let builder = Cluster::builder(1, 2).config_line("drain_timeout_ms: 20000");
        let mut cluster = start_with_orders(builder).await;
        let shard = cluster.shard_for("orders", 4).clone();
        let mut in_txn = cluster.proxy_conn().await;
        in_txn.query_drop("BEGIN").await.expect("begin");
        in_txn
            .query_drop(insert_order(1, 4, "first"))
            .await
            .expect("insert");
        let mut idle = cluster.proxy_conn().await;
        let mut slow = cluster.proxy_conn().await;
        slow.query_drop(insert_order(2, 4, "slow"))
            .await
            .expect("insert");
        let running = tokio::spawn(async move {
            let r: Vec<u8> = slow
                .query("SELECT SLEEP(2) FROM orders WHERE tenant_id = 4 AND id = 2")
                .await
                .expect("the running statement completes");
            r
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = cluster.proxy().admin_get("/readyz").await;
        assert_eq!(status, 200);
        let sent = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(cluster.proxy().pid().to_string())
            .status()
            .expect("kill");
        assert!(sent.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = cluster.proxy().admin_get("/readyz").await;
        assert_eq!(status, 503, "not ready while draining");
        assert!(
            mysql_async::Conn::new(cluster.proxy_opts()).await.is_err(),
            "no new client is accepted"
        );
        assert!(
            idle.query_drop("SELECT 1").await.is_err(),
            "an idle client is closed"
        );
        assert_eq!(
            running.await.expect("task"),
            [0],
            "the running statement was not cut off"
        );
        // The open transaction goes on and commits; then its connection closes and the proxy exits.
        in_txn
            .query_drop(insert_order(3, 4, "second"))
            .await
            .expect("insert in drain");
        in_txn.query_drop("COMMIT").await.expect("commit in drain");
        let status = cluster
            .proxy_mut()
            .wait_exit(Duration::from_secs(15))
            .await
            .expect("the proxy exits once drained");
        assert!(status.success(), "{status:?}");
        let notes: Vec<String> = cluster
            .query_shard(
                &shard,
                "SELECT note FROM orders WHERE tenant_id = 4 ORDER BY id",
            )
            .await;
        assert_eq!(notes, ["first", "slow", "second"]);
    })
    .await;
}

#[tokio::test]
async fn the_proxy_is_unready_while_no_backend_server_is_up_and_ready_again_after() {
    bounded(async {
        let builder = Cluster::builder(1, 2)
            .pool_line("breaker_backoff_ms: 100")
            .pool_line("breaker_max_backoff_ms: 300")
            .pool_line("health_check_interval_ms: 100");
        let mut cluster = start_with_orders(builder).await;
        let (status, _) = cluster.proxy().admin_get("/readyz").await;
        assert_eq!(status, 200);
        cluster.backend_mut(0).kill9();
        let proxy = cluster.proxy();
        eventually(
            "health checks alone mark the only server down",
            Duration::from_secs(5),
            || async {
                let (status, body) = proxy.admin_get("/readyz").await;
                status == 503 && body.contains("no backend")
            },
        )
        .await;
        cluster.backend_mut(0).restart().await;
        let proxy = cluster.proxy();
        eventually(
            "ready again once the server answers",
            Duration::from_secs(5),
            || async { proxy.admin_get("/readyz").await.0 == 200 },
        )
        .await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, 2, "back"))
            .await
            .expect("served again");
    })
    .await;
}
