//! User-level locks: a session that holds a `GET_LOCK` lock is pinned to the backend connection that took it.
//!
//! Every lock statement runs on the first shard's server, so sessions that lock the same name meet on one server
//! and exclude each other as on one MySQL. The session keeps that connection while it holds at least one lock
//! level (counted from the value each call returns, which is why only `SELECT <lock function>(…)` is taken, see
//! `shardgate_sql::locks`) and gives it back, reset, once it holds none. Closing the client connection, or
//! COM_RESET_CONNECTION, lets go of every lock, as on MySQL.

use shardgate_pool::Pooled;
use shardgate_sql::locks::LockCall;
use shardgate_topology::ShardId;
use shardgate_wire::packet::next_packet;
use shardgate_wire::{ResponseKind, WireError};
use tracing::warn;

use super::Session;
use super::forward::{ForwardError, Reply};
use crate::backend::ShardConnector;
use crate::mysql_error::*;
use crate::routing::Routing;

/// The shard whose server keeps every session's user locks.
const LOCK_SHARD: ShardId = ShardId(0);

/// The connection a session's locks live on, and how many lock levels it holds there.
pub(super) struct LockConn {
    conn: Pooled<ShardConnector>,
    held: u64,
}

impl Session {
    /// Runs a lock statement on the session's lock connection (checked out if it has none) and forwards the reply.
    pub(super) async fn run_lock_statement(
        &mut self,
        routing: &Routing,
        call: LockCall,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let mut lock = match self.locks.take() {
            Some(l) => l,
            None => match self.checkout(routing, LOCK_SHARD).await {
                Ok(conn) => LockConn { conn, held: 0 },
                Err(e) => return self.send_error(&e).await,
            },
        };
        // The reply is collected first so its value can be read, then sent as it is.
        let collecting = std::mem::replace(&mut self.capture, true);
        let mark = self.client.write_buf().len();
        let result = self
            .forward(&mut lock.conn, payload, ResponseKind::Query)
            .await;
        self.capture = collecting;
        match result {
            // A lock call killed for its timeout ends in an ERR the value reading skips: the locks already held stay,
            // as on MySQL.
            Ok(Reply::Clean | Reply::RolledBack | Reply::Killed) => {
                let value = single_value(&self.client.write_buf()[mark..]);
                match (call, value) {
                    (LockCall::Get, Some(1)) => lock.held += 1,
                    (LockCall::Release, Some(1)) => lock.held = lock.held.saturating_sub(1),
                    (LockCall::ReleaseAll, _) => lock.held = 0,
                    _ => {}
                }
                self.keep_or_return(lock).await;
            }
            // The connection is gone or unknown: so are its locks, as the server dropped them with it.
            Ok(Reply::Unusable) => drop(lock),
            Err(ForwardError::Client(e)) => return Err(e),
            Err(ForwardError::Backend {
                error, next_seq, ..
            }) => {
                drop(lock);
                warn!(conn = self.conn_id, %error, "lock connection failed; the session's user locks are gone");
                let e = MysqlError::new(
                    ER_NET_READ_ERROR,
                    format!(
                        "Lost connection to shard {} during query: {error}; every user lock this session held is \
                         released",
                        routing.describe(LOCK_SHARD)
                    ),
                );
                self.client.write_buf().truncate(mark);
                shardgate_wire::response::put_err(
                    self.client.write_buf(),
                    next_seq,
                    e.code,
                    &e.state,
                    &e.message,
                );
            }
        }
        self.flush_reply().await
    }

    /// Keeps the lock connection while it holds locks; otherwise resets it (no lock can survive) and returns it.
    async fn keep_or_return(&mut self, lock: LockConn) {
        if lock.held > 0 {
            self.locks = Some(lock);
        } else {
            lock.conn.reset_and_release().await;
        }
    }

    /// Lets go of every user lock the session holds (client gone, COM_RESET_CONNECTION).
    pub(super) async fn release_locks(&mut self) {
        if let Some(lock) = self.locks.take() {
            lock.conn.reset_and_release().await;
        }
    }
}

/// The integer in the one row of a one-column text result set in `reply` (`None` for NULL, an ERR, no row).
fn single_value(reply: &[u8]) -> Option<i64> {
    let mut packets = Vec::with_capacity(5);
    let mut offset = 0;
    while let Some((_, range)) = next_packet(reply, offset) {
        offset = range.end;
        packets.push(&reply[range]);
    }
    let is_eof = |p: &[u8]| p.first() == Some(&0xfe) && p.len() < 9;
    // Column count 1, one column definition, an EOF for clients without CLIENT_DEPRECATE_EOF, then the row.
    if packets.first()? != &[1u8] {
        return None;
    }
    let mut rest = packets.get(2..)?;
    if rest.first().is_some_and(|p| is_eof(p)) {
        rest = &rest[1..];
    }
    let row = rest.first()?;
    let len = usize::from(*row.first()?);
    if len >= 0xfb || is_eof(row) {
        return None;
    }
    std::str::from_utf8(row.get(1..1 + len)?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![body.len() as u8, 0, 0, seq];
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn the_single_value_is_read_with_and_without_eof_packets() {
        let coldef =
            b"\x03def\x00\x00\x00\x01x\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";
        let mut modern = packet(1, &[1]);
        modern.extend(packet(2, coldef));
        modern.extend(packet(3, b"\x011"));
        modern.extend(packet(4, b"\xfe\x00\x00\x02\x00\x00\x00"));
        assert_eq!(single_value(&modern), Some(1));
        let mut classic = packet(1, &[1]);
        classic.extend(packet(2, coldef));
        classic.extend(packet(3, b"\xfe\x00\x00\x02\x00"));
        classic.extend(packet(4, b"\x010"));
        classic.extend(packet(5, b"\xfe\x00\x00\x02\x00"));
        assert_eq!(single_value(&classic), Some(0));
        let mut null = packet(1, &[1]);
        null.extend(packet(2, coldef));
        null.extend(packet(3, b"\xfb"));
        assert_eq!(single_value(&null), None);
        assert_eq!(single_value(&packet(1, b"\xff\x10\x04#HY000oops")), None);
    }
}
