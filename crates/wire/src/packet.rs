//! Packet framing: a 3-byte little-endian payload length and a 1-byte sequence id before every payload.
//!
//! A payload of 16 MiB - 1 or more is split into parts of exactly [`MAX_PAYLOAD`] bytes followed by a shorter part
//! (possibly empty); the parts carry consecutive sequence ids and form one logical packet.

use bytes::{BufMut, BytesMut};

/// The largest payload one physical packet can carry.
pub const MAX_PAYLOAD: usize = 0xff_ffff;

/// The 4-byte header in front of every physical packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Payload length of this physical packet.
    pub len: usize,
    /// Sequence id: 0 for the first packet of a command, then +1 (mod 256) for each packet in either direction.
    pub seq: u8,
}

impl PacketHeader {
    /// Bytes in a header.
    pub const SIZE: usize = 4;

    /// Reads a header from the start of `buf`; `None` when fewer than 4 bytes are there.
    pub fn parse(buf: &[u8]) -> Option<PacketHeader> {
        match buf {
            [a, b, c, seq, ..] => Some(PacketHeader {
                len: usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16,
                seq: *seq,
            }),
            _ => None,
        }
    }

    /// True when this is a full-size part and another part of the same logical packet follows.
    pub fn continues(&self) -> bool {
        self.len == MAX_PAYLOAD
    }
}

fn put_header(out: &mut BytesMut, len: usize, seq: u8) {
    out.put_uint_le(len as u64, 3);
    out.put_u8(seq);
}

/// Appends `payload` as one logical packet starting at sequence id `seq`, splitting it at 16 MiB.
/// Returns the sequence id the next packet must carry.
pub fn put_packet(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.reserve(PacketHeader::SIZE + n);
        put_header(out, n, seq);
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}

/// Reserves a header in `out` so that a payload can be encoded in place; finish with [`finish_packet`].
pub fn begin_packet(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_slice(&[0, 0, 0, 0]);
    start
}

/// Writes the header reserved by [`begin_packet`] at `start`, splitting the payload if it grew past 16 MiB.
/// Returns the sequence id the next packet must carry.
pub fn finish_packet(out: &mut BytesMut, start: usize, seq: u8) -> u8 {
    let len = out.len() - start - PacketHeader::SIZE;
    if len < MAX_PAYLOAD {
        let h = (len as u32).to_le_bytes();
        out[start..start + 3].copy_from_slice(&h[..3]);
        out[start + 3] = seq;
        return seq.wrapping_add(1);
    }
    // Rare: an encoder produced 16 MiB or more. Re-emit it through the splitting path.
    let payload = out.split_off(start + PacketHeader::SIZE);
    out.truncate(start);
    put_packet(out, seq, &payload)
}

/// Finds the next complete physical packet in `buf` at `offset`: its header and the range of its payload.
pub fn next_packet(buf: &[u8], offset: usize) -> Option<(PacketHeader, std::ops::Range<usize>)> {
    let h = PacketHeader::parse(buf.get(offset..)?)?;
    let start = offset + PacketHeader::SIZE;
    let end = start + h.len;
    if buf.len() < end {
        return None;
    }
    Some((h, start..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_payload_is_one_packet_with_its_length_and_sequence() {
        let mut out = BytesMut::new();
        let next = put_packet(&mut out, 7, b"hello");
        assert_eq!(next, 8);
        assert_eq!(&out[..], b"\x05\x00\x00\x07hello");
        let (h, r) = next_packet(&out, 0).unwrap();
        assert_eq!(h, PacketHeader { len: 5, seq: 7 });
        assert_eq!(&out[r], b"hello");
    }

    #[test]
    fn a_payload_of_exactly_16mib_minus_one_is_followed_by_an_empty_part() {
        let payload = vec![b'x'; MAX_PAYLOAD];
        let mut out = BytesMut::new();
        let next = put_packet(&mut out, 0, &payload);
        assert_eq!(next, 2);
        let (h1, r1) = next_packet(&out, 0).unwrap();
        assert!(h1.continues());
        let (h2, r2) = next_packet(&out, r1.end).unwrap();
        assert_eq!((h2.len, h2.seq), (0, 1));
        assert_eq!(r2.end, out.len());
    }

    #[test]
    fn finish_packet_splits_an_in_place_payload_past_16mib() {
        let mut out = BytesMut::new();
        let start = begin_packet(&mut out);
        out.put_slice(&vec![1u8; MAX_PAYLOAD + 10]);
        let next = finish_packet(&mut out, start, 3);
        assert_eq!(next, 5);
        let (h1, r1) = next_packet(&out, 0).unwrap();
        assert_eq!((h1.len, h1.seq), (MAX_PAYLOAD, 3));
        let (h2, _) = next_packet(&out, r1.end).unwrap();
        assert_eq!((h2.len, h2.seq), (10, 4));
    }

    #[test]
    fn an_incomplete_packet_is_not_returned() {
        assert!(next_packet(b"\x05\x00\x00\x00hel", 0).is_none());
        assert!(next_packet(b"\x05\x00", 0).is_none());
    }
}
