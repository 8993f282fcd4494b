//! Statements that read several sharded tables, or one several times (joins, self-joins,
//! subqueries, derived tables, CTEs, UNIONs), all limited to one tenant: they run whole
//! on that tenant's shard, as Vitess runs a join its planner can push to one route.
//!
//! The rule. Every read of a sharded table (an *occurrence*) must be *pinned*:
//!
//! - by `col = <literal or ?>` on its own sharding column (`col IN (<one value>)` too), or
//! - by `col = other.col` where `other` is a pinned occurrence's sharding column (in the
//!   same block, or an enclosing one for a correlated subquery),
//!
//! written as a top-level AND conjunct (parentheses allowed; never under OR, NOT or a
//! function) of a condition that *guards* the occurrence: the WHERE clause of its own
//! query block, or the ON clause of an inner join with it on either side, or of a LEFT
//! JOIN with it on the right (RIGHT JOIN: left). An outer join's ON does not guard its
//! preserved side, whose rows are kept whether the condition holds or not.
//!
//! Why that is enough: a guarding condition is true only for rows whose tenant is the
//! literal's (or the pinned occurrence's, whose rows that matter are then all of that
//! tenant or NULL-extended, and NULL equals nothing). Deleting every other row from an
//! occurrence, one occurrence at a time in the order they were pinned, changes neither
//! the condition's result nor anything built on it: rows it rejects are in no result
//! row, and a NULL-extended row that appears instead is rejected too. So the statement
//! reads only the tenant's rows, which its shard holds whole provided every table places
//! that tenant the same way, i.e. all the tables share one vindex
//! ([`crate::Schema::vindex`]); reference and unsharded tables are the
//! same on every shard.
//!
//! Every literal and placeholder that pins an occurrence is a key of the plan; they must
//! all name one tenant when the plan is bound (else the statement joins tenants, which
//! may live on several shards, and is refused). Two placeholders, or a placeholder and a
//! literal, cannot be compared before the statement is executed, so a statement that
//! names its tenant with a `?` must name it exactly once (join the other sharding
//! columns to it instead); that too is checked when binding
//! ([`KeyRule::Join`](crate::plan::KeyRule::Join)), since a statement with `?` shares
//! its fingerprint, and so its plan, with the same statement written with literals.
//!
//! Names are resolved as MySQL does, or not at all: an unqualified column belongs to
//! the condition's own operands; a qualifier to the innermost block that has it, and
//! only when it matches exactly one FROM item there, case included. Anything else does
//! not pin, so the statement is refused, never routed on a guess.

mod insert;
mod nested;
mod walk;

use std::sync::Arc;

use sqlparser::ast::Query;

use crate::Schema;
use crate::analyze::tables::References;
use crate::analyze::tenant::KeyExpr;
use crate::error::SqlError;
use walk::{Fact, Occurrence, Walk};

pub(crate) use insert::{InsertTarget, insert};
pub(crate) use nested::subqueries;
pub(crate) use walk::Clause;

/// Most reads of sharded tables one statement may make: MySQL joins at most 61 tables
/// per block, and the checks here grow with the square of the count.
const MAX_OCCURRENCES: usize = 1024;

/// Where a pinned statement runs.
#[derive(Debug)]
pub(crate) struct Pinned<'a> {
    /// The table routed by: the first sharded table read.
    pub(crate) table: Arc<str>,
    /// Its sharding column.
    pub(crate) column: Arc<str>,
    /// Its schema qualifier, as written.
    pub(crate) schema: Option<Arc<str>>,
    /// Every literal pinning an occurrence; all must name the same tenant.
    pub(crate) keys: Vec<KeyExpr<'a>>,
}

/// Pins a query (a SELECT statement).
pub(crate) fn query<'a>(
    query: &'a Query,
    schema: &dyn Schema,
    refs: &References,
) -> Result<Pinned<'a>, SqlError> {
    check_size(refs)?;
    let mut walk = Walk::default();
    walk.query(query, None, schema)?;
    solve(walk, refs, no_tenant)
}

/// Pins an UPDATE or DELETE: `clause.from` is its one target table, a sharded one (the
/// first occurrence, so the write is routed by it).
pub(crate) fn write<'a>(
    clause: Clause<'a>,
    schema: &dyn Schema,
    refs: &References,
) -> Result<Pinned<'a>, SqlError> {
    check_size(refs)?;
    let mut walk = Walk::default();
    walk.block(clause, None, schema)?;
    solve(walk, refs, no_tenant)
}

/// Refuses statements too large to check.
fn check_size(refs: &References) -> Result<(), SqlError> {
    if refs.sharded.len() > MAX_OCCURRENCES {
        return Err(SqlError::unsupported(format!(
            "a statement may read sharded tables at most {MAX_OCCURRENCES} times"
        )));
    }
    Ok(())
}

/// Checks what the walk found: every read, one vindex, every occurrence pinned.
/// `no_tenant` is the error for a statement whose conditions name no tenant at all.
fn solve<'a>(
    walk: Walk<'a>,
    refs: &References,
    no_tenant: impl FnOnce(&[Occurrence]) -> SqlError,
) -> Result<Pinned<'a>, SqlError> {
    let Walk {
        occurrences, facts, ..
    } = walk;
    check_complete(&occurrences, refs)?;
    let Some(first) = occurrences.first() else {
        return Err(SqlError::unsupported(
            "internal error: a statement on sharded tables has no sharded table",
        ));
    };
    check_vindexes(first, &occurrences)?;
    let pinned = pin(occurrences.len(), &facts);
    let keys: Vec<KeyExpr<'a>> = facts
        .iter()
        .filter_map(|fact| match fact {
            Fact::Key { key, .. } => Some(*key),
            Fact::Follows { .. } => None,
        })
        .collect();
    if keys.is_empty() {
        // A condition that would have pinned a read, but in an outer join's ON on its
        // preserved side, says more than "no tenant".
        return Err(match occurrences.iter().find(|o| o.preserved) {
            Some(preserved) => unpinned(preserved),
            None => no_tenant(&occurrences),
        });
    }
    if let Some(stray) = occurrences
        .iter()
        .zip(&pinned)
        .find_map(|(occurrence, pinned)| (!pinned).then_some(occurrence))
    {
        return Err(unpinned(stray));
    }
    Ok(Pinned {
        table: Arc::clone(&first.table.name),
        column: Arc::clone(&first.column),
        schema: first.table.schema.clone(),
        keys,
    })
}

/// Refuses a statement reading a sharded table where the walk does not look: it found
/// fewer occurrences of some table than the complete visitor did.
fn check_complete(occurrences: &[Occurrence], refs: &References) -> Result<(), SqlError> {
    let count = |name: &str| {
        occurrences
            .iter()
            .filter(|occurrence| &*occurrence.table.name == name)
            .count()
    };
    let missed = refs.sharded.iter().find(|table| {
        let expected = refs.sharded.iter().filter(|t| t.name == table.name).count();
        count(&table.name) != expected
    });
    match missed {
        Some(table) => Err(SqlError::unsupported(format!(
            "sharded table `{}` is read where shardgate cannot check which tenant's rows it \
             reads (only FROM lists, joins, derived tables, CTEs, UNIONs and subqueries in WHERE, \
             ON, the select list and HAVING are checked)",
            table.name
        ))),
        None => Ok(()),
    }
}

/// Refuses sharded tables that may place one tenant on different shards.
fn check_vindexes(first: &Occurrence, occurrences: &[Occurrence]) -> Result<(), SqlError> {
    for other in occurrences {
        if other.table.name == first.table.name {
            continue;
        }
        match (&first.vindex, &other.vindex) {
            (Some(one), Some(two)) if one == two => {}
            (Some(one), Some(two)) => {
                return Err(SqlError::unsupported(format!(
                    "sharded tables `{}` ({one}) and `{}` ({two}) use different vindexes, so one \
                     tenant's rows may be on two shards; cross-shard joins are not supported",
                    first.table.name, other.table.name
                )));
            }
            _ => {
                return Err(SqlError::unsupported(format!(
                    "shardgate does not know whether sharded tables `{}` and `{}` place a tenant \
                     on the same shard (no vindex); cross-shard joins are not supported",
                    first.table.name, other.table.name
                )));
            }
        }
    }
    Ok(())
}

/// Which occurrences the facts pin: keys first, then equalities until nothing changes.
fn pin(count: usize, facts: &[Fact<'_>]) -> Vec<bool> {
    let mut pinned = vec![false; count];
    for fact in facts {
        if let Fact::Key { occurrence, .. } = fact
            && let Some(slot) = pinned.get_mut(*occurrence)
        {
            *slot = true;
        }
    }
    // Each pass pins at least one more occurrence or ends: at most `count` passes.
    loop {
        let mut changed = false;
        for fact in facts {
            if let Fact::Follows { occurrence, source } = fact
                && pinned.get(*source) == Some(&true)
                && let Some(slot) = pinned.get_mut(*occurrence)
                && !*slot
            {
                *slot = true;
                changed = true;
            }
        }
        if !changed {
            return pinned;
        }
    }
}

/// The error for a statement over sharded tables that names no tenant at all.
fn no_tenant(occurrences: &[Occurrence]) -> SqlError {
    let mut names: Vec<String> = Vec::new();
    for occurrence in occurrences {
        let name = format!("`{}`", occurrence.table.name);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    SqlError::unsupported(format!(
        "statement reads sharded table{} {} in a join, subquery, derived table, CTE or UNION \
         without naming one tenant: pin one read with `<sharding column> = <value>` and join \
         the others' sharding columns to it, as top-level AND conditions; joins across tenants \
         (and shards) are not supported",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ))
}

/// The error for an occurrence no condition pins.
fn unpinned(occurrence: &Occurrence) -> SqlError {
    let table = &occurrence.table.name;
    let column = &occurrence.column;
    let (named, prefix) = match occurrence.shown.as_deref() {
        Some(shown) if shown != &**table => (format!("`{table}` (as `{shown}`)"), shown),
        Some(shown) => (format!("`{table}`"), shown),
        None => (format!("`{table}`"), &**table),
    };
    let preserved = if occurrence.preserved {
        " (the ON clause of an outer join does not limit the rows of its preserved side)"
    } else {
        ""
    };
    SqlError::unsupported(format!(
        "sharded table {named} is not limited to the statement's tenant{preserved}: add \
         `{prefix}.{column} = <value>`, or `{prefix}.{column} = ` the sharding column of a \
         limited table, as a top-level AND condition of its WHERE or of an inner JOIN's ON; \
         cross-shard joins are not supported"
    ))
}
