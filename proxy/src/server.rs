//! The listener and the worker threads.
//!
//! Thread per core: each worker is a current-thread tokio runtime that owns its sessions and its own share of
//! every shard's pool, so a statement's client read, backend round trip and client write all happen on one thread
//! with no cross-thread wake-up (measured: wake-ups between work-stealing threads cost more CPU than the rest of
//! the statement). Worker 0 also accepts connections and deals them out round-robin; a connection costs one
//! channel hop, a statement none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arc_swap::ArcSwap;
use shardgate_sql::Analyzer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::routing::Routing;
use crate::sequences::Sequences;
use crate::session::Session;
use crate::twopc::DecisionLog;

/// What every session shares: configuration, the current routing table, the plan cache.
pub struct Shared {
    pub config: Config,
    /// Swapped whole when the topology changes; each statement loads it once.
    pub routing: ArcSwap<Routing>,
    pub analyzer: Analyzer,
    /// The two-phase-commit decision log, under `transaction_mode: twopc`.
    pub decisions: Option<Arc<DecisionLog>>,
    /// Ids reserved from sequence tables, shared by every worker.
    pub sequences: Sequences,
    next_conn_id: AtomicU32,
}

impl Shared {
    pub fn new(config: Config, routing: Routing, decisions: Option<Arc<DecisionLog>>) -> Shared {
        let analyzer = Analyzer::new(config.plan_cache_size);
        Shared {
            config,
            routing: ArcSwap::from_pointee(routing),
            analyzer,
            decisions,
            sequences: Sequences::default(),
            next_conn_id: AtomicU32::new(1),
        }
    }
}

/// An accepted connection on its way to a worker.
type Handoff = (std::net::TcpStream, SocketAddr, u32);

/// Starts `workers` threads serving `listener`. Returns once they run; they serve until the process exits.
pub fn start_workers(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<()> {
    let mut senders = Vec::with_capacity(workers);
    let mut receivers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
        senders.push(tx);
        receivers.push(rx);
    }
    let mut listener = Some(listener);
    let mut senders = Some(senders);
    for (worker, rx) in receivers.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let acceptor = if worker == 0 {
            listener.take().zip(senders.take())
        } else {
            None
        };
        std::thread::Builder::new()
            .name(format!("shardgate-w{worker}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        error!(worker, error = %e, "cannot start a worker runtime");
                        std::process::exit(1);
                    }
                };
                runtime.block_on(run_worker(shared, worker, rx, acceptor));
            })?;
    }
    Ok(())
}

async fn run_worker(
    shared: Arc<Shared>,
    worker: usize,
    mut inbox: mpsc::UnboundedReceiver<Handoff>,
    acceptor: Option<(std::net::TcpListener, Vec<mpsc::UnboundedSender<Handoff>>)>,
) {
    if let Some((listener, senders)) = acceptor {
        match TcpListener::from_std(listener) {
            Ok(l) => {
                tokio::spawn(accept_loop(Arc::clone(&shared), l, senders));
            }
            Err(e) => {
                error!(error = %e, "cannot register the listener");
                std::process::exit(1);
            }
        }
    }
    while let Some((std_stream, peer, conn_id)) = inbox.recv().await {
        match TcpStream::from_std(std_stream) {
            Ok(tcp) => {
                tokio::spawn(Session::run(
                    Arc::clone(&shared),
                    tcp,
                    peer,
                    conn_id,
                    worker,
                ));
            }
            Err(e) => warn!(worker, error = %e, "cannot adopt a client connection"),
        }
    }
}

/// Accepts connections and hands them to workers in turn. Accept errors (e.g. out of file descriptors) are
/// logged and the loop goes on after a short pause, so one bad moment does not end the listener.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    workers: Vec<mpsc::UnboundedSender<Handoff>>,
) {
    let mut next = 0usize;
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                let target = next % workers.len();
                next = next.wrapping_add(1);
                let handoff = tcp.into_std().map(|s| (s, peer, conn_id));
                match handoff {
                    Ok(h) => {
                        if workers[target].send(h).is_err() {
                            warn!(worker = target, "worker is gone; connection dropped");
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot hand a connection over"),
                }
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Logs where the proxy listens and what it routes to.
pub fn log_start(shared: &Shared, addr: SocketAddr, workers: usize) {
    let routing = shared.routing.load();
    info!(
        %addr,
        workers,
        keyspace = routing.topology.keyspace(),
        version = routing.topology.version(),
        shards = routing.topology.shards().len(),
        "shardgate serving"
    );
}
