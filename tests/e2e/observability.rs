//! `/metrics` counts what the data path did: statements by kind and route, errors by code, latencies.

use mysql_async::prelude::Queryable;

use crate::harness::mariadb::free_port;
use crate::harness::schema::{insert_order, start_with_orders};
use crate::harness::{Cluster, bounded, http};

/// The value of the sample `series`, 0 when absent (a counter that has not counted yet).
fn sample(metrics: &str, series: &str) -> f64 {
    http::sample(metrics, series).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_statements_by_kind_and_route_errors_by_code_and_latencies() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let mut conn = cluster.proxy_conn().await;
        let shard = cluster.shard_for("orders", 7).name.clone();
        // The login's own statements are counted just after their replies: wait until the count is still.
        let count = "shardgate_statement_duration_seconds_count";
        let mut before = cluster.proxy().admin_get("/metrics").await.1;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let again = cluster.proxy().admin_get("/metrics").await.1;
            let settled = sample(&again, count) == sample(&before, count);
            before = again;
            if settled {
                break;
            }
        }
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

/// A real Prometheus scraping one proxy every 200 ms, with the repository's alert rules loaded; killed on drop.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(admin_port: u16) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/prometheus/alerts.yml"
        );
        let config = format!(
            "global: {{scrape_interval: 200ms, evaluation_interval: 200ms}}\nrule_files: [\"{rules}\"]\n\
             scrape_configs:\n  - job_name: shardgate\n    static_configs: [{{targets: [\"127.0.0.1:{admin_port}\"]}}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = std::process::Command::new(crate::harness::binaries::prometheus())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// `GET path` on Prometheus's HTTP API, as JSON; `None` while it does not answer yet.
    async fn api(&self, path_and_query: &str) -> Option<serde_json::Value> {
        let (_, body) = http::try_request(self.port, "GET", path_and_query, "").await?;
        serde_json::from_str(&body).ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_counts_and_loads_the_alert_rules_and_the_dashboard_names_real_metrics()
 {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 4)).await;
        let mut conn = cluster.proxy_conn().await;
        for id in 1..=12 {
            conn.query_drop(insert_order(id, 9, "p")).await.expect("insert");
        }
        conn.disconnect().await.expect("disconnect");
        // What the proxy itself says, now that the workload is over.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, metrics) = cluster.proxy().admin_get("/metrics").await;
        let series = "shardgate_statements_total{kind=\"insert\",route=\"single\"}";
        let expected = sample(&metrics, series);
        assert_eq!(expected, 12.0);
        let prometheus = Prometheus::start(cluster.proxy().admin_port());
        let query = "/api/v1/query?query=shardgate_statements_total%7Bkind%3D%22insert%22%2Croute%3D%22single%22%7D";
        let mut scraped = None;
        for _ in 0..300 {
            if let Some(v) = prometheus.api(query).await
                && let Some(value) = v["data"]["result"][0]["value"][1].as_str()
            {
                scraped = value.parse::<f64>().ok();
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(scraped, Some(expected), "Prometheus scraped what the proxy counted");
        let rules = prometheus.api("/api/v1/rules").await.expect("rules");
        let loaded = rules["data"]["groups"][0]["rules"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(loaded, 7, "deploy/prometheus/alerts.yml loads: {rules}");
        // Every metric the dashboard and the alert rules query is one the proxy exposes.
        let dashboard = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/shardgate-dashboard.json"
        ))
        .expect("dashboard");
        let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
        assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 6));
        let alerts = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/prometheus/alerts.yml"
        ))
        .expect("alerts");
        for text in [&dashboard, &alerts] {
            let mut rest = text.as_str();
            while let Some(at) = rest.find("shardgate_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // A histogram's series are its family's name with _bucket, _sum or _count.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| metrics.contains(&format!("# TYPE {base} histogram")))
                    .unwrap_or(&name);
                assert!(
                    metrics.contains(&format!("# TYPE {family} ")),
                    "{name} is queried but not exposed"
                );
                rest = &rest[at + name.len()..];
            }
        }
    })
    .await;
}
