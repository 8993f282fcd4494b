//! Which select items are aggregates the merger can combine, and what else an
//! expression holds that matters when it runs on several shards.
//!
//! Only the main query's own aggregates count: a subquery's `MAX(x)` is a scalar per
//! row, so the walks here do not look inside nested queries (except for `?`, which is
//! a placeholder wherever it is).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart, Query, Value,
    ValueWithSpan, Visit, Visitor,
};

use crate::error::SqlError;
use crate::scatter::AggregateKind;

/// MariaDB's aggregate functions (that are not only window functions).
const AGGREGATES: [&str; 18] = [
    "AVG",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "COUNT",
    "GROUP_CONCAT",
    "JSON_ARRAYAGG",
    "JSON_OBJECTAGG",
    "MAX",
    "MIN",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "SUM",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
];

/// A select item that is one aggregate the merger combines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'a> {
    /// How partials combine (`Avg`'s count column is not known yet).
    pub(super) kind: AggregateKind,
    /// The argument; `None` for `COUNT(*)`.
    pub(super) argument: Option<&'a Expr>,
    /// Written inside parentheses: `(AVG(x))`.
    pub(super) nested: bool,
}

/// What an expression holds, outside nested queries.
#[derive(Debug, Default)]
pub(super) struct Facts {
    /// Calls of aggregate functions.
    pub(super) aggregates: usize,
    /// Calls with an OVER clause.
    pub(super) windows: bool,
    /// A `?` placeholder (anywhere, nested queries included).
    pub(super) placeholders: bool,
    /// Unqualified identifiers, as written.
    pub(super) identifiers: Vec<String>,
    /// How deeply expressions nest (nested queries included).
    pub(super) depth: usize,
}

/// What `expr` holds.
pub(super) fn facts(expr: &Expr) -> Facts {
    let mut walk = Walk {
        depth: 0,
        nesting: 0,
        facts: Facts::default(),
    };
    let _ = expr.visit(&mut walk);
    walk.facts
}

/// The aggregate `expr` is, if it is one; refuses aggregates the merger cannot combine
/// and aggregates inside larger expressions.
pub(super) fn classify(expr: &Expr) -> Result<Option<Call<'_>>, SqlError> {
    let mut inner = expr;
    while let Expr::Nested(nested) = inner {
        inner = nested;
    }
    let call = match inner {
        Expr::Function(function) => aggregate_name(function).map(|name| (function, name)),
        _ => None,
    };
    let Some((function, name)) = call else {
        let facts = facts(expr);
        if facts.windows {
            return Err(window(expr));
        }
        if facts.aggregates > 0 {
            return Err(SqlError::unsupported(format!(
                "aggregate inside the expression `{expr}` on several shards; select the aggregate alone"
            )));
        }
        return Ok(None);
    };
    if function.over.is_some() {
        return Err(window(expr));
    }
    let kind = match name {
        "COUNT" => AggregateKind::Count,
        "SUM" => AggregateKind::Sum,
        "MIN" => AggregateKind::Min,
        "MAX" => AggregateKind::Max,
        "AVG" => AggregateKind::Avg { count_column: 0 },
        other => {
            return Err(SqlError::unsupported(format!(
                "{other}() on several shards: partial results cannot be combined"
            )));
        }
    };
    let argument = plain_argument(function).ok_or_else(|| {
        SqlError::unsupported(format!(
            "`{expr}` on several shards: only {name}(x){} can be combined",
            if name == "COUNT" { " and COUNT(*)" } else { "" }
        ))
    })?;
    if argument.is_none() && kind != AggregateKind::Count {
        return Err(SqlError::unsupported(format!("`{expr}` is not valid")));
    }
    if let Some(argument) = argument {
        let inside = facts(argument);
        if inside.aggregates > 0 || inside.windows {
            return Err(SqlError::unsupported(format!(
                "nested aggregate or window function in `{expr}`"
            )));
        }
    }
    Ok(Some(Call {
        kind,
        argument,
        nested: !std::ptr::eq(inner, expr),
    }))
}

/// The one plain argument of an aggregate call: `Some(x)` for `F(x)` or `F(ALL x)`,
/// `None` for `F(*)`; refuses DISTINCT, several arguments and clauses such as ORDER BY.
#[allow(clippy::option_option)]
fn plain_argument(function: &Function) -> Option<Option<&Expr>> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    let plain = !distinct
        && list.clauses.is_empty()
        && function.filter.is_none()
        && function.within_group.is_empty()
        && function.null_treatment.is_none()
        && matches!(function.parameters, FunctionArguments::None);
    match (plain, list.args.as_slice()) {
        (true, [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))]) => Some(Some(argument)),
        (true, [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]) => Some(None),
        _ => None,
    }
}

/// The upper-case name of `function` when it is one of MariaDB's aggregates. A quoted
/// name (`` `SUM`(x) ``) calls a stored function of that name, not the aggregate.
pub(super) fn aggregate_name(function: &Function) -> Option<&'static str> {
    let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice() else {
        return None;
    };
    if name.quote_style.is_some() {
        return None;
    }
    AGGREGATES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&name.value))
        .copied()
}

/// The refusal of a window function.
fn window(expr: &Expr) -> SqlError {
    SqlError::unsupported(format!(
        "window function in `{expr}` on several shards: each shard would see only its own rows"
    ))
}

/// The visitor behind [`facts`].
struct Walk {
    /// How many queries deep the walk is.
    depth: usize,
    /// How many expressions deep the walk is.
    nesting: usize,
    /// What was found.
    facts: Facts,
}

impl Visitor for Walk {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.nesting = self.nesting.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        self.nesting += 1;
        self.facts.depth = self.facts.depth.max(self.nesting);
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Function(function) => {
                self.facts.windows |= function.over.is_some();
                if aggregate_name(function).is_some() {
                    self.facts.aggregates += 1;
                }
            }
            Expr::Identifier(ident) => self.facts.identifiers.push(ident.value.clone()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
        self.facts.placeholders |= matches!(value.value, Value::Placeholder(_));
        ControlFlow::Continue(())
    }
}
