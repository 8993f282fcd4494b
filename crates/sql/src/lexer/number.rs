//! Numbers: integers, decimals, exponents, `0x` hex and `0b` bit values, and the
//! identifiers that start with digits (`1col`, `0xZZ`, `t.5`), which MySQL reads as
//! names. When in doubt a token is kept as a name: a name stays in the fingerprint as
//! written, so misreading one can only make the cache less shared, never wrong.

use super::Lexer;
use crate::scratch::LiteralKind;

impl Lexer<'_, '_> {
    /// A number, or an identifier that starts with digits.
    pub(super) fn number(&mut self) {
        let start = self.pos;
        let run_end = self.word_end(start);
        let run = self.bytes.get(start..run_end).unwrap_or_default();
        if self.qualifier_end == Some(start) {
            self.identifier(start, run_end);
            return;
        }
        let digits = run.iter().take_while(|b| b.is_ascii_digit()).count();
        let zero_prefix = digits == 1 && run.first() == Some(&b'0');
        match run.get(digits..).unwrap_or_default() {
            [] if self.bytes.get(run_end) == Some(&b'.') => {
                let fraction = self.digits_end(run_end + 1);
                let end = self.exponent_end(fraction);
                self.literal(LiteralKind::Decimal, start, end);
            }
            [] => self.literal(LiteralKind::Int, start, run_end),
            [b'x', hex @ ..]
                if zero_prefix && !hex.is_empty() && is_all(hex, u8::is_ascii_hexdigit) =>
            {
                self.literal(LiteralKind::Hex, start, run_end);
            }
            [b'b', bits @ ..]
                if zero_prefix
                    && !bits.is_empty()
                    && is_all(bits, |b| matches!(b, b'0' | b'1')) =>
            {
                self.literal(LiteralKind::Bit, start, run_end);
            }
            [b'e' | b'E', exponent @ ..] if is_all(exponent, u8::is_ascii_digit) => {
                let end = if exponent.is_empty() {
                    self.exponent_end(start + digits)
                } else {
                    run_end
                };
                if end == start + digits {
                    self.identifier(start, run_end);
                } else {
                    self.literal(LiteralKind::Decimal, start, end);
                }
            }
            _ => self.identifier(start, run_end),
        }
    }

    /// A `.`: qualifies the identifier it touches, or starts a decimal (`.5`).
    pub(super) fn dot(&mut self) {
        let start = self.pos;
        if self.ident_end == Some(start) {
            self.text(start, start + 1);
            self.qualifier_end = Some(start + 1);
        } else if self.bytes.get(start + 1).is_some_and(u8::is_ascii_digit) {
            let end = self.exponent_end(self.digits_end(start + 1));
            self.literal(LiteralKind::Decimal, start, end);
        } else {
            self.text(start, start + 1);
        }
    }

    /// End of the run of digits from `from`.
    fn digits_end(&self, from: usize) -> usize {
        let run = self.bytes.get(from..).unwrap_or_default();
        from + run.iter().take_while(|b| b.is_ascii_digit()).count()
    }

    /// End of an exponent (`e5`, `E-3`) at `from`, or `from` when there is none.
    fn exponent_end(&self, from: usize) -> usize {
        if !matches!(self.bytes.get(from), Some(b'e' | b'E')) {
            return from;
        }
        let sign = usize::from(matches!(self.bytes.get(from + 1), Some(b'+' | b'-')));
        let digits = self.digits_end(from + 1 + sign);
        if digits == from + 1 + sign {
            from
        } else {
            digits
        }
    }
}

/// Whether every byte satisfies `test` (true when there are none).
pub(super) fn is_all(bytes: &[u8], test: impl Fn(&u8) -> bool) -> bool {
    bytes.iter().all(test)
}
