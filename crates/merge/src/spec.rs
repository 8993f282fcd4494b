//! What the planner asks of a merge: which columns the client sees, and the grouping, aggregation, HAVING,
//! DISTINCT, ordering and LIMIT to apply across shards. Column numbers index the shard result set, hidden columns
//! included.

/// Which row encoding the replies use: COM_QUERY gives text rows, COM_STMT_EXECUTE binary rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Text,
    Binary,
}

/// The merge the planner planned for one scattered SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSpec {
    /// Columns the client sees; the columns after them are helper columns the planner added (weights, counts).
    /// `usize::MAX` shows every column (a `*` select list, which has no helpers).
    pub visible_columns: usize,
    /// ORDER BY, applied after grouping and aggregation. Empty with `group_by` set sorts by the group keys, as
    /// MariaDB's GROUP BY does implicitly.
    pub order_by: Vec<SortKey>,
    /// GROUP BY. Empty with `aggregates` set makes one group of all rows (`SELECT SUM(x) FROM t`).
    pub group_by: Vec<GroupKey>,
    /// Aggregates to combine across shards; each shard already aggregated its own rows.
    pub aggregates: Vec<Aggregate>,
    /// HAVING, tested on each row after grouping and aggregation (so on the combined aggregates, not a shard's
    /// partials) and before DISTINCT, ORDER BY and LIMIT. A row stays only when the condition is true, not when it
    /// is false or unknown (NULL). The shards ran the statement without it.
    pub having: Option<Having>,
    /// SELECT DISTINCT: drop visible rows equal to an earlier one, after aggregation. A DISTINCT may also be
    /// planned as `group_by` over every visible column; with this flag set the groups then keep first-seen order.
    pub distinct: bool,
    /// Weight columns for DISTINCT: string columns listed here compare by their weight, others by their bytes.
    pub distinct_weights: Vec<ColumnWeight>,
    /// Rows to skip after everything else (LIMIT's offset).
    pub offset: u64,
    /// Rows to return at most, after `offset`.
    pub limit: Option<u64>,
    /// Refuse the merge (with [`MergeError::TooManyRows`](crate::MergeError::TooManyRows)) when the shards
    /// return more rows than this in total: every row is buffered.
    pub max_rows: usize,
    /// The replies are copies of one write (a reference table written on every shard): when all are OK, the
    /// client gets the first shard's OK, not the sum.
    pub copies: bool,
    /// The id the proxy generated for an INSERT (sequences): the OK reports it as the last insert id.
    pub insert_id: Option<u64>,
}

impl MergeSpec {
    /// A spec that only concatenates shard rows and drops hidden columns; set the other fields as needed.
    pub fn concat(visible_columns: usize, max_rows: usize) -> Self {
        MergeSpec {
            visible_columns,
            order_by: Vec::new(),
            group_by: Vec::new(),
            aggregates: Vec::new(),
            having: None,
            distinct: false,
            distinct_weights: Vec::new(),
            offset: 0,
            limit: None,
            max_rows,
            copies: false,
            insert_id: None,
        }
    }

    /// How many of `width` columns the client sees.
    pub(crate) fn visible(&self, width: usize) -> usize {
        if self.visible_columns == usize::MAX {
            width
        } else {
            self.visible_columns
        }
    }

    /// Every column number the spec refers to, for one bounds check.
    pub(crate) fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        let sort = self
            .order_by
            .iter()
            .flat_map(|k| std::iter::once(k.column).chain(k.weight_column));
        let group = self
            .group_by
            .iter()
            .flat_map(|k| std::iter::once(k.column).chain(k.weight_column));
        let aggs = self.aggregates.iter().flat_map(|a| {
            let count = match a.kind {
                AggregateKind::Avg { count_column } => Some(count_column),
                _ => None,
            };
            std::iter::once(a.column)
                .chain(a.weight_column)
                .chain(count)
        });
        let distinct = self
            .distinct_weights
            .iter()
            .flat_map(|w| [w.column, w.weight_column]);
        let having = self.having.iter().flat_map(Having::columns);
        sort.chain(group).chain(aggs).chain(distinct).chain(having)
    }

    /// The weight column DISTINCT uses for `column`.
    pub(crate) fn distinct_weight(&self, column: usize) -> Option<usize> {
        self.distinct_weights
            .iter()
            .find(|w| w.column == column)
            .map(|w| w.weight_column)
    }
}

/// One ORDER BY key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: usize,
    pub descending: bool,
    /// A hidden column holding `WEIGHT_STRING(expr)` (or, for ENUM/SET, `expr+0`). Used only when `column` is a
    /// string type: it carries the collation's order, which the bytes of the string do not.
    pub weight_column: Option<usize>,
}

/// One GROUP BY key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKey {
    pub column: usize,
    /// As for [`SortKey::weight_column`]: string values with equal weights fall into one group.
    pub weight_column: Option<usize>,
}

/// A string column and the hidden column holding its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnWeight {
    pub column: usize,
    pub weight_column: usize,
}

/// An aggregate to combine across shards, in place in `column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    pub column: usize,
    pub kind: AggregateKind,
    /// For MIN/MAX of strings: the weight of the shard's MIN/MAX (`WEIGHT_STRING(MIN(x))`). The winner's weight is
    /// copied along with its value, so a later ORDER BY on the same weight stays right.
    pub weight_column: Option<usize>,
}

/// How one aggregate combines the shards' partial results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    /// The shards sent `COUNT(..)`: the result is their sum.
    Count,
    /// The shards sent `SUM(x)`: exact sum, NULL when every shard's is NULL.
    Sum,
    Min,
    Max,
    /// The shards sent `SUM(x)` in `column` and `COUNT(x)` in `count_column`; the result is the quotient, typed
    /// and rounded as MariaDB's `AVG(x)`, and the column definition is rewritten to match.
    Avg {
        count_column: usize,
    },
}

/// A HAVING condition on the merged rows: comparisons of one column with a literal and NULL tests, combined with
/// AND, OR and NOT. Evaluated with SQL's three-valued logic: a comparison involving NULL is unknown, NOT unknown is
/// unknown, `false AND unknown` is false and `true OR unknown` is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Having {
    /// `column <op> literal`. The column must be numeric (integer, DECIMAL, FLOAT, DOUBLE) or of the NULL type;
    /// a merge refuses other types with [`MergeError::HavingNotNumeric`](crate::MergeError::HavingNotNumeric),
    /// since strings compare by collation and temporals by conversions the merger does not reproduce.
    Compare {
        column: usize,
        op: HavingOp,
        literal: HavingLiteral,
    },
    /// `column IS NULL`, or `IS NOT NULL` when `negated`: any column type.
    IsNull {
        column: usize,
        negated: bool,
    },
    And(Box<Having>, Box<Having>),
    Or(Box<Having>, Box<Having>),
    Not(Box<Having>),
}

impl Having {
    /// Every column the condition reads. Walks with its own stack: the tree comes from a caller and may be deep.
    fn columns(&self) -> Vec<usize> {
        let mut columns = Vec::new();
        let mut pending = vec![self];
        while let Some(node) = pending.pop() {
            match node {
                Having::Compare { column, .. } | Having::IsNull { column, .. } => {
                    columns.push(*column)
                }
                Having::And(a, b) | Having::Or(a, b) => pending.extend([a.as_ref(), b.as_ref()]),
                Having::Not(a) => pending.push(a),
            }
        }
        columns
    }
}

/// A comparison operator of [`Having::Compare`], read as `column <op> literal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HavingOp {
    Eq,
    /// `<>` or `!=`.
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The literal a column is compared with. Numbers are kept as written: the merge compares them the way MariaDB
/// compares the column's type with the literal's, which needs the exact digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HavingLiteral {
    /// An integer or fixed-point number, `[-]digits[.digits]`: compared exactly with integer and DECIMAL columns,
    /// as a double with FLOAT and DOUBLE columns.
    Exact(String),
    /// A number with an exponent (`1e3`, `-2.5E-1`): a DOUBLE in MariaDB, so every comparison with it is one of
    /// doubles.
    Double(String),
    /// NULL: every comparison with it is unknown.
    Null,
}
