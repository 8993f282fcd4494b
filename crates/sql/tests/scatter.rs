//! Scatter SELECTs: the exact merge plan of representative shapes, and what the plan
//! cache keeps for statements on several tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shardgate_sql::{
    Aggregate, AggregateKind, Analyzer, GroupKey, HavingExpr, HavingLiteral, HavingOp, MergePlan,
    Route, Scratch, SortKey, TenantKey,
};
use support::Keyspace;

/// The merge plan of `sql`, which must scatter.
fn merge(sql: &str) -> MergePlan {
    let analyzer = Analyzer::new(16);
    let analysis = analyzer
        .analyze(sql, &Keyspace::default(), &mut Scratch::default())
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    match analysis.route {
        Route::Scatter {
            merge: Some(merge), ..
        } => (*merge).clone(),
        other => panic!("{sql}: routed {other:?}"),
    }
}

/// A plan that merges by nothing: rows pass through in arrival order.
fn passthrough(shard_sql: &str, visible_columns: usize) -> MergePlan {
    MergePlan {
        shard_sql: shard_sql.to_owned(),
        visible_columns,
        order_by: vec![],
        group_by: vec![],
        aggregates: vec![],
        having: None,
        distinct: false,
        offset: 0,
        limit: None,
    }
}

fn sort(column: usize, descending: bool, weight: usize) -> SortKey {
    SortKey {
        column,
        descending,
        weight_column: Some(weight),
    }
}

fn aggregate(column: usize, kind: AggregateKind, weight: Option<usize>) -> Aggregate {
    Aggregate {
        column,
        kind,
        weight_column: weight,
    }
}

#[test]
fn sysbench_range_select_passes_rows_through() {
    let sql = "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?";
    assert_eq!(merge(sql), passthrough(sql, 1));
}

#[test]
fn sysbench_range_sum_adds_partial_sums() {
    let sql = "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?";
    assert_eq!(
        merge(sql),
        MergePlan {
            aggregates: vec![aggregate(0, AggregateKind::Sum, None)],
            ..passthrough(sql, 1)
        }
    );
}

#[test]
fn sysbench_order_by_merges_sorted_streams_by_weight() {
    assert_eq!(
        merge("SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"),
        MergePlan {
            order_by: vec![sort(0, false, 1)],
            ..passthrough(
                "SELECT c, WEIGHT_STRING(c) AS `__sg_h0` FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c",
                1
            )
        }
    );
}

#[test]
fn sysbench_distinct_groups_by_every_visible_column() {
    assert_eq!(
        merge("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"),
        MergePlan {
            order_by: vec![sort(0, false, 1)],
            group_by: vec![GroupKey {
                column: 0,
                weight_column: Some(1)
            }],
            distinct: true,
            ..passthrough(
                "SELECT DISTINCT c, WEIGHT_STRING(c) AS `__sg_h0` FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c",
                1
            )
        }
    );
}

#[test]
fn order_by_alias_position_and_expression_with_limit_and_offset() {
    assert_eq!(
        merge("SELECT a AS x, b FROM orders ORDER BY x DESC, 2, LOWER(c) LIMIT 5, 10"),
        MergePlan {
            order_by: vec![sort(0, true, 2), sort(1, false, 3), sort(4, false, 5)],
            offset: 5,
            limit: Some(10),
            ..passthrough(
                "SELECT a AS x, b, WEIGHT_STRING(a) AS `__sg_h0`, WEIGHT_STRING(b) AS `__sg_h1`, \
                 LOWER(c) AS `__sg_h2`, WEIGHT_STRING(LOWER(c)) AS `__sg_h3` FROM orders \
                 ORDER BY x DESC, 2, LOWER(c) LIMIT 15",
                2
            )
        }
    );
}

#[test]
fn limit_offset_moves_to_the_merger_and_locks_pass_through() {
    assert_eq!(
        merge("SELECT a FROM orders WHERE tenant_id IN (1, 2) LIMIT 10 OFFSET 5 FOR UPDATE"),
        MergePlan {
            offset: 5,
            limit: Some(10),
            ..passthrough(
                "SELECT a FROM orders WHERE tenant_id IN (1, 2) LIMIT 15 FOR UPDATE",
                1
            )
        }
    );
}

#[test]
fn wildcard_is_allowed_without_ordering_or_grouping() {
    let sql = "SELECT * FROM orders WHERE x = 1 LIMIT 3";
    assert_eq!(
        merge(sql),
        MergePlan {
            limit: Some(3),
            ..passthrough(sql, usize::MAX)
        }
    );
}

#[test]
fn aggregates_combine_and_avg_becomes_sum_and_count_named_as_written() {
    assert_eq!(
        merge("SELECT COUNT(*), SUM(n), MIN(s), MAX(s) AS m, AVG( n ), avg(n) AS a FROM orders"),
        MergePlan {
            aggregates: vec![
                aggregate(0, AggregateKind::Count, None),
                aggregate(1, AggregateKind::Sum, None),
                aggregate(2, AggregateKind::Min, Some(6)),
                aggregate(3, AggregateKind::Max, Some(7)),
                aggregate(4, AggregateKind::Avg { count_column: 8 }, None),
                aggregate(5, AggregateKind::Avg { count_column: 9 }, None),
            ],
            ..passthrough(
                "SELECT COUNT(*), SUM(n), MIN(s), MAX(s) AS m, SUM(n) AS `AVG( n )`, SUM(n) AS a, \
                 WEIGHT_STRING(MIN(s)) AS `__sg_h0`, WEIGHT_STRING(MAX(s)) AS `__sg_h1`, \
                 COUNT(n) AS `__sg_h2`, COUNT(n) AS `__sg_h3` FROM orders",
                6
            )
        }
    );
}

#[test]
fn grouped_rows_come_in_group_order_without_order_by() {
    assert_eq!(
        merge("SELECT k, COUNT(*) FROM orders GROUP BY k LIMIT 2, 3"),
        MergePlan {
            order_by: vec![sort(0, false, 2)],
            group_by: vec![GroupKey {
                column: 0,
                weight_column: Some(2)
            }],
            aggregates: vec![aggregate(1, AggregateKind::Count, None)],
            offset: 2,
            limit: Some(3),
            ..passthrough(
                "SELECT k, COUNT(*), WEIGHT_STRING(k) AS `__sg_h0` FROM orders GROUP BY k LIMIT 5",
                2
            )
        }
    );
}

#[test]
fn ordering_groups_by_an_aggregate_drops_the_shards_limit() {
    let plan = merge("SELECT k, COUNT(*) AS n FROM orders GROUP BY k ORDER BY n DESC LIMIT 10");
    assert_eq!(
        plan.shard_sql,
        "SELECT k, COUNT(*) AS n, WEIGHT_STRING(k) AS `__sg_h0` FROM orders GROUP BY k ORDER BY n DESC"
    );
    assert_eq!(
        plan.order_by,
        [SortKey {
            column: 1,
            descending: true,
            weight_column: None
        }]
    );
    assert_eq!((plan.offset, plan.limit), (0, Some(10)));
}

#[test]
fn group_by_an_unselected_expression_adds_a_hidden_key() {
    let plan = merge("SELECT COUNT(*) FROM orders GROUP BY LOWER(s)");
    assert_eq!(
        plan.shard_sql,
        "SELECT COUNT(*), LOWER(s) AS `__sg_h0`, WEIGHT_STRING(LOWER(s)) AS `__sg_h1` FROM orders GROUP BY LOWER(s)"
    );
    assert_eq!(
        plan.group_by,
        [GroupKey {
            column: 1,
            weight_column: Some(2)
        }]
    );
    assert_eq!(plan.visible_columns, 1);
}

#[test]
fn copied_text_keeps_its_escapes_and_comments_stay_where_they_were() {
    let plan = merge("SELECT /* hint */ a FROM orders ORDER BY CONCAT(a, 'x\\y''z') -- tail");
    assert_eq!(
        plan.shard_sql,
        "SELECT /* hint */ a, CONCAT(a, 'x\\y''z') AS `__sg_h0`, WEIGHT_STRING(CONCAT(a, 'x\\y''z')) AS `__sg_h1` \
         FROM orders ORDER BY CONCAT(a, 'x\\y''z') -- tail"
    );
}

#[test]
fn order_by_null_asks_for_no_order() {
    let plan = merge("SELECT k, COUNT(*) FROM orders GROUP BY k ORDER BY NULL");
    assert!(plan.order_by.is_empty());
}

fn compare(column: usize, op: HavingOp, literal: HavingLiteral) -> HavingExpr {
    HavingExpr::Compare {
        column,
        op,
        literal,
    }
}

fn exact(text: &str) -> HavingLiteral {
    HavingLiteral::Exact(text.to_owned())
}

fn boxed(expr: HavingExpr) -> Box<HavingExpr> {
    Box::new(expr)
}

#[test]
fn having_leaves_the_shards_and_hidden_aggregates_feed_it() {
    let plan = merge(
        "SELECT k, COUNT(*) AS n FROM orders GROUP BY k \
         HAVING n > 2 AND MAX(v) IS NOT NULL OR AVG(w) <= -1.5 ORDER BY n LIMIT 3",
    );
    assert_eq!(
        plan,
        MergePlan {
            order_by: vec![SortKey {
                column: 1,
                descending: false,
                weight_column: None
            }],
            group_by: vec![GroupKey {
                column: 0,
                weight_column: Some(2)
            }],
            aggregates: vec![
                aggregate(1, AggregateKind::Count, None),
                aggregate(3, AggregateKind::Max, Some(4)),
                aggregate(5, AggregateKind::Avg { count_column: 6 }, None),
            ],
            having: Some(HavingExpr::Or(
                boxed(HavingExpr::And(
                    boxed(compare(1, HavingOp::Gt, exact("2"))),
                    boxed(HavingExpr::IsNull {
                        column: 3,
                        negated: true
                    }),
                )),
                boxed(compare(5, HavingOp::Le, exact("-1.5"))),
            )),
            limit: Some(3),
            // No LIMIT on the shards: HAVING may drop the groups they would send first.
            ..passthrough(
                "SELECT k, COUNT(*) AS n, WEIGHT_STRING(k) AS `__sg_h0`, MAX(v) AS `__sg_h1`, \
                 WEIGHT_STRING(MAX(v)) AS `__sg_h2`, SUM(w) AS `__sg_h3`, COUNT(w) AS `__sg_h4` \
                 FROM orders GROUP BY k ORDER BY n",
                2
            )
        }
    );
}

#[test]
fn having_matches_selected_aggregates_and_adds_each_other_one_once() {
    let plan = merge(
        "SELECT a, count(*) FROM orders GROUP BY a \
         HAVING COUNT(*) >= .5 AND sum(b) > 1 AND 1e3 > SUM( b ) /* c */ FOR UPDATE",
    );
    assert_eq!(
        plan.shard_sql,
        "SELECT a, count(*), WEIGHT_STRING(a) AS `__sg_h0`, sum(b) AS `__sg_h1` FROM orders GROUP BY a /* c */ FOR UPDATE"
    );
    assert_eq!(
        plan.having,
        Some(HavingExpr::And(
            boxed(HavingExpr::And(
                boxed(compare(1, HavingOp::Ge, exact("0.5"))),
                boxed(compare(3, HavingOp::Gt, exact("1"))),
            )),
            boxed(compare(
                3,
                HavingOp::Lt,
                HavingLiteral::Double("1e3".to_owned())
            )),
        ))
    );
    assert_eq!(plan.aggregates[1], aggregate(3, AggregateKind::Sum, None));
    // The cut leaves a blank between the tokens it separated.
    let plan = merge("SELECT a FROM orders GROUP BY a HAVING a > 1/**/ORDER BY a");
    assert!(plan.shard_sql.ends_with("GROUP BY a /**/ORDER BY a"));
    let plan = merge("SELECT a, MAX(b) FROM orders GROUP BY a HAVING (MAX(b) > 1)ORDER BY a");
    assert!(
        plan.shard_sql.ends_with("GROUP BY a ORDER BY a"),
        "{}",
        plan.shard_sql
    );
}

#[test]
fn having_names_group_keys_select_items_and_null() {
    let plan = merge("SELECT COUNT(*) FROM orders GROUP BY a HAVING a IS NULL OR a = NULL");
    assert_eq!(
        plan.having,
        Some(HavingExpr::Or(
            boxed(HavingExpr::IsNull {
                column: 1,
                negated: false
            }),
            boxed(compare(1, HavingOp::Eq, HavingLiteral::Null)),
        ))
    );
    // Without grouping, HAVING filters rows by their select items.
    let plan = merge("SELECT a, b AS x FROM orders HAVING x <> - -2 AND a != TRUE LIMIT 4");
    assert_eq!(plan.shard_sql, "SELECT a, b AS x FROM orders");
    assert_eq!(
        plan.having,
        Some(HavingExpr::And(
            boxed(compare(1, HavingOp::Ne, exact("2"))),
            boxed(compare(0, HavingOp::Ne, exact("1"))),
        ))
    );
    assert_eq!((plan.offset, plan.limit), (0, Some(4)));
}

#[test]
fn an_aggregate_only_in_having_makes_one_group() {
    let plan = merge("SELECT 1 AS one FROM orders HAVING COUNT(*) > 0");
    assert_eq!(
        plan.shard_sql,
        "SELECT 1 AS one, COUNT(*) AS `__sg_h0` FROM orders"
    );
    assert_eq!(plan.aggregates, [aggregate(1, AggregateKind::Count, None)]);
    assert!(plan.group_by.is_empty() && plan.order_by.is_empty());
    assert_eq!(plan.visible_columns, 1);
}

#[test]
fn scatter_selects_are_parsed_every_time_but_tenant_statements_stay_cached() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    for limit in [10, 20] {
        let sql = format!("SELECT a FROM orders ORDER BY a LIMIT 5, {limit}");
        let analysis = analyzer.analyze(&sql, &keyspace, &mut scratch).unwrap();
        let Route::Scatter {
            merge: Some(merge), ..
        } = analysis.route
        else {
            panic!("{sql}: not a scatter");
        };
        assert!(!analysis.cached);
        assert_eq!(
            merge.limit,
            Some(limit),
            "a plan must not be reused across literals"
        );
    }
    for tenant in [5, 6] {
        let sql = format!("SELECT a FROM orders WHERE tenant_id = {tenant} ORDER BY a LIMIT 5, 10");
        analyzer.analyze(&sql, &keyspace, &mut scratch).unwrap();
    }
    assert_eq!(analyzer.cache_len(), 1);
    assert_eq!(
        analyzer.cache_hits(),
        1,
        "the second tenant statement is a hit"
    );
}

#[test]
fn scatter_writes_are_cached_and_each_hit_reads_its_own_tenants() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let mut route = |sql: &str| analyzer.analyze(sql, &keyspace, &mut scratch).unwrap();
    let first = route("UPDATE orders SET x = 1 WHERE tenant_id IN (1, 2)");
    let second = route("UPDATE orders SET x = 1 WHERE tenant_id IN (3, 3)");
    let third = route("UPDATE orders SET x = 1 WHERE tenant_id IN (4, 'a')");
    assert!(!first.cached && second.cached && third.cached);
    assert_eq!(
        second.route,
        Route::Tenant {
            table: "orders".into(),
            key: TenantKey::Int(3)
        }
    );
    assert_eq!(
        third.route,
        Route::Scatter {
            table: "orders".into(),
            keys: Some(vec![TenantKey::Int(4), TenantKey::Str("a".into())]),
            merge: None
        }
    );
    let everywhere = route("DELETE FROM orders WHERE id = 1");
    let again = route("DELETE FROM orders WHERE id = 2");
    assert!(again.cached);
    assert_eq!(everywhere.route, again.route);
}

#[test]
fn a_cached_insert_shape_splits_rows_of_several_tenants() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let single = analyzer
        .analyze(
            "INSERT INTO orders (tenant_id, id) VALUES (1, 1), (1, 2)",
            &keyspace,
            &mut scratch,
        )
        .unwrap();
    assert!(matches!(single.route, Route::Tenant { .. }));
    let split = analyzer
        .analyze(
            "INSERT INTO orders (tenant_id, id) VALUES (1, 1), (2, 2)",
            &keyspace,
            &mut scratch,
        )
        .unwrap();
    let Route::SplitInsert { parts, .. } = split.route else {
        panic!("not split: {:?}", split.route);
    };
    let parts: Vec<(TenantKey, &str)> = parts
        .iter()
        .map(|part| (part.key.clone(), part.sql.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            (
                TenantKey::Int(1),
                "INSERT INTO orders (tenant_id, id) VALUES (1, 1)"
            ),
            (
                TenantKey::Int(2),
                "INSERT INTO orders (tenant_id, id) VALUES (2, 2)"
            ),
        ]
    );
    let single_again = analyzer
        .analyze(
            "INSERT INTO orders (tenant_id, id) VALUES (3, 1), (3, 2)",
            &keyspace,
            &mut scratch,
        )
        .unwrap();
    assert!(single_again.cached);
    assert_eq!(analyzer.cache_len(), 1);
}
