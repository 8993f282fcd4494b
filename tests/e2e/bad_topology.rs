//! Bad topology at startup: the proxy refuses to start, exits non-zero, and says on stderr what is wrong.
//!
//! A real backend is running, so that the topology is the only thing wrong.

use crate::harness::cluster::write_proxy_files;
use crate::harness::layout::{self, Pin, ProxySettings};
use crate::harness::proxy::{Proxy, ProxyExited};
use crate::harness::{MariaDb, bounded};

/// Starts the proxy on `topology_yaml` and returns how it exited; fails if it starts listening.
async fn start_expecting_refusal(topology_yaml: &str) -> ProxyExited {
    let dir = tempfile::tempdir().expect("cannot create a temporary folder");
    let config = write_proxy_files(dir.path(), topology_yaml, &ProxySettings::default());
    match Proxy::start(&config).await {
        Ok(proxy) => panic!(
            "shardgate started on port {} with an invalid topology:\n{topology_yaml}",
            proxy.port()
        ),
        Err(exited) => {
            assert!(
                !exited.status.success(),
                "shardgate refused the topology but exited 0"
            );
            exited
        }
    }
}

#[tokio::test]
async fn proxy_refuses_to_start_on_a_topology_with_a_gap() {
    bounded(async {
        let backend = MariaDb::start().await;
        let mut shards = layout::shards(128, 1);
        let removed = shards.remove(8);
        assert_eq!(removed.name, "10-12");
        let exited =
            start_expecting_refusal(&layout::topology_yaml(1, &[backend.port()], &shards, &[]))
                .await;
        let stderr = exited.stderr;
        // The uncovered range 10-12, named as a shard range, by its neighbours, or as keyspace ids.
        let names_the_gap = stderr.contains("10-12")
            || (stderr.contains("0e-10") && stderr.contains("12-14"))
            || stderr.to_lowercase().contains("1000000000000000");
        assert!(
            names_the_gap,
            "stderr must name the uncovered range 10-12:\n{stderr}"
        );
    })
    .await;
}

#[tokio::test]
async fn proxy_refuses_to_start_on_a_pin_to_a_shard_that_does_not_exist() {
    bounded(async {
        let backend = MariaDb::start().await;
        let shards = layout::shards(4, 1);
        let pins = [Pin {
            tenant: 42,
            shard: "ff-".to_owned(),
        }];
        let exited =
            start_expecting_refusal(&layout::topology_yaml(1, &[backend.port()], &shards, &pins))
                .await;
        let stderr = exited.stderr;
        assert!(
            stderr.to_lowercase().contains("pin"),
            "stderr must say a pin is wrong:\n{stderr}"
        );
        assert!(
            stderr.contains("ff-"),
            "stderr must name the unknown shard ff-:\n{stderr}"
        );
    })
    .await;
}
