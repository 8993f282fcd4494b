//! The listener: accepts client connections and gives each its own task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arc_swap::ArcSwap;
use shardgate_sql::Analyzer;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::Config;
use crate::routing::Routing;
use crate::session::Session;

/// What every session shares: configuration, the current routing table, the plan cache.
pub struct Shared {
    pub config: Config,
    /// Swapped whole when the topology changes; each statement loads it once.
    pub routing: ArcSwap<Routing>,
    pub analyzer: Analyzer,
    next_conn_id: AtomicU32,
}

impl Shared {
    pub fn new(config: Config, routing: Routing) -> Shared {
        let analyzer = Analyzer::new(config.plan_cache_size);
        Shared {
            config,
            routing: ArcSwap::from_pointee(routing),
            analyzer,
            next_conn_id: AtomicU32::new(1),
        }
    }
}

/// Accepts connections until the process stops. Accept errors (e.g. out of file descriptors) are logged and the
/// loop goes on after a short pause, so one bad moment does not end the listener.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(Session::run(Arc::clone(&shared), tcp, peer, conn_id));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Logs where the proxy listens and what it routes to.
pub fn log_start(shared: &Shared, addr: std::net::SocketAddr) {
    let routing = shared.routing.load();
    info!(
        %addr,
        keyspace = routing.topology.keyspace(),
        version = routing.topology.version(),
        shards = routing.topology.shards().len(),
        "shardgate serving"
    );
}
