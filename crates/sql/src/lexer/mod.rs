//! One pass over the statement text: fingerprint and literal slots.
//!
//! The plan cache is keyed by the fingerprint, so the lexer is the gate every statement
//! goes through, cached or not. It reads the text the way MySQL does (not the way
//! sqlparser does): what MySQL executes is what must be routed. So it refuses, on every
//! call, what it cannot read unambiguously: executable comments `/*! */` and `/*M! */`,
//! nested comments, `--` followed by a control character, the `||` and `&&` operators
//! (whose meaning depends on `sql_mode`, and which sqlparser reads with the wrong
//! precedence), more than one statement, and expressions too deep for sqlparser's AST to
//! be dropped safely.
//!
//! The fingerprint keeps keywords and identifiers as written, replaces each literal and
//! `?` by `?`, turns each run of whitespace and comments into one space and drops the
//! trailing `;`. Two tokens that touch in the text touch in the fingerprint, so two
//! statements share a fingerprint only if they have the same tokens apart from literals.
//! Nothing here allocates once the [`Scratch`] has grown to the statement's size.

mod comment;
mod number;
mod quoted;
#[cfg(test)]
mod tests;

use crate::error::SqlError;
use crate::scratch::{LiteralKind, Scratch, Slot};

/// Most operators one path through an expression may chain (see [`Lexer::operator`]).
///
/// sqlparser builds `a AND b AND c ...` as a left-deep tree and drops it recursively; at
/// this depth the drop needs well under 1 MiB of stack.
pub(crate) const MAX_OPERATOR_DEPTH: u32 = 4000;

/// Fingerprints `sql` into `scratch`, recording every literal slot.
pub(crate) fn scan(sql: &str, scratch: &mut Scratch) -> Result<(), SqlError> {
    scratch.clear();
    let mut lexer = Lexer {
        sql,
        bytes: sql.as_bytes(),
        pos: 0,
        out: scratch,
        space: false,
        ident_end: None,
        qualifier_end: None,
        params: 0,
        segment: 0,
        depth: 0,
    };
    lexer.run()?;
    if scratch.fingerprint.is_empty() {
        return Err(SqlError::Empty);
    }
    Ok(())
}

/// The lexer's state over one statement.
struct Lexer<'a, 's> {
    /// The statement text.
    sql: &'a str,
    /// The same text as bytes: every delimiter is ASCII.
    bytes: &'a [u8],
    /// Next byte to read.
    pos: usize,
    /// Where the fingerprint and slots go.
    out: &'s mut Scratch,
    /// Whitespace or a comment was skipped since the last token.
    space: bool,
    /// End of the last identifier-like token: a `.` right there qualifies it.
    ident_end: Option<usize>,
    /// End of a qualifying `.`: what follows it is an identifier even if it starts
    /// with a digit (`t.1col`).
    qualifier_end: Option<usize>,
    /// Placeholders seen so far.
    params: u32,
    /// Operators since the last `,` or `(` at this parenthesis level.
    segment: u32,
    /// Operators on the current path: this level's segment plus the enclosing ones'.
    depth: u32,
}

impl Lexer<'_, '_> {
    /// Reads tokens until the end of the text or the statement's `;`.
    fn run(&mut self) -> Result<(), SqlError> {
        loop {
            self.skip_trivia()?;
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Ok(());
            };
            match byte {
                b';' => return self.finish(),
                b'\'' => self.string(self.pos, self.pos, LiteralKind::Str)?,
                b'"' => self.string(self.pos, self.pos, LiteralKind::DoubleQuotedStr)?,
                b'`' => {
                    let end = self.quoted_end(self.pos, b'`', false)?;
                    self.identifier(self.pos, end);
                }
                b'0'..=b'9' => self.number(),
                b'.' => self.dot(),
                b'?' => self.param()?,
                b'@' => self.variable()?,
                b'(' => {
                    self.text(self.pos, self.pos + 1);
                    self.out.levels.push(self.segment);
                    self.segment = 0;
                }
                b')' => {
                    self.text(self.pos, self.pos + 1);
                    self.depth = self.depth.saturating_sub(self.segment);
                    self.segment = self.out.levels.pop().unwrap_or(0);
                }
                b',' => {
                    self.text(self.pos, self.pos + 1);
                    self.depth = self.depth.saturating_sub(self.segment);
                    self.segment = 0;
                }
                b'|' | b'&' if self.bytes.get(self.pos + 1) == Some(&byte) => {
                    return Err(SqlError::unsupported(if byte == b'|' {
                        "the || operator means OR or string concatenation depending on sql_mode; write OR or CONCAT()"
                    } else {
                        "the && operator; write AND"
                    }));
                }
                _ if is_word_byte(byte) => self.word()?,
                _ if byte < 0x20 || byte == 0x7f => {
                    return Err(SqlError::parse_at(
                        self.sql,
                        self.pos,
                        "unexpected control character",
                    ));
                }
                _ => self.operator(byte)?,
            }
        }
    }

    /// After the statement's `;`: only whitespace, comments and more `;` may follow.
    fn finish(&mut self) -> Result<(), SqlError> {
        self.pos += 1;
        loop {
            self.skip_trivia()?;
            match self.bytes.get(self.pos) {
                None => return Ok(()),
                Some(b';') => self.pos += 1,
                Some(_) => return Err(SqlError::unsupported("multiple statements in one query")),
            }
        }
    }

    /// A `?` placeholder.
    fn param(&mut self) -> Result<(), SqlError> {
        let index = u16::try_from(self.params)
            .map_err(|_| SqlError::unsupported("more than 65536 placeholders"))?;
        self.params += 1;
        self.separate();
        self.out.fingerprint.push('?');
        self.out.slots.push(Slot::Param {
            index,
            span: self.pos..self.pos + 1,
        });
        self.pos += 1;
        Ok(())
    }

    /// A user (`@x`, `@'x'`) or system (`@@x`) variable, kept as written.
    fn variable(&mut self) -> Result<(), SqlError> {
        let start = self.pos;
        let mut name = start + 1;
        if self.bytes.get(name) == Some(&b'@') {
            name += 1;
        }
        let end = match self.bytes.get(name) {
            Some(&quote @ (b'\'' | b'"' | b'`')) => self.quoted_end(name, quote, quote != b'`')?,
            _ => self.word_end(name),
        };
        self.identifier(start, end);
        Ok(())
    }

    /// A keyword or identifier; or the `N`, `X`, `B` prefix of a literal.
    fn word(&mut self) -> Result<(), SqlError> {
        let start = self.pos;
        let end = self.word_end(start);
        let prefix = match self.bytes.get(start..end) {
            Some([prefix])
                if self.bytes.get(end) == Some(&b'\'') && self.qualifier_end != Some(start) =>
            {
                *prefix
            }
            _ => b' ',
        };
        match prefix {
            b'N' | b'n' => self.string(start, end, LiteralKind::Str)?,
            b'X' | b'x' => self.prefixed(start, end, LiteralKind::Hex, u8::is_ascii_hexdigit)?,
            b'B' | b'b' => {
                self.prefixed(start, end, LiteralKind::Bit, |b| matches!(b, b'0' | b'1'))?;
            }
            _ => {
                if is_operator_word(self.bytes.get(start..end).unwrap_or_default()) {
                    self.count_operator()?;
                }
                self.identifier(start, end);
            }
        }
        Ok(())
    }

    /// Punctuation, kept as written. Operator characters count toward the depth guard:
    /// every level of a left-deep chain needs one, so the count of a path bounds its depth.
    fn operator(&mut self, byte: u8) -> Result<(), SqlError> {
        if matches!(
            byte,
            b'=' | b'<'
                | b'>'
                | b'!'
                | b'+'
                | b'-'
                | b'*'
                | b'/'
                | b'%'
                | b'&'
                | b'|'
                | b'^'
                | b'~'
                | b':'
        ) {
            self.count_operator()?;
        }
        self.text(self.pos, self.pos + 1);
        Ok(())
    }

    /// One more operator on the current path.
    fn count_operator(&mut self) -> Result<(), SqlError> {
        self.segment += 1;
        self.depth += 1;
        if self.depth > MAX_OPERATOR_DEPTH {
            return Err(SqlError::unsupported(format!(
                "an expression chains more than {MAX_OPERATOR_DEPTH} operators; use IN (...) or split the statement"
            )));
        }
        Ok(())
    }

    /// Emits `start..end` as an identifier-like token.
    fn identifier(&mut self, start: usize, end: usize) {
        self.text(start, end);
        self.ident_end = Some(end);
    }

    /// Emits `start..end` of the text as written and moves past it.
    fn text(&mut self, start: usize, end: usize) {
        self.separate();
        self.out
            .fingerprint
            .push_str(self.sql.get(start..end).unwrap_or_default());
        self.pos = end;
    }

    /// Emits `?` for the literal at `start..end` and records its slot.
    fn literal(&mut self, kind: LiteralKind, start: usize, end: usize) {
        self.separate();
        self.out.fingerprint.push('?');
        self.out.slots.push(Slot::Literal {
            kind,
            span: start..end,
        });
        self.pos = end;
    }

    /// Writes the one space that stands for skipped whitespace and comments.
    fn separate(&mut self) {
        if self.space && !self.out.fingerprint.is_empty() {
            self.out.fingerprint.push(' ');
        }
        self.space = false;
    }

    /// End of the run of identifier bytes from `from`.
    fn word_end(&self, from: usize) -> usize {
        let run = self.bytes.get(from..).unwrap_or_default();
        from + run.iter().take_while(|&&b| is_word_byte(b)).count()
    }
}

/// Whether `byte` may be part of an unquoted identifier (MySQL: `[0-9A-Za-z$_]` and
/// any non-ASCII character).
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// Whether a word is an operator that sqlparser chains into a left-deep tree.
fn is_operator_word(word: &[u8]) -> bool {
    const WORDS: [&[u8]; 17] = [
        b"AND",
        b"OR",
        b"XOR",
        b"NOT",
        b"IS",
        b"IN",
        b"LIKE",
        b"REGEXP",
        b"RLIKE",
        b"DIV",
        b"MOD",
        b"BETWEEN",
        b"COLLATE",
        b"UNION",
        b"EXCEPT",
        b"INTERSECT",
        b"ESCAPE",
    ];
    (2..=9).contains(&word.len()) && WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}
