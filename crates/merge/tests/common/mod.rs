//! Loads the MariaDB replies captured in `fixtures/replies.txt` (see `fixtures/capture.py` for how) and frames
//! them the way the server sent them, so tests can compare a merge with the real single-server reply.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use shardgate_merge::{MergeError, MergeSpec, Output, Protocol, merge};
use shardgate_wire::packet::{next_packet, put_packet};

const REPLIES: &str = include_str!("../fixtures/replies.txt");

/// Captured replies by (case, part, protocol, eof mode).
pub struct Fixtures {
    replies: HashMap<(String, String, String, String), Vec<Bytes>>,
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Text => "text",
        Protocol::Binary => "binary",
    }
}

impl Fixtures {
    pub fn load() -> Fixtures {
        let mut replies = HashMap::new();
        let mut current: Option<Vec<Bytes>> = None;
        let mut key = None;
        for line in REPLIES.lines().filter(|l| !l.starts_with('#')) {
            if let Some(head) = line.strip_prefix("@ ") {
                if let (Some(k), Some(v)) = (key.take(), current.take()) {
                    replies.insert(k, v);
                }
                let f: Vec<&str> = head.split(' ').collect();
                key = Some((f[0].into(), f[1].into(), f[2].into(), f[3].into()));
                current = Some(Vec::new());
            } else if let Some(v) = current.as_mut() {
                v.push(Bytes::from(hex(line)));
            }
        }
        if let (Some(k), Some(v)) = (key, current) {
            replies.insert(k, v);
        }
        Fixtures { replies }
    }

    /// One captured reply's payloads.
    pub fn reply(&self, case: &str, part: &str, protocol: Protocol, eof: &str) -> Vec<Bytes> {
        let k = (
            case.into(),
            part.into(),
            proto_name(protocol).into(),
            eof.into(),
        );
        self.replies
            .get(&k)
            .unwrap_or_else(|| panic!("no fixture {k:?}"))
            .clone()
    }

    /// The three fake shards' replies (CLIENT_DEPRECATE_EOF, as the proxy's backends negotiate).
    pub fn shards(&self, case: &str, protocol: Protocol) -> Vec<Vec<Bytes>> {
        ["shard1", "shard2", "shard3"]
            .iter()
            .map(|p| self.reply(case, p, protocol, "deprecate"))
            .collect()
    }

    /// The single server's reply over all rows, as payloads.
    pub fn full(&self, case: &str, protocol: Protocol, deprecate_eof: bool) -> Vec<Bytes> {
        let eof = if deprecate_eof {
            "deprecate"
        } else {
            "classic"
        };
        self.reply(case, "full", protocol, eof)
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Splits framed bytes into (sequence id, payload) pairs; panics on a partial packet.
pub fn unframe(buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let (h, r) = next_packet(buf, at).expect("whole packet");
        out.push((h.seq, buf[r.clone()].to_vec()));
        at = r.end;
    }
    out
}

/// Payloads framed from sequence id 1, as a server answers a command.
pub fn framed(payloads: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::new();
    let mut seq = 1;
    for p in payloads {
        seq = put_packet(&mut out, seq, p);
    }
    out
}

/// Runs the merge of `case`'s shard replies, with the reply starting at sequence id 1.
pub fn run(
    fx: &Fixtures,
    case: &str,
    protocol: Protocol,
    spec: &MergeSpec,
    deprecate_eof: bool,
) -> Result<(BytesMut, Output), MergeError> {
    let mut out = BytesMut::new();
    let o = merge(
        spec,
        protocol,
        fx.shards(case, protocol),
        deprecate_eof,
        1,
        &mut out,
    )?;
    Ok((out, o))
}

/// Readable form of framed bytes: one "seq:hex" per packet, so a failed comparison shows which packet differs.
pub fn packets(buf: &[u8]) -> Vec<String> {
    unframe(buf)
        .iter()
        .map(|(seq, p)| {
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            format!("{seq}:{hex}")
        })
        .collect()
}

/// Asserts that merging `case` over the fake shards gives byte for byte the reply the single server sent for the
/// original query, in both protocols and both EOF modes.
pub fn assert_same_as_single_server(fx: &Fixtures, case: &str, spec: &MergeSpec) {
    for protocol in [Protocol::Text, Protocol::Binary] {
        for deprecate_eof in [true, false] {
            let (got, out) = run(fx, case, protocol, spec, deprecate_eof)
                .unwrap_or_else(|e| panic!("{case} {protocol:?}: {e}"));
            let want = framed(&fx.full(case, protocol, deprecate_eof));
            assert_eq!(
                packets(&got),
                packets(&want),
                "{case} {protocol:?} deprecate_eof={deprecate_eof}"
            );
            let columns = unframe(&got).len() as u64 - out.rows - if deprecate_eof { 2 } else { 3 };
            assert_eq!(columns as usize, spec.visible_columns, "{case}");
        }
    }
}
