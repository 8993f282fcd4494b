//! The queries nested in an expression: subqueries, `IN (SELECT ...)`, `EXISTS`.
//!
//! Each is walked as a query block of its own, so the search stops at the first level.
//! It covers the usual places a subquery sits; one elsewhere is not walked, and then
//! refused by the count check of [`super`] if it reads a sharded table.

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query};

/// Pushes onto `found` the queries nested in `expr` (not those nested in them: each is
/// walked as a block of its own). Iterative: operator chains are as long as the
/// statement. Covers the usual places; a query elsewhere is not walked, and then
/// refused if it reads a sharded table.
pub(crate) fn subqueries<'a>(expr: &'a Expr, found: &mut Vec<&'a Query>) {
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Subquery(query)
            | Expr::Exists {
                subquery: query, ..
            } => found.push(query),
            Expr::InSubquery { expr, subquery, .. } => {
                pending.push(expr);
                found.push(subquery);
            }
            Expr::BinaryOp { left, right, .. }
            | Expr::AnyOp { left, right, .. }
            | Expr::AllOp { left, right, .. }
            | Expr::IsDistinctFrom(left, right)
            | Expr::IsNotDistinctFrom(left, right)
            | Expr::Like {
                expr: left,
                pattern: right,
                ..
            } => {
                pending.push(left);
                pending.push(right);
            }
            Expr::Nested(inner)
            | Expr::UnaryOp { expr: inner, .. }
            | Expr::Cast { expr: inner, .. }
            | Expr::Collate { expr: inner, .. }
            | Expr::IsNull(inner)
            | Expr::IsNotNull(inner)
            | Expr::IsTrue(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsFalse(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner) => pending.push(inner),
            Expr::Between {
                expr, low, high, ..
            } => pending.extend([&**expr, &**low, &**high]),
            Expr::InList { expr, list, .. } => {
                pending.push(expr);
                pending.extend(list);
            }
            Expr::Tuple(list) => pending.extend(list),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                pending.extend(operand.as_deref());
                pending.extend(else_result.as_deref());
                for when in conditions {
                    pending.push(&when.condition);
                    pending.push(&when.result);
                }
            }
            Expr::Function(function) => match &function.args {
                FunctionArguments::Subquery(query) => found.push(query),
                FunctionArguments::List(list) => {
                    for arg in &list.args {
                        let (FunctionArg::Unnamed(arg)
                        | FunctionArg::Named { arg, .. }
                        | FunctionArg::ExprNamed { arg, .. }) = arg;
                        if let FunctionArgExpr::Expr(expr) = arg {
                            pending.push(expr);
                        }
                    }
                }
                FunctionArguments::None => {}
            },
            _ => {}
        }
    }
}
