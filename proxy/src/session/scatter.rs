//! Running one statement on several shards and answering with one merged reply.
//!
//! The command goes out to a batch of shards before any reply is read, so the shards work at the same time while
//! the session, which owns no threads, reads their replies one after another: the wait is the slowest shard's, not
//! the sum. Batches are `scatter_fanout` shards wide, which bounds the connections one statement holds. Every
//! reply is buffered (up to `scatter_max_rows` rows in all) and handed to `shardgate-merge`, which writes the
//! client's reply.

use bytes::Bytes;
use shardgate_merge::{MergeSpec, OutputKind, Protocol};
use shardgate_pool::Pooled;
use shardgate_topology::ShardId;
use shardgate_wire::tracker::PacketRole;
use shardgate_wire::{PacketHeader, ResponseKind, ResponseTracker, WireError};
use tracing::{debug, warn};

use super::Session;
use super::forward::{ER_LOCK_DEADLOCK, ShardCommand, bind_execute};
use crate::backend::{BACKEND_MAX_PACKET, BackendConn, ShardConnector};
use crate::mysql_error::*;
use crate::routing::Routing;

/// Why gathering replies failed.
enum GatherError {
    /// Tell the client this, and carry on.
    Client(MysqlError),
}

impl Session {
    /// Runs each target's command on its shard and queues for the client the merge of their replies (not flushed,
    /// so a caller can still replace it); `None` when an error was queued instead.
    pub(super) async fn scatter(
        &mut self,
        routing: &Routing,
        targets: &[(ShardId, ShardCommand<'_>)],
        spec: &MergeSpec,
    ) -> Result<Option<OutputKind>, WireError> {
        let protocol = match targets.first() {
            Some((_, ShardCommand::Execute { .. })) => Protocol::Binary,
            _ => Protocol::Text,
        };
        let replies = match self.gather(routing, targets, spec.max_rows).await {
            Ok(r) => r,
            Err(GatherError::Client(e)) => {
                self.queue_error(&e);
                return Ok(None);
            }
        };
        let deprecate_eof = self.deprecate_eof();
        let first_seq = self.reply_seq;
        let out = self.client.write_buf();
        let start = out.len();
        match shardgate_merge::merge(spec, protocol, replies, deprecate_eof, first_seq, out) {
            Ok(output) => {
                match output.kind {
                    OutputKind::Ok {
                        affected_rows,
                        last_insert_id,
                    } => {
                        if last_insert_id != 0 {
                            self.last_insert_id = last_insert_id;
                        }
                        self.row_count = affected_rows as i64;
                    }
                    OutputKind::ResultSet => self.row_count = -1,
                    // A deadlock victim's transaction is gone on its shard: roll back the rest, as MySQL would.
                    OutputKind::Err { code } if code == ER_LOCK_DEADLOCK => {
                        self.abort_transaction(routing).await
                    }
                    OutputKind::Err { .. } => {}
                }
                Ok(Some(output.kind))
            }
            Err(e) => {
                self.client.write_buf().truncate(start);
                let msg = format!("cannot merge the shards' replies: {e}");
                self.queue_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg));
                Ok(None)
            }
        }
    }

    /// Every target's complete reply, in the order of `targets`.
    async fn gather(
        &mut self,
        routing: &Routing,
        targets: &[(ShardId, ShardCommand<'_>)],
        max_rows: usize,
    ) -> Result<Vec<Vec<Bytes>>, GatherError> {
        let fanout = self.shared.config.scatter_fanout.max(1);
        // The whole scattered statement is bounded by the statement timeout.
        let deadline = self
            .shared
            .config
            .statement_timeout()
            .map(|t| tokio::time::Instant::now() + t);
        let mut replies = Vec::with_capacity(targets.len());
        let mut rows = 0usize;
        for batch in batches(targets, fanout) {
            let mut conns: Vec<(ShardId, Pooled<ShardConnector>, bool)> =
                Vec::with_capacity(batch.len());
            for &(shard, _) in batch {
                match self.acquire(routing, shard).await {
                    Ok((conn, held)) => conns.push((shard, conn, held)),
                    Err(e) => {
                        self.give_all_back(conns);
                        return Err(GatherError::Client(e));
                    }
                }
            }
            // Send to the whole batch first: the shards run the statement while the replies are read in turn.
            let mut failed = None;
            for (i, ((shard, conn, _), (_, command))) in conns.iter_mut().zip(batch).enumerate() {
                if let Err(e) = send(conn, command).await {
                    failed = Some((i, *shard, e));
                    break;
                }
            }
            let mut read = 0;
            let sent_at = tokio::time::Instant::now();
            if failed.is_none() {
                for (i, (shard, conn, _)) in conns.iter_mut().enumerate() {
                    let reply = match deadline {
                        None => read_reply(conn, &mut rows).await,
                        Some(at) => tokio::time::timeout_at(at, read_reply(conn, &mut rows))
                            .await
                            .unwrap_or_else(|_| Err(WireError::timed_out("statement timeout"))),
                    };
                    match reply {
                        Ok(reply) => {
                            // Read in turn: a shard's time is until its reply was read, an upper bound.
                            let took = sent_at.elapsed();
                            routing.backend_time(*shard, took);
                            replies.push(reply);
                            read = i + 1;
                        }
                        Err(e) => {
                            failed = Some((i, *shard, e));
                            break;
                        }
                    }
                    if rows > max_rows {
                        break;
                    }
                }
            }
            if let Some((i, shard, e)) = failed {
                if e.is_timeout() {
                    // The shards still running it are told to stop; their connections close with the others.
                    for (_, conn, _) in &conns[i..] {
                        let (connector, thread_id) = (conn.manager().clone(), conn.thread_id);
                        tokio::spawn(async move {
                            if let Err(e) = connector.kill_query(thread_id).await {
                                debug!(error = %e, "KILL QUERY after a scatter timeout failed");
                            }
                        });
                    }
                }
                return Err(self.gather_failed(routing, conns, i, shard, e).await);
            }
            if rows > max_rows {
                // Replies not read leave their connections out of step: close them rather than pool them.
                let mut held_closed = false;
                for (i, (shard, conn, held)) in conns.into_iter().enumerate() {
                    if i < read {
                        self.give_back(shard, conn, held);
                    } else {
                        held_closed |= held;
                    }
                }
                if held_closed {
                    self.abort_transaction(routing).await;
                }
                let msg = format!(
                    "the shards returned more than scatter_max_rows ({max_rows}) rows to merge; add a tenant key \
                     or a LIMIT"
                );
                return Err(GatherError::Client(MysqlError::new(
                    ER_NOT_SUPPORTED_YET,
                    msg,
                )));
            }
            self.give_all_back(conns);
        }
        Ok(replies)
    }

    fn give_all_back(&mut self, conns: Vec<(ShardId, Pooled<ShardConnector>, bool)>) {
        for (shard, conn, held) in conns {
            self.give_back(shard, conn, held);
        }
    }

    /// Cleans up after connection `broken` of a batch failed: the connections before it have their replies and
    /// go back; it and the ones after it are out of step and are closed.
    async fn gather_failed(
        &mut self,
        routing: &Routing,
        conns: Vec<(ShardId, Pooled<ShardConnector>, bool)>,
        broken: usize,
        shard: ShardId,
        e: WireError,
    ) -> GatherError {
        let mut held_lost = false;
        for (i, (s, conn, held)) in conns.into_iter().enumerate() {
            if i < broken {
                self.give_back(s, conn, held);
            } else {
                held_lost |= held;
            }
        }
        if let WireError::Server {
            code,
            state,
            message,
        } = e
        {
            // A refused prepare: the connection is fine, but it is already closed with the others; say why. A
            // transaction that lost a connection with them lost that shard's part: the rest rolls back too.
            let mut e = MysqlError::from_backend(code, state, message);
            if held_lost && self.txn.is_some() {
                self.abort_transaction(routing).await;
                e.message
                    .push_str("; the transaction was rolled back on every shard");
            }
            return GatherError::Client(e);
        }
        let timed_out = e.is_timeout();
        warn!(conn = self.conn_id, shard = %routing.describe(shard), error = %e, "backend failed during a scattered statement");
        let mut msg = if timed_out {
            format!(
                "Query execution was interrupted (statement_timeout_ms = {} exceeded): shard {} had not answered",
                self.shared.config.statement_timeout_ms,
                routing.describe(shard)
            )
        } else {
            format!(
                "Lost connection to shard {} during query: {e}",
                routing.describe(shard)
            )
        };
        if held_lost && self.txn.is_some() {
            self.abort_transaction(routing).await;
            msg.push_str("; the transaction was rolled back on every shard");
        }
        let code = if timed_out {
            ER_STATEMENT_TIMEOUT
        } else {
            ER_NET_READ_ERROR
        };
        GatherError::Client(MysqlError::new(code, msg))
    }
}

/// Consecutive runs of at most `fanout` targets with no shard twice (one connection per shard at a time).
fn batches<'t, 'c>(
    targets: &'t [(ShardId, ShardCommand<'c>)],
    fanout: usize,
) -> Vec<&'t [(ShardId, ShardCommand<'c>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..targets.len() {
        let full = i - start == fanout;
        let repeat = targets[start..i].iter().any(|(s, _)| *s == targets[i].0);
        if full || repeat {
            out.push(&targets[start..i]);
            start = i;
        }
    }
    if start < targets.len() {
        out.push(&targets[start..]);
    }
    out
}

/// Sends the command to one shard's connection.
async fn send(conn: &mut BackendConn, command: &ShardCommand<'_>) -> Result<(), WireError> {
    match command {
        ShardCommand::Raw(payload) => conn.stream.queue(0, payload),
        ShardCommand::Execute {
            sql,
            request,
            long_data,
        } => {
            let bound = bind_execute(conn, sql, request, long_data).await?;
            conn.stream.queue(0, &bound)
        }
    };
    conn.stream.flush().await
}

/// One complete reply, as packet payloads; counts its rows into `rows`.
async fn read_reply(conn: &mut BackendConn, rows: &mut usize) -> Result<Vec<Bytes>, WireError> {
    let mut tracker = ResponseTracker::new(ResponseKind::Query, true);
    let mut packets = Vec::new();
    while !tracker.is_done() {
        let Some(p) = conn.stream.read_packet(BACKEND_MAX_PACKET).await? else {
            return Err(WireError::Truncated { got: 0, want: 4 });
        };
        // read_packet joined any 16 MiB parts: the tracker sees one whole packet.
        let h = PacketHeader {
            len: p.payload.len().min(shardgate_wire::MAX_PAYLOAD - 1),
            seq: p.seq,
        };
        if tracker.on_packet(h, &p.payload)?.role == PacketRole::Row {
            *rows += 1;
        }
        packets.push(p.payload.freeze());
    }
    Ok(packets)
}
