//! Field primitives: a bounds-checked reader over one payload, and writers for the protocol's integer and string
//! encodings. Short input is an error, never a panic.

use bytes::{BufMut, BytesMut};

use crate::WireError;

/// A cursor over one packet payload. Every read checks the remaining length first.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the packet in error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn short(&self) -> WireError {
        WireError::ShortPacket { what: self.what }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(self.short());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-encoded integer. 0xFB (NULL) and 0xFF are not integers and are refused.
    pub fn lenenc_int(&mut self) -> Result<u64, WireError> {
        let first = self.u8()?;
        Ok(match first {
            0..=0xfa => u64::from(first),
            0xfc => u64::from(self.u16()?),
            0xfd => {
                let b = self.take(3)?;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xfe => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            }
            _ => {
                return Err(WireError::Malformed {
                    what: self.what,
                    detail: format!("0x{first:02x} is not a length-encoded integer"),
                });
            }
        })
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.lenenc_int()?;
        let len = usize::try_from(len).map_err(|_| self.short())?;
        self.take(len)
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub fn nul_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.short())?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// A NUL-terminated string, or the rest of the packet when it has no NUL (some clients omit the last one).
    pub fn nul_or_rest(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.buf[..end];
                self.buf = &self.buf[end + 1..];
                s
            }
            None => std::mem::take(&mut self.buf),
        }
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    if v < 0xfb {
        out.put_u8(v as u8);
    } else if v <= 0xffff {
        out.put_u8(0xfc);
        out.put_u16_le(v as u16);
    } else if v <= 0xff_ffff {
        out.put_u8(0xfd);
        out.put_uint_le(v, 3);
    } else {
        out.put_u8(0xfe);
        out.put_u64_le(v);
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut BytesMut, s: &[u8]) {
    put_lenenc_int(out, s.len() as u64);
    out.put_slice(s);
}

/// Appends a NUL-terminated string.
pub fn put_nul_bytes(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_int_round_trips_at_every_width_boundary() {
        for v in [
            0,
            1,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut b = BytesMut::new();
            put_lenenc_int(&mut b, v);
            let mut r = Reader::new(&b, "test");
            assert_eq!(r.lenenc_int().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0xfe, 1, 2], "test");
        assert!(matches!(r.lenenc_int(), Err(WireError::ShortPacket { .. })));
        let mut r = Reader::new(&[5, b'a'], "test");
        assert!(r.lenenc_bytes().is_err());
        let mut r = Reader::new(b"abc", "test");
        assert!(r.nul_bytes().is_err());
        let mut r = Reader::new(&[0xff], "test");
        assert!(matches!(r.lenenc_int(), Err(WireError::Malformed { .. })));
    }
}
