//! The [`MergePlan`] of a SELECT that runs on several shards.
//!
//! Runs on every such statement (these plans are never cached: `LIMIT 10` and
//! `ORDER BY 2` are literals, and the shard text copies the statement's own literals).
//! The rules follow Vitess vtgate's for a scatter over one keyspace; every shape outside
//! them is refused with the reason, because a merged answer that differs from what one
//! MariaDB would return is worse than an error:
//!
//! - select items are expressions; `*`/`t.*` only without ORDER BY, GROUP BY,
//!   aggregates and DISTINCT (the merger would need column positions);
//! - aggregates are `COUNT(*)`, `COUNT(x)`, `SUM(x)`, `MIN(x)`, `MAX(x)`, `AVG(x)` as
//!   whole select items; `AVG(x)` runs as `SUM(x)` plus a hidden `COUNT(x)`;
//! - in a grouped query every other item is a GROUP BY key or a constant;
//! - ORDER BY names a select item (alias, position, same expression) or, in a query
//!   without grouping or DISTINCT, an expression added as a hidden column;
//! - LIMIT takes literal integers; the shards run `LIMIT offset + count` when that
//!   keeps every row the merged answer needs, and no LIMIT otherwise;
//! - HAVING runs in the merger, not on the shards (see [`having`]): comparisons of
//!   select items, GROUP BY columns and aggregates with numbers or NULL, `IS [NOT]
//!   NULL`, AND, OR, NOT; an aggregate only in HAVING becomes a hidden column;
//! - no ROLLUP, window functions, SQL_CALC_FOUND_ROWS, INTO, DISTINCT with grouping,
//!   or parenthesised queries. Locking clauses pass through.
//!
//! Pieces copied into hidden columns come from the original text (see
//! [`Tokens`](crate::tokens::Tokens)); one holding a `?` is refused, so the shard text
//! has the statement's placeholders in the same order.

mod aggregate;
mod having;
mod items;
mod keys;
mod layout;
mod limit;
mod shard_text;
#[cfg(test)]
mod tests;

use std::ops::Range;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, OrderByExpr, OrderByKind, Query, Select, SelectItem, SetExpr,
    Value,
};

use crate::error::SqlError;
use crate::position;
use crate::scatter::{Aggregate, AggregateKind, GroupKey, MergePlan, SortKey};

use aggregate::Facts;
use items::{Item, Located};

/// How deeply a select item, GROUP BY or ORDER BY expression may nest. The plan
/// compares such expressions, and parses pieces of them again, with recursion one
/// level per nesting; this bound keeps that far from what a 2 MiB stack holds (the
/// statement itself may nest up to the lexer's bound).
const MAX_DEPTH: usize = 128;

/// The merge plan of `query` (the statement `sql`) on several shards.
pub(crate) fn plan(sql: &str, query: &Query) -> Result<MergePlan, SqlError> {
    let select = scatter_select(query)?;
    refuse_deep(select, query)?;
    let items = items::read(&select.projection)?;
    let group_exprs = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.as_slice(),
        GroupByExpr::Expressions(..) => return Err(refused("GROUP BY WITH ROLLUP")),
        GroupByExpr::All(_) => return Err(refused("GROUP BY ALL")),
    };
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(Distinct::On(_)) => return Err(refused("DISTINCT ON")),
    };
    let order = order_entries(query)?;
    if select.having.is_some() && items.iter().any(|item| item.expr.is_none()) {
        // HAVING names columns of the select list, which `*` does not spell out.
        return Err(refused("HAVING"));
    }
    // An aggregate in HAVING alone makes the query aggregated, as in MariaDB.
    let aggregated = items.iter().any(|item| item.call.is_some())
        || select
            .having
            .as_ref()
            .is_some_and(|having| aggregate::facts(having).aggregates > 0);
    let grouped = aggregated || !group_exprs.is_empty();
    if items.iter().any(|item| item.expr.is_none())
        && (grouped || distinct || order.is_some_and(|order| !order.is_empty()))
    {
        return Err(SqlError::unsupported(
            "`*` in the select list of a query with ORDER BY, GROUP BY, aggregates or DISTINCT on several shards: list the columns",
        ));
    }
    if distinct && grouped {
        return Err(refused("SELECT DISTINCT with GROUP BY or aggregates"));
    }
    let mut builder = Builder {
        sql,
        select,
        items,
        located: None,
        hidden: Vec::new(),
        weights: Vec::new(),
        group_exprs: Vec::new(),
        edits: Vec::new(),
    };
    let mut aggregates = builder.aggregates()?;
    let group_by = if distinct {
        builder.distinct_keys()?
    } else {
        builder.group_keys(group_exprs, grouped)?
    };
    let having = match &select.having {
        Some(having) => Some(builder.having(having, &mut aggregates)?),
        None => None,
    };
    let order_by = match order {
        Some(entries) => builder.sort_keys(entries, grouped, distinct)?,
        // MariaDB 10.11 sorts grouped rows by their group keys when there is no ORDER BY.
        None if !distinct => group_by
            .iter()
            .map(|key| SortKey {
                column: key.column,
                descending: false,
                weight_column: key.weight_column,
            })
            .collect(),
        None => Vec::new(),
    };
    let (offset, limit) = builder.limit(query, distinct, &order_by, &group_by)?;
    let visible_columns = if builder.items.iter().any(|item| item.expr.is_none()) {
        usize::MAX
    } else {
        builder.items.len()
    };
    let shard_sql = builder.shard_sql()?;
    Ok(MergePlan {
        shard_sql,
        visible_columns,
        order_by,
        group_by,
        aggregates,
        having,
        distinct,
        offset,
        limit,
    })
}

/// The main SELECT of a query that can be scattered; refuses clauses the merger cannot
/// reproduce.
fn scatter_select(query: &Query) -> Result<&Select, SqlError> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(refused("a parenthesised query"));
    };
    let foreign = query.fetch.is_some()
        || query.for_clause.is_some()
        || query.settings.is_some()
        || query.format_clause.is_some()
        || !query.pipe_operators.is_empty()
        || select.top.is_some()
        || select.exclude.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.connect_by.is_empty()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || select.qualify.is_some()
        || select.value_table_mode.is_some();
    if foreign {
        return Err(refused("a clause MariaDB does not have"));
    }
    if !select.named_window.is_empty() {
        return Err(refused("a WINDOW clause"));
    }
    if select.into.is_some() {
        return Err(refused("SELECT ... INTO"));
    }
    if select
        .select_modifiers
        .as_ref()
        .is_some_and(|modifiers| modifiers.sql_calc_found_rows)
    {
        return Err(refused("SQL_CALC_FOUND_ROWS"));
    }
    Ok(select)
}

/// Refuses select items, GROUP BY or ORDER BY entries and HAVING nested deeper than
/// [`MAX_DEPTH`].
fn refuse_deep(select: &Select, query: &Query) -> Result<(), SqlError> {
    let items = select.projection.iter().filter_map(|item| match item {
        SelectItem::UnnamedExpr(expr)
        | SelectItem::ExprWithAlias { expr, .. }
        | SelectItem::ExprWithAliases { expr, .. } => Some(expr),
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => None,
    });
    let grouped = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.as_slice(),
        GroupByExpr::All(_) => &[],
    };
    let ordered = query.order_by.iter().flat_map(|order| match &order.kind {
        OrderByKind::Expressions(entries) => entries.as_slice(),
        OrderByKind::All(_) => &[],
    });
    let mut exprs = items
        .chain(grouped)
        .chain(ordered.map(|entry| &entry.expr))
        .chain(&select.having);
    if exprs.any(|expr| aggregate::facts(expr).depth > MAX_DEPTH) {
        return Err(SqlError::unsupported(format!(
            "a select item, GROUP BY, ORDER BY or HAVING expression nested more than {MAX_DEPTH} levels deep in a query on several shards"
        )));
    }
    Ok(())
}

/// The ORDER BY entries; `Some(&[])` for `ORDER BY NULL`, which asks for no order.
fn order_entries(query: &Query) -> Result<Option<&[OrderByExpr]>, SqlError> {
    let Some(order_by) = &query.order_by else {
        return Ok(None);
    };
    let OrderByKind::Expressions(entries) = &order_by.kind else {
        return Err(refused("ORDER BY ALL"));
    };
    if order_by.interpolate.is_some()
        || entries
            .iter()
            .any(|entry| entry.with_fill.is_some() || entry.options.nulls_first.is_some())
    {
        return Err(refused("a clause MariaDB does not have"));
    }
    let null = |entry: &OrderByExpr| matches!(&entry.expr, Expr::Value(value) if value.value == Value::Null);
    match entries.as_slice() {
        [only] if null(only) => Ok(Some(&[])),
        entries => Ok(Some(entries)),
    }
}

/// The refusal of `what` in a query on several shards.
fn refused(what: &str) -> SqlError {
    SqlError::unsupported(format!(
        "{what} in a query on several shards (the statement names no tenant, or several)"
    ))
}

/// A plan in the making: the rewrite of the statement and its hidden columns.
struct Builder<'a> {
    /// The statement.
    sql: &'a str,
    /// Its main SELECT.
    select: &'a Select,
    /// The select items.
    items: Vec<Item<'a>>,
    /// Where the pieces are in the text, found the first time a rewrite needs it.
    located: Option<Located>,
    /// The expression of each hidden column, as SQL text.
    hidden: Vec<String>,
    /// Column → the column holding its weight string.
    weights: Vec<(usize, usize)>,
    /// Each GROUP BY expression and the column holding it.
    group_exprs: Vec<(&'a Expr, usize)>,
    /// Replacements of byte ranges of the text, in no particular order.
    edits: Vec<(Range<usize>, String)>,
}

impl<'a> Builder<'a> {
    /// The pieces' locations in the text.
    fn located(&mut self) -> Result<&Located, SqlError> {
        if self.located.is_none() {
            let select_at = position::offset_of(self.sql, self.select.select_token.0.span.start)
                .ok_or_else(|| items::unlocated("SELECT keyword"))?;
            self.located = Some(Located::new(self.sql, select_at, &self.select.projection)?);
        }
        self.located
            .as_ref()
            .ok_or_else(|| items::unlocated("select item"))
    }

    /// Adds a hidden column computing `text`; returns its index.
    fn hide(&mut self, text: String) -> usize {
        self.hidden.push(text);
        self.items.len() + self.hidden.len() - 1
    }

    /// The text of column `column`'s expression, to copy into a hidden column.
    fn column_text(&mut self, column: usize) -> Result<String, SqlError> {
        let Some(item) = self.items.get(column) else {
            return column
                .checked_sub(self.items.len())
                .and_then(|hidden| self.hidden.get(hidden))
                .cloned()
                .ok_or_else(|| items::unlocated("column"));
        };
        let (expr, aliased) = match item.expr {
            Some(expr) => (expr, item.alias.is_some()),
            None => return Err(items::unlocated("column")),
        };
        copyable(&aggregate::facts(expr), expr)?;
        let sql = self.sql;
        Ok(self
            .located()?
            .item_expr(sql, column, expr, aliased)?
            .to_owned())
    }

    /// The hidden `WEIGHT_STRING` column of `column`, added once.
    fn weight(&mut self, column: usize) -> Result<usize, SqlError> {
        if let Some(&(_, weight)) = self.weights.iter().find(|(of, _)| *of == column) {
            return Ok(weight);
        }
        let text = self.column_text(column)?;
        let weight = self.hide(format!("WEIGHT_STRING({text})"));
        self.weights.push((column, weight));
        Ok(weight)
    }

    /// The aggregates of the select list, rewriting `AVG`.
    fn aggregates(&mut self) -> Result<Vec<Aggregate>, SqlError> {
        let mut aggregates = Vec::new();
        for column in 0..self.items.len() {
            let Some(call) = self.items.get(column).and_then(|item| item.call) else {
                continue;
            };
            let (kind, weight_column) = match call.kind {
                AggregateKind::Min | AggregateKind::Max => (call.kind, Some(self.weight(column)?)),
                AggregateKind::Avg { .. } => (self.rewrite_avg(column, call)?, None),
                kind => (kind, None),
            };
            aggregates.push(Aggregate {
                column,
                kind,
                weight_column,
            });
        }
        Ok(aggregates)
    }

    /// `AVG(x)` becomes `SUM(x)` named as the client wrote it, plus hidden `COUNT(x)`.
    fn rewrite_avg(
        &mut self,
        column: usize,
        call: aggregate::Call<'a>,
    ) -> Result<AggregateKind, SqlError> {
        let (Some(item), Some(argument)) = (self.items.get(column), call.argument) else {
            return Err(items::unlocated("AVG argument"));
        };
        let (Some(expr), alias) = (item.expr, item.alias.is_some()) else {
            return Err(items::unlocated("AVG argument"));
        };
        if call.nested {
            return Err(refused("AVG inside parentheses"));
        }
        copyable(&aggregate::facts(argument), argument)?;
        let sql = self.sql;
        let located = self.located()?;
        let (expr_range, argument_text) =
            located.call_argument(sql, column, expr, alias, argument)?;
        let name = located
            .items
            .get(column)
            .and_then(|range| sql.get(range.clone()));
        let mut replacement = format!("SUM({argument_text})");
        if !alias {
            let name = name.ok_or_else(|| items::unlocated("select item"))?;
            replacement.push_str(&format!(" AS `{}`", name.replace('`', "``")));
        }
        let argument_text = argument_text.to_owned();
        self.edits.push((expr_range, replacement));
        let count_column = self.hide(format!("COUNT({argument_text})"));
        Ok(AggregateKind::Avg { count_column })
    }

    /// DISTINCT groups by every visible column.
    fn distinct_keys(&mut self) -> Result<Vec<GroupKey>, SqlError> {
        (0..self.items.len())
            .map(|column| {
                Ok(GroupKey {
                    column,
                    weight_column: Some(self.weight(column)?),
                })
            })
            .collect()
    }
}

/// Refuses to copy an expression holding a `?`: the copy would add a placeholder.
fn copyable(facts: &Facts, text: &dyn std::fmt::Display) -> Result<(), SqlError> {
    if facts.placeholders {
        return Err(SqlError::unsupported(format!(
            "`{text}` would have to be copied into a helper column for several shards, which would repeat its ? placeholder"
        )));
    }
    Ok(())
}
