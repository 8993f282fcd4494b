//! Errors of the codec: malformed input is a value, never a panic.

use std::io;

/// Everything that can go wrong while framing or decoding protocol packets.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed in the middle of a packet.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection in the middle of a packet.
    #[error("connection closed inside a packet ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    /// A packet (after joining 16 MiB parts) is larger than the configured limit.
    #[error("packet of {size} bytes exceeds max_allowed_packet ({limit} bytes)")]
    PacketTooLarge { size: usize, limit: usize },
    /// The packet's sequence id is not the one the protocol expects next.
    #[error("packet sequence id {got}, expected {want}")]
    BadSequence { got: u8, want: u8 },
    /// A field runs past the end of its packet.
    #[error("malformed {what}: packet ends early")]
    ShortPacket { what: &'static str },
    /// A field holds a value the protocol does not allow.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// The peer answered with an ERR packet where the exchange expected success.
    #[error("server error {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// The peer asked for something this codec does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl WireError {
    /// True when the connection can no longer be used: the stream is out of sync or closed.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, WireError::Server { .. })
    }

    /// A peer that did not answer in time (`what` says what was awaited).
    pub fn timed_out(what: impl Into<String>) -> WireError {
        WireError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            what.into(),
        ))
    }

    /// True for [`WireError::timed_out`] (and any I/O error of kind `TimedOut`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
    }
}
