//! The MySQL client/server protocol, both sides of one codec.
//!
//! This crate is the first and last stop of the data path: client bytes come in through [`PacketStream`], are
//! framed into packets, and the proxy answers with the encoders in [`response`]. The proxy's backend connections use
//! the same framing and the client half of [`handshake`] and [`auth`], so there is one copy of the codec.
//!
//! It knows nothing of shards, tenants or SQL: payloads are bytes, and the only thing it interprets inside a result
//! set is where it ends ([`ResponseTracker`]), so that replies can be forwarded without decoding rows.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod capability;
pub mod command;
mod error;
pub mod handshake;
pub mod lenenc;
pub mod packet;
pub mod response;
pub mod stmt;
mod stream;
pub mod tracker;

pub use error::WireError;
pub use packet::{MAX_PAYLOAD, PacketHeader};
pub use stream::{LARGE_BUFFER, Packet, PacketStream, SMALL_BUFFER};
pub use tracker::{ResponseKind, ResponseTracker, TrackerEvent};
