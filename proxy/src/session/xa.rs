//! Ending a transaction under `transaction_mode: twopc` (see `crate::twopc` for the protocol and recovery).

use std::sync::Arc;

use shardgate_pool::Pooled;
use shardgate_topology::ShardId;
use shardgate_wire::WireError;
use tracing::warn;

use super::Session;
use super::transaction::Ended;
use crate::backend::ShardConnector;
use crate::mysql_error::*;
use crate::routing::Routing;
use crate::twopc::{DecisionLog, fault, xid};

type Held = Vec<(ShardId, Pooled<ShardConnector>)>;

impl Session {
    /// Commits (in two phases when more than one shard is involved) or rolls back the branches of `gtrid`.
    pub(super) async fn end_xa(
        &mut self,
        routing: &Routing,
        gtrid: &str,
        held: Held,
        commit: bool,
    ) -> Ended {
        let Some(log) = self.shared.decisions.clone() else {
            return Ended::CommitFailed(MysqlError::new(
                ER_NOT_SUPPORTED_YET,
                "internal error: an XA transaction without a decision log",
            ));
        };
        let branch = |shard: ShardId| xid(gtrid, &shard.0.to_string());
        // XA END on every branch; a branch that fails it cannot be prepared: the transaction rolls back.
        let mut ended = Vec::with_capacity(held.len());
        let mut failure = None;
        for (shard, mut conn) in held {
            match conn
                .run_internal(&format!("XA END {}", branch(shard)))
                .await
            {
                Ok(()) => ended.push((shard, conn)),
                Err(e) => failure = Some((shard, e)),
            }
        }
        if !commit || failure.is_some() {
            self.xa_rollback(routing, &branch, ended).await;
            return match failure {
                Some((shard, e)) if commit => rolled_back(routing, shard, &e),
                _ => Ended::Done,
            };
        }
        if let [(shard, conn)] = ended.as_mut_slice() {
            // One shard: nothing to coordinate.
            let sql = format!("XA COMMIT {} ONE PHASE", branch(*shard));
            return match conn.run_internal(&sql).await {
                Ok(()) => {
                    ended
                        .into_iter()
                        .for_each(|(shard, c)| self.return_conn(shard, c));
                    Ended::Done
                }
                Err(e) => rolled_back(routing, *shard, &e),
            };
        }
        let mut prepared = Vec::with_capacity(ended.len());
        let mut rest = ended.into_iter();
        for (shard, mut conn) in rest.by_ref() {
            match conn
                .run_internal(&format!("XA PREPARE {}", branch(shard)))
                .await
            {
                Ok(()) => prepared.push((shard, conn)),
                Err(e) => {
                    // MariaDB rolls back a branch whose PREPARE failed; roll back the others, prepared or not.
                    let others: Held = prepared.into_iter().chain(rest).collect();
                    self.xa_rollback(routing, &branch, others).await;
                    return rolled_back(routing, shard, &e);
                }
            }
        }
        fault("twopc-after-prepare");
        // The commit point: once the decision is on disk, recovery commits every branch whatever happens next.
        if let Err(e) = record(&log, gtrid, true).await {
            self.xa_rollback(routing, &branch, prepared).await;
            let msg = format!(
                "the commit decision could not be recorded ({e}); the transaction was rolled back"
            );
            return Ended::CommitFailed(MysqlError::new(ER_ERROR_DURING_COMMIT, msg));
        }
        fault("twopc-after-decision");
        let mut all_done = true;
        for (shard, mut conn) in prepared {
            match conn
                .run_internal(&format!("XA COMMIT {}", branch(shard)))
                .await
            {
                Ok(()) => self.return_conn(shard, conn),
                Err(e) => {
                    // Decided and prepared: the branch commits at the next start-up's recovery at the latest.
                    all_done = false;
                    warn!(conn = self.conn_id, shard = %routing.describe(shard), %gtrid, error = %e, "XA COMMIT failed after the commit decision; recovery will commit it");
                }
            }
        }
        if all_done && let Err(e) = record(&log, gtrid, false).await {
            warn!(%gtrid, error = %e, "could not record a finished two-phase commit; recovery will find nothing to do");
        }
        Ended::Done
    }

    /// XA ROLLBACK on each branch (ended or prepared); a connection that fails it is closed, which rolls back an
    /// unprepared branch (a prepared one waits for recovery).
    async fn xa_rollback(
        &mut self,
        routing: &Routing,
        branch: &(dyn Fn(ShardId) -> String + Sync),
        held: Held,
    ) {
        for (shard, mut conn) in held {
            match conn
                .run_internal(&format!("XA ROLLBACK {}", branch(shard)))
                .await
            {
                Ok(()) => self.return_conn(shard, conn),
                Err(e) => {
                    warn!(conn = self.conn_id, shard = %routing.describe(shard), error = %e, "XA ROLLBACK failed; connection closed")
                }
            }
        }
    }
}

/// Appends a decision record off the worker thread (the commit record waits for the disk).
async fn record(log: &Arc<DecisionLog>, gtrid: &str, commit: bool) -> Result<(), String> {
    let log = Arc::clone(log);
    let gtrid = gtrid.to_string();
    let written = tokio::task::spawn_blocking(move || {
        if commit {
            log.record_commit(&gtrid)
        } else {
            log.record_done(&gtrid)
        }
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn rolled_back(routing: &Routing, shard: ShardId, e: &WireError) -> Ended {
    Ended::CommitFailed(MysqlError::new(
        ER_ERROR_DURING_COMMIT,
        format!(
            "COMMIT failed on shard {}: {e}; the transaction was rolled back on every shard",
            routing.describe(shard)
        ),
    ))
}
