//! Fingerprint and slot specifications for the lexer.

use super::*;

/// Fingerprint and slot kinds of `sql` (placeholders as `None`).
fn lex(sql: &str) -> Result<(String, Vec<Option<LiteralKind>>), SqlError> {
    let mut scratch = Scratch::default();
    scan(sql, &mut scratch)?;
    let kinds = scratch
        .slots()
        .iter()
        .map(|slot| match slot {
            Slot::Literal { kind, .. } => Some(*kind),
            Slot::Param { .. } => None,
        })
        .collect();
    Ok((scratch.fingerprint().to_owned(), kinds))
}

fn fingerprint(sql: &str) -> String {
    lex(sql)
        .map(|(fingerprint, _)| fingerprint)
        .unwrap_or_else(|e| format!("ERR {e}"))
}

fn slot_texts(sql: &str) -> Vec<String> {
    let mut scratch = Scratch::default();
    scan(sql, &mut scratch).unwrap();
    scratch
        .slots()
        .iter()
        .map(|slot| sql[slot.span()].to_owned())
        .collect()
}

fn is_unsupported(sql: &str) -> bool {
    matches!(lex(sql), Err(SqlError::Unsupported { .. }))
}

use LiteralKind::*;

#[test]
fn literals_become_question_marks_and_identifiers_keep_their_case() {
    let (fp, kinds) =
        lex("select * FROM Orders WHERE tenant_id = 42 AND name = 'x' AND p = 1.5").unwrap();
    assert_eq!(
        fp,
        "select * FROM Orders WHERE tenant_id = ? AND name = ? AND p = ?"
    );
    assert_eq!(kinds, vec![Some(Int), Some(Str), Some(Decimal)]);
}

#[test]
fn whitespace_runs_and_comments_become_one_space() {
    assert_eq!(
        fingerprint("  SELECT\t\n a /* c */ FROM  t # tail\n WHERE x = 1 -- end"),
        "SELECT a FROM t WHERE x = ?"
    );
    assert_eq!(fingerprint("SELECT a/**/FROM t"), "SELECT a FROM t");
}

#[test]
fn touching_tokens_stay_touching() {
    assert_eq!(fingerprint("SELECT a=1"), "SELECT a=?");
    assert_ne!(fingerprint("SELECT a=1"), fingerprint("SELECT a = 1"));
}

#[test]
fn string_escapes_doubled_quotes_and_question_marks_stay_inside_one_slot() {
    let sql = r#"SELECT 'it\'s', 'it''s', 'what?', "say \"hi\"", 'a\\'"#;
    assert_eq!(fingerprint(sql), "SELECT ?, ?, ?, ?, ?");
    assert_eq!(
        slot_texts(sql),
        vec![
            r"'it\'s'",
            "'it''s'",
            "'what?'",
            r#""say \"hi\"""#,
            r"'a\\'"
        ]
    );
}

#[test]
fn prefixed_literals_are_one_slot_each() {
    let (fp, kinds) = lex("SELECT x'2A', X'2a', 0x2a, b'101', 0b101, N'abc', n'abc'").unwrap();
    assert_eq!(fp, "SELECT ?, ?, ?, ?, ?, ?, ?");
    assert_eq!(
        kinds,
        vec![
            Some(Hex),
            Some(Hex),
            Some(Hex),
            Some(Bit),
            Some(Bit),
            Some(Str),
            Some(Str)
        ]
    );
}

#[test]
fn charset_introducer_stays_beside_its_string() {
    assert_eq!(
        fingerprint("SELECT _utf8mb4'abc', _latin1 'x'"),
        "SELECT _utf8mb4?, _latin1 ?"
    );
}

#[test]
fn numbers_in_every_form() {
    let (fp, kinds) = lex("SELECT 1, 1.5, .5, 1., 1e5, 1E-3, 1.5e+2").unwrap();
    assert_eq!(fp, "SELECT ?, ?, ?, ?, ?, ?, ?");
    assert_eq!(
        kinds,
        vec![
            Some(Int),
            Some(Decimal),
            Some(Decimal),
            Some(Decimal),
            Some(Decimal),
            Some(Decimal),
            Some(Decimal)
        ]
    );
}

#[test]
fn identifiers_may_start_with_digits() {
    assert_eq!(
        fingerprint("SELECT 1abc, 0xZZ, 0X2a, 12e FROM t"),
        "SELECT 1abc, 0xZZ, 0X2a, 12e FROM t"
    );
    assert_eq!(
        fingerprint("SELECT t.1e5, t.5 FROM t"),
        "SELECT t.1e5, t.5 FROM t"
    );
}

#[test]
fn quoted_identifiers_and_variables_are_kept_as_written() {
    assert_eq!(
        fingerprint("SELECT `a?b`, `x``y`, @v, @'a b', @@session.sql_mode"),
        "SELECT `a?b`, `x``y`, @v, @'a b', @@session.sql_mode"
    );
}

#[test]
fn placeholders_are_numbered_in_order() {
    let mut scratch = Scratch::default();
    scan("SELECT ? , '?', ?", &mut scratch).unwrap();
    assert_eq!(scratch.fingerprint(), "SELECT ? , ?, ?");
    assert_eq!(
        scratch.slots(),
        &[
            Slot::Param {
                index: 0,
                span: 7..8
            },
            Slot::Literal {
                kind: Str,
                span: 11..14
            },
            Slot::Param {
                index: 1,
                span: 16..17
            },
        ]
    );
}

#[test]
fn dash_dash_is_a_comment_only_before_whitespace() {
    assert_eq!(fingerprint("SELECT 1 -- 2"), "SELECT ?");
    assert_eq!(fingerprint("SELECT 1 --\n"), "SELECT ?");
    assert_eq!(fingerprint("SELECT 1 --"), "SELECT ?");
    assert_eq!(fingerprint("SELECT 1 --1"), "SELECT ? --?");
    assert_eq!(fingerprint("SELECT 1 ---1"), "SELECT ? ---?");
}

#[test]
fn dash_dash_before_a_control_or_unicode_space_is_refused() {
    assert!(is_unsupported("SELECT 1 --\u{1}x"));
    assert!(is_unsupported("SELECT 1 --\u{a0}x"));
}

#[test]
fn executable_comments_are_refused() {
    assert!(is_unsupported(
        "SELECT * FROM t WHERE tenant_id = 1 /*! OR 1=1 */"
    ));
    assert!(is_unsupported(
        "SELECT * FROM t WHERE tenant_id = 1 /*!50000 OR 1=1 */"
    ));
    assert!(is_unsupported(
        "SELECT * FROM t WHERE tenant_id = 1 /*M! OR 1=1 */"
    ));
    assert!(is_unsupported("SELECT 1; /*! SELECT 2 */"));
}

#[test]
fn optimizer_hints_are_plain_comments() {
    assert_eq!(
        fingerprint("SELECT /*+ MAX_EXECUTION_TIME(10) */ a FROM t"),
        "SELECT a FROM t"
    );
}

#[test]
fn executable_comment_markers_inside_strings_are_data() {
    assert_eq!(
        fingerprint("SELECT '/*! x */', '-- y', '# z'"),
        "SELECT ?, ?, ?"
    );
}

#[test]
fn nested_comments_are_refused() {
    assert!(is_unsupported("SELECT 1 /* a /* b */ OR 1=1 */"));
}

#[test]
fn unterminated_strings_and_comments_are_parse_errors_at_their_start() {
    for (sql, line, column) in [
        ("SELECT 'abc", 1, 8),
        ("SELECT\n  \"abc", 2, 3),
        ("SELECT `abc", 1, 8),
        ("SELECT 1 /* abc", 1, 10),
        (r"SELECT 'abc\'", 1, 8),
        ("SELECT x'2", 1, 8),
    ] {
        match lex(sql) {
            Err(SqlError::Parse {
                line: l, column: c, ..
            }) => assert_eq!((l, c), (line, column), "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[test]
fn invalid_hex_digits_are_a_parse_error() {
    assert!(matches!(lex("SELECT x'zz'"), Err(SqlError::Parse { .. })));
}

#[test]
fn trailing_semicolons_are_dropped_and_a_second_statement_is_refused() {
    assert_eq!(fingerprint("SELECT 1 ; ;  -- done\n"), "SELECT ?");
    assert!(is_unsupported("SELECT 1; SELECT 2"));
    assert_eq!(fingerprint("SELECT ';'"), "SELECT ?");
}

#[test]
fn empty_text_is_empty() {
    for sql in ["", "   ", ";", "-- only a comment", "/* c */ ;"] {
        assert_eq!(lex(sql), Err(SqlError::Empty), "{sql:?}");
    }
}

#[test]
fn double_pipe_and_double_ampersand_are_refused() {
    assert!(is_unsupported("SELECT * FROM t WHERE a = 1 || b = 2"));
    assert!(is_unsupported("SELECT * FROM t WHERE a = 1 && b = 2"));
    assert_eq!(fingerprint("SELECT a | b & c, '||'"), "SELECT a | b & c, ?");
}

#[test]
fn control_characters_outside_strings_are_refused() {
    assert!(matches!(lex("SELECT \u{1} 1"), Err(SqlError::Parse { .. })));
    assert_eq!(fingerprint("SELECT '\u{1}'"), "SELECT ?");
}

#[test]
fn long_operator_chains_are_refused_but_long_lists_are_not() {
    let chain = format!("SELECT * FROM t WHERE a = 1{}", " AND a = 1".repeat(3000));
    assert!(is_unsupported(&chain));
    let list = format!("SELECT * FROM t WHERE a IN (1{})", ", -1".repeat(10_000));
    assert!(lex(&list).is_ok());
    let rows = format!(
        "INSERT INTO t (a, b) VALUES (1, 'x'){}",
        ", (-1 + 2, 'y')".repeat(10_000)
    );
    assert!(lex(&rows).is_ok());
}

#[test]
fn scratch_is_reused_between_statements() {
    let mut scratch = Scratch::default();
    scan("SELECT 1, 2, 3", &mut scratch).unwrap();
    scan("SELECT 'a'", &mut scratch).unwrap();
    assert_eq!(scratch.fingerprint(), "SELECT ?");
    assert_eq!(scratch.slots().len(), 1);
}
