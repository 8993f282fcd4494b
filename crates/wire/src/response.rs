//! Generic response packets: OK, ERR, EOF, and the pieces of a text result set the proxy answers itself.

use bytes::{BufMut, BytesMut};

use crate::WireError;
use crate::lenenc::{Reader, put_lenenc_bytes, put_lenenc_int};
use crate::packet::{begin_packet, finish_packet};

/// An OK packet (header 0x00, or 0xFE when it ends a result set under CLIENT_DEPRECATE_EOF).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: String,
}

impl OkPacket {
    /// Decodes an OK payload (without CLIENT_SESSION_TRACK, which shardgate never negotiates).
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "OK packet");
        r.u8()?;
        let affected_rows = r.lenenc_int()?;
        let last_insert_id = r.lenenc_int()?;
        let status = r.u16()?;
        let warnings = r.u16()?;
        let info = String::from_utf8_lossy(r.remaining()).into_owned();
        Ok(OkPacket {
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info,
        })
    }

    /// Queues this OK as a packet with sequence id `seq`; returns the next sequence id.
    pub fn put(&self, out: &mut BytesMut, seq: u8) -> u8 {
        let start = begin_packet(out);
        out.put_u8(0);
        put_lenenc_int(out, self.affected_rows);
        put_lenenc_int(out, self.last_insert_id);
        out.put_u16_le(self.status);
        out.put_u16_le(self.warnings);
        out.put_slice(self.info.as_bytes());
        finish_packet(out, start, seq)
    }
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    /// Five-character SQLSTATE.
    pub state: String,
    pub message: String,
}

impl ErrPacket {
    /// Decodes an ERR payload (header 0xFF, protocol 4.1 form with SQLSTATE).
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "ERR packet");
        r.u8()?;
        let code = r.u16()?;
        let state = if r.remaining().first() == Some(&b'#') {
            r.u8()?;
            String::from_utf8_lossy(r.take(5)?).into_owned()
        } else {
            "HY000".to_string()
        };
        let message = String::from_utf8_lossy(r.remaining()).into_owned();
        Ok(ErrPacket {
            code,
            state,
            message,
        })
    }
}

impl From<ErrPacket> for WireError {
    fn from(e: ErrPacket) -> Self {
        WireError::Server {
            code: e.code,
            state: e.state,
            message: e.message,
        }
    }
}

/// Queues an ERR packet; returns the next sequence id. `state` must be five ASCII characters.
pub fn put_err(out: &mut BytesMut, seq: u8, code: u16, state: &str, message: &str) -> u8 {
    let start = begin_packet(out);
    out.put_u8(0xff);
    out.put_u16_le(code);
    out.put_u8(b'#');
    let mut st = [b'H', b'Y', b'0', b'0', b'0'];
    for (d, s) in st.iter_mut().zip(state.bytes()) {
        *d = s;
    }
    out.put_slice(&st);
    // MySQL caps messages at 512 bytes; keep them readable, never split inside a UTF-8 sequence.
    let mut end = message.len().min(512);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    out.put_slice(&message.as_bytes()[..end]);
    finish_packet(out, start, seq)
}

/// Queues a classic EOF packet; returns the next sequence id.
pub fn put_eof(out: &mut BytesMut, seq: u8, warnings: u16, status: u16) -> u8 {
    let start = begin_packet(out);
    out.put_u8(0xfe);
    out.put_u16_le(warnings);
    out.put_u16_le(status);
    finish_packet(out, start, seq)
}

/// Reads warnings and status from a classic EOF payload or an 0xFE-headed OK payload.
pub fn decode_terminator(payload: &[u8]) -> Result<(u16, u16), WireError> {
    // A classic EOF is exactly 5 bytes; an OK is at least 7.
    if payload.len() <= 5 {
        let mut r = Reader::new(payload, "EOF packet");
        r.u8()?;
        let warnings = r.u16()?;
        let status = r.u16()?;
        Ok((warnings, status))
    } else {
        let ok = OkPacket::decode(payload)?;
        Ok((ok.warnings, ok.status))
    }
}

/// Sets SERVER_MORE_RESULTS_EXISTS in the status of a reply's final packet (an OK, an 0xFE-headed OK or a
/// classic EOF), telling the client another result follows. Returns false when the packet is neither.
pub fn set_more_results(payload: &mut [u8]) -> bool {
    const MORE_RESULTS: u16 = 1 << 3;
    let at = match payload.first() {
        Some(0xfe) if payload.len() <= 5 => Some(3),
        Some(0x00 | 0xfe) => {
            let mut r = Reader::new(&payload[1..], "OK packet");
            match (r.lenenc_int(), r.lenenc_int()) {
                (Ok(_), Ok(_)) => Some(payload.len() - r.remaining().len()),
                _ => None,
            }
        }
        _ => None,
    };
    match at.and_then(|at| payload.get_mut(at..at + 2)) {
        Some(status) => {
            let value = u16::from_le_bytes([status[0], status[1]]) | MORE_RESULTS;
            status.copy_from_slice(&value.to_le_bytes());
            true
        }
        None => false,
    }
}

/// Column type codes used by proxy-built result sets.
pub const TYPE_VAR_STRING: u8 = 0xfd;
pub const TYPE_LONGLONG: u8 = 0x08;

/// Queues a complete text result set built by the proxy (for statements it answers itself, such as
/// `SELECT DATABASE()`). `deprecate_eof` is the client's capability. Returns the next sequence id.
pub fn put_text_result_set(
    out: &mut BytesMut,
    mut seq: u8,
    deprecate_eof: bool,
    status: u16,
    columns: &[(&str, u8)],
    rows: &[Vec<Option<Vec<u8>>>],
) -> u8 {
    let start = begin_packet(out);
    put_lenenc_int(out, columns.len() as u64);
    seq = finish_packet(out, start, seq);
    for (name, ty) in columns {
        let start = begin_packet(out);
        put_lenenc_bytes(out, b"def");
        put_lenenc_bytes(out, b"");
        put_lenenc_bytes(out, b"");
        put_lenenc_bytes(out, b"");
        put_lenenc_bytes(out, name.as_bytes());
        put_lenenc_bytes(out, b"");
        out.put_u8(0x0c);
        out.put_u16_le(if *ty == TYPE_LONGLONG { 63 } else { 45 }); // binary / utf8mb4_general_ci
        out.put_u32_le(if *ty == TYPE_LONGLONG { 20 } else { 256 });
        out.put_u8(*ty);
        out.put_u16_le(0);
        out.put_u8(0);
        out.put_u16_le(0);
        seq = finish_packet(out, start, seq);
    }
    if !deprecate_eof {
        seq = put_eof(out, seq, 0, status);
    }
    for row in rows {
        let start = begin_packet(out);
        for v in row {
            match v {
                Some(b) => put_lenenc_bytes(out, b),
                None => out.put_u8(0xfb),
            }
        }
        seq = finish_packet(out, start, seq);
    }
    if deprecate_eof {
        let start = begin_packet(out);
        out.put_u8(0xfe);
        put_lenenc_int(out, 0);
        put_lenenc_int(out, 0);
        out.put_u16_le(status);
        out.put_u16_le(0);
        finish_packet(out, start, seq)
    } else {
        put_eof(out, seq, 0, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_results_is_set_in_ok_and_eof_statuses() {
        let mut out = BytesMut::new();
        OkPacket {
            affected_rows: 300,
            last_insert_id: 7,
            status: 2,
            warnings: 0,
            info: String::new(),
        }
        .put(&mut out, 1);
        let mut ok = out[4..].to_vec();
        assert!(set_more_results(&mut ok));
        assert_eq!(OkPacket::decode(&ok).unwrap().status, 2 | 8);
        let mut eof = vec![0xfe, 0, 0, 2, 0];
        assert!(set_more_results(&mut eof));
        assert_eq!(decode_terminator(&eof).unwrap(), (0, 10));
        assert!(!set_more_results(&mut [0xff, 1, 2]));
    }
    use crate::packet::next_packet;

    #[test]
    fn ok_packet_round_trips() {
        let ok = OkPacket {
            affected_rows: 300,
            last_insert_id: 70000,
            status: 2,
            warnings: 1,
            info: "x".into(),
        };
        let mut b = BytesMut::new();
        assert_eq!(ok.put(&mut b, 1), 2);
        let (_, r) = next_packet(&b, 0).unwrap();
        assert_eq!(OkPacket::decode(&b[r]).unwrap(), ok);
    }

    #[test]
    fn err_packet_carries_code_state_and_message() {
        let mut b = BytesMut::new();
        put_err(&mut b, 2, 1064, "42000", "You have an error");
        let (h, r) = next_packet(&b, 0).unwrap();
        assert_eq!(h.seq, 2);
        let e = ErrPacket::decode(&b[r]).unwrap();
        assert_eq!(
            (e.code, e.state.as_str(), e.message.as_str()),
            (1064, "42000", "You have an error")
        );
    }

    #[test]
    fn long_error_messages_are_cut_on_a_char_boundary() {
        let msg = "é".repeat(400);
        let mut b = BytesMut::new();
        put_err(&mut b, 1, 1105, "HY000", &msg);
        let (_, r) = next_packet(&b, 0).unwrap();
        let e = ErrPacket::decode(&b[r]).unwrap();
        assert!(e.message.len() <= 512 && !e.message.contains('\u{FFFD}'));
    }

    #[test]
    fn terminator_status_is_read_from_eof_and_from_ok_forms() {
        assert_eq!(decode_terminator(&[0xfe, 3, 0, 2, 0]).unwrap(), (3, 2));
        let mut b = BytesMut::new();
        b.put_slice(&[0xfe, 0, 0, 0x0a, 0, 4, 0]);
        assert_eq!(decode_terminator(&b).unwrap(), (4, 0x0a));
    }
}
