//! What can go wrong in the topology, stated as facts.
//!
//! Place in the data path: [`RouteError`] comes back from routing a statement (the proxy turns
//! it into a MySQL error packet); [`TopologyError`] comes back from loading, validating or
//! swapping a topology (the proxy logs it and keeps serving the old snapshot). This module must
//! not know MySQL error codes or SQLSTATEs: `proxy/` picks those.

use std::path::PathBuf;

use crate::KeyRange;

/// Why a topology could not be loaded, built or installed.
///
/// Every message is complete on its own (it includes the file, the parser's words, the I/O
/// error); no variant chains a `source()`, so error reporters that print chains repeat nothing.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The topology file could not be read.
    #[error("cannot read topology file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A problem found in a topology file; the path says which.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem in it ([`TopologyError::Syntax`] or [`TopologyError::Invalid`]).
        error: Box<TopologyError>,
    },
    /// The text is not YAML of the topology's shape (syntax error, unknown field, wrong type).
    #[error("topology YAML is malformed: {message}")]
    Syntax {
        /// 1-based line of the problem, when the YAML parser knows it.
        line: Option<usize>,
        /// 1-based column of the problem, when the YAML parser knows it.
        column: Option<usize>,
        /// The parser's description, including its location.
        message: String,
    },
    /// The YAML is well-formed but describes an unusable topology; every problem is listed.
    #[error("topology is invalid ({} problem{}): {}", problems.len(), plural(problems.len()), join(problems))]
    Invalid {
        /// Every problem found, in file order, gaps and overlaps last.
        problems: Vec<Problem>,
    },
    /// A shard name is not a Vitess key-range name.
    #[error("shard name {name:?} {fault}")]
    BadShardName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        fault: ShardNameFault,
    },
    /// An even split was asked for a shard count it cannot make.
    #[error("shard count {n} is not a power of two between 1 and 256")]
    BadShardCount {
        /// The count asked for.
        n: u32,
    },
    /// A new snapshot's version is not above the one being served.
    #[error("topology version {offered} does not grow past the serving version {serving}")]
    VersionNotGrowing {
        /// The version being served.
        serving: u64,
        /// The version offered.
        offered: u64,
    },
}

impl TopologyError {
    /// The validation problems this error carries (empty unless the topology was invalid).
    pub fn problems(&self) -> &[Problem] {
        match self {
            TopologyError::Invalid { problems } => problems,
            TopologyError::InFile { error, .. } => error.problems(),
            _ => &[],
        }
    }
}

/// What is wrong with a shard name.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ShardNameFault {
    /// No `-` separates start and end.
    #[error("has no '-' between its start and end")]
    NoDash,
    /// A side has an odd number of hex digits (Vitess boundaries are whole bytes).
    #[error("has an odd number of hex digits on one side")]
    OddLength,
    /// A side has more than 16 hex digits (8 bytes).
    #[error("has more than 16 hex digits on one side")]
    TooLong,
    /// A side contains something other than hex digits.
    #[error("is not hexadecimal on one side")]
    NotHex,
    /// The start is not below the end.
    #[error("names an empty range (start is not below end)")]
    EmptyRange,
}

/// One validation problem. Each names the field path it was found at (`shards[3].backend`).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Problem {
    /// A required text field is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// Field path.
        field: String,
    },
    /// The topology has no shard at all.
    #[error("shards: a topology needs at least one shard")]
    NoShards,
    /// A shard name is not a Vitess key-range name.
    #[error("{field}: shard name {name:?} {fault}")]
    BadShardName {
        /// Field path.
        field: String,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        fault: ShardNameFault,
    },
    /// A dedicated shard's name is a key-range name, or not a plain identifier.
    #[error(
        "{field}: dedicated shard name {name:?} must be letters, digits and '_', and not a key-range name"
    )]
    BadDedicatedName {
        /// Field path.
        field: String,
        /// The name as given.
        name: String,
    },
    /// Two shards have the same name.
    #[error("{field}: shard name {name:?} is already used by {first}")]
    DuplicateShard {
        /// Field path of the second use.
        field: String,
        /// The name.
        name: String,
        /// Field path of the first use.
        first: String,
    },
    /// Part of the key space is owned by no shard.
    #[error("shards: key space {range} is owned by no shard (after {after}, before {before})")]
    Gap {
        /// The unowned keyspace ids.
        range: KeyRange,
        /// The shard below the gap, quoted, or "the bottom of the key space".
        after: String,
        /// The shard above the gap, quoted, or "the top of the key space".
        before: String,
    },
    /// Part of the key space is owned by two shards.
    #[error("shards: key space {range} is owned by both {first:?} and {second:?}")]
    Overlap {
        /// The doubly owned keyspace ids.
        range: KeyRange,
        /// One owner.
        first: String,
        /// The other owner.
        second: String,
    },
    /// A shard names a backend that is not defined.
    #[error("{field}: unknown backend {backend:?}")]
    UnknownBackend {
        /// Field path.
        field: String,
        /// The backend name as given.
        backend: String,
    },
    /// Two backends have the same name.
    #[error("{field}: backend name {name:?} is already used by {first}")]
    DuplicateBackend {
        /// Field path of the second use.
        field: String,
        /// The name.
        name: String,
        /// Field path of the first use.
        first: String,
    },
    /// A backend's port is 0.
    #[error("{field}: port must not be 0")]
    ZeroPort {
        /// Field path.
        field: String,
    },
    /// A database name is not a safe identifier.
    #[error("{field}: database name {database:?} is not a safe identifier ([A-Za-z0-9_$]+)")]
    UnsafeDatabase {
        /// Field path.
        field: String,
        /// The name as given.
        database: String,
    },
    /// Two shards would store their rows in the same database of the same backend.
    #[error(
        "{field}: database {database:?} on backend {backend:?} is already used by shard {other:?}"
    )]
    SharedDatabase {
        /// Field path.
        field: String,
        /// The database name.
        database: String,
        /// The backend name.
        backend: String,
        /// The shard that uses it first.
        other: String,
    },
    /// A pin names a shard that is not defined.
    #[error("{field}: unknown shard {shard:?}")]
    UnknownPinShard {
        /// Field path.
        field: String,
        /// The shard name as given.
        shard: String,
    },
    /// A move names a shard that is not defined.
    #[error("{field}: unknown shard {shard:?}")]
    UnknownMoveShard {
        /// Field path.
        field: String,
        /// The shard name as given.
        shard: String,
    },
    /// A tenant is pinned twice.
    #[error("{field}: tenant {tenant} is already pinned by {first}")]
    DuplicatePin {
        /// Field path of the second pin.
        field: String,
        /// The tenant as written (strings quoted).
        tenant: String,
        /// Field path of the first pin.
        first: String,
    },
    /// A reference table gives a sharding column, vindex or sequence column: it has a full copy
    /// on every shard, so there is nothing to shard it by, and accepting the field would suggest
    /// otherwise (a sequence would have to give every shard's copy the same id, which is not
    /// supported).
    #[error(
        "{field}: table {name:?} is a reference table (a full copy on every shard) and takes no {what}"
    )]
    ShardingOfReferenceTable {
        /// Field path of the column or vindex.
        field: String,
        /// The table name.
        name: String,
        /// What was given: `column`, `vindex` or `auto_increment`.
        what: &'static str,
    },
    /// A sequence name is not a safe identifier.
    #[error("{field}: sequence name {sequence:?} is not a safe identifier ([A-Za-z0-9_$]+)")]
    UnsafeSequence {
        /// Field path.
        field: String,
        /// The name as given.
        sequence: String,
    },
    /// A sequence has the name of a listed table: both would be the same table on the first
    /// shard, which holds the sequence tables.
    #[error("{field}: sequence {sequence:?} is the name of the table listed at {table}")]
    SequenceIsTable {
        /// Field path of the sequence.
        field: String,
        /// The sequence name.
        sequence: String,
        /// Field path of the table.
        table: String,
    },
    /// A table is listed twice.
    #[error("{field}: table {name:?} is already listed at {first}")]
    DuplicateTable {
        /// Field path of the second listing.
        field: String,
        /// The table name.
        name: String,
        /// Field path of the first listing.
        first: String,
    },
}

/// Why a tenant id could not be routed.
///
/// Never retryable: the same statement on the same snapshot fails the same way.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RouteError {
    /// A `hash` table needs an unsigned integer; the string given is not a plain decimal number.
    #[error(
        "table {table:?} is sharded by the hash vindex, which needs an unsigned integer tenant id; {tenant:?} is not one"
    )]
    TenantNotInteger {
        /// The table routed.
        table: String,
        /// The tenant id as given (cut to 64 characters).
        tenant: String,
    },
    /// A `hash` table needs a 64-bit unsigned integer; the decimal given is larger.
    #[error(
        "table {table:?} is sharded by the hash vindex; tenant id {tenant} does not fit in 64 bits"
    )]
    TenantOutOfRange {
        /// The table routed.
        table: String,
        /// The tenant id as given (cut to 64 characters).
        tenant: String,
    },
    /// A reference table was routed by tenant: it has no shard per tenant, since every shard
    /// holds all of it. Routing it would be a bug in the caller, refused rather than guessed.
    #[error(
        "table {table:?} is a reference table: every shard holds all of it, it is not routed by tenant"
    )]
    ReferenceTable {
        /// The table routed.
        table: String,
    },
}

impl RouteError {
    /// Whether retrying could succeed: never, routing is a pure function of the snapshot.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
