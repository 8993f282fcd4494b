//! Whitespace and comments: what MySQL skips, and the comments it would execute.
//!
//! `#` and `-- ` run to the end of the line (MySQL wants a space or control character
//! after `--`); `/* */` ends at the first `*/`. `/*! */` and `/*M! */` are refused: MySQL
//! runs their content. So are the byte sequences MySQL and sqlparser read differently
//! (`--` before a control character or a Unicode space, nested comments), since the AST
//! must show the statement MySQL will run.

use super::Lexer;
use crate::error::SqlError;

impl Lexer<'_, '_> {
    /// Skips whitespace and comments, refusing the comments MySQL would execute.
    pub(super) fn skip_trivia(&mut self) -> Result<(), SqlError> {
        loop {
            match self.bytes.get(self.pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => self.pos += 1,
                Some(b'#') => self.pos = self.line_end(self.pos),
                Some(b'-') if self.bytes.get(self.pos + 1) == Some(&b'-') => {
                    if !self.dash_comment_starts()? {
                        return Ok(());
                    }
                    self.pos = self.line_end(self.pos);
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    self.block_comment()?;
                }
                _ => return Ok(()),
            }
            self.space = true;
        }
    }

    /// Whether the `--` at `pos` starts a comment: MySQL wants a space or control
    /// character after it. Refuses the bytes MySQL and sqlparser disagree on.
    fn dash_comment_starts(&self) -> Result<bool, SqlError> {
        let third = self.pos + 2;
        match self.bytes.get(third) {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => Ok(true),
            Some(&byte) if byte < 0x20 || byte == 0x7f => Err(SqlError::unsupported(
                "'--' followed by a control character (MySQL reads a comment, other parsers do not)",
            )),
            Some(&byte) if byte >= 0x80 => {
                let unicode_space = self
                    .sql
                    .get(third..)
                    .and_then(|rest| rest.chars().next())
                    .is_some_and(char::is_whitespace);
                if unicode_space {
                    Err(SqlError::unsupported(
                        "'--' followed by a Unicode space (other parsers read a comment, MySQL does not)",
                    ))
                } else {
                    Ok(false)
                }
            }
            Some(_) => Ok(false),
        }
    }

    /// Skips the `/* ... */` comment at `pos`.
    fn block_comment(&mut self) -> Result<(), SqlError> {
        let body = self.pos + 2;
        match self.bytes.get(body..body + 2) {
            Some([b'!', _] | [b'M' | b'm', b'!']) => return Err(executable_comment()),
            None if self.bytes.get(body) == Some(&b'!') => return Err(executable_comment()),
            _ => {}
        }
        let rest = self.bytes.get(body..).unwrap_or_default();
        let Some(close) = find(rest, b"*/") else {
            return Err(SqlError::parse_at(
                self.sql,
                self.pos,
                "unterminated comment",
            ));
        };
        if find(rest.get(..close).unwrap_or_default(), b"/*").is_some() {
            return Err(SqlError::unsupported(
                "nested comments (MySQL ends a comment at the first */)",
            ));
        }
        self.pos = body + close + 2;
        Ok(())
    }

    /// Index just past the end of the line holding `from` (a `#` or `-- ` comment).
    fn line_end(&self, from: usize) -> usize {
        let rest = self.bytes.get(from..).unwrap_or_default();
        rest.iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |newline| from + newline + 1)
    }
}

/// The error for `/*! ... */` and `/*M! ... */`.
fn executable_comment() -> SqlError {
    SqlError::unsupported(
        "executable comments (/*! ... */, /*M! ... */): MySQL runs their content, so it must be written as plain SQL",
    )
}

/// First index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
