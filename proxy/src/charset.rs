//! Character sets a client can ask for, and what to tell the backend (`SET NAMES ...`) to match.

/// The `SET NAMES` argument matching a handshake collation id. Unknown ids (MySQL 8's 255, for one) fall back to
/// utf8mb4's default collation, which is what MariaDB itself does with a collation it does not know.
pub fn names_for_collation(id: u8) -> &'static str {
    match id {
        8 => "latin1 COLLATE latin1_swedish_ci",
        11 => "ascii COLLATE ascii_general_ci",
        33 => "utf8mb3 COLLATE utf8mb3_general_ci",
        46 => "utf8mb4 COLLATE utf8mb4_bin",
        47 => "latin1 COLLATE latin1_bin",
        63 => "binary",
        83 => "utf8mb3 COLLATE utf8mb3_bin",
        192 => "utf8mb3 COLLATE utf8mb3_unicode_ci",
        224 => "utf8mb4 COLLATE utf8mb4_unicode_ci",
        _ => crate::backend::INITIAL_NAMES,
    }
}

/// Character sets accepted in `SET NAMES`: MariaDB 10.11's list minus the ones no client uses as a connection
/// character set (ucs2, utf16, utf16le, utf32: the server refuses them too) and minus big5, cp932, gbk and sjis,
/// whose multi-byte characters can end in a `\` or quote byte. Under those, the server would read string
/// boundaries where the router does not, and a statement routed to one tenant could reach others.
const KNOWN: &[&str] = &[
    "armscii8", "ascii", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852",
    "cp866", "dec8", "eucjpms", "euckr", "gb2312", "geostd8", "greek", "hebrew", "hp8", "keybcs2",
    "koi8r", "koi8u", "latin1", "latin2", "latin5", "latin7", "macce", "macroman", "swe7",
    "tis620", "ujis", "utf8", "utf8mb3", "utf8mb4",
];

/// True when `charset` (any case) can be used with `SET NAMES`.
pub fn is_known_charset(charset: &str) -> bool {
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(charset))
}

/// True when `collation` is a plain identifier (it is spliced into `SET NAMES ... COLLATE x`).
pub fn is_identifier(collation: &str) -> bool {
    !collation.is_empty()
        && collation
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_handshake_collations_map_to_their_charsets() {
        assert_eq!(
            names_for_collation(45),
            "utf8mb4 COLLATE utf8mb4_general_ci"
        );
        assert_eq!(names_for_collation(8), "latin1 COLLATE latin1_swedish_ci");
        assert_eq!(
            names_for_collation(255),
            "utf8mb4 COLLATE utf8mb4_general_ci"
        );
    }

    #[test]
    fn set_names_accepts_known_charsets_only() {
        assert!(is_known_charset("UTF8MB4"));
        assert!(is_known_charset("latin1"));
        assert!(!is_known_charset("klingon"));
        for unsafe_for_routing in ["gbk", "big5", "sjis", "cp932"] {
            assert!(!is_known_charset(unsafe_for_routing));
        }
        assert!(!is_identifier("x; DROP TABLE t"));
        assert!(is_identifier("utf8mb4_bin"));
    }
}
