//! The workflow record and its state machine (DESIGN.md, "Resharding").
//!
//! create → dual_write → backfill → verify → cutover → switched → cleanup → complete. After the switch, `reverse`
//! sends traffic back (reversing → reversed), from where a new cutover or a cancel follows; `cancel` (cancelling →
//! cancelled) drops the target copy and is possible until the switch. Every change goes through a method that refuses
//! what the phase does not allow, so a resumed controller cannot skip a step. Pausing is a request kept beside the
//! record (see [`crate::WorkflowStore::set_paused`]), not a phase: it stops copying where it is.

use serde::{Deserialize, Serialize};

/// What moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Kind {
    /// Some tenants to another shard: an existing one, or a dedicated shard the workflow creates (`new_shard`).
    MoveTenants {
        tenants: Vec<String>,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_shard: Option<NewShard>,
    },
    /// A key range onto new shards.
    Split { shard: String, into: Vec<NewShard> },
    /// Adjacent key ranges onto one new shard.
    Merge { shards: Vec<String>, into: NewShard },
}

/// A shard a split or merge creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShard {
    /// Its key-range name.
    pub name: String,
    /// The backend (by topology name) and database that will hold it.
    pub backend: String,
    pub database: String,
}

/// Where a workflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Planned; target schemas and the source's change capture being created.
    Create,
    /// Proxies are told keys are moving; the controller waits until every one serves that version.
    DualWrite,
    /// Rows copied in primary-key chunks under source row locks; captured changes applied meanwhile.
    Backfill,
    /// Chunk checksums compared, differences re-copied, until a full pass is clean.
    Verify,
    /// Statements for the moving keys held, the source fenced, ownership flipped (or the attempt aborted).
    Cutover,
    /// Traffic on the target; the source keeps its copy (fenced) so that the move can be reversed.
    Switched,
    /// Traffic being sent back to the source.
    Reversing,
    /// Traffic back on the source, which is the truth again; cutover again or cancel.
    Reversed,
    /// Moved rows deleted from the source in chunks.
    Cleanup,
    /// Done.
    Complete,
    /// Target copy, capture and fences being removed.
    Cancelling,
    /// Done; the source was never left (or was returned to).
    Cancelled,
}

impl Phase {
    /// The phase the controller's next step leads to, for the phases it runs through by itself.
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::Create => Some(Phase::DualWrite),
            Phase::DualWrite => Some(Phase::Backfill),
            Phase::Backfill => Some(Phase::Verify),
            Phase::Verify | Phase::Reversed => Some(Phase::Cutover),
            Phase::Cutover => Some(Phase::Switched),
            Phase::Switched => Some(Phase::Cleanup),
            Phase::Reversing => Some(Phase::Reversed),
            Phase::Cleanup => Some(Phase::Complete),
            Phase::Cancelling => Some(Phase::Cancelled),
            Phase::Complete | Phase::Cancelled => None,
        }
    }

    /// True once nothing more can happen.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Complete | Phase::Cancelled)
    }

    /// Whether the target owns the moved keys.
    pub fn target_owns(self) -> bool {
        matches!(
            self,
            Phase::Switched | Phase::Reversing | Phase::Cleanup | Phase::Complete
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::DualWrite => "dual_write",
            Phase::Backfill => "backfill",
            Phase::Verify => "verify",
            Phase::Cutover => "cutover",
            Phase::Switched => "switched",
            Phase::Reversing => "reversing",
            Phase::Reversed => "reversed",
            Phase::Cleanup => "cleanup",
            Phase::Complete => "complete",
            Phase::Cancelling => "cancelling",
            Phase::Cancelled => "cancelled",
        }
    }

    pub const ALL: [Phase; 12] = [
        Phase::Create,
        Phase::DualWrite,
        Phase::Backfill,
        Phase::Verify,
        Phase::Cutover,
        Phase::Switched,
        Phase::Reversing,
        Phase::Reversed,
        Phase::Cleanup,
        Phase::Complete,
        Phase::Cancelling,
        Phase::Cancelled,
    ];
}

/// How far one table's copy from one source shard got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// The source shard's name.
    pub source: String,
    pub table: String,
    /// Every column, in order.
    pub columns: Vec<String>,
    /// Primary-key columns, in key order.
    pub key_columns: Vec<String>,
    /// The tenant column; `None` for a reference table (copied whole to new shards, never cleaned up).
    pub tenant_column: Option<String>,
    /// Rows the source held for the moving keys when the copy started (an estimate while writes go on).
    pub rows_estimated: u64,
    pub rows_copied: u64,
    /// The last key copied (one SQL literal per key column): the copy resumes after it.
    pub checkpoint: Option<Vec<String>>,
    /// Set once the copy reached the end of the table.
    pub copied: bool,
    /// Rows deleted from the source by cleanup.
    pub rows_cleaned: u64,
}

impl TableProgress {
    pub fn new(source: &str, table: &str, key_columns: Vec<String>) -> Self {
        TableProgress {
            source: source.to_string(),
            table: table.to_string(),
            columns: Vec::new(),
            key_columns,
            tenant_column: None,
            rows_estimated: 0,
            rows_copied: 0,
            checkpoint: None,
            copied: false,
            rows_cleaned: 0,
        }
    }

    /// Share copied, 0.0 to 1.0 (1.0 once done; capped, since rows keep arriving during the copy).
    pub fn fraction(&self) -> f64 {
        if self.copied || self.rows_estimated == 0 {
            return if self.copied { 1.0 } else { 0.0 };
        }
        (self.rows_copied as f64 / self.rows_estimated as f64).min(0.999)
    }
}

/// What the last verify found, VDiff-style.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Full passes over every table.
    pub passes: u64,
    /// Chunks compared, over all passes.
    pub chunks_checked: u64,
    /// Chunks whose row count or hash differed, over all passes (each was re-copied).
    pub chunks_mismatched: u64,
    /// Rows compared in the last pass.
    pub rows_compared: u64,
    /// Whether the last pass found every chunk equal.
    pub clean: bool,
    /// Mismatches per table over all passes, "source/table" -> chunks.
    pub mismatches_by_table: std::collections::BTreeMap<String, u64>,
}

/// One cutover (or reverse) attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoverReport {
    /// Unix time, seconds.
    pub at: u64,
    /// "switched", "reversed" or "aborted".
    pub outcome: String,
    /// From publishing the hold to publishing its end, milliseconds.
    pub held_ms: u64,
    /// Captured changes applied while holding.
    pub changes_drained: u64,
    /// Why it aborted.
    pub reason: Option<String>,
}

/// How the controller runs this workflow; set at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Rows per chunk.
    pub chunk_rows: u64,
    /// Copy limit; 0 = none.
    pub rows_per_second: u64,
    /// The cutover's bound on holding statements.
    pub hold_ms: u64,
    /// The proxies' admin endpoints.
    pub admins: Vec<String>,
    /// User the controller connects to the backends as (the password is never stored).
    pub user: String,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("workflow {id} is {phase}: {what} is not possible now", phase = phase.name())]
    NotNow {
        id: String,
        phase: Phase,
        what: &'static str,
    },
    #[error("workflow {id} has no table {table} on {source_shard}")]
    NoTable {
        id: String,
        source_shard: String,
        table: String,
    },
}

/// One resharding operation, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub keyspace: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub phase: Phase,
    pub settings: Settings,
    /// The topology served when the workflow was created (YAML): where everything was, and what a reverse
    /// restores.
    pub original_topology: String,
    pub tables: Vec<TableProgress>,
    /// Captured changes applied to the target so far.
    pub changes_applied: u64,
    /// Captured changes not yet applied, when last looked.
    pub changes_pending: u64,
    /// Recent copy rate, rows per second.
    pub copy_rate: f64,
    pub verify: VerifyReport,
    pub cutovers: Vec<CutoverReport>,
    /// Topology versions that announced the move and flipped ownership.
    pub dual_write_version: Option<u64>,
    pub cutover_version: Option<u64>,
    /// Unix times, seconds.
    pub created_at: u64,
    pub updated_at: u64,
    /// Why the last attempt at a step failed (a cutover that could not drain in time, say).
    pub last_error: Option<String>,
}

impl Workflow {
    pub fn new(id: &str, keyspace: &str, kind: Kind, settings: Settings, now: u64) -> Self {
        Workflow {
            id: id.to_string(),
            keyspace: keyspace.to_string(),
            kind,
            phase: Phase::Create,
            settings,
            original_topology: String::new(),
            tables: Vec::new(),
            changes_applied: 0,
            changes_pending: 0,
            copy_rate: 0.0,
            verify: VerifyReport::default(),
            cutovers: Vec::new(),
            dual_write_version: None,
            cutover_version: None,
            created_at: now,
            updated_at: now,
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

    /// The source shards' names.
    pub fn sources(&self) -> Vec<String> {
        match &self.kind {
            Kind::MoveTenants { .. } => {
                let mut names: Vec<String> = self.tables.iter().map(|t| t.source.clone()).collect();
                names.dedup();
                names
            }
            Kind::Split { shard, .. } => vec![shard.clone()],
            Kind::Merge { shards, .. } => shards.clone(),
        }
    }

    /// Moves to the next phase once the current one is done. Verify must have ended clean.
    pub fn advance(&mut self) -> Result<Phase, TransitionError> {
        let next = self.phase.next().ok_or_else(|| self.refuse("advancing"))?;
        if self.phase == Phase::Verify && !self.verify.clean {
            return Err(self.refuse("cutover with chunks still differing"));
        }
        if self.phase == Phase::Backfill && self.tables.iter().any(|t| !t.copied) {
            return Err(self.refuse("verify before every table is copied"));
        }
        self.phase = next;
        self.last_error = None;
        Ok(next)
    }

    /// A cutover that could not finish: back to where it started (verify done, or reversed).
    pub fn abort_cutover(&mut self, back_to: Phase) -> Result<(), TransitionError> {
        if self.phase != Phase::Cutover || !matches!(back_to, Phase::Verify | Phase::Reversed) {
            return Err(self.refuse("aborting a cutover"));
        }
        self.phase = back_to;
        Ok(())
    }

    /// Sends traffic back to the source after a cutover.
    pub fn reverse(&mut self) -> Result<(), TransitionError> {
        if self.phase != Phase::Switched {
            return Err(self.refuse("reverse"));
        }
        self.phase = Phase::Reversing;
        Ok(())
    }

    /// Gives up: the target copy is to be dropped. Not once the target owns the keys (reverse first).
    pub fn cancel(&mut self) -> Result<(), TransitionError> {
        if self.phase.is_final() || self.phase.target_owns() {
            return Err(self.refuse("cancel (reverse first)"));
        }
        self.phase = Phase::Cancelling;
        Ok(())
    }

    /// Whether copying may go on in this phase.
    pub fn copying(&self) -> bool {
        matches!(self.phase, Phase::Backfill | Phase::Verify)
    }

    /// Records a copied chunk: `rows` more rows of `table` from `source`, ending at `last_key` (`None`: the end).
    pub fn checkpoint(
        &mut self,
        source: &str,
        table: &str,
        rows: u64,
        last_key: Option<Vec<String>>,
    ) -> Result<(), TransitionError> {
        if self.phase != Phase::Backfill {
            return Err(self.refuse("copying"));
        }
        let t = self.table_mut(source, table)?;
        t.rows_copied += rows;
        match last_key {
            Some(key) => t.checkpoint = Some(key),
            None => t.copied = true,
        }
        Ok(())
    }

    pub fn table_mut(
        &mut self,
        source: &str,
        table: &str,
    ) -> Result<&mut TableProgress, TransitionError> {
        let id = self.id.clone();
        self.tables
            .iter_mut()
            .find(|t| t.table == table && t.source == source)
            .ok_or(TransitionError::NoTable {
                id,
                source_shard: source.to_string(),
                table: table.to_string(),
            })
    }

    /// Copy progress over every table, 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        let total: u64 = self.tables.iter().map(|t| t.rows_estimated).sum();
        if self.tables.iter().all(|t| t.copied) {
            return 1.0;
        }
        if total == 0 {
            return 0.0;
        }
        let done: u64 = self
            .tables
            .iter()
            .map(|t| t.rows_copied.min(t.rows_estimated))
            .sum();
        (done as f64 / total as f64).min(0.999)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn move_42() -> Workflow {
        let settings = Settings {
            chunk_rows: 100,
            rows_per_second: 0,
            hold_ms: 2000,
            admins: vec!["127.0.0.1:15001".into()],
            user: "root".into(),
        };
        let kind = Kind::MoveTenants {
            tenants: vec!["42".into()],
            to: "fe-".into(),
            new_shard: None,
        };
        let mut w = Workflow::new("wf-1", "app", kind, settings, 0);
        w.tables
            .push(TableProgress::new("-80", "orders", vec!["id".into()]));
        w.tables[0].rows_estimated = 200;
        w
    }

    #[test]
    fn phases_go_in_order_and_verify_must_be_clean_before_cutover() {
        let mut w = move_42();
        assert_eq!(w.advance(), Ok(Phase::DualWrite));
        assert!(
            w.checkpoint("-80", "orders", 10, Some(vec!["10".into()]))
                .is_err(),
            "no copy before backfill"
        );
        assert_eq!(w.advance(), Ok(Phase::Backfill));
        w.checkpoint("-80", "orders", 100, Some(vec!["100".into()]))
            .unwrap();
        assert!(w.advance().is_err(), "the copy is not finished");
        w.checkpoint("-80", "orders", 100, None).unwrap();
        assert_eq!(w.fraction(), 1.0);
        assert_eq!(w.tables[0].checkpoint, Some(vec!["100".to_string()]));
        assert_eq!(w.advance(), Ok(Phase::Verify));
        assert!(w.advance().is_err(), "verify has not run clean");
        w.verify.clean = true;
        assert_eq!(w.advance(), Ok(Phase::Cutover));
        w.abort_cutover(Phase::Verify).unwrap();
        assert_eq!(w.advance(), Ok(Phase::Cutover));
        assert_eq!(w.advance(), Ok(Phase::Switched));
        assert!(
            w.cancel().is_err(),
            "the target owns the keys: reverse first"
        );
        w.reverse().unwrap();
        assert_eq!(w.advance(), Ok(Phase::Reversed));
        assert_eq!(
            w.advance(),
            Ok(Phase::Cutover),
            "a reversed move may cut over again"
        );
        assert_eq!(w.advance(), Ok(Phase::Switched));
        assert_eq!(w.advance(), Ok(Phase::Cleanup));
        assert_eq!(w.advance(), Ok(Phase::Complete));
        assert!(w.advance().is_err());
        assert!(w.cancel().is_err(), "nothing to cancel after completion");
    }

    #[test]
    fn cancel_is_possible_until_the_switch() {
        let mut w = move_42();
        w.advance().unwrap();
        w.advance().unwrap();
        w.cancel().unwrap();
        assert_eq!(w.advance(), Ok(Phase::Cancelled));
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
