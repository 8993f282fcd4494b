//! Quoted tokens: strings (`'..'`, `".."`, `N'..'`), `x'..'` and `b'..'` values, and
//! where backquoted identifiers and quoted variable names end.
//!
//! A backslash escapes the next byte and a doubled quote stands for itself, as in
//! MySQL without `NO_BACKSLASH_ESCAPES` (the proxy must keep that mode off).

use super::Lexer;
use super::number::is_all;
use crate::error::SqlError;
use crate::scratch::LiteralKind;

impl Lexer<'_, '_> {
    /// A quoted string from `quote` (`prefix_start` is where an `N` prefix begins).
    pub(super) fn string(
        &mut self,
        prefix_start: usize,
        quote: usize,
        kind: LiteralKind,
    ) -> Result<(), SqlError> {
        let quote_byte = self.bytes.get(quote).copied().unwrap_or(b'\'');
        let end = self.quoted_end(quote, quote_byte, true)?;
        self.literal(kind, prefix_start, end);
        Ok(())
    }

    /// `x'2a'` or `b'101'` from `start`, quote at `quote`: no escapes, and only the
    /// digits of its base.
    pub(super) fn prefixed(
        &mut self,
        start: usize,
        quote: usize,
        kind: LiteralKind,
        digit: fn(&u8) -> bool,
    ) -> Result<(), SqlError> {
        let rest = self.bytes.get(quote + 1..).unwrap_or_default();
        let Some(close) = rest.iter().position(|&b| b == b'\'') else {
            return Err(SqlError::parse_at(self.sql, start, "unterminated literal"));
        };
        if !is_all(rest.get(..close).unwrap_or_default(), digit) {
            return Err(SqlError::parse_at(
                self.sql,
                start,
                "invalid digit in hexadecimal or bit literal",
            ));
        }
        self.literal(kind, start, quote + close + 2);
        Ok(())
    }

    /// End of the quoted token opening at `open`: a doubled quote stands for itself,
    /// and with `escapes` a backslash escapes the next byte.
    pub(super) fn quoted_end(
        &self,
        open: usize,
        quote: u8,
        escapes: bool,
    ) -> Result<usize, SqlError> {
        let mut at = open + 1;
        loop {
            match self.bytes.get(at) {
                None => {
                    let what = if quote == b'`' {
                        "unterminated quoted identifier"
                    } else {
                        "unterminated string"
                    };
                    return Err(SqlError::parse_at(self.sql, open, what));
                }
                Some(b'\\') if escapes => at += 2,
                Some(&byte) if byte == quote => {
                    if self.bytes.get(at + 1) == Some(&quote) {
                        at += 2;
                    } else {
                        return Ok(at + 1);
                    }
                }
                Some(_) => at += 1,
            }
        }
    }
}
