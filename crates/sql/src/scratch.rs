//! The caller-owned buffers the lexer writes into.
//!
//! A session keeps one [`Scratch`] and passes it to every
//! [`Analyzer::analyze`](crate::Analyzer::analyze): the fingerprint string and the slot
//! list keep their capacity between statements, so a statement whose plan is cached
//! allocates nothing to be fingerprinted.

use std::ops::Range;

/// What kind of literal a slot holds, as the lexer read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiteralKind {
    /// Digits only: `42`.
    Int,
    /// A number with a fraction or an exponent: `1.5`, `.5`, `1e3`.
    Decimal,
    /// A single-quoted string, possibly national: `'ab'`, `N'ab'`.
    Str,
    /// A double-quoted string: `"ab"` (an identifier under `ANSI_QUOTES`).
    DoubleQuotedStr,
    /// A hexadecimal literal: `0x2a` or `x'2a'`.
    Hex,
    /// A bit-value literal: `0b101` or `b'101'`.
    Bit,
}

/// One value the fingerprint replaced by `?`, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slot {
    /// A literal written in the statement.
    Literal {
        /// How the lexer read it.
        kind: LiteralKind,
        /// Its bytes in the statement text, prefix and quotes included.
        span: Range<usize>,
    },
    /// A `?` placeholder of a prepared statement.
    Param {
        /// 0-based position among the statement's placeholders.
        index: u16,
        /// Its byte in the statement text.
        span: Range<usize>,
    },
}

impl Slot {
    /// The slot's bytes in the statement text.
    pub fn span(&self) -> Range<usize> {
        match self {
            Self::Literal { span, .. } | Self::Param { span, .. } => span.clone(),
        }
    }
}

/// Reusable buffers for one statement at a time: its fingerprint and literal slots.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The statement with literals as `?`, comments and whitespace runs as one space.
    pub(crate) fingerprint: String,
    /// Every literal and placeholder, in source order.
    pub(crate) slots: Vec<Slot>,
    /// Operator counts of the enclosing parenthesis levels (nesting guard).
    pub(crate) levels: Vec<u32>,
}

impl Scratch {
    /// The fingerprint of the last statement analysed: its plan-cache key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The literal slots of the last statement analysed, in source order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Empties the buffers, keeping their capacity.
    pub(crate) fn clear(&mut self) {
        self.fingerprint.clear();
        self.slots.clear();
        self.levels.clear();
    }
}
