//! Resharding workflows: what a move or a split is, which phase it is in, how far each table's copy got, and the
//! SQL that copies and verifies a table in primary-key chunks.
//!
//! Place in the system: off the data path, used by `shardctl reshard` (the controller). Everything a controller must
//! not lose when it is killed lives in a [`Workflow`] record, written whole and atomically by a [`WorkflowStore`]
//! after every step, so `shardctl reshard resume` continues from the last checkpoint. The crate knows nothing of
//! sockets: the controller runs the statements [`chunk`] (copy, verify) and [`capture`] (change capture, cutover
//! fence, cleanup) build.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod capture;
pub mod chunk;
mod store;
mod workflow;

pub use store::{StoreError, WorkflowStore};
pub use workflow::{
    CutoverReport, Kind, NewShard, Phase, Settings, TableProgress, TransitionError, VerifyReport,
    Workflow,
};
