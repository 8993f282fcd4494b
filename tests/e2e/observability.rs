//! `/metrics` counts what the data path did: statements by kind and route, errors by code, latencies.

use mysql_async::prelude::Queryable;

use crate::harness::schema::{insert_order, start_with_orders};
use crate::harness::{Cluster, bounded};

/// The value of the sample `series` (name and labels exactly as exposed), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[tokio::test]
async fn metrics_count_statements_by_kind_and_route_errors_by_code_and_latencies() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let mut conn = cluster.proxy_conn().await;
        let shard = cluster.shard_for("orders", 7).name.clone();
        let (_, before) = cluster.proxy().admin_get("/metrics").await;
        for id in 1..=5 {
            conn.query_drop(insert_order(id, 7, "m"))
                .await
                .expect("insert");
        }
        for _ in 0..10 {
            let _: Vec<String> = conn
                .query("SELECT note FROM orders WHERE tenant_id = 7")
                .await
                .expect("select");
        }
        let _: Vec<u64> = conn
            .query("SELECT COUNT(*) FROM orders")
            .await
            .expect("scatter");
        assert!(conn.query_drop("SELEC nonsense").await.is_err());
        // A statement is counted just after its reply is sent: wait for the last one's count to land.
        let count = "shardgate_statement_duration_seconds_count";
        let mut after = String::new();
        for _ in 0..100 {
            after = cluster.proxy().admin_get("/metrics").await.1;
            if sample(&after, count) - sample(&before, count) >= 17.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let delta = |series: &str| sample(&after, series) - sample(&before, series);
        assert_eq!(
            delta("shardgate_statements_total{kind=\"insert\",route=\"single\"}"),
            5.0
        );
        assert_eq!(
            delta("shardgate_statements_total{kind=\"select\",route=\"single\"}"),
            10.0
        );
        assert_eq!(
            delta("shardgate_statements_total{kind=\"select\",route=\"scatter\"}"),
            1.0
        );
        assert_eq!(delta("shardgate_errors_total{code=\"1064\"}"), 1.0);
        assert_eq!(delta("shardgate_statement_duration_seconds_count"), 17.0);
        let shard_count = format!("shardgate_backend_duration_seconds_count{{shard=\"{shard}\"}}");
        // 15 statements for tenant 7, plus its part of the scatter.
        assert_eq!(delta(&shard_count), 16.0);
        assert!(delta("shardgate_statement_duration_seconds_sum") > 0.0);
        assert!(delta("shardgate_client_received_bytes_total") > 0.0);
        assert!(delta("shardgate_client_sent_bytes_total") > 0.0);
        let inf = "shardgate_statement_duration_seconds_bucket{le=\"+Inf\"}";
        assert_eq!(
            sample(&after, inf),
            sample(&after, "shardgate_statement_duration_seconds_count")
        );
        assert!(
            after.contains("# TYPE shardgate_pool_wait_seconds histogram"),
            "{after}"
        );
        assert!(
            sample(&after, "shardgate_plan_cache_hits_total") >= 9.0,
            "repeated shapes are cached"
        );
    })
    .await;
}

#[tokio::test]
async fn slow_statements_are_logged_with_their_shard_and_fingerprint_not_their_values() {
    bounded(async {
        let builder = Cluster::builder(1, 4).config_line("slow_query_log_ms: 200");
        let cluster = start_with_orders(builder).await;
        let shard = cluster.shard_for("orders", 5).name.clone();
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, 5, "fast-one"))
            .await
            .expect("insert");
        let slow = "SELECT SLEEP(0.3) FROM orders WHERE tenant_id = 5 AND note <> 'secret-value'";
        let _: Vec<u8> = conn.query(slow).await.expect("slow select");
        conn.disconnect().await.expect("disconnect");
        let mut log = String::new();
        for _ in 0..50 {
            log = cluster.proxy_stderr();
            if log.contains("slow query") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("slow query")).collect();
        assert_eq!(lines.len(), 1, "only the slow statement: {lines:?}");
        assert!(lines[0].contains(&shard), "names the shard: {}", lines[0]);
        assert!(
            lines[0].contains("SLEEP(?)"),
            "the fingerprint: {}",
            lines[0]
        );
        assert!(
            !lines[0].contains("secret-value"),
            "no literal values: {}",
            lines[0]
        );
    })
    .await;
}
