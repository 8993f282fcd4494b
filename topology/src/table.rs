//! Per-table sharding rules: which column holds the tenant id and which vindex hashes it, and
//! which column, if any, takes its ids from a sequence ([`AutoIncrement`]). Reference tables (a
//! full copy on every shard) have no rule; the snapshot lists them apart
//! ([`crate::Topology::reference_tables`]).
//!
//! Place in the data path: the SQL layer asks for a table's sharding column to find the tenant
//! id in a statement; routing asks for its vindex. This module must not know SQL syntax: a table
//! is a name, compared case-sensitively (MySQL on Linux); columns are compared case-insensitively
//! by callers.

use serde::{Deserialize, Serialize};

use crate::Vindex;

/// A sharded table listed in the topology file, with its column and vindex resolved.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableRule {
    /// Table name, case-sensitive.
    pub name: String,
    /// Column holding the tenant id (the keyspace's default when the file left it out).
    pub column: String,
    /// How that column's values are hashed.
    pub vindex: Vindex,
    /// The column whose ids come from a sequence, if the table has one.
    pub auto_increment: Option<AutoIncrement>,
}

/// A column of a sharded table whose values come from a sequence (Vitess's `auto_increment`)
/// rather than from each shard's own `AUTO_INCREMENT`: shard-local counters would hand the same
/// id out on every shard, so the proxy takes ids from one sequence table and writes them into
/// the INSERT. Written `auto_increment: { column: id, sequence: orders_seq }` in the file.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoIncrement {
    /// The column the ids go into (compared case-insensitively by callers, like every column).
    pub column: String,
    /// The sequence table the ids come from: a safe identifier (`[A-Za-z0-9_$]+`), since the
    /// proxy writes it into SQL between backticks.
    pub sequence: String,
}

/// The rule that applies to a table, listed or not: borrowed from the snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TableRuleRef<'a> {
    /// Column holding the tenant id.
    pub column: &'a str,
    /// How that column's values are hashed.
    pub vindex: Vindex,
    /// Whether the table is listed in the topology (false = the keyspace default applies).
    pub listed: bool,
}
