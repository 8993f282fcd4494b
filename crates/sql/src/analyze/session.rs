//! Statements that are not routed by a tenant: session state, transactions, SHOW, DDL.
//!
//! Their answers depend on their literals (`SET NAMES 'utf8'`), so they are never
//! cached. A `SET` or `SHOW` holding a subquery is refused: the proxy replays `SET`s on
//! shard connections, where a subquery would read other tenants' rows.

use sqlparser::ast::{
    ContextModifier, CreateIndex, Expr, ObjectName, ObjectNamePart, ObjectType, RenameTable, Set,
    Statement, Use,
};

use super::tables::{self, table_name};
use crate::Schema;
use crate::analysis::{Analysis, Route, SetAssignment, SetScope, StatementKind, TableName};
use crate::error::SqlError;

/// Classifies a statement other than SELECT, INSERT, UPDATE or DELETE.
pub(crate) fn classify(stmt: &Statement, schema: &dyn Schema) -> Result<Analysis, SqlError> {
    let (kind, route) = match stmt {
        Statement::Set(set) => {
            refuse_subqueries(stmt, schema, "SET")?;
            (set_kind(set), Route::None)
        }
        Statement::Use(target) => (use_kind(target), Route::None),
        Statement::StartTransaction {
            statements,
            exception,
            ..
        } if statements.is_empty() && exception.is_none() => (StatementKind::Begin, Route::None),
        Statement::Commit {
            chain: false,
            end: false,
            modifier: None,
        } => (StatementKind::Commit, Route::None),
        Statement::Rollback {
            chain: false,
            savepoint: None,
        } => (StatementKind::Rollback, Route::None),
        _ if is_show(stmt) => {
            refuse_subqueries(stmt, schema, "SHOW")?;
            (StatementKind::Show, Route::AnyShard)
        }
        _ => return ddl(stmt),
    };
    Ok(answer(kind, route, None))
}

/// An analysis of a statement that names no table.
pub(super) fn answer(kind: StatementKind, route: Route, table: Option<TableName>) -> Analysis {
    Analysis {
        kind,
        route,
        schema: table.as_ref().and_then(|table| table.schema.clone()),
        tables: table.into_iter().collect::<Vec<_>>().into(),
        calls_database: false,
        cached: false,
    }
}

/// Refuses `what` when it holds a subquery.
fn refuse_subqueries(stmt: &Statement, schema: &dyn Schema, what: &str) -> Result<(), SqlError> {
    if tables::collect(stmt, schema)?.queries > 0 {
        return Err(SqlError::unsupported(format!("{what} with a subquery")));
    }
    Ok(())
}

/// Whether `stmt` only describes the server or its schema.
fn is_show(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowProcessList { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
            | Statement::ExplainTable { .. }
    )
}

/// The kind of a `SET` statement.
fn set_kind(set: &Set) -> StatementKind {
    match set {
        Set::SetNames {
            charset_name,
            collation_name,
        } => StatementKind::SetNames {
            charset: charset_name.value.clone(),
            collation: collation_name.clone(),
        },
        Set::SetNamesDefault {} => StatementKind::SetNames {
            charset: "DEFAULT".into(),
            collation: None,
        },
        Set::SingleAssignment {
            scope,
            hivevar: false,
            variable,
            values,
        } => match values.as_slice() {
            [value] => StatementKind::Set(vec![assignment(*scope, variable, value)]),
            _ => StatementKind::Other,
        },
        Set::MultipleAssignments { assignments } => StatementKind::Set(
            assignments
                .iter()
                .map(|a| assignment(a.scope, &a.name, &a.value))
                .collect(),
        ),
        _ => StatementKind::Other,
    }
}

/// One `SET` assignment: scope from the `GLOBAL`/`SESSION` keyword or the `@@x.` prefix.
fn assignment(modifier: Option<ContextModifier>, name: &ObjectName, value: &Expr) -> SetAssignment {
    let keyword = match modifier {
        Some(ContextModifier::Global) => SetScope::Global,
        _ => SetScope::Session,
    };
    let parts: Vec<&str> = name.0.iter().map(part_text).collect();
    let (scope, name) = match parts.as_slice() {
        [system, rest @ ..] if system.starts_with("@@") => {
            let system = system.get(2..).unwrap_or_default();
            match rest {
                [] => (keyword, system.to_owned()),
                [variable]
                    if system.eq_ignore_ascii_case("global")
                        || system.eq_ignore_ascii_case("persist")
                        || system.eq_ignore_ascii_case("persist_only") =>
                {
                    (SetScope::Global, (*variable).to_owned())
                }
                [variable]
                    if system.eq_ignore_ascii_case("session")
                        || system.eq_ignore_ascii_case("local") =>
                {
                    (SetScope::Session, (*variable).to_owned())
                }
                _ => (keyword, format!("{system}.{}", rest.join("."))),
            }
        }
        [user] if user.starts_with('@') => {
            (SetScope::User, user.get(1..).unwrap_or_default().to_owned())
        }
        _ => (keyword, parts.join(".")),
    };
    SetAssignment {
        scope,
        name,
        value: value.to_string(),
    }
}

/// The text of one part of a name.
fn part_text(part: &ObjectNamePart) -> &str {
    match part {
        ObjectNamePart::Identifier(ident) => &ident.value,
        ObjectNamePart::Function(function) => &function.name.value,
    }
}

/// The kind of a `USE` statement.
fn use_kind(target: &Use) -> StatementKind {
    match target {
        Use::Object(name) | Use::Database(name) | Use::Schema(name) => match name.0.as_slice() {
            [part] => StatementKind::Use(part_text(part).to_owned()),
            _ => StatementKind::Other,
        },
        _ => StatementKind::Other,
    }
}

/// DDL on a table or index, and everything else as [`StatementKind::Other`].
fn ddl(stmt: &Statement) -> Result<Analysis, SqlError> {
    let name = match stmt {
        Statement::CreateTable(create) if create.query.is_some() => {
            return Err(SqlError::unsupported("CREATE TABLE ... SELECT"));
        }
        Statement::CreateTable(create) => Some(&create.name),
        Statement::AlterTable(alter) => Some(&alter.name),
        Statement::CreateIndex(CreateIndex { table_name, .. }) => Some(table_name),
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => names.first(),
        Statement::Drop {
            object_type: ObjectType::Index,
            table,
            ..
        } => table.as_ref(),
        Statement::Truncate(truncate) => truncate.table_names.first().map(|target| &target.name),
        Statement::RenameTable(renames) => {
            renames.first().map(|RenameTable { old_name, .. }| old_name)
        }
        _ => return Ok(answer(StatementKind::Other, Route::None, None)),
    };
    let table = name.map(table_name).transpose()?;
    let kind = StatementKind::Ddl {
        table: table.as_ref().map(|table| table.name.to_string()),
    };
    Ok(answer(kind, Route::None, table))
}
