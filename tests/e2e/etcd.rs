//! A fleet of proxies following one topology in a real etcd: a change reaches every proxy, and each one's
//! acknowledgement (the version it serves) is visible there.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::Value;

use crate::harness::cluster::write_proxy_files;
use crate::harness::deadline::eventually;
use crate::harness::layout::ProxySettings;
use crate::harness::mariadb::free_port;
use crate::harness::proxy::Proxy;
use crate::harness::schema::{insert_order, start_with_orders};
use crate::harness::{Cluster, bounded, http};

/// A real single-member etcd on loopback ports, with its own data folder; killed on drop.
pub(crate) struct Etcd {
    child: std::process::Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub(crate) async fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, peer) = (free_port(), free_port());
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log");
        let child = std::process::Command::new(crate::harness::binaries::etcd())
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            port,
            _dir: dir,
        };
        let port = etcd.port;
        eventually("etcd starts", Duration::from_secs(30), || async move {
            http::try_request(port, "POST", "/v3/kv/range", r#"{"key":"AA=="}"#)
                .await
                .is_some()
        })
        .await;
        etcd
    }

    /// Sets `key` to `value` (plain text; the gateway wants base64, which the etcd CLI tool spares us).
    fn put(&self, key: &str, value: &str) {
        let status = std::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=127.0.0.1:{}", self.port))
            .args(["put", key, value])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("etcdctl");
        assert!(status.success(), "etcdctl put {key}");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn etcd_line(port: u16, id: &str) -> String {
    format!(
        "etcd: {{endpoints: [\"127.0.0.1:{port}\"], key: /sg/topology, acks_prefix: /sg/proxies/, proxy_id: {id}}}"
    )
}

/// How long a change may take to reach both proxies and their acknowledgements.
const FLEET_ALLOWANCE: Duration = Duration::from_secs(15);

/// The fleet's acknowledgements in etcd, as one proxy's admin endpoint lists them: (proxy id, version), sorted.
async fn fleet(proxy: &Proxy) -> Vec<(String, u64)> {
    let (status, body) = proxy.admin_get("/topology/fleet").await;
    assert_eq!(status, 200, "{body}");
    let acks: Value = serde_json::from_str(&body).expect("JSON");
    let mut seen: Vec<(String, u64)> = acks
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            let id = a["proxy"].as_str().unwrap_or_default().to_string();
            (id, a["version"].as_u64().unwrap_or(0))
        })
        .collect();
    seen.sort();
    seen
}

async fn version(proxy: &Proxy) -> u64 {
    proxy
        .admin_get("/topology/version")
        .await
        .1
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test]
async fn two_proxies_follow_one_etcd_and_both_acknowledge_each_version() {
    bounded(async {
        let etcd = Etcd::start().await;
        // The first proxy finds the key empty and seeds it with its own topology (version 1).
        let builder = Cluster::builder(1, 4).topology_line(&etcd_line(etcd.port, "one"));
        let cluster = start_with_orders(builder).await;
        // The second has a different topology file; etcd's wins.
        let dir = tempfile::tempdir().expect("dir");
        let stale = cluster
            .topology_yaml()
            .replacen("version: 1", "version: 7", 1);
        let settings = ProxySettings {
            topology_extra: vec![etcd_line(etcd.port, "two")],
            ..ProxySettings::default()
        };
        let config = write_proxy_files(dir.path(), &stale, &settings);
        let second = Proxy::start(&config).await.expect("second proxy");
        assert_eq!(
            version(&second).await,
            1,
            "etcd's topology is served, not the file's"
        );
        let both_at = |v: u64| vec![("one".to_string(), v), ("two".to_string(), v)];
        eventually(
            "both proxies acknowledge version 1",
            FLEET_ALLOWANCE,
            || async { fleet(cluster.proxy()).await == both_at(1) },
        )
        .await;
        // A controller writes version 2, pinning tenant 31 elsewhere: both proxies serve it and say so.
        let home = cluster.shard_for("orders", 31).clone();
        let away = cluster.another_shard(&home.name);
        let next = cluster
            .topology_yaml()
            .replacen("version: 1", "version: 2", 1)
            .replace(
                "pins: []",
                &format!("pins:\n  - {{ tenant: 31, shard: \"{}\" }}", away.name),
            );
        etcd.put("/sg/topology", &next);
        eventually("both serve version 2", FLEET_ALLOWANCE, || async {
            version(cluster.proxy()).await == 2 && version(&second).await == 2
        })
        .await;
        eventually("both acknowledge version 2", FLEET_ALLOWANCE, || async {
            fleet(&second).await == both_at(2)
        })
        .await;
        let mut conn =
            mysql_async::Conn::new(mysql_async::Opts::from_url(&second.url()).expect("url"))
                .await
                .expect("login to the second proxy");
        conn.query_drop(insert_order(1, 31, "via-two"))
            .await
            .expect("insert");
        let rows: Vec<String> = cluster
            .query_shard(&away, "SELECT note FROM orders WHERE tenant_id = 31")
            .await;
        assert_eq!(rows, ["via-two"], "the second proxy routes by etcd's pin");
        // Each keeps a copy in its topology file.
        let copy = std::fs::read_to_string(dir.path().join("topology.yaml")).expect("copy");
        assert!(copy.contains("version: 2"), "{copy}");
        // An invalid topology in etcd is refused by both; they keep serving version 2.
        etcd.put("/sg/topology", "version: 3\nkeyspace: app\n");
        eventually("the refusal is counted", FLEET_ALLOWANCE, || async {
            let (_, m) = second.admin_get("/metrics").await;
            m.contains("shardgate_topology_reload_errors_total 1")
        })
        .await;
        assert_eq!(version(cluster.proxy()).await, 2);
    })
    .await;
}
