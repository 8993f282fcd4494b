//! Statements that must not run on a shared backend connection.
//!
//! Used by the proxy after analysis; like the rest of this crate it knows nothing of connections themselves, only
//! which SQL would depend on one.
//!
//! A backend connection serves many client sessions one statement at a time. Anything that leaves state on it
//! behind the proxy's back (temporary tables, named locks, user variables assigned inside a statement with `:=` or
//! `INTO @v`) or reads state an earlier statement left there (`FOUND_ROWS()`) would hand one session's data to
//! another, possibly another tenant's, so such statements are refused. User variables set with `SET @v = …`,
//! `LAST_INSERT_ID()` and `ROW_COUNT()` are not here: the proxy tracks them per session and replays or substitutes
//! them before a shard runs the statement. The checks read the statement's
//! fingerprint: literals are already `?` and comments are gone, so nothing inside a string can trip them.
//!
//! The SHOW allow-list lives here too: SHOW statements run on the first shard's server, and most SHOW kinds
//! describe the whole server (its processes, its other schemas, its logs) rather than the keyspace.

use crate::scan::{has_word, is_word, skip_quoted, word_end};

/// Functions that read or create per-connection state.
const STATEFUL_FUNCTIONS: &[&str] = &[
    "FOUND_ROWS",
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "IS_FREE_LOCK",
    "IS_USED_LOCK",
    "LOAD_FILE",
];

/// Why `fingerprint` cannot run on a shared backend connection, or `None` when it can.
pub fn shared_connection_violation(fingerprint: &str) -> Option<String> {
    let b = fingerprint.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => i = skip_quoted(b, i),
            b'@' if b.get(i + 1) == Some(&b'@') => i = word_end(b, i + 2),
            b':' if b.get(i + 1) == Some(&b'=') => {
                return Some(
                    "assigning user variables inside a statement (:=) is not supported: the proxy tracks user \
                     variables per session from SET @v = …, so use that"
                        .to_string(),
                );
            }
            c if is_word(c) && (i == 0 || !is_word(b[i - 1])) => {
                let end = word_end(b, i);
                let word = &fingerprint[i..end];
                let call = next_non_blank(b, end) == Some(b'(');
                if call
                    && STATEFUL_FUNCTIONS
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(word))
                {
                    if word.to_ascii_uppercase().contains("LOCK") {
                        return Some(format!(
                            "{word}() is only supported alone, as `SELECT {word}(…)`: the proxy must read its result \
                             to know which backend connection the session's locks keep"
                        ));
                    }
                    return Some(format!(
                        "{word}() is not supported: it reads or keeps state on a backend connection other sessions \
                         share"
                    ));
                }
                if word.eq_ignore_ascii_case("INTO") && next_non_blank(b, end) == Some(b'@') {
                    return Some(
                        "SELECT … INTO @v is not supported: the proxy tracks user variables per session from \
                         SET @v = …, so use SET @v = (SELECT …)"
                            .to_string(),
                    );
                }
                if word.eq_ignore_ascii_case("TEMPORARY") {
                    return Some(
                        "temporary tables are only supported in plain statements (COM_QUERY): the proxy pins a \
                         session's connection for them there"
                            .to_string(),
                    );
                }
                if word.eq_ignore_ascii_case("OUTFILE") || word.eq_ignore_ascii_case("DUMPFILE") {
                    return Some(
                        "SELECT ... INTO OUTFILE/DUMPFILE would write files on a backend server"
                            .to_string(),
                    );
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    None
}

/// True when the fingerprint of a DDL statement names a table in another schema (`db.table`), which would run
/// outside the shard's database.
pub fn ddl_names_another_schema(fingerprint: &str) -> bool {
    let b = fingerprint.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => {
                let end = skip_quoted(b, i);
                if b.get(end) == Some(&b'.') {
                    return true;
                }
                i = end;
            }
            b'.' if i > 0 && (is_word(b[i - 1]) || b[i - 1] == b'`') => return true,
            _ => i += 1,
        }
    }
    false
}

/// SHOW kinds that describe the keyspace's schema (the same on every shard) and nothing else of the server.
pub fn show_is_allowed(fingerprint: &str) -> bool {
    let mut words = fingerprint
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    match words.next().as_deref() {
        Some("DESCRIBE" | "DESC") => return true,
        Some("SHOW") => {}
        _ => return false,
    }
    let mut kind = words.next();
    while matches!(
        kind.as_deref(),
        Some("FULL" | "EXTENDED" | "SESSION" | "LOCAL")
    ) {
        kind = words.next();
    }
    match kind.as_deref() {
        Some(
            "TABLES" | "COLUMNS" | "FIELDS" | "INDEX" | "INDEXES" | "KEYS" | "VARIABLES"
            | "COLLATION",
        ) => true,
        Some("CHARSET" | "ENGINES") => true,
        Some("CHARACTER") => words.next().as_deref() == Some("SET"),
        Some("TABLE") => words.next().as_deref() == Some("STATUS"),
        Some("CREATE") => matches!(words.next().as_deref(), Some("TABLE" | "VIEW")),
        _ => false,
    }
}

/// Whether the statement calls `LAST_INSERT_ID()` or `ROW_COUNT()` without arguments, which the proxy answers
/// for the session.
pub fn calls_session_function(fingerprint: &str) -> bool {
    let b = fingerprint.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => i = skip_quoted(b, i),
            c if is_word(c) && (i == 0 || !is_word(b[i - 1])) => {
                let end = word_end(b, i);
                let word = &fingerprint[i..end];
                if (word.eq_ignore_ascii_case("LAST_INSERT_ID")
                    || word.eq_ignore_ascii_case("ROW_COUNT"))
                    && next_non_blank(b, end) == Some(b'(')
                {
                    return true;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    false
}

/// `CREATE TEMPORARY TABLE …`.
pub fn is_create_temporary(fingerprint: &str) -> bool {
    strip_word(fingerprint.trim_start(), "CREATE")
        .and_then(|rest| strip_word(rest, "TEMPORARY"))
        .is_some()
}

/// `DROP TEMPORARY TABLE …`.
pub fn is_drop_temporary(fingerprint: &str) -> bool {
    strip_word(fingerprint.trim_start(), "DROP")
        .and_then(|rest| strip_word(rest, "TEMPORARY"))
        .is_some()
}

/// `DROP …`.
pub fn is_drop(fingerprint: &str) -> bool {
    strip_word(fingerprint.trim_start(), "DROP").is_some()
}

/// True when the statement contains a `SELECT` (a subquery, `CREATE … SELECT`).
pub fn has_select(fingerprint: &str) -> bool {
    has_word(fingerprint, "SELECT")
}

/// `SAVEPOINT x`, `RELEASE SAVEPOINT x` or `ROLLBACK [WORK] TO [SAVEPOINT] x`, with `x` one identifier.
pub fn is_savepoint_statement(fingerprint: &str) -> bool {
    let s = fingerprint.trim().trim_end_matches(';').trim_end();
    let name = if let Some(rest) = strip_word(s, "SAVEPOINT") {
        rest
    } else if let Some(rest) = strip_word(s, "RELEASE").and_then(|r| strip_word(r, "SAVEPOINT")) {
        rest
    } else if let Some(rest) = strip_word(s, "ROLLBACK") {
        let rest = strip_word(rest, "WORK").unwrap_or(rest);
        let Some(rest) = strip_word(rest, "TO") else {
            return false;
        };
        strip_word(rest, "SAVEPOINT").unwrap_or(rest)
    } else {
        return false;
    };
    is_identifier(name)
}

/// What a `SHOW WARNINGS`-like statement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningsQuery {
    /// `SHOW WARNINGS` (`LIMIT` is not taken).
    List,
    /// `SHOW COUNT(*) WARNINGS`.
    Count,
}

/// Whether the statement is `SHOW WARNINGS` or `SHOW COUNT(*) WARNINGS`, which read what the previous statement
/// left on its connection.
pub fn warnings_query(fingerprint: &str) -> Option<WarningsQuery> {
    // Every statement passes here: answer the common case without allocating.
    let head = fingerprint.trim_start().get(..4)?;
    if !head.eq_ignore_ascii_case("SHOW") {
        return None;
    }
    let compact: String = fingerprint
        .trim()
        .trim_end_matches(';')
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    match compact.as_str() {
        "SHOW WARNINGS" => Some(WarningsQuery::List),
        "SHOW COUNT(*) WARNINGS" | "SHOW COUNT ( * ) WARNINGS" => Some(WarningsQuery::Count),
        _ => None,
    }
}

/// Which transactions a `SET … TRANSACTION` statement changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionSetting {
    /// `SET TRANSACTION …`: the next transaction only.
    Next,
    /// `SET SESSION|LOCAL TRANSACTION …`: every later transaction of the session.
    Session,
    /// `SET GLOBAL TRANSACTION …`: the server's default.
    Global,
}

/// Whether the statement is `SET [GLOBAL|SESSION|LOCAL] TRANSACTION …` (isolation level, access mode), and for
/// which transactions.
pub fn transaction_setting(fingerprint: &str) -> Option<TransactionSetting> {
    let rest = strip_word(fingerprint.trim(), "SET")?;
    if strip_word(rest, "TRANSACTION").is_some() {
        return Some(TransactionSetting::Next);
    }
    let (scope, rest) = if let Some(r) = strip_word(rest, "SESSION") {
        (TransactionSetting::Session, r)
    } else if let Some(r) = strip_word(rest, "LOCAL") {
        (TransactionSetting::Session, r)
    } else {
        (TransactionSetting::Global, strip_word(rest, "GLOBAL")?)
    };
    strip_word(rest, "TRANSACTION").map(|_| scope)
}

/// Whether the statement is exactly `UNLOCK TABLES` (or `UNLOCK TABLE`).
pub fn is_unlock_tables(fingerprint: &str) -> bool {
    let s = fingerprint.trim().trim_end_matches(';').trim_end();
    strip_word(s, "UNLOCK").is_some_and(|rest| {
        rest.eq_ignore_ascii_case("TABLES") || rest.eq_ignore_ascii_case("TABLE")
    })
}

/// `s` after the keyword `word` and the blanks that follow it.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let rest = &s[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .then(|| rest.trim_start())
}

/// One plain or backquoted identifier.
fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b'`') {
        return b.len() >= 2 && skip_quoted(b, 0) == b.len();
    }
    !b.is_empty() && b.iter().copied().all(is_word)
}

fn next_non_blank(b: &[u8], mut i: usize) -> Option<u8> {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    b.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_variables_assigned_inside_statements_are_refused_but_reading_them_is_not() {
        assert!(shared_connection_violation("SELECT @v := ?").is_some());
        assert!(
            shared_connection_violation("SELECT c FROM t WHERE tenant_id = ? INTO @x").is_some()
        );
        assert!(shared_connection_violation("SELECT c FROM t WHERE tenant_id = @t").is_none());
        assert!(shared_connection_violation("INSERT INTO t (a) VALUES (@v)").is_none());
        assert!(shared_connection_violation("SELECT @@version_comment LIMIT ?").is_none());
        assert!(shared_connection_violation("SELECT @@session.sql_mode").is_none());
        assert!(shared_connection_violation("SELECT `a@b` FROM t WHERE tenant_id = ?").is_none());
    }

    #[test]
    fn functions_that_read_or_keep_connection_state_are_refused() {
        for fp in [
            "SELECT FOUND_ROWS()",
            "SELECT GET_LOCK(?, ?)",
            "SELECT RELEASE_ALL_LOCKS()",
            "SELECT LOAD_FILE(?)",
        ] {
            assert!(shared_connection_violation(fp).is_some(), "{fp}");
        }
        assert!(
            shared_connection_violation(
                "UPDATE seq SET id = LAST_INSERT_ID(id + ?) WHERE tenant_id = ?"
            )
            .is_none()
        );
        assert!(
            shared_connection_violation("SELECT found_rows FROM t WHERE tenant_id = ?").is_none()
        );
        // The proxy answers these from what it tracked for the session.
        assert!(shared_connection_violation("SELECT LAST_INSERT_ID( ), ROW_COUNT()").is_none());
    }

    #[test]
    fn session_function_calls_are_found_outside_quoted_names() {
        assert!(calls_session_function("SELECT LAST_INSERT_ID ( )"));
        assert!(calls_session_function("SELECT row_count()"));
        assert!(!calls_session_function(
            "SELECT `last_insert_id`, row_count FROM t"
        ));
    }

    #[test]
    fn savepoint_statements_are_recognised_and_nothing_else() {
        for fp in [
            "SAVEPOINT a",
            "release savepoint `a b`",
            "ROLLBACK TO a",
            "ROLLBACK WORK TO SAVEPOINT a",
            "SAVEPOINT a;",
        ] {
            assert!(is_savepoint_statement(fp), "{fp}");
        }
        for fp in [
            "SAVEPOINT",
            "ROLLBACK",
            "SAVEPOINT a b",
            "ROLLBACK TO a AND CHAIN",
        ] {
            assert!(!is_savepoint_statement(fp), "{fp}");
        }
    }

    #[test]
    fn warnings_queries_are_recognised() {
        assert_eq!(warnings_query("SHOW WARNINGS"), Some(WarningsQuery::List));
        assert_eq!(
            warnings_query("show  count(*) warnings;"),
            Some(WarningsQuery::Count)
        );
        assert_eq!(warnings_query("SHOW WARNINGS LIMIT ?"), None);
        assert_eq!(warnings_query("SHOW ERRORS"), None);
    }

    #[test]
    fn transaction_settings_say_which_transactions_they_change() {
        use TransactionSetting::*;
        let cases = [
            ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", Some(Next)),
            ("set session transaction read only", Some(Session)),
            (
                "SET LOCAL TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Some(Session),
            ),
            ("SET GLOBAL TRANSACTION READ WRITE", Some(Global)),
            ("SET sql_mode = ?", None),
            ("SET SESSION sql_mode = ?", None),
        ];
        for (fp, want) in cases {
            assert_eq!(transaction_setting(fp), want, "{fp}");
        }
        assert!(is_unlock_tables("UNLOCK TABLES"));
        assert!(!is_unlock_tables("UNLOCK TABLES t"));
    }

    #[test]
    fn temporary_table_statements_are_recognised() {
        assert!(is_create_temporary("create temporary table t (a int)"));
        assert!(is_drop_temporary("DROP TEMPORARY TABLE IF EXISTS t"));
        assert!(!is_create_temporary("CREATE TABLE temporary (a int)"));
        assert!(is_drop("DROP TABLE t"));
        assert!(has_select("CREATE TEMPORARY TABLE t AS SELECT ?"));
        assert!(!has_select("CREATE TEMPORARY TABLE t (selected int)"));
    }

    #[test]
    fn temporary_tables_and_server_files_are_refused() {
        assert!(shared_connection_violation("CREATE TEMPORARY TABLE t (a int)").is_some());
        assert!(shared_connection_violation("SELECT ? INTO OUTFILE ?").is_some());
        assert!(shared_connection_violation("CREATE TABLE t (a int)").is_none());
    }

    #[test]
    fn ddl_on_another_schema_is_detected_in_every_name() {
        assert!(ddl_names_another_schema("DROP TABLE a, mysql.b"));
        assert!(ddl_names_another_schema(
            "CREATE TABLE `mysql`.`evil` (a int)"
        ));
        assert!(ddl_names_another_schema("RENAME TABLE a TO other.a"));
        assert!(!ddl_names_another_schema(
            "CREATE TABLE t (a DECIMAL(?,?) DEFAULT ?)"
        ));
        assert!(!ddl_names_another_schema("CREATE TABLE `a.b` (x int)"));
    }

    #[test]
    fn only_schema_describing_show_kinds_are_allowed() {
        for fp in [
            "SHOW TABLES",
            "show full tables",
            "SHOW COLUMNS FROM t",
            "SHOW CREATE TABLE t",
            "DESCRIBE t",
        ] {
            assert!(show_is_allowed(fp), "{fp}");
        }
        for fp in [
            "SHOW FULL PROCESSLIST",
            "SHOW ENGINE INNODB STATUS",
            "SHOW BINLOG EVENTS",
            "SHOW GRANTS",
        ] {
            assert!(!show_is_allowed(fp), "{fp}");
        }
        assert!(show_is_allowed("SHOW TABLE STATUS"));
        assert!(!show_is_allowed("SHOW WARNINGS"));
    }
}
