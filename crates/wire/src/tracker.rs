//! Where a command's response ends, found without decoding rows.
//!
//! The proxy forwards backend replies as bytes. To know when a backend connection is free again, and to translate
//! between clients with and without CLIENT_DEPRECATE_EOF, it feeds each packet header and first bytes to a
//! [`ResponseTracker`], which names the packet's role and says when the response is complete.

use crate::WireError;
use crate::capability::SERVER_MORE_RESULTS_EXISTS;
use crate::lenenc::Reader;
use crate::packet::PacketHeader;
use crate::response::{OkPacket, decode_terminator};

/// Which response shape to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// COM_QUERY and the commands answered by OK or ERR alone (COM_PING, COM_INIT_DB, ...): an OK, an ERR, or one
    /// or more text result sets.
    Query,
    /// COM_FIELD_LIST: column definitions, then a terminator.
    FieldList,
}

/// What one packet is within the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketRole {
    /// An OK that answers the command (not a result-set terminator).
    Ok {
        status: u16,
        affected_rows: u64,
        last_insert_id: u64,
        warnings: u16,
    },
    /// An ERR; the response ends here.
    Err,
    /// The column count that opens a result set.
    ColumnCount,
    /// A column definition; `last` is true for the final one of the set.
    ColumnDef { last: bool },
    /// The classic EOF between column definitions and rows.
    ColumnsEof,
    /// A row.
    Row,
    /// The packet that ends a result set (classic EOF, or an 0xFE OK under CLIENT_DEPRECATE_EOF).
    RowsEnd { warnings: u16, status: u16 },
    /// A later part of a packet split at 16 MiB: same role as the part before it.
    Continuation,
}

/// The role of one packet and whether the response is now complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerEvent {
    pub role: PacketRole,
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    First,
    Columns { left: u64 },
    ColumnsEof,
    Rows,
    FieldList,
    Done,
}

/// Follows one response packet by packet.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    deprecate_eof: bool,
    state: State,
    continuation: bool,
}

impl ResponseTracker {
    /// A tracker for a response from a peer that negotiated (or not) CLIENT_DEPRECATE_EOF.
    pub fn new(kind: ResponseKind, deprecate_eof: bool) -> Self {
        let state = match kind {
            ResponseKind::Query => State::First,
            ResponseKind::FieldList => State::FieldList,
        };
        ResponseTracker {
            deprecate_eof,
            state,
            continuation: false,
        }
    }

    /// True once the last packet of the response has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Classifies the next packet. `payload` is that physical packet's payload.
    pub fn on_packet(
        &mut self,
        h: PacketHeader,
        payload: &[u8],
    ) -> Result<TrackerEvent, WireError> {
        if self.state == State::Done {
            return Err(malformed("a packet after the end of the response"));
        }
        if std::mem::replace(&mut self.continuation, h.continues()) {
            return Ok(self.event(PacketRole::Continuation));
        }
        let first = payload.first().copied();
        let role = match (self.state, first) {
            (_, None) => return Err(malformed("an empty packet")),
            (_, Some(0xff)) => {
                self.state = State::Done;
                PacketRole::Err
            }
            (State::First, Some(0x00)) => {
                let ok = OkPacket::decode(payload)?;
                self.state = if ok.status & SERVER_MORE_RESULTS_EXISTS != 0 {
                    State::First
                } else {
                    State::Done
                };
                PacketRole::Ok {
                    status: ok.status,
                    affected_rows: ok.affected_rows,
                    last_insert_id: ok.last_insert_id,
                    warnings: ok.warnings,
                }
            }
            (State::First, Some(0xfb)) => {
                return Err(WireError::Unsupported("LOAD DATA LOCAL INFILE".into()));
            }
            (State::First, Some(_)) => {
                let n = Reader::new(payload, "column count").lenenc_int()?;
                if n == 0 {
                    return Err(malformed("a result set with no columns"));
                }
                self.state = State::Columns { left: n };
                PacketRole::ColumnCount
            }
            (State::Columns { left }, Some(_)) => {
                let left = left - 1;
                self.state = match (left, self.deprecate_eof) {
                    (0, true) => State::Rows,
                    (0, false) => State::ColumnsEof,
                    _ => State::Columns { left },
                };
                PacketRole::ColumnDef { last: left == 0 }
            }
            (State::ColumnsEof, Some(0xfe)) => {
                self.state = State::Rows;
                PacketRole::ColumnsEof
            }
            (State::ColumnsEof, Some(_)) => {
                return Err(malformed("no EOF after column definitions"));
            }
            (State::Rows | State::FieldList, Some(0xfe)) if self.is_terminator(h) => {
                let (warnings, status) = decode_terminator(payload)?;
                let more = self.state == State::Rows && status & SERVER_MORE_RESULTS_EXISTS != 0;
                self.state = if more { State::First } else { State::Done };
                PacketRole::RowsEnd { warnings, status }
            }
            (State::Rows, Some(_)) => PacketRole::Row,
            (State::FieldList, Some(_)) => PacketRole::ColumnDef { last: false },
            (State::Done, Some(_)) => {
                return Err(malformed("a packet after the end of the response"));
            }
        };
        Ok(self.event(role))
    }

    /// An 0xFE packet ends the rows when it is short (classic EOF) or, under CLIENT_DEPRECATE_EOF, when it is not
    /// a 16 MiB part (a row can only start with 0xFE if its first field is longer than 16 MiB).
    fn is_terminator(&self, h: PacketHeader) -> bool {
        if self.deprecate_eof {
            !h.continues()
        } else {
            h.len < 9
        }
    }

    fn event(&self, role: PacketRole) -> TrackerEvent {
        TrackerEvent {
            role,
            done: self.state == State::Done,
        }
    }
}

fn malformed(detail: &str) -> WireError {
    WireError::Malformed {
        what: "response",
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut ResponseTracker, payload: &[u8]) -> TrackerEvent {
        t.on_packet(
            PacketHeader {
                len: payload.len(),
                seq: 0,
            },
            payload,
        )
        .unwrap()
    }

    #[test]
    fn a_result_set_ends_at_its_ok_terminator_under_deprecate_eof() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        assert_eq!(feed(&mut t, &[2]).role, PacketRole::ColumnCount);
        assert_eq!(
            feed(&mut t, b"\x03defcol").role,
            PacketRole::ColumnDef { last: false }
        );
        assert_eq!(
            feed(&mut t, b"\x03defcol").role,
            PacketRole::ColumnDef { last: true }
        );
        let row = feed(&mut t, b"\x011\x012");
        assert_eq!((row.role, row.done), (PacketRole::Row, false));
        let end = feed(&mut t, &[0xfe, 0, 0, 2, 0, 0, 0]);
        assert_eq!(
            end.role,
            PacketRole::RowsEnd {
                warnings: 0,
                status: 2
            }
        );
        assert!(end.done);
    }

    #[test]
    fn classic_eof_mode_expects_an_eof_after_columns() {
        let mut t = ResponseTracker::new(ResponseKind::Query, false);
        feed(&mut t, &[1]);
        feed(&mut t, b"\x03def");
        assert_eq!(
            feed(&mut t, &[0xfe, 0, 0, 2, 0]).role,
            PacketRole::ColumnsEof
        );
        assert_eq!(feed(&mut t, b"\x01x").role, PacketRole::Row);
        assert!(feed(&mut t, &[0xfe, 1, 0, 2, 0]).done);
    }

    #[test]
    fn more_results_keep_the_response_open() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        let first = feed(&mut t, &[0, 1, 0, 0x0a, 0, 0, 0]);
        assert!(!first.done);
        assert!(feed(&mut t, &[0, 0, 0, 2, 0, 0, 0]).done);
    }

    #[test]
    fn an_error_in_the_middle_of_rows_ends_the_response() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        feed(&mut t, &[1]);
        feed(&mut t, b"\x03def");
        feed(&mut t, b"\x01a");
        let e = feed(&mut t, b"\xff\x15\x04#HY000boom");
        assert_eq!((e.role, e.done), (PacketRole::Err, true));
        assert!(t.on_packet(PacketHeader { len: 1, seq: 9 }, b"x").is_err());
    }

    #[test]
    fn a_16mib_row_part_starting_with_0xfe_is_not_a_terminator() {
        let mut t = ResponseTracker::new(ResponseKind::Query, true);
        feed(&mut t, &[1]);
        feed(&mut t, b"\x03def");
        let big = t
            .on_packet(
                PacketHeader {
                    len: crate::MAX_PAYLOAD,
                    seq: 3,
                },
                &[0xfe, 1, 2],
            )
            .unwrap();
        assert_eq!(big.role, PacketRole::Row);
        let cont = t
            .on_packet(PacketHeader { len: 3, seq: 4 }, &[0xfe, 0, 0])
            .unwrap();
        assert_eq!(cont.role, PacketRole::Continuation);
        assert!(feed(&mut t, &[0xfe, 0, 0, 2, 0, 0, 0]).done);
    }

    #[test]
    fn field_list_ends_at_eof() {
        let mut t = ResponseTracker::new(ResponseKind::FieldList, false);
        assert!(!feed(&mut t, b"\x03def").done);
        assert!(feed(&mut t, &[0xfe, 0, 0, 2, 0]).done);
    }
}
