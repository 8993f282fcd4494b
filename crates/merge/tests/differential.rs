//! Differential tests: rows split over three fake shards, merged, must equal byte for byte what one MariaDB
//! holding all rows sent for the original query. Replies were captured from MariaDB 10.11.19 by
//! `fixtures/capture.py` (shard queries carry the planner's hidden helper columns); no server is needed here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixtures, assert_same_as_single_server, run, unframe};
use shardgate_merge::{
    Aggregate, AggregateKind, ColumnWeight, GroupKey, MergeError, MergeSpec, OutputKind, Protocol,
    SortKey,
};

const MAX_ROWS: usize = 1000;

fn asc(column: usize) -> SortKey {
    SortKey {
        column,
        descending: false,
        weight_column: None,
    }
}

fn desc(column: usize) -> SortKey {
    SortKey {
        descending: true,
        ..asc(column)
    }
}

fn agg(column: usize, kind: AggregateKind) -> Aggregate {
    Aggregate {
        column,
        kind,
        weight_column: None,
    }
}

fn avg(column: usize, count_column: usize) -> Aggregate {
    agg(column, AggregateKind::Avg { count_column })
}

fn weighted_group(column: usize, weight: usize) -> GroupKey {
    GroupKey {
        column,
        weight_column: Some(weight),
    }
}

#[test]
fn concatenation_without_order_keeps_shard_order() {
    let fx = Fixtures::load();
    assert_same_as_single_server(&fx, "concat", &MergeSpec::concat(4, MAX_ROWS));
}

#[test]
fn limit_with_offset_applies_to_the_concatenated_rows() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        offset: 3,
        limit: Some(5),
        ..MergeSpec::concat(2, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "concat_limit", &spec);
}

#[test]
fn every_column_type_survives_decoding_and_reencoding() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        order_by: vec![asc(0)],
        ..MergeSpec::concat(14, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "all_types", &spec);
}

#[test]
fn order_by_compares_each_type_as_mariadb_does() {
    let fx = Fixtures::load();
    // (case, descending): the second key is always `id` ascending, to make the expected order total.
    let cases = [
        ("order_qty_desc", true),
        ("order_qty_asc", false),
        ("order_amount", false),
        ("order_score_desc", true),
        ("order_ratio", false),
        ("order_big", false),
        ("order_tiny_desc", true),
        ("order_dt", false),
        ("order_d_desc", true),
        ("order_tm", false),
        ("order_yr", false),
        ("order_bin", false),
    ];
    for (case, descending) in cases {
        let first = if descending { desc(1) } else { asc(1) };
        let spec = MergeSpec {
            order_by: vec![first, asc(0)],
            ..MergeSpec::concat(2, MAX_ROWS)
        };
        assert_same_as_single_server(&fx, case, &spec);
    }
}

#[test]
fn strings_order_by_their_collation_weight() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        order_by: vec![
            SortKey {
                weight_column: Some(2),
                ..asc(1)
            },
            asc(0),
        ],
        ..MergeSpec::concat(2, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "order_name_weight", &spec);
}

#[test]
fn limit_and_offset_apply_after_sorting() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        order_by: vec![desc(1), asc(0)],
        offset: 2,
        limit: Some(3),
        ..MergeSpec::concat(2, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "order_limit", &spec);
}

#[test]
fn grouped_aggregates_equal_the_single_server() {
    let fx = Fixtures::load();
    // Shard columns: grp, COUNT(*), SUM(qty), SUM(amount), MIN(amount), MAX(score), SUM(qty) as AVG(qty),
    // SUM(amount) as AVG(amount), SUM(score) as AVG(score), MIN(name), MAX(d), MIN(tm), SUM(score),
    // SUM(tiny) as AVG(tiny), SUM(big) as AVG(big), SUM(big) | hidden: WEIGHT_STRING(grp),
    // WEIGHT_STRING(MIN(name)), COUNT(qty), COUNT(amount), COUNT(score), COUNT(tiny), COUNT(big).
    let spec = MergeSpec {
        group_by: vec![weighted_group(0, 16)],
        aggregates: vec![
            agg(1, AggregateKind::Count),
            agg(2, AggregateKind::Sum),
            agg(3, AggregateKind::Sum),
            agg(4, AggregateKind::Min),
            agg(5, AggregateKind::Max),
            avg(6, 18),
            avg(7, 19),
            avg(8, 20),
            Aggregate {
                weight_column: Some(17),
                ..agg(9, AggregateKind::Min)
            },
            agg(10, AggregateKind::Max),
            agg(11, AggregateKind::Min),
            agg(12, AggregateKind::Sum),
            avg(13, 21),
            avg(14, 22),
            agg(15, AggregateKind::Sum),
        ],
        ..MergeSpec::concat(16, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "group_aggs", &spec);
}

#[test]
fn groups_can_be_ordered_by_an_aggregate() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        group_by: vec![weighted_group(0, 2)],
        aggregates: vec![agg(1, AggregateKind::Count)],
        order_by: vec![
            desc(1),
            SortKey {
                weight_column: Some(2),
                ..asc(0)
            },
        ],
        ..MergeSpec::concat(2, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "group_order_count", &spec);
}

#[test]
fn aggregates_without_group_by_make_one_row() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        aggregates: vec![
            agg(0, AggregateKind::Count),
            agg(1, AggregateKind::Sum),
            avg(2, 6),
            agg(3, AggregateKind::Min),
            agg(4, AggregateKind::Max),
            Aggregate {
                weight_column: Some(7),
                ..agg(5, AggregateKind::Max)
            },
        ],
        ..MergeSpec::concat(6, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "aggs_no_group", &spec);
}

#[test]
fn aggregates_over_no_rows_give_zero_and_nulls() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        aggregates: vec![
            agg(0, AggregateKind::Count),
            agg(1, AggregateKind::Sum),
            avg(2, 4),
            Aggregate {
                weight_column: Some(5),
                ..agg(3, AggregateKind::Min)
            },
        ],
        ..MergeSpec::concat(4, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "aggs_empty", &spec);
}

#[test]
fn distinct_treats_strings_with_equal_weights_as_duplicates() {
    let fx = Fixtures::load();
    // 'apple'/'Apple', 'éclair'/'Éclair' and 'Banana'/'banana ' (PAD SPACE) are equal in utf8mb4_general_ci.
    let spec = MergeSpec {
        distinct: true,
        distinct_weights: vec![ColumnWeight {
            column: 0,
            weight_column: 1,
        }],
        ..MergeSpec::concat(1, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "distinct_weight", &spec);
}

#[test]
fn distinct_then_descending_order_puts_null_last() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        distinct: true,
        distinct_weights: vec![ColumnWeight {
            column: 0,
            weight_column: 1,
        }],
        order_by: vec![SortKey {
            weight_column: Some(1),
            ..desc(0)
        }],
        ..MergeSpec::concat(1, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "distinct_order", &spec);
}

#[test]
fn avg_rounds_half_away_from_zero_with_mariadb_scale() {
    let fx = Fixtures::load();
    // 32 rows per group summing to 1 or -1: AVG(INT) prints ±0.0313, AVG(DECIMAL(5,1)) ±0.00313.
    let spec = MergeSpec {
        group_by: vec![weighted_group(0, 5)],
        aggregates: vec![avg(1, 6), avg(2, 7), avg(3, 8), agg(4, AggregateKind::Sum)],
        ..MergeSpec::concat(5, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "avg_rounding", &spec);
}

#[test]
fn the_first_shard_error_is_forwarded() {
    let fx = Fixtures::load();
    let err = fx.reply("err_missing_table", "shard2", Protocol::Text, "deprecate");
    for protocol in [Protocol::Text, Protocol::Binary] {
        let (got, out) = run(
            &fx,
            "err_missing_table",
            protocol,
            &MergeSpec::concat(14, MAX_ROWS),
            true,
        )
        .unwrap();
        assert_eq!(out.kind, OutputKind::Err { code: 1146 });
        assert_eq!(unframe(&got), vec![(1, err[0].to_vec())]);
    }
}

#[test]
fn dml_oks_sum_affected_rows_and_keep_the_first_insert_id() {
    let fx = Fixtures::load();
    let (got, out) = run(
        &fx,
        "dml_insert",
        Protocol::Text,
        &MergeSpec::concat(0, MAX_ROWS),
        true,
    )
    .unwrap();
    // Each shard inserted 2 rows; their first ids were 1, 3 and 5.
    assert_eq!(
        out.kind,
        OutputKind::Ok {
            affected_rows: 6,
            last_insert_id: 1
        }
    );
    assert_eq!(unframe(&got), vec![(1, vec![0x00, 6, 1, 0x02, 0, 0, 0])]);
}

#[test]
fn too_many_buffered_rows_are_refused() {
    let fx = Fixtures::load();
    let r = run(
        &fx,
        "concat",
        Protocol::Text,
        &MergeSpec::concat(4, 11),
        true,
    );
    assert!(matches!(
        r,
        Err(MergeError::TooManyRows {
            rows: 12,
            limit: 11
        })
    ));
    assert!(
        run(
            &fx,
            "concat",
            Protocol::Text,
            &MergeSpec::concat(4, 12),
            true
        )
        .is_ok()
    );
}

#[test]
fn distinct_planned_as_group_by_keeps_first_seen_order() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        distinct: true,
        group_by: vec![weighted_group(0, 1)],
        ..MergeSpec::concat(1, MAX_ROWS)
    };
    assert_same_as_single_server(&fx, "distinct_weight", &spec);
}

#[test]
fn a_wildcard_select_shows_every_column() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        order_by: vec![asc(0)],
        ..MergeSpec::concat(usize::MAX, MAX_ROWS)
    };
    for protocol in [Protocol::Text, Protocol::Binary] {
        let (got, _) = run(&fx, "all_types", protocol, &spec, true).unwrap();
        assert_eq!(got, common::framed(&fx.full("all_types", protocol, true)));
    }
}
