//! The listener and the worker threads.
//!
//! Thread per core: each worker is a current-thread tokio runtime that owns its sessions and its own share of
//! every shard's pool, so a statement's client read, backend round trip and client write all happen on one thread
//! with no cross-thread wake-up (measured: wake-ups between work-stealing threads cost more CPU than the rest of
//! the statement). Worker 0 also accepts connections and deals them out round-robin; a connection costs one
//! channel hop, a statement none.
//!
//! Each worker also runs the housekeeping of its pools (idle and lifetime limits, health checks, breaker probes)
//! once a second. Shutdown (SIGTERM, SIGINT) is a flag every session watches: the listener closes at once, idle
//! sessions close, and a session inside a transaction or a statement finishes it first, up to `drain_timeout_ms`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use shardgate_sql::Analyzer;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::mysql_error::{ER_CON_COUNT_ERROR, MysqlError};
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
    /// What the data path counts for `/metrics`.
    pub stats: crate::stats::Stats,
    next_conn_id: AtomicU32,
    /// Client connections open now (logged in or logging in).
    clients: AtomicUsize,
    /// Client connections refused for `max_client_connections` since start.
    pub refused_clients: std::sync::atomic::AtomicU64,
    /// Set once when shutdown starts.
    shutdown: watch::Sender<bool>,
    /// The same, one per worker: sessions wait on their own worker's, so that the wait every idle session
    /// registers never touches a lock another core uses.
    worker_shutdown: Vec<watch::Sender<bool>>,
    /// Worker threads, each with its share of every pool.
    pub workers: usize,
    /// Topologies applied and refused since start.
    pub topology_reloads: std::sync::atomic::AtomicU64,
    pub topology_reload_errors: std::sync::atomic::AtomicU64,
    /// Held while a reload builds and swaps the next routing.
    pub reloading: std::sync::Mutex<()>,
    /// The topology file as last read, for the watcher.
    pub file_stamp: std::sync::Mutex<Option<crate::reload::FileStamp>>,
}

impl Shared {
    pub fn new(
        config: Config,
        routing: Arc<Routing>,
        decisions: Option<Arc<DecisionLog>>,
    ) -> Shared {
        let analyzer = Analyzer::new(config.plan_cache_size);
        let config_workers = config.worker_count();
        let stats = crate::stats::Stats::new(config_workers);
        Shared {
            config,
            routing: ArcSwap::new(routing),
            analyzer,
            decisions,
            sequences: Sequences::default(),
            stats,
            next_conn_id: AtomicU32::new(1),
            clients: AtomicUsize::new(0),
            refused_clients: Default::default(),
            shutdown: watch::Sender::new(false),
            worker_shutdown: (0..config_workers.max(1))
                .map(|_| watch::Sender::new(false))
                .collect(),
            workers: config_workers,
            topology_reloads: Default::default(),
            topology_reload_errors: Default::default(),
            reloading: Default::default(),
            file_stamp: Default::default(),
        }
    }

    /// Client connections open now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Starts shutdown: the listener stops accepting and sessions close as soon as they are idle.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        for worker in &self.worker_shutdown {
            worker.send_replace(true);
        }
    }

    /// True once shutdown has started.
    pub fn is_draining(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Something to await the start of shutdown with.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// [`Shared::shutdown_signal`] for the sessions of one worker.
    pub fn worker_shutdown_signal(&self, worker: usize) -> watch::Receiver<bool> {
        self.worker_shutdown[worker % self.worker_shutdown.len()].subscribe()
    }

    /// Waits until every client connection has closed, or `timeout`; returns how many are still open.
    pub async fn drained(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.clients() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.clients()
    }
}

/// One client connection counted in [`Shared::clients`] for as long as it lives.
pub struct ClientSlot(Arc<Shared>);

impl ClientSlot {
    /// Takes a slot if fewer than `max_client_connections` are taken.
    fn take(shared: &Arc<Shared>) -> Option<ClientSlot> {
        let max = shared.config.max_client_connections;
        let taken = shared
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        taken.ok().map(|_| ClientSlot(Arc::clone(shared)))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accepted connection on its way to a worker.
type Handoff = (std::net::TcpStream, SocketAddr, u32, ClientSlot);

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
    tokio::spawn(maintain_pools(Arc::clone(&shared), worker));
    while let Some((std_stream, peer, conn_id, slot)) = inbox.recv().await {
        match TcpStream::from_std(std_stream) {
            Ok(tcp) => {
                tokio::spawn(async move {
                    Session::run(Arc::clone(&slot.0), tcp, peer, conn_id, worker).await;
                    drop(slot);
                });
            }
            Err(e) => warn!(worker, error = %e, "cannot adopt a client connection"),
        }
    }
    // The acceptor is gone (shutdown): the sessions this runtime drives finish draining; the process ends them.
    std::future::pending::<()>().await;
}

/// Runs each pool's housekeeping once a second, on the worker that owns the pools (their connections belong to
/// its reactor). Loads the routing afresh each time, so pools of a new topology are looked after too.
async fn maintain_pools(shared: Arc<Shared>, worker: usize) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let routing = shared.routing.load_full();
        for pool in routing.worker_pools(worker) {
            pool.maintain().await;
        }
    }
}

/// Accepts connections and hands them to workers in turn, until shutdown starts (the listener then closes, so new
/// connects are refused by the kernel). Past `max_client_connections` a connection gets ERR 1040 and is closed,
/// as MySQL does. Accept errors (e.g. out of file descriptors) are logged and the loop goes on after a short
/// pause, so one bad moment does not end the listener.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    workers: Vec<mpsc::UnboundedSender<Handoff>>,
) {
    let mut next = 0usize;
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|draining| *draining) => {
                info!("shutdown: no longer accepting connections");
                return;
            }
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Some(slot) = ClientSlot::take(&shared) else {
                    shared.refused_clients.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(refuse(tcp, shared.config.max_client_connections));
                    continue;
                };
                let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
                let target = next % workers.len();
                next = next.wrapping_add(1);
                let handoff = tcp.into_std().map(|s| (s, peer, conn_id, slot));
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

/// Answers a connection over the limit with ERR 1040 in place of the greeting, as MySQL does, and closes it.
async fn refuse(mut tcp: TcpStream, max: usize) {
    let e = MysqlError::new(
        ER_CON_COUNT_ERROR,
        format!(
            "Too many connections: shardgate serves at most {max} client connections (max_client_connections)"
        ),
    );
    // Before the handshake the client's capabilities are unknown, so MySQL sends the old ERR layout without a
    // SQLSTATE (clients report HY000); so does the proxy.
    let mut body = Vec::with_capacity(3 + e.message.len());
    body.push(0xff);
    body.extend_from_slice(&e.code.to_le_bytes());
    body.extend_from_slice(e.message.as_bytes());
    let mut packet = Vec::with_capacity(4 + body.len());
    packet.extend_from_slice(&(body.len() as u32).to_le_bytes()[..3]);
    packet.push(0);
    packet.extend_from_slice(&body);
    // Best effort, bounded: a client that does not read its refusal must not hold the acceptor's resources.
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&packet)).await;
    let _ = tcp.shutdown().await;
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
