//! Pooling and multiplexing: many client connections share few backend connections, limits answer with clear
//! errors, and nothing one session leaves on a shared connection reaches another.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::task::JoinSet;

use crate::harness::expect;
use crate::harness::schema::{ORDERS_DDL, insert_order, start_with_orders};
use crate::harness::{Cluster, MariaDb, bounded, join_all};

/// ER_CON_COUNT_ERROR.
const TOO_MANY_CONNECTIONS: (u16, &str) = (1040, "08004");

/// The most connections `server` has had open at once since it started (MariaDB's own count).
async fn max_used_connections(server: &MariaDb) -> u64 {
    let rows: Vec<(String, u64)> = server
        .query(None, "SHOW GLOBAL STATUS LIKE 'Max_used_connections'")
        .await;
    rows[0].1
}

/// Client connections open on `server` now, the caller's own included.
async fn threads_connected(server: &MariaDb) -> u64 {
    let rows: Vec<(String, u64)> = server
        .query(None, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        .await;
    rows[0].1
}

#[tokio::test]
async fn two_thousand_clients_share_backend_connections_within_the_pool_maxima() {
    bounded(async {
        // 128 shards on 2 servers (64 each), at most 2 backend connections per shard.
        let builder = Cluster::builder(2, 128)
            .pool_max_size(2)
            .config_line("max_client_connections: 2100");
        let cluster = start_with_orders(builder).await;
        let mut setup = cluster.proxy_conn().await;
        let tenants: Vec<u64> = (1..=256).collect();
        let values: Vec<String> = tenants
            .iter()
            .map(|t| format!("({t}, {t}, 'note-{t}')"))
            .collect();
        setup
            .query_drop(format!(
                "INSERT INTO orders (id, tenant_id, note) VALUES {}",
                values.join(", ")
            ))
            .await
            .expect("insert one row per tenant");
        drop(setup);

        const CLIENTS: u64 = 2000;
        const QUERIES: u64 = 5;
        // MariaDB's own count of open connections, sampled on each server while the clients run.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut samplers = JoinSet::new();
        for server in cluster.backends() {
            let (opts, stop) = (server.opts(None), std::sync::Arc::clone(&stop));
            samplers.spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.expect("sampler");
                let mut peak = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let row: Option<(String, u64)> = conn
                        .query_first("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
                        .await
                        .expect("Threads_connected");
                    peak = peak.max(row.expect("a row").1);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                peak
            });
        }
        let mut clients = JoinSet::new();
        for c in 0..CLIENTS {
            let opts = cluster.proxy_opts();
            clients.spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.expect("client login");
                for q in 0..QUERIES {
                    let tenant = (c * 7 + q * 13) % 256 + 1;
                    let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant}");
                    let notes: Vec<String> = conn.query(&sql).await.expect("point select");
                    assert_eq!(notes, [format!("note-{tenant}")], "{sql}");
                }
                // Every client stays connected until all have run, so 2,000 are open at once.
                conn
            });
        }
        let conns = join_all(clients).await;
        assert_eq!(conns.len() as u64, CLIENTS);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for peak in join_all(samplers).await {
            // 64 shards × 2 connections, plus the sampler's own.
            assert!(
                peak <= 64 * 2 + 1,
                "Threads_connected reached {peak} with 2,000 clients"
            );
        }
        // Each server holds 64 shards × 2 connections at most, plus the harness's own connection.
        for server in cluster.backends() {
            let peak = max_used_connections(server).await;
            assert!(
                peak <= 64 * 2 + 2,
                "server on port {} saw {peak} connections at once with 2,000 clients open",
                server.port()
            );
        }
        drop(conns);
    })
    .await;
}

#[tokio::test]
async fn a_connection_storm_past_the_limit_is_refused_with_1040_and_never_reaches_the_backends() {
    bounded(async {
        let builder = Cluster::builder(1, 4)
            .pool_max_size(2)
            .config_line("max_client_connections: 300");
        let cluster = start_with_orders(builder).await;
        let mut attempts = JoinSet::new();
        for _ in 0..600 {
            let opts = cluster.proxy_opts();
            attempts.spawn(async move {
                match mysql_async::Conn::new(opts).await {
                    Ok(mut conn) => {
                        let one: Vec<u8> = conn.query("SELECT 1").await.expect("SELECT 1");
                        assert_eq!(one, [1]);
                        Ok(conn)
                    }
                    Err(e) => Err(e),
                }
            });
        }
        let outcomes = join_all(attempts).await;
        let mut served = Vec::new();
        let mut refused = 0;
        for outcome in outcomes {
            match outcome {
                Ok(conn) => served.push(conn),
                Err(e) => {
                    // Refused before the handshake: the old ERR layout, without a SQLSTATE, as MySQL sends it.
                    let msg = expect::server_error::<()>(Err(e), (1040, "HY000"), "storm");
                    assert!(msg.contains("max_client_connections"), "{msg}");
                    refused += 1;
                }
            }
        }
        assert_eq!(served.len(), 300, "exactly the limit is served");
        assert_eq!(refused, 300);
        let (_, metrics) = cluster.proxy().admin_get("/metrics").await;
        assert!(
            metrics.contains("shardgate_client_connections 300\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("shardgate_client_connections_refused_total 300\n"),
            "{metrics}"
        );
        // 4 shards × 2 connections, plus the harness's own.
        let peak = max_used_connections(&cluster.backends()[0]).await;
        assert!(peak <= 4 * 2 + 2, "backend saw {peak} connections");
        // A slot frees when a client leaves.
        served.pop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut late = cluster.proxy_conn().await;
        let one: Vec<u8> = late.query("SELECT 1").await.expect("a freed slot serves");
        assert_eq!(one, [1]);
    })
    .await;
}

#[tokio::test]
async fn a_saturated_shard_answers_1040_naming_the_shard_after_the_acquire_timeout() {
    bounded(async {
        // One connection per shard and worker (2 workers), 300 ms acquire timeout.
        let builder = Cluster::builder(1, 2)
            .pool_max_size(2)
            .acquire_timeout_ms(300)
            .config_line("workers: 2");
        let cluster = start_with_orders(builder).await;
        let shard = cluster.shard_for("orders", 5).name.clone();
        let mut setup = cluster.proxy_conn().await;
        setup
            .query_drop(insert_order(1, 5, "slow"))
            .await
            .expect("insert");
        drop(setup);
        // Log in all four first: a client's login queries may need the busy shard too.
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(cluster.proxy_conn().await);
        }
        // Consecutive clients alternate between the two workers: of four, two share each worker's connection.
        let mut sleepers = JoinSet::new();
        for mut conn in conns {
            sleepers.spawn(async move {
                conn.query_first::<u8, _>("SELECT SLEEP(2) FROM orders WHERE tenant_id = 5")
                    .await
            });
        }
        let results = join_all(sleepers).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            ok, 2,
            "one statement per worker connection runs: {results:?}"
        );
        for r in results.into_iter().filter(|r| r.is_err()) {
            let msg = expect::server_error(r, TOO_MANY_CONNECTIONS, "waiting statement");
            assert!(msg.contains(&shard) && msg.contains("300ms"), "{msg}");
        }
    })
    .await;
}

#[tokio::test]
async fn session_state_never_leaks_between_clients_sharing_backend_connections() {
    bounded(async {
        // One backend connection per shard and worker: every client shares the same few connections.
        let builder = Cluster::builder(1, 2)
            .pool_max_size(2)
            .config_line("workers: 2");
        let cluster = start_with_orders(builder).await;
        let mut setup = cluster.proxy_conn().await;
        for t in 1..=4 {
            setup
                .query_drop(insert_order(t, t, "x"))
                .await
                .expect("insert");
        }
        let default_mode: String = setup
            .query_first("SELECT @@sql_mode")
            .await
            .expect("sql_mode")
            .expect("a row");
        drop(setup);
        let modes = [
            "ANSI_QUOTES",
            "NO_ZERO_DATE",
            "PIPES_AS_CONCAT",
            "STRICT_ALL_TABLES",
        ];
        let mut clients = JoinSet::new();
        for c in 0..16usize {
            let opts = cluster.proxy_opts();
            let default_mode = default_mode.clone();
            clients.spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.expect("login");
                // Even clients set state; odd ones never do and must see the defaults.
                let mine = (c % 2 == 0).then(|| {
                    (
                        format!("client-{c}"),
                        modes[c / 2 % modes.len()].to_string(),
                        format!("+0{}:00", c / 2),
                    )
                });
                if let Some((v, mode, tz)) = &mine {
                    conn.query_drop(format!(
                        "SET @v = '{v}', sql_mode = '{mode}', time_zone = '{tz}'"
                    ))
                    .await
                    .expect("SET");
                }
                for i in 0..60usize {
                    let tenant = (c + i) % 4 + 1;
                    let sql = format!(
                        "SELECT @v, @@sql_mode, @@time_zone FROM orders WHERE tenant_id = {tenant}"
                    );
                    let row: (Option<String>, String, String) = conn
                        .query_first(&sql)
                        .await
                        .expect("select")
                        .expect("a row");
                    match &mine {
                        Some((v, mode, tz)) => {
                            assert_eq!(
                                row,
                                (Some(v.clone()), mode.clone(), tz.clone()),
                                "client {c}"
                            )
                        }
                        None => assert_eq!(
                            row,
                            (None, default_mode.clone(), "SYSTEM".to_string()),
                            "client {c} sees another client's state"
                        ),
                    }
                    if i % 10 == 0 {
                        // Yield so that clients interleave on the shared connections.
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        join_all(clients).await;
    })
    .await;
}

#[tokio::test]
async fn a_session_holding_a_user_lock_keeps_its_connection_until_it_lets_go() {
    bounded(async {
        let builder = Cluster::builder(1, 4).pool_max_size(4);
        let cluster = start_with_orders(builder).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        let got: Option<u8> = a
            .query_first("SELECT GET_LOCK('job-7', 0)")
            .await
            .expect("get");
        assert_eq!(got, Some(1));
        let got: Option<u8> = b
            .query_first("SELECT GET_LOCK('job-7', 0) AS got")
            .await
            .expect("get");
        assert_eq!(got, Some(0), "another session holds the lock");
        // A's statements on every shard meanwhile do not move its lock.
        for tenant in 1..=20 {
            a.query_drop(insert_order(tenant, tenant, "during"))
                .await
                .expect("insert");
        }
        let holder: Option<u64> = b
            .query_first("SELECT IS_USED_LOCK('job-7')")
            .await
            .expect("is_used");
        assert!(holder.is_some(), "the lock is still held");
        // The release only works on the connection that took the lock.
        let released: Option<u8> = a
            .query_first("SELECT RELEASE_LOCK('job-7')")
            .await
            .expect("release");
        assert_eq!(released, Some(1));
        let got: Option<u8> = b
            .query_first("SELECT GET_LOCK('job-7', 0)")
            .await
            .expect("get");
        assert_eq!(got, Some(1), "free once released");
        // A client that leaves lets go of its locks.
        drop(b);
        let mut c = cluster.proxy_conn().await;
        let got: Option<u8> = c
            .query_first("SELECT GET_LOCK('job-7', 5)")
            .await
            .expect("get");
        assert_eq!(got, Some(1), "the departed client's lock is released");
        let all: Option<u8> = c
            .query_first("SELECT RELEASE_ALL_LOCKS()")
            .await
            .expect("release all");
        assert_eq!(all, Some(1));
        // A lock call killed for the statement timeout keeps the locks already held.
        drop(c);
        let builder = Cluster::builder(1, 2).config_line("statement_timeout_ms: 300");
        let timed = start_with_orders(builder).await;
        let mut a = timed.proxy_conn().await;
        let mut b = timed.proxy_conn().await;
        let got: Option<u8> = a
            .query_first("SELECT GET_LOCK('mine', 0)")
            .await
            .expect("a");
        assert_eq!(got, Some(1));
        let got: Option<u8> = b
            .query_first("SELECT GET_LOCK('theirs', 0)")
            .await
            .expect("b");
        assert_eq!(got, Some(1));
        // Killed, the wait ends at once with NULL, as MySQL documents for a killed GET_LOCK.
        let began = std::time::Instant::now();
        let got: Option<Option<u8>> = a
            .query_first("SELECT GET_LOCK('theirs', 10)")
            .await
            .expect("a lock wait past the statement timeout");
        assert_eq!(got, Some(None));
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        let free: Option<u8> = b
            .query_first("SELECT IS_FREE_LOCK('mine')")
            .await
            .expect("is_free");
        assert_eq!(free, Some(0), "a still holds its lock");
        let mut c = cluster.proxy_conn().await;
        // Other shapes are refused with the reason.
        let msg = expect::server_error(
            c.query_drop("SELECT GET_LOCK('x', 0), 1").await,
            expect::codes::NOT_SUPPORTED_YET,
            "lock in a bigger select",
        );
        assert!(msg.contains("only supported alone"), "{msg}");
    })
    .await;
}

#[tokio::test]
async fn idle_clients_are_disconnected_and_their_open_transaction_rolls_back() {
    bounded(async {
        let builder = Cluster::builder(1, 2).config_line("client_idle_timeout_ms: 400");
        let cluster = start_with_orders(builder).await;
        let mut idle = cluster.proxy_conn().await;
        idle.query_drop("BEGIN").await.expect("begin");
        idle.query_drop(insert_order(1, 9, "uncommitted"))
            .await
            .expect("insert");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            idle.query_drop("SELECT 1").await.is_err(),
            "the idle connection was closed"
        );
        let mut other = cluster.proxy_conn().await;
        let rows: Vec<String> = other
            .query("SELECT note FROM orders WHERE tenant_id = 9")
            .await
            .expect("select");
        assert!(
            rows.is_empty(),
            "the idle client's transaction rolled back: {rows:?}"
        );
        // An active client is not disconnected, nor one whose statement ran longer than the timeout.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            other
                .query_drop("SELECT 1")
                .await
                .expect("active client stays");
        }
        other
            .query_drop("SELECT SLEEP(0.6)")
            .await
            .expect("a long statement");
        other
            .query_drop("SELECT 1")
            .await
            .expect("still connected after it");
    })
    .await;
}

#[tokio::test]
async fn min_idle_connections_are_opened_ahead_of_demand_and_per_shard_overrides_apply() {
    bounded(async {
        let builder = Cluster::builder(1, 2)
            .pool_max_size(4)
            .config_line("workers: 1")
            .pool_line("min_idle: 2")
            .pool_line("shards: {\"80-\": {min_idle: 3}}");
        let cluster = builder.start().await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let server = &cluster.backends()[0];
        // Housekeeping runs every second: within a few, 2 + 3 connections are open, plus this query's own.
        let mut open = 0;
        for _ in 0..40 {
            open = threads_connected(server).await;
            if open >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            open,
            2 + 3 + 1,
            "min_idle per shard, with the override for 80-"
        );
        let (_, metrics) = cluster.proxy().admin_get("/metrics").await;
        assert!(
            metrics.contains("shardgate_pool_idle_connections{shard=\"80-\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("shardgate_pool_max_connections{shard=\"-80\"} 4"),
            "{metrics}"
        );
    })
    .await;
}
