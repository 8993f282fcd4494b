//! Classifying, from its first keywords, a statement sqlparser cannot parse.
//!
//! Clients and connectors send MySQL/MariaDB statements sqlparser does not know
//! (`SET CHARACTER SET utf8`, `START TRANSACTION WITH CONSISTENT SNAPSHOT`,
//! `SHOW SLAVE STATUS`). Only a few exact shapes are recognised, and only shapes that
//! cannot read or write table rows; anything else keeps its parse error. The words
//! come from the fingerprint, so comments and string contents cannot fake them.

use crate::analysis::{Analysis, Route, StatementKind, TenantKey};
use crate::literal;
use crate::scratch::Scratch;

use super::session::answer;

/// The analysis of an unparsable statement, when its shape is one of the known ones.
pub(crate) fn classify(sql: &str, scratch: &Scratch) -> Option<Analysis> {
    let words = tokens(scratch.fingerprint());
    let is = |at: usize, word: &str| words.get(at).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let has_any = |list: &[&str]| {
        words
            .iter()
            .any(|w| list.iter().any(|l| w.eq_ignore_ascii_case(l)))
    };
    let charset_at = if is(0, "SET") && is(1, "CHARACTER") && is(2, "SET") {
        Some(3)
    } else if is(0, "SET") && is(1, "CHARSET") {
        Some(2)
    } else {
        None
    };
    if let Some(at) = charset_at {
        let charset = charset_name(sql, scratch, words.get(at..)?)?;
        return Some(answer(
            StatementKind::SetCharacterSet { charset },
            Route::None,
            None,
        ));
    }
    if is(0, "START") && is(1, "TRANSACTION") {
        const MODES: [&str; 7] = [
            "READ",
            "ONLY",
            "WRITE",
            "WITH",
            "CONSISTENT",
            "SNAPSHOT",
            ",",
        ];
        let known = words
            .iter()
            .skip(2)
            .all(|w| MODES.iter().any(|m| w.eq_ignore_ascii_case(m)));
        return known.then(|| answer(StatementKind::Begin, Route::None, None));
    }
    if is(0, "SHOW") && !words.contains(&"(") && !has_any(&["SELECT"]) {
        return Some(answer(StatementKind::Show, Route::AnyShard, None));
    }
    let ddl_verb = ["CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME"]
        .iter()
        .any(|verb| is(0, verb));
    let on_table = words
        .iter()
        .take(4)
        .any(|w| w.eq_ignore_ascii_case("TABLE") || w.eq_ignore_ascii_case("INDEX"));
    let runs_code = has_any(&[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "REPLACE",
        "CALL",
        "DO",
        "BEGIN",
        "TRIGGER",
        "PROCEDURE",
        "FUNCTION",
        "EVENT",
        "VIEW",
        "HANDLER",
    ]);
    (ddl_verb && on_table && !runs_code)
        .then(|| answer(StatementKind::Ddl { table: None }, Route::None, None))
}

/// The charset of `SET CHARACTER SET x`: one word, `DEFAULT`, or one quoted string.
fn charset_name(sql: &str, scratch: &Scratch, rest: &[&str]) -> Option<String> {
    match rest {
        ["?"] => match scratch.slots() {
            [slot] => match literal::decode_slot(sql, slot, false) {
                Ok(TenantKey::Str(name)) => Some(name),
                _ => None,
            },
            _ => None,
        },
        [word] if word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Some((*word).to_owned())
        }
        _ => None,
    }
}

/// The fingerprint as tokens: words, `?` and single punctuation characters.
fn tokens(fingerprint: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = fingerprint;
    while let Some(first) = rest.chars().next() {
        let len = if first.is_alphanumeric()
            || first == '_'
            || first == '$'
            || first == '`'
            || first == '@'
        {
            rest.find(|c: char| {
                c == ' ' || (c.is_ascii_punctuation() && !matches!(c, '_' | '$' | '`' | '@'))
            })
            .unwrap_or(rest.len())
            .max(first.len_utf8())
        } else {
            first.len_utf8()
        };
        let (token, tail) = rest.split_at(len);
        if token != " " {
            tokens.push(token);
        }
        rest = tail;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_words_and_punctuation() {
        assert_eq!(tokens("SET CHARSET utf8"), vec!["SET", "CHARSET", "utf8"]);
        assert_eq!(tokens("SHOW x(?)"), vec!["SHOW", "x", "(", "?", ")"]);
        assert_eq!(
            tokens("START TRANSACTION READ ONLY, WITH"),
            vec!["START", "TRANSACTION", "READ", "ONLY", ",", "WITH"]
        );
    }
}
