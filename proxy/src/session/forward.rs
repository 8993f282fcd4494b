//! Running a statement on one shard: check out a backend connection, send the client's packet, and forward the
//! reply packet by packet as bytes, translating only what the client's capabilities require.

use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use shardgate_pool::{PoolError, Pooled};
use shardgate_topology::ShardId;
use shardgate_wire::packet::{PacketHeader, next_packet};
use shardgate_wire::response::{ErrPacket, put_eof};
use shardgate_wire::stmt::{ExecuteRequest, SendLongData, encode_execute};
use shardgate_wire::tracker::PacketRole;
use shardgate_wire::{ResponseKind, ResponseTracker, WireError};
use tracing::{debug, warn};

use super::Session;
use super::transaction::backend_error;
use super::warnings::Warning;
use crate::backend::{BackendConn, BackendError, ShardConnector};
use crate::config::KILL_GRACE;
use crate::mysql_error::*;
use crate::routing::Routing;

/// ER_LOCK_DEADLOCK: the server chose this connection's transaction as a deadlock victim and rolled it back.
pub(super) const ER_LOCK_DEADLOCK: u16 = 1213;

/// How long to look for a server's reply after sending it the command failed.
const AFTER_WRITE_ERROR_READ: std::time::Duration = std::time::Duration::from_secs(1);

/// What to run on the shard.
#[derive(Clone, Copy)]
pub(super) enum ShardCommand<'a> {
    /// A command packet forwarded as it is.
    Raw(&'a [u8]),
    /// A client's COM_STMT_EXECUTE, for a statement prepared on demand on the connection that runs it.
    Execute {
        sql: &'a Arc<str>,
        request: &'a ExecuteRequest<'a>,
        /// Long data per parameter, replayed with the backend's statement id before the execute.
        long_data: &'a [Option<Vec<u8>>],
    },
}

/// How a forwarded reply ended, once the client has all of it.
pub(super) enum Reply {
    /// The backend connection is idle and can go back to the pool.
    Clean,
    /// As `Clean`, but the server rolled back the connection's transaction (a deadlock victim): the rest of a
    /// transaction on other shards must roll back too, as MySQL rolls back the whole transaction.
    RolledBack,
    /// The client has its whole reply, but the connection must be closed: more bytes followed the reply (it is
    /// out of step), or the server reported a network error (08S01) and is closing it.
    Unusable,
    /// The statement ran past its timeout and was killed; the client has the timeout error. A KILL sent as the
    /// statement was finishing could still hit the connection's next statement, so it serves no other session.
    Killed,
}

/// How forwarding one reply failed.
pub(super) enum ForwardError {
    /// The backend connection broke; `sent` says whether part of the reply already reached the client, and
    /// `next_seq` is the sequence id the client expects next.
    Backend {
        error: WireError,
        sent: bool,
        next_seq: u8,
    },
    /// The client socket broke: the session ends.
    Client(WireError),
}

impl Session {
    /// Runs `payload` (a whole command packet) on `shard` and forwards the reply. `idempotent` statements are
    /// retried once on a fresh connection when a reused one turns out to be dead before answering.
    pub(super) async fn run_on_shard(
        &mut self,
        routing: &Routing,
        shard: ShardId,
        payload: &[u8],
        idempotent: bool,
    ) -> Result<(), WireError> {
        let command = ShardCommand::Raw(payload);
        self.forward_on_shard(routing, shard, command, ResponseKind::Query, idempotent)
            .await
    }

    /// COM_FIELD_LIST: every shard has the same tables, so the first one answers.
    pub(super) async fn on_field_list(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let routing = self.routing();
        let shard = self.any_shard();
        let command = ShardCommand::Raw(payload);
        self.forward_on_shard(&routing, shard, command, ResponseKind::FieldList, true)
            .await
    }

    pub(super) async fn forward_on_shard(
        &mut self,
        routing: &Routing,
        shard: ShardId,
        command: ShardCommand<'_>,
        kind: ResponseKind,
        idempotent: bool,
    ) -> Result<(), WireError> {
        let mut attempts = 0;
        // Where this reply starts in the client's buffer (earlier replies of a multi-statement query may be there).
        let mark = self.client.write_buf().len();
        loop {
            attempts += 1;
            let (mut conn, held) = match self.acquire(routing, shard).await {
                Ok(c) => c,
                Err(e) => return self.send_error(&e).await,
            };
            let reused = conn.was_reused();
            self.last_shard = Some(shard);
            let sent_at = tokio::time::Instant::now();
            let result = match &command {
                ShardCommand::Raw(payload) => self.forward(&mut conn, payload, kind).await,
                ShardCommand::Execute {
                    sql,
                    request,
                    long_data,
                } => match bind_execute(&mut conn, sql, request, long_data).await {
                    Ok(bound) => self.forward(&mut conn, &bound, kind).await,
                    Err(WireError::Server {
                        code,
                        state,
                        message,
                    }) => {
                        // The server refused to prepare the statement here (say, a table gone): its error, as is.
                        self.give_back(shard, conn, held);
                        let e = MysqlError::from_backend(code, state, message);
                        return self.send_error(&e).await;
                    }
                    Err(error) => Err(ForwardError::Backend {
                        error,
                        sent: false,
                        next_seq: self.reply_seq,
                    }),
                },
            };
            routing.backend_time(shard, sent_at.elapsed());
            match result {
                Ok(Reply::Clean) => {
                    let count = std::mem::take(&mut self.pending_warnings);
                    if self.collect_warnings(&mut conn, count).await {
                        self.give_back(shard, conn, held);
                    } else {
                        // Out of step: closing it rolls back its part of a transaction, so the rest rolls back too.
                        drop(conn);
                        if held {
                            self.abort_transaction(routing).await;
                        }
                    }
                    return Ok(());
                }
                Ok(Reply::RolledBack) => {
                    self.give_back(shard, conn, held);
                    if held {
                        self.abort_transaction(routing).await;
                    }
                    return Ok(());
                }
                Ok(Reply::Killed) => {
                    // Inside a transaction the transaction goes on, as on MySQL: only the statement failed.
                    if held {
                        self.give_back(shard, conn, held);
                    }
                    return Ok(());
                }
                Ok(Reply::Unusable) => {
                    warn!(conn = self.conn_id, shard = %routing.describe(shard), "backend connection unusable after a reply; closed");
                    drop(conn);
                    if held {
                        self.abort_transaction(routing).await;
                    }
                    return Ok(());
                }
                Err(ForwardError::Client(e)) => return Err(e),
                Err(ForwardError::Backend {
                    error,
                    sent,
                    next_seq,
                }) => {
                    drop(conn);
                    let hung = error.is_timeout();
                    // A stale pooled socket fails at once; a statement that ran out of time is not tried again.
                    if !held && !sent && !hung && reused && idempotent && attempts == 1 {
                        debug!(conn = self.conn_id, shard = %routing.describe(shard), %error, "stale backend connection; retrying");
                        // Packets translated but never flushed must not be sent twice.
                        self.client.write_buf().truncate(mark);
                        continue;
                    }
                    warn!(conn = self.conn_id, shard = %routing.describe(shard), %error, "backend failed during a statement");
                    let mut msg = if hung {
                        format!(
                            "Query execution was interrupted (statement_timeout_ms exceeded); shard {} did not \
                             answer the KILL and its connection was closed",
                            routing.describe(shard)
                        )
                    } else {
                        format!(
                            "Lost connection to shard {} during query: {error}",
                            routing.describe(shard)
                        )
                    };
                    if held && self.txn.is_some() {
                        self.abort_transaction(routing).await;
                        msg.push_str("; the transaction was rolled back on every shard");
                    }
                    let code = if hung {
                        ER_STATEMENT_TIMEOUT
                    } else {
                        ER_NET_READ_ERROR
                    };
                    let e = MysqlError::new(code, msg);
                    shardgate_wire::response::put_err(
                        self.client.write_buf(),
                        next_seq,
                        e.code,
                        &e.state,
                        &e.message,
                    );
                    return self.flush_reply().await;
                }
            }
        }
    }

    /// A pooled backend connection for `shard` that carries this session's settings.
    pub(super) async fn checkout(
        &mut self,
        routing: &Routing,
        shard: ShardId,
    ) -> Result<Pooled<ShardConnector>, MysqlError> {
        let found_rows = self.caps & shardgate_wire::capability::CLIENT_FOUND_ROWS != 0;
        let Some(pool) = routing.pool(self.worker, shard) else {
            return Err(MysqlError::new(
                ER_NOT_SUPPORTED_YET,
                format!("shard #{} is not in the topology", shard.0),
            ));
        };
        let asked = tokio::time::Instant::now();
        let got = pool.get(found_rows).await;
        self.shared
            .stats
            .worker(self.worker)
            .pool_wait
            .observe(asked.elapsed());
        let mut conn = got.map_err(|e| pool_error(routing, shard, e))?;
        if let Err(e) = conn.ensure_settings(&self.settings).await {
            // The backend refused a setting: the connection is fine, the request is not.
            if !e.is_fatal() {
                conn.release();
            }
            return Err(backend_error(routing, shard, e));
        }
        Ok(conn)
    }

    /// Runs a statement whose reply the client does not see (DDL fan-out), on a pooled connection.
    pub(super) async fn run_internal_on_shard(
        &mut self,
        routing: &Routing,
        shard: ShardId,
        sql: &str,
    ) -> Result<(), String> {
        let mut conn = self.checkout(routing, shard).await.map_err(|e| e.message)?;
        match conn.run_internal(sql).await {
            Ok(()) => {
                conn.release();
                Ok(())
            }
            Err(e) if !e.is_fatal() => {
                conn.release();
                Err(e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends the command and forwards the reply until the tracker says it is complete. Past `statement_timeout_ms`
    /// the statement is killed (KILL QUERY on a side connection) and its ERR replaced by the timeout error.
    pub(super) async fn forward(
        &mut self,
        conn: &mut Pooled<ShardConnector>,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Reply, ForwardError> {
        let backend = |error, sent, next_seq| ForwardError::Backend {
            error,
            sent,
            next_seq,
        };
        conn.stream.queue(0, payload);
        // A server that refuses a command before reading all of it (a packet over its max_allowed_packet) answers
        // with an ERR and closes, which can fail our write. Its ERR is still in our receive buffer: read it, so
        // the client learns the real reason rather than a lost connection.
        let write_error = conn.stream.flush().await.err();

        let translate = !self.deprecate_eof();
        let mut tracker = ResponseTracker::new(kind, true);
        let mut shift = 0u8;
        let mut next_seq = self.reply_seq;
        let mut sent = false;
        let mut server_closing = false;
        let mut rolled_back = false;
        let write_timeout = self.shared.config.client_write_timeout();
        let timeout = self.shared.config.statement_timeout();
        let mut deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut killed = false;
        let mut kill: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            // Once killed, packets are copied one by one so the ERR can be replaced.
            let copying = translate || killed;
            let rbuf = conn.stream.read_buf();
            let mut consumed = 0;
            let mut done = false;
            // A malformed packet ends the reply, but only after the good packets before it reach the client, so
            // the ERR that follows carries the next sequence id the client expects.
            let mut malformed = None;
            while let Some((h, range)) = next_packet(rbuf, consumed) {
                let body = &rbuf[range.clone()];
                let ev = match tracker.on_packet(h, body) {
                    Ok(ev) => ev,
                    Err(e) => {
                        malformed = Some(e);
                        break;
                    }
                };
                match ev.role {
                    PacketRole::Ok {
                        affected_rows,
                        last_insert_id,
                        warnings,
                        ..
                    } => {
                        if last_insert_id != 0 {
                            self.last_insert_id = last_insert_id;
                        }
                        self.row_count = affected_rows as i64;
                        self.pending_warnings = warnings;
                    }
                    PacketRole::RowsEnd { warnings, .. } => self.pending_warnings = warnings,
                    PacketRole::ColumnCount => self.row_count = -1,
                    // A network-class error (packet too large, timeout): the server closes the connection next.
                    PacketRole::Err => {
                        if let Ok(err) = ErrPacket::decode(body) {
                            self.shared.stats.error(err.code);
                            self.warnings = vec![Warning::error(err.code, &err.message)];
                        }
                        server_closing = body.get(3..9) == Some(b"#08S01");
                        rolled_back = body.get(1..3) == Some(&ER_LOCK_DEADLOCK.to_le_bytes());
                    }
                    _ => {}
                }
                if killed && ev.role == PacketRole::Err {
                    let e = statement_timeout_error(timeout);
                    self.warnings = vec![Warning::error(e.code, &e.message)];
                    let seq = h.seq.wrapping_add(shift);
                    let out = self.client.write_buf();
                    shardgate_wire::response::put_err(out, seq, e.code, &e.state, &e.message);
                } else if translate {
                    shift = self.translate_packet(h, body, ev.role, shift);
                } else if copying {
                    copy_packet(self.client.write_buf(), h.seq.wrapping_add(shift), body);
                }
                next_seq = h.seq.wrapping_add(shift).wrapping_add(1);
                consumed = range.end;
                if ev.done {
                    done = true;
                    break;
                }
            }
            if consumed > 0 && self.capture {
                // Several statements in one COM_QUERY: the replies are collected, renumbered and sent together.
                if !copying {
                    self.client.write_buf().extend_from_slice(&rbuf[..consumed]);
                }
                sent = true;
                conn.stream.read_buf().advance(consumed);
            } else if consumed > 0 {
                // A client that stops reading must not hold a backend connection forever.
                let write = if copying {
                    tokio::time::timeout(write_timeout, self.client.flush()).await
                } else {
                    tokio::time::timeout(write_timeout, self.client.write_raw(&rbuf[..consumed]))
                        .await
                };
                write
                    .map_err(|_| {
                        ForwardError::Client(WireError::timed_out("client write timed out"))
                    })?
                    .map_err(ForwardError::Client)?;
                sent = true;
                conn.stream.read_buf().advance(consumed);
            }
            if let Some(e) = malformed {
                return Err(backend(e, sent, next_seq));
            }
            if done {
                if server_closing || !conn.stream.read_buf().is_empty() {
                    return Ok(Reply::Unusable);
                }
                if killed {
                    // The KILL must have reached the server before the connection serves anything else, or it could
                    // stop the next statement; one that never got there leaves the connection unusable.
                    let landed = match (kill.take(), deadline) {
                        (Some(task), Some(at)) => tokio::time::timeout_at(at, task).await.is_ok(),
                        _ => true,
                    };
                    return Ok(if landed {
                        Reply::Killed
                    } else {
                        Reply::Unusable
                    });
                }
                if rolled_back {
                    return Ok(Reply::RolledBack);
                }
                return Ok(Reply::Clean);
            }
            let filled = if write_error.is_some() {
                // After a failed write only bytes already received count: never wait on a dead connection.
                tokio::time::timeout(AFTER_WRITE_ERROR_READ, conn.stream.fill())
                    .await
                    .unwrap_or(Ok(0))
            } else if let Some(at) = deadline {
                match tokio::time::timeout_at(at, conn.stream.fill()).await {
                    Ok(r) => r,
                    Err(_) if killed => {
                        let hung = WireError::timed_out("no answer to KILL QUERY");
                        return Err(backend(hung, sent, next_seq));
                    }
                    Err(_) => {
                        killed = true;
                        deadline = Some(tokio::time::Instant::now() + KILL_GRACE);
                        // Sent from a task of its own: a hung server must not hold this statement up any longer
                        // than the grace.
                        let (connector, thread_id) = (conn.manager().clone(), conn.thread_id);
                        let session = self.conn_id;
                        kill = Some(tokio::spawn(async move {
                            if let Err(e) = connector.kill_query(thread_id).await {
                                warn!(conn = session, error = %e, "KILL QUERY for a statement past its timeout failed");
                            }
                        }));
                        continue;
                    }
                }
            } else {
                conn.stream.fill().await
            };
            match filled {
                Ok(n) if n > 0 => {}
                other => {
                    let error = match (write_error, other) {
                        (Some(e), _) | (None, Err(e)) => e,
                        (None, Ok(_)) => WireError::Truncated { got: 0, want: 4 },
                    };
                    return Err(backend(error, sent, next_seq));
                }
            }
        }
    }

    /// Re-emits one backend packet for a client without CLIENT_DEPRECATE_EOF: an EOF goes after the last column
    /// definition, and the 0xFE OK that ends rows becomes a classic EOF. Returns the new sequence shift.
    fn translate_packet(
        &mut self,
        h: PacketHeader,
        body: &[u8],
        role: PacketRole,
        shift: u8,
    ) -> u8 {
        let status = self.status();
        let out = self.client.write_buf();
        let seq = h.seq.wrapping_add(shift);
        match role {
            PacketRole::RowsEnd { warnings, status } => {
                put_eof(out, seq, warnings, status);
                shift
            }
            PacketRole::ColumnDef { last: true } => {
                copy_packet(out, seq, body);
                put_eof(out, seq.wrapping_add(1), 0, status);
                shift.wrapping_add(1)
            }
            _ => {
                copy_packet(out, seq, body);
                shift
            }
        }
    }
}

/// Makes sure the connection has the statement prepared, replays long data, and gives the execute payload with
/// the backend's statement id.
pub(super) async fn bind_execute(
    conn: &mut BackendConn,
    sql: &Arc<str>,
    request: &ExecuteRequest<'_>,
    long_data: &[Option<Vec<u8>>],
) -> Result<BytesMut, WireError> {
    let id = conn.statement_id(sql).await?;
    let mut packet = BytesMut::new();
    for (param, data) in long_data.iter().enumerate() {
        let Some(data) = data else { continue };
        packet.clear();
        let chunk = SendLongData {
            statement_id: id,
            param_id: u16::try_from(param).unwrap_or(u16::MAX),
            data,
        };
        chunk.encode(&mut packet, id);
        conn.stream.queue(0, &packet);
    }
    packet.clear();
    // No cursor: the reply is an ordinary result set the proxy can forward and track.
    encode_execute(&mut packet, id, request, 0);
    Ok(packet)
}

/// The error a statement killed for `statement_timeout_ms` ends with: MariaDB's own for max_statement_time.
fn statement_timeout_error(timeout: Option<std::time::Duration>) -> MysqlError {
    let ms = timeout.map_or(0, |t| t.as_millis());
    MysqlError::new(
        ER_STATEMENT_TIMEOUT,
        format!("Query execution was interrupted (statement_timeout_ms = {ms} exceeded)"),
    )
}

fn copy_packet(out: &mut bytes::BytesMut, seq: u8, body: &[u8]) {
    out.reserve(PacketHeader::SIZE + body.len());
    out.put_uint_le(body.len() as u64, 3);
    out.put_u8(seq);
    out.put_slice(body);
}

fn pool_error(routing: &Routing, shard: ShardId, e: PoolError<BackendError>) -> MysqlError {
    let name = routing.describe(shard);
    match e {
        PoolError::Timeout { waited, max_size } => MysqlError::new(
            ER_CON_COUNT_ERROR,
            format!(
                "Too many connections: no backend connection free for shard {name} after {waited:?} ({max_size} in use)"
            ),
        ),
        PoolError::QueueFull { waiters, max_size } => MysqlError::new(
            ER_CON_COUNT_ERROR,
            format!(
                "Too many connections: {waiters} statements already waiting for shard {name} ({max_size} in use)"
            ),
        ),
        PoolError::Unavailable {
            retry_in,
            last_error,
        } => MysqlError::new(
            ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
            format!(
                "Unable to connect to shard {name}: its server is marked down after failed connects \
                 (next try in {retry_in:?}): {last_error}"
            ),
        ),
        PoolError::Connect(e) => MysqlError::new(
            ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
            format!("Unable to connect to shard {name}: {e}"),
        ),
        PoolError::Closed => {
            MysqlError::new(ER_SERVER_SHUTDOWN, format!("shard {name} is shutting down"))
        }
    }
}
