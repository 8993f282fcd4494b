//! One shard's complete reply, sorted into what it is: a result set, an OK, or an ERR.
//!
//! Replies come from backend connections that negotiated CLIENT_DEPRECATE_EOF: a column count, the column
//! definitions, the rows, and an OK packet with header 0xFE. An EOF after the definitions is tolerated, so a
//! backend without the capability is read correctly too.

use bytes::Bytes;
use shardgate_wire::WireError;
use shardgate_wire::lenenc::Reader;
use shardgate_wire::response::{OkPacket, decode_terminator};

/// A classified shard reply.
#[derive(Debug)]
pub(crate) enum Reply {
    ResultSet(ResultSet),
    Ok(OkPacket),
}

/// A result set, split into its parts.
#[derive(Debug)]
pub(crate) struct ResultSet {
    /// Column-definition payloads, one per column.
    pub definitions: Vec<Bytes>,
    /// Row payloads in the order the shard sent them.
    pub rows: Vec<Bytes>,
    pub warnings: u16,
    pub status: u16,
}

const OK: u8 = 0x00;
const EOF: u8 = 0xfe;
const ERR: u8 = 0xff;
const LOCAL_INFILE: u8 = 0xfb;

fn malformed(detail: &str) -> WireError {
    WireError::Malformed {
        what: "shard reply",
        detail: detail.to_string(),
    }
}

/// True when `packets` ends in an ERR: a failed statement, or one that failed after sending some rows. A row can
/// never start with 0xFF (not a length-encoded string, not the binary row header), so this is unambiguous.
pub(crate) fn is_err(packets: &[Bytes]) -> bool {
    packets.last().and_then(|p| p.first()) == Some(&ERR)
}

/// Sorts a reply that does not end in an ERR (see [`is_err`]) into a [`Reply`].
pub(crate) fn classify(mut packets: Vec<Bytes>) -> Result<Reply, WireError> {
    let Some(first) = packets.first() else {
        return Err(malformed("no packets"));
    };
    match first.first() {
        Some(&OK) if packets.len() == 1 => return Ok(Reply::Ok(OkPacket::decode(first)?)),
        Some(&OK) => return Err(malformed("packets after an OK")),
        Some(&LOCAL_INFILE) => {
            return Err(WireError::Unsupported(
                "LOCAL INFILE request in a merged reply".into(),
            ));
        }
        _ => {}
    }
    let mut r = Reader::new(first, "column count");
    let count = r.lenenc_int()?;
    if count == 0 || !r.is_empty() {
        return Err(malformed("bad column count packet"));
    }
    // The count is bounded by the packets actually present, so a huge value cannot cause a huge allocation.
    let count = usize::try_from(count).map_err(|_| malformed("column count too large"))?;
    if count.checked_add(2).is_none_or(|need| packets.len() < need) {
        return Err(malformed("result set ends inside its column definitions"));
    }
    let terminator = packets.pop().unwrap_or_default();
    if terminator.first() != Some(&EOF) {
        return Err(malformed("result set does not end with an OK/EOF packet"));
    }
    let (warnings, status) = decode_terminator(&terminator)?;
    let mut rows = packets.split_off(count + 1);
    // A classic EOF after the definitions is at most 5 bytes; a row starting with 0xFE is at least 9.
    if rows
        .first()
        .is_some_and(|p| p.first() == Some(&EOF) && p.len() <= 5)
    {
        rows.remove(0);
    }
    packets.remove(0);
    Ok(Reply::ResultSet(ResultSet {
        definitions: packets,
        rows,
        warnings,
        status,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn an_err_after_rows_makes_the_reply_an_error() {
        let packets = vec![
            b(b"\x01"),
            b(b"def"),
            b(b"\x01a"),
            b(b"\xff\x15\x04#HY000boom"),
        ];
        assert!(is_err(&packets));
        assert!(!is_err(&packets[..3]));
    }

    #[test]
    fn a_classic_eof_after_definitions_is_skipped() {
        let r = classify(vec![
            b(b"\x01"),
            b(b"def"),
            b(b"\xfe\0\0\x02\0"),
            b(b"\x01a"),
            b(b"\xfe\0\0\x02\0"),
        ])
        .unwrap();
        let Reply::ResultSet(rs) = r else {
            panic!("not a result set")
        };
        assert_eq!((rs.definitions.len(), rs.rows.len(), rs.status), (1, 1, 2));
    }

    #[test]
    fn truncated_replies_are_errors() {
        assert!(classify(vec![]).is_err());
        assert!(classify(vec![b(b"\x03"), b(b"def"), b(b"\xfe\0\0\x02\0\0\0")]).is_err());
        assert!(classify(vec![b(b"\x01"), b(b"def"), b(b"\x01a")]).is_err());
        assert!(classify(vec![b(b"\x00\x01"), b(b"x")]).is_err());
        assert!(classify(vec![b(b"\xfe")]).is_err());
    }
}
