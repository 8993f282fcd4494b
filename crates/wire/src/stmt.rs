//! Prepared statements in the binary protocol: PREPARE_OK, COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA and the
//! statement id of the other COM_STMT_* commands.
//!
//! The proxy hands out its own statement ids and maps them to ids on each backend connection, so these packets are
//! decoded just far enough to swap the id and to read parameter values for routing, then re-encoded for a backend
//! that may never have seen the parameter types. Everything here is pure: bytes in, values or bytes out. Which
//! backend statement an id stands for (including MariaDB's 0xFFFFFFFF, "the statement prepared last") is the
//! caller's business.
//!
//! Parameter encodings follow what MariaDB 10.11 actually reads, checked against a running server, rather than the
//! result-row table of the protocol docs: the two disagree for some types, and a value misread here could route a
//! statement to the wrong shard.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

use crate::WireError;
use crate::command::{
    COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA,
};
use crate::lenenc::Reader;
use crate::packet::{begin_packet, finish_packet};

// Field type codes a client may put in COM_STMT_EXECUTE (enum_field_types).
const TYPE_DECIMAL: u8 = 0x00;
const TYPE_TINY: u8 = 0x01;
const TYPE_SHORT: u8 = 0x02;
const TYPE_LONG: u8 = 0x03;
const TYPE_FLOAT: u8 = 0x04;
const TYPE_DOUBLE: u8 = 0x05;
const TYPE_NULL: u8 = 0x06;
const TYPE_TIMESTAMP: u8 = 0x07;
const TYPE_LONGLONG: u8 = 0x08;
const TYPE_INT24: u8 = 0x09;
const TYPE_DATE: u8 = 0x0a;
const TYPE_TIME: u8 = 0x0b;
const TYPE_DATETIME: u8 = 0x0c;
const TYPE_YEAR: u8 = 0x0d;
const TYPE_NEWDATE: u8 = 0x0e;
const TYPE_VARCHAR: u8 = 0x0f;
const TYPE_BIT: u8 = 0x10;
const TYPE_NEWDECIMAL: u8 = 0xf6;
const TYPE_ENUM: u8 = 0xf7;
const TYPE_SET: u8 = 0xf8;
const TYPE_TINY_BLOB: u8 = 0xf9;
const TYPE_MEDIUM_BLOB: u8 = 0xfa;
const TYPE_LONG_BLOB: u8 = 0xfb;
const TYPE_BLOB: u8 = 0xfc;
const TYPE_VAR_STRING: u8 = 0xfd;
const TYPE_STRING: u8 = 0xfe;
const TYPE_GEOMETRY: u8 = 0xff;

/// The flag byte's bit that marks an integer parameter unsigned (bit 15 of the 2-byte type).
const UNSIGNED_FLAG: u8 = 0x80;

/// The statement id MariaDB reads as "the statement most recently prepared on this connection".
pub const LAST_PREPARED_STATEMENT: u32 = 0xffff_ffff;

/// The reply to COM_STMT_PREPARE, before its parameter and column definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    /// The id later commands name the statement by; unique per connection only.
    pub statement_id: u32,
    /// Column definitions that follow (0 for statements that return no rows).
    pub num_columns: u16,
    /// Parameter definitions that follow: the `?` markers COM_STMT_EXECUTE must bind.
    pub num_params: u16,
    /// Warnings raised by preparing.
    pub warnings: u16,
}

impl PrepareOk {
    /// Decodes a PREPARE_OK payload. The filler and warning count are optional: the protocol docs allow the
    /// 9-byte form, so a missing tail reads as no warnings. Bytes after the warnings are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "PREPARE_OK");
        let status = r.u8()?;
        if status != 0 {
            return Err(WireError::Malformed {
                what: "PREPARE_OK",
                detail: format!("status byte 0x{status:02x}, expected 0x00"),
            });
        }
        let statement_id = r.u32()?;
        let num_columns = r.u16()?;
        let num_params = r.u16()?;
        let warnings = if r.remaining().len() >= 3 {
            r.u8()?;
            r.u16()?
        } else {
            0
        };
        Ok(PrepareOk {
            statement_id,
            num_columns,
            num_params,
            warnings,
        })
    }

    /// Queues this PREPARE_OK (12-byte form) as a packet with sequence id `seq`; returns the next sequence id.
    pub fn put(&self, out: &mut BytesMut, seq: u8) -> u8 {
        let start = begin_packet(out);
        out.put_u8(0);
        out.put_u32_le(self.statement_id);
        out.put_u16_le(self.num_columns);
        out.put_u16_le(self.num_params);
        out.put_u8(0);
        out.put_u16_le(self.warnings);
        finish_packet(out, start, seq)
    }
}

/// Replaces the statement id in place, so a packet can be forwarded with the other side's id without re-encoding.
///
/// Works on a PREPARE_OK payload and on every COM_STMT_* payload but PREPARE (EXECUTE, SEND_LONG_DATA, CLOSE,
/// RESET, FETCH): all carry the id in bytes 1..5. Any other first byte is refused, so an ERR packet is never
/// altered by mistake.
pub fn rewrite_statement_id(payload: &mut [u8], id: u32) -> Result<(), WireError> {
    const WHAT: &str = "statement packet";
    let first = *payload
        .first()
        .ok_or(WireError::ShortPacket { what: WHAT })?;
    let carries_id = matches!(
        first,
        0x00 | COM_STMT_EXECUTE
            | COM_STMT_SEND_LONG_DATA
            | COM_STMT_CLOSE
            | COM_STMT_RESET
            | COM_STMT_FETCH
    );
    if !carries_id {
        return Err(WireError::Malformed {
            what: WHAT,
            detail: format!("first byte 0x{first:02x} carries no statement id"),
        });
    }
    let field = payload.get_mut(1..5).ok_or(WireError::ShortPacket {
        what: "statement packet",
    })?;
    field.copy_from_slice(&id.to_le_bytes());
    Ok(())
}

/// The statement id of a COM_STMT_CLOSE, COM_STMT_RESET or COM_STMT_FETCH payload (command byte included).
pub fn statement_id_of(payload: &[u8]) -> Result<u32, WireError> {
    let mut r = Reader::new(payload, "statement command");
    let cmd = r.u8()?;
    if !matches!(cmd, COM_STMT_CLOSE | COM_STMT_RESET | COM_STMT_FETCH) {
        return Err(WireError::Malformed {
            what: "statement command",
            detail: format!("command 0x{cmd:02x} is not CLOSE, RESET or FETCH"),
        });
    }
    r.u32()
}

/// The declared type of one parameter: the 2-byte type of COM_STMT_EXECUTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamType {
    /// An `enum_field_types` code.
    pub field_type: u8,
    /// The flag byte's 0x80 bit: integers are read as unsigned.
    pub unsigned: bool,
}

/// How a parameter's value is laid out in COM_STMT_EXECUTE.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Little-endian integer of this many bytes.
    Int(usize),
    /// IEEE 754 single precision.
    Float4,
    /// IEEE 754 double precision.
    Float8,
    /// Length-prefixed MYSQL_TIME bytes (in practice a 1-byte length: 0, 4, 7, 8, 11 or 12).
    Temporal,
    /// Length-encoded bytes: strings, blobs, decimals as text.
    Bytes,
    /// Only valid with the null bit set; carries no bytes.
    NullOnly,
}

impl ParamType {
    fn layout(self) -> Result<Layout, WireError> {
        Ok(match self.field_type {
            TYPE_TINY => Layout::Int(1),
            TYPE_SHORT => Layout::Int(2),
            TYPE_LONG => Layout::Int(4),
            TYPE_LONGLONG => Layout::Int(8),
            TYPE_FLOAT => Layout::Float4,
            TYPE_DOUBLE => Layout::Float8,
            // MariaDB reads NEWDATE as a date; MySQL refuses it, so there is no conflicting reading.
            TYPE_TIMESTAMP | TYPE_DATE | TYPE_TIME | TYPE_DATETIME | TYPE_NEWDATE => {
                Layout::Temporal
            }
            TYPE_DECIMAL | TYPE_NEWDECIMAL | TYPE_VARCHAR | TYPE_ENUM | TYPE_SET
            | TYPE_TINY_BLOB | TYPE_MEDIUM_BLOB | TYPE_LONG_BLOB | TYPE_BLOB | TYPE_VAR_STRING
            | TYPE_STRING => Layout::Bytes,
            TYPE_NULL => Layout::NullOnly,
            // MariaDB 10.11 binds these as NULL and reads no bytes; MySQL reads bytes. No client library sends
            // them (libmysql refuses them as buffer types), and guessing would misplace every later parameter.
            TYPE_INT24 | TYPE_YEAR | TYPE_BIT | TYPE_GEOMETRY => {
                return Err(WireError::Unsupported(format!(
                    "parameter type 0x{:02x}: servers disagree on its encoding",
                    self.field_type
                )));
            }
            other => {
                return Err(WireError::Malformed {
                    what: "COM_STMT_EXECUTE",
                    detail: format!("0x{other:02x} is not a parameter type"),
                });
            }
        })
    }
}

/// One parameter's value as the client bound it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamValue<'a> {
    /// The null bit is set.
    Null,
    /// A signed integer of any width, sign-extended.
    Int(i64),
    /// An integer whose type carries the unsigned flag.
    UInt(u64),
    /// FLOAT (widened) or DOUBLE.
    Float(f64),
    /// A length-encoded value without its length: strings, blobs, and decimals as text.
    Bytes(&'a [u8]),
    /// DATE, TIME, DATETIME or TIMESTAMP in MYSQL_TIME binary form, without its length byte.
    Temporal(&'a [u8]),
    /// Sent earlier with COM_STMT_SEND_LONG_DATA; the packet carries no bytes for it.
    LongData,
}

/// Where one parameter's value is, after the null bitmap and long-data marks are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Null,
    LongData,
    /// The encoded value (length prefix included) in the payload.
    Value(Range<usize>),
}

/// A decoded COM_STMT_EXECUTE, borrowing the payload it came from.
#[derive(Debug, Clone)]
pub struct ExecuteRequest<'a> {
    /// The whole payload, command byte included; slots index into it.
    payload: &'a [u8],
    /// The client's statement id, unresolved (may be [`LAST_PREPARED_STATEMENT`]).
    statement_id: u32,
    /// The cursor flags byte.
    flags: u8,
    /// Always 1 in practice; kept so re-encoding changes nothing but the id.
    iteration_count: u32,
    /// `(num_params + 7) / 8` bytes, bit `i` set when parameter `i` is NULL.
    null_bitmap: &'a [u8],
    /// Whether this packet carried the types (otherwise they came from the caller).
    new_params_bound: bool,
    /// One type per parameter, from the packet or from the caller.
    types: Vec<ParamType>,
    /// One slot per parameter.
    slots: Vec<Slot>,
    /// All value bytes, from the first value to the end of the last: copied as one block when re-encoding.
    values: Range<usize>,
}

impl<'a> ExecuteRequest<'a> {
    /// Decodes a COM_STMT_EXECUTE payload (starting with 0x17) for a statement with `num_params` parameters.
    ///
    /// `bound_types` are the types from this statement's last execute; they are required when the packet does not
    /// resend them (the server refuses an execute whose types were never sent). `long_data[i]` is true when
    /// parameter `i` received COM_STMT_SEND_LONG_DATA since the last execute: like the server, its value is not in
    /// the packet and its null bit is ignored. Indexes past the end of `long_data` are false. Bytes after the last
    /// value are ignored, as the server does.
    pub fn decode(
        payload: &'a [u8],
        num_params: u16,
        bound_types: Option<&[ParamType]>,
        long_data: &[bool],
    ) -> Result<Self, WireError> {
        const WHAT: &str = "COM_STMT_EXECUTE";
        let mut r = Reader::new(payload, WHAT);
        let cmd = r.u8()?;
        if cmd != COM_STMT_EXECUTE {
            return Err(WireError::Malformed {
                what: WHAT,
                detail: format!("command 0x{cmd:02x}, expected 0x17"),
            });
        }
        let statement_id = r.u32()?;
        let flags = r.u8()?;
        let iteration_count = r.u32()?;
        let n = usize::from(num_params);
        let mut req = ExecuteRequest {
            payload,
            statement_id,
            flags,
            iteration_count,
            null_bitmap: &[],
            new_params_bound: false,
            types: Vec::new(),
            slots: Vec::with_capacity(n),
            values: payload.len()..payload.len(),
        };
        // Without parameters clients stop after the iteration count, and the server reads no further.
        if n == 0 {
            return Ok(req);
        }
        req.null_bitmap = r.take(n.div_ceil(8))?;
        // The server treats any non-zero byte as "types follow".
        req.new_params_bound = r.u8()? != 0;
        req.types = if req.new_params_bound {
            let mut types = Vec::with_capacity(n);
            for _ in 0..n {
                let t = r.take(2)?;
                types.push(ParamType {
                    field_type: t[0],
                    unsigned: t[1] & UNSIGNED_FLAG != 0,
                });
            }
            types
        } else {
            match bound_types {
                Some(t) if t.len() == n => t.to_vec(),
                Some(t) => {
                    return Err(WireError::Malformed {
                        what: WHAT,
                        detail: format!("{} bound types for {n} parameters", t.len()),
                    });
                }
                None => {
                    return Err(WireError::Malformed {
                        what: WHAT,
                        detail: "parameter types were never sent".to_string(),
                    });
                }
            }
        };
        let start = payload.len() - r.remaining().len();
        for (i, ty) in req.types.iter().enumerate() {
            if long_data.get(i).copied().unwrap_or(false) {
                req.slots.push(Slot::LongData);
                continue;
            }
            let null = req
                .null_bitmap
                .get(i / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
            let layout = ty.layout();
            if null {
                // A NULL carries no bytes, so only a type every server refuses is an error here.
                if let Err(e @ WireError::Malformed { .. }) = layout {
                    return Err(e);
                }
                req.slots.push(Slot::Null);
                continue;
            }
            let from = payload.len() - r.remaining().len();
            match layout? {
                Layout::Int(w) => {
                    r.take(w)?;
                }
                Layout::Float4 => {
                    r.take(4)?;
                }
                Layout::Float8 => {
                    r.take(8)?;
                }
                Layout::Temporal | Layout::Bytes => {
                    r.lenenc_bytes()?;
                }
                Layout::NullOnly => {
                    // MariaDB refuses it; MySQL would read a string. Neither reading is safe to route on.
                    return Err(WireError::Unsupported(format!(
                        "parameter {i} has type NULL but its null bit is clear"
                    )));
                }
            }
            req.slots
                .push(Slot::Value(from..payload.len() - r.remaining().len()));
        }
        req.values = start..payload.len() - r.remaining().len();
        Ok(req)
    }

    /// The client's statement id, unresolved: MariaDB clients may send [`LAST_PREPARED_STATEMENT`].
    pub fn statement_id(&self) -> u32 {
        self.statement_id
    }

    /// The cursor flags byte (0 = no cursor).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The iteration count (the servers only support 1).
    pub fn iteration_count(&self) -> u32 {
        self.iteration_count
    }

    /// The null bitmap as sent: bit `i % 8` of byte `i / 8` marks parameter `i` NULL. Empty without parameters.
    pub fn null_bitmap(&self) -> &'a [u8] {
        self.null_bitmap
    }

    /// True when this packet carried the parameter types itself; the caller keeps [`types`](Self::types) for the
    /// next execute of the same statement, which may omit them.
    pub fn new_params_bound(&self) -> bool {
        self.new_params_bound
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.slots.len()
    }

    /// The parameter types in effect for this execute.
    pub fn types(&self) -> &[ParamType] {
        &self.types
    }

    /// The bytes of parameter `i`'s encoded value (length prefix included) in the payload; `None` for NULL,
    /// long-data and out-of-range parameters.
    pub fn value_range(&self, i: usize) -> Option<Range<usize>> {
        match self.slots.get(i) {
            Some(Slot::Value(range)) => Some(range.clone()),
            _ => None,
        }
    }

    /// Parameter `i`'s value, read according to its type.
    pub fn param(&self, i: usize) -> Result<ParamValue<'a>, WireError> {
        const WHAT: &str = "COM_STMT_EXECUTE parameter";
        let (slot, ty) =
            self.slots
                .get(i)
                .zip(self.types.get(i))
                .ok_or_else(|| WireError::Malformed {
                    what: WHAT,
                    detail: format!("index {i} of {} parameters", self.slots.len()),
                })?;
        let range = match slot {
            Slot::Null => return Ok(ParamValue::Null),
            Slot::LongData => return Ok(ParamValue::LongData),
            Slot::Value(range) => range.clone(),
        };
        let raw = self
            .payload
            .get(range)
            .ok_or(WireError::ShortPacket { what: WHAT })?;
        let mut r = Reader::new(raw, WHAT);
        Ok(match ty.layout()? {
            Layout::Int(w) => {
                let b = r.take(w)?;
                // Little-endian into 8 bytes; sign-extend from the top bit of the original width.
                let mut a = [0u8; 8];
                a[..w].copy_from_slice(b);
                let v = u64::from_le_bytes(a);
                if ty.unsigned {
                    ParamValue::UInt(v)
                } else {
                    let shift = 64 - 8 * w as u32;
                    ParamValue::Int(((v << shift) as i64) >> shift)
                }
            }
            Layout::Float4 => {
                let b = r.take(4)?;
                ParamValue::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Layout::Float8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(r.take(8)?);
                ParamValue::Float(f64::from_le_bytes(a))
            }
            Layout::Temporal => ParamValue::Temporal(r.lenenc_bytes()?),
            Layout::Bytes => ParamValue::Bytes(r.lenenc_bytes()?),
            Layout::NullOnly => ParamValue::Null,
        })
    }
}

/// Appends a COM_STMT_EXECUTE payload (unframed, command byte included) that executes `req` as statement
/// `backend_statement_id` with cursor `flags`.
///
/// The types are always sent (new_params_bound = 1): the backend connection may never have seen them, even when
/// the client's packet left them out. The null bitmap and the value bytes are copied as sent. Long-data parameters
/// stay omitted: the caller must replay their COM_STMT_SEND_LONG_DATA packets on the same backend connection, with
/// the backend's id, before sending this execute.
pub fn encode_execute(
    out: &mut BytesMut,
    backend_statement_id: u32,
    req: &ExecuteRequest,
    flags: u8,
) {
    let values = req.payload.get(req.values.clone()).unwrap_or_default();
    out.reserve(10 + req.null_bitmap.len() + 1 + 2 * req.types.len() + values.len());
    out.put_u8(COM_STMT_EXECUTE);
    out.put_u32_le(backend_statement_id);
    out.put_u8(flags);
    out.put_u32_le(req.iteration_count);
    if req.slots.is_empty() {
        return;
    }
    out.put_slice(req.null_bitmap);
    out.put_u8(1);
    for t in &req.types {
        out.put_u8(t.field_type);
        out.put_u8(if t.unsigned { UNSIGNED_FLAG } else { 0 });
    }
    out.put_slice(values);
}

/// A COM_STMT_SEND_LONG_DATA payload: one chunk of one parameter's value, appended to what came before. The server
/// sends no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLongData<'a> {
    /// The client's statement id.
    pub statement_id: u32,
    /// The 0-based parameter the chunk belongs to.
    pub param_id: u16,
    /// The chunk.
    pub data: &'a [u8],
}

impl<'a> SendLongData<'a> {
    /// Decodes a COM_STMT_SEND_LONG_DATA payload (starting with 0x18).
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "COM_STMT_SEND_LONG_DATA");
        let cmd = r.u8()?;
        if cmd != COM_STMT_SEND_LONG_DATA {
            return Err(WireError::Malformed {
                what: "COM_STMT_SEND_LONG_DATA",
                detail: format!("command 0x{cmd:02x}, expected 0x18"),
            });
        }
        let statement_id = r.u32()?;
        let param_id = r.u16()?;
        Ok(SendLongData {
            statement_id,
            param_id,
            data: r.remaining(),
        })
    }

    /// Appends this chunk as an unframed payload for statement `statement_id` (a backend's id).
    pub fn encode(&self, out: &mut BytesMut, statement_id: u32) {
        out.reserve(7 + self.data.len());
        out.put_u8(COM_STMT_SEND_LONG_DATA);
        out.put_u32_le(statement_id);
        out.put_u16_le(self.param_id);
        out.put_slice(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::next_packet;

    fn ty(field_type: u8, unsigned: bool) -> ParamType {
        ParamType {
            field_type,
            unsigned,
        }
    }

    /// Builds a COM_STMT_EXECUTE payload as the protocol docs lay it out: cmd, id, flags, iteration count, null
    /// bitmap, new_params_bound, 2 bytes per type (only when bound), values.
    fn execute(id: u32, nulls: &[u8], types: Option<&[ParamType]>, values: &[u8]) -> Vec<u8> {
        let mut p = vec![COM_STMT_EXECUTE];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(nulls);
        match types {
            Some(types) => {
                p.push(1);
                for t in types {
                    p.push(t.field_type);
                    p.push(if t.unsigned { 0x80 } else { 0 });
                }
            }
            None => p.push(0),
        }
        p.extend_from_slice(values);
        p
    }

    fn params<'a>(req: &ExecuteRequest<'a>) -> Vec<ParamValue<'a>> {
        (0..req.num_params())
            .map(|i| req.param(i).unwrap())
            .collect()
    }

    #[test]
    fn prepare_ok_from_mariadb_decodes_and_re_encodes_identically() {
        // Captured from MariaDB 10.11 for `SELECT ?, ?`.
        let real = [0x00, 1, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0];
        let ok = PrepareOk::decode(&real).unwrap();
        assert_eq!(
            ok,
            PrepareOk {
                statement_id: 1,
                num_columns: 2,
                num_params: 2,
                warnings: 0
            }
        );
        let mut out = BytesMut::new();
        assert_eq!(ok.put(&mut out, 1), 2);
        let (h, r) = next_packet(&out, 0).unwrap();
        assert_eq!(h.seq, 1);
        assert_eq!(&out[r], &real[..]);
    }

    #[test]
    fn prepare_ok_without_filler_and_warnings_reads_as_no_warnings() {
        let short = [0x00, 7, 0, 0, 0, 0, 0, 3, 0];
        let ok = PrepareOk::decode(&short).unwrap();
        assert_eq!((ok.statement_id, ok.num_params, ok.warnings), (7, 3, 0));
        let with_warnings = [0x00, 7, 0, 0, 0, 0, 0, 3, 0, 0, 5, 0];
        assert_eq!(PrepareOk::decode(&with_warnings).unwrap().warnings, 5);
    }

    #[test]
    fn prepare_ok_refuses_an_err_packet_and_short_input() {
        assert!(matches!(
            PrepareOk::decode(&[0xff, 0x28, 0x04, b'#']),
            Err(WireError::Malformed { .. })
        ));
        for len in 0..9 {
            let p = [0u8; 9];
            assert!(matches!(
                PrepareOk::decode(&p[..len]),
                Err(WireError::ShortPacket { .. })
            ));
        }
    }

    #[test]
    fn rewrite_statement_id_changes_only_the_id() {
        let mut ok = [0x00, 1, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0];
        rewrite_statement_id(&mut ok, 0x0102_0304).unwrap();
        assert_eq!(ok, [0x00, 4, 3, 2, 1, 2, 0, 2, 0, 0, 0, 0]);
        let mut close = [COM_STMT_CLOSE, 9, 0, 0, 0];
        rewrite_statement_id(&mut close, 3).unwrap();
        assert_eq!(statement_id_of(&close).unwrap(), 3);
    }

    #[test]
    fn rewrite_statement_id_refuses_err_packets_and_short_payloads() {
        let mut err = [0xff, 0x28, 0x04, b'#', b'H'];
        assert!(rewrite_statement_id(&mut err, 1).is_err());
        assert_eq!(err, [0xff, 0x28, 0x04, b'#', b'H']);
        assert!(rewrite_statement_id(&mut [], 1).is_err());
        assert!(matches!(
            rewrite_statement_id(&mut [COM_STMT_RESET, 1, 0], 1),
            Err(WireError::ShortPacket { .. })
        ));
    }

    #[test]
    fn statement_id_is_read_from_close_reset_and_fetch() {
        assert_eq!(statement_id_of(&[COM_STMT_CLOSE, 5, 0, 0, 0]).unwrap(), 5);
        assert_eq!(statement_id_of(&[COM_STMT_RESET, 0, 1, 0, 0]).unwrap(), 256);
        let fetch = [COM_STMT_FETCH, 0xff, 0xff, 0xff, 0xff, 10, 0, 0, 0];
        assert_eq!(statement_id_of(&fetch).unwrap(), LAST_PREPARED_STATEMENT);
        assert!(matches!(
            statement_id_of(&[COM_STMT_CLOSE, 5, 0]),
            Err(WireError::ShortPacket { .. })
        ));
        assert!(matches!(
            statement_id_of(&[0x03, 5, 0, 0, 0]),
            Err(WireError::Malformed { .. })
        ));
        assert!(statement_id_of(&[]).is_err());
    }

    #[test]
    fn integers_are_sign_extended_unless_flagged_unsigned() {
        let types = [
            ty(TYPE_TINY, false),
            ty(TYPE_TINY, true),
            ty(TYPE_SHORT, false),
            ty(TYPE_SHORT, true),
            ty(TYPE_LONG, false),
            ty(TYPE_LONG, true),
            ty(TYPE_LONGLONG, false),
            ty(TYPE_LONGLONG, true),
        ];
        let mut v = vec![0xff, 0xff, 0xfe, 0xff, 0xfe, 0xff];
        v.extend_from_slice(&i32::MIN.to_le_bytes());
        v.extend_from_slice(&u32::MAX.to_le_bytes());
        v.extend_from_slice(&(-7i64).to_le_bytes());
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        let p = execute(1, &[0], Some(&types), &v);
        let req = ExecuteRequest::decode(&p, 8, None, &[]).unwrap();
        assert_eq!(
            params(&req),
            [
                ParamValue::Int(-1),
                ParamValue::UInt(255),
                ParamValue::Int(-2),
                ParamValue::UInt(0xfffe),
                ParamValue::Int(i64::from(i32::MIN)),
                ParamValue::UInt(u64::from(u32::MAX)),
                ParamValue::Int(-7),
                ParamValue::UInt(u64::MAX),
            ]
        );
    }

    #[test]
    fn floats_strings_decimals_and_temporals_are_read_by_type() {
        let types = [
            ty(TYPE_FLOAT, false),
            ty(TYPE_DOUBLE, false),
            ty(TYPE_VAR_STRING, false),
            ty(TYPE_NEWDECIMAL, false),
            ty(TYPE_DATETIME, false),
            ty(TYPE_TIME, false),
            ty(TYPE_BLOB, false),
        ];
        let blob = vec![b'z'; 300];
        let mut v = Vec::new();
        v.extend_from_slice(&1.5f32.to_le_bytes());
        v.extend_from_slice(&(-0.25f64).to_le_bytes());
        v.extend_from_slice(b"\x03abc\x041.50");
        v.extend_from_slice(&[7, 0xe8, 0x07, 1, 2, 3, 4, 5]); // 2024-01-02 03:04:05
        v.push(0); // TIME 00:00:00 as zero length
        v.extend_from_slice(&[0xfc, 0x2c, 0x01]); // 300 in a 2-byte length
        v.extend_from_slice(&blob);
        let p = execute(1, &[0], Some(&types), &v);
        let req = ExecuteRequest::decode(&p, 7, None, &[]).unwrap();
        assert_eq!(
            params(&req),
            [
                ParamValue::Float(1.5),
                ParamValue::Float(-0.25),
                ParamValue::Bytes(b"abc"),
                ParamValue::Bytes(b"1.50"),
                ParamValue::Temporal(&[0xe8, 0x07, 1, 2, 3, 4, 5]),
                ParamValue::Temporal(&[]),
                ParamValue::Bytes(&blob),
            ]
        );
    }

    #[test]
    fn null_parameters_take_no_bytes_and_the_bitmap_spans_bytes() {
        // Nine parameters: the bitmap is two bytes; parameters 0 and 8 are NULL.
        let types = [ty(TYPE_LONG, false); 9];
        let mut v = Vec::new();
        for i in 1..8i32 {
            v.extend_from_slice(&i.to_le_bytes());
        }
        let p = execute(1, &[0x01, 0x01], Some(&types), &v);
        let req = ExecuteRequest::decode(&p, 9, None, &[]).unwrap();
        assert_eq!(req.null_bitmap(), &[0x01, 0x01]);
        let got = params(&req);
        assert_eq!(got[0], ParamValue::Null);
        assert_eq!(
            got[1..8],
            (1..8).map(ParamValue::Int).collect::<Vec<_>>()[..]
        );
        assert_eq!(got[8], ParamValue::Null);
        assert_eq!(req.value_range(0), None);
        assert_eq!(req.value_range(1), Some(p.len() - 28..p.len() - 24));
    }

    #[test]
    fn long_data_parameters_have_no_bytes_and_ignore_their_null_bit() {
        // As MariaDB does: a parameter with long data is not read, whatever its null bit says.
        let types = [ty(TYPE_BLOB, false), ty(TYPE_VAR_STRING, false)];
        let p = execute(1, &[0x01], Some(&types), b"\x02ab");
        let req = ExecuteRequest::decode(&p, 2, None, &[true]).unwrap();
        assert_eq!(
            params(&req),
            [ParamValue::LongData, ParamValue::Bytes(b"ab")]
        );
    }

    #[test]
    fn types_come_from_the_caller_when_the_packet_omits_them() {
        let bound = [ty(TYPE_SHORT, true), ty(TYPE_TINY, false)];
        let p = execute(1, &[0], None, &[0x01, 0x02, 0xff]);
        let req = ExecuteRequest::decode(&p, 2, Some(&bound), &[]).unwrap();
        assert!(!req.new_params_bound());
        assert_eq!(req.types(), &bound);
        assert_eq!(
            params(&req),
            [ParamValue::UInt(0x0201), ParamValue::Int(-1)]
        );
    }

    #[test]
    fn types_that_were_never_sent_are_an_error() {
        let p = execute(1, &[0], None, &[0x01]);
        assert!(matches!(
            ExecuteRequest::decode(&p, 1, None, &[]),
            Err(WireError::Malformed { .. })
        ));
        let two = [ty(TYPE_TINY, false); 2];
        assert!(matches!(
            ExecuteRequest::decode(&p, 1, Some(&two), &[]),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn packet_types_win_over_the_callers() {
        let p = execute(1, &[0], Some(&[ty(TYPE_TINY, true)]), &[0xff]);
        let stale = [ty(TYPE_LONGLONG, false)];
        let req = ExecuteRequest::decode(&p, 1, Some(&stale), &[]).unwrap();
        assert_eq!(params(&req), [ParamValue::UInt(255)]);
    }

    #[test]
    fn a_statement_without_parameters_ends_after_the_iteration_count() {
        let p = [COM_STMT_EXECUTE, 4, 0, 0, 0, 1, 1, 0, 0, 0];
        let req = ExecuteRequest::decode(&p, 0, None, &[]).unwrap();
        assert_eq!(
            (req.statement_id(), req.flags(), req.iteration_count()),
            (4, 1, 1)
        );
        assert_eq!(req.num_params(), 0);
        let mut out = BytesMut::new();
        encode_execute(&mut out, 9, &req, 0);
        assert_eq!(&out[..], &[COM_STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn the_last_prepared_statement_id_is_exposed_raw() {
        let p = execute(
            LAST_PREPARED_STATEMENT,
            &[0],
            Some(&[ty(TYPE_TINY, false)]),
            &[1],
        );
        let req = ExecuteRequest::decode(&p, 1, None, &[]).unwrap();
        assert_eq!(req.statement_id(), LAST_PREPARED_STATEMENT);
    }

    #[test]
    fn types_servers_read_differently_are_refused_unless_null() {
        for t in [TYPE_INT24, TYPE_YEAR, TYPE_BIT, TYPE_GEOMETRY] {
            let p = execute(1, &[0], Some(&[ty(t, false)]), b"\x02xy");
            assert!(
                matches!(
                    ExecuteRequest::decode(&p, 1, None, &[]),
                    Err(WireError::Unsupported(_))
                ),
                "type 0x{t:02x}"
            );
            let p = execute(1, &[1], Some(&[ty(t, false)]), b"");
            let req = ExecuteRequest::decode(&p, 1, None, &[]).unwrap();
            assert_eq!(req.param(0).unwrap(), ParamValue::Null);
        }
        // Type NULL is what drivers send for a nil argument, with the null bit set.
        let p = execute(1, &[1], Some(&[ty(TYPE_NULL, false)]), b"");
        assert_eq!(
            ExecuteRequest::decode(&p, 1, None, &[])
                .unwrap()
                .param(0)
                .unwrap(),
            ParamValue::Null
        );
        let p = execute(1, &[0], Some(&[ty(TYPE_NULL, false)]), b"\x02xy");
        assert!(matches!(
            ExecuteRequest::decode(&p, 1, None, &[]),
            Err(WireError::Unsupported(_))
        ));
    }

    #[test]
    fn unknown_types_are_malformed_even_when_null() {
        for t in [0x11, 0x14, 0x20, 0xf5] {
            let p = execute(1, &[1], Some(&[ty(t, false)]), b"");
            assert!(
                matches!(
                    ExecuteRequest::decode(&p, 1, None, &[]),
                    Err(WireError::Malformed { .. })
                ),
                "type 0x{t:02x}"
            );
        }
    }

    #[test]
    fn every_truncation_of_an_execute_is_an_error() {
        let types = [
            ty(TYPE_LONGLONG, false),
            ty(TYPE_VAR_STRING, false),
            ty(TYPE_DATE, false),
        ];
        let mut v = 5i64.to_le_bytes().to_vec();
        v.extend_from_slice(b"\x03abc\x04\xe8\x07\x01\x02");
        let p = execute(1, &[0], Some(&types), &v);
        assert!(ExecuteRequest::decode(&p, 3, None, &[]).is_ok());
        for len in 0..p.len() {
            assert!(
                ExecuteRequest::decode(&p[..len], 3, None, &[]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn a_wrong_command_byte_and_a_bad_index_are_errors() {
        let mut p = execute(1, &[0], Some(&[ty(TYPE_TINY, false)]), &[1]);
        let req = ExecuteRequest::decode(&p, 1, None, &[]).unwrap();
        assert!(req.param(1).is_err());
        p[0] = COM_STMT_SEND_LONG_DATA;
        assert!(matches!(
            ExecuteRequest::decode(&p, 1, None, &[]),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // xorshift: deterministic, no dependency.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let bound = [ty(TYPE_VAR_STRING, false); 3];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = p.first_mut() {
                *b = COM_STMT_EXECUTE;
            }
            let n = (next() % 4) as u16;
            let long = [next() % 2 == 0, false, true];
            if let Ok(req) = ExecuteRequest::decode(&p, n, Some(&bound[..usize::from(n)]), &long) {
                for i in 0..=req.num_params() {
                    let _ = req.param(i);
                }
                encode_execute(&mut BytesMut::new(), 1, &req, 0);
            }
            let _ = PrepareOk::decode(&p);
            let _ = SendLongData::decode(&p);
            let _ = statement_id_of(&p);
            let _ = rewrite_statement_id(&mut p, 1);
        }
    }

    #[test]
    fn encode_execute_sends_types_the_client_left_out() {
        let bound = [
            ty(TYPE_LONGLONG, true),
            ty(TYPE_VAR_STRING, false),
            ty(TYPE_TINY, false),
        ];
        let mut v = 42u64.to_le_bytes().to_vec();
        v.extend_from_slice(b"\x06tenant");
        let p = execute(3, &[0b100], None, &v);
        let req = ExecuteRequest::decode(&p, 3, Some(&bound), &[]).unwrap();
        let mut out = BytesMut::new();
        encode_execute(&mut out, 77, &req, 0);
        assert_eq!(&out[..], &execute(77, &[0b100], Some(&bound), &v)[..]);

        let again = ExecuteRequest::decode(&out, 3, None, &[]).unwrap();
        assert!(again.new_params_bound());
        assert_eq!(again.statement_id(), 77);
        assert_eq!(again.types(), req.types());
        assert_eq!(params(&again), params(&req));
    }

    #[test]
    fn encode_execute_keeps_long_data_omitted_and_drops_trailing_bytes() {
        let types = [ty(TYPE_BLOB, false), ty(TYPE_LONG, false)];
        let mut p = execute(3, &[0], Some(&types), &9i32.to_le_bytes());
        p.extend_from_slice(b"junk");
        let req = ExecuteRequest::decode(&p, 2, None, &[true]).unwrap();
        let mut out = BytesMut::new();
        encode_execute(&mut out, 8, &req, 1);
        assert_eq!(out.len(), p.len() - 4);
        assert_eq!(out[5], 1, "the caller's cursor flags");
        let again = ExecuteRequest::decode(&out, 2, None, &[true]).unwrap();
        assert_eq!(params(&again), [ParamValue::LongData, ParamValue::Int(9)]);
    }

    #[test]
    fn send_long_data_round_trips_under_another_statement_id() {
        let p = [COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 2, 0, b'h', b'i'];
        let d = SendLongData::decode(&p).unwrap();
        assert_eq!((d.statement_id, d.param_id, d.data), (1, 2, &b"hi"[..]));
        let mut out = BytesMut::new();
        d.encode(&mut out, 5);
        assert_eq!(
            &out[..],
            &[COM_STMT_SEND_LONG_DATA, 5, 0, 0, 0, 2, 0, b'h', b'i']
        );
        // An empty chunk is allowed: it still marks the parameter as long data.
        assert_eq!(SendLongData::decode(&p[..7]).unwrap().data, b"");
    }

    #[test]
    fn send_long_data_refuses_short_input_and_other_commands() {
        let p = [COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 2, 0];
        for len in 0..p.len() {
            assert!(SendLongData::decode(&p[..len]).is_err());
        }
        assert!(matches!(
            SendLongData::decode(&[COM_STMT_CLOSE, 1, 0, 0, 0, 2, 0]),
            Err(WireError::Malformed { .. })
        ));
    }
}
