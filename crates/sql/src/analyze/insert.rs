//! INSERT and REPLACE: the tenant is the sharding column of every row. (Into a
//! reference table: on every shard, see [`super::reference`].)
//!
//! `VALUES (...), (...)` needs an explicit column list naming the sharding column, and
//! a plain literal (or `?`) for it in every row; `INSERT ... SET col = val` needs the
//! assignment. All rows must name the same tenant (checked when the plan is bound,
//! since it depends on the literals). `INSERT ... SELECT` is refused for now, and
//! `ON DUPLICATE KEY UPDATE` may not move the row to another tenant.

use sqlparser::ast::{
    Expr, Insert, ObjectName, ObjectNamePart, OnInsert, SetExpr, Statement, TableObject,
};

use super::reference::{self, Written};
use super::tables::{self, ShardedTable, table_name};
use super::tenant::{self, KeyExpr};
use super::{Outcome, routed, unsharded_write};
use crate::Schema;
use crate::analysis::StatementKind;
use crate::error::SqlError;
use crate::plan::KeyRule;

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
    let refs = match reference::write(kind.clone(), stmt, refs, Some(&target), false, schema)? {
        Written::Reference(outcome) => return Ok(outcome),
        Written::Sharded(refs) => refs,
    };
    let ShardedTable {
        name: table,
        column,
    } = refs
        .single_sharded()?
        .ok_or_else(|| unsharded_write(&refs))?;
    if target.name != table {
        return Err(SqlError::unsupported(format!(
            "sharded table `{table}` is read only inside a subquery of a write to another table; not supported yet"
        )));
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
    let keys = if let Some(source) = &insert.source {
        if insert.columns.is_empty() {
            let (table, column) = names;
            return Err(SqlError::MissingColumnList { table, column });
        }
        let SetExpr::Values(values) = source.body.as_ref() else {
            return Err(SqlError::unsupported(
                "INSERT ... SELECT into a sharded table is not supported yet",
            ));
        };
        let Some(position) = column_position(&insert.columns, &column)? else {
            let (table, column) = names;
            return Err(SqlError::MissingTenantKey { table, column });
        };
        let mut keys = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            let value = row.get(position).ok_or_else(|| {
                SqlError::unsupported("a VALUES row has fewer values than the column list")
            })?;
            keys.push(key(value, &names)?);
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
    let qualifier = target.schema.clone();
    routed(kind, refs, (table, column, qualifier), keys, KeyRule::Rows)
}

/// Where `column` is in the column list; refuses it listed twice.
fn column_position(columns: &[ObjectName], column: &str) -> Result<Option<usize>, SqlError> {
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
