//! Queries the proxy runs for itself and reads the answer of (variables after a SET, XA RECOVER): text result sets
//! decoded into strings, with each column's type.

use shardgate_wire::response::ErrPacket;
use shardgate_wire::tracker::PacketRole;
use shardgate_wire::{ResponseKind, ResponseTracker, WireError};

use super::{BACKEND_MAX_PACKET, BackendConn};

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
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(shardgate_wire::command::COM_QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.stream.queue(0, &payload);
        self.stream.flush().await?;
        let mut tracker = ResponseTracker::new(ResponseKind::Query, true);
        let mut types = Vec::new();
        let mut rows = Vec::new();
        let mut error = None;
        while !tracker.is_done() {
            let Some(p) = self.stream.read_packet(BACKEND_MAX_PACKET).await? else {
                return Err(WireError::Truncated { got: 0, want: 4 });
            };
            let h = shardgate_wire::PacketHeader {
                len: p.payload.len().min(shardgate_wire::MAX_PAYLOAD - 1),
                seq: p.seq,
            };
            match tracker.on_packet(h, &p.payload)?.role {
                PacketRole::Err => error = Some(ErrPacket::decode(&p.payload)?),
                PacketRole::ColumnDef { .. } => types.push(column_type(&p.payload)?),
                PacketRole::Row => {
                    let mut r = shardgate_wire::lenenc::Reader::new(&p.payload, "row");
                    let mut row = Vec::with_capacity(types.len());
                    for ty in &types {
                        let value = if r.remaining().first() == Some(&0xfb) {
                            r.u8()?;
                            None
                        } else {
                            Some(String::from_utf8_lossy(r.lenenc_bytes()?).into_owned())
                        };
                        row.push((*ty, value));
                    }
                    rows.push(row);
                }
                _ => {}
            }
        }
        match error {
            Some(e) => Err(e.into()),
            None => Ok(rows),
        }
    }
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
