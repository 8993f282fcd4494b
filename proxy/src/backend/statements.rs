//! Prepared statements on a backend connection.
//!
//! A client's prepared statement is the proxy's; the backend statement behind it is prepared on demand on whichever
//! connection runs an execute, and kept there, keyed by its SQL, so the next execute of the same text on that
//! connection skips the prepare (ProxySQL keeps a similar per-connection map). The map is bounded: past
//! [`MAX_STATEMENTS`] the connection's statements are all closed, which keeps the server's `max_prepared_stmt_count`
//! out of reach however many shapes clients prepare.

use std::sync::Arc;

use shardgate_wire::WireError;
use shardgate_wire::command::{COM_STMT_CLOSE, COM_STMT_PREPARE, command_packet};
use shardgate_wire::response::ErrPacket;
use shardgate_wire::stmt::PrepareOk;

use super::{BACKEND_MAX_PACKET, BackendConn};

/// Most statements kept prepared on one backend connection.
const MAX_STATEMENTS: usize = 256;

/// A statement prepared on the backend, with the packets of its reply after the PREPARE_OK.
pub struct Prepared {
    pub ok: PrepareOk,
    /// Parameter then column definition payloads, as the server sent them (no EOFs: DEPRECATE_EOF is on).
    pub definitions: Vec<bytes::Bytes>,
}

impl BackendConn {
    /// The backend id of `sql` on this connection, preparing it first if needed.
    pub async fn statement_id(&mut self, sql: &Arc<str>) -> Result<u32, WireError> {
        if let Some(id) = self.statements.get(sql) {
            return Ok(*id);
        }
        Ok(self.prepare(sql).await?.ok.statement_id)
    }

    /// Prepares `sql` and remembers its id. A server refusal is `WireError::Server`; the connection stays usable.
    pub async fn prepare(&mut self, sql: &Arc<str>) -> Result<Prepared, WireError> {
        if self.statements.len() >= MAX_STATEMENTS {
            self.close_statements();
        }
        let payload = command_packet(COM_STMT_PREPARE, sql.as_bytes());
        self.stream.queue(0, &payload);
        self.stream.flush().await?;
        let first = self.next_packet().await?;
        if first.first() == Some(&0xff) {
            return Err(ErrPacket::decode(&first)?.into());
        }
        let ok = PrepareOk::decode(&first)?;
        let count = usize::from(ok.num_params) + usize::from(ok.num_columns);
        let mut definitions = Vec::with_capacity(count);
        for _ in 0..count {
            definitions.push(self.next_packet().await?);
        }
        if let Some(old) = self.statements.insert(Arc::clone(sql), ok.statement_id) {
            self.queue_close(old);
        }
        Ok(Prepared { ok, definitions })
    }

    /// Closes every statement prepared on this connection (COM_STMT_CLOSE has no reply; the packets go out with
    /// the next command).
    fn close_statements(&mut self) {
        let ids: Vec<u32> = self.statements.drain().map(|(_, id)| id).collect();
        for id in ids {
            self.queue_close(id);
        }
    }

    fn queue_close(&mut self, id: u32) {
        let mut close = [0u8; 5];
        close[0] = COM_STMT_CLOSE;
        close[1..].copy_from_slice(&id.to_le_bytes());
        self.stream.queue(0, &close);
    }

    async fn next_packet(&mut self) -> Result<bytes::Bytes, WireError> {
        match self.stream.read_packet(BACKEND_MAX_PACKET).await? {
            Some(p) => Ok(p.payload.freeze()),
            None => Err(WireError::Truncated { got: 0, want: 4 }),
        }
    }
}
