//! Finding the tenant in a WHERE clause.
//!
//! Only a condition MySQL applies to every row counts: `col = <literal>` or
//! `<literal> = col` as a top-level AND conjunct (parentheses around it are fine).
//! Under OR, NOT or XOR, inside a function, or in an ON clause it restricts nothing
//! for sure, so it is ignored. The walk is iterative: `a AND b AND ...` is a left-deep
//! tree as long as the statement.
//!
//! Without such a conjunct, a top-level conjunct may still limit the rows to a *set* of
//! tenants ([`Target::where_key_set`]): `col IN (<literal>, ...)`, or an OR whose every
//! branch limits them (`col = 1 OR col = 2`, `(col = 1 AND x) OR col IN (2, 3)`). A row
//! for which the WHERE clause is true satisfies that conjunct, so its tenant is in the
//! set: running the statement on those tenants' shards only loses no row.

use sqlparser::ast::{
    Assignment, AssignmentTarget, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart,
    UnaryOperator, ValueWithSpan,
};

use super::tables::{Scope, ScopeTable};

/// A literal naming the tenant, as the AST holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyExpr<'a> {
    /// The literal.
    pub(crate) value: &'a ValueWithSpan,
    /// Written after a unary `-`.
    pub(crate) negated: bool,
}

/// The sharding column of the routed table, and how the statement can name it.
#[derive(Debug)]
pub(crate) struct Target<'s, 'a> {
    /// The routed table.
    pub(crate) table: &'s ScopeTable<'a>,
    /// Its sharding column.
    pub(crate) column: &'s str,
    /// Names of the statement's FROM items, to tell the table's qualifier apart.
    pub(crate) scope: &'s Scope<'a>,
}

impl Target<'_, '_> {
    /// Whether `expr` is the sharding column of the routed table.
    fn is_column(&self, expr: &Expr) -> bool {
        match unnest(expr) {
            Expr::Identifier(column) => self.names_column(column),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [qualifier, column] => self.names_column(column) && self.is_qualifier(qualifier),
                [schema, table, column] => {
                    self.names_column(column)
                        && self.table.alias.is_none()
                        && *self.table.name.name == *table.value
                        && self.table.name.schema.as_deref() == Some(schema.value.as_str())
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `ident` is the sharding column (column names ignore case in MySQL).
    fn names_column(&self, ident: &Ident) -> bool {
        ident.value.eq_ignore_ascii_case(self.column)
    }

    /// Whether `qualifier` names the routed table, and no other FROM item.
    fn is_qualifier(&self, qualifier: &Ident) -> bool {
        let own = self
            .table
            .alias
            .map_or(&*self.table.name.name, |alias| alias.value.as_str());
        let matching = |name: &&&str| name.eq_ignore_ascii_case(&qualifier.value);
        own.eq_ignore_ascii_case(&qualifier.value)
            && self.scope.visible.iter().filter(matching).count() == 1
    }

    /// The tenant literals of the top-level conjuncts of `selection`.
    pub(crate) fn where_keys<'e>(&self, selection: Option<&'e Expr>) -> Vec<KeyExpr<'e>> {
        let mut keys = Vec::new();
        let mut pending: Vec<&'e Expr> = selection.into_iter().collect();
        while let Some(expr) = pending.pop() {
            match expr {
                Expr::Nested(inner) => pending.push(inner),
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::And,
                    right,
                } => {
                    pending.push(right);
                    pending.push(left);
                }
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } => {
                    let key = if self.is_column(left) {
                        literal(right)
                    } else if self.is_column(right) {
                        literal(left)
                    } else {
                        None
                    };
                    keys.extend(key);
                }
                _ => {}
            }
        }
        keys
    }

    /// The tenants of the first top-level conjunct of `selection` that limits the
    /// sharding column to a set of literals (with repeats, in written order).
    pub(crate) fn where_key_set<'e>(
        &self,
        selection: Option<&'e Expr>,
    ) -> Option<Vec<KeyExpr<'e>>> {
        chain(selection?, &BinaryOperator::And)
            .into_iter()
            .find_map(|conjunct| self.key_set(conjunct, 0))
    }

    /// The tenants a row must have for `expr` to be true of it, if they are a set of
    /// literals.
    fn key_set<'e>(&self, expr: &'e Expr, depth: usize) -> Option<Vec<KeyExpr<'e>>> {
        // Each level of AND-inside-OR needs parentheses, which the lexer bounds; this
        // bound is lower still, and giving up only widens the route to every shard.
        if depth > MAX_KEY_SET_DEPTH {
            return None;
        }
        match unnest(expr) {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                let key = if self.is_column(left) {
                    literal(right)
                } else if self.is_column(right) {
                    literal(left)
                } else {
                    None
                };
                key.map(|key| vec![key])
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } if self.is_column(expr) => list.iter().map(literal).collect(),
            and @ Expr::BinaryOp {
                op: BinaryOperator::And,
                ..
            } => chain(and, &BinaryOperator::And)
                .into_iter()
                .find_map(|conjunct| self.key_set(conjunct, depth + 1)),
            or @ Expr::BinaryOp {
                op: BinaryOperator::Or,
                ..
            } => {
                let mut keys = Vec::new();
                for disjunct in chain(or, &BinaryOperator::Or) {
                    keys.extend(self.key_set(disjunct, depth + 1)?);
                }
                Some(keys)
            }
            _ => None,
        }
    }
}

/// How many levels of AND inside OR inside AND a tenant set is looked for in.
const MAX_KEY_SET_DEPTH: usize = 16;

/// The operands of a chain of `op` (`a OR b OR c`), through parentheses, in written
/// order; iterative, since a chain is a left-deep tree as long as the statement.
pub(crate) fn chain<'e>(expr: &'e Expr, op: &BinaryOperator) -> Vec<&'e Expr> {
    let mut operands = Vec::new();
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Nested(inner) => pending.push(inner),
            Expr::BinaryOp {
                left,
                op: this,
                right,
            } if this == op => {
                pending.push(right);
                pending.push(left);
            }
            operand => operands.push(operand),
        }
    }
    operands
}

/// The literal `expr` is: `5`, `-5`, `+5`, `(5)`, `'a'`, `_utf8mb4'a'`, `?`.
pub(crate) fn literal(expr: &Expr) -> Option<KeyExpr<'_>> {
    let mut negated = false;
    let mut signs = 0;
    let mut expr = unnest(expr);
    loop {
        match expr {
            Expr::Value(value) => return Some(KeyExpr { value, negated }),
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr: inner,
            } if signs == 0 => {
                negated = *op == UnaryOperator::Minus;
                signs += 1;
                expr = unnest(inner);
            }
            Expr::Prefixed { prefix, value } if prefix.value.starts_with('_') && !negated => {
                expr = value.as_ref();
                signs += 1;
            }
            _ => return None,
        }
    }
}

/// `expr` without the parentheses around it.
pub(crate) fn unnest(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) = expr {
        expr = inner;
    }
    expr
}

/// Whether any assignment writes `column` (whatever qualifier it is written with).
pub(crate) fn assigns_column(assignments: &[Assignment], column: &str) -> bool {
    let names = |name: &ObjectName| matches!(name.0.last(), Some(ObjectNamePart::Identifier(ident)) if ident.value.eq_ignore_ascii_case(column));
    assignments
        .iter()
        .any(|assignment| match &assignment.target {
            AssignmentTarget::ColumnName(name) => names(name),
            AssignmentTarget::Tuple(names_) => names_.iter().any(names),
        })
}
