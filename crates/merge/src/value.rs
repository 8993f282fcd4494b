//! Cell values: decoding an encoded cell into something comparable ([`Key`]) or summable ([`Number`]), and
//! encoding a computed number back in the column's wire form.
//!
//! A cell here is the bytes one column occupies in a row payload: in the text protocol a length-encoded string, in
//! the binary protocol the type's own encoding. NULL never reaches these functions; rows carry it separately.

use std::cmp::Ordering;

use bytes::{BufMut, BytesMut};
use shardgate_wire::lenenc::{Reader, put_lenenc_bytes};

use crate::Protocol;
use crate::collation::compare_padded;
use crate::column::{Column, Kind, types};
use crate::decimal::{Decimal, DecimalKey};
use crate::float::{format_double, format_float};

/// Why a cell could not be decoded or a result not encoded. Static text: the caller adds the column.
pub(crate) type Problem = &'static str;

/// A cell reduced to what MariaDB compares it by. Keys of one column are all of one variant, or `Null`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    /// Sorts before every value, as in MariaDB's ascending order.
    Null,
    Int(i128),
    Float(f64),
    Decimal(DecimalKey<'a>),
    /// DATE/DATETIME/TIMESTAMP as YYYYMMDDhhmmss·10⁶+µs, TIME as signed microseconds: integer order is time order.
    Temporal(i128),
    /// Strings and weights, compared bytewise; `pad` is the weight of a space when the bytes are a PAD SPACE
    /// collation's weights (see [`crate::collation`]).
    Bytes {
        bytes: &'a [u8],
        pad: Option<&'static [u8]>,
    },
}

impl Key<'_> {
    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Int(_) => 1,
            Key::Float(_) => 2,
            Key::Decimal(_) => 3,
            Key::Temporal(_) => 4,
            Key::Bytes { .. } => 5,
        }
    }

    /// MariaDB's order for two cells of one column. Equal means "same group" and "duplicate" too.
    pub(crate) fn compare(&self, other: &Key<'_>) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            // MariaDB never sends NaN; -0 and 0 are equal, as partial_cmp says.
            (Key::Float(a), Key::Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::Decimal(a), Key::Decimal(b)) => a.cmp(b),
            (Key::Temporal(a), Key::Temporal(b)) => a.cmp(b),
            (Key::Bytes { bytes: a, pad: pa }, Key::Bytes { bytes: b, pad: pb }) => {
                match pa.or(*pb) {
                    Some(pad) => compare_padded(a, b, pad),
                    None => a.cmp(b),
                }
            }
            // Null against a value, or (never within one column) two kinds.
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A cell as a number, for SUM, COUNT and AVG.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Number {
    Int(i128),
    Decimal(Decimal),
    Float(f64),
}

impl Number {
    /// The sum of two numbers of one column; `None` on integer overflow.
    pub(crate) fn add(&self, other: &Number) -> Option<Number> {
        Some(match (self, other) {
            (Number::Int(a), Number::Int(b)) => Number::Int(a.checked_add(*b)?),
            (Number::Float(a), Number::Float(b)) => Number::Float(a + b),
            (a, b) => Number::Decimal(a.to_decimal()?.add(&b.to_decimal()?)),
        })
    }

    fn to_decimal(&self) -> Option<Decimal> {
        match self {
            Number::Int(v) => Some(Decimal::from_int(*v)),
            Number::Decimal(d) => Some(d.clone()),
            Number::Float(_) => None,
        }
    }
}

/// The bytes of a text cell, or of a length-encoded binary cell, without the length prefix.
fn string_content(cell: &[u8]) -> Result<&[u8], Problem> {
    Reader::new(cell, "cell")
        .lenenc_bytes()
        .map_err(|_| "malformed length-encoded value")
}

/// Decodes a non-NULL cell of `col` into its comparison key.
pub(crate) fn key<'a>(
    col: &Column,
    protocol: Protocol,
    cell: &'a [u8],
) -> Result<Key<'a>, Problem> {
    let kind = col.kind();
    if protocol == Protocol::Binary {
        match kind {
            Kind::Int { unsigned } => {
                return binary_int(col.type_code, unsigned, cell).map(Key::Int);
            }
            Kind::Float => return binary_f32(cell).map(|v| Key::Float(f64::from(v))),
            Kind::Double => return binary_f64(cell).map(Key::Float),
            Kind::DateTime => return binary_datetime(cell).map(Key::Temporal),
            Kind::Time => return binary_time(cell).map(Key::Temporal),
            // DECIMAL and strings are length-encoded text in the binary protocol too.
            Kind::Decimal | Kind::Null | Kind::Bytes { .. } => {}
        }
    }
    let text = string_content(cell)?;
    Ok(match kind {
        Kind::Int { .. } => Key::Int(text_int(text)?),
        Kind::Float | Kind::Double => Key::Float(text_float(text)?),
        Kind::Decimal => Key::Decimal(DecimalKey::parse(text).ok_or("malformed DECIMAL text")?),
        Kind::DateTime => Key::Temporal(text_datetime(text)?),
        Kind::Time => Key::Temporal(text_time(text)?),
        Kind::Null | Kind::Bytes { .. } => Key::Bytes {
            bytes: text,
            pad: None,
        },
    })
}

/// Decodes a non-NULL cell of `col` as a number.
pub(crate) fn number(col: &Column, protocol: Protocol, cell: &[u8]) -> Result<Number, Problem> {
    Ok(match (col.kind(), protocol) {
        (Kind::Int { unsigned }, Protocol::Binary) => {
            Number::Int(binary_int(col.type_code, unsigned, cell)?)
        }
        (Kind::Int { .. }, Protocol::Text) => Number::Int(text_int(string_content(cell)?)?),
        (Kind::Decimal, _) => {
            Number::Decimal(Decimal::parse(string_content(cell)?).ok_or("malformed DECIMAL text")?)
        }
        (Kind::Float, Protocol::Binary) => Number::Float(f64::from(binary_f32(cell)?)),
        (Kind::Double, Protocol::Binary) => Number::Float(binary_f64(cell)?),
        (Kind::Float | Kind::Double, Protocol::Text) => {
            Number::Float(text_float(string_content(cell)?)?)
        }
        _ => return Err("not a numeric column"),
    })
}

/// Encodes `n` as a cell of `col` in `protocol`, as MariaDB would have sent it.
pub(crate) fn encode(col: &Column, protocol: Protocol, n: &Number) -> Result<Vec<u8>, Problem> {
    let mut out = BytesMut::new();
    match col.kind() {
        Kind::Int { unsigned } => {
            let Number::Int(v) = n else {
                return Err("fractional result for an integer column");
            };
            let width = int_width(col.type_code);
            let (lo, hi) = int_range(width, unsigned);
            if *v < lo || *v > hi {
                return Err("result out of range for its column type");
            }
            match protocol {
                Protocol::Text => put_lenenc_bytes(&mut out, v.to_string().as_bytes()),
                // Two's complement little-endian, truncated to the width: the range check above makes it exact.
                Protocol::Binary => out.put_slice(&v.to_le_bytes()[..width]),
            }
        }
        Kind::Decimal => {
            let d = n
                .to_decimal()
                .ok_or("floating-point result for a DECIMAL column")?;
            let text = d.rounded(usize::from(col.decimals)).to_text();
            put_lenenc_bytes(&mut out, text.as_bytes());
        }
        Kind::Float | Kind::Double => {
            let v = match n {
                Number::Float(v) => *v,
                Number::Int(v) => *v as f64,
                Number::Decimal(_) => return Err("DECIMAL result for a floating-point column"),
            };
            // MariaDB reports an overflowing DOUBLE as an error rather than printing infinity.
            if !v.is_finite() {
                return Err("result out of range for its column type");
            }
            match (protocol, col.type_code == types::FLOAT) {
                (Protocol::Binary, true) => out.put_f32_le(v as f32),
                (Protocol::Binary, false) => out.put_f64_le(v),
                (Protocol::Text, true) => {
                    put_lenenc_bytes(&mut out, format_float(v as f32, col.decimals).as_bytes())
                }
                (Protocol::Text, false) => {
                    put_lenenc_bytes(&mut out, format_double(v, col.decimals).as_bytes())
                }
            }
        }
        _ => return Err("not a numeric column"),
    }
    Ok(out.to_vec())
}

/// Bytes of a binary-protocol integer of this type.
pub(crate) fn int_width(type_code: u8) -> usize {
    match type_code {
        types::TINY => 1,
        types::SHORT | types::YEAR => 2,
        types::LONG | types::INT24 => 4,
        _ => 8,
    }
}

fn int_range(width: usize, unsigned: bool) -> (i128, i128) {
    let bits = 8 * width as u32;
    if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }
}

fn binary_int(type_code: u8, unsigned: bool, cell: &[u8]) -> Result<i128, Problem> {
    let width = int_width(type_code);
    let b = cell.get(..width).ok_or("integer cell too short")?;
    let mut raw = [0u8; 16];
    raw[..width].copy_from_slice(b);
    let v = u128::from_le_bytes(raw);
    let bits = 8 * width as u32;
    // Sign-extend from the type's width unless the column is UNSIGNED.
    if !unsigned && v >> (bits - 1) & 1 == 1 {
        Ok(v as i128 - (1i128 << bits))
    } else {
        Ok(v as i128)
    }
}

fn binary_f32(cell: &[u8]) -> Result<f32, Problem> {
    let b: [u8; 4] = cell
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("FLOAT cell too short")?;
    Ok(f32::from_le_bytes(b))
}

fn binary_f64(cell: &[u8]) -> Result<f64, Problem> {
    let b: [u8; 8] = cell
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("DOUBLE cell too short")?;
    Ok(f64::from_le_bytes(b))
}

/// YYYYMMDDhhmmss·10⁶ + µs: each field below its base, so integer order is chronological order.
fn datetime_key(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i128 {
    let date = (i128::from(y) * 100 + i128::from(mo)) * 100 + i128::from(d);
    let time = (i128::from(h) * 100 + i128::from(mi)) * 100 + i128::from(s);
    (date * 1_000_000 + time) * 1_000_000 + i128::from(us)
}

fn binary_datetime(cell: &[u8]) -> Result<i128, Problem> {
    let mut r = Reader::new(cell, "DATETIME cell");
    let short = |_| "DATETIME cell too short";
    let len = r.u8().map_err(short)?;
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut us) = (0, 0, 0, 0, 0, 0, 0);
    if len >= 4 {
        y = u32::from(r.u16().map_err(short)?);
        mo = u32::from(r.u8().map_err(short)?);
        d = u32::from(r.u8().map_err(short)?);
    }
    if len >= 7 {
        h = u32::from(r.u8().map_err(short)?);
        mi = u32::from(r.u8().map_err(short)?);
        s = u32::from(r.u8().map_err(short)?);
    }
    if len >= 11 {
        us = r.u32().map_err(short)?;
    }
    Ok(datetime_key(y, mo, d, h, mi, s, us))
}

fn binary_time(cell: &[u8]) -> Result<i128, Problem> {
    let mut r = Reader::new(cell, "TIME cell");
    let short = |_| "TIME cell too short";
    let len = r.u8().map_err(short)?;
    if len == 0 {
        return Ok(0);
    }
    let negative = r.u8().map_err(short)? == 1;
    let days = i128::from(r.u32().map_err(short)?);
    let h = i128::from(r.u8().map_err(short)?);
    let m = i128::from(r.u8().map_err(short)?);
    let s = i128::from(r.u8().map_err(short)?);
    let us = if len >= 12 {
        i128::from(r.u32().map_err(short)?)
    } else {
        0
    };
    let v = (((days * 24 + h) * 60 + m) * 60 + s) * 1_000_000 + us;
    Ok(if negative { -v } else { v })
}

fn text_int(text: &[u8]) -> Result<i128, Problem> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<i128>().ok())
        .ok_or("malformed integer text")
}

fn text_float(text: &[u8]) -> Result<f64, Problem> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or("malformed floating-point text")
}

/// Splits `digits` off the front of `text` and returns their value; fails when fewer than `min` digits follow.
fn digits(text: &mut &[u8], min: usize) -> Result<u32, Problem> {
    let n = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > 9 {
        return Err("malformed temporal text");
    }
    let (head, tail) = text.split_at(n);
    *text = tail;
    Ok(head.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
}

/// Consumes `sep` from the front of `text`.
fn expect(text: &mut &[u8], sep: u8) -> Result<(), Problem> {
    match text.split_first() {
        Some((&b, rest)) if b == sep => {
            *text = rest;
            Ok(())
        }
        _ => Err("malformed temporal text"),
    }
}

/// `.ffffff` (any number of digits up to 6) as microseconds, or 0 when absent.
fn fraction(text: &mut &[u8]) -> Result<u32, Problem> {
    if text.first() != Some(&b'.') {
        return Ok(0);
    }
    expect(text, b'.')?;
    let n = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if n > 6 {
        return Err("malformed temporal text");
    }
    let v = digits(text, 1)?;
    Ok(v * 10u32.pow((6 - n) as u32))
}

/// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]`.
fn text_datetime(mut text: &[u8]) -> Result<i128, Problem> {
    let t = &mut text;
    let y = digits(t, 4)?;
    expect(t, b'-')?;
    let mo = digits(t, 2)?;
    expect(t, b'-')?;
    let d = digits(t, 2)?;
    let (mut h, mut mi, mut s, mut us) = (0, 0, 0, 0);
    if !t.is_empty() {
        expect(t, b' ')?;
        h = digits(t, 2)?;
        expect(t, b':')?;
        mi = digits(t, 2)?;
        expect(t, b':')?;
        s = digits(t, 2)?;
        us = fraction(t)?;
    }
    if !t.is_empty() {
        return Err("malformed temporal text");
    }
    Ok(datetime_key(y, mo, d, h, mi, s, us))
}

/// `[-]h+:mm:ss[.ffffff]`, where hours may exceed 24.
fn text_time(mut text: &[u8]) -> Result<i128, Problem> {
    let t = &mut text;
    let negative = t.first() == Some(&b'-');
    if negative {
        expect(t, b'-')?;
    }
    let h = i128::from(digits(t, 1)?);
    expect(t, b':')?;
    let m = i128::from(digits(t, 2)?);
    expect(t, b':')?;
    let s = i128::from(digits(t, 2)?);
    let us = i128::from(fraction(t)?);
    if !t.is_empty() {
        return Err("malformed temporal text");
    }
    let v = ((h * 60 + m) * 60 + s) * 1_000_000 + us;
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_temporals_give_the_same_keys() {
        let dt = text_datetime(b"2024-03-01 10:00:00.5").unwrap();
        let bin =
            binary_datetime(&[11, 0xe8, 0x07, 3, 1, 10, 0, 0, 0x20, 0xa1, 0x07, 0x00]).unwrap();
        assert_eq!(dt, bin);
        assert_eq!(
            text_datetime(b"2024-03-01").unwrap(),
            binary_datetime(&[4, 0xe8, 0x07, 3, 1]).unwrap()
        );
        assert_eq!(
            text_datetime(b"0000-00-00").unwrap(),
            binary_datetime(&[0]).unwrap()
        );
        let tm = text_time(b"-838:59:59").unwrap();
        assert_eq!(tm, binary_time(&[8, 1, 34, 0, 0, 0, 22, 59, 59]).unwrap());
        assert!(text_time(b"-00:00:01").unwrap() < 0);
        assert!(text_time(b"100:00:00").unwrap() > text_time(b"99:59:59.999999").unwrap());
    }

    #[test]
    fn malformed_temporal_text_is_a_problem_not_a_panic() {
        for bad in [
            "",
            "2024",
            "2024-1-01",
            "2024-01-01x",
            "2024-01-01 10:00",
            "2024-01-01 10:00:00.1234567",
        ] {
            assert!(text_datetime(bad.as_bytes()).is_err(), "{bad}");
        }
        for bad in ["", ":", "1:2:3", "-", "10:00:00x"] {
            assert!(text_time(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(binary_datetime(&[7, 1, 2]).is_err());
        assert!(binary_time(&[12, 0, 0, 0]).is_err());
        assert!(binary_int(types::LONGLONG, false, &[1, 2, 3]).is_err());
    }

    #[test]
    fn binary_integers_respect_width_and_sign() {
        assert_eq!(binary_int(types::TINY, false, &[0x80]).unwrap(), -128);
        assert_eq!(binary_int(types::TINY, true, &[0x80]).unwrap(), 128);
        assert_eq!(
            binary_int(types::LONGLONG, true, &[0xff; 8]).unwrap(),
            u64::MAX as i128
        );
        assert_eq!(binary_int(types::LONGLONG, false, &[0xff; 8]).unwrap(), -1);
    }

    #[test]
    fn encoding_refuses_results_that_do_not_fit() {
        let col = Column::parse(&{
            let mut b = BytesMut::new();
            for s in ["def", "", "", "", "c", ""] {
                put_lenenc_bytes(&mut b, s.as_bytes());
            }
            b.put_slice(&[0x0c, 63, 0, 4, 0, 0, 0, types::TINY, 0, 0, 0, 0, 0]);
            b
        })
        .unwrap();
        assert!(encode(&col, Protocol::Binary, &Number::Int(128)).is_err());
        assert_eq!(
            encode(&col, Protocol::Binary, &Number::Int(-1)).unwrap(),
            vec![0xff]
        );
        assert_eq!(
            encode(&col, Protocol::Text, &Number::Int(-1)).unwrap(),
            b"\x02-1".to_vec()
        );
    }
}
