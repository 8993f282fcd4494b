//! Errors of the merge: every way shard replies or a spec can be unusable. Each is a fact about the input; the
//! proxy decides which MySQL error code the client sees.

use shardgate_wire::WireError;

/// Why shard replies could not be merged. `out` may then hold part of a reply; callers discard it.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// `merge` was called without any reply.
    #[error("no shard replies to merge")]
    NoReplies,
    /// A shard's reply held no packets.
    #[error("shard {shard} sent an empty reply")]
    EmptyReply { shard: usize },
    /// A shard's reply is not a well-formed OK, ERR or result set.
    #[error("shard {shard} sent a malformed reply: {source}")]
    Wire {
        shard: usize,
        #[source]
        source: WireError,
    },
    /// Some shards answered with a result set and others with OK.
    #[error("shard {shard} answered with {got}, shard 0 with {want}")]
    MixedReplies {
        shard: usize,
        got: &'static str,
        want: &'static str,
    },
    /// Shards returned result sets of different widths: they did not run the same statement on the same schema.
    #[error("shard {shard} returned {got} columns, shard 0 returned {want}")]
    ColumnCountMismatch {
        shard: usize,
        got: usize,
        want: usize,
    },
    /// Shards disagree on a column's type, so one decoding cannot serve all rows.
    #[error("shard {shard} column {column} has type 0x{got:02x}, shard 0 has 0x{want:02x}")]
    ColumnTypeMismatch {
        shard: usize,
        column: usize,
        got: u8,
        want: u8,
    },
    /// The spec names a column the result set does not have (or shows more columns than there are).
    #[error("merge spec names column {column}, the result set has {columns}")]
    ColumnOutOfRange { column: usize, columns: usize },
    /// The spec shows no columns of a result set: a result set has at least one.
    #[error("merge spec shows no columns of a result set")]
    NoVisibleColumns,
    /// The shards returned more rows in total than the merge may buffer.
    #[error("{rows} rows from the shards exceed the merge limit of {limit}")]
    TooManyRows { rows: usize, limit: usize },
    /// A cell could not be decoded as its column's type, or a result not encoded in it.
    #[error("column {column}: {problem}")]
    BadValue {
        column: usize,
        problem: &'static str,
    },
    /// An aggregate was asked of a column type it cannot be computed on (such as SUM of a string).
    #[error("aggregate over column {column} of type 0x{type_code:02x} is not supported")]
    UnsupportedAggregate { column: usize, type_code: u8 },
    /// HAVING compares a column that is not numeric with a number. Strings compare by collation and temporals by
    /// conversions of the literal, which the merge does not reproduce; the planner lets only NULL tests reach such
    /// columns, so this is a statement the planner could not type.
    #[error(
        "HAVING compares column {column} of type 0x{type_code:02x} with a number; after a merge only numeric columns can be compared"
    )]
    HavingNotNumeric { column: usize, type_code: u8 },
    /// The spec's HAVING condition is unusable: a literal that is not a number, or nesting past the merge's bound.
    #[error("HAVING condition: {problem}")]
    BadHaving { problem: &'static str },
    /// Ordering by an ENUM or SET column: MariaDB sorts them by their position in the type's list, which a result
    /// set does not carry. The planner must add `col+0` as the weight column.
    #[error("column {column} is an ENUM or SET; ordering needs its index as a weight column")]
    OrdinalWithoutWeight { column: usize },
}
