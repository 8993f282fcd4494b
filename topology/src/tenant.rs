//! Tenant ids as the SQL layer finds them, and tenant pins.
//!
//! Place in the data path: the first thing routing sees. A tenant id arrives as an integer or a
//! string literal ([`TenantRef`]); pins ([`Pin`]) send chosen tenants to a chosen shard before any
//! hashing. This module must not know SQL syntax or collations: a string is its bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ShardId;

/// A tenant id as the SQL layer found it in a statement.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TenantRef<'a> {
    /// An integer literal. A negative literal, if the SQL layer chooses to accept one, is passed
    /// as its two's complement (`-1` as `u64::MAX`), which is how Vitess's `hash` vindex maps it.
    Int(u64),
    /// A string literal, as written, without quotes. On a `hash` table it must be a plain
    /// unsigned decimal (`'42'` routes like `42`, as MySQL compares `'42' = 42`); on an `xxhash`
    /// table its bytes are hashed as they are (so `'ACME'` and `'acme'` route apart).
    Str(&'a str),
}

/// A pinned tenant id as written in the topology file: `tenant: 42` or `tenant: "acme"`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PinTenant {
    /// An integer id. Matches `TenantRef::Int(n)` and, on `hash` tables, any string that parses
    /// to `n`; on `xxhash` tables, the string of its decimal text.
    Int(u64),
    /// A string id. Matches `TenantRef::Str` with exactly these bytes on `xxhash` tables. Write
    /// numeric ids as integers: a string pin with leading zeros (`"042"`) never matches a `hash`
    /// table, which routes `'042'` as the integer 42.
    Str(String),
}

impl PinTenant {
    /// The text two pins are compared by: the decimal digits of an integer, or the string.
    /// `42` and `"42"` are the same tenant.
    pub fn canonical_text(&self) -> String {
        match self {
            PinTenant::Int(n) => n.to_string(),
            PinTenant::Str(s) => s.clone(),
        }
    }

    /// The integer this pin stands for on `hash` tables: an `Int`, or a `Str` whose text is the
    /// canonical decimal of an integer (no sign, no leading zeros).
    pub(crate) fn as_integer(&self) -> Option<u64> {
        match self {
            PinTenant::Int(n) => Some(*n),
            PinTenant::Str(s) => parse_unsigned_decimal(s)
                .ok()
                .filter(|n| n.to_string() == *s),
        }
    }
}

/// Integers show as digits, strings quoted: `42`, `"acme"`.
impl fmt::Display for PinTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinTenant::Int(n) => write!(f, "{n}"),
            PinTenant::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A tenant pinned to a shard, overriding the hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Pin {
    /// The tenant id.
    pub tenant: PinTenant,
    /// The shard it lives on, in this snapshot.
    pub shard: ShardId,
}

/// Why a string is not an unsigned decimal `u64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DecimalFault {
    /// Empty, or something other than ASCII digits (sign, space, point, exponent, letters).
    NotDigits,
    /// Digits only, but above `u64::MAX`.
    TooLarge,
}

/// Parses ASCII digits `[0-9]+` into a `u64`. Leading zeros are accepted (`'042' = 42` in
/// MySQL); signs, spaces, decimal points and exponents are not: such ids are refused, never
/// guessed at.
pub(crate) fn parse_unsigned_decimal(text: &str) -> Result<u64, DecimalFault> {
    if text.is_empty() {
        return Err(DecimalFault::NotDigits);
    }
    let mut value: u64 = 0;
    let mut too_large = false;
    for byte in text.bytes() {
        if !byte.is_ascii_digit() {
            return Err(DecimalFault::NotDigits);
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(byte - b'0')))
        {
            Some(next) => value = next,
            None => too_large = true,
        }
    }
    if too_large {
        Err(DecimalFault::TooLarge)
    } else {
        Ok(value)
    }
}

/// A tenant id cut to 64 characters for an error message, so a hostile literal cannot flood logs.
pub(crate) fn shown(text: &str) -> String {
    const LIMIT: usize = 64;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_parse_including_leading_zeros() {
        assert_eq!(parse_unsigned_decimal("42"), Ok(42));
        assert_eq!(parse_unsigned_decimal("042"), Ok(42));
        assert_eq!(parse_unsigned_decimal("0"), Ok(0));
        assert_eq!(parse_unsigned_decimal("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn anything_but_plain_digits_is_refused() {
        for text in [
            "", "42abc", "-1", "+42", " 42", "42 ", "4.2", "4e1", "0x2a", "４２",
        ] {
            assert_eq!(
                parse_unsigned_decimal(text),
                Err(DecimalFault::NotDigits),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_unsigned_decimal("18446744073709551616"),
            Err(DecimalFault::TooLarge)
        );
        assert_eq!(
            parse_unsigned_decimal("99999999999999999999x"),
            Err(DecimalFault::NotDigits)
        );
    }

    #[test]
    fn pins_compare_by_canonical_text() {
        assert_eq!(
            PinTenant::Int(42).canonical_text(),
            PinTenant::Str("42".into()).canonical_text()
        );
        assert_eq!(PinTenant::Str("42".into()).as_integer(), Some(42));
        assert_eq!(PinTenant::Str("042".into()).as_integer(), None);
        assert_eq!(PinTenant::Str("acme".into()).to_string(), "\"acme\"");
    }

    #[test]
    fn long_tenant_ids_are_cut_in_messages() {
        let long = "x".repeat(1000);
        assert_eq!(shown(&long).chars().count(), 65);
        assert_eq!(shown("short"), "short");
    }
}
