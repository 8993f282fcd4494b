//! Sequence columns: which rows of an INSERT leave their id to be generated.
//!
//! Place in the data path: part of a plan, like the tenant's slots. A sharded table
//! whose ids come from a sequence ([`Schema::sequence_column`](crate::Schema::sequence_column))
//! must never let a shard generate an id itself: each shard's `AUTO_INCREMENT` counts on
//! its own, so two shards would hand out the same id. So an INSERT whose rows ask for an
//! id is answered [`Route::NeedsIds`] before anything runs, and the proxy writes ids from
//! the sequence into it ([`fill_ids`](crate::fill_ids)).
//!
//! A row asks for an id when it omits the column, or gives it `NULL`, `DEFAULT` or a
//! literal that reads as the integer 0. Zero asks for an id because it does in MySQL's
//! default modes (without `NO_AUTO_VALUE_ON_ZERO`), and because sysbench and other
//! clients write `0` to mean "next id": keeping 0 as a value would store id 0 for every
//! such row, or let a shard whose table is still `AUTO_INCREMENT` generate one. Vitess
//! reads 0 the same way. A row that gives another integer keeps it, as MySQL does; a
//! `?` keeps whatever the client binds (the proxy cannot see it before execution).
//!
//! Whether a literal is 0 depends on the literal, not on the fingerprint (`0` and `5`
//! are both `?`), so the plan keeps each row's slot and reads it for every statement,
//! as it does for tenants; `NULL`, `DEFAULT` and an omitted column are in the
//! fingerprint itself. Anything else in the column (an expression, a decimal, a string
//! that is not an integer) is refused: it could evaluate to 0 or NULL on the shard.

use std::sync::Arc;

use sqlparser::ast::{Expr, Value};

use crate::analysis::Route;
use crate::analyze::KeyExpr;
use crate::analyze::unnest;
use crate::error::SqlError;
use crate::literal::{self, DOUBLE_QUOTED, NOT_NEGATABLE, Refusal};
use crate::scratch::{LiteralKind, Slot};
use crate::slot_map::SlotMap;

/// A sequence value that is not an integer.
const NOT_AN_INTEGER: Refusal = "is not an integer: ids are unsigned integers (NULL, DEFAULT or 0 take the next id from the sequence)";

/// A sequence value that is an expression.
pub(crate) const NOT_A_LITERAL: Refusal = "is not a literal: give an integer id or a `?`, or NULL, DEFAULT or 0 for the next id from the sequence (an expression could evaluate to 0 or NULL and make the shard generate an id of its own)";

/// Why an INSERT into a table with a sequence cannot have its ids written in.
pub(crate) mod shape {
    /// No column list.
    pub(crate) const COLUMN_LIST: &str =
        "must list its columns: the generated ids are written into the column list and rows";
    /// Rows from a query.
    pub(crate) const SELECT: &str = "cannot take its rows from a SELECT: ids can only be written into VALUES rows; list the rows, or give the ids";
    /// `INSERT ... SET` asking for an id.
    pub(crate) const SET: &str =
        "cannot take a generated id in INSERT ... SET; write INSERT ... (columns) VALUES (...)";
}

/// How an INSERT gives its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `(columns) VALUES (...), ...`: ids can be written in.
    Values,
    /// `SET col = value, ...`: one row, given explicitly or refused.
    Set,
}

/// One row's value for the sequence column, as the AST holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdExpr<'a> {
    /// Asks for an id whatever the literals: the column is omitted, `NULL` or `DEFAULT`.
    Generated,
    /// A literal or `?`: asks for an id when it reads as 0.
    Literal(KeyExpr<'a>),
}

impl<'a> IdExpr<'a> {
    /// The value `expr` gives the column; `None` for an expression.
    pub(crate) fn read(expr: &'a Expr) -> Option<Self> {
        match unnest(expr) {
            Expr::Value(value) if value.value == Value::Null => Some(Self::Generated),
            // `DEFAULT` in a VALUES row: the column's default, for AUTO_INCREMENT the next id.
            Expr::Identifier(ident)
                if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("DEFAULT") =>
            {
                Some(Self::Generated)
            }
            _ => crate::analyze::literal(expr).map(Self::Literal),
        }
    }

    /// Whether it asks for an id, read from the AST.
    pub(crate) fn generates(&self) -> Result<bool, Refusal> {
        match self {
            Self::Generated => Ok(true),
            Self::Literal(key) => value_generates(&key.value.value, key.negated),
        }
    }
}

/// The sequence column of an INSERT's rows, as the AST holds them.
#[derive(Debug)]
pub(crate) struct DraftIds<'a> {
    /// The sharded table.
    pub(crate) table: Arc<str>,
    /// Its sequence column.
    pub(crate) column: Arc<str>,
    /// Each row's value, in row order (each assignment's, for [`Form::Set`]).
    pub(crate) rows: Vec<IdExpr<'a>>,
    /// How the rows are given.
    pub(crate) form: Form,
}

impl DraftIds<'_> {
    /// Whether some row asks for an id whatever its literals.
    pub(crate) fn always_generates(&self) -> bool {
        self.rows.iter().any(|row| matches!(row, IdExpr::Generated))
    }
}

/// The sequence column of an INSERT's rows, for every statement of the fingerprint.
#[derive(Debug)]
pub(crate) struct IdsPlan {
    /// The sharded table.
    table: Arc<str>,
    /// Its sequence column.
    column: Arc<str>,
    /// Where each row's value is.
    rows: Vec<IdSource>,
    /// How the rows are given.
    form: Form,
}

/// Where one row's sequence value is.
#[derive(Debug)]
enum IdSource {
    /// Nowhere: the row always asks for an id.
    Generated,
    /// Slot `index` of the fingerprint, after a `-` when `negated`.
    Slot {
        /// Index into the statement's slots.
        index: usize,
        /// The statement writes `-` before the literal.
        negated: bool,
    },
    /// Read from the AST (the literal is not one slot); such a plan is never cached.
    Decoded {
        /// Whether it asks for an id, or why it is refused.
        generated: Result<bool, Refusal>,
        /// The literal as SQL text, for error messages.
        literal: String,
    },
}

impl IdsPlan {
    /// The plan of `draft`: each literal becomes its slot when every slot is an AST
    /// value (`covered`; see `plan::sources` for why), or is read from the AST.
    pub(crate) fn from_draft(draft: DraftIds<'_>, slots: &SlotMap, covered: bool) -> Self {
        let rows = draft
            .rows
            .iter()
            .map(|row| match row {
                IdExpr::Generated => IdSource::Generated,
                IdExpr::Literal(key) => {
                    let trusted = covered || matches!(key.value.value, Value::Placeholder(_));
                    match trusted.then(|| slots.index_of(key.value.span)).flatten() {
                        Some(index) => IdSource::Slot {
                            index,
                            negated: key.negated,
                        },
                        None => IdSource::Decoded {
                            generated: row.generates(),
                            literal: format!("{}{}", if key.negated { "-" } else { "" }, key.value),
                        },
                    }
                }
            })
            .collect();
        Self {
            table: draft.table,
            column: draft.column,
            rows,
            form: draft.form,
        }
    }

    /// Whether the plan holds for every statement of its fingerprint.
    pub(crate) fn is_cacheable(&self) -> bool {
        !self
            .rows
            .iter()
            .any(|row| matches!(row, IdSource::Decoded { .. }))
    }

    /// [`Route::NeedsIds`] for statement `sql` (whose slots are `slots`) when some of
    /// its rows ask for an id; `None` when every row gives one.
    pub(crate) fn route(&self, sql: &str, slots: &[Slot]) -> Result<Option<Route>, SqlError> {
        let mut rows = Vec::new();
        for (row, source) in self.rows.iter().enumerate() {
            let generated = match source {
                IdSource::Generated => true,
                IdSource::Slot { index, negated } => {
                    let slot = slots.get(*index).ok_or_else(|| {
                        SqlError::unsupported("internal error: plan does not match the statement")
                    })?;
                    slot_generates(sql, slot, *negated).map_err(|reason| {
                        let sign = if *negated { "-" } else { "" };
                        let text = sql.get(slot.span()).unwrap_or_default();
                        self.bad_value(format!("{sign}{text}"), reason)
                    })?
                }
                IdSource::Decoded { generated, literal } => generated
                    .as_ref()
                    .map_err(|reason| self.bad_value(literal.clone(), reason))
                    .copied()?,
            };
            if generated {
                rows.push(row);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        if self.form == Form::Set {
            return Err(SqlError::SequenceInsert {
                table: self.table.to_string(),
                column: self.column.to_string(),
                reason: shape::SET,
            });
        }
        Ok(Some(Route::NeedsIds {
            table: Arc::clone(&self.table),
            column: Arc::clone(&self.column),
            rows,
        }))
    }

    /// The refusal of a value `literal`.
    fn bad_value(&self, literal: String, reason: Refusal) -> SqlError {
        SqlError::BadSequenceValue {
            table: self.table.to_string(),
            column: self.column.to_string(),
            literal,
            reason,
        }
    }
}

/// Whether literal slot `slot` of `sql`, after a `-` when `negated`, asks for an id.
fn slot_generates(sql: &str, slot: &Slot, negated: bool) -> Result<bool, Refusal> {
    let Slot::Literal { kind, span } = slot else {
        // A `?`: the client binds an id (a bound NULL or 0 is not seen here).
        return if negated {
            Err(NOT_NEGATABLE)
        } else {
            Ok(false)
        };
    };
    let text = sql.get(span.clone()).unwrap_or_default();
    match kind {
        // `-0` is 0 too.
        LiteralKind::Int => Ok(all_zeros(text)),
        LiteralKind::Decimal => Err(NOT_AN_INTEGER),
        LiteralKind::DoubleQuotedStr => Err(DOUBLE_QUOTED),
        _ if negated => Err(NOT_NEGATABLE),
        LiteralKind::Str => {
            decimal_text_generates(&literal::unescape(literal::quoted_body(text), '\''))
        }
        LiteralKind::Hex | LiteralKind::Bit => binary_generates(literal::prefixed_digits(text)),
    }
}

/// Whether AST value `value`, after a `-` when `negated`, asks for an id. The same
/// rules as [`slot_generates`].
fn value_generates(value: &Value, negated: bool) -> Result<bool, Refusal> {
    match value {
        Value::Number(digits, false) if is_digits(digits) => Ok(all_zeros(digits)),
        Value::Number(..) => Err(NOT_AN_INTEGER),
        Value::DoubleQuotedString(_) => Err(DOUBLE_QUOTED),
        Value::Null if !negated => Ok(true),
        Value::Placeholder(_)
        | Value::SingleQuotedString(_)
        | Value::NationalStringLiteral(_)
        | Value::HexStringLiteral(_)
        | Value::SingleQuotedByteStringLiteral(_)
            if negated =>
        {
            Err(NOT_NEGATABLE)
        }
        Value::Placeholder(_) => Ok(false),
        Value::SingleQuotedString(text) | Value::NationalStringLiteral(text) => {
            decimal_text_generates(text)
        }
        Value::HexStringLiteral(digits) | Value::SingleQuotedByteStringLiteral(digits) => {
            binary_generates(digits)
        }
        _ => Err(NOT_A_LITERAL),
    }
}

/// A string: MySQL converts it to an integer for the column; only plain decimals are
/// read here (`'0'`, `'007'`), anything else could convert to 0 with a warning.
fn decimal_text_generates(text: &str) -> Result<bool, Refusal> {
    if is_digits(text) {
        Ok(all_zeros(text))
    } else {
        Err(NOT_AN_INTEGER)
    }
}

/// Hex or bit digits: 0 when every digit is.
fn binary_generates(digits: &str) -> Result<bool, Refusal> {
    if digits.is_empty() {
        Err(NOT_AN_INTEGER)
    } else {
        Ok(all_zeros(digits))
    }
}

/// Whether `text` is one or more ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whether every character of `text` is `0` (digits checked by the caller).
fn all_zeros(text: &str) -> bool {
    text.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: LiteralKind, sql: &str, negated: bool) -> Result<bool, Refusal> {
        let slot = Slot::Literal {
            kind,
            span: 0..sql.len(),
        };
        slot_generates(sql, &slot, negated)
    }

    #[test]
    fn zero_in_any_integer_spelling_asks_for_an_id() {
        for (kind, text) in [
            (LiteralKind::Int, "0"),
            (LiteralKind::Int, "000"),
            (LiteralKind::Str, "'0'"),
            (LiteralKind::Str, "N'00'"),
            (LiteralKind::Hex, "0x00"),
            (LiteralKind::Hex, "x'0'"),
            (LiteralKind::Bit, "b'0'"),
        ] {
            assert_eq!(slot(kind, text, false), Ok(true), "{text}");
        }
        assert_eq!(slot(LiteralKind::Int, "0", true), Ok(true));
    }

    #[test]
    fn other_integers_are_ids_kept_as_given() {
        for (kind, text) in [
            (LiteralKind::Int, "7"),
            (LiteralKind::Int, "99999999999999999999999"),
            (LiteralKind::Str, "'10'"),
            (LiteralKind::Hex, "0x2a"),
            (LiteralKind::Bit, "0b1"),
        ] {
            assert_eq!(slot(kind, text, false), Ok(false), "{text}");
        }
        let param = Slot::Param {
            index: 0,
            span: 0..1,
        };
        assert_eq!(slot_generates("?", &param, false), Ok(false));
    }

    #[test]
    fn values_that_could_convert_to_zero_are_refused() {
        assert_eq!(
            slot(LiteralKind::Decimal, "0.4", false),
            Err(NOT_AN_INTEGER)
        );
        assert_eq!(slot(LiteralKind::Str, "''", false), Err(NOT_AN_INTEGER));
        assert_eq!(slot(LiteralKind::Str, "'0abc'", false), Err(NOT_AN_INTEGER));
        assert_eq!(slot(LiteralKind::Hex, "x''", false), Err(NOT_AN_INTEGER));
        assert_eq!(
            slot(LiteralKind::DoubleQuotedStr, "\"0\"", false),
            Err(DOUBLE_QUOTED)
        );
        assert_eq!(slot(LiteralKind::Str, "'0'", true), Err(NOT_NEGATABLE));
    }

    #[test]
    fn ast_values_follow_the_same_rules() {
        assert_eq!(value_generates(&Value::Null, false), Ok(true));
        assert_eq!(
            value_generates(&Value::Number("0".into(), false), true),
            Ok(true)
        );
        assert_eq!(
            value_generates(&Value::Number("5".into(), false), false),
            Ok(false)
        );
        assert_eq!(
            value_generates(&Value::Number("0.0".into(), false), false),
            Err(NOT_AN_INTEGER)
        );
        assert_eq!(
            value_generates(&Value::SingleQuotedString("0".into()), false),
            Ok(true)
        );
        assert_eq!(
            value_generates(&Value::Placeholder("?".into()), false),
            Ok(false)
        );
        assert_eq!(
            value_generates(&Value::Boolean(false), false),
            Err(NOT_A_LITERAL)
        );
    }
}
