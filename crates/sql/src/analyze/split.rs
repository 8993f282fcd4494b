//! An INSERT whose VALUES rows belong to several tenants, split into one INSERT per
//! tenant.
//!
//! Each part is the original text with the rows list replaced by that tenant's rows,
//! cut at the exact parenthesis tokens sqlparser records for each row: the modifiers,
//! the column list and anything after the rows (`ON DUPLICATE KEY UPDATE ...`) are
//! kept byte for byte. Every part is parsed again and must equal the original
//! statement with only those rows, or the split is refused.
//!
//! Never cached: the parts copy the statement's literals. The plan of the shape is
//! cached as usual (single-tenant statements of the same shape stay on the fast path);
//! a statement whose rows turn out to name several tenants is parsed again here.

use std::collections::HashMap;

use sqlparser::ast::{Expr, Insert, Parens, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use crate::analysis::{InsertPart, TenantKey};
use crate::error::SqlError;
use crate::position;

/// The per-tenant parts of `statement` (whose text is `sql`), row `i` belonging to
/// `row_keys[i]`; `None` when it is not an INSERT with one VALUES row per key.
pub(crate) fn parts(
    sql: &str,
    statement: &Statement,
    row_keys: &[TenantKey],
) -> Result<Option<Vec<InsertPart>>, SqlError> {
    let Statement::Insert(insert) = statement else {
        return Ok(None);
    };
    let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|source| source.body.as_ref())
    else {
        return Ok(None);
    };
    if values.explicit_row || values.rows.len() != row_keys.len() || values.rows.is_empty() {
        return Ok(None);
    }
    let locations: Vec<Location> = values
        .rows
        .iter()
        .flat_map(|row| [row.opening_token.0.span.start, row.closing_token.0.span.end])
        .collect();
    let offsets = position::offsets_of(sql, &locations);
    let mut rows = Vec::with_capacity(values.rows.len());
    for pair in offsets.chunks_exact(2) {
        match pair {
            [Some(start), Some(end)] if start < end => rows.push(*start..*end),
            _ => return Err(unsplittable()),
        }
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    let (head, tail) = (
        sql.get(..first.start).ok_or_else(unsplittable)?,
        sql.get(last.end..).ok_or_else(unsplittable)?,
    );
    // Tenants in order of their first row; each with its rows in order.
    let mut order: Vec<(&TenantKey, Vec<usize>)> = Vec::new();
    let mut seen: HashMap<&TenantKey, usize> = HashMap::new();
    for (row, key) in row_keys.iter().enumerate() {
        let at = *seen.entry(key).or_insert_with(|| {
            order.push((key, Vec::new()));
            order.len() - 1
        });
        if let Some((_, rows)) = order.get_mut(at) {
            rows.push(row);
        }
    }
    // The statement without its rows, to compare each part's shape with.
    let mut shape = insert.clone();
    if let Some(rows) = values_mut(&mut shape) {
        rows.clear();
    }
    let mut parts = Vec::with_capacity(order.len());
    for (key, mine) in order {
        let texts: Option<Vec<&str>> = mine
            .iter()
            .map(|&row| rows.get(row).and_then(|range| sql.get(range.clone())))
            .collect();
        let text = format!("{head}{}{tail}", texts.ok_or_else(unsplittable)?.join(", "));
        let mut reparsed = Parser::parse_sql(&MySqlDialect {}, &text).unwrap_or_default();
        let exact = match reparsed.as_mut_slice() {
            [Statement::Insert(got)] => {
                let got_rows = values_mut(got).map(std::mem::take).unwrap_or_default();
                let same_rows = got_rows.len() == mine.len()
                    && got_rows
                        .iter()
                        .zip(&mine)
                        .all(|(got, &row)| values.rows.get(row) == Some(got));
                same_rows && *got == shape
            }
            _ => false,
        };
        if !exact {
            return Err(unsplittable());
        }
        parts.push(InsertPart {
            key: key.clone(),
            sql: text,
        });
    }
    Ok(Some(parts))
}

/// The VALUES rows of an INSERT, if it has them.
fn values_mut(insert: &mut Insert) -> Option<&mut Vec<Parens<Vec<Expr>>>> {
    match insert.source.as_mut().map(|source| source.body.as_mut()) {
        Some(SetExpr::Values(values)) => Some(&mut values.rows),
        _ => None,
    }
}

/// The refusal when the rows cannot be cut out of the text exactly.
fn unsplittable() -> SqlError {
    SqlError::unsupported(
        "shardgate could not split this INSERT's rows by tenant; insert each tenant's rows separately",
    )
}
