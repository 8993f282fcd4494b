//! Splitting a COM_QUERY that holds several statements (CLIENT_MULTI_STATEMENTS) at its `;` separators.
//!
//! A `;` inside a string, a quoted identifier or a comment separates nothing. Each piece is then analysed and
//! routed on its own, like a statement sent alone.

use std::ops::Range;

use crate::scan::skip_quoted;

/// The byte ranges of the statements in `sql`, without their `;`, blank ones left out. A text without any `;`
/// outside quotes and comments is one statement.
pub fn split_statements(sql: &str) -> Vec<Range<usize>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut push = |range: Range<usize>| {
        if !sql[range.clone()].trim().is_empty() {
            out.push(range);
        }
    };
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i),
            b'#' => i = line_end(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = line_end(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
            b';' => {
                push(start..i);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(start..b.len());
    out
}

fn line_end(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| start + p + 1)
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    fn pieces(sql: &str) -> Vec<&str> {
        split_statements(sql).into_iter().map(|r| &sql[r]).collect()
    }

    #[test]
    fn separators_outside_quotes_and_comments_split() {
        assert_eq!(pieces("SELECT 1; SELECT 2;"), ["SELECT 1", " SELECT 2"]);
        assert_eq!(
            pieces("SELECT ';' ; SELECT `a;b` -- x;y\n; /* ; */ SELECT \"q;\""),
            [
                "SELECT ';' ",
                " SELECT `a;b` -- x;y\n",
                " /* ; */ SELECT \"q;\""
            ]
        );
        assert_eq!(
            pieces("SELECT 'it''s;'; SELECT 'a\\';'"),
            ["SELECT 'it''s;'", " SELECT 'a\\';'"]
        );
    }

    #[test]
    fn one_statement_and_blank_pieces() {
        assert_eq!(pieces("SELECT 1"), ["SELECT 1"]);
        assert_eq!(pieces(" ; ;SELECT 1;  "), ["SELECT 1"]);
        assert!(pieces("  ").is_empty());
    }
}
