//! One client connection: handshake, then a loop of commands until the client quits or the socket breaks.
//!
//! Sits between the wire codec and routing on the data path. A session owns its client socket and a little state
//! (settings, transaction, status flags); it borrows a backend connection from a shard's pool for the duration of
//! one statement, or of a transaction, and drives that backend round trip itself, with no channel hop.

mod answered;
mod forward;
mod inspect;
mod locks;
mod login;
mod moves;
mod multi_shard;
mod multi_statements;
mod prepared;
mod query;
mod scatter;
mod sequenced;
mod temporary;
mod transaction;
mod variables;
mod warnings;
mod xa;

use std::net::SocketAddr;
use std::sync::Arc;

use shardgate_sql::Scratch;
use shardgate_wire::capability::{
    CLIENT_DEPRECATE_EOF, SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS,
};
use shardgate_wire::command::*;
use shardgate_wire::response::{OkPacket, put_err};
use shardgate_wire::{PacketStream, SMALL_BUFFER, WireError};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::mysql_error::*;
use crate::server::Shared;
use crate::settings::SessionSettings;
use transaction::Transaction;

/// State of one client connection.
pub struct Session {
    shared: Arc<Shared>,
    client: PacketStream<TcpStream>,
    conn_id: u32,
    /// The worker thread this session runs on; it uses that worker's pools.
    worker: usize,
    /// Capabilities both sides agreed on.
    caps: u32,
    user: String,
    /// Character set and session variables the client's statements need on the backend.
    settings: Arc<SessionSettings>,
    /// What the client had at login; COM_RESET_CONNECTION goes back to it.
    login_settings: Arc<SessionSettings>,
    /// `autocommit` as the client set it.
    autocommit: bool,
    /// The open transaction, if any.
    txn: Option<Transaction>,
    /// A `SET TRANSACTION …` waiting for the next transaction.
    next_transaction: Option<String>,
    /// What `LAST_INSERT_ID()` returns: the last non-zero id a forwarded OK packet reported.
    last_insert_id: u64,
    /// What `ROW_COUNT()` returns: affected rows of the last OK, -1 after a result set.
    row_count: i64,
    /// Prepared statements, by the ids the proxy gave the client.
    statements: prepared::Statements,
    /// Replies are being collected rather than sent: one statement of several in a COM_QUERY.
    capture: bool,
    /// What `SHOW WARNINGS` lists: the previous statement's warnings, or the error it got.
    warnings: Vec<warnings::Warning>,
    /// Warnings the reply being forwarded reported, read from its connection before that goes back to the pool.
    pending_warnings: u16,
    /// Reusable buffers for statement analysis, so a cached statement shape allocates nothing.
    scratch: Scratch,
    /// Sequence id of the first packet of the proxy's reply to the current command: 1, unless the command was
    /// split into 16 MiB parts.
    reply_seq: u8,
    /// Turns true when the proxy starts shutting down.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Since when the session has waited for a command, and the timer that checks it against
    /// `client_idle_timeout_ms`.
    last_command: tokio::time::Instant,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Kind and route of the statement being handled, for the metrics.
    class: crate::stats::Class,
    /// Bytes sent to the client already counted in the metrics.
    counted_out: u64,
    /// The shard the last single-shard statement ran on, for the slow-query log.
    last_shard: Option<shardgate_topology::ShardId>,
    /// The connection holding the session's user locks (`GET_LOCK`), while it holds any.
    locks: Option<locks::LockConn>,
    /// The session's temporary tables and the connection they live on.
    temp: temporary::TemporaryTables,
}

impl Session {
    /// Serves one client until it disconnects. Errors end only this connection.
    pub async fn run(
        shared: Arc<Shared>,
        tcp: TcpStream,
        peer: SocketAddr,
        conn_id: u32,
        worker: usize,
    ) {
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(conn = conn_id, error = %e, "set_nodelay failed");
        }
        let mut client = PacketStream::with_capacity(tcp, SMALL_BUFFER);
        let phase = login::handshake(&shared, &mut client, peer, conn_id);
        let login = match tokio::time::timeout(shared.config.handshake_timeout(), phase).await {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => return,
            Err(_) => {
                debug!(conn = conn_id, %peer, "handshake timed out");
                return;
            }
            Ok(Err(e)) => {
                debug!(conn = conn_id, %peer, error = %e, "handshake failed");
                return;
            }
        };
        let settings = Arc::new(SessionSettings::new(login.names));
        let shutdown = shared.worker_shutdown_signal(worker);
        let shared_idle_timeout = shared.config.client_idle_timeout();
        let mut session = Session {
            shared,
            client,
            conn_id,
            worker,
            caps: login.caps,
            user: login.user,
            settings: Arc::clone(&settings),
            login_settings: settings,
            autocommit: true,
            txn: None,
            next_transaction: None,
            last_insert_id: 0,
            row_count: 0,
            statements: prepared::Statements::default(),
            capture: false,
            warnings: Vec::new(),
            pending_warnings: 0,
            scratch: Scratch::default(),
            reply_seq: 1,
            shutdown,
            last_command: tokio::time::Instant::now(),
            idle: Box::pin(tokio::time::sleep(
                shared_idle_timeout.unwrap_or(std::time::Duration::from_secs(3600)),
            )),
            class: crate::stats::Class::UNROUTED,
            counted_out: 0,
            last_shard: None,
            locks: None,
            temp: temporary::TemporaryTables::default(),
        };
        debug!(conn = conn_id, %peer, user = %session.user, "client logged in");
        match session.command_loop().await {
            Ok(()) => debug!(conn = conn_id, "client quit"),
            Err(e) => info!(conn = conn_id, %peer, error = %e, "client connection closed"),
        }
        // A client that leaves mid-transaction: its shards roll back and their connections go back to the pools.
        let routing = session.routing();
        session.end_transaction(&routing, false).await;
        session.release_locks().await;
        session.release_temporary().await;
    }

    /// The next command packet; `None` when the session should end quietly: the client closed, stayed idle past
    /// `client_idle_timeout_ms`, or the proxy is shutting down and the session has nothing in progress.
    async fn next_command(
        &mut self,
        limit: usize,
    ) -> Result<Option<shardgate_wire::Packet>, WireError> {
        let timeout = self.shared.config.client_idle_timeout();
        // Idle from now: a statement that ran longer than the timeout does not count as idleness.
        self.last_command = tokio::time::Instant::now();
        // Inside a transaction the session stays until it ends (or the drain timeout ends the process).
        let drain = self.txn.is_none();
        let conn_id = self.conn_id;
        let Session {
            client,
            shutdown,
            idle,
            last_command,
            ..
        } = self;
        // One read for the whole wait: a packet half read when the idle timer is re-armed must not be lost.
        let read = client.read_packet(limit);
        tokio::pin!(read);
        loop {
            tokio::select! {
                // A command already on its way is served even if shutdown started meanwhile.
                biased;
                packet = &mut read => return packet,
                _ = shutdown.wait_for(|draining| *draining), if drain => {
                    debug!(conn = conn_id, "closing an idle client connection for shutdown");
                    return Ok(None);
                }
                () = idle.as_mut(), if timeout.is_some() => {
                    // The timer is armed once per timeout, not per command: when it fires, the session may have
                    // been busy since; it is idle only if its last command is that old.
                    let due = *last_command + timeout.unwrap_or_default();
                    if tokio::time::Instant::now() >= due {
                        info!(conn = conn_id, ?timeout, "client idle past client_idle_timeout_ms; disconnected");
                        return Ok(None);
                    }
                    idle.as_mut().reset(due);
                }
            }
        }
    }

    async fn command_loop(&mut self) -> Result<(), WireError> {
        let limit = self.shared.config.max_allowed_packet;
        loop {
            // A large statement or reply grew the buffers; idle sessions give that memory back.
            self.client.shrink_to(SMALL_BUFFER);
            let packet = match self.next_command(limit).await {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(e @ WireError::PacketTooLarge { .. }) => {
                    // MySQL answers with ER_NET_PACKET_TOO_LARGE and closes: the rest of the packet is unread.
                    let msg = format!("Got a packet bigger than 'max_allowed_packet' bytes ({e})");
                    self.send_error(&MysqlError::new(ER_NET_PACKET_TOO_LARGE, msg))
                        .await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let Some(&command) = packet.payload.first() else {
                return Err(WireError::ShortPacket { what: "command" });
            };
            self.reply_seq = packet.seq.wrapping_add(1);
            match command {
                COM_QUIT => return Ok(()),
                COM_QUERY => {
                    let started = tokio::time::Instant::now();
                    self.on_query(&packet.payload).await?;
                    self.account(started, &packet.payload);
                }
                COM_STMT_PREPARE => self.on_prepare(&packet.payload).await?,
                COM_STMT_EXECUTE => {
                    let started = tokio::time::Instant::now();
                    self.on_execute(&packet.payload).await?;
                    self.account(started, &packet.payload);
                }
                // The protocol has no reply to these; answering would desynchronise the client.
                COM_STMT_CLOSE => self.on_statement_close(&packet.payload),
                COM_STMT_SEND_LONG_DATA => self.on_send_long_data(&packet.payload),
                COM_STMT_RESET => self.on_statement_reset(&packet.payload).await?,
                COM_STMT_FETCH => self.on_fetch(&packet.payload).await?,
                COM_PING => self.send_ok(0, 0).await?,
                COM_INIT_DB => {
                    let db = String::from_utf8_lossy(&packet.payload[1..]).into_owned();
                    self.use_database(&db).await?
                }
                COM_RESET_CONNECTION => {
                    let routing = self.routing();
                    self.end_transaction(&routing, false).await;
                    self.release_locks().await;
                    self.release_temporary().await;
                    self.settings = Arc::clone(&self.login_settings);
                    self.autocommit = true;
                    self.next_transaction = None;
                    self.last_insert_id = 0;
                    self.row_count = 0;
                    self.statements = prepared::Statements::default();
                    self.send_ok(0, 0).await?
                }
                COM_FIELD_LIST => self.on_field_list(&packet.payload).await?,
                COM_SET_OPTION => self.on_set_option(&packet.payload).await?,
                other => {
                    let msg = format!("Unknown command 0x{other:02x}: not supported by shardgate");
                    self.send_error(&MysqlError::new(ER_UNKNOWN_COM_ERROR, msg))
                        .await?
                }
            }
        }
    }

    /// COM_SET_OPTION: turns CLIENT_MULTI_STATEMENTS on (0) or off (1) for this session; answered with EOF.
    async fn on_set_option(&mut self, payload: &[u8]) -> Result<(), WireError> {
        use shardgate_wire::capability::CLIENT_MULTI_STATEMENTS;
        match payload.get(1..3) {
            Some([0, 0]) => self.caps |= CLIENT_MULTI_STATEMENTS,
            Some([1, 0]) => self.caps &= !CLIENT_MULTI_STATEMENTS,
            _ => {
                let msg = "Unknown option to COM_SET_OPTION";
                return self
                    .send_error(&MysqlError::new(ER_UNKNOWN_COM_ERROR, msg))
                    .await;
            }
        }
        if self.deprecate_eof() {
            return self.send_ok(0, 0).await;
        }
        let (seq, status) = (self.reply_seq, self.status());
        shardgate_wire::response::put_eof(self.client.write_buf(), seq, 0, status);
        self.client.flush().await
    }

    /// Server status flags for packets the proxy writes itself.
    fn status(&self) -> u16 {
        let mut status = 0;
        if self.autocommit {
            status |= SERVER_STATUS_AUTOCOMMIT;
        }
        if self.txn.is_some() {
            status |= SERVER_STATUS_IN_TRANS;
        }
        status
    }

    /// True when the client reads result sets without the EOF after column definitions.
    fn deprecate_eof(&self) -> bool {
        self.caps & CLIENT_DEPRECATE_EOF != 0
    }

    async fn send_ok(&mut self, affected_rows: u64, last_insert_id: u64) -> Result<(), WireError> {
        let ok = OkPacket {
            affected_rows,
            last_insert_id,
            status: self.status(),
            warnings: 0,
            info: String::new(),
        };
        ok.put(self.client.write_buf(), self.reply_seq);
        self.flush_reply().await
    }

    async fn send_error(&mut self, e: &MysqlError) -> Result<(), WireError> {
        self.queue_error(e);
        self.flush_reply().await
    }

    /// Sends what is in the client's write buffer, unless replies are being collected (multi-statements).
    async fn flush_reply(&mut self) -> Result<(), WireError> {
        if self.capture {
            return Ok(());
        }
        self.client.flush().await
    }

    /// The topology snapshot for the next statement: the current one (an `ArcSwap` guard: no reference count
    /// shared between cores is touched), or, inside a transaction, the one the transaction started on.
    fn routing(&mut self) -> RoutingRef {
        let routing = match self.txn.as_ref().and_then(|t| t.routing()) {
            Some(r) => RoutingRef::Pinned(Arc::clone(r)),
            None => RoutingRef::Current(self.shared.routing.load()),
        };
        self.follow_pin(&routing);
        routing
    }

    /// Counts a statement (COM_QUERY, COM_STMT_EXECUTE) that started at `started` in the metrics.
    fn account(&mut self, started: tokio::time::Instant, request: &[u8]) {
        let request_bytes = request.len();
        let class = std::mem::replace(&mut self.class, crate::stats::Class::UNROUTED);
        let shard = self.last_shard.take();
        let took = started.elapsed();
        let stats = self.shared.stats.worker(self.worker);
        stats.count(class);
        stats.latency.observe(took);
        if self
            .shared
            .config
            .slow_query_log()
            .is_some_and(|limit| took >= limit)
        {
            self.log_slow(took, class, shard, request);
        }
        let stats = self.shared.stats.worker(self.worker);
        let written = self.client.bytes_written();
        let (bytes_in, bytes_out) = (request_bytes as u64 + 4, written - self.counted_out);
        self.counted_out = written;
        stats
            .bytes_in
            .fetch_add(bytes_in, std::sync::atomic::Ordering::Relaxed);
        stats
            .bytes_out
            .fetch_add(bytes_out, std::sync::atomic::Ordering::Relaxed);
    }

    /// The slow-query log: duration, where it ran, and the statement's fingerprint (its literals as `?`), or its
    /// text with `slow_query_log_values`.
    fn log_slow(
        &self,
        took: std::time::Duration,
        class: crate::stats::Class,
        shard: Option<shardgate_topology::ShardId>,
        request: &[u8],
    ) {
        let shard = match (class.route, shard) {
            (0, Some(shard)) => self.shared.routing.load().describe(shard),
            _ => crate::stats::ROUTES[class.route].to_string(),
        };
        let statement = if self.shared.config.slow_query_log_values {
            String::from_utf8_lossy(request.get(1..).unwrap_or_default()).into_owned()
        } else if request.first() == Some(&COM_STMT_EXECUTE) {
            "(prepared statement execute)".to_string()
        } else {
            self.scratch.fingerprint().to_string()
        };
        warn!(
            target: "shardgate::slow_query",
            conn = self.conn_id,
            user = %self.user,
            ms = took.as_secs_f64() * 1000.0,
            kind = crate::stats::KINDS[class.kind],
            shard = %shard,
            %statement,
            "slow query"
        );
    }

    /// Puts an ERR reply in the client's write buffer without sending it yet.
    fn queue_error(&mut self, e: &MysqlError) {
        self.shared.stats.error(e.code);
        debug!(conn = self.conn_id, code = e.code, message = %e.message, "error to client");
        self.warnings = vec![warnings::Warning::error(e.code, &e.message)];
        put_err(
            self.client.write_buf(),
            self.reply_seq,
            e.code,
            &e.state,
            &e.message,
        );
    }

    async fn use_database(&mut self, db: &str) -> Result<(), WireError> {
        let keyspace_matches = self.shared.routing.load().topology.keyspace() == db;
        if keyspace_matches {
            self.send_ok(0, 0).await
        } else {
            self.send_error(&MysqlError::new(
                ER_BAD_DB_ERROR,
                format!("Unknown database '{db}'"),
            ))
            .await
        }
    }
}

/// The snapshot a statement routes on.
pub(super) enum RoutingRef {
    Current(arc_swap::Guard<Arc<crate::routing::Routing>>),
    Pinned(Arc<crate::routing::Routing>),
}

impl std::ops::Deref for RoutingRef {
    type Target = crate::routing::Routing;
    fn deref(&self) -> &crate::routing::Routing {
        match self {
            RoutingRef::Current(guard) => guard,
            RoutingRef::Pinned(arc) => arc,
        }
    }
}
