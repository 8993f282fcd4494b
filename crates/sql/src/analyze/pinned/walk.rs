//! The walk behind [`super`]: every query block of a statement, the sharded tables in
//! their FROM lists, and the tenant facts their conditions state.
//!
//! Hand-written on purpose, and partial: it follows FROM lists, nested joins, derived
//! tables, CTEs, set operations, and subqueries in WHERE, ON, the select list and
//! HAVING. A sharded table anywhere else (GROUP BY, ORDER BY, `TABLE t`, VALUES, a
//! table function) is simply not found, and the caller refuses the statement because
//! the walk found fewer reads than the complete visitor of `tables` did. So
//! the walk can only ever miss a shape, never let one through unchecked.
//!
//! Occurrences are numbered in walk order, and a block's FROM list is walked before
//! any of its subqueries, so each join operand is a contiguous range of occurrence
//! numbers: guards are ranges, and checking one is O(1) however long the join.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, JoinConstraint, JoinOperator, ObjectNamePart, Query, SelectItem,
    SetExpr, TableFactor, TableWithJoins,
};

use super::nested::subqueries;
use crate::Schema;
use crate::analysis::TableName;
use crate::analyze::tables::table_name;
use crate::analyze::tenant::{KeyExpr, chain, literal, unnest};
use crate::error::SqlError;

/// One read of a sharded table: a FROM item naming it.
#[derive(Debug)]
pub(super) struct Occurrence {
    /// The table as written.
    pub(super) table: TableName,
    /// The name the statement knows it by (its alias, or its name), for messages.
    pub(super) shown: Option<String>,
    /// Its sharding column.
    pub(super) column: Arc<str>,
    /// Its vindex identity, from the schema.
    pub(super) vindex: Option<Arc<str>>,
    /// A condition that would have limited it sits in the ON clause of an outer join
    /// that preserves it (kept to say so when it is refused).
    pub(super) preserved: bool,
    /// An outer join of its block may NULL-extend it: its columns may be NULL in a
    /// result row even when it is pinned. (What an INSERT ... SELECT may take its
    /// tenant from depends on it.)
    pub(super) nullable: bool,
}

/// What a condition states about the tenant of an occurrence.
#[derive(Debug)]
pub(super) enum Fact<'a> {
    /// Every row of `occurrence` that matters has this tenant.
    Key {
        /// The occurrence limited.
        occurrence: usize,
        /// The literal or placeholder naming the tenant.
        key: KeyExpr<'a>,
    },
    /// Every row of `occurrence` that matters has the tenant of a row of `source`.
    Follows {
        /// The occurrence limited.
        occurrence: usize,
        /// The occurrence it is equated with.
        source: usize,
    },
}

/// A name a block's FROM list makes visible.
#[derive(Debug, Clone, Copy)]
struct Name<'a> {
    /// As written (alias, or the table's last name part).
    shown: &'a str,
    /// The occurrence it names, when it is a sharded table.
    occurrence: Option<usize>,
    /// Written without an alias, with this schema qualifier (for `schema.table.col`).
    qualifier: Option<Option<&'a str>>,
}

/// One query block: a SELECT (or the target of an UPDATE or DELETE).
#[derive(Debug, Default)]
struct Block<'a> {
    /// The block whose names this one also sees (correlated subqueries). For derived
    /// tables and CTEs this over-approximates what MySQL lets them see, which only
    /// makes a name harder to resolve, never resolved to the wrong table.
    parent: Option<usize>,
    /// Visible names by lower-cased name: qualifiers are looked up once per condition.
    names: HashMap<String, Vec<Name<'a>>>,
    /// The occurrences of its own FROM list (those of its subqueries come after).
    from: Range<usize>,
}

/// A condition and the rows it limits.
#[derive(Debug)]
struct Filter<'a> {
    /// The condition (a WHERE clause or a join's ON).
    expr: &'a Expr,
    /// The block it belongs to.
    block: usize,
    /// The occurrences an unqualified column may name: the join's operands, or the
    /// whole FROM list for WHERE. MySQL looks there first, so a match there is the
    /// column MySQL uses (or the statement is ambiguous and fails everywhere).
    operands: Range<usize>,
    /// The occurrences whose rows must satisfy it to matter: all of them for WHERE and
    /// inner joins, the nullable side for an outer join, none for other kinds.
    guarded: Range<usize>,
}

/// What the walk found.
#[derive(Debug, Default)]
pub(super) struct Walk<'a> {
    /// Every read of a sharded table, in walk order.
    pub(super) occurrences: Vec<Occurrence>,
    /// What the conditions state.
    pub(super) facts: Vec<Fact<'a>>,
    /// The query blocks.
    blocks: Vec<Block<'a>>,
}

/// Which side of a join its ON clause limits.
#[derive(Debug, Clone, Copy)]
enum Guard {
    /// Inner join: rows of either side that fail the condition are in no result row.
    Both,
    /// LEFT JOIN: the right side's rows that fail it are never joined; the left side's
    /// rows are kept regardless.
    Right,
    /// RIGHT JOIN, the mirror image.
    Left,
    /// Anything else (FULL, SEMI, ANTI, APPLY, ...): nothing is assumed.
    Neither,
}

impl<'a> Walk<'a> {
    /// Walks a query whose enclosing block is `parent`.
    pub(super) fn query(
        &mut self,
        query: &'a Query,
        parent: Option<usize>,
        schema: &dyn Schema,
    ) -> Result<(), SqlError> {
        let mut bodies = vec![query.body.as_ref()];
        while let Some(body) = bodies.pop() {
            match body {
                SetExpr::Select(select) => {
                    let mut nested = Vec::new();
                    for item in &select.projection {
                        if let SelectItem::UnnamedExpr(expr)
                        | SelectItem::ExprWithAlias { expr, .. } = item
                        {
                            subqueries(expr, &mut nested);
                        }
                    }
                    if let Some(having) = &select.having {
                        subqueries(having, &mut nested);
                    }
                    let from = Clause {
                        from: &select.from,
                        selection: select.selection.as_ref(),
                        nested,
                    };
                    self.block(from, parent, schema)?;
                }
                SetExpr::Query(inner) => self.query(inner, parent, schema)?,
                SetExpr::SetOperation { left, right, .. } => {
                    bodies.push(right);
                    bodies.push(left);
                }
                // VALUES, TABLE t, ...: whatever they read is not counted, so refused.
                _ => {}
            }
        }
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.query(&cte.query, parent, schema)?;
            }
        }
        Ok(())
    }

    /// Walks one block: its FROM list, then its conditions, then its subqueries.
    pub(super) fn block(
        &mut self,
        clause: Clause<'a>,
        parent: Option<usize>,
        schema: &dyn Schema,
    ) -> Result<(), SqlError> {
        let block = self.blocks.len();
        self.blocks.push(Block {
            parent,
            names: HashMap::new(),
            from: 0..0,
        });
        let mut filters = Vec::new();
        let mut nested = clause.nested;
        let start = self.occurrences.len();
        for item in clause.from {
            self.join_tree(item, block, &mut filters, &mut nested, schema)?;
        }
        let all = start..self.occurrences.len();
        if let Some(here) = self.blocks.get_mut(block) {
            here.from = all.clone();
        }
        if let Some(selection) = clause.selection {
            filters.push(Filter {
                expr: selection,
                block,
                operands: all.clone(),
                guarded: all,
            });
        }
        for filter in &filters {
            self.conditions(filter);
            subqueries(filter.expr, &mut nested);
        }
        for query in nested {
            self.query(query, Some(block), schema)?;
        }
        Ok(())
    }

    /// Walks `a JOIN b ON ... JOIN c ...` (left-deep: each join's left operand is
    /// everything before it).
    fn join_tree(
        &mut self,
        item: &'a TableWithJoins,
        block: usize,
        filters: &mut Vec<Filter<'a>>,
        nested: &mut Vec<&'a Query>,
        schema: &dyn Schema,
    ) -> Result<(), SqlError> {
        let start = self.occurrences.len();
        self.factor(&item.relation, block, filters, nested, schema)?;
        for join in &item.joins {
            let middle = self.occurrences.len();
            self.factor(&join.relation, block, filters, nested, schema)?;
            let end = self.occurrences.len();
            let (constraint, guard) = join_kind(&join.join_operator);
            // What the join may NULL-extend: nothing for an inner join, the right side
            // of a LEFT JOIN, the left of a RIGHT JOIN, and, not knowing, both sides of
            // any other.
            let extended = match guard {
                Guard::Both => end..end,
                Guard::Right => middle..end,
                Guard::Left => start..middle,
                Guard::Neither => start..end,
            };
            for occurrence in self.occurrences.get_mut(extended).into_iter().flatten() {
                occurrence.nullable = true;
            }
            if let Some(JoinConstraint::On(expr)) = constraint {
                let guarded = match guard {
                    Guard::Both => start..end,
                    Guard::Right => middle..end,
                    Guard::Left => start..middle,
                    Guard::Neither => end..end,
                };
                filters.push(Filter {
                    expr,
                    block,
                    operands: start..end,
                    guarded,
                });
            }
        }
        Ok(())
    }

    /// Walks one FROM item.
    fn factor(
        &mut self,
        factor: &'a TableFactor,
        block: usize,
        filters: &mut Vec<Filter<'a>>,
        nested: &mut Vec<&'a Query>,
        schema: &dyn Schema,
    ) -> Result<(), SqlError> {
        let alias = match factor {
            TableFactor::Table { name, alias, .. } => {
                let table = table_name(name)?;
                let alias = alias.as_ref().map(|alias| alias.name.value.as_str());
                let last = match name.0.last() {
                    Some(ObjectNamePart::Identifier(last)) => Some(last.value.as_str()),
                    _ => None,
                };
                let occurrence = schema.sharding_column(&table.name).map(|column| {
                    self.occurrences.push(Occurrence {
                        shown: alias.or(last).map(str::to_owned),
                        column: Arc::from(column),
                        vindex: schema.vindex(&table.name).map(Arc::from),
                        preserved: false,
                        nullable: false,
                        table: table.clone(),
                    });
                    self.occurrences.len() - 1
                });
                let qualifier = match (alias, name.0.as_slice()) {
                    (None, [ObjectNamePart::Identifier(schema), _]) => Some(Some(&*schema.value)),
                    (None, [_]) => Some(None),
                    _ => None,
                };
                if let Some(shown) = alias.or(last) {
                    self.name(block, shown, occurrence, qualifier);
                }
                return Ok(());
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                nested.push(subquery);
                alias.as_ref()
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                self.join_tree(table_with_joins, block, filters, nested, schema)?;
                alias.as_ref()
            }
            TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::JsonTable { alias, .. } => alias.as_ref(),
            _ => None,
        };
        if let Some(alias) = alias {
            self.name(block, &alias.name.value, None, None);
        }
        Ok(())
    }

    /// Makes `shown` visible in `block`.
    fn name(
        &mut self,
        block: usize,
        shown: &'a str,
        occurrence: Option<usize>,
        qualifier: Option<Option<&'a str>>,
    ) {
        if let Some(block) = self.blocks.get_mut(block) {
            block
                .names
                .entry(shown.to_ascii_lowercase())
                .or_default()
                .push(Name {
                    shown,
                    occurrence,
                    qualifier,
                });
        }
    }

    /// Records the facts stated by the top-level AND conjuncts of `filter`: equalities
    /// between a sharding column and a literal, or between two sharding columns.
    fn conditions(&mut self, filter: &Filter<'a>) {
        for conjunct in chain(filter.expr, &BinaryOperator::And) {
            match unnest(conjunct) {
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } => match (self.column(left, filter), self.column(right, filter)) {
                    (Some(one), Some(other)) => {
                        self.follows(filter, one, other);
                        self.follows(filter, other, one);
                    }
                    (Some(occurrence), None) => self.key(filter, occurrence, literal(right)),
                    (None, Some(occurrence)) => self.key(filter, occurrence, literal(left)),
                    (None, None) => {}
                },
                // `col IN (5)` is `col = 5`.
                Expr::InList {
                    expr,
                    list,
                    negated: false,
                } => {
                    if let ([only], Some(occurrence)) = (list.as_slice(), self.column(expr, filter))
                    {
                        self.key(filter, occurrence, literal(only));
                    }
                }
                _ => {}
            }
        }
    }

    /// `occurrence.column = key`, in `filter`.
    fn key(&mut self, filter: &Filter<'a>, occurrence: usize, key: Option<KeyExpr<'a>>) {
        let Some(key) = key else { return };
        if filter.guarded.contains(&occurrence) {
            self.facts.push(Fact::Key { occurrence, key });
        } else {
            self.preserved(occurrence);
        }
    }

    /// `occurrence.column = source.column`, in `filter`, read as limiting `occurrence`.
    fn follows(&mut self, filter: &Filter<'a>, occurrence: usize, source: usize) {
        if occurrence == source {
            return;
        }
        if filter.guarded.contains(&occurrence) {
            self.facts.push(Fact::Follows { occurrence, source });
        } else if filter.operands.contains(&occurrence) {
            self.preserved(occurrence);
        }
    }

    /// Notes that an outer join's ON clause named `occurrence` on its preserved side.
    fn preserved(&mut self, occurrence: usize) {
        if let Some(occurrence) = self.occurrences.get_mut(occurrence) {
            occurrence.preserved = true;
        }
    }

    /// The index the next block walked gets.
    pub(super) fn next_block(&self) -> usize {
        self.blocks.len()
    }

    /// The occurrence whose sharding column `expr`, an expression of `block`'s select
    /// list, is; `None` when it is not one for sure. Resolved as in the block's WHERE
    /// clause: MySQL resolves select-list columns from the same FROM list.
    pub(super) fn select_column(&self, block: usize, expr: &'a Expr) -> Option<usize> {
        let from = self.blocks.get(block)?.from.clone();
        let filter = Filter {
            expr,
            block,
            operands: from,
            guarded: 0..0,
        };
        self.column(expr, &filter)
    }

    /// The occurrence whose sharding column `expr` is, as MySQL resolves it from
    /// `filter`; `None` when it is not one for sure.
    fn column(&self, expr: &Expr, filter: &Filter<'_>) -> Option<usize> {
        let is_column = |occurrence: usize, column: &Ident| {
            self.occurrences
                .get(occurrence)
                .is_some_and(|o| o.column.eq_ignore_ascii_case(&column.value))
        };
        match unnest(expr) {
            Expr::Identifier(column) => {
                let mut found = filter
                    .operands
                    .clone()
                    .filter(|&occurrence| is_column(occurrence, column));
                match (found.next(), found.next()) {
                    (Some(occurrence), None) => Some(occurrence),
                    _ => None,
                }
            }
            Expr::CompoundIdentifier(parts) => {
                let (schema, table, column) = match parts.as_slice() {
                    [table, column] => (None, table, column),
                    [schema, table, column] => (Some(schema.value.as_str()), table, column),
                    _ => return None,
                };
                let name = self.resolve(filter.block, &table.value)?;
                if schema.is_some() && name.qualifier != Some(schema) {
                    return None;
                }
                let occurrence = name.occurrence?;
                is_column(occurrence, column).then_some(occurrence)
            }
            _ => None,
        }
    }

    /// The FROM item `qualifier` names from `block`: the innermost block with the name
    /// decides. A name that matches only ignoring case is refused, since whether it
    /// matches depends on the server's `lower_case_table_names`; so is one that two
    /// FROM items of the block share (MySQL refuses such a statement anyway).
    fn resolve(&self, mut block: usize, qualifier: &str) -> Option<Name<'a>> {
        let key = qualifier.to_ascii_lowercase();
        loop {
            let here = self.blocks.get(block)?;
            if let Some(names) = here.names.get(&key) {
                return match names.as_slice() {
                    [only] if only.shown == qualifier => Some(*only),
                    _ => None,
                };
            }
            block = here.parent?;
        }
    }
}

/// The parts of a block the walk reads.
#[derive(Debug)]
pub(crate) struct Clause<'a> {
    /// Its FROM list (or an UPDATE or DELETE target list).
    pub(crate) from: &'a [TableWithJoins],
    /// Its WHERE clause.
    pub(crate) selection: Option<&'a Expr>,
    /// The queries nested in its other expressions (select list, HAVING, SET values).
    pub(crate) nested: Vec<&'a Query>,
}

/// A join's ON (or other) constraint, and what it limits.
fn join_kind(operator: &JoinOperator) -> (Option<&JoinConstraint>, Guard) {
    match operator {
        JoinOperator::Join(constraint)
        | JoinOperator::Inner(constraint)
        | JoinOperator::CrossJoin(constraint)
        | JoinOperator::StraightJoin(constraint) => (Some(constraint), Guard::Both),
        JoinOperator::Left(constraint) | JoinOperator::LeftOuter(constraint) => {
            (Some(constraint), Guard::Right)
        }
        JoinOperator::Right(constraint) | JoinOperator::RightOuter(constraint) => {
            (Some(constraint), Guard::Left)
        }
        JoinOperator::FullOuter(constraint)
        | JoinOperator::Semi(constraint)
        | JoinOperator::LeftSemi(constraint)
        | JoinOperator::RightSemi(constraint)
        | JoinOperator::Anti(constraint)
        | JoinOperator::LeftAnti(constraint)
        | JoinOperator::RightAnti(constraint)
        | JoinOperator::AsOf { constraint, .. } => (Some(constraint), Guard::Neither),
        JoinOperator::CrossApply
        | JoinOperator::OuterApply
        | JoinOperator::ArrayJoin
        | JoinOperator::LeftArrayJoin
        | JoinOperator::InnerArrayJoin => (None, Guard::Neither),
    }
}
