//! Backend connections: the client side of the wire codec, logged in to one shard's database.
//!
//! A [`BackendConn`] is what the pool hands out. It remembers the session settings it carries (character set,
//! session variables) so a checkout only sends `SET` when a client needs something other than what the connection
//! already has.

mod query;
mod statements;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use shardgate_pool::Manager;
use shardgate_wire::auth::{self, SHA2_FAST_AUTH_OK, SHA2_PERFORM_FULL_AUTH};
use shardgate_wire::capability::*;
use shardgate_wire::command::command_packet;
use shardgate_wire::handshake::{AuthSwitchRequest, HandshakeResponse, ServerHandshake};
use shardgate_wire::response::ErrPacket;
use shardgate_wire::tracker::PacketRole;
use shardgate_wire::{PacketStream, ResponseKind, ResponseTracker, WireError};
use tokio::net::TcpStream;

use crate::settings::{self, SessionSettings};
pub use statements::Prepared;

/// Character set and collation a fresh backend connection starts with (collation id 45).
pub const INITIAL_NAMES: &str = "utf8mb4 COLLATE utf8mb4_general_ci";
const INITIAL_COLLATION_ID: u8 = 45;
/// Largest packet the proxy accepts from a backend (MySQL's own ceiling).
pub const BACKEND_MAX_PACKET: usize = 1 << 30;

/// Capabilities the proxy asks of a backend. SESSION_TRACK stays off: replies are forwarded as bytes to clients
/// that did not negotiate it.
const BACKEND_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_DEPRECATE_EOF;

/// Where and how to log in to one shard.
#[derive(Debug, Clone)]
pub struct BackendTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
    pub connect_timeout: Duration,
    /// Longest the proxy waits for the reply to a statement it runs for itself (BEGIN, COMMIT, session settings):
    /// a hung server must not hang the session. `None`: no limit.
    pub reply_timeout: Option<Duration>,
}

/// A logged-in backend connection.
pub struct BackendConn {
    pub stream: PacketStream<TcpStream>,
    /// The server's id for this connection: what `KILL QUERY` names.
    pub thread_id: u32,
    /// The session settings in force on this connection.
    pub applied: Arc<SessionSettings>,
    /// Statements prepared on this connection: SQL text to the server's statement id.
    statements: HashMap<Arc<str>, u32>,
    /// See [`BackendTarget::reply_timeout`].
    reply_timeout: Option<Duration>,
}

/// Why a backend connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("login to {addr}: {source}")]
    Login { addr: String, source: WireError },
    #[error("{addr}: {source}")]
    Command { addr: String, source: WireError },
    #[error("backend {addr} lacks CLIENT_DEPRECATE_EOF (MariaDB 10.2+ or MySQL 5.7+ is required)")]
    TooOld { addr: String },
}

impl BackendConn {
    /// Connects and logs in, bounded by the target's connect timeout. `found_rows` opens the connection with
    /// CLIENT_FOUND_ROWS (UPDATE reports matched rather than changed rows).
    pub async fn connect(t: &BackendTarget, found_rows: bool) -> Result<BackendConn, BackendError> {
        let addr = format!("{}:{}", t.host, t.port);
        let login = Self::connect_inner(t, &addr, found_rows);
        match tokio::time::timeout(t.connect_timeout, login).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::ConnectTimeout {
                addr,
                timeout: t.connect_timeout,
            }),
        }
    }

    async fn connect_inner(
        t: &BackendTarget,
        addr: &str,
        found_rows: bool,
    ) -> Result<BackendConn, BackendError> {
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|source| BackendError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        tcp.set_nodelay(true)
            .map_err(|source| BackendError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let mut stream = PacketStream::new(tcp);
        let login = |source| BackendError::Login {
            addr: addr.to_string(),
            source,
        };
        let greeting = stream
            .read_packet(BACKEND_MAX_PACKET)
            .await
            .map_err(login)?
            .ok_or_else(|| login(WireError::Truncated { got: 0, want: 4 }))?;
        let hs = ServerHandshake::decode(&greeting.payload).map_err(login)?;
        if hs.capabilities & CLIENT_DEPRECATE_EOF == 0 {
            return Err(BackendError::TooOld {
                addr: addr.to_string(),
            });
        }
        let mut caps =
            BACKEND_CAPABILITIES & hs.capabilities | CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41;
        if found_rows {
            caps |= CLIENT_FOUND_ROWS;
        }
        let token =
            auth::token_for(&hs.auth_plugin, t.password.as_bytes(), &hs.nonce).unwrap_or_default();
        let resp = HandshakeResponse {
            capabilities: caps,
            max_packet: BACKEND_MAX_PACKET as u32,
            charset: INITIAL_COLLATION_ID,
            user: t.user.clone(),
            auth_response: token,
            database: Some(t.database.clone()),
            auth_plugin: Some(hs.auth_plugin.clone()),
        };
        let mut buf = BytesMut::new();
        resp.encode(&mut buf);
        stream.queue(greeting.seq.wrapping_add(1), &buf);
        stream.flush().await.map_err(login)?;
        authenticate(&mut stream, &t.password)
            .await
            .map_err(login)?;
        Ok(BackendConn {
            stream,
            thread_id: hs.connection_id,
            applied: Arc::new(SessionSettings::new(INITIAL_NAMES)),
            statements: HashMap::new(),
            reply_timeout: t.reply_timeout,
        })
    }

    /// Runs a statement whose reply the client never sees (session setup), reading the reply to its end.
    pub async fn run_internal(&mut self, sql: &str) -> Result<(), WireError> {
        self.exchange(sql, |_, _| Ok(())).await
    }

    /// Sends `sql` as a COM_QUERY and reads the whole reply, showing `visit` each packet but an ERR, which becomes
    /// the result.
    pub(crate) async fn exchange(
        &mut self,
        sql: &str,
        visit: impl FnMut(PacketRole, &[u8]) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        match self.reply_timeout {
            None => self.exchange_inner(sql, visit).await,
            Some(limit) => match tokio::time::timeout(limit, self.exchange_inner(sql, visit)).await
            {
                Ok(r) => r,
                Err(_) => Err(WireError::timed_out(format!("no reply within {limit:?}"))),
            },
        }
    }

    async fn exchange_inner(
        &mut self,
        sql: &str,
        mut visit: impl FnMut(PacketRole, &[u8]) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let payload = command_packet(shardgate_wire::command::COM_QUERY, sql.as_bytes());
        self.stream.queue(0, &payload);
        self.stream.flush().await?;
        let mut tracker = ResponseTracker::new(ResponseKind::Query, true);
        let mut error = None;
        while !tracker.is_done() {
            let Some(p) = self.stream.read_packet(BACKEND_MAX_PACKET).await? else {
                return Err(WireError::Truncated { got: 0, want: 4 });
            };
            // read_packet has already joined 16 MiB parts, so the tracker sees one whole packet, never a part.
            let h = shardgate_wire::PacketHeader {
                len: p.payload.len().min(shardgate_wire::MAX_PAYLOAD - 1),
                seq: p.seq,
            };
            match tracker.on_packet(h, &p.payload)?.role {
                PacketRole::Err => error = Some(ErrPacket::decode(&p.payload)?),
                role => visit(role, &p.payload)?,
            }
        }
        match error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Sends a command that has no argument and an OK or ERR reply (COM_PING, COM_RESET_CONNECTION).
    async fn simple_command(&mut self, command: u8) -> Result<(), WireError> {
        self.stream.queue(0, &[command]);
        self.stream.flush().await?;
        let Some(p) = self.stream.read_packet(BACKEND_MAX_PACKET).await? else {
            return Err(WireError::Truncated { got: 0, want: 4 });
        };
        match p.payload.first() {
            Some(0x00) => Ok(()),
            Some(0xff) => Err(ErrPacket::decode(&p.payload)?.into()),
            _ => Err(WireError::Malformed {
                what: "reply to a simple command",
                detail: format!("{} bytes, first {:?}", p.payload.len(), p.payload.first()),
            }),
        }
    }

    /// COM_RESET_CONNECTION: the server drops the connection's session state (variables, temporary tables, user
    /// locks, prepared statements, an open transaction) and the connection is as fresh as a new one.
    pub async fn reset(&mut self) -> Result<(), WireError> {
        self.simple_command(shardgate_wire::command::COM_RESET_CONNECTION)
            .await?;
        self.statements.clear();
        // The server goes back to the login character set; say so explicitly rather than rely on it.
        self.run_internal(&format!("SET NAMES {INITIAL_NAMES}"))
            .await?;
        self.applied = Arc::new(SessionSettings::new(INITIAL_NAMES));
        Ok(())
    }

    /// Brings the connection's settings to `wanted` if they differ. On an error the connection keeps what it had
    /// in `applied` only if the server refused a statement; the caller closes it otherwise.
    pub async fn ensure_settings(
        &mut self,
        wanted: &Arc<SessionSettings>,
    ) -> Result<(), WireError> {
        if settings::same(&self.applied, wanted) {
            return Ok(());
        }
        let statements = wanted.transition_from(&self.applied);
        for (done, sql) in statements.iter().enumerate() {
            if let Err(e) = self.run_internal(sql).await {
                if done > 0 {
                    // Part of the transition is in force: the connection's state is no longer known exactly.
                    return Err(WireError::Unsupported(format!(
                        "session settings half applied: {e}"
                    )));
                }
                return Err(e);
            }
        }
        self.applied = Arc::clone(wanted);
        Ok(())
    }
}

/// Reads the server's answers to a login until OK or ERR, following auth switches and caching_sha2 fast auth.
async fn authenticate(
    stream: &mut PacketStream<TcpStream>,
    password: &str,
) -> Result<(), WireError> {
    loop {
        let Some(p) = stream.read_packet(BACKEND_MAX_PACKET).await? else {
            return Err(WireError::Truncated { got: 0, want: 4 });
        };
        let seq = p.seq.wrapping_add(1);
        match p.payload.first() {
            Some(0x00) => return Ok(()),
            Some(0xff) => return Err(ErrPacket::decode(&p.payload)?.into()),
            Some(0xfe) => {
                let sw = AuthSwitchRequest::decode(&p.payload)?;
                let token = auth::token_for(&sw.plugin, password.as_bytes(), &sw.nonce)
                    .ok_or_else(|| {
                        WireError::Unsupported(format!("backend auth plugin {}", sw.plugin))
                    })?;
                stream.queue(seq, &token);
                stream.flush().await?;
            }
            Some(0x01) if p.payload.get(1) == Some(&SHA2_FAST_AUTH_OK) => continue,
            Some(0x01) if p.payload.get(1) == Some(&SHA2_PERFORM_FULL_AUTH) => {
                return Err(WireError::Unsupported(
                    "caching_sha2_password full authentication to a backend (needs TLS)".into(),
                ));
            }
            _ => {
                return Err(WireError::Malformed {
                    what: "login reply",
                    detail: format!("unexpected seq {seq}"),
                });
            }
        }
    }
}

/// Opens connections to one shard for its pool.
#[derive(Clone)]
pub struct ShardConnector {
    pub target: BackendTarget,
}

impl Manager for ShardConnector {
    type Conn = BackendConn;
    type Error = BackendError;
    /// Whether the connection has CLIENT_FOUND_ROWS, which changes what UPDATE reports: a client gets a
    /// connection opened with its own choice.
    type Key = bool;
    async fn connect(&self, found_rows: bool) -> Result<BackendConn, BackendError> {
        BackendConn::connect(&self.target, found_rows).await
    }

    async fn check(&self, conn: &mut BackendConn) -> Result<(), BackendError> {
        conn.simple_command(shardgate_wire::command::COM_PING)
            .await
            .map_err(|source| self.failed(source))
    }

    async fn reset(&self, conn: &mut BackendConn) -> Result<(), BackendError> {
        conn.reset().await.map_err(|source| self.failed(source))
    }
}

impl ShardConnector {
    fn failed(&self, source: WireError) -> BackendError {
        BackendError::Command {
            addr: format!("{}:{}", self.target.host, self.target.port),
            source,
        }
    }

    /// Asks the server, on a connection of its own, to stop the statement running on connection `thread_id`
    /// (`KILL QUERY`): the statement ends with ERR 1317 and the connection stays usable.
    pub async fn kill_query(&self, thread_id: u32) -> Result<(), BackendError> {
        let mut side = BackendConn::connect(&self.target, false).await?;
        let sql = format!("KILL QUERY {thread_id}");
        let kill = side.run_internal(&sql);
        match tokio::time::timeout(self.target.connect_timeout, kill).await {
            Ok(r) => r.map_err(|source| self.failed(source)),
            Err(_) => Err(BackendError::ConnectTimeout {
                addr: format!("{}:{}", self.target.host, self.target.port),
                timeout: self.target.connect_timeout,
            }),
        }
    }
}
