//! How to combine the result sets of a SELECT that runs on several shards.
//!
//! Plain data, made by the analysis and read by the proxy's merger: this module decides
//! nothing and knows nothing of rows, packets or shards. The analysis only builds a
//! [`MergePlan`] for shapes whose merged answer equals what one MariaDB holding every
//! tenant would return (Vitess vtgate's single-keyspace scatter rules); it refuses the
//! rest with [`SqlError::Unsupported`](crate::SqlError::Unsupported).
//!
//! Every shard runs [`MergePlan::shard_sql`]. Its select list starts with the columns the
//! client sees, in the client's order, and may end with hidden helper columns (aliased
//! `__sg_h0`, `__sg_h1`, ...), which the merger uses and drops. Column indexes are
//! 0-based positions in that select list.
//!
//! What the merger does, in order:
//!
//! 1. **Group** (when [`MergePlan::group_by`] is not empty, or there are aggregates):
//!    rows with equal group keys become one row. Without group keys but with
//!    aggregates, all rows become one row (and no rows at all still give one row, as
//!    `SELECT COUNT(*)` on an empty table does: count 0, other aggregates NULL). Each
//!    [`Aggregate`] column is combined by its kind; any other column takes the value of
//!    the group's first row (the plan only allows group keys and constants there).
//! 2. **Having** ([`MergePlan::having`]): a row stays only when the condition is true
//!    (not false, not unknown) on its merged values: the combined aggregates, an AVG
//!    as its rounded quotient. The shards run the statement without its HAVING, which
//!    on one shard would see only that shard's part of each group.
//! 3. **Distinct** ([`MergePlan::distinct`]): expressed as `group_by` over every
//!    visible column with no aggregates, so step 1 already does it; the flag only tells
//!    the merger why.
//! 4. **Sort** by [`MergePlan::order_by`] (a k-way merge: each shard's rows already come
//!    sorted that way, except after grouping, when the grouped rows are sorted again).
//!    An empty `order_by` leaves rows in arrival order, which is what the statement
//!    asked for (no order).
//! 5. **Offset and limit**: skip [`MergePlan::offset`] rows, then keep at most
//!    [`MergePlan::limit`].
//!
//! Comparing values: MariaDB compares strings by collation, so every sort or group key
//! has a hidden `WEIGHT_STRING(expr)` column (`weight_column`). For a string-typed key
//! (per the column definition the shard sent) the merger compares the weights as
//! bytes; for other types it compares the values themselves (the weight is NULL for
//! numbers). NULL sorts before every value, so last when descending, and NULLs group
//! together. One catch, seen on MariaDB 10.11: for a PAD SPACE collation (every one
//! except `*_nopad_*` and binary ones) `WEIGHT_STRING` keeps trailing spaces, so
//! `'a'` and `'a '` (equal to MariaDB) weigh `0x0041` and `0x00410020`; the merger must
//! compare such weights as if the shorter were padded with the weight of a space.

/// How to merge the result sets of one scatter SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergePlan {
    /// The statement every shard runs: the original text, with hidden columns appended
    /// to the select list, `AVG` rewritten, HAVING removed and `LIMIT` changed as
    /// described on the fields below. `?` placeholders are the original ones, same count, same order.
    pub shard_sql: String,
    /// How many leading columns the client sees; the rest are hidden helpers.
    /// `usize::MAX` when the select list has a wildcard (`*`, `t.*`): then there are no
    /// hidden columns and every column the shards send is visible.
    pub visible_columns: usize,
    /// Sort keys, most significant first. Empty: no order.
    pub order_by: Vec<SortKey>,
    /// Group keys. Without an ORDER BY, MariaDB 10.11 returns grouped rows sorted by
    /// their group keys (checked on 10.11.19); `order_by` then lists the group keys
    /// ascending.
    pub group_by: Vec<GroupKey>,
    /// Aggregate columns, combined per group.
    pub aggregates: Vec<Aggregate>,
    /// The HAVING condition, tested on each merged row; `None`: keep every row.
    pub having: Option<HavingExpr>,
    /// The statement is `SELECT DISTINCT`; `group_by` then lists every visible column.
    pub distinct: bool,
    /// Rows to skip after sorting. The shards run `LIMIT offset + limit` without an
    /// offset (or no LIMIT, when partial groups or HAVING would make a per-shard limit
    /// wrong).
    pub offset: u64,
    /// Most rows to return after the offset; `None`: all.
    pub limit: Option<u64>,
}

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    /// The column holding the value.
    pub column: usize,
    /// `DESC`.
    pub descending: bool,
    /// The column holding the value's `WEIGHT_STRING` (for string values), if any.
    pub weight_column: Option<usize>,
}

/// One group key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// The column holding the value.
    pub column: usize,
    /// The column holding the value's `WEIGHT_STRING` (for string values), if any.
    pub weight_column: Option<usize>,
}

/// One aggregate column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregate {
    /// The column holding each shard's partial value.
    pub column: usize,
    /// How partial values combine.
    pub kind: AggregateKind,
    /// For `MIN`/`MAX`: the column holding `WEIGHT_STRING` of the partial value, to
    /// compare strings by collation.
    pub weight_column: Option<usize>,
}

/// How partial aggregate values combine. NULL partials are skipped; the result is NULL
/// when every partial is NULL, except for `Count` (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateKind {
    /// `COUNT(*)`, `COUNT(x)`: the sum of the partial counts.
    Count,
    /// `SUM(x)`: the sum of the partial sums.
    Sum,
    /// `MIN(x)`: the least partial value.
    Min,
    /// `MAX(x)`: the greatest partial value.
    Max,
    /// `AVG(x)`: the shards return `SUM(x)` in `column` (named as the client wrote the
    /// `AVG`) and `COUNT(x)` in `count_column`; the result is the sum of the sums
    /// divided by the sum of the counts, NULL when the counts sum to 0. MariaDB's AVG
    /// has the argument's scale plus `div_precision_increment` (default 4) decimals.
    Avg {
        /// The hidden column holding each shard's `COUNT(x)`.
        count_column: usize,
    },
}

/// A HAVING condition the merger evaluates on each merged row, with SQL's three-valued
/// logic: a comparison involving NULL is unknown, NOT unknown is unknown, `false AND
/// unknown` is false and `true OR unknown` is true; only rows where it is true stay.
///
/// Columns are those of [`MergePlan::shard_sql`]: a select item, a GROUP BY key, or a
/// hidden aggregate added for the HAVING. Comparisons take a number or NULL; the
/// merger compares numeric columns as MariaDB does (integers and decimals exactly,
/// FLOAT and DOUBLE as doubles) and refuses to compare other column types, whose
/// order (collations, date conversions) it cannot reproduce; `IsNull` takes any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HavingExpr {
    /// `column <op> literal`.
    Compare {
        /// The column holding the value.
        column: usize,
        /// The comparison, read with the column on the left.
        op: HavingOp,
        /// The literal compared with.
        literal: HavingLiteral,
    },
    /// `column IS NULL`, or `IS NOT NULL` when `negated`.
    IsNull {
        /// The column tested.
        column: usize,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// Both hold.
    And(Box<HavingExpr>, Box<HavingExpr>),
    /// Either holds.
    Or(Box<HavingExpr>, Box<HavingExpr>),
    /// The negation.
    Not(Box<HavingExpr>),
}

/// A comparison operator of [`HavingExpr::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HavingOp {
    /// `=`.
    Eq,
    /// `<>` or `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// The literal of a [`HavingExpr::Compare`]. Numbers keep their digits as text, sign
/// included: an exact comparison needs them all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HavingLiteral {
    /// An integer or fixed-point number, `[-]digits[.digits]` (`TRUE` is `1`), which
    /// MariaDB compares exactly with integer and DECIMAL values.
    Exact(String),
    /// A number with an exponent (`1e3`): a DOUBLE to MariaDB, compared as one.
    Double(String),
    /// `NULL`: every comparison with it is unknown.
    Null,
}
