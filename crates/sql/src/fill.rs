//! Writing generated ids into an INSERT: the proxy's answer to [`Route::NeedsIds`].
//!
//! Place in the data path: after the analysis said which rows need an id and the proxy
//! took that many from the sequence; the result goes through
//! [`Analyzer::analyze`](crate::Analyzer::analyze) again and routes like any INSERT.
//!
//! The statement is edited as text, at token boundaries, as the split of a multi-tenant
//! INSERT cuts rows (`analyze/split.rs`): the column (when absent) goes before the `)` of the column list, each id
//! before the `)` of its row or in place of the `NULL`, `DEFAULT` or `0` it replaces.
//! Everything else (strings with their escapes, comments, placeholders, `ON DUPLICATE
//! KEY UPDATE`) reaches the shard byte for byte; sqlparser's printer is not used, since
//! it loses escapes. The result is parsed again and must be the original statement with
//! exactly those values, or it is refused.
//!
//! [`Route::NeedsIds`]: crate::Route::NeedsIds

use std::ops::Range;

use sqlparser::ast::{
    Expr, Ident, Insert, ObjectName, ObjectNamePart, SetExpr, Statement, TableObject, Value,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token};

use crate::analyze::column_position;
use crate::error::SqlError;
use crate::position;
use crate::sequence::{IdExpr, shape};
use crate::tokens::Tokens;

/// `sql`, an INSERT or REPLACE with a column list and VALUES rows, with generated ids
/// written into `column`: each `(row, id)` of `ids` gives 0-based VALUES row `row` the
/// id `id`.
///
/// When `column` is not in the column list it is added at the end (as `` `column` ``),
/// and each row's id goes at the end of the row; then every row must have an id. When
/// it is in the list, each listed row's value there must ask for an id (`NULL`,
/// `DEFAULT` or a literal 0, see [`Route::NeedsIds`](crate::Route::NeedsIds)) and is
/// replaced; rows not listed keep theirs. A value the client gave is never overwritten:
/// asking for that is refused, as is a row listed twice or out of range.
///
/// Column names are compared ignoring case, as MySQL does.
pub fn fill_ids(sql: &str, column: &str, ids: &[(usize, u64)]) -> Result<String, SqlError> {
    let statement = parse_one(sql).ok_or_else(|| misuse("the text is not one INSERT statement"))?;
    let Statement::Insert(insert) = &statement else {
        return Err(misuse("the text is not one INSERT statement"));
    };
    let refuse = |reason| SqlError::SequenceInsert {
        table: table_of(insert),
        column: column.to_owned(),
        reason,
    };
    if insert.columns.is_empty() {
        return Err(refuse(shape::COLUMN_LIST));
    }
    let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|source| source.body.as_ref())
    else {
        return Err(refuse(shape::SELECT));
    };
    let width = insert.columns.len();
    if values.rows.iter().any(|row| row.content.len() != width) {
        return Err(misuse(
            "a VALUES row has not as many values as the column list has columns",
        ));
    }
    let position = column_position(&insert.columns, column)?;
    let assigned = assign(ids, values.rows.len(), position.is_none())?;
    let tokens = Tokens::new(sql)?;
    let rows = row_parens(sql, &tokens, insert)?;
    let mut edits: Vec<(Range<usize>, String)> = Vec::with_capacity(rows.len() + 1);
    match position {
        None => {
            let close = column_list_close(sql, &tokens, insert)?;
            let at = tokens.range(close).start;
            edits.push((at..at, format!(", {}", quote_identifier(column))));
            for (&(_, close), id) in rows.iter().zip(&assigned) {
                let at = tokens.range(close).start;
                let id = id.ok_or_else(|| misuse("a row has no id"))?;
                edits.push((at..at, format!(", {id}")));
            }
        }
        Some(position) => {
            for (row, (&(open, close), id)) in rows.iter().zip(&assigned).enumerate() {
                let Some(id) = id else { continue };
                let value = values
                    .rows
                    .get(row)
                    .and_then(|row| row.content.get(position));
                if value
                    .and_then(IdExpr::read)
                    .is_none_or(|value| value.generates() != Ok(true))
                {
                    return Err(misuse(format!(
                        "row {row} gives `{column}` a value of its own, which is never replaced"
                    )));
                }
                let item = item_tokens(&tokens, open, close, position)
                    .ok_or_else(|| misuse("a value is not where the parser put it"))?;
                edits.push((item, id.to_string()));
            }
        }
    }
    let filled = apply(sql, &mut edits)?;
    let expected = expected(insert, column, position, &assigned);
    match parse_one(&filled) {
        Some(Statement::Insert(got)) if got == expected => Ok(filled),
        _ => Err(misuse(
            "the ids could not be written into this INSERT exactly; give the ids explicitly",
        )),
    }
}

/// The id of each of `count` rows, from `(row, id)` pairs; every row needs one when
/// `every_row`.
fn assign(
    ids: &[(usize, u64)],
    count: usize,
    every_row: bool,
) -> Result<Vec<Option<u64>>, SqlError> {
    let mut assigned = vec![None; count];
    for &(row, id) in ids {
        let slot = assigned.get_mut(row).ok_or_else(|| {
            misuse(format!(
                "row {row} is not a row of the INSERT ({count} rows)"
            ))
        })?;
        if slot.replace(id).is_some() {
            return Err(misuse(format!("row {row} is given two ids")));
        }
    }
    if every_row && assigned.iter().any(Option::is_none) {
        return Err(misuse(
            "the column is added to the column list, so every row needs an id",
        ));
    }
    Ok(assigned)
}

/// The token indexes of each VALUES row's `(` and `)`.
fn row_parens(
    sql: &str,
    tokens: &Tokens,
    insert: &Insert,
) -> Result<Vec<(usize, usize)>, SqlError> {
    let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|source| source.body.as_ref())
    else {
        return Ok(Vec::new());
    };
    let locations: Vec<Location> = values
        .rows
        .iter()
        .flat_map(|row| {
            [
                row.opening_token.0.span.start,
                row.closing_token.0.span.start,
            ]
        })
        .collect();
    let offsets = position::offsets_of(sql, &locations);
    let token_at = |offset: Option<usize>, want: Token| {
        offset
            .and_then(|offset| tokens.starting_at(offset))
            .filter(|&at| tokens.token(at) == Some(&want))
    };
    offsets
        .chunks_exact(2)
        .map(|pair| match pair {
            [open, close] => token_at(*open, Token::LParen).zip(token_at(*close, Token::RParen)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| misuse("a VALUES row is not where the parser put it"))
}

/// The token index of the `)` closing the column list: the first solid token after the
/// last column's name.
fn column_list_close(sql: &str, tokens: &Tokens, insert: &Insert) -> Result<usize, SqlError> {
    let last = insert.columns.last().and_then(|name| match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => Some(ident.span.start),
        _ => None,
    });
    last.and_then(|start| position::offsets_of(sql, &[start]).pop().flatten())
        .and_then(|offset| tokens.starting_at(offset))
        .and_then(|at| tokens.next_solid(at))
        .filter(|&at| tokens.token(at) == Some(&Token::RParen))
        .ok_or_else(|| misuse("the column list is not where the parser put it"))
}

/// The bytes of value `position` of the row between tokens `open` and `close`: from its
/// first solid token to its last, commas counted outside nested brackets only.
fn item_tokens(
    tokens: &Tokens,
    open: usize,
    close: usize,
    position: usize,
) -> Option<Range<usize>> {
    let (mut depth, mut item) = (0usize, 0usize);
    let (mut first, mut last) = (None, None);
    for at in open + 1..close {
        let token = tokens.token(at)?;
        match token {
            Token::Comma if depth == 0 => {
                item += 1;
                continue;
            }
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.checked_sub(1)?,
            _ => {}
        }
        if item == position && !tokens.is_blank(at) {
            first.get_or_insert(at);
            last = Some(at);
        }
    }
    Some(tokens.span(first?, last?))
}

/// `sql` with each edit's bytes replaced by its text; edits must not overlap.
fn apply(sql: &str, edits: &mut [(Range<usize>, String)]) -> Result<String, SqlError> {
    edits.sort_by_key(|(range, _)| (range.start, range.end));
    let mut out =
        String::with_capacity(sql.len() + edits.iter().map(|(_, text)| text.len()).sum::<usize>());
    let mut copied = 0;
    for (range, text) in edits.iter() {
        let kept = sql
            .get(copied..range.start)
            .ok_or_else(|| misuse("two ids would overlap"))?;
        out.push_str(kept);
        out.push_str(text);
        copied = range.end;
    }
    out.push_str(sql.get(copied..).unwrap_or_default());
    Ok(out)
}

/// The original INSERT with the ids in, as the filled text must parse.
fn expected(insert: &Insert, column: &str, position: Option<usize>, ids: &[Option<u64>]) -> Insert {
    let mut expected = insert.clone();
    if position.is_none() {
        expected
            .columns
            .push(ObjectName(vec![ObjectNamePart::Identifier(
                Ident::with_quote('`', column),
            )]));
    }
    if let Some(SetExpr::Values(values)) =
        expected.source.as_mut().map(|source| source.body.as_mut())
    {
        for (row, id) in values.rows.iter_mut().zip(ids) {
            let Some(id) = id else { continue };
            let value = Expr::Value(Value::Number(id.to_string(), false).into());
            match position.and_then(|position| row.content.get_mut(position)) {
                Some(slot) => *slot = value,
                None => row.content.push(value),
            }
        }
    }
    expected
}

/// The one statement of `sql`, parsed as MySQL.
fn parse_one(sql: &str) -> Option<Statement> {
    let mut statements = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    match statements.len() {
        1 => statements.pop(),
        _ => None,
    }
}

/// The table an INSERT writes, as written.
fn table_of(insert: &Insert) -> String {
    match &insert.table {
        TableObject::TableName(name) => name.to_string(),
        other => other.to_string(),
    }
}

/// `` `name` ``, with backticks in it doubled.
fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A call that does not fit the statement (rows out of range, values of the client's
/// own), or a statement whose ids cannot be written in exactly.
fn misuse(reason: impl Into<String>) -> SqlError {
    SqlError::unsupported(format!("cannot fill in generated ids: {}", reason.into()))
}

#[cfg(test)]
mod tests;
