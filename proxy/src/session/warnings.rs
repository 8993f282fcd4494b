//! `SHOW WARNINGS` and `SHOW COUNT(*) WARNINGS`: warnings live on the backend connection that ran a statement,
//! which goes back to the pool right after. So when a reply reports warnings, the proxy reads them on that same
//! connection before releasing it (one more round trip, only then), and keeps them with the session until its next
//! statement; errors the client got are kept the same way, as MySQL lists them too.

use shardgate_wire::WireError;
use shardgate_wire::response::{TYPE_VAR_STRING, put_text_result_set};
use tracing::debug;

use super::Session;
use crate::backend::BackendConn;

/// A row of a result set the proxy builds: one cell per column, `None` for NULL.
type TextRow = Vec<Option<Vec<u8>>>;

/// MariaDB types `SHOW WARNINGS`' Code column INT.
const TYPE_LONG: u8 = 0x03;

/// One row of `SHOW WARNINGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Warning {
    pub level: String,
    pub code: u16,
    pub message: String,
}

impl Warning {
    pub(super) fn error(code: u16, message: &str) -> Self {
        Warning {
            level: "Error".to_string(),
            code,
            message: message.to_string(),
        }
    }

    pub(super) fn is_error(&self) -> bool {
        self.level == "Error"
    }
}

impl Session {
    /// Reads the warnings a statement just left on `conn` (the reply said there were `count`).
    /// Returns false when the connection broke (or timed out) while being asked: it must not be used again.
    pub(super) async fn collect_warnings(&mut self, conn: &mut BackendConn, count: u16) -> bool {
        if count == 0 {
            return true;
        }
        match conn.query_rows("SHOW WARNINGS").await {
            Ok(rows) => {
                self.warnings = rows
                    .into_iter()
                    .map(|row| {
                        let cell =
                            |i: usize| row.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default();
                        Warning {
                            level: cell(0),
                            code: cell(1).parse().unwrap_or(0),
                            message: cell(2),
                        }
                    })
                    .collect();
                true
            }
            Err(e) => {
                debug!(conn = self.conn_id, error = %e, "could not read a statement's warnings");
                !e.is_fatal()
            }
        }
    }

    /// Answers `SHOW WARNINGS` (or its count) from what the session's previous statement left.
    pub(super) async fn show_warnings(&mut self, count_only: bool) -> Result<(), WireError> {
        let (columns, rows): (&[(&str, u8)], Vec<TextRow>) = if count_only {
            (
                &[("@@session.warning_count", TYPE_LONG)],
                vec![vec![Some(self.warnings.len().to_string().into_bytes())]],
            )
        } else {
            (
                &[
                    ("Level", TYPE_VAR_STRING),
                    ("Code", TYPE_LONG),
                    ("Message", TYPE_VAR_STRING),
                ],
                self.warnings
                    .iter()
                    .map(|w| {
                        vec![
                            Some(w.level.clone().into_bytes()),
                            Some(w.code.to_string().into_bytes()),
                            Some(w.message.clone().into_bytes()),
                        ]
                    })
                    .collect(),
            )
        };
        let status = self.status();
        let deprecate_eof = self.deprecate_eof();
        put_text_result_set(
            self.client.write_buf(),
            self.reply_seq,
            deprecate_eof,
            status,
            columns,
            &rows,
        );
        self.flush_reply().await
    }
}
