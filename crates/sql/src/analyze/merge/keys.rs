//! GROUP BY and ORDER BY entries, resolved to columns of the shard text.
//!
//! MariaDB resolves a bare name differently in the two clauses: ORDER BY looks at
//! select-list aliases first, GROUP BY at the tables' columns first. shardgate cannot
//! see the tables' columns, so a GROUP BY name that is also an alias of another
//! expression is refused rather than guessed.

use sqlparser::ast::{Expr, OrderByExpr, OrderBySort, Value};

use super::aggregate::{self, Facts};
use super::{Builder, copyable, items, refused};
use crate::error::SqlError;
use crate::scatter::{AggregateKind, GroupKey, SortKey};

impl<'a> Builder<'a> {
    /// The group keys of `exprs` (empty without GROUP BY); in a grouped query, refuses
    /// select items that are neither aggregates, group keys nor constants.
    pub(super) fn group_keys(
        &mut self,
        exprs: &'a [Expr],
        grouped: bool,
    ) -> Result<Vec<GroupKey>, SqlError> {
        let mut keys = Vec::with_capacity(exprs.len());
        for (entry, expr) in exprs.iter().enumerate() {
            let column = self.group_column(entry, expr, exprs.len())?;
            self.group_exprs.push((expr, column));
            keys.push(GroupKey {
                column,
                weight_column: Some(self.weight(column)?),
            });
        }
        if grouped {
            for (column, item) in self.items.iter().enumerate() {
                let keyed = keys.iter().any(|key| key.column == column);
                let constant = matches!(item.expr, Some(Expr::Value(_)));
                if item.call.is_none() && !keyed && !constant {
                    let shown = item.expr.map(ToString::to_string).unwrap_or_default();
                    return Err(SqlError::unsupported(format!(
                        "select item `{shown}` is neither an aggregate nor a GROUP BY key: on several shards its value would come from any shard's rows"
                    )));
                }
            }
        }
        Ok(keys)
    }

    /// The column GROUP BY entry `entry` (of `count`) groups by.
    fn group_column(&mut self, entry: usize, expr: &Expr, count: usize) -> Result<usize, SqlError> {
        let column = match self.position(expr, "GROUP BY")? {
            Some(column) => Some(column),
            None => self.group_name(expr)?,
        };
        let column = column.or_else(|| self.items.iter().position(|item| item.expr == Some(expr)));
        if let Some(column) = column {
            if self
                .items
                .get(column)
                .is_some_and(|item| item.call.is_some())
            {
                return Err(SqlError::unsupported(format!(
                    "GROUP BY `{expr}` groups by an aggregate"
                )));
            }
            return Ok(column);
        }
        let sql = self.sql;
        let located = self.located()?;
        if located.layout.group_by.len() != count {
            return Err(items::unlocated("GROUP BY entry"));
        }
        let text = located
            .entry(
                sql,
                located.layout.group_by.get(entry),
                expr,
                "GROUP BY entry",
            )?
            .to_owned();
        self.hidden_expr(text, expr, "GROUP BY")
    }

    /// A GROUP BY name that is a select-list alias: only when the alias names the
    /// column of the same name (`k AS k`), since MariaDB would prefer a table column.
    fn group_name(&self, expr: &Expr) -> Result<Option<usize>, SqlError> {
        let Expr::Identifier(name) = expr else {
            return Ok(None);
        };
        let mut aliased = self.aliased(&name.value).peekable();
        if aliased.peek().is_none() {
            return Ok(None);
        }
        let same_column = |column: &usize| matches!(self.items.get(*column).and_then(|item| item.expr), Some(Expr::Identifier(own)) if own.value.eq_ignore_ascii_case(&name.value));
        let columns: Vec<usize> = aliased.collect();
        match columns.first() {
            Some(&first) if columns.iter().all(same_column) => Ok(Some(first)),
            _ => Err(SqlError::unsupported(format!(
                "GROUP BY `{name}` names a select-list alias; MariaDB would group by a table column of that name if there is one, which shardgate cannot see on several shards: group by the expression or its position"
            ))),
        }
    }

    /// The sort keys of ORDER BY `entries`.
    pub(super) fn sort_keys(
        &mut self,
        entries: &'a [OrderByExpr],
        grouped: bool,
        distinct: bool,
    ) -> Result<Vec<SortKey>, SqlError> {
        let mut keys = Vec::with_capacity(entries.len());
        for (entry, order) in entries.iter().enumerate() {
            let descending = match &order.options.sort {
                None | Some(OrderBySort::Asc) => false,
                Some(OrderBySort::Desc) => true,
                Some(OrderBySort::Using(_)) => return Err(refused("ORDER BY ... USING")),
            };
            let column =
                self.sort_column(entry, &order.expr, entries.len(), grouped || distinct)?;
            let call = self.items.get(column).and_then(|item| item.call);
            let weight_column = match call.map(|call| call.kind) {
                None | Some(AggregateKind::Min | AggregateKind::Max) => Some(self.weight(column)?),
                Some(_) => None,
            };
            keys.push(SortKey {
                column,
                descending,
                weight_column,
            });
        }
        Ok(keys)
    }

    /// The column ORDER BY entry `entry` (of `count`) sorts by.
    fn sort_column(
        &mut self,
        entry: usize,
        expr: &Expr,
        count: usize,
        selected_only: bool,
    ) -> Result<usize, SqlError> {
        if let Some(column) = self.position(expr, "ORDER BY")? {
            return Ok(column);
        }
        if let Expr::Identifier(name) = expr {
            let columns: Vec<usize> = self.aliased(&name.value).collect();
            if let Some(&first) = columns.first() {
                let first_expr = self.items.get(first).and_then(|item| item.expr);
                let same = columns
                    .iter()
                    .all(|&column| self.items.get(column).and_then(|item| item.expr) == first_expr);
                if !same {
                    return Err(SqlError::unsupported(format!(
                        "ORDER BY `{name}` is ambiguous: several select items have that alias"
                    )));
                }
                return Ok(first);
            }
        }
        let selected = self.items.iter().position(|item| item.expr == Some(expr));
        let grouped = self
            .group_exprs
            .iter()
            .find(|(grouped, _)| *grouped == expr)
            .map(|(_, column)| *column);
        if let Some(column) = selected.or(grouped) {
            return Ok(column);
        }
        if selected_only {
            return Err(SqlError::unsupported(format!(
                "ORDER BY `{expr}`, which is not in the select list of a grouped or DISTINCT query on several shards: select it, or order by a selected column"
            )));
        }
        let sql = self.sql;
        let located = self.located()?;
        if located.layout.order_by.len() != count {
            return Err(items::unlocated("ORDER BY entry"));
        }
        let text = located
            .entry(
                sql,
                located.layout.order_by.get(entry),
                expr,
                "ORDER BY entry",
            )?
            .to_owned();
        self.hidden_expr(text, expr, "ORDER BY")
    }

    /// The item a position (`ORDER BY 2`) names, if `expr` is a position.
    fn position(&self, expr: &Expr, clause: &str) -> Result<Option<usize>, SqlError> {
        let Expr::Value(value) = expr else {
            return Ok(None);
        };
        let Value::Number(digits, false) = &value.value else {
            return Ok(None);
        };
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Ok(None);
        }
        match digits.parse::<usize>() {
            Ok(position) if (1..=self.items.len()).contains(&position) => Ok(Some(position - 1)),
            _ => Err(SqlError::unsupported(format!(
                "{clause} position {digits} is not a column of the select list"
            ))),
        }
    }

    /// The items whose alias is `name` (aliases ignore case).
    pub(super) fn aliased<'s>(&'s self, name: &'s str) -> impl Iterator<Item = usize> + 's {
        self.items
            .iter()
            .enumerate()
            .filter_map(move |(column, item)| {
                item.alias
                    .filter(|alias| alias.value.eq_ignore_ascii_case(name))
                    .map(|_| column)
            })
    }

    /// A hidden column computing `expr` (written `text`) for `clause`.
    fn hidden_expr(&mut self, text: String, expr: &Expr, clause: &str) -> Result<usize, SqlError> {
        let facts: Facts = aggregate::facts(expr);
        copyable(&facts, &text)?;
        if facts.windows {
            return Err(refused("a window function"));
        }
        if facts.aggregates > 0 {
            return Err(SqlError::unsupported(format!(
                "{clause} `{expr}` uses an aggregate that is not in the select list; select it and {clause} its alias"
            )));
        }
        if let Some(alias) = facts
            .identifiers
            .iter()
            .find(|name| self.aliased(name).next().is_some())
        {
            return Err(SqlError::unsupported(format!(
                "{clause} `{expr}` uses select-list alias `{alias}` inside an expression, which cannot be copied into a helper column on several shards: write the aliased expression instead"
            )));
        }
        Ok(self.hide(text))
    }
}
