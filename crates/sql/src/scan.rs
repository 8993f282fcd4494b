//! Byte-level scanning of SQL text shared by the rewrites and the guard: words and quoted runs.

/// True for bytes that can be part of an unquoted identifier or keyword (any non-ASCII byte included).
pub(crate) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The end of the word starting at `i`.
pub(crate) fn word_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_word(b[i]) {
        i += 1;
    }
    i
}

/// The end of the quoted run (`'..'`, `".."` or `` `..` ``) opening at `start`: doubled quotes stay inside, and so
/// do backslash escapes except in backticks. An unterminated run ends at the end of the text.
pub(crate) fn skip_quoted(b: &[u8], start: usize) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q != b'`' => i += 2,
            c if c == q && b.get(i + 1) == Some(&q) => i += 2,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// True when `word` appears in `s` as a whole word outside quoted runs (case-blind).
pub(crate) fn has_word(s: &str, word: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i),
            c if is_word(c) => {
                let end = word_end(b, i);
                if s[i..end].eq_ignore_ascii_case(word) {
                    return true;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    false
}
