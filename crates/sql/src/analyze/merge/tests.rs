//! Where the pieces of a main SELECT are found in its text, and what happens when the
//! text does not split the way the parser read it. Whole plans are tested through the
//! public API in `tests/scatter.rs` and `tests/testdata/scatter_cases.txt`.

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::layout::{self, Layout};
use super::plan;
use crate::position;
use crate::tokens::Tokens;

/// The texts of the items, GROUP BY entries, ORDER BY entries and LIMIT clause of the
/// main SELECT of `sql`.
fn pieces(sql: &str) -> [Vec<String>; 4] {
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
    let [Statement::Query(query)] = statements.as_slice() else {
        panic!("not a query");
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        panic!("not a select");
    };
    let tokens = Tokens::new(sql).unwrap();
    let select_at = position::offset_of(sql, select.select_token.0.span.start).unwrap();
    let layout = Layout::of(&tokens, select_at).unwrap();
    let text = |piece: &Vec<usize>| sql[layout::span(&tokens, piece).unwrap()].to_owned();
    [
        layout.items.iter().map(text).collect(),
        layout.group_by.iter().map(text).collect(),
        layout.order_by.iter().map(text).collect(),
        std::iter::once(&layout.limit)
            .filter(|limit| !limit.is_empty())
            .map(text)
            .collect(),
    ]
}

#[test]
fn pieces_split_at_top_level_commas_and_clause_words_only() {
    let sql = "SELECT DISTINCT SQL_NO_CACHE a, f(b, c) , (SELECT x FROM t ORDER BY x LIMIT 1) AS s \
               FROM orders WHERE g IN (1, 2) GROUP BY a, 2 ORDER BY a DESC, f(b, c) \
               LIMIT 5 OFFSET 10 FOR UPDATE";
    assert_eq!(
        pieces(sql),
        [
            vec!["a", "f(b, c)", "(SELECT x FROM t ORDER BY x LIMIT 1) AS s"],
            vec!["a", "2"],
            vec!["a DESC", "f(b, c)"],
            vec!["LIMIT 5 OFFSET 10"],
        ]
        .map(|texts| texts.into_iter().map(String::from).collect::<Vec<_>>())
    );
}

#[test]
fn the_having_clause_is_one_piece_from_its_keyword_to_the_next_clause() {
    let sql = "SELECT a, COUNT(*) FROM orders GROUP BY a HAVING COUNT(*) > 1 AND a IN (1, 2) \
               ORDER BY a LIMIT 3";
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
    let [Statement::Query(query)] = statements.as_slice() else {
        panic!("not a query");
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        panic!("not a select");
    };
    let tokens = Tokens::new(sql).unwrap();
    let select_at = position::offset_of(sql, select.select_token.0.span.start).unwrap();
    let layout = Layout::of(&tokens, select_at).unwrap();
    assert_eq!(
        &sql[layout::span(&tokens, &layout.having).unwrap()],
        "HAVING COUNT(*) > 1 AND a IN (1, 2)"
    );
    assert_eq!(layout.group_by.len(), 1);
    assert_eq!(layout.order_by.len(), 1);
    assert_eq!(layout.limit.len(), 2);
}

#[test]
fn the_main_select_of_a_cte_query_is_found_after_the_cte() {
    let sql = "WITH r AS (SELECT id, name FROM regions ORDER BY id) \
               SELECT o.a /* c */, r.name FROM orders o JOIN r ON r.id = o.r GROUP BY o.a WITH ROLLUP";
    let [items, group_by, order_by, limit] = pieces(sql);
    assert_eq!(items, ["o.a", "r.name"]);
    assert_eq!(group_by, ["o.a"]);
    assert!(order_by.is_empty() && limit.is_empty());
}

#[test]
fn a_text_that_splits_differently_from_the_ast_is_refused_not_guessed() {
    // MySQL's index hint `FOR ORDER BY` reads like an ORDER BY clause to the walk, so
    // the ORDER BY entry to copy into a hidden column cannot be told apart.
    let sql = "SELECT a FROM orders USE INDEX FOR ORDER BY (i) ORDER BY LOWER(a)";
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
    let [Statement::Query(query)] = statements.as_slice() else {
        panic!("not a query");
    };
    let refused = plan(sql, query).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("could not locate each ORDER BY entry"),
        "{refused}"
    );
    // An entry that names a select item needs no text of its own.
    let sql = "SELECT a FROM orders USE INDEX FOR ORDER BY (i) ORDER BY a";
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).unwrap();
    let [Statement::Query(query)] = statements.as_slice() else {
        panic!("not a query");
    };
    assert_eq!(
        plan(sql, query).unwrap().shard_sql,
        "SELECT a, WEIGHT_STRING(a) AS `__sg_h0` FROM orders USE INDEX FOR ORDER BY (i) ORDER BY a"
    );
}
