//! The workflow record and its state machine (DESIGN.md, "Resharding").
//!
//! create → dual-write → backfill → verify → cutover → complete, with `reverse` after cutover (traffic back to the
//! source, which dual-write keeps whole) and `cancel` any time before complete. Pausing stops the copy where it is
//! without leaving the phase. Every change goes through a method that refuses what the phase does not allow, so a
//! resumed controller cannot skip a step.

use serde::{Deserialize, Serialize};

/// What moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    /// Some tenants to another shard (new or existing).
    MoveTenants { tenants: Vec<String>, to: String },
    /// A key range onto new shards.
    Split { shard: String, into: Vec<String> },
    /// Adjacent key ranges onto one shard.
    Merge { shards: Vec<String>, into: String },
}

/// Where a workflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Planned; target schemas being created.
    Create,
    /// Writes for the moving keys also go to the target; waits until every proxy serves that topology.
    DualWrite,
    /// Rows copied in primary-key chunks under source row locks.
    Backfill,
    /// Chunk checksums compared, differences re-copied, until a full pass is clean.
    Verify,
    /// Statements for the moving keys held, ownership flipped, held statements released to the target.
    Cutover,
    /// After cutover, traffic sent back to the source.
    Reversed,
    /// Moved rows deleted from the source; done.
    Complete,
    /// Target copy dropped; the source was never left.
    Cancelled,
}

impl Phase {
    /// The phase a successful step leads to.
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::Create => Some(Phase::DualWrite),
            Phase::DualWrite => Some(Phase::Backfill),
            Phase::Backfill => Some(Phase::Verify),
            Phase::Verify => Some(Phase::Cutover),
            Phase::Cutover | Phase::Reversed => Some(Phase::Complete),
            Phase::Complete | Phase::Cancelled => None,
        }
    }

    /// True once nothing more can happen.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Complete | Phase::Cancelled)
    }
}

/// How far one table's copy got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    pub table: String,
    /// Primary-key columns, in key order.
    pub key_columns: Vec<String>,
    /// Rows the source held for the moving keys when the copy started (an estimate while writes go on).
    pub rows_estimated: u64,
    pub rows_copied: u64,
    /// The last key copied (one value per key column, as SQL literals): the copy resumes after it.
    pub checkpoint: Option<Vec<String>>,
    /// Chunks whose checksums differed in the last verify pass.
    pub mismatched_chunks: u64,
}

impl TableProgress {
    pub fn new(table: &str, key_columns: Vec<String>, rows_estimated: u64) -> Self {
        TableProgress {
            table: table.to_string(),
            key_columns,
            rows_estimated,
            rows_copied: 0,
            checkpoint: None,
            mismatched_chunks: 0,
        }
    }

    /// Share copied, 0.0 to 1.0 (1.0 for an empty table; capped, since rows keep arriving during the copy).
    pub fn fraction(&self) -> f64 {
        if self.rows_estimated == 0 {
            return 1.0;
        }
        (self.rows_copied as f64 / self.rows_estimated as f64).min(1.0)
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("workflow {id} is {phase:?}: {what} is not possible now")]
    NotNow {
        id: String,
        phase: Phase,
        what: &'static str,
    },
    #[error("workflow {id} has no table {table}")]
    NoTable { id: String, table: String },
}

/// One resharding operation, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub keyspace: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub phase: Phase,
    pub paused: bool,
    pub tables: Vec<TableProgress>,
    /// Topology versions that turned dual-write on and flipped ownership.
    pub dual_write_version: Option<u64>,
    pub cutover_version: Option<u64>,
    /// Why the last attempt at a step failed (a cutover that could not drain in time, say).
    pub last_error: Option<String>,
}

impl Workflow {
    pub fn new(id: &str, keyspace: &str, kind: Kind) -> Self {
        Workflow {
            id: id.to_string(),
            keyspace: keyspace.to_string(),
            kind,
            phase: Phase::Create,
            paused: false,
            tables: Vec::new(),
            dual_write_version: None,
            cutover_version: None,
            last_error: None,
        }
    }

    fn refuse(&self, what: &'static str) -> TransitionError {
        TransitionError::NotNow {
            id: self.id.clone(),
            phase: self.phase,
            what,
        }
    }

    /// Moves to the next phase once the current one is done.
    pub fn advance(&mut self) -> Result<Phase, TransitionError> {
        if self.paused {
            return Err(self.refuse("advancing while paused"));
        }
        let next = self.phase.next().ok_or_else(|| self.refuse("advancing"))?;
        if self.phase == Phase::Verify && self.tables.iter().any(|t| t.mismatched_chunks > 0) {
            return Err(self.refuse("cutover with chunks still differing"));
        }
        self.phase = next;
        self.last_error = None;
        Ok(next)
    }

    /// Sends traffic back to the source after a cutover.
    pub fn reverse(&mut self) -> Result<(), TransitionError> {
        if self.phase != Phase::Cutover {
            return Err(self.refuse("reverse"));
        }
        self.phase = Phase::Reversed;
        Ok(())
    }

    /// Gives up before completion: the target copy is to be dropped.
    pub fn cancel(&mut self) -> Result<(), TransitionError> {
        if self.phase.is_final() {
            return Err(self.refuse("cancel"));
        }
        self.phase = Phase::Cancelled;
        self.paused = false;
        Ok(())
    }

    pub fn pause(&mut self) -> Result<(), TransitionError> {
        if self.phase.is_final() || self.phase == Phase::Cutover {
            return Err(self.refuse("pause"));
        }
        self.paused = true;
        Ok(())
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Records a copied chunk of `table`: `rows` more rows, ending at `last_key`.
    pub fn checkpoint(
        &mut self,
        table: &str,
        rows: u64,
        last_key: Vec<String>,
    ) -> Result<(), TransitionError> {
        if !matches!(self.phase, Phase::Backfill | Phase::Verify) || self.paused {
            return Err(self.refuse("copying"));
        }
        let id = self.id.clone();
        let t =
            self.tables
                .iter_mut()
                .find(|t| t.table == table)
                .ok_or(TransitionError::NoTable {
                    id,
                    table: table.to_string(),
                })?;
        t.rows_copied += rows;
        t.checkpoint = Some(last_key);
        Ok(())
    }

    /// Copy progress over every table, 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        let total: u64 = self.tables.iter().map(|t| t.rows_estimated).sum();
        if total == 0 {
            return 1.0;
        }
        let done: u64 = self
            .tables
            .iter()
            .map(|t| t.rows_copied.min(t.rows_estimated))
            .sum();
        done as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn move_42() -> Workflow {
        let mut w = Workflow::new(
            "wf-1",
            "app",
            Kind::MoveTenants {
                tenants: vec!["42".into()],
                to: "fe-".into(),
            },
        );
        w.tables
            .push(TableProgress::new("orders", vec!["id".into()], 200));
        w
    }

    #[test]
    fn phases_go_in_order_and_verify_must_be_clean_before_cutover() {
        let mut w = move_42();
        assert_eq!(w.advance(), Ok(Phase::DualWrite));
        assert!(
            w.checkpoint("orders", 10, vec!["10".into()]).is_err(),
            "no copy before backfill"
        );
        assert_eq!(w.advance(), Ok(Phase::Backfill));
        w.checkpoint("orders", 100, vec!["100".into()]).unwrap();
        w.checkpoint("orders", 100, vec!["200".into()]).unwrap();
        assert_eq!(w.fraction(), 1.0);
        assert_eq!(w.tables[0].checkpoint, Some(vec!["200".to_string()]));
        assert_eq!(w.advance(), Ok(Phase::Verify));
        w.tables[0].mismatched_chunks = 1;
        assert!(w.advance().is_err(), "differences must be re-copied first");
        w.tables[0].mismatched_chunks = 0;
        assert_eq!(w.advance(), Ok(Phase::Cutover));
        w.reverse().unwrap();
        assert_eq!(w.phase, Phase::Reversed);
        assert_eq!(w.advance(), Ok(Phase::Complete));
        assert!(w.advance().is_err());
        assert!(w.cancel().is_err(), "nothing to cancel after completion");
    }

    #[test]
    fn pause_stops_copying_and_advancing_until_resumed_and_cancel_ends_it() {
        let mut w = move_42();
        w.advance().unwrap();
        w.advance().unwrap();
        w.pause().unwrap();
        assert!(w.checkpoint("orders", 1, vec!["1".into()]).is_err());
        assert!(w.advance().is_err());
        w.resume();
        w.checkpoint("orders", 1, vec!["1".into()]).unwrap();
        assert!(w.checkpoint("nope", 1, vec![]).is_err());
        w.cancel().unwrap();
        assert!(w.phase.is_final());
    }

    #[test]
    fn the_record_round_trips_through_json() {
        let w = move_42();
        let text = serde_json::to_string(&w).unwrap();
        assert!(text.contains("\"kind\":\"move_tenants\""), "{text}");
        assert_eq!(serde_json::from_str::<Workflow>(&text).unwrap(), w);
    }
}
