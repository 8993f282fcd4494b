//! Column definitions: the fields of a column-definition packet that decide how a cell is decoded and compared,
//! and the one rewrite the merge makes to a definition (an AVG computed from a shard's SUM).

use bytes::{BufMut, Bytes, BytesMut};
use shardgate_wire::WireError;
use shardgate_wire::lenenc::Reader;

/// Column type codes as they appear on the wire (`enum_field_types`).
pub(crate) mod types {
    pub const DECIMAL: u8 = 0x00;
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const NULL: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const DATE: u8 = 0x0a;
    pub const TIME: u8 = 0x0b;
    pub const DATETIME: u8 = 0x0c;
    pub const YEAR: u8 = 0x0d;
    pub const NEWDATE: u8 = 0x0e;
    pub const NEWDECIMAL: u8 = 0xf6;
}

/// Column flag bits used here.
pub(crate) mod flags {
    pub const UNSIGNED: u16 = 0x0020;
    pub const BINARY: u16 = 0x0080;
    pub const ENUM: u16 = 0x0100;
    pub const SET: u16 = 0x0800;
}

/// The binary character set id: what MariaDB declares for numeric results.
const CHARSET_BINARY: u16 = 63;
/// MariaDB's `div_precision_increment` default: AVG keeps this many more decimals than its argument.
const AVG_EXTRA_DECIMALS: u8 = 4;
/// Digits SUM adds to its argument's precision (DECIMAL_LONGLONG_DIGITS).
const SUM_EXTRA_PRECISION: u32 = 22;
/// Largest scale of a DECIMAL (DECIMAL_MAX_SCALE).
const DECIMAL_MAX_SCALE: u8 = 38;

/// How the cells of a column are compared and summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Integer types and YEAR; text is decimal digits, binary is a little-endian integer of the type's width.
    Int {
        unsigned: bool,
    },
    /// DECIMAL / NEWDECIMAL: exact, sent as text in both protocols.
    Decimal,
    Float,
    Double,
    /// DATE, DATETIME, TIMESTAMP: compared chronologically.
    DateTime,
    /// TIME: a signed duration, may exceed 24 hours.
    Time,
    /// The NULL type: every cell is NULL.
    Null,
    /// Strings, blobs, BIT, JSON, geometry. `ordinal` marks ENUM and SET, which MariaDB sorts by their position in
    /// the type's list rather than by text: that order cannot be seen in a result set.
    Bytes {
        ordinal: bool,
    },
}

/// The decoding-relevant part of one column-definition packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub charset: u16,
    /// Display length in characters, as the server declared it.
    pub length: u32,
    pub type_code: u8,
    pub flags: u16,
    pub decimals: u8,
    /// Offset of the fixed-length fields (charset onwards) inside the payload, for rewriting them in place.
    fixed_at: usize,
}

impl Column {
    /// Decodes a column-definition payload (protocol 4.1).
    pub(crate) fn parse(payload: &[u8]) -> Result<Column, WireError> {
        let mut r = Reader::new(payload, "column definition");
        // catalog, schema, table, org_table, name, org_name
        for _ in 0..6 {
            r.lenenc_bytes()?;
        }
        let fixed_len = r.lenenc_int()?;
        if fixed_len < 10 {
            return Err(WireError::Malformed {
                what: "column definition",
                detail: format!("fixed fields of {fixed_len} bytes, need 10"),
            });
        }
        let fixed_at = payload.len() - r.remaining().len();
        let charset = r.u16()?;
        let length = r.u32()?;
        let type_code = r.u8()?;
        let flags = r.u16()?;
        let decimals = r.u8()?;
        Ok(Column {
            charset,
            length,
            type_code,
            flags,
            decimals,
            fixed_at,
        })
    }

    /// How this column's cells compare and add up.
    pub(crate) fn kind(&self) -> Kind {
        use types::*;
        match self.type_code {
            TINY | SHORT | LONG | INT24 | LONGLONG | YEAR => Kind::Int {
                unsigned: self.flags & flags::UNSIGNED != 0,
            },
            DECIMAL | NEWDECIMAL => Kind::Decimal,
            FLOAT => Kind::Float,
            DOUBLE => Kind::Double,
            DATE | NEWDATE | DATETIME | TIMESTAMP => Kind::DateTime,
            TIME => Kind::Time,
            NULL => Kind::Null,
            _ => Kind::Bytes {
                ordinal: self.flags & (flags::ENUM | flags::SET) != 0,
            },
        }
    }

    /// The column MariaDB declares for `AVG(x)` when this column holds `SUM(x)`, or `None` when AVG cannot be
    /// derived from this type.
    ///
    /// For exact types MariaDB's AVG is a DECIMAL with the argument's precision and scale plus 4, while SUM added
    /// 22 digits of precision: the argument's precision is recovered from the SUM's declared length. For floating
    /// types AVG is a DOUBLE with the same length. Both carry the BINARY flag and never UNSIGNED.
    pub(crate) fn avg_of_sum(&self) -> Option<Column> {
        let mut avg = self.clone();
        avg.flags = (self.flags | flags::BINARY) & !flags::UNSIGNED;
        match self.kind() {
            Kind::Decimal | Kind::Int { .. } => {
                let sign = u32::from(self.flags & flags::UNSIGNED == 0);
                let point = u32::from(self.decimals > 0);
                let sum_precision = self.length.saturating_sub(sign + point);
                let arg_precision = if self.kind() == Kind::Decimal {
                    // SUM's precision is capped at 65, so past 43 digits the argument's is a lower bound.
                    sum_precision.saturating_sub(SUM_EXTRA_PRECISION)
                } else {
                    sum_precision
                };
                avg.type_code = types::NEWDECIMAL;
                avg.charset = CHARSET_BINARY;
                avg.decimals = self
                    .decimals
                    .saturating_add(AVG_EXTRA_DECIMALS)
                    .min(DECIMAL_MAX_SCALE);
                avg.length =
                    arg_precision + u32::from(AVG_EXTRA_DECIMALS) + u32::from(avg.decimals > 0) + 1;
                Some(avg)
            }
            Kind::Float | Kind::Double => {
                avg.type_code = types::DOUBLE;
                if self.decimals < crate::float::NOT_FIXED_DEC {
                    avg.decimals =
                        (self.decimals + AVG_EXTRA_DECIMALS).min(crate::float::NOT_FIXED_DEC);
                }
                Some(avg)
            }
            _ => None,
        }
    }

    /// `payload` (the definition this column was parsed from) with this column's fixed fields written over it.
    pub(crate) fn rewrite(&self, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(payload.len());
        out.put_slice(&payload[..self.fixed_at]);
        out.put_u16_le(self.charset);
        out.put_u32_le(self.length);
        out.put_u8(self.type_code);
        out.put_u16_le(self.flags);
        out.put_u8(self.decimals);
        out.put_slice(payload.get(self.fixed_at + 10..).unwrap_or_default());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition as MariaDB sends it; `name` only to keep fixtures readable.
    fn def(name: &str, charset: u16, length: u32, ty: u8, flags: u16, decimals: u8) -> Vec<u8> {
        let mut b = BytesMut::new();
        for s in ["def", "merge", "t", "t", name, ""] {
            shardgate_wire::lenenc::put_lenenc_bytes(&mut b, s.as_bytes());
        }
        b.put_u8(0x0c);
        b.put_u16_le(charset);
        b.put_u32_le(length);
        b.put_u8(ty);
        b.put_u16_le(flags);
        b.put_u8(decimals);
        b.put_u16_le(0);
        b.to_vec()
    }

    #[test]
    fn avg_definitions_match_what_mariadb_declares() {
        // (SUM definition, AVG definition) pairs as MariaDB 10.11 sent them for INT, DECIMAL(12,2), TINYINT,
        // BIGINT UNSIGNED, DECIMAL(5,1) and DOUBLE arguments (see tests/fixtures/replies.txt, group_aggs and
        // avg_rounding).
        let pairs = [
            (
                (33, types::NEWDECIMAL, 0, 0),
                (16, types::NEWDECIMAL, 0x80, 4),
            ),
            (
                (36, types::NEWDECIMAL, 0, 2),
                (18, types::NEWDECIMAL, 0x80, 6),
            ),
            (
                (26, types::NEWDECIMAL, 0, 0),
                (9, types::NEWDECIMAL, 0x80, 4),
            ),
            (
                (43, types::NEWDECIMAL, 0, 0),
                (26, types::NEWDECIMAL, 0x80, 4),
            ),
            (
                (29, types::NEWDECIMAL, 0, 1),
                (11, types::NEWDECIMAL, 0x80, 5),
            ),
            ((23, types::DOUBLE, 0, 31), (23, types::DOUBLE, 0x80, 31)),
        ];
        for ((len, ty, fl, dec), want) in pairs {
            let sum = def("s", 63, len, ty, fl, dec);
            let col = Column::parse(&sum).unwrap();
            let avg = col.avg_of_sum().unwrap();
            let (wl, wt, wf, wd) = want;
            assert_eq!(
                (avg.length, avg.type_code, avg.flags, avg.decimals),
                (wl, wt, wf, wd)
            );
            assert_eq!(&avg.rewrite(&sum)[..], &def("s", 63, wl, wt, wf, wd)[..]);
        }
    }

    #[test]
    fn a_truncated_definition_is_an_error() {
        let d = def("x", 63, 11, types::LONG, 0, 0);
        for cut in [0, 5, d.len() - 6] {
            assert!(Column::parse(&d[..cut]).is_err());
        }
    }

    #[test]
    fn kinds_follow_type_and_flags() {
        let c = Column::parse(&def("x", 63, 20, types::LONGLONG, flags::UNSIGNED, 0)).unwrap();
        assert_eq!(c.kind(), Kind::Int { unsigned: true });
        let c = Column::parse(&def("e", 45, 4, 0xfe, flags::ENUM, 0)).unwrap();
        assert_eq!(c.kind(), Kind::Bytes { ordinal: true });
        let c = Column::parse(&def("s", 45, 80, 0xfd, 0, 0)).unwrap();
        assert_eq!(c.kind(), Kind::Bytes { ordinal: false });
    }
}
