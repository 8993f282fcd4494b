//! User-level locks (`GET_LOCK` and friends): the one statement shape the proxy runs on a connection reserved for
//! the session, as Vitess does.
//!
//! A named lock belongs to the backend connection that took it, so a session that holds one needs that very
//! connection until it lets go. The proxy can only tell when that is if it can read the outcome of each call, so
//! lock functions are taken in one shape alone: `SELECT <lock function>(…) [[AS] alias]`, nothing else in the
//! statement. Then the single value of the reply says whether a lock was taken or released.

use crate::scan::{has_word, is_word, skip_quoted, word_end};

/// What a lock statement does to the locks its session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCall {
    /// `GET_LOCK`: a result of 1 means one more lock level is held.
    Get,
    /// `RELEASE_LOCK`: a result of 1 means one level less.
    Release,
    /// `RELEASE_ALL_LOCKS`: none are held afterwards.
    ReleaseAll,
    /// `IS_FREE_LOCK`, `IS_USED_LOCK`: reads only, but must run where the locks live.
    Inspect,
}

const LOCK_FUNCTIONS: &[(&str, LockCall)] = &[
    ("GET_LOCK", LockCall::Get),
    ("RELEASE_LOCK", LockCall::Release),
    ("RELEASE_ALL_LOCKS", LockCall::ReleaseAll),
    ("IS_FREE_LOCK", LockCall::Inspect),
    ("IS_USED_LOCK", LockCall::Inspect),
];

/// The lock call `fingerprint` consists of, if it is `SELECT <lock function>(args) [[AS] alias]` whose arguments
/// read no table.
pub fn lock_call(fingerprint: &str) -> Option<LockCall> {
    let s = fingerprint.trim().trim_end_matches(';').trim_end();
    let b = s.as_bytes();
    let select = word_end(b, 0);
    if !s[..select].eq_ignore_ascii_case("SELECT") {
        return None;
    }
    let start = skip_blanks(b, select);
    let name_end = word_end(b, start);
    let name = &s[start..name_end];
    let call = LOCK_FUNCTIONS
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(name))?
        .1;
    let open = skip_blanks(b, name_end);
    if b.get(open) != Some(&b'(') {
        return None;
    }
    let close = matching_paren(b, open)?;
    if has_word(&s[open..close], "SELECT") {
        return None;
    }
    let rest = s[close + 1..].trim();
    let alias = match rest.get(..2) {
        Some(w) if w.eq_ignore_ascii_case("AS") && rest[2..].starts_with(char::is_whitespace) => {
            rest[2..].trim_start()
        }
        _ => rest,
    };
    let one_alias = alias.is_empty()
        || (alias.starts_with('`') && skip_quoted(alias.as_bytes(), 0) == alias.len())
        || (alias.bytes().all(is_word) && !is_keyword(alias));
    one_alias.then_some(call)
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The index of the `)` closing the `(` at `open`, skipping quoted runs.
fn matching_paren(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => {
                i = skip_quoted(b, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Words after the call that make it more than one column (`FROM`, `WHERE`, `UNION`, `INTO`, …).
fn is_keyword(word: &str) -> bool {
    [
        "FROM", "WHERE", "UNION", "INTO", "LIMIT", "ORDER", "GROUP", "HAVING", "FOR", "LOCK",
        "WINDOW",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_function_with_an_optional_alias_is_a_lock_call() {
        for (sql, want) in [
            ("SELECT GET_LOCK(?, ?)", LockCall::Get),
            ("select get_lock ( ? , ? ) as got", LockCall::Get),
            ("SELECT RELEASE_LOCK(?) `released`;", LockCall::Release),
            ("SELECT RELEASE_ALL_LOCKS()", LockCall::ReleaseAll),
            ("SELECT IS_USED_LOCK(CONCAT(?, ?)) who", LockCall::Inspect),
            ("SELECT IS_FREE_LOCK(')(')", LockCall::Inspect),
        ] {
            assert_eq!(lock_call(sql), Some(want), "{sql}");
        }
    }

    #[test]
    fn anything_more_is_not_a_lock_call() {
        for sql in [
            "SELECT GET_LOCK(?, ?), ?",
            "SELECT GET_LOCK(?, ?) FROM orders",
            "SELECT GET_LOCK(?, ?) + ?",
            "SELECT GET_LOCK((SELECT note FROM orders LIMIT ?), ?)",
            "SELECT ?, GET_LOCK(?, ?)",
            "SELECT GET_LOCK(?, ?) INTO @x",
            "SELECT GET_LOCK(?, ?) AS a b",
            "SELECT NOW()",
            "DO GET_LOCK(?, ?)",
            "SELECT GET_LOCK",
        ] {
            assert_eq!(lock_call(sql), None, "{sql}");
        }
    }
}
