//! Reading a tenant id out of a literal.
//!
//! A cached plan says which slot holds the tenant; this module decodes that slot from
//! the statement text with MySQL's rules (escapes, hex, bit values), without the AST.
//! The same rules read an AST value when a literal could not be tied to a slot.
//! Anything that is not exactly an integer, a string, a hex/bit value or a placeholder
//! is refused with a reason, never rounded or guessed.

use sqlparser::ast::Value;

use crate::analysis::TenantKey;
use crate::scratch::{LiteralKind, Slot};

/// Why a literal is not a tenant id; completes "value X for sharding column ... ".
pub(crate) type Refusal = &'static str;

const NOT_INTEGER: Refusal = "is not an integer or a string";
const OUT_OF_RANGE: Refusal = "does not fit a 64-bit tenant id";
pub(crate) const DOUBLE_QUOTED: Refusal =
    "is double-quoted, which MySQL reads as an identifier under ANSI_QUOTES; use single quotes";
pub(crate) const NOT_NEGATABLE: Refusal = "cannot be negated; only integers can";
const NOT_A_LITERAL: Refusal = "is not a literal";

/// Decodes slot `slot` of `sql`, negated when the statement wrote `-` before it.
pub(crate) fn decode_slot(sql: &str, slot: &Slot, negated: bool) -> Result<TenantKey, Refusal> {
    let text = sql.get(slot.span()).unwrap_or_default();
    let key = match slot {
        Slot::Param { index, .. } => TenantKey::Param(*index),
        Slot::Literal { kind, .. } => match kind {
            LiteralKind::Int => TenantKey::Int(text.parse().map_err(|_| OUT_OF_RANGE)?),
            LiteralKind::Decimal => return Err(NOT_INTEGER),
            LiteralKind::DoubleQuotedStr => return Err(DOUBLE_QUOTED),
            LiteralKind::Str => TenantKey::Str(unescape(quoted_body(text), '\'')),
            LiteralKind::Hex => TenantKey::Int(radix(prefixed_digits(text), 16)?),
            LiteralKind::Bit => TenantKey::Int(radix(prefixed_digits(text), 2)?),
        },
    };
    let negatable = matches!(
        slot,
        Slot::Literal {
            kind: LiteralKind::Int,
            ..
        }
    );
    negate(key, negatable, negated)
}

/// Decodes an AST value (used only for literals the lexer did not see as one slot).
pub(crate) fn decode_value(value: &Value, negated: bool) -> Result<TenantKey, Refusal> {
    let key = match value {
        Value::Number(digits, false) if is_digits(digits) => {
            TenantKey::Int(digits.parse().map_err(|_| OUT_OF_RANGE)?)
        }
        Value::Number(..) => return Err(NOT_INTEGER),
        Value::SingleQuotedString(text) | Value::NationalStringLiteral(text) => {
            TenantKey::Str(text.clone())
        }
        Value::DoubleQuotedString(_) => return Err(DOUBLE_QUOTED),
        Value::HexStringLiteral(digits) => TenantKey::Int(radix(digits, 16)?),
        Value::SingleQuotedByteStringLiteral(bits) => TenantKey::Int(radix(bits, 2)?),
        _ => return Err(NOT_A_LITERAL),
    };
    negate(key, matches!(value, Value::Number(..)), negated)
}

/// Applies a leading `-` with Vitess's semantics: the i64 value cast to u64. Only
/// decimal integers can be negated.
fn negate(key: TenantKey, negatable: bool, negated: bool) -> Result<TenantKey, Refusal> {
    match key {
        key if !negated => Ok(key),
        TenantKey::Int(value) if negatable => {
            let signed = i64::try_from(-i128::from(value)).map_err(|_| OUT_OF_RANGE)?;
            // Two's complement reinterpretation is the point: -1 becomes u64::MAX.
            #[allow(clippy::cast_sign_loss)]
            Ok(TenantKey::Int(signed as u64))
        }
        _ => Err(NOT_NEGATABLE),
    }
}

/// Parses `digits` in `base`, ignoring leading zeros; at most 64 bits.
fn radix(digits: &str, base: u32) -> Result<u64, Refusal> {
    let significant = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Err(NOT_INTEGER);
    }
    if significant.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(significant, base).map_err(|_| OUT_OF_RANGE)
}

/// The digits of `0x2a`, `x'2a'`, `0b1` or `b'1'`.
pub(crate) fn prefixed_digits(text: &str) -> &str {
    let digits = text.get(2..).unwrap_or_default();
    if text.starts_with('0') {
        digits
    } else {
        digits.strip_suffix('\'').unwrap_or(digits)
    }
}

/// The text between the quotes of `'...'` or `N'...'`.
pub(crate) fn quoted_body(text: &str) -> &str {
    let text = text.strip_prefix(['N', 'n']).unwrap_or(text);
    text.get(1..text.len().saturating_sub(1))
        .unwrap_or_default()
}

/// Whether `text` is one or more ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Undoes MySQL string escapes: `\n`-style sequences and the doubled `quote`. As in
/// MySQL, `\%` and `\_` keep their backslash and any other escaped character stands
/// for itself.
pub(crate) fn unescape(body: &str, quote: char) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some('0') => out.push('\0'),
                Some('b') => out.push('\u{8}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('Z') => out.push('\u{1a}'),
                Some(kept @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(kept);
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            _ if ch == quote => {
                out.push(ch);
                // A doubled quote inside the string stands for one.
                let mut rest = chars.clone();
                if rest.next() == Some(ch) {
                    chars = rest;
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: LiteralKind, sql: &str) -> Result<TenantKey, Refusal> {
        decode_slot(
            sql,
            &Slot::Literal {
                kind,
                span: 0..sql.len(),
            },
            false,
        )
    }

    #[test]
    fn integers_decode_up_to_u64_max() {
        assert_eq!(slot(LiteralKind::Int, "42"), Ok(TenantKey::Int(42)));
        assert_eq!(
            slot(LiteralKind::Int, "18446744073709551615"),
            Ok(TenantKey::Int(u64::MAX))
        );
        assert_eq!(
            slot(LiteralKind::Int, "18446744073709551616"),
            Err(OUT_OF_RANGE)
        );
    }

    #[test]
    fn negative_integers_are_their_i64_value_cast_to_u64() {
        let int = Slot::Literal {
            kind: LiteralKind::Int,
            span: 0..1,
        };
        assert_eq!(
            decode_slot("5", &int, true),
            Ok(TenantKey::Int(5u64.wrapping_neg()))
        );
        let min = "9223372036854775808";
        let int = Slot::Literal {
            kind: LiteralKind::Int,
            span: 0..min.len(),
        };
        assert_eq!(decode_slot(min, &int, true), Ok(TenantKey::Int(1 << 63)));
        let below = "9223372036854775809";
        assert_eq!(decode_slot(below, &int, true), Err(OUT_OF_RANGE));
    }

    #[test]
    fn only_integers_can_be_negated() {
        let text = Slot::Literal {
            kind: LiteralKind::Str,
            span: 0..3,
        };
        assert_eq!(decode_slot("'5'", &text, true), Err(NOT_NEGATABLE));
        let param = Slot::Param {
            index: 0,
            span: 0..1,
        };
        assert_eq!(decode_slot("?", &param, true), Err(NOT_NEGATABLE));
    }

    #[test]
    fn strings_are_unescaped_like_mysql() {
        assert_eq!(
            slot(LiteralKind::Str, r"'it\'s'"),
            Ok(TenantKey::Str("it's".into()))
        );
        assert_eq!(
            slot(LiteralKind::Str, "'it''s'"),
            Ok(TenantKey::Str("it's".into()))
        );
        assert_eq!(
            slot(LiteralKind::Str, r"'a\nb\%\q'"),
            Ok(TenantKey::Str("a\nb\\%q".into()))
        );
        assert_eq!(
            slot(LiteralKind::Str, "N'é'"),
            Ok(TenantKey::Str("é".into()))
        );
        assert_eq!(
            slot(LiteralKind::Str, "'42'"),
            Ok(TenantKey::Str("42".into()))
        );
    }

    #[test]
    fn only_the_enclosing_quote_is_undoubled() {
        assert_eq!(unescape(r#"a""b''c"#, '\''), r#"a""b'c"#);
    }

    #[test]
    fn double_quoted_strings_and_decimals_are_refused() {
        assert_eq!(
            slot(LiteralKind::DoubleQuotedStr, "\"5\""),
            Err(DOUBLE_QUOTED)
        );
        assert_eq!(slot(LiteralKind::Decimal, "1.5"), Err(NOT_INTEGER));
    }

    #[test]
    fn hex_and_bit_values_are_integers() {
        assert_eq!(slot(LiteralKind::Hex, "0x2a"), Ok(TenantKey::Int(42)));
        assert_eq!(slot(LiteralKind::Hex, "x'2A'"), Ok(TenantKey::Int(42)));
        assert_eq!(
            slot(LiteralKind::Hex, "X'00000000000000000000002a'"),
            Ok(TenantKey::Int(42))
        );
        assert_eq!(
            slot(LiteralKind::Hex, "0x10000000000000000"),
            Err(OUT_OF_RANGE)
        );
        assert_eq!(slot(LiteralKind::Hex, "x''"), Err(NOT_INTEGER));
        assert_eq!(slot(LiteralKind::Bit, "b'101'"), Ok(TenantKey::Int(5)));
        assert_eq!(slot(LiteralKind::Bit, "0b101"), Ok(TenantKey::Int(5)));
    }

    #[test]
    fn ast_values_follow_the_same_rules() {
        assert_eq!(
            decode_value(&Value::Number("7".into(), false), true),
            Ok(TenantKey::Int(7u64.wrapping_neg()))
        );
        assert_eq!(
            decode_value(&Value::Number("7".into(), true), false),
            Err(NOT_INTEGER)
        );
        assert_eq!(
            decode_value(&Value::Number("7.0".into(), false), false),
            Err(NOT_INTEGER)
        );
        assert_eq!(
            decode_value(&Value::SingleQuotedString("ab".into()), false),
            Ok(TenantKey::Str("ab".into()))
        );
        assert_eq!(decode_value(&Value::Null, false), Err(NOT_A_LITERAL));
        assert_eq!(
            decode_value(&Value::Boolean(true), false),
            Err(NOT_A_LITERAL)
        );
    }
}
