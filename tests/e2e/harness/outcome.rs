//! What a client saw of one statement, captured in one comparable shape whichever client ran it: mysql_async
//! (which asks for `CLIENT_DEPRECATE_EOF`) or the raw client (which does not, so the proxy translates result
//! sets to classic EOF framing). Differential tests run the same statement through the proxy and on a plain
//! MariaDB server and compare the two outcomes whole.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::raw::{DetailedReply, RawColumn, RawConn};

/// A column as a client sees it, without the schema (which names a shard database behind the proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShape {
    /// Column name or alias.
    pub name: String,
    /// Real column name (empty for an expression).
    pub org_name: String,
    /// Table name or alias (empty for an expression).
    pub table: String,
    /// Wire type code.
    pub column_type: u8,
    /// Column flags (NOT NULL, UNSIGNED, BINARY, …).
    pub flags: u16,
    /// Character set (collation id) of the values.
    pub charset: u16,
    /// Maximum display length.
    pub length: u32,
    /// Decimals.
    pub decimals: u8,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The statement succeeded without rows (an OK packet).
    Done {
        /// Affected rows.
        affected_rows: u64,
        /// Last insert id (0 if none).
        last_insert_id: u64,
        /// Warning count.
        warnings: u16,
        /// Info text.
        info: String,
    },
    /// A result set: columns and rows, cells as bytes, `None` for NULL.
    Rows {
        /// The columns.
        columns: Vec<ColumnShape>,
        /// The rows in the order received.
        rows: Vec<Vec<Option<Vec<u8>>>>,
    },
    /// An error from the server.
    Failed {
        /// MySQL error code.
        code: u16,
        /// SQLSTATE.
        state: String,
        /// Message.
        message: String,
    },
}

impl Outcome {
    /// The rows of a result set; fails the test for any other outcome.
    pub fn rows(&self, what: &str) -> &[Vec<Option<Vec<u8>>>] {
        match self {
            Outcome::Rows { rows, .. } => rows,
            other => panic!("{what}: expected a result set, got {other:?}"),
        }
    }

    /// The error code of a failure; fails the test for any other outcome.
    pub fn code(&self, what: &str) -> u16 {
        match self {
            Outcome::Failed { code, .. } => *code,
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }

    /// The same outcome with rows sorted, for statements whose row order SQL leaves open.
    pub fn sorted(mut self) -> Outcome {
        if let Outcome::Rows { rows, .. } = &mut self {
            rows.sort();
        }
        self
    }

    /// The same outcome with every occurrence of `from` in an error message replaced by `to`: MariaDB names the
    /// database in some messages (``Table 'app_003.t' doesn't exist``), which differs by design behind the proxy.
    pub fn with_message_replaced(mut self, from: &str, to: &str) -> Outcome {
        if let Outcome::Failed { message, .. } = &mut self {
            *message = message.replace(from, to);
        }
        self
    }
}

/// Runs `sql` on a mysql_async connection (text protocol) and captures the outcome.
pub async fn via_mysql_async(conn: &mut Conn, sql: &str) -> Outcome {
    let mut result = match conn.query_iter(sql).await {
        Ok(result) => result,
        Err(e) => return failure(e, sql),
    };
    let columns: Vec<ColumnShape> = result
        .columns_ref()
        .iter()
        .map(|c| ColumnShape {
            name: c.name_str().into_owned(),
            org_name: c.org_name_str().into_owned(),
            table: c.table_str().into_owned(),
            column_type: c.column_type() as u8,
            flags: c.flags().bits(),
            charset: c.character_set(),
            length: c.column_length(),
            decimals: c.decimals(),
        })
        .collect();
    if columns.is_empty() {
        let outcome = Outcome::Done {
            affected_rows: result.affected_rows(),
            last_insert_id: result.last_insert_id().unwrap_or(0),
            warnings: result.warnings(),
            info: result.info().into_owned(),
        };
        result
            .drop_result()
            .await
            .unwrap_or_else(|e| panic!("`{sql}`: cannot finish an OK reply: {e}"));
        return outcome;
    }
    let rows: Vec<mysql_async::Row> = match result.collect().await {
        Ok(rows) => rows,
        Err(e) => return failure(e, sql),
    };
    assert!(
        result.is_empty(),
        "`{sql}`: more than one result set (the tests never send multi-statements)"
    );
    let rows = rows
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|value| match value {
                    Value::NULL => None,
                    Value::Bytes(bytes) => Some(bytes),
                    other => panic!("`{sql}`: a text-protocol cell decoded as {other:?}"),
                })
                .collect()
        })
        .collect();
    Outcome::Rows { columns, rows }
}

/// A server error as an outcome; any other error fails the test.
fn failure(error: mysql_async::Error, sql: &str) -> Outcome {
    match error {
        mysql_async::Error::Server(e) => Outcome::Failed {
            code: e.code,
            state: e.state,
            message: e.message,
        },
        other => panic!("`{sql}`: client-side error instead of a server reply: {other:?}"),
    }
}

/// Runs `sql` on a raw connection (classic EOF framing) and captures the outcome.
pub async fn via_raw(conn: &mut RawConn, sql: &str) -> Outcome {
    match conn.query_detailed(sql.as_bytes()).await {
        DetailedReply::Ok {
            affected_rows,
            last_insert_id,
            warnings,
            info,
        } => Outcome::Done {
            affected_rows,
            last_insert_id,
            warnings,
            info: String::from_utf8_lossy(&info).into_owned(),
        },
        DetailedReply::Err(e) => Outcome::Failed {
            code: e.code,
            state: e.state,
            message: e.message,
        },
        DetailedReply::Rows { columns, rows } => Outcome::Rows {
            columns: columns.iter().map(column_shape).collect(),
            rows,
        },
    }
}

/// Decodes the fixed part of a raw column definition: `0x0c`, charset (2), length (4), type, flags (2), decimals.
fn column_shape(column: &RawColumn) -> ColumnShape {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let f = &column.fixed;
    assert!(
        f.len() >= 10 && f[0] == 0x0c,
        "malformed fixed part of a column definition: {f:?}"
    );
    ColumnShape {
        name: text(&column.name),
        org_name: text(&column.org_name),
        table: text(&column.table),
        charset: u16::from_le_bytes([f[1], f[2]]),
        length: u32::from_le_bytes([f[3], f[4], f[5], f[6]]),
        column_type: f[7],
        flags: u16::from_le_bytes([f[8], f[9]]),
        decimals: f.get(10).copied().unwrap_or(0),
    }
}
