use super::*;
use crate::{Analyzer, Route, Schema, Scratch, TenantKey};

/// `tickets` sharded by `tenant_id` with ids from a sequence in `id`; `sbtest1` sharded by
/// its sequence column `id`.
struct Keyspace;

impl Schema for Keyspace {
    fn generation(&self) -> u64 {
        1
    }

    fn sharding_column(&self, table: &str) -> Option<&str> {
        match table {
            "tickets" => Some("tenant_id"),
            "sbtest1" => Some("id"),
            _ => None,
        }
    }

    fn sequence_column(&self, table: &str) -> Option<&str> {
        matches!(table, "tickets" | "sbtest1").then_some("id")
    }
}

/// Fills `ids` into `sql`, checks the result parses as one INSERT, and returns it.
fn fill(sql: &str, ids: &[(usize, u64)]) -> String {
    let filled = fill_ids(sql, "id", ids).unwrap();
    assert!(
        matches!(parse_one(&filled), Some(Statement::Insert(_))),
        "{filled}"
    );
    filled
}

fn route(sql: &str) -> Route {
    Analyzer::new(16)
        .analyze(sql, &Keyspace, &mut Scratch::default())
        .unwrap()
        .route
}

#[test]
fn an_omitted_column_is_added_to_the_list_and_to_every_row() {
    let sql = "INSERT INTO tickets (tenant_id, note) VALUES (1, 'a'), (2, 'b')";
    let filled = fill(sql, &[(0, 100), (1, 101)]);
    assert_eq!(
        filled,
        "INSERT INTO tickets (tenant_id, note, `id`) VALUES (1, 'a', 100), (2, 'b', 101)"
    );
    let Route::SplitInsert { parts, .. } = route(&filled) else {
        panic!("{filled}")
    };
    assert_eq!(
        parts[1].sql,
        "INSERT INTO tickets (tenant_id, note, `id`) VALUES (2, 'b', 101)"
    );
}

#[test]
fn null_default_and_zero_are_replaced_and_given_ids_kept() {
    let sql = "INSERT INTO sbtest1 (id, k) VALUES (NULL, 1), (7, 2), (0, 3), (DEFAULT, 4), ( ( null ) , 5), (- 0, 6), ('0', 7)";
    let filled = fill(sql, &[(0, 10), (2, 11), (3, 12), (4, 13), (5, 14), (6, 15)]);
    assert_eq!(
        filled,
        "INSERT INTO sbtest1 (id, k) VALUES (10, 1), (7, 2), (11, 3), (12, 4), ( 13 , 5), (14, 6), (15, 7)"
    );
    assert!(matches!(route(&filled), Route::SplitInsert { .. }));
    assert_eq!(
        route(&fill(
            "INSERT INTO sbtest1 (k, id) VALUES (1, 0)",
            &[(0, 5)]
        )),
        Route::Tenant {
            table: "sbtest1".into(),
            key: TenantKey::Int(5)
        }
    );
}

#[test]
fn escapes_comments_and_other_text_are_kept_byte_for_byte() {
    let sql = "INSERT /* a, b) */ INTO tickets (tenant_id, -- c)\n s) VALUES (1, 'x\\'y, z)'), (1, \"q\\\\\" /* ) */), (1, 'é\\n') # end";
    let filled = fill(sql, &[(0, 1), (1, 2), (2, 3)]);
    assert_eq!(
        filled,
        "INSERT /* a, b) */ INTO tickets (tenant_id, -- c)\n s, `id`) VALUES (1, 'x\\'y, z)', 1), (1, \"q\\\\\" /* ) */, 2), (1, 'é\\n', 3) # end"
    );
    let sql = "INSERT INTO sbtest1 (id, c) VALUES (/* next */ NULL /* id */, 'a''b\\\\')";
    assert_eq!(
        fill(sql, &[(0, 9)]),
        "INSERT INTO sbtest1 (id, c) VALUES (/* next */ 9 /* id */, 'a''b\\\\')"
    );
}

#[test]
fn on_duplicate_key_update_and_modifiers_are_kept() {
    let sql = "INSERT IGNORE INTO tickets (tenant_id, n) VALUES (5, 1) ON DUPLICATE KEY UPDATE n = VALUES(n) + 1, id = id";
    assert_eq!(
        fill(sql, &[(0, 42)]),
        "INSERT IGNORE INTO tickets (tenant_id, n, `id`) VALUES (5, 1, 42) ON DUPLICATE KEY UPDATE n = VALUES(n) + 1, id = id"
    );
    let sql = "REPLACE INTO sbtest1 (id, c) VALUE (NULL, (SELECT 1)), (NULL, CONCAT('a', 'b'))";
    assert_eq!(
        fill(sql, &[(0, 1), (1, 2)]),
        "REPLACE INTO sbtest1 (id, c) VALUE (1, (SELECT 1)), (2, CONCAT('a', 'b'))"
    );
}

#[test]
fn placeholders_and_explicit_rows_are_kept() {
    assert_eq!(
        fill(
            "INSERT INTO tickets (tenant_id, note) VALUES (?, ?)",
            &[(0, 3)]
        ),
        "INSERT INTO tickets (tenant_id, note, `id`) VALUES (?, ?, 3)"
    );
    assert_eq!(
        fill(
            "INSERT INTO tickets (tenant_id) VALUES ROW(1), ROW(2)",
            &[(0, 3), (1, 4)]
        ),
        "INSERT INTO tickets (tenant_id, `id`) VALUES ROW(1, 3), ROW(2, 4)"
    );
}

#[test]
fn the_column_is_matched_ignoring_case_and_added_quoted() {
    assert_eq!(
        fill("INSERT INTO sbtest1 (ID, k) VALUES (null, 1)", &[(0, 8)]),
        "INSERT INTO sbtest1 (ID, k) VALUES (8, 1)"
    );
    assert_eq!(
        fill_ids("INSERT INTO t (a) VALUES (1)", "we`ird", &[(0, 2)]).unwrap(),
        "INSERT INTO t (a, `we``ird`) VALUES (1, 2)"
    );
}

#[test]
fn a_value_the_client_gave_is_never_overwritten() {
    for sql in [
        "INSERT INTO sbtest1 (id, k) VALUES (7, 1)",
        "INSERT INTO sbtest1 (id, k) VALUES (?, 1)",
        "INSERT INTO sbtest1 (id, k) VALUES (1 - 1, 1)",
        "INSERT INTO sbtest1 (id, k) VALUES ('', 1)",
    ] {
        let error = fill_ids(sql, "id", &[(0, 5)]).unwrap_err();
        assert!(
            error.to_string().contains("cannot fill in generated ids"),
            "{sql}: {error}"
        );
    }
}

#[test]
fn rows_out_of_range_twice_or_missing_are_refused() {
    let sql = "INSERT INTO tickets (tenant_id) VALUES (1), (2)";
    for ids in [&[(0, 1), (2, 2)][..], &[(0, 1), (0, 2)], &[(1, 2)]] {
        assert!(fill_ids(sql, "id", ids).is_err(), "{ids:?}");
    }
    // With the column present, rows not listed keep their value.
    let sql = "INSERT INTO sbtest1 (id) VALUES (NULL), (3)";
    assert_eq!(
        fill(sql, &[(0, 1)]),
        "INSERT INTO sbtest1 (id) VALUES (1), (3)"
    );
}

#[test]
fn statements_the_ids_cannot_go_into_are_refused() {
    let refused = [
        ("INSERT INTO tickets VALUES (1, 2)", "must list its columns"),
        (
            "INSERT INTO tickets (tenant_id) SELECT 1",
            "cannot take its rows from a SELECT",
        ),
        (
            "INSERT INTO tickets SET tenant_id = 1",
            "must list its columns",
        ),
        ("SELECT 1", "not one INSERT"),
        (
            "INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2)",
            "not one INSERT",
        ),
        ("INSERT INTO t (a, id) VALUES (1)", "as many values"),
        ("INSERT INTO t (id, ID) VALUES (NULL, NULL)", "listed twice"),
    ];
    for (sql, message) in refused {
        let error = fill_ids(sql, "id", &[(0, 1)]).unwrap_err();
        assert!(error.to_string().contains(message), "{sql}: {error}");
    }
}
