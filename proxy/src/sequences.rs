//! Sequences for sharded tables, as Vitess has them: ids come from a sequence table on the first shard, reserved
//! in blocks and handed out from memory, so they are unique across shards (and rows can later move between shards
//! without colliding) while most inserts cost no extra round trip.
//!
//! A sequence table holds one row:
//!
//! ```sql
//! CREATE TABLE orders_seq (id INT PRIMARY KEY, next_id BIGINT UNSIGNED NOT NULL, cache BIGINT UNSIGNED NOT NULL);
//! INSERT INTO orders_seq (id, next_id, cache) VALUES (0, 1, 1000);
//! ```
//!
//! Reserving a block moves `next_id` forward by `cache` (or by more, for a statement that needs more) inside a
//! transaction of its own, so concurrent proxies never get the same block. Ids a proxy reserved but did not hand
//! out before it stopped are skipped, never reused.

use std::collections::HashMap;
use std::sync::Mutex;

use shardgate_wire::WireError;

use crate::backend::BackendConn;

/// Ids reserved and not yet handed out, per sequence table.
#[derive(Default)]
pub struct Sequences {
    blocks: Mutex<HashMap<String, Block>>,
}

/// A reserved range `next..end`.
#[derive(Debug, Clone, Copy)]
struct Block {
    next: u64,
    end: u64,
}

/// Why ids could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error(
        "sequence table `{sequence}` has no row with id 0 (create it with next_id and cache columns)"
    )]
    Missing { sequence: String },
    #[error("sequence table `{sequence}` returned {value:?}, not a number")]
    Malformed { sequence: String, value: String },
    #[error("sequence `{sequence}` is exhausted")]
    Exhausted { sequence: String },
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl Sequences {
    /// `n` ids of `sequence`, from memory when enough are reserved, else reserving a new block on `conn` (a
    /// connection to the shard that holds the sequence tables, outside any client transaction).
    pub async fn take(
        &self,
        conn: &mut BackendConn,
        sequence: &str,
        n: usize,
    ) -> Result<Vec<u64>, SequenceError> {
        let n = n as u64;
        if let Some(ids) = self.take_reserved(sequence, n) {
            return Ok(ids);
        }
        let block = reserve(conn, sequence, n).await?;
        // The new block serves this statement first; its remainder replaces what was left of the old one.
        let ids = (block.next..block.next + n).collect();
        let rest = Block {
            next: block.next + n,
            end: block.end,
        };
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.insert(sequence.to_string(), rest);
        }
        Ok(ids)
    }

    fn take_reserved(&self, sequence: &str, n: u64) -> Option<Vec<u64>> {
        let mut blocks = self.blocks.lock().ok()?;
        let block = blocks.get_mut(sequence)?;
        if block.end - block.next < n {
            return None;
        }
        let ids = (block.next..block.next + n).collect();
        block.next += n;
        Some(ids)
    }
}

/// Moves the sequence's `next_id` forward by at least `n` (its `cache`, if larger) and returns the reserved range.
async fn reserve(conn: &mut BackendConn, sequence: &str, n: u64) -> Result<Block, SequenceError> {
    // The name is a validated identifier (topology validation); quoting keeps it one token all the same.
    let table = format!("`{}`", sequence.replace('`', "``"));
    conn.run_internal("BEGIN").await?;
    let result = async {
        let row = conn
            .query_row(&format!(
                "SELECT next_id, cache FROM {table} WHERE id = 0 FOR UPDATE"
            ))
            .await?;
        let number = |i: usize| -> Result<u64, SequenceError> {
            let value =
                row.get(i)
                    .and_then(|(_, v)| v.clone())
                    .ok_or_else(|| SequenceError::Missing {
                        sequence: sequence.to_string(),
                    })?;
            value.parse().map_err(|_| SequenceError::Malformed {
                sequence: sequence.to_string(),
                value,
            })
        };
        let next = number(0)?;
        let size = number(1)?.max(n).max(1);
        let end = next
            .checked_add(size)
            .ok_or_else(|| SequenceError::Exhausted {
                sequence: sequence.to_string(),
            })?;
        conn.run_internal(&format!("UPDATE {table} SET next_id = {end} WHERE id = 0"))
            .await?;
        conn.run_internal("COMMIT").await?;
        Ok(Block { next, end })
    }
    .await;
    if result.is_err() {
        // Best effort: the caller closes the connection on a network error anyway.
        let _ = conn.run_internal("ROLLBACK").await;
    }
    result
}
