//! Which tables a statement references, and which of them are sharded.
//!
//! Every relation anywhere in the AST is found with sqlparser's visitor (FROM, JOIN,
//! subqueries in any clause, CTEs, derived tables, INSERT targets), so a reference
//! cannot hide in a clause a hand-written walk forgot. The same walk notes the
//! expressions the analysis must know about: `DATABASE()`, `XOR`, nested queries.
//!
//! The "scope" of a statement is the tables of its own FROM (or UPDATE/DELETE target)
//! list: where the one sharded table of a single-table statement must be, so that the
//! statement's own WHERE clause restricts it. Statements reading sharded tables
//! elsewhere are checked by [`super::pinned`], whose walk is measured against the
//! complete list of sharded reads made here ([`References::sharded`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, Query, SetExpr, TableFactor,
    TableWithJoins, Visit, Visitor,
};

use crate::Schema;
use crate::analysis::TableName;
use crate::error::SqlError;

/// What the walk over a statement found.
#[derive(Debug, Default)]
pub(crate) struct References {
    /// Every table, first appearance first, without repeats.
    pub(crate) tables: Vec<TableName>,
    /// Each reference to a sharded table (repeats kept).
    pub(crate) sharded: Vec<ShardedTable>,
    /// A `DATABASE()` or `SCHEMA()` call.
    pub(crate) calls_database: bool,
    /// An `XOR` operator.
    pub(crate) has_xor: bool,
    /// A `:=` assignment to a user variable.
    pub(crate) has_assignment: bool,
    /// A query nested anywhere (subquery, derived table, CTE; for a SELECT, also itself).
    pub(crate) queries: usize,
}

/// Walks `node` (a statement) and looks each table up in `schema`.
pub(crate) fn collect<V: Visit>(node: &V, schema: &dyn Schema) -> Result<References, SqlError> {
    let mut collector = Collector {
        schema,
        found: References::default(),
    };
    match node.visit(&mut collector) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(collector.found),
    }
}

/// A reference to a sharded table.
#[derive(Debug, Clone)]
pub(crate) struct ShardedTable {
    /// The table name as written (without its schema).
    pub(crate) name: Arc<str>,
    /// Its sharding column, from the schema.
    pub(crate) column: Arc<str>,
}

impl References {
    /// The one sharded table referenced, if any; refuses several references.
    pub(crate) fn single_sharded(&self) -> Result<Option<ShardedTable>, SqlError> {
        let Some(first) = self.sharded.first() else {
            return Ok(None);
        };
        if self.sharded.iter().any(|table| table.name != first.name) {
            return Err(SqlError::unsupported(
                "joins and subqueries across sharded tables are not supported yet",
            ));
        }
        if self.sharded.len() > 1 {
            return Err(SqlError::unsupported(format!(
                "sharded table `{}` is referenced more than once (self-join or subquery); not supported yet",
                first.name
            )));
        }
        Ok(Some(first.clone()))
    }

    /// Refuses the operators that could make a tenant condition mean less than it
    /// reads: `XOR` (sqlparser binds it tighter than `=` and `AND`, MySQL looser, so
    /// the AST would show a tenant condition MySQL does not apply) and `:=` (a user
    /// variable may be assigned while MySQL scans other tenants' rows).
    pub(crate) fn refuse_unsafe_operators(&self) -> Result<(), SqlError> {
        if self.has_xor {
            return Err(SqlError::unsupported(
                "XOR in a statement on a sharded table; write it with AND, OR and NOT",
            ));
        }
        if self.has_assignment {
            return Err(SqlError::unsupported(
                "assigning a user variable with := in a statement on a sharded table",
            ));
        }
        Ok(())
    }
}

/// The visitor behind [`collect`].
struct Collector<'s> {
    /// Which tables are sharded.
    schema: &'s dyn Schema,
    /// What was found so far.
    found: References,
}

impl Visitor for Collector<'_> {
    type Break = SqlError;

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<SqlError> {
        match table_name(relation) {
            Ok(table) => {
                self.record(table);
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(error),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        match expr {
            Expr::Function(function) => {
                if let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice() {
                    let name = name.value.as_str();
                    if name.eq_ignore_ascii_case("DATABASE") || name.eq_ignore_ascii_case("SCHEMA")
                    {
                        self.found.calls_database = true;
                    }
                }
            }
            Expr::BinaryOp {
                op: BinaryOperator::Xor,
                ..
            } => self.found.has_xor = true,
            Expr::BinaryOp {
                op: BinaryOperator::Assignment,
                ..
            } => self.found.has_assignment = true,
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        self.found.queries += 1;
        // MySQL's `TABLE t` (alone or in a UNION) names a table without an ObjectName,
        // so the visitor does not report it as a relation.
        let mut pending = vec![query.body.as_ref()];
        while let Some(body) = pending.pop() {
            match body {
                SetExpr::SetOperation { left, right, .. } => {
                    pending.push(left);
                    pending.push(right);
                }
                SetExpr::Table(table) => {
                    let Some(name) = &table.table_name else {
                        return ControlFlow::Break(SqlError::unsupported(
                            "TABLE without a table name",
                        ));
                    };
                    self.record(TableName {
                        schema: table.schema_name.as_deref().map(Arc::from),
                        name: Arc::from(name.as_str()),
                    });
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

impl Collector<'_> {
    /// Records one table reference.
    fn record(&mut self, table: TableName) {
        // information_schema views describe the server the statement runs on; they are never sharded data.
        let system = table
            .schema
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("information_schema"));
        let column = if system {
            None
        } else {
            self.schema.sharding_column(&table.name)
        };
        if let Some(column) = column {
            self.found.sharded.push(ShardedTable {
                name: Arc::clone(&table.name),
                column: Arc::from(column),
            });
        }
        if !self.found.tables.contains(&table) {
            self.found.tables.push(table);
        }
    }
}

/// `table` or `schema.table`; refuses longer names and computed parts.
pub(crate) fn table_name(name: &ObjectName) -> Result<TableName, SqlError> {
    let ident = |part: &ObjectNamePart| match part {
        ObjectNamePart::Identifier(ident) => Ok(Arc::<str>::from(ident.value.as_str())),
        ObjectNamePart::Function(_) => Err(SqlError::unsupported(format!("table name {name}"))),
    };
    match name.0.as_slice() {
        [table] => Ok(TableName {
            schema: None,
            name: ident(table)?,
        }),
        [schema, table] => Ok(TableName {
            schema: Some(ident(schema)?),
            name: ident(table)?,
        }),
        _ => Err(SqlError::unsupported(format!(
            "table name {name} has more than two parts"
        ))),
    }
}

/// A table of a statement's own FROM (or target) list.
#[derive(Debug)]
pub(crate) struct ScopeTable<'a> {
    /// Its name as written.
    pub(crate) name: TableName,
    /// Its alias, if any.
    pub(crate) alias: Option<&'a Ident>,
}

/// The tables and visible names of a statement's own FROM list.
#[derive(Debug, Default)]
pub(crate) struct Scope<'a> {
    /// Tables named directly (not in derived tables).
    pub(crate) tables: Vec<ScopeTable<'a>>,
    /// The name each FROM item is known by (alias, or table name).
    pub(crate) visible: Vec<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a FROM list.
    pub(crate) fn of(from: &'a [TableWithJoins]) -> Result<Self, SqlError> {
        let mut scope = Self::default();
        let mut pending: Vec<&'a TableWithJoins> = from.iter().rev().collect();
        while let Some(item) = pending.pop() {
            for factor in
                std::iter::once(&item.relation).chain(item.joins.iter().map(|join| &join.relation))
            {
                if let TableFactor::NestedJoin {
                    table_with_joins,
                    alias,
                } = factor
                {
                    scope
                        .visible
                        .extend(alias.as_ref().map(|alias| alias.name.value.as_str()));
                    pending.push(table_with_joins);
                } else {
                    scope.add(factor)?;
                }
            }
        }
        Ok(scope)
    }

    /// Adds one FROM item other than a nested join.
    fn add(&mut self, factor: &'a TableFactor) -> Result<(), SqlError> {
        let alias = match factor {
            TableFactor::Table { name, alias, .. } => {
                let alias = alias.as_ref().map(|alias| &alias.name);
                let table = ScopeTable {
                    name: table_name(name)?,
                    alias,
                };
                let shown = match (alias, name.0.last()) {
                    (Some(alias), _) => Some(alias.value.as_str()),
                    (None, Some(ObjectNamePart::Identifier(last))) => Some(last.value.as_str()),
                    (None, _) => None,
                };
                self.visible.extend(shown);
                self.tables.push(table);
                return Ok(());
            }
            TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::JsonTable { alias, .. } => alias.as_ref(),
            _ => None,
        };
        self.visible
            .extend(alias.map(|alias| alias.name.value.as_str()));
        Ok(())
    }

    /// The entry for sharded table `name`, which must be in this scope.
    pub(crate) fn find(&self, name: &str) -> Result<&ScopeTable<'a>, SqlError> {
        self.tables.iter().find(|table| &*table.name.name == name).ok_or_else(|| {
            SqlError::unsupported(format!(
                "sharded table `{name}` is read only inside a subquery, derived table, CTE or UNION; not supported yet"
            ))
        })
    }
}
