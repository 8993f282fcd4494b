//! Per-table sharding rules: which column holds the tenant id and which vindex hashes it.
//! Reference tables (a full copy on every shard) have no rule; the snapshot lists them apart
//! ([`crate::Topology::reference_tables`]).
//!
//! Place in the data path: the SQL layer asks for a table's sharding column to find the tenant
//! id in a statement; routing asks for its vindex. This module must not know SQL syntax: a table
//! is a name, compared case-sensitively (MySQL on Linux); columns are compared case-insensitively
//! by callers.

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
