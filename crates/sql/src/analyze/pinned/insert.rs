//! `INSERT ... SELECT` into a sharded table, run whole on one tenant's shard, as Vitess
//! runs an INSERT ... SELECT its planner can push to one route.
//!
//! The rule. The SELECT's reads of sharded tables must all be pinned to one tenant, as
//! any query's are ([`super`]). The INSERT's target is one more occurrence, pinned by the
//! value the SELECT gives its sharding column (the select item at that column's place in
//! the INSERT's column list):
//!
//! - a literal or `?`: one more key of the plan, so it must name the tenant the SELECT's
//!   own keys name (checked when the plan is bound, for every statement of the
//!   fingerprint, with [`KeyRule::Join`](crate::plan::KeyRule::Join)); a SELECT that
//!   reads no sharded table takes its tenant from it alone;
//! - the sharding column of an occurrence of the SELECT's own FROM list, resolved as
//!   MySQL resolves it: every inserted row copies the tenant of a row the SELECT read,
//!   and every row it reads is the pinned tenant's.
//!
//! Anything else (an expression, a column of a derived table or of a subquery) could
//! give a row another tenant, whose shard is maybe another one: refused. So is such a
//! column where it can be NULL although its table is pinned: on the side of an outer
//! join that may be NULL-extended, in a SELECT that aggregates without GROUP BY (over no
//! rows it still gives one row, of NULLs), and with `WITH ROLLUP` (whose summary rows
//! hold NULLs). A NULL tenant would be stored, or outside strict mode stored as 0, on a
//! shard that does not own it.
//!
//! The target must use the vindex of every sharded table the SELECT reads, or the
//! tenant's rows of the two may live on two shards. Only one SELECT feeds the rows: a
//! UNION, or `TABLE t`, is refused (each branch would need its own check).
//!
//! Aggregates are known by name (MariaDB's built-in ones). A stored aggregate function
//! (`CREATE AGGREGATE FUNCTION`) is not known, so a SELECT calling one without GROUP BY
//! and taking the tenant from a column is not refused: over no rows, it would insert
//! a NULL tenant (refused by a `NOT NULL` sharding column in strict mode).

use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    Expr, GroupByExpr, ObjectNamePart, OrderBy, Query, Select, SelectItem, SetExpr, Visit, Visitor,
};

use super::walk::{Fact, Occurrence, Walk};
use super::{Pinned, check_size, solve};
use crate::Schema;
use crate::analysis::TableName;
use crate::analyze::tables::References;
use crate::analyze::tenant::{literal, unnest};
use crate::error::SqlError;

/// MariaDB's aggregate functions: one of them in a SELECT without GROUP BY makes the
/// whole SELECT one group, which gives a row even when no row matches.
const AGGREGATES: &[&str] = &[
    "AVG",
    "BIT_AND",
    "BIT_OR",
    "BIT_XOR",
    "COUNT",
    "GROUP_CONCAT",
    "JSON_ARRAYAGG",
    "JSON_OBJECTAGG",
    "MAX",
    "MEDIAN",
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

/// The table an INSERT ... SELECT writes.
#[derive(Debug)]
pub(crate) struct InsertTarget<'t> {
    /// The table as written.
    pub(crate) table: &'t TableName,
    /// Its sharding column.
    pub(crate) column: &'t Arc<str>,
    /// Where the sharding column is in the INSERT's column list (0-based).
    pub(crate) position: usize,
}

/// Pins an INSERT ... SELECT whose rows come from `source`: routed by `target`, the
/// table written.
pub(crate) fn insert<'a>(
    target: &InsertTarget<'_>,
    source: &'a Query,
    schema: &dyn Schema,
    refs: &References,
) -> Result<Pinned<'a>, SqlError> {
    check_size(refs)?;
    let Some((select, order_bys)) = main_select(source) else {
        return Err(refuse(
            target,
            "takes its rows from a UNION, VALUES or TABLE; only the rows of one SELECT are \
             checked for their tenant"
                .to_owned(),
        ));
    };
    let item = tenant_item(select, target)?;
    let mut walk = Walk::default();
    // The walk makes the block of the main SELECT first: nothing precedes its FROM list.
    let block = walk.next_block();
    walk.query(source, None, schema)?;
    // The target comes last, so that an unpinned read of the SELECT is reported before
    // the target that copies its tenant.
    let occurrence = walk.occurrences.len();
    let fact = if let Some(key) = literal(item) {
        Fact::Key { occurrence, key }
    } else if let Some(read) = walk.select_column(block, item) {
        copied(target, item, walk.occurrences.get(read), select, &order_bys)?;
        Fact::Follows {
            occurrence,
            source: read,
        }
    } else {
        return Err(refuse(
            target,
            format!(
                "gives sharding column `{}` the value `{item}`, which is not provably the \
                 tenant the SELECT reads: give it the literal (or the one `?`) that limits the \
                 SELECT, or the sharding column of a table in the SELECT's FROM list limited to \
                 that tenant; rows are never copied across tenants (or shards)",
                target.column
            ),
        ));
    };
    let vindex = schema.vindex(&target.table.name).map(Arc::from);
    check_vindexes(target, vindex.as_deref(), &walk.occurrences)?;
    walk.occurrences.push(Occurrence {
        table: target.table.clone(),
        shown: Some(target.table.name.to_string()),
        column: Arc::clone(target.column),
        vindex,
        preserved: false,
        nullable: false,
    });
    walk.facts.push(fact);
    let mut pinned = solve(walk, refs, |occurrences| no_tenant(target, occurrences))?;
    // Routed by the table written, whichever the SELECT reads first.
    pinned.table = Arc::clone(&target.table.name);
    pinned.column = Arc::clone(target.column);
    pinned.schema = target.table.schema.clone();
    Ok(pinned)
}

/// The SELECT whose rows are inserted (through parentheses), and the ORDER BY clauses
/// around it; none for a UNION, VALUES or TABLE.
fn main_select(query: &Query) -> Option<(&Select, Vec<&OrderBy>)> {
    let mut order_bys = Vec::new();
    let mut query = query;
    loop {
        order_bys.extend(query.order_by.as_ref());
        match query.body.as_ref() {
            SetExpr::Select(select) => return Some((select, order_bys)),
            SetExpr::Query(inner) => query = inner,
            _ => return None,
        }
    }
}

/// The select item giving the target's sharding column its value.
fn tenant_item<'a>(select: &'a Select, target: &InsertTarget<'_>) -> Result<&'a Expr, SqlError> {
    for (at, item) in select.projection.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(expr)
            | SelectItem::ExprWithAlias { expr, .. }
            | SelectItem::ExprWithAliases { expr, .. } => {
                if at == target.position {
                    return Ok(expr);
                }
            }
            // How many columns `*` stands for is the table's business, not the text's.
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                return Err(refuse(
                    target,
                    format!(
                        "selects `*` at or before the value of sharding column `{}`; list the \
                         selected columns, so that the tenant's value can be checked",
                        target.column
                    ),
                ));
            }
        }
    }
    Err(refuse(
        target,
        "selects fewer values than its column list names".to_owned(),
    ))
}

/// Refuses taking the tenant from column `item` (of pinned occurrence `read`) where it
/// may be NULL in a row of `select`.
fn copied(
    target: &InsertTarget<'_>,
    item: &Expr,
    read: Option<&Occurrence>,
    select: &Select,
    order_bys: &[&OrderBy],
) -> Result<(), SqlError> {
    let column = &target.column;
    if read.is_none_or(|read| read.nullable) {
        return Err(refuse(
            target,
            format!(
                "takes sharding column `{column}` from `{item}`, which an outer join may make \
                 NULL; take it from a table the join does not NULL-extend, or give the tenant \
                 as a literal"
            ),
        ));
    }
    match grouping(select) {
        Grouping::Plain => Ok(()),
        Grouping::Summary => Err(refuse(
            target,
            format!(
                "takes sharding column `{column}` from `{item}` in a SELECT WITH ROLLUP (or \
                 CUBE, GROUPING SETS), whose summary rows may hold NULL; give the tenant as a \
                 literal"
            ),
        )),
        Grouping::None if aggregates(select, order_bys) => Err(refuse(
            target,
            format!(
                "takes sharding column `{column}` from `{item}` in a SELECT that aggregates \
                 without GROUP BY, which over no rows still gives one row, of NULLs; add GROUP \
                 BY, or give the tenant as a literal"
            ),
        )),
        Grouping::None => Ok(()),
    }
}

/// How a SELECT groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// No GROUP BY.
    None,
    /// GROUP BY: one row per group, none without rows.
    Plain,
    /// GROUP BY with summary rows (`WITH ROLLUP`, `CUBE`, `GROUPING SETS`).
    Summary,
}

/// How `select` groups its rows.
fn grouping(select: &Select) -> Grouping {
    let summary = |expr: &Expr| {
        matches!(
            unnest(expr),
            Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)
        )
    };
    match &select.group_by {
        GroupByExpr::All(modifiers) if modifiers.is_empty() => Grouping::Plain,
        GroupByExpr::All(_) => Grouping::Summary,
        GroupByExpr::Expressions(exprs, modifiers)
            if !modifiers.is_empty() || exprs.iter().any(summary) =>
        {
            Grouping::Summary
        }
        GroupByExpr::Expressions(exprs, _) if exprs.is_empty() => Grouping::None,
        GroupByExpr::Expressions(..) => Grouping::Plain,
    }
}

/// Whether `select` (with `order_bys`) calls an aggregate function of its own: in its
/// select list, HAVING or ORDER BY, outside its subqueries and window functions.
fn aggregates(select: &Select, order_bys: &[&OrderBy]) -> bool {
    let mut finder = Aggregates { depth: 0 };
    select
        .projection
        .iter()
        .any(|item| item.visit(&mut finder).is_break())
        || select
            .having
            .as_ref()
            .is_some_and(|having| having.visit(&mut finder).is_break())
        || order_bys
            .iter()
            .any(|order_by| order_by.visit(&mut finder).is_break())
}

/// Finds an aggregate call outside nested queries.
struct Aggregates {
    /// How many queries deep the visit is (their aggregates are their own).
    depth: usize,
}

impl Visitor for Aggregates {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0
            && let Expr::Function(function) = expr
            // With OVER it is a window function: one value per row, no grouping.
            && function.over.is_none()
            && let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice()
            && AGGREGATES
                .iter()
                .any(|aggregate| name.value.eq_ignore_ascii_case(aggregate))
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Refuses a target whose vindex is not that of every sharded table the SELECT reads
/// (another table than the target).
fn check_vindexes(
    target: &InsertTarget<'_>,
    vindex: Option<&str>,
    reads: &[Occurrence],
) -> Result<(), SqlError> {
    let table = &target.table.name;
    for read in reads.iter().filter(|read| read.table.name != *table) {
        let other = &read.table.name;
        match (vindex, read.vindex.as_deref()) {
            (Some(one), Some(two)) if one == two => {}
            (Some(one), Some(two)) => {
                return Err(refuse(
                    target,
                    format!(
                        "reads sharded table `{other}`, and they use different vindexes \
                         (`{table}` {one}, `{other}` {two}), so one tenant's rows of them may be \
                         on two shards; copying rows across shards is not supported"
                    ),
                ));
            }
            _ => {
                return Err(refuse(
                    target,
                    format!(
                        "reads sharded table `{other}`, and shardgate does not know whether they \
                         place a tenant on the same shard (no vindex); copying rows across shards \
                         is not supported"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The error for an INSERT ... SELECT whose SELECT names no tenant (`occurrences`: its
/// reads, then the target).
fn no_tenant(target: &InsertTarget<'_>, occurrences: &[Occurrence]) -> SqlError {
    let reads = occurrences
        .split_last()
        .map_or(occurrences, |(_, reads)| reads);
    let mut names: Vec<String> = Vec::new();
    for read in reads {
        let name = format!("`{}`", read.table.name);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    refuse(
        target,
        format!(
            "reads sharded table{} {} without naming one tenant: limit the SELECT with \
             `<sharding column> = <value>` as a top-level AND condition (joining the other \
             sharding columns to it); an INSERT ... SELECT runs on one tenant's shard only",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    )
}

/// The error for an INSERT ... SELECT into `target`, for `reason`.
fn refuse(target: &InsertTarget<'_>, reason: String) -> SqlError {
    SqlError::unsupported(format!(
        "INSERT ... SELECT into sharded table `{}` {reason}",
        target.table.name
    ))
}
