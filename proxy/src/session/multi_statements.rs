//! Several statements in one COM_QUERY (CLIENT_MULTI_STATEMENTS): split at the separators, each routed on its
//! own; their replies are collected, renumbered and sent as one multi-result reply.

use shardgate_sql::split_statements;
use shardgate_wire::WireError;
use shardgate_wire::capability::CLIENT_MULTI_STATEMENTS;
use shardgate_wire::command::command_packet;
use shardgate_wire::response::set_more_results;

use super::Session;

impl Session {
    /// Handles one COM_QUERY packet (`payload` starts with the command byte): one statement, or several separated
    /// by `;` when the client asked for CLIENT_MULTI_STATEMENTS. Those run one after another, each routed on its
    /// own, and their replies go out as one multi-result reply; the first that fails ends it, as on MySQL.
    pub(super) async fn on_query(&mut self, payload: &[u8]) -> Result<(), WireError> {
        if self.caps & CLIENT_MULTI_STATEMENTS == 0 || !payload.contains(&b';') {
            return self.on_statement(payload).await;
        }
        let Ok(text) = std::str::from_utf8(&payload[1..]) else {
            return self.on_statement(payload).await;
        };
        let pieces = split_statements(text);
        if pieces.len() < 2 {
            return self.on_statement(payload).await;
        }
        self.capture = true;
        let mut seq = self.reply_seq;
        for (i, range) in pieces.iter().enumerate() {
            let start = self.client.write_buf().len();
            self.reply_seq = seq;
            let statement = command_packet(payload[0], &text.as_bytes()[range.clone()]);
            if let Err(e) = self.on_statement(&statement).await {
                self.capture = false;
                return Err(e);
            }
            let more = i + 1 < pieces.len();
            let (next, failed) = renumber(self.client.write_buf(), start, seq, more);
            seq = next;
            if failed {
                break;
            }
        }
        self.capture = false;
        self.client.flush().await
    }
}

/// Gives the packets of one statement's reply, from `start` in `buf`, the sequence ids that follow `seq` (each
/// statement's reply was built as if it were the whole response), and marks its final packet with
/// SERVER_MORE_RESULTS_EXISTS when `more` results follow. Returns the next sequence id and whether the reply was
/// an error (which ends a multi-statement query).
fn renumber(buf: &mut bytes::BytesMut, start: usize, mut seq: u8, more: bool) -> (u8, bool) {
    let mut at = start;
    let mut last = None;
    while let Some(header) = buf.get(at..at + 4) {
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        buf[at + 3] = seq;
        seq = seq.wrapping_add(1);
        last = Some((at + 4, len));
        at += 4 + len;
    }
    let Some((body, len)) = last else {
        return (seq, false);
    };
    let Some(payload) = buf.get_mut(body..body + len) else {
        return (seq, true);
    };
    if payload.first() == Some(&0xff) {
        return (seq, true);
    }
    if more {
        set_more_results(payload);
    }
    (seq, false)
}
