//! Parsing what the server sends: `HandshakeV10`, ERR and EOF packets, and the field reader they share. Running
//! short or meeting an unexpected byte fails the test with a message naming the packet.

use super::{Handshake, ServerError, caps};

/// Parses a `HandshakeV10`; an ERR packet instead (e.g. too many connections) fails the test.
pub(super) fn parse_handshake(packet: &[u8]) -> Handshake {
    if packet.first() == Some(&0xff) {
        panic!("the server refused the connection: {:?}", parse_err(packet));
    }
    let mut cur = Cursor::new(packet, "HandshakeV10");
    assert_eq!(cur.u8(), 10, "not a HandshakeV10 greeting");
    let server_version = String::from_utf8_lossy(cur.nul_terminated()).into_owned();
    let connection_id = cur.u32();
    let mut scramble = cur.take(8).to_vec();
    cur.u8(); // filler
    let mut capabilities = u32::from(cur.u16());
    let mut auth_plugin = None;
    if !cur.is_empty() {
        cur.u8(); // character set
        cur.u16(); // status flags
        capabilities |= u32::from(cur.u16()) << 16;
        let auth_len = usize::from(cur.u8());
        cur.take(10); // reserved (MariaDB puts extended capabilities in the last 4)
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let part2 = cur.take(auth_len.saturating_sub(8).max(13));
            scramble.extend_from_slice(trim_nul(part2));
        }
        if capabilities & caps::PLUGIN_AUTH != 0 {
            auth_plugin = Some(String::from_utf8_lossy(cur.nul_terminated()).into_owned());
        }
    }
    Handshake {
        server_version,
        connection_id,
        capabilities,
        scramble,
        auth_plugin,
    }
}

/// Parses an ERR packet (with or without the `#SQLSTATE` marker).
pub fn parse_err(packet: &[u8]) -> ServerError {
    let mut cur = Cursor::new(packet, "ERR packet");
    assert_eq!(cur.u8(), 0xff, "not an ERR packet");
    let code = cur.u16();
    let state = if cur.peek() == Some(b'#') {
        cur.u8();
        String::from_utf8_lossy(cur.take(5)).into_owned()
    } else {
        String::new()
    };
    let message = String::from_utf8_lossy(cur.rest()).into_owned();
    ServerError {
        code,
        state,
        message,
    }
}

/// Whether `packet` is an EOF packet (not a row that happens to start with 0xFE).
pub(super) fn is_eof(packet: &[u8]) -> bool {
    packet.first() == Some(&0xfe) && packet.len() < 9
}

/// `bytes` without trailing NUL bytes.
pub(super) fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Reads fields off a packet; running short fails the test, naming the packet.
pub(super) struct Cursor<'a> {
    /// Bytes not yet read.
    buf: &'a [u8],
    /// Which packet this is, for failure messages.
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.buf.len() >= n,
            "malformed {}: wanted {n} more bytes, {} left",
            self.what,
            self.buf.len()
        );
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        head
    }

    pub(super) fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub(super) fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_le_bytes([b[0], b[1]])
    }

    pub(super) fn u32(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    pub(super) fn lenenc_int(&mut self) -> u64 {
        match self.u8() {
            n @ 0..=0xfa => u64::from(n),
            0xfc => u64::from(self.u16()),
            0xfd => {
                let b = self.take(3);
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], 0]))
            }
            0xfe => {
                let b = self.take(8);
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            other => panic!(
                "malformed {}: 0x{other:02x} does not start a length-encoded integer",
                self.what
            ),
        }
    }

    pub(super) fn lenenc_bytes(&mut self) -> &'a [u8] {
        let len = self.lenenc_int() as usize;
        self.take(len)
    }

    /// Bytes up to a NUL (consumed) or to the end of the packet.
    pub(super) fn nul_terminated(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|b| *b == 0) {
            Some(end) => {
                let field = self.take(end);
                self.take(1);
                field
            }
            None => self.rest(),
        }
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}
