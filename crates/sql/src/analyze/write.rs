//! UPDATE and DELETE: of one sharded table, routed by the tenant their WHERE clause
//! names (or scattered), or pinned with their subqueries to one tenant
//! ([`super::pinned`]); or of reference tables only, on every shard
//! ([`super::reference`]). Several target tables, or joins in the target list, are
//! refused unless they are all reference tables.

use std::sync::Arc;

use sqlparser::ast::{Delete, Expr, FromTable, ObjectNamePart, Statement, TableFactor, Update};

use super::pinned::{self, Clause};
use super::reference::{self, Written};
use super::tables::{self, References, Scope, ScopeTable, ShardedTable, table_name};
use super::tenant::{self, Target};
use super::{Outcome, pinned_route, routed, scatter, unsharded_write};
use crate::Schema;
use crate::analysis::{StatementKind, TableName};
use crate::error::SqlError;
use crate::plan::KeyRule;
use crate::scatter::MergePlan;

/// A single-table UPDATE that leaves the sharding column alone, or an UPDATE of
/// reference tables only.
pub(super) fn update<'a>(
    stmt: &'a Statement,
    update: &'a Update,
    schema: &dyn Schema,
) -> Result<Outcome<'a>, SqlError> {
    let refs = tables::collect(stmt, schema)?;
    let target = plain_table(&update.table.relation)?;
    let unordered_limit = update.limit.is_some() && update.order_by.is_empty();
    let kind = StatementKind::Update;
    let refs = match reference::write(
        kind.clone(),
        stmt,
        refs,
        target.as_ref(),
        unordered_limit,
        schema,
    )? {
        Written::Reference(outcome) => return Ok(outcome),
        Written::Sharded(refs) => refs,
    };
    refs.refuse_unsafe_operators()?;
    if !update.table.joins.is_empty() || update.from.is_some() {
        return Err(SqlError::unsupported(
            "UPDATE of several tables is not supported yet",
        ));
    }
    if refs.sharded.len() > 1 {
        let column = sharded_target(target.as_ref(), &refs, schema)?;
        if tenant::assigns_column(&update.assignments, &column) {
            return Err(sharding_column_update(target.as_ref(), &column));
        }
        let mut nested = Vec::new();
        for assignment in &update.assignments {
            pinned::subqueries(&assignment.value, &mut nested);
        }
        let clause = Clause {
            from: std::slice::from_ref(&update.table),
            selection: update.selection.as_ref(),
            nested,
        };
        let pinned = pinned::write(clause, schema, &refs)?;
        return pinned_route(kind, refs, pinned);
    }
    let ShardedTable {
        name: table,
        column,
    } = refs
        .single_sharded()?
        .ok_or_else(|| unsharded_write(&refs))?;
    let scope = Scope::of(std::slice::from_ref(&update.table))?;
    let entry = scope.find(&table)?;
    if tenant::assigns_column(&update.assignments, &column) {
        return Err(SqlError::ShardingColumnUpdate {
            table: table.to_string(),
            column: column.to_string(),
        });
    }
    let target = Target {
        table: entry,
        column: &column,
        scope: &scope,
    };
    let written = WhereWrite {
        what: "UPDATE",
        selection: update.selection.as_ref(),
        limit: update.limit.as_ref(),
        returning: update.returning.is_some(),
    };
    by_where(
        kind,
        refs,
        &target,
        (Arc::clone(&table), Arc::clone(&column)),
        written,
    )
}

/// A single-table DELETE, or a DELETE from reference tables only.
pub(super) fn delete<'a>(
    stmt: &'a Statement,
    delete: &'a Delete,
    schema: &dyn Schema,
) -> Result<Outcome<'a>, SqlError> {
    let refs = tables::collect(stmt, schema)?;
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    let target = match from.first() {
        Some(first) => plain_table(&first.relation)?,
        None => None,
    };
    let unordered_limit = delete.limit.is_some() && delete.order_by.is_empty();
    let kind = StatementKind::Delete;
    let refs = match reference::write(
        kind.clone(),
        stmt,
        refs,
        target.as_ref(),
        unordered_limit,
        schema,
    )? {
        Written::Reference(outcome) => return Ok(outcome),
        Written::Sharded(refs) => refs,
    };
    refs.refuse_unsafe_operators()?;
    let single = matches!(from.as_slice(), [only] if only.joins.is_empty());
    if !single || delete.using.is_some() || delete.tables.len() > 1 {
        return Err(SqlError::unsupported(
            "DELETE from several tables is not supported yet",
        ));
    }
    let scope = Scope::of(from)?;
    if refs.sharded.len() > 1 {
        sharded_target(target.as_ref(), &refs, schema)?;
        let name = target.as_ref().map_or("", |target| &target.name);
        deletes_own(delete, scope.find(name)?)?;
        let clause = Clause {
            from,
            selection: delete.selection.as_ref(),
            nested: Vec::new(),
        };
        let pinned = pinned::write(clause, schema, &refs)?;
        return pinned_route(kind, refs, pinned);
    }
    let ShardedTable {
        name: table,
        column,
    } = refs
        .single_sharded()?
        .ok_or_else(|| unsharded_write(&refs))?;
    let entry = scope.find(&table)?;
    deletes_own(delete, entry)?;
    let target = Target {
        table: entry,
        column: &column,
        scope: &scope,
    };
    let written = WhereWrite {
        what: "DELETE",
        selection: delete.selection.as_ref(),
        limit: delete.limit.as_ref(),
        returning: delete.returning.is_some(),
    };
    by_where(
        kind,
        refs,
        &target,
        (Arc::clone(&table), Arc::clone(&column)),
        written,
    )
}

/// Refuses `DELETE t FROM ...` naming another table than `entry`, its only table.
fn deletes_own(delete: &Delete, entry: &ScopeTable<'_>) -> Result<(), SqlError> {
    let Some(named) = delete.tables.first() else {
        return Ok(());
    };
    let own = entry
        .alias
        .map_or(&*entry.name.name, |alias| alias.value.as_str());
    let names_own =
        matches!(named.0.as_slice(), [ObjectNamePart::Identifier(ident)] if ident.value == own);
    if names_own {
        Ok(())
    } else {
        Err(SqlError::unsupported(
            "DELETE from several tables is not supported yet",
        ))
    }
}

/// The table a FROM item names, when it is a plain table.
fn plain_table(factor: &TableFactor) -> Result<Option<TableName>, SqlError> {
    match factor {
        TableFactor::Table { name, .. } => table_name(name).map(Some),
        _ => Ok(None),
    }
}

/// The sharding column of the target of a write that reads other sharded tables; refuses
/// a target that is not sharded.
fn sharded_target(
    target: Option<&TableName>,
    refs: &References,
    schema: &dyn Schema,
) -> Result<Arc<str>, SqlError> {
    let column = target.and_then(|target| schema.sharding_column(&target.name));
    match column {
        Some(column) => Ok(Arc::from(column)),
        None => {
            let table = refs.sharded.first().map_or("", |table| &table.name);
            Err(SqlError::unsupported(format!(
                "sharded table `{table}` is read only inside a subquery of a write to another table; not supported yet"
            )))
        }
    }
}

/// The error for an UPDATE assigning the sharding column of its target.
fn sharding_column_update(target: Option<&TableName>, column: &str) -> SqlError {
    SqlError::ShardingColumnUpdate {
        table: target.map_or_else(String::new, |target| target.name.to_string()),
        column: column.to_owned(),
    }
}

/// What routing a single-table UPDATE or DELETE by its WHERE clause needs.
struct WhereWrite<'a> {
    /// `UPDATE` or `DELETE`, for messages.
    what: &'static str,
    selection: Option<&'a Expr>,
    limit: Option<&'a Expr>,
    returning: bool,
}

/// The route of a single-table UPDATE or DELETE of `table`: the tenant its WHERE clause names, or the set it names
/// (every shard when none), checked for what cannot run on several shards.
fn by_where<'a>(
    kind: StatementKind,
    refs: References,
    target: &Target<'_, '_>,
    (table, column): (Arc<str>, Arc<str>),
    write: WhereWrite<'a>,
) -> Result<Outcome<'a>, SqlError> {
    let qualifier = target.table.name.schema.clone();
    let keys = target.where_keys(write.selection);
    if keys.is_empty() {
        let merge = scattered_write(write.what, write.limit, write.returning);
        let keys = target.where_key_set(write.selection);
        return Ok(scatter(kind, refs, (table, column, qualifier), keys, merge));
    }
    routed(
        kind,
        refs,
        (table, column, qualifier),
        keys,
        KeyRule::Conjuncts,
    )
}

/// Whether an UPDATE or DELETE can run on several shards: each shard would apply a
/// LIMIT on its own (changing up to LIMIT rows per shard), and RETURNING would give
/// several result sets.
fn scattered_write(
    what: &str,
    limit: Option<&Expr>,
    returning: bool,
) -> Result<Option<Arc<MergePlan>>, SqlError> {
    if limit.is_some() {
        return Err(SqlError::unsupported(format!(
            "{what} with LIMIT on several shards would change up to LIMIT rows on each shard; name one tenant"
        )));
    }
    if returning {
        return Err(SqlError::unsupported(format!(
            "{what} ... RETURNING on several shards; name one tenant"
        )));
    }
    Ok(None)
}
