//! INSERTs into a table whose ids come from a sequence (`auto_increment` in the topology): the proxy takes the
//! ids, writes them into the statement, and runs the result wherever it now routes — for a table sharded by that
//! very column, the ids are what decide the shards.

use shardgate_sql::Route;
use shardgate_topology::ShardId;
use shardgate_wire::WireError;
use shardgate_wire::command::{COM_QUERY, command_packet};

use super::Session;
use super::forward::ShardCommand;
use super::multi_shard::{WriteKind, route, tenant_ref};
use crate::mysql_error::*;
use crate::routing::{Routing, TopologySchema};
use crate::sequences::SequenceError;

impl Session {
    /// Runs `text`, an INSERT whose `rows` need ids for `column` from `table`'s sequence.
    pub(super) async fn run_with_ids(
        &mut self,
        routing: &Routing,
        table: &str,
        column: &str,
        rows: &[usize],
        text: &str,
    ) -> Result<(), WireError> {
        let Some(sequence) = routing
            .topology
            .auto_increment(table)
            .map(|a| a.sequence.clone())
        else {
            let msg = format!("table `{table}` has no sequence in the topology");
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        };
        let ids = match self.take_ids(routing, &sequence, rows.len()).await {
            Ok(ids) => ids,
            Err(e) => return self.send_error(&e).await,
        };
        let Some(&first_id) = ids.first() else {
            return self.send_ok(0, 0).await;
        };
        let assigned: Vec<(usize, u64)> = rows.iter().copied().zip(ids).collect();
        let filled = match shardgate_sql::fill_ids(text, column, &assigned) {
            Ok(sql) => sql,
            Err(e) => return self.send_error(&MysqlError::from(&e)).await,
        };
        let schema = TopologySchema(&routing.topology);
        let analysis = match self
            .shared
            .analyzer
            .analyze(&filled, &schema, &mut self.scratch)
        {
            Ok(a) => a,
            Err(e) => return self.send_error(&MysqlError::from(&e)).await,
        };
        let kind = WriteKind::Sequenced { first_id };
        match &analysis.route {
            Route::Tenant { table, key } => {
                let shard = match tenant_ref(key).and_then(|t| route(routing, table, t)) {
                    Ok(s) => s,
                    Err(e) => return self.send_error(&e).await,
                };
                let packet = command_packet(COM_QUERY, filled.as_bytes());
                let targets = [(shard, ShardCommand::Raw(&packet))];
                self.scatter_write(routing, kind, &targets).await
            }
            Route::SplitInsert { table, parts } => {
                self.run_split_insert(routing, table, parts, kind).await
            }
            other => {
                let msg = format!(
                    "an INSERT with its ids filled in routes as {other:?}, not to its tenants"
                );
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
        }
    }

    /// `n` ids from `sequence`, reserving a block on the first shard (where sequence tables live) when the
    /// proxy has too few left. The reservation runs on a pooled connection of its own, never in the client's
    /// transaction, so a rollback does not hand the same ids out twice.
    async fn take_ids(
        &mut self,
        routing: &Routing,
        sequence: &str,
        n: usize,
    ) -> Result<Vec<u64>, MysqlError> {
        let shard = ShardId(0);
        let mut conn = self.checkout(routing, shard).await?;
        let shared = std::sync::Arc::clone(&self.shared);
        match shared.sequences.take(&mut conn, sequence, n).await {
            Ok(ids) => {
                conn.release();
                Ok(ids)
            }
            Err(SequenceError::Wire(WireError::Server {
                code,
                state,
                message,
            })) => {
                conn.release();
                Err(MysqlError::from_backend(
                    code,
                    state,
                    format!("sequence `{sequence}`: {message}"),
                ))
            }
            Err(e @ SequenceError::Wire(_)) => Err(MysqlError::new(
                ER_NET_READ_ERROR,
                format!("shard {}: {e}", routing.describe(shard)),
            )),
            Err(e) => {
                conn.release();
                Err(MysqlError::new(ER_NOT_SUPPORTED_YET, e.to_string()))
            }
        }
    }
}
