//! The whole of a reply, for differential tests: OK packets with their insert id, warnings and info text, column
//! definitions, and cells as bytes (not text), so that a comparison sees every byte the client would.

use super::parse::{Cursor, is_eof, parse_err};
use super::{COM_QUERY, EXCHANGE_ALLOWANCE, RawConn, Reply, ServerError, within};

/// One column definition (`ColumnDefinition41`), without catalog and schema: the schema names the database the
/// row came from, which differs between a shard and an unsharded server by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawColumn {
    /// Table (or alias) the column came from.
    pub table: Vec<u8>,
    /// Table's real name.
    pub org_table: Vec<u8>,
    /// Column name (or alias) as the client sees it.
    pub name: Vec<u8>,
    /// Column's real name.
    pub org_name: Vec<u8>,
    /// The fixed-length part: character set, length, type, flags, decimals.
    pub fixed: Vec<u8>,
}

/// The server's reply to one COM_QUERY, in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailedReply {
    /// An OK packet.
    Ok {
        /// Rows changed by the statement.
        affected_rows: u64,
        /// First AUTO_INCREMENT value generated (or set with `LAST_INSERT_ID(x)`), 0 if none.
        last_insert_id: u64,
        /// Warnings the statement raised.
        warnings: u16,
        /// Human-readable info, e.g. `Records: 3  Duplicates: 0  Warnings: 0`.
        info: Vec<u8>,
    },
    /// An ERR packet, before or in the middle of a result set.
    Err(ServerError),
    /// A text result set.
    Rows {
        /// The column definitions.
        columns: Vec<RawColumn>,
        /// The rows: a cell is `None` for SQL NULL, else its bytes.
        rows: Vec<Vec<Option<Vec<u8>>>>,
    },
}

impl RawConn {
    /// Sends `sql` (any bytes, not necessarily UTF-8) as COM_QUERY and reads the whole reply.
    pub async fn query_detailed(&mut self, sql: &[u8]) -> DetailedReply {
        self.send_command(COM_QUERY, sql).await;
        self.read_detailed_reply().await
    }

    /// Reads the whole reply to the command just sent: OK, ERR or a text result set.
    pub async fn read_detailed_reply(&mut self) -> DetailedReply {
        within(EXCHANGE_ALLOWANCE, "reading a reply", async {
            let first = self.next().await;
            match first.first() {
                Some(0x00) => parse_ok(&first),
                Some(0xff) => DetailedReply::Err(parse_err(&first)),
                Some(0xfb) => panic!("the server asked for LOCAL INFILE data"),
                _ => self.read_detailed_rows(&first).await,
            }
        })
        .await
    }

    /// Reads column definitions and rows after the column-count packet `first`.
    async fn read_detailed_rows(&mut self, first: &[u8]) -> DetailedReply {
        let count = Cursor::new(first, "column count").lenenc_int();
        let mut columns = Vec::new();
        for _ in 0..count {
            columns.push(parse_column(&self.next().await));
        }
        let eof = self.next().await;
        assert!(
            is_eof(&eof),
            "expected EOF after {count} column definitions, got {eof:?}"
        );
        let mut rows = Vec::new();
        loop {
            let packet = self.next().await;
            if is_eof(&packet) {
                return DetailedReply::Rows { columns, rows };
            }
            if packet.first() == Some(&0xff) {
                return DetailedReply::Err(parse_err(&packet));
            }
            let mut cur = Cursor::new(&packet, "text row");
            let row = (0..count)
                .map(|_| {
                    if cur.peek() == Some(0xfb) {
                        cur.u8();
                        None
                    } else {
                        Some(cur.lenenc_bytes().to_vec())
                    }
                })
                .collect();
            assert!(
                cur.is_empty(),
                "a text row has bytes after its {count} cells"
            );
            rows.push(row);
        }
    }
}

/// Parses an OK packet (`0x00`, affected rows, insert id, status, warnings, info).
fn parse_ok(packet: &[u8]) -> DetailedReply {
    let mut cur = Cursor::new(packet, "OK packet");
    cur.u8();
    let affected_rows = cur.lenenc_int();
    let last_insert_id = cur.lenenc_int();
    cur.u16(); // status flags: depend on the server's plan (e.g. "no index used"), not on the statement alone
    let warnings = cur.u16();
    let info = cur.rest().to_vec();
    DetailedReply::Ok {
        affected_rows,
        last_insert_id,
        warnings,
        info,
    }
}

/// Parses a `ColumnDefinition41`.
fn parse_column(packet: &[u8]) -> RawColumn {
    let mut cur = Cursor::new(packet, "column definition");
    cur.lenenc_bytes(); // catalog, always "def"
    cur.lenenc_bytes(); // schema
    let table = cur.lenenc_bytes().to_vec();
    let org_table = cur.lenenc_bytes().to_vec();
    let name = cur.lenenc_bytes().to_vec();
    let org_name = cur.lenenc_bytes().to_vec();
    RawColumn {
        table,
        org_table,
        name,
        org_name,
        fixed: cur.rest().to_vec(),
    }
}

impl From<DetailedReply> for Reply {
    /// The summary most tests compare: affected rows, the error, or the cells as (lossy) text.
    fn from(reply: DetailedReply) -> Reply {
        match reply {
            DetailedReply::Ok { affected_rows, .. } => Reply::Ok { affected_rows },
            DetailedReply::Err(e) => Reply::Err(e),
            DetailedReply::Rows { rows, .. } => Reply::Rows(
                rows.into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|cell| cell.map(|b| String::from_utf8_lossy(&b).into_owned()))
                            .collect()
                    })
                    .collect(),
            ),
        }
    }
}
