//! shardgate: a MySQL-protocol sharding proxy.
//!
//! The binary edge: parse flags, load config and topology (failing loudly on either), bind the listener, serve.
//! Everything below is in the modules: `session` (per-connection task), `routing` (topology snapshot + pools),
//! `backend` (client side of the codec), `mysql_error` (the one place errors get MySQL codes).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod backend;
mod charset;
mod config;
mod etcd;
mod metrics;
mod mysql_error;
mod reload;
mod routing;
mod sequences;
mod server;
mod session;
mod settings;
mod stats;
mod twopc;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use shardgate_topology::Topology;
use tracing::{info, warn};

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(name = "shardgate", version, about = "MySQL-protocol sharding proxy")]
struct Args {
    /// Proxy configuration file (YAML).
    #[arg(long, short = 'c', default_value = "shardgate.yaml")]
    config: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    log_json: bool,
}

fn main() {
    let args = Args::parse();
    init_logging(args.log_json);
    if let Err(e) = run(args) {
        eprintln!("shardgate: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM during startup must drain (nothing to drain yet), not kill the process.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("signal runtime")?;
    let (mut term, mut int, mut hup) = signals.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        anyhow::Ok((term, int, hup))
    })?;
    let config = config::Config::load(&args.config)?;
    // With etcd, what it holds is served (written to the file first, so that the file is the proxy's copy).
    let etcd_revision = match &config.topology.etcd {
        Some(source) => {
            let file_text = std::fs::read_to_string(&config.topology.file).unwrap_or_default();
            let (text, revision) = signals
                .block_on(etcd::bootstrap(source, &file_text))
                .context("reading the topology from etcd")?;
            std::fs::write(&config.topology.file, &text)
                .with_context(|| format!("writing {}", config.topology.file.display()))?;
            Some(revision)
        }
        None => None,
    };
    let topology = Topology::load(&config.topology.file)
        .with_context(|| format!("invalid topology {}", config.topology.file.display()))?;
    for name in config.pool.shards.keys() {
        if !topology.shards().iter().any(|s| &s.name == name) {
            anyhow::bail!(
                "pool.shards: {name:?} is not a shard of {}",
                config.topology.file.display()
            );
        }
    }
    let listener = signals
        .block_on(bind_listener(&config.listen))
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let admin = match config.admin_listen.as_str() {
        "" => None,
        a => {
            let l = std::net::TcpListener::bind(a)
                .with_context(|| format!("binding admin_listen {a}"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
    };
    let admin_addr = admin
        .as_ref()
        .map(std::net::TcpListener::local_addr)
        .transpose()?;
    let workers = config.worker_count();
    let decisions = match config.transaction_mode {
        config::TransactionMode::Twopc => Some(Arc::new(recover_twopc(&config, &topology)?)),
        _ => None,
    };
    let routing = routing::Routing::new(Arc::new(topology), &config, workers);
    let shared = Arc::new(server::Shared::new(config, routing, decisions));
    server::start_workers(Arc::clone(&shared), listener, workers)
        .context("starting worker threads")?;
    server::log_start(&shared, addr, workers);
    // Harnesses and scripts wait for this line; it is the only thing shardgate prints on stdout.
    let mut out = std::io::stdout().lock();
    match admin_addr {
        Some(admin) => writeln!(out, "shardgate listening mysql={addr} admin={admin}")?,
        None => writeln!(out, "shardgate listening mysql={addr}")?,
    }
    out.flush()?;
    drop(out);
    signals.block_on(async {
        if let Some(listener) = admin {
            let listener = tokio::net::TcpListener::from_std(listener).context("admin listener")?;
            tokio::spawn(admin::serve(Arc::clone(&shared), listener));
        }
        shared.note_file_stamp();
        tokio::spawn(reload::watch_file(Arc::clone(&shared)));
        if let (Some(source), Some(revision)) = (shared.config.topology.etcd.clone(), etcd_revision)
        {
            tokio::spawn(etcd::follow(Arc::clone(&shared), source, revision));
        }
        let signal = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                // Logged and counted where it is decided.
                _ = hup.recv() => {
                    let _ = shared.reload_file("SIGHUP");
                }
            }
        };
        let drain = shared.config.drain_timeout();
        info!(
            signal,
            clients = shared.clients(),
            ?drain,
            "shutting down: draining client connections"
        );
        shared.begin_shutdown();
        let left = shared.drained(drain).await;
        if left > 0 {
            warn!(
                left,
                "drain timeout: closing the remaining client connections"
            );
        } else {
            info!("drained; exiting");
        }
        anyhow::Ok(())
    })
}

/// Binds the MySQL listener with a deep accept queue. MySQL's server speaks first: a connection that overflows a
/// short queue after the TCP handshake leaves its client waiting for a greeting that never comes, so a storm of
/// thousands of connects needs the queue to hold them while the acceptor catches up (the kernel caps it at
/// net.core.somaxconn).
async fn bind_listener(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    const ACCEPT_QUEUE: u32 = 65_535;
    let addr: std::net::SocketAddr = addr.parse().context("listen address")?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(ACCEPT_QUEUE)?.into_std()?)
}

/// Opens the two-phase-commit decision log and resolves every branch a previous run left prepared, before any
/// client can start a transaction that would touch them.
fn recover_twopc(
    config: &config::Config,
    topology: &Topology,
) -> anyhow::Result<twopc::DecisionLog> {
    let (log, committed) = twopc::DecisionLog::open(&config.twopc_log)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("recovery runtime")?;
    let (commits, rollbacks) = runtime.block_on(log.recover(&committed, topology, config))?;
    info!(log = %config.twopc_log.display(), commits, rollbacks, "two-phase commit recovery done");
    Ok(log)
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHARDGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal: logs redirected to a file stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
