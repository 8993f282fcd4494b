//! Queries the proxy runs for itself and reads the answer of (variables after a SET, XA RECOVER): text result sets
//! decoded into strings, with each column's type.

use shardgate_wire::WireError;
use shardgate_wire::tracker::PacketRole;

use super::BackendConn;

/// One row: each cell's column type and text (`None` for NULL).
pub type TextRow = Vec<(u8, Option<String>)>;

impl BackendConn {
    /// The first row of a query's answer (empty when it has none).
    pub async fn query_row(&mut self, sql: &str) -> Result<TextRow, WireError> {
        Ok(self
            .query_rows(sql)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Every row of a query's answer.
    pub async fn query_rows(&mut self, sql: &str) -> Result<Vec<TextRow>, WireError> {
        let mut types = Vec::new();
        let mut rows = Vec::new();
        self.exchange(sql, |role, payload| {
            match role {
                PacketRole::ColumnDef { .. } => types.push(column_type(payload)?),
                PacketRole::Row => rows.push(text_row(payload, &types)?),
                _ => {}
            }
            Ok(())
        })
        .await?;
        Ok(rows)
    }
}

/// A text-protocol row, each cell with its column's type.
fn text_row(payload: &[u8], types: &[u8]) -> Result<TextRow, WireError> {
    let mut r = shardgate_wire::lenenc::Reader::new(payload, "row");
    let mut row = Vec::with_capacity(types.len());
    for ty in types {
        let value = if r.remaining().first() == Some(&0xfb) {
            r.u8()?;
            None
        } else {
            Some(String::from_utf8_lossy(r.lenenc_bytes()?).into_owned())
        };
        row.push((*ty, value));
    }
    Ok(row)
}

/// The type byte of a column definition packet (after six length-encoded strings and the fixed-length marker).
fn column_type(payload: &[u8]) -> Result<u8, WireError> {
    let mut r = shardgate_wire::lenenc::Reader::new(payload, "column definition");
    for _ in 0..6 {
        r.lenenc_bytes()?;
    }
    r.lenenc_int()?;
    r.u16()?;
    r.u32()?;
    r.u8()
}
