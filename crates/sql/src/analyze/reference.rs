//! Writes to reference tables: every shard holds a full copy, so an INSERT, UPDATE,
//! DELETE or REPLACE touching only reference tables runs on every shard
//! ([`Route::EveryShard`](crate::Route::EveryShard)).
//!
//! The copies stay equal only if the statement does the same on every shard: it may
//! read nothing but reference tables (a sharded table differs from shard to shard, so a
//! write reading one is refused), and nothing whose value differs between servers. The
//! refused functions and the LIMIT rule are those MySQL's statement-based replication
//! calls unsafe, for the same reason: one statement replayed on several servers. Other
//! differences are the application's to avoid: `NOW()` and friends read each server's
//! clock, and AUTO_INCREMENT values agree only while every write goes through the proxy.

use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{Expr, ObjectNamePart, Query, Statement, Visit, Visitor};

use super::tables::References;
use super::{Draft, DraftRoute, Outcome};
use crate::Schema;
use crate::analysis::{StatementKind, TableName};
use crate::error::SqlError;

/// Functions whose value differs from server to server (or from one backend connection
/// to another) even on equal data.
const SERVER_DEPENDENT: &[&str] = &[
    "RAND",
    "UUID",
    "UUID_SHORT",
    "SYS_GUID",
    "SYSDATE",
    "CONNECTION_ID",
    "LAST_INSERT_ID",
    "FOUND_ROWS",
    "ROW_COUNT",
    "LOAD_FILE",
];

/// What a write is, by its tables.
#[derive(Debug)]
pub(crate) enum Written<'a> {
    /// Only reference tables: the answer, on every shard.
    Reference(Outcome<'a>),
    /// It touches a sharded table: analyse it as such, with these references.
    Sharded(References),
}

/// Sorts a write whose target is `target` (`None`: not a plain table) by its tables.
/// Refuses a write to a reference table that reads a sharded one, a write touching
/// only unsharded tables some of which are not reference tables, and a reference write
/// that could change the shards' copies differently.
///
/// `limit_without_order`: an UPDATE or DELETE with LIMIT and no ORDER BY.
pub(crate) fn write<'a>(
    kind: StatementKind,
    stmt: &Statement,
    refs: References,
    target: Option<&TableName>,
    limit_without_order: bool,
    schema: &dyn Schema,
) -> Result<Written<'a>, SqlError> {
    let is_reference =
        |name: &str| schema.sharding_column(name).is_none() && schema.is_reference(name);
    if let Some(target) = target.filter(|t| schema.is_session_local(&t.name)) {
        // One copy, where the statement runs: no divergence to guard against.
        return match refs.sharded.first() {
            None => Ok(Written::Reference(super::any_shard(kind, refs))),
            Some(sharded) => Err(SqlError::unsupported(format!(
                "a write to temporary table `{}` may read sharded table `{}` only as INSERT … SELECT \
                 pinned to one tenant",
                target.name, sharded.name
            ))),
        };
    }
    if let Some(sharded) = refs.sharded.first() {
        if let Some(target) = target.filter(|target| is_reference(&target.name)) {
            return Err(SqlError::unsupported(format!(
                "a write to reference table `{}` may not read sharded table `{}`: each shard \
                 holds only its own tenants' rows of it, so the copies would diverge",
                target.name, sharded.name
            )));
        }
        return Ok(Written::Sharded(refs));
    }
    let target = match target {
        Some(target) if is_reference(&target.name) => target,
        _ => return Err(super::unsharded_write(&refs)),
    };
    if let Some(other) = refs.tables.iter().find(|table| !is_reference(&table.name)) {
        return Err(SqlError::unsupported(format!(
            "a write to reference table `{}` may read only reference tables; `{}` is not one",
            target.name, other.name
        )));
    }
    if limit_without_order {
        return Err(SqlError::unsupported(format!(
            "a write to reference table `{}` with LIMIT but no ORDER BY: each shard could \
             pick other rows",
            target.name
        )));
    }
    check_deterministic(stmt, &target.name)?;
    Ok(Written::Reference(Outcome::Draft(Draft {
        kind,
        tables: refs.tables,
        schema: target.schema.clone(),
        calls_database: refs.calls_database,
        route: DraftRoute::EveryShard {
            table: Arc::clone(&target.name),
        },
        ids: None,
    })))
}

/// Refuses a statement whose effect could differ between shards holding equal copies.
fn check_deterministic(stmt: &Statement, table: &str) -> Result<(), SqlError> {
    match stmt.visit(&mut Determinism) {
        ControlFlow::Break(what) => Err(SqlError::unsupported(format!(
            "a write to reference table `{table}` runs on every shard and must do the same on \
             each, but {what} differs from server to server"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Finds the first server-dependent part of a statement.
struct Determinism;

impl Visitor for Determinism {
    type Break = String;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        if let Expr::Function(function) = expr
            && let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice()
            && SERVER_DEPENDENT
                .iter()
                .any(|refused| name.value.eq_ignore_ascii_case(refused))
        {
            return ControlFlow::Break(format!("{}()", name.value.to_ascii_uppercase()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if query.limit_clause.is_some() && query.order_by.is_none() {
            return ControlFlow::Break("which rows a LIMIT without ORDER BY keeps".to_owned());
        }
        ControlFlow::Continue(())
    }
}
