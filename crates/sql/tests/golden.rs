//! Golden cases, Vitess style: statement in, route and kind (or the exact error) out.
//!
//! The cases live in `testdata/*_cases.txt`: one or more lines of SQL, then a line
//! `=> <expected>` (an expectation ending in `…` is a prefix). `##` lines are headings.
//! Every case runs twice on one analyzer, so a cacheable statement is answered once by
//! the parser and once from its cached plan: both answers must be the golden one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shardgate_sql::{Analyzer, Scratch};
use support::{Keyspace, matches, render};

/// The `(sql, expected)` pairs of a testdata file.
fn cases(text: &str) -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let mut sql: Vec<&str> = Vec::new();
    for line in text.lines() {
        let heading = line.starts_with("## ");
        let between_cases = line.is_empty() && sql.is_empty();
        if let Some(expected) = line.strip_prefix("=> ") {
            cases.push((sql.join("\n"), expected.to_owned()));
            sql.clear();
        } else if !heading && !between_cases {
            sql.push(line);
        }
    }
    assert!(sql.is_empty(), "statement without an expectation: {sql:?}");
    cases
}

/// Runs each case twice, collecting every mismatch.
fn check(cases: &[(String, String)]) {
    assert!(!cases.is_empty());
    let analyzer = Analyzer::new(1024);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let mut failures = Vec::new();
    for (sql, expected) in cases {
        for attempt in ["parsed", "repeated"] {
            let got = render(&analyzer.analyze(sql, &keyspace, &mut scratch));
            if !matches(&got, expected) {
                failures.push(format!("{sql}\n  {attempt}: {got}\n  expected: {expected}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn selects_route_by_a_top_level_tenant_conjunct() {
    check(&cases(include_str!("testdata/select_cases.txt")));
}

#[test]
fn tenant_literals_decode_by_kind_and_comments_cannot_hide_sql() {
    check(&cases(include_str!("testdata/literal_cases.txt")));
}

#[test]
fn inserts_updates_and_deletes_name_one_tenant() {
    check(&cases(include_str!("testdata/dml_cases.txt")));
}

#[test]
fn a_sharded_table_not_limited_to_the_tenant_is_refused() {
    check(&cases(include_str!("testdata/unsupported_cases.txt")));
}

#[test]
fn joins_and_subqueries_pinned_to_one_tenant_route_to_it_and_others_are_refused() {
    check(&cases(include_str!("testdata/join_cases.txt")));
}

#[test]
fn writes_to_reference_tables_run_on_every_shard() {
    check(&cases(include_str!("testdata/reference_cases.txt")));
}

#[test]
fn statements_on_several_tenants_scatter_or_split() {
    check(&cases(include_str!("testdata/scatter_cases.txt")));
}

#[test]
fn inserts_leaving_ids_to_a_sequence_need_ids_before_any_tenant_route() {
    check(&cases(include_str!("testdata/sequence_cases.txt")));
}

#[test]
fn session_transaction_show_and_ddl_statements_are_classified() {
    check(&cases(include_str!("testdata/session_cases.txt")));
}

#[test]
fn malformed_text_gets_a_located_error() {
    let cases = [
        ("", "Empty"),
        ("  ;  ", "Empty"),
        ("-- nothing but a comment", "Empty"),
        (
            "SELECT 1; SELECT 2",
            "Unsupported: multiple statements in one query",
        ),
        (
            "SELEC 1",
            "Parse at 1:1: Expected: an SQL statement, found: SELEC",
        ),
        (
            "SELECT * FROM orders\nWHERE",
            "Parse at 2:6: Expected: an expression, found: EOF",
        ),
        (
            "SELECT * FROM\norders WHERE tenant_id = 'abc",
            "Parse at 2:26: unterminated string",
        ),
        ("SELECT 1 /* open", "Parse at 1:10: unterminated comment"),
    ];
    check(&cases.map(|(sql, expected)| (sql.to_owned(), expected.to_owned())));
}
