//! HAVING on several shards: cut from the shards' statement and planned as a
//! [`HavingExpr`] the merger evaluates on each merged row, as Vitess vtgate does.
//!
//! On a shard, HAVING would see only that shard's part of each group (a group of three
//! rows split two and one fails `COUNT(*) > 2` on both shards), so only the merger can
//! evaluate it. The merger sees columns, not SQL, so each operand must be a column of
//! the shard text and the condition must be one the merger can evaluate exactly:
//! comparisons with a number or NULL, `IS [NOT] NULL`, AND, OR and NOT. Strings are
//! refused as literals here (they compare by collation) and as compared columns by the
//! merger, which alone knows the column types.
//!
//! Operands resolve as MariaDB resolves names in HAVING: the select list first (aliases
//! and column names), then the GROUP BY columns. Where MariaDB would warn and take the
//! GROUP BY column over a different select item of that name, shardgate refuses. An
//! aggregate names the same aggregate in the select list, or else a hidden column
//! computing it on the shards, combined like any other.

use sqlparser::ast::{BinaryOperator, Expr, Ident, UnaryOperator, Value};
use sqlparser::tokenizer::Token;

use super::aggregate::{self, Call};
use super::items::{Located, unlocated};
use super::{Builder, layout};
use crate::error::SqlError;
use crate::scatter::{Aggregate, AggregateKind, HavingExpr, HavingLiteral, HavingOp};
use crate::tokens;

/// Aggregates HAVING added as hidden columns, so that a second mention reuses one.
type HiddenCalls<'a> = Vec<(Call<'a>, usize)>;

impl<'a> Builder<'a> {
    /// The merger's condition for `having`; appends the hidden aggregates it needs to
    /// `aggregates` and takes the clause out of the shard text. Runs after the group
    /// keys are known: HAVING may name them.
    pub(super) fn having(
        &mut self,
        having: &'a Expr,
        aggregates: &mut Vec<Aggregate>,
    ) -> Result<HavingExpr, SqlError> {
        let facts = aggregate::facts(having);
        if facts.placeholders {
            return Err(SqlError::unsupported(
                "HAVING with a ? placeholder on several shards: the merger evaluates HAVING without the statement's parameters; write the value",
            ));
        }
        if facts.windows {
            return Err(super::refused("a window function in HAVING"));
        }
        let mut hidden = HiddenCalls::new();
        let condition = self.condition(having, aggregates, &mut hidden)?;
        self.cut_having(having)?;
        Ok(condition)
    }

    /// `expr` as a condition. Recursion is bounded: the caller refused HAVING nested
    /// deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    fn condition(
        &mut self,
        expr: &'a Expr,
        aggregates: &mut Vec<Aggregate>,
        hidden: &mut HiddenCalls<'a>,
    ) -> Result<HavingExpr, SqlError> {
        Ok(match expr {
            Expr::Nested(inner) => self.condition(inner, aggregates, hidden)?,
            Expr::BinaryOp {
                left,
                op: op @ (BinaryOperator::And | BinaryOperator::Or),
                right,
            } => {
                let left = Box::new(self.condition(left, aggregates, hidden)?);
                let right = Box::new(self.condition(right, aggregates, hidden)?);
                if *op == BinaryOperator::And {
                    HavingExpr::And(left, right)
                } else {
                    HavingExpr::Or(left, right)
                }
            }
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: inner,
            } => HavingExpr::Not(Box::new(self.condition(inner, aggregates, hidden)?)),
            Expr::IsNull(operand) | Expr::IsNotNull(operand) => HavingExpr::IsNull {
                column: self.operand(operand, aggregates, hidden)?,
                negated: matches!(expr, Expr::IsNotNull(_)),
            },
            Expr::BinaryOp { left, op, right } => {
                let op = comparison(op).ok_or_else(|| unsupported(expr))?;
                match (literal(left)?, literal(right)?) {
                    (None, Some(literal)) => HavingExpr::Compare {
                        column: self.operand(left, aggregates, hidden)?,
                        op,
                        literal,
                    },
                    // `2 < COUNT(*)` is `COUNT(*) > 2`.
                    (Some(literal), None) => HavingExpr::Compare {
                        column: self.operand(right, aggregates, hidden)?,
                        op: flipped(op),
                        literal,
                    },
                    _ => return Err(unsupported(expr)),
                }
            }
            _ => return Err(unsupported(expr)),
        })
    }

    /// The column holding operand `expr`.
    fn operand(
        &mut self,
        expr: &'a Expr,
        aggregates: &mut Vec<Aggregate>,
        hidden: &mut HiddenCalls<'a>,
    ) -> Result<usize, SqlError> {
        match expr {
            Expr::Nested(inner) => self.operand(inner, aggregates, hidden),
            Expr::Identifier(name) => self.having_name(name),
            Expr::CompoundIdentifier(_) => self.having_qualified(expr),
            Expr::Function(function) if aggregate::aggregate_name(function).is_some() => {
                // Refuses the aggregates the merger cannot combine, with the reason.
                let call = aggregate::classify(expr)?.ok_or_else(|| unsupported(expr))?;
                self.having_aggregate(expr, call, aggregates, hidden)
            }
            _ => Err(unsupported(expr)),
        }
    }

    /// The column an unqualified name in HAVING names: a select item by alias or
    /// column name, else a GROUP BY column of that name.
    fn having_name(&self, name: &Ident) -> Result<usize, SqlError> {
        let is_name = |ident: &Ident| ident.value.eq_ignore_ascii_case(&name.value);
        let column_named = |expr: &Expr| match expr {
            Expr::Identifier(ident) => is_name(ident),
            Expr::CompoundIdentifier(parts) => parts.last().is_some_and(is_name),
            _ => false,
        };
        let named = |column: &usize| {
            let item = self.items.get(*column);
            match item.and_then(|item| item.alias) {
                Some(alias) => is_name(alias),
                None => item.and_then(|item| item.expr).is_some_and(column_named),
            }
        };
        // MariaDB looks behind an alias (`k AS x` for `k`) only when no name matches.
        let behind_alias = |column: &usize| {
            let item = self.items.get(*column);
            item.is_some_and(|item| item.alias.is_some())
                && item.and_then(|item| item.expr).is_some_and(column_named)
        };
        let mut selected: Vec<usize> = (0..self.items.len()).filter(named).collect();
        if selected.is_empty() {
            selected = (0..self.items.len()).filter(behind_alias).collect();
        }
        let grouped: Vec<(&Expr, usize)> = self
            .group_exprs
            .iter()
            .filter(|(expr, _)| column_named(expr))
            .copied()
            .collect();
        let ambiguous = || {
            SqlError::unsupported(format!(
                "HAVING `{name}` is ambiguous on several shards: it names several select items, or a select item and a different GROUP BY column"
            ))
        };
        let expr_of = |column: usize| self.items.get(column).and_then(|item| item.expr);
        let first = selected.first().copied();
        let first_grouped = grouped.first().map(|(expr, _)| *expr);
        // The same expression twice (`SELECT k, k`) is one operand, as for MariaDB.
        if selected
            .iter()
            .any(|&column| expr_of(column) != first.and_then(expr_of))
            || grouped.iter().any(|(expr, _)| Some(*expr) != first_grouped)
        {
            return Err(ambiguous());
        }
        match (first, grouped.first()) {
            (Some(column), Some((expr, _))) if expr_of(column) != Some(*expr) => Err(ambiguous()),
            (Some(column), _) | (None, Some(&(_, column))) => Ok(column),
            (None, None) => Err(SqlError::unsupported(format!(
                "HAVING `{name}` names neither a select item nor a GROUP BY column; MariaDB would look for it in the tables, which shardgate cannot see on several shards: select it"
            ))),
        }
    }

    /// The column a qualified name (`o.k`) in HAVING names: a select item or GROUP BY
    /// entry written the same.
    fn having_qualified(&self, expr: &Expr) -> Result<usize, SqlError> {
        let selected = self.items.iter().position(|item| item.expr == Some(expr));
        let grouped = self
            .group_exprs
            .iter()
            .find(|(grouped, _)| *grouped == expr)
            .map(|(_, column)| *column);
        selected.or(grouped).ok_or_else(|| {
            SqlError::unsupported(format!(
                "HAVING `{expr}` is not written the same as a select item or GROUP BY entry, which shardgate needs to find its column on several shards"
            ))
        })
    }

    /// The column of aggregate `call` (written `expr` in HAVING): the same aggregate in
    /// the select list, or a hidden column computing it.
    fn having_aggregate(
        &mut self,
        expr: &Expr,
        call: Call<'a>,
        aggregates: &mut Vec<Aggregate>,
        hidden: &mut HiddenCalls<'a>,
    ) -> Result<usize, SqlError> {
        let selected = self
            .items
            .iter()
            .position(|item| item.call.is_some_and(|own| same_call(own, call)));
        let added = hidden
            .iter()
            .find(|(own, _)| same_call(*own, call))
            .map(|(_, column)| *column);
        if let Some(column) = selected.or(added) {
            return Ok(column);
        }
        if let Some(argument) = call.argument {
            let facts = aggregate::facts(argument);
            if let Some(alias) = facts
                .identifiers
                .iter()
                .find(|name| self.aliased(name).next().is_some())
            {
                return Err(SqlError::unsupported(format!(
                    "HAVING `{expr}` uses select-list alias `{alias}` inside an aggregate that is not in the select list, which cannot be copied into a helper column on several shards: select the aggregate"
                )));
            }
        }
        let sql = self.sql;
        let (text, argument) = self.located()?.having_call(sql, expr, call.argument)?;
        let (text, argument) = (text.to_owned(), argument.map(str::to_owned));
        let aggregate = match (call.kind, argument) {
            (AggregateKind::Avg { .. }, Some(argument)) => {
                let column = self.hide(format!("SUM({argument})"));
                let count_column = self.hide(format!("COUNT({argument})"));
                Aggregate {
                    column,
                    kind: AggregateKind::Avg { count_column },
                    weight_column: None,
                }
            }
            (AggregateKind::Avg { .. }, None) => return Err(unlocated("AVG argument")),
            (kind @ (AggregateKind::Min | AggregateKind::Max), _) => {
                let column = self.hide(text);
                // Strings combine by collation, as for a selected MIN or MAX.
                let weight_column = Some(self.weight(column)?);
                Aggregate {
                    column,
                    kind,
                    weight_column,
                }
            }
            (kind, _) => Aggregate {
                column: self.hide(text),
                kind,
                weight_column: None,
            },
        };
        aggregates.push(aggregate);
        hidden.push((call, aggregate.column));
        Ok(aggregate.column)
    }

    /// Takes the HAVING clause out of the shard text, with the blank before it.
    fn cut_having(&mut self, having: &Expr) -> Result<(), SqlError> {
        let sql = self.sql;
        let located = self.located()?;
        let piece = &located.layout.having;
        // The text after the keyword must be the whole condition, or the cut would
        // leave part of it behind (or take more).
        located.checked(sql, piece.get(1..), having, "HAVING clause")?;
        let mut range =
            layout::span(&located.tokens, piece).ok_or_else(|| unlocated("HAVING clause"))?;
        if let Some(before) = piece
            .first()
            .and_then(|&at| located.tokens.previous_solid(at))
        {
            range.start = located.tokens.range(before).end;
        }
        // `GROUP BY a HAVING x > 'b'ORDER BY a` must not become `GROUP BY aORDER BY a`.
        let glued = sql
            .get(range.end..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|next| !next.is_whitespace());
        self.edits
            .push((range, if glued { " " } else { "" }.to_owned()));
        Ok(())
    }
}

impl Located {
    /// The text of aggregate call `call` in the HAVING clause, and of its argument
    /// (`None` for `COUNT(*)`): the first `name(...)` there that parses back to it.
    fn having_call<'s>(
        &self,
        sql: &'s str,
        call: &Expr,
        argument: Option<&Expr>,
    ) -> Result<(&'s str, Option<&'s str>), SqlError> {
        let Expr::Function(function) = call else {
            return Err(unlocated("HAVING aggregate"));
        };
        let name = function.name.to_string();
        let piece = &self.layout.having;
        let named = |at: usize| matches!(self.tokens.token(at), Some(Token::Word(word)) if word.value.eq_ignore_ascii_case(&name));
        let token_is = |at: &usize, wanted: &Token| self.tokens.token(*at) == Some(wanted);
        for start in 0..piece.len() {
            let opens = piece
                .get(start + 1)
                .is_some_and(|at| token_is(at, &Token::LParen));
            if !piece.get(start).is_some_and(|&at| named(at)) || !opens {
                continue;
            }
            // The parenthesis closing the one after the name.
            let mut depth = 0usize;
            let close = (start + 1..piece.len()).find(|&index| {
                let at = &piece[index];
                if token_is(at, &Token::LParen) {
                    depth += 1;
                } else if token_is(at, &Token::RParen) {
                    depth = depth.saturating_sub(1);
                    return depth == 0;
                }
                false
            });
            let Some(close) = close else {
                continue;
            };
            let text = piece
                .get(start..=close)
                .and_then(|call_piece| layout::span(&self.tokens, call_piece))
                .and_then(|range| sql.get(range));
            let Some(text) = text.filter(|text| tokens::same_expr(text, call)) else {
                continue;
            };
            let argument = match argument {
                None => None,
                Some(argument) => Some(self.checked(
                    sql,
                    piece.get(start + 2..close),
                    argument,
                    "aggregate argument",
                )?),
            };
            return Ok((text, argument));
        }
        Err(unlocated("HAVING aggregate"))
    }
}

/// Whether two aggregate calls compute the same thing.
fn same_call(a: Call<'_>, b: Call<'_>) -> bool {
    std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind) && a.argument == b.argument
}

/// The comparison `op` is, if it is one the merger evaluates.
fn comparison(op: &BinaryOperator) -> Option<HavingOp> {
    Some(match op {
        BinaryOperator::Eq => HavingOp::Eq,
        BinaryOperator::NotEq => HavingOp::Ne,
        BinaryOperator::Lt => HavingOp::Lt,
        BinaryOperator::LtEq => HavingOp::Le,
        BinaryOperator::Gt => HavingOp::Gt,
        BinaryOperator::GtEq => HavingOp::Ge,
        _ => return None,
    })
}

/// `op` with its sides swapped: `a < b` is `b > a`.
fn flipped(op: HavingOp) -> HavingOp {
    match op {
        HavingOp::Lt => HavingOp::Gt,
        HavingOp::Le => HavingOp::Ge,
        HavingOp::Gt => HavingOp::Lt,
        HavingOp::Ge => HavingOp::Le,
        symmetric => symmetric,
    }
}

/// The literal `expr` is; `None` when it is no literal (then it must be an operand);
/// refuses literals the merger cannot compare with.
fn literal(expr: &Expr) -> Result<Option<HavingLiteral>, SqlError> {
    let mut negative = false;
    let mut inner = expr;
    loop {
        match inner {
            Expr::Nested(nested) => inner = nested,
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: operand,
            } => {
                negative = !negative;
                inner = operand;
            }
            Expr::UnaryOp {
                op: UnaryOperator::Plus,
                expr: operand,
            } => inner = operand,
            _ => break,
        }
    }
    let Expr::Value(value) = inner else {
        return Ok(None);
    };
    let sign = if negative { "-" } else { "" };
    let number = match &value.value {
        Value::Null => return Ok(Some(HavingLiteral::Null)),
        Value::Boolean(true) => "1",
        Value::Boolean(false) => "0",
        Value::Number(digits, false) => digits.as_str(),
        _ => {
            return Err(SqlError::unsupported(format!(
                "HAVING compares with `{expr}` on several shards: after the merge only numbers and NULL can be compared (strings compare by collation)"
            )));
        }
    };
    if number.contains(['e', 'E']) {
        let valid = number.parse::<f64>().is_ok_and(f64::is_finite);
        return if valid {
            Ok(Some(HavingLiteral::Double(format!("{sign}{number}"))))
        } else {
            Err(unsupported(expr))
        };
    }
    // MariaDB reads `.5` and `5.` too; the plan writes them `0.5` and `5`.
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(unsupported(expr));
    }
    let int = if int.is_empty() { "0" } else { int };
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    Ok(Some(HavingLiteral::Exact(format!("{sign}{int}{frac}"))))
}

/// The refusal of a HAVING (part) the merger cannot evaluate.
fn unsupported(expr: &Expr) -> SqlError {
    SqlError::unsupported(format!(
        "HAVING `{expr}` on several shards: after the merge only comparisons of a select-list column or alias, a GROUP BY column or COUNT/SUM/MIN/MAX/AVG with a number or NULL, IS [NOT] NULL, AND, OR and NOT can be evaluated"
    ))
}
