//! INSERT and REPLACE: the tenant is the sharding column of every row. (Into a
//! reference table: on every shard, see [`super::reference`].)
//!
//! `VALUES (...), (...)` needs an explicit column list naming the sharding column, and
//! a plain literal (or `?`) for it in every row; `INSERT ... SET col = val` needs the
//! assignment. All rows must name the same tenant (checked when the plan is bound,
//! since it depends on the literals). `INSERT ... SELECT` needs the column list too, and
//! runs on one tenant's shard when its SELECT is pinned to that tenant and the rows it
//! inserts provably belong to it ([`super::pinned::insert`] states the rule); otherwise
//! it is refused. `ON DUPLICATE KEY UPDATE` may not move the row to another tenant.
//!
//! Into a table whose ids come from a sequence ([`crate::sequence`]), each row's value
//! for that column is kept in the draft too: rows asking for an id make the answer
//! [`Route::NeedsIds`](crate::Route::NeedsIds) ahead of the tenant route. When the
//! sequence column is also the sharding column and some row leaves it to be generated,
//! there are no tenants to read yet and the draft is that route alone. Such a table needs
//! VALUES rows with a column list (the ids are written into them); `INSERT ... SET` may
//! only give the id.

use std::sync::Arc;

use sqlparser::ast::{
    Expr, Insert, ObjectName, ObjectNamePart, OnInsert, SetExpr, Statement, TableObject,
};

use super::pinned::{self, InsertTarget};
use super::reference::{self, Written};
use super::tables::{self, References, ShardedTable, table_name};
use super::tenant::{self, KeyExpr};
use super::{Draft, DraftRoute, Outcome, pinned_route, routed, unsharded_write};
use crate::Schema;
use crate::analysis::{StatementKind, TableName};
use crate::error::SqlError;
use crate::plan::KeyRule;
use crate::sequence::{self, DraftIds, Form, IdExpr, shape};

/// Analyses an INSERT or REPLACE.
pub(crate) fn analyze<'a>(
    stmt: &'a Statement,
    insert: &'a Insert,
    schema: &dyn Schema,
) -> Result<Outcome<'a>, SqlError> {
    let kind = if insert.replace_into {
        StatementKind::Replace
    } else {
        StatementKind::Insert
    };
    let refs = tables::collect(stmt, schema)?;
    let TableObject::TableName(name) = &insert.table else {
        return Err(SqlError::unsupported("INSERT into a table function"));
    };
    let target = table_name(name)?;
    let source = insert
        .source
        .as_deref()
        .filter(|source| !matches!(source.body.as_ref(), SetExpr::Values(_)));
    if let Some(query) =
        source.filter(|_| schema.is_session_local(&target.name) && !refs.sharded.is_empty())
    {
        // Rows for a session's temporary table from one tenant's data: where that tenant lives.
        let pinned = super::pinned::query(query, schema, &refs)?;
        return super::pinned_route(kind, refs, pinned);
    }
    let refs = match reference::write(kind.clone(), stmt, refs, Some(&target), false, schema)? {
        Written::Reference(outcome) => return Ok(outcome),
        Written::Sharded(refs) => refs,
    };
    // Rows from a query (not VALUES) may read sharded tables besides the target.
    let query = insert
        .source
        .as_deref()
        .filter(|source| !matches!(source.body.as_ref(), SetExpr::Values(_)));
    let ShardedTable {
        name: table,
        column,
    } = match query {
        Some(_) => sharded_target(&target, &refs, schema)?,
        None => refs
            .single_sharded()?
            .ok_or_else(|| unsharded_write(&refs))?,
    };
    if target.name != table {
        return Err(read_only_in_subquery(&table));
    }
    refs.refuse_unsafe_operators()?;
    let names = (table.to_string(), column.to_string());
    match &insert.on {
        Some(OnInsert::DuplicateKeyUpdate(assignments))
            if tenant::assigns_column(assignments, &column) =>
        {
            let (table, column) = names;
            return Err(SqlError::ShardingColumnUpdate { table, column });
        }
        None | Some(OnInsert::DuplicateKeyUpdate(_)) => {}
        Some(_) => return Err(SqlError::unsupported("INSERT ... ON CONFLICT")),
    }
    let ids = match schema.sequence_column(&table) {
        Some(sequence) => Some(Box::new(ids(insert, &table, Arc::from(sequence))?)),
        None => None,
    };
    let qualifier = target.schema.clone();
    if ids
        .as_ref()
        .is_some_and(|ids| ids.always_generates() && ids.column.eq_ignore_ascii_case(&column))
    {
        // Rows without their id have no tenant yet: nothing to route by until the ids are in.
        return Ok(Outcome::Draft(Draft {
            kind,
            tables: refs.tables,
            schema: qualifier,
            calls_database: refs.calls_database,
            route: DraftRoute::NeedsIds,
            ids,
        }));
    }
    if let Some(query) = query {
        if insert.columns.is_empty() {
            let (table, column) = names;
            return Err(SqlError::MissingColumnList { table, column });
        }
        let Some(position) = column_position(&insert.columns, &column)? else {
            let (table, column) = names;
            return Err(SqlError::MissingTenantKey { table, column });
        };
        let written = InsertTarget {
            table: &target,
            column: &column,
            position,
        };
        let pinned = pinned::insert(&written, query, schema, &refs)?;
        // `ids` is none here: rows from a query cannot have ids written in (see `ids`).
        return pinned_route(kind, refs, pinned);
    }
    let keys = if let Some(source) = &insert.source {
        if insert.columns.is_empty() {
            let (table, column) = names;
            return Err(SqlError::MissingColumnList { table, column });
        }
        let SetExpr::Values(values) = source.body.as_ref() else {
            return Err(SqlError::unsupported(
                "internal error: INSERT rows neither from VALUES nor from a query",
            ));
        };
        let Some(position) = column_position(&insert.columns, &column)? else {
            let (table, column) = names;
            return Err(SqlError::MissingTenantKey { table, column });
        };
        let mut keys = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            keys.push(key(row_value(row, position)?, &names)?);
        }
        keys
    } else if insert.assignments.is_empty() {
        let (table, column) = names;
        return Err(SqlError::MissingColumnList { table, column });
    } else {
        let mut keys = Vec::new();
        for assignment in &insert.assignments {
            if tenant::assigns_column(std::slice::from_ref(assignment), &column) {
                keys.push(key(&assignment.value, &names)?);
            }
        }
        keys
    };
    let mut outcome = routed(kind, refs, (table, column, qualifier), keys, KeyRule::Rows)?;
    if let Outcome::Draft(draft) = &mut outcome {
        draft.ids = ids;
    }
    Ok(outcome)
}

/// The sharded table an INSERT ... SELECT writes, and its sharding column; refuses a
/// target that is not sharded (a write to an unsharded table reading sharded ones).
fn sharded_target(
    target: &TableName,
    refs: &References,
    schema: &dyn Schema,
) -> Result<ShardedTable, SqlError> {
    match schema.sharding_column(&target.name) {
        Some(column) => Ok(ShardedTable {
            name: Arc::clone(&target.name),
            column: Arc::from(column),
        }),
        None => match refs.sharded.first() {
            Some(read) => Err(read_only_in_subquery(&read.name)),
            None => Err(unsharded_write(refs)),
        },
    }
}

/// The error for a write to an unsharded table that reads sharded table `table`.
fn read_only_in_subquery(table: &str) -> SqlError {
    SqlError::unsupported(format!(
        "sharded table `{table}` is read only inside a subquery of a write to another table; not supported yet"
    ))
}

/// Each row's value for `column` of `table`, whose ids come from a sequence; refuses
/// an INSERT the generated ids could not be written into, and values that are neither
/// an id nor a request for one.
fn ids<'a>(
    insert: &'a Insert,
    table: &Arc<str>,
    column: Arc<str>,
) -> Result<DraftIds<'a>, SqlError> {
    let refuse = |reason| SqlError::SequenceInsert {
        table: table.to_string(),
        column: column.to_string(),
        reason,
    };
    let read = |expr: &'a Expr| {
        IdExpr::read(expr).ok_or_else(|| SqlError::BadSequenceValue {
            table: table.to_string(),
            column: column.to_string(),
            literal: expr.to_string(),
            reason: sequence::NOT_A_LITERAL,
        })
    };
    let (rows, form) = if let Some(source) = &insert.source {
        if insert.columns.is_empty() {
            return Err(refuse(shape::COLUMN_LIST));
        }
        let SetExpr::Values(values) = source.body.as_ref() else {
            return Err(refuse(shape::SELECT));
        };
        let position = column_position(&insert.columns, &column)?;
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            rows.push(match position {
                None => IdExpr::Generated,
                Some(position) => read(row_value(row, position)?)?,
            });
        }
        (rows, Form::Values)
    } else {
        let mut rows = Vec::new();
        for assignment in &insert.assignments {
            if tenant::assigns_column(std::slice::from_ref(assignment), &column) {
                rows.push(read(&assignment.value)?);
            }
        }
        // Without the column, or with NULL or DEFAULT, every such statement would need an
        // id; an INSERT ... SET has no row to write it into.
        if rows.is_empty() || rows.iter().any(|row| matches!(row, IdExpr::Generated)) {
            return Err(refuse(shape::SET));
        }
        (rows, Form::Set)
    };
    Ok(DraftIds {
        table: Arc::clone(table),
        column,
        rows,
        form,
    })
}

/// Value `position` of a VALUES row.
fn row_value(row: &[Expr], position: usize) -> Result<&Expr, SqlError> {
    row.get(position)
        .ok_or_else(|| SqlError::unsupported("a VALUES row has fewer values than the column list"))
}

/// Where `column` is in the column list; refuses it listed twice.
pub(crate) fn column_position(
    columns: &[ObjectName],
    column: &str,
) -> Result<Option<usize>, SqlError> {
    let names = |name: &ObjectName| matches!(name.0.last(), Some(ObjectNamePart::Identifier(ident)) if ident.value.eq_ignore_ascii_case(column));
    let mut found = columns
        .iter()
        .enumerate()
        .filter(|(_, name)| names(name))
        .map(|(at, _)| at);
    let first = found.next();
    if found.next().is_some() {
        return Err(SqlError::unsupported(format!(
            "column `{column}` is listed twice"
        )));
    }
    Ok(first)
}

/// The literal a row gives the sharding column; refuses an expression.
fn key<'a>(value: &'a Expr, (table, column): &(String, String)) -> Result<KeyExpr<'a>, SqlError> {
    tenant::literal(value).ok_or_else(|| SqlError::BadTenantLiteral {
        table: table.clone(),
        column: column.clone(),
        literal: value.to_string(),
        reason: "is not a literal: each row must give the tenant as a plain value",
    })
}
