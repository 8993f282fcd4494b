//! A buffered packet connection over any async byte stream: whole packets in, queued packets out.
//!
//! Reads accumulate in one buffer and packets are split off it without copying; writes are queued in one buffer
//! and sent with a single `write_all` per [`PacketStream::flush`], so a reply of many packets costs one syscall.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::WireError;
use crate::packet::{PacketHeader, put_packet};

/// Buffer size for streams that carry result sets (backend connections).
pub const LARGE_BUFFER: usize = 16 * 1024;
/// Buffer size for streams that mostly carry small commands (client connections): thousands of idle clients
/// should cost little.
pub const SMALL_BUFFER: usize = 1024;
/// Least free space a read is given; the buffer doubles when it has less.
const MIN_SPARE: usize = 512;

/// One logical packet: the payload (16 MiB parts joined) and the sequence id of its last part.
#[derive(Debug)]
pub struct Packet {
    /// Sequence id of the last physical part; the next packet in the exchange carries `seq + 1`.
    pub seq: u8,
    /// The joined payload.
    pub payload: BytesMut,
}

/// A framed connection: the socket plus its read and write buffers.
pub struct PacketStream<S> {
    io: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Bytes written to `io` so far.
    written: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    /// Wraps a connected stream with buffers sized for result sets.
    pub fn new(io: S) -> Self {
        Self::with_capacity(io, LARGE_BUFFER)
    }

    /// Wraps a connected stream with read and write buffers of `capacity` bytes to start with; they grow as
    /// packets need.
    pub fn with_capacity(io: S, capacity: usize) -> Self {
        PacketStream {
            io,
            rbuf: BytesMut::with_capacity(capacity),
            wbuf: BytesMut::with_capacity(capacity),
            written: 0,
        }
    }

    /// Gives memory back after a large packet: buffers that are empty and over four times `capacity` are
    /// replaced by ones of `capacity` bytes.
    pub fn shrink_to(&mut self, capacity: usize) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > capacity.saturating_mul(4) {
            self.rbuf = BytesMut::with_capacity(capacity);
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > capacity.saturating_mul(4) {
            self.wbuf = BytesMut::with_capacity(capacity);
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Bytes received and not yet consumed.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Bytes queued and not yet sent.
    pub fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Reads more bytes into the read buffer. Returns 0 when the peer closed the connection.
    pub async fn fill(&mut self) -> Result<usize, WireError> {
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < MIN_SPARE {
            self.rbuf.reserve(self.rbuf.capacity().max(MIN_SPARE));
        }
        Ok(self.io.read_buf(&mut self.rbuf).await?)
    }

    /// Reads one logical packet of at most `limit` payload bytes.
    ///
    /// `Ok(None)` means the peer closed the connection cleanly between packets. A packet over the limit is refused
    /// from its header alone, before its payload is buffered.
    pub async fn read_packet(&mut self, limit: usize) -> Result<Option<Packet>, WireError> {
        let mut joined: Option<BytesMut> = None;
        loop {
            let Some(h) = PacketHeader::parse(&self.rbuf) else {
                if self.fill().await? == 0 {
                    return self.closed(joined.is_some());
                }
                continue;
            };
            let so_far = joined.as_ref().map_or(0, BytesMut::len);
            if so_far + h.len > limit {
                return Err(WireError::PacketTooLarge {
                    size: so_far + h.len,
                    limit,
                });
            }
            while self.rbuf.len() < PacketHeader::SIZE + h.len {
                self.rbuf
                    .reserve(PacketHeader::SIZE + h.len - self.rbuf.len());
                if self.fill().await? == 0 {
                    return Err(WireError::Truncated {
                        got: self.rbuf.len(),
                        want: PacketHeader::SIZE + h.len,
                    });
                }
            }
            self.rbuf.advance(PacketHeader::SIZE);
            let part = self.rbuf.split_to(h.len);
            let payload = match joined.take() {
                None => part,
                Some(mut acc) => {
                    acc.extend_from_slice(&part);
                    acc
                }
            };
            if !h.continues() {
                return Ok(Some(Packet {
                    seq: h.seq,
                    payload,
                }));
            }
            joined = Some(payload);
        }
    }

    fn closed(&self, inside_packet: bool) -> Result<Option<Packet>, WireError> {
        if self.rbuf.is_empty() && !inside_packet {
            Ok(None)
        } else {
            Err(WireError::Truncated {
                got: self.rbuf.len(),
                want: PacketHeader::SIZE,
            })
        }
    }

    /// Queues one logical packet; returns the next sequence id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        put_packet(&mut self.wbuf, seq, payload)
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), WireError> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.written += self.wbuf.len() as u64;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Sends `bytes` directly, after anything already queued.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.flush().await?;
        self.io.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written to the peer so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Shuts the write side down, telling the peer no more bytes follow.
    pub async fn shutdown(&mut self) -> Result<(), WireError> {
        self.flush().await?;
        self.io.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::MAX_PAYLOAD;

    #[tokio::test]
    async fn split_parts_are_joined_into_one_packet() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut tx = PacketStream::new(a);
        let mut rx = PacketStream::new(b);
        let payload = vec![9u8; MAX_PAYLOAD + 3];
        let writer = tokio::spawn(async move {
            tx.queue(0, &payload);
            tx.flush().await.unwrap();
            tx
        });
        let p = rx.read_packet(64 << 20).await.unwrap().unwrap();
        assert_eq!(p.payload.len(), MAX_PAYLOAD + 3);
        assert_eq!(p.seq, 1);
        drop(writer.await.unwrap());
        assert!(rx.read_packet(64 << 20).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn buffers_grow_for_a_large_packet_and_shrink_back_when_idle() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut tx = PacketStream::with_capacity(a, SMALL_BUFFER);
        let mut rx = PacketStream::new(b);
        tx.queue(0, &vec![7u8; 300_000]);
        assert!(tx.write_buf().capacity() >= 300_004);
        let reader = tokio::spawn(async move {
            rx.read_packet(1 << 20)
                .await
                .unwrap()
                .unwrap()
                .payload
                .len()
        });
        tx.flush().await.unwrap();
        assert_eq!(reader.await.unwrap(), 300_000);
        tx.shrink_to(SMALL_BUFFER);
        assert_eq!(tx.write_buf().capacity(), SMALL_BUFFER);
    }

    #[tokio::test]
    async fn a_packet_over_the_limit_is_refused_from_its_header() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut rx = PacketStream::new(b);
        a.write_all(&[0, 0, 0x20, 0]).await.unwrap(); // 2 MiB announced, nothing sent
        let err = rx.read_packet(1 << 20).await.unwrap_err();
        assert!(matches!(
            err,
            WireError::PacketTooLarge {
                size: 0x20_0000,
                limit: 0x10_0000
            }
        ));
    }

    #[tokio::test]
    async fn a_connection_closed_inside_a_packet_is_truncated() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut rx = PacketStream::new(b);
        a.write_all(&[100, 0, 0, 0, 1, 2, 3]).await.unwrap();
        drop(a);
        assert!(matches!(
            rx.read_packet(1 << 20).await,
            Err(WireError::Truncated { .. })
        ));
    }
}
