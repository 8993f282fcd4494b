//! Why a statement was refused.
//!
//! Every variant states a fact about the statement, never a guess about what the
//! client meant. The `Display` text is what a MySQL client sees, so it names the table
//! and column involved; the proxy picks the MySQL error code and SQLSTATE for each
//! variant in its own error module (this crate knows nothing of the wire).

use sqlparser::parser::ParserError;

use crate::position;

/// How many characters of the statement a syntax error quotes, as MySQL does (`%.80s`).
const NEAR_CHARS: usize = 80;

/// A statement this crate refuses to analyse or route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid SQL (from the lexer or from sqlparser).
    #[error(
        "You have an error in your SQL syntax; {message}; check the syntax near '{near}' at line {line}"
    )]
    Parse {
        /// What the lexer or parser expected or found.
        message: String,
        /// Up to 80 characters of the statement, from where the error was found.
        near: String,
        /// 1-based line of the error.
        line: u64,
        /// 1-based column (in characters) of the error.
        column: u64,
    },
    /// A statement on a sharded table does not name its tenant.
    #[error(
        "statement on sharded table `{table}` does not name a tenant: add `{column} = <value>` as a top-level AND condition of its WHERE clause"
    )]
    MissingTenantKey {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
    },
    /// An INSERT names rows of more than one tenant.
    #[error(
        "INSERT into sharded table `{table}` writes rows for more than one tenant (`{column}` differs between rows); insert each tenant's rows separately"
    )]
    MultipleTenants {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
    },
    /// Two top-level conditions name different tenants.
    #[error(
        "statement on sharded table `{table}` names two different tenants in `{column}` conditions"
    )]
    ConflictingTenants {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
    },
    /// An UPDATE (or ON DUPLICATE KEY UPDATE) assigns the sharding column.
    #[error(
        "cannot change sharding column `{column}` of table `{table}`: moving a row to another tenant is not supported"
    )]
    ShardingColumnUpdate {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
    },
    /// An INSERT into a sharded table has no column list.
    #[error(
        "INSERT into sharded table `{table}` must list its columns, including sharding column `{column}`"
    )]
    MissingColumnList {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
    },
    /// The tenant value is not a literal a tenant id can be read from.
    #[error("value {literal} for sharding column `{column}` of table `{table}` {reason}")]
    BadTenantLiteral {
        /// The sharded table.
        table: String,
        /// Its sharding column.
        column: String,
        /// The value as written in the statement.
        literal: String,
        /// Why it is not a tenant id, e.g. "is not an integer".
        reason: &'static str,
    },
    /// An INSERT into a table whose ids come from a sequence has a shape the generated
    /// ids cannot be written into.
    #[error("INSERT into table `{table}`, whose `{column}` values come from a sequence, {reason}")]
    SequenceInsert {
        /// The sharded table.
        table: String,
        /// Its sequence column.
        column: String,
        /// What is wrong, e.g. "must list its columns …".
        reason: &'static str,
    },
    /// The value an INSERT row gives a sequence column is neither an id nor a request
    /// for one.
    #[error("value {literal} for sequence column `{column}` of table `{table}` {reason}")]
    BadSequenceValue {
        /// The sharded table.
        table: String,
        /// Its sequence column.
        column: String,
        /// The value as written in the statement.
        literal: String,
        /// Why it is refused, e.g. "is not an integer".
        reason: &'static str,
    },
    /// Valid SQL that shardgate cannot route safely (yet).
    #[error("shardgate does not support this statement: {reason}")]
    Unsupported {
        /// What is not supported, in words a client can act on.
        reason: String,
    },
    /// The query holds no statement (only whitespace, comments or `;`).
    #[error("Query was empty")]
    Empty,
}

impl SqlError {
    /// Builds [`SqlError::Unsupported`].
    pub(crate) fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported {
            reason: reason.into(),
        }
    }

    /// Builds a [`SqlError::Parse`] located at byte `offset` of `sql`.
    pub(crate) fn parse_at(sql: &str, offset: usize, message: impl Into<String>) -> Self {
        let location = position::location_of(sql, offset);
        Self::Parse {
            message: message.into(),
            near: near(sql, offset),
            line: location.line,
            column: location.column,
        }
    }

    /// Converts a sqlparser error, whose message ends in " at Line: L, Column: C"
    /// when it knows where the error is.
    pub(crate) fn from_parser(sql: &str, error: &ParserError) -> Self {
        let text = match error {
            ParserError::TokenizerError(text) | ParserError::ParserError(text) => text.as_str(),
            ParserError::RecursionLimitExceeded => {
                return Self::unsupported(
                    "the statement nests subqueries or parentheses too deeply",
                );
            }
        };
        let (message, offset) = match text.rsplit_once(" at Line: ") {
            Some((message, place)) => (message, located(sql, place)),
            None => (text, None),
        };
        Self::parse_at(sql, offset.unwrap_or(sql.len()), message)
    }

    /// Whether running the same statement again could succeed. Never: analysis is a
    /// pure function of the text and the schema.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Reads "L, Column: C" into a byte offset of `sql`.
fn located(sql: &str, place: &str) -> Option<usize> {
    let (line, column) = place.split_once(", Column: ")?;
    let location = sqlparser::tokenizer::Location {
        line: line.trim().parse().ok()?,
        column: column.trim().parse().ok()?,
    };
    position::offset_of(sql, location)
}

/// The text MySQL quotes after "near": the rest of the statement, cut to 80 characters.
fn near(sql: &str, offset: usize) -> String {
    sql.get(offset..)
        .unwrap_or("")
        .chars()
        .take(NEAR_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_location_becomes_line_and_column() {
        let sql = "SELECT 1\nFROM t WHERE";
        let error = ParserError::ParserError(
            "Expected: an expression, found: EOF at Line: 2, Column: 8".into(),
        );
        let SqlError::Parse {
            message,
            near,
            line,
            column,
        } = SqlError::from_parser(sql, &error)
        else {
            panic!("not a parse error");
        };
        assert_eq!(message, "Expected: an expression, found: EOF");
        assert_eq!((line, column), (2, 8));
        assert_eq!(near, "WHERE");
    }

    #[test]
    fn parse_error_display_reads_like_mysql() {
        let error = SqlError::parse_at("SELEC 1", 0, "Expected: an SQL statement, found: SELEC");
        assert_eq!(
            error.to_string(),
            "You have an error in your SQL syntax; Expected: an SQL statement, found: SELEC; \
             check the syntax near 'SELEC 1' at line 1"
        );
    }

    #[test]
    fn near_text_is_cut_to_eighty_characters() {
        let sql = format!("SELECT {}", "x".repeat(200));
        let SqlError::Parse { near, .. } = SqlError::parse_at(&sql, 0, "m") else {
            panic!("not a parse error");
        };
        assert_eq!(near.chars().count(), 80);
    }
}
