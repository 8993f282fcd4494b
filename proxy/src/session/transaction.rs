//! Transactions: a session inside one holds a backend connection on every shard it has touched, until COMMIT or
//! ROLLBACK.
//!
//! A shard joins the transaction when a statement first runs there: the proxy checks out a connection, starts the
//! transaction on it (the client's own `BEGIN` text, so `READ ONLY` or `WITH CONSISTENT SNAPSHOT` carry over) and
//! replays the savepoints taken so far, so `ROLLBACK TO SAVEPOINT` means the same on every shard. With
//! `autocommit = 0` the connection carries that setting instead and the first statement opens the transaction, as
//! on MySQL. COMMIT goes to each shard in the order they joined (ADR 11).

use std::sync::Arc;

use shardgate_pool::Pooled;
use shardgate_topology::ShardId;
use shardgate_wire::WireError;
use tracing::warn;

use super::Session;
use crate::backend::ShardConnector;
use crate::config::TransactionMode;
use crate::mysql_error::*;
use crate::routing::Routing;
use crate::twopc::xid;

/// An open transaction.
pub(super) struct Transaction {
    /// What starts it on a shard that joins: a pending `SET TRANSACTION …`, then the statement that started it
    /// (none when autocommit is off and the first statement starts it).
    begin: Vec<String>,
    /// Connections held, in the order their shards joined. A slot is empty while a statement uses its connection.
    held: Vec<(ShardId, Option<Pooled<ShardConnector>>)>,
    /// SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO statements so far, replayed on a shard that joins later.
    savepoints: Vec<String>,
    /// Under `transaction_mode: twopc`, the global XA id; each shard is a branch of it (see `crate::twopc`).
    xa: Option<String>,
    /// The topology snapshot the transaction started on: its statements route on it until it ends, so a reload
    /// never moves a shard under an open transaction (its held connections are named by this snapshot's ids).
    routing: Option<Arc<Routing>>,
    /// Set once a statement of the transaction touched keys a resharding workflow is moving: such a transaction is
    /// never held by a cutover, which waits for it to end instead.
    pub(super) moving: Option<crate::stats::Inflight>,
}

impl Transaction {
    fn new(begin: Vec<String>, xa: Option<String>, routing: Option<Arc<Routing>>) -> Self {
        Self {
            begin,
            held: Vec::new(),
            savepoints: Vec::new(),
            xa,
            routing,
            moving: None,
        }
    }

    /// The slot of the connection the transaction holds on `shard`, if it has joined it.
    pub(super) fn slot(&mut self, shard: ShardId) -> Option<&mut Option<Pooled<ShardConnector>>> {
        self.held
            .iter_mut()
            .find(|(s, _)| *s == shard)
            .map(|(_, slot)| slot)
    }

    /// Whether no shard has joined yet.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Routes the rest of the transaction on another snapshot: only while no shard has joined (connections are
    /// named by the snapshot's shard ids).
    pub(super) fn repin(&mut self, routing: Option<Arc<Routing>>) {
        if self.held.is_empty() {
            self.routing = routing;
        }
    }

    /// The snapshot the transaction routes on.
    pub(super) fn routing(&self) -> Option<&Arc<Routing>> {
        self.routing.as_ref()
    }

    /// The connections held, emptied out of the transaction, in the order their shards joined. An empty slot
    /// (its connection broke mid-statement and was closed, so the server rolled its part back) is left out.
    fn take_held(&mut self) -> Vec<(ShardId, Pooled<ShardConnector>)> {
        std::mem::take(&mut self.held)
            .into_iter()
            .filter_map(|(shard, conn)| conn.map(|c| (shard, c)))
            .collect()
    }

    /// The first shard the transaction touched, if any: statements on no sharded table run there.
    pub(super) fn first_shard(&self) -> Option<ShardId> {
        self.held.first().map(|(shard, _)| *shard)
    }
}

/// How ending a transaction went.
pub(super) enum Ended {
    Done,
    /// COMMIT failed on a shard: what to tell the client.
    CommitFailed(MysqlError),
}

impl Session {
    /// Opens a transaction in the session (shards join as statements reach them): `begin` is the client's BEGIN
    /// text, or `None` for the one autocommit = 0 implies. A pending `SET TRANSACTION …` applies to it.
    pub(super) fn open_transaction(&mut self, begin: Option<String>, routing: &Routing) {
        let pending = self.next_transaction.take();
        let routing = routing.snapshot();
        self.txn = Some(match &self.shared.decisions {
            // Under two-phase commit every branch starts with XA START instead of the client's BEGIN.
            Some(log) => Transaction::new(
                pending.into_iter().collect(),
                Some(log.new_gtrid()),
                routing,
            ),
            None => Transaction::new(pending.into_iter().chain(begin).collect(), None, routing),
        });
    }

    /// True when statements must run on held connections: inside BEGIN … COMMIT, or with autocommit off.
    pub(super) fn in_transaction(&self) -> bool {
        self.txn.is_some() || !self.autocommit
    }

    /// A connection for `shard` and whether it belongs to the transaction (give it back with
    /// [`Session::give_back`]).
    pub(super) async fn acquire(
        &mut self,
        routing: &Routing,
        shard: ShardId,
    ) -> Result<(Pooled<ShardConnector>, bool), MysqlError> {
        if !self.in_transaction() {
            // The connection holding the session's temporary tables serves every statement on its shard.
            if let Some(mut conn) = self.take_pinned(routing, shard)? {
                if let Err(e) = conn.ensure_settings(&self.settings).await {
                    // A broken pinned connection takes the session's temporary tables with it.
                    if !e.is_fatal() {
                        self.give_back(shard, conn, true);
                    }
                    return Err(backend_error(routing, shard, e));
                }
                return Ok((conn, true));
            }
            return Ok((self.checkout(routing, shard).await?, false));
        }
        if self.txn.is_none() {
            self.open_transaction(None, routing);
        }
        let Some(txn) = self.txn.as_mut() else {
            return Err(MysqlError::new(
                ER_NOT_SUPPORTED_YET,
                "internal error: no transaction after opening one",
            ));
        };
        if let Some((_, slot)) = txn.held.iter_mut().find(|(s, _)| *s == shard) {
            let Some(mut conn) = slot.take() else {
                return Err(MysqlError::new(
                    ER_NOT_SUPPORTED_YET,
                    "internal error: the transaction's connection is already in use",
                ));
            };
            if let Err(e) = conn.ensure_settings(&self.settings).await {
                if e.is_fatal() {
                    // Its part of the transaction is gone with it: the rest rolls back too.
                    drop(conn);
                    self.abort_transaction(routing).await;
                } else {
                    *slot = Some(conn);
                }
                return Err(backend_error(routing, shard, e));
            }
            return Ok((conn, true));
        }
        if self.shared.config.transaction_mode == TransactionMode::Single
            && let Some(first) = txn.first_shard()
        {
            return Err(MysqlError::new(
                ER_NOT_SUPPORTED_YET,
                format!(
                    "transaction_mode is single: this transaction is on shard {} and cannot also touch shard {}",
                    routing.describe(first),
                    routing.describe(shard)
                ),
            ));
        }
        let mut conn = match self.take_pinned(routing, shard)? {
            Some(mut conn) => {
                if let Err(e) = conn.ensure_settings(&self.settings).await {
                    if !e.is_fatal() {
                        self.give_back(shard, conn, true);
                    }
                    return Err(backend_error(routing, shard, e));
                }
                conn
            }
            None => self.checkout(routing, shard).await?,
        };
        let Some(txn) = self.txn.as_mut() else {
            return Err(MysqlError::new(
                ER_NOT_SUPPORTED_YET,
                "internal error: transaction ended while joining a shard",
            ));
        };
        let xa_start = txn
            .xa
            .as_ref()
            .map(|gtrid| format!("XA START {}", xid(gtrid, &shard.0.to_string())));
        for sql in txn.begin.iter().chain(&xa_start).chain(&txn.savepoints) {
            if let Err(e) = conn.run_internal(sql).await {
                return Err(backend_error(routing, shard, e));
            }
        }
        txn.held.push((shard, None));
        Ok((conn, true))
    }

    /// Returns a connection after a statement that completed cleanly: to its transaction, to the session's pin
    /// (temporary tables), or to the pool.
    pub(super) fn give_back(&mut self, shard: ShardId, conn: Pooled<ShardConnector>, held: bool) {
        if !held {
            conn.release();
            return;
        }
        let slot = self
            .txn
            .as_mut()
            .and_then(|txn| txn.held.iter_mut().find(|(s, _)| *s == shard));
        match slot {
            Some((_, slot)) => *slot = Some(conn),
            None => self.return_conn(shard, conn),
        }
    }

    /// Ends the transaction, if any, with COMMIT or ROLLBACK on every shard it touched.
    pub(super) async fn end_transaction(&mut self, routing: &Routing, commit: bool) -> Ended {
        let Some(mut txn) = self.txn.take() else {
            return Ended::Done;
        };
        if let Some(gtrid) = txn.xa.take() {
            let ended = self.end_xa(routing, &gtrid, txn.take_held(), commit).await;
            self.unpin_if_unused().await;
            return ended;
        }
        let mut committed = Vec::new();
        let mut failure: Option<(ShardId, WireError)> = None;
        let mut rolled_back = Vec::new();
        for (shard, mut conn) in txn.take_held() {
            let sql = if commit && failure.is_none() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            match conn.run_internal(sql).await {
                Ok(()) => {
                    self.return_conn(shard, conn);
                    if sql == "COMMIT" {
                        committed.push(routing.describe(shard));
                    } else {
                        rolled_back.push(routing.describe(shard));
                    }
                }
                // The transaction's state on this connection is unknown: close it, which rolls back what is left.
                Err(e) if sql == "COMMIT" => failure = Some((shard, e)),
                Err(e) => {
                    warn!(conn = self.conn_id, shard = %routing.describe(shard), error = %e, "ROLLBACK failed; connection closed")
                }
            }
        }
        self.unpin_if_unused().await;
        match failure {
            None => Ended::Done,
            Some((shard, e)) => {
                warn!(conn = self.conn_id, shard = %routing.describe(shard), error = %e, "COMMIT failed");
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                Ended::CommitFailed(MysqlError::new(
                    ER_ERROR_DURING_COMMIT,
                    format!(
                        "COMMIT failed on shard {}: {e}; committed on: {}; rolled back on: {}",
                        routing.describe(shard),
                        list(&committed),
                        list(&rolled_back)
                    ),
                ))
            }
        }
    }

    /// Ends the transaction after one of its connections broke: the other shards roll back, as the broken one
    /// did when its connection closed.
    pub(super) async fn abort_transaction(&mut self, routing: &Routing) {
        if self.txn.is_some() {
            warn!(
                conn = self.conn_id,
                "transaction rolled back on every shard after a backend failure"
            );
            self.end_transaction(routing, false).await;
        }
    }

    /// Runs a savepoint statement on every shard in the transaction and remembers it for shards that join later.
    /// Outside a transaction there is nothing to save: MySQL answers SAVEPOINT with OK and the others with 1305.
    pub(super) async fn savepoint(
        &mut self,
        routing: &Routing,
        sql: &str,
    ) -> Result<(), WireError> {
        let Some(txn) = self.txn.as_mut() else {
            let name = sql.split_ascii_whitespace().last().unwrap_or_default();
            if sql
                .get(..9)
                .is_some_and(|w| w.eq_ignore_ascii_case("SAVEPOINT"))
            {
                return self.send_ok(0, 0).await;
            }
            let msg = format!("SAVEPOINT {name} does not exist");
            return self
                .send_error(&MysqlError::new(ER_SP_DOES_NOT_EXIST, msg))
                .await;
        };
        let mut error = None;
        let mut broken = false;
        for (shard, conn) in txn.held.iter_mut() {
            let Some(conn) = conn.as_mut() else { continue };
            if let Err(e) = conn.run_internal(sql).await {
                broken = e.is_fatal();
                error = Some(backend_error(routing, *shard, e));
                break;
            }
        }
        if error.is_none() {
            txn.savepoints.push(sql.to_string());
        }
        match error {
            Some(e) => {
                if broken {
                    // A connection out of step cannot carry on the transaction.
                    self.end_transaction(routing, false).await;
                }
                self.send_error(&e).await
            }
            None => self.send_ok(0, 0).await,
        }
    }
}

/// The error for a statement the proxy ran on a shard for itself (settings, BEGIN, savepoints, SET): the server's
/// own refusal as it is, or a lost connection naming the shard.
pub(super) fn backend_error(routing: &Routing, shard: ShardId, e: WireError) -> MysqlError {
    match e {
        WireError::Server {
            code,
            state,
            message,
        } => MysqlError::from_backend(code, state, message),
        other => MysqlError::new(
            ER_NET_READ_ERROR,
            format!("shard {}: {other}", routing.describe(shard)),
        ),
    }
}
