//! HAVING on merged groups: the condition sees the combined aggregates (the summed COUNT, the AVG quotient), not a
//! shard's partials, and runs before LIMIT. Uses the `group_aggs` replies of `fixtures/replies.txt`, whose groups
//! are (by `grp`, NULL first): NULL with COUNT 2, SUM(qty) 18; `w` with 1 and NULL; `x` with 3 and 9 (its three
//! rows are on three shards); `y` with 3 and 6; `z` with 3 and -2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixtures, run, unframe};
use shardgate_merge::{
    Aggregate, AggregateKind, GroupKey, Having, HavingLiteral, HavingOp, MergeError, MergeSpec,
    Protocol,
};

/// Visible columns of `group_aggs`; the column-count packet and the definitions come before the rows.
const VISIBLE: usize = 16;

/// The `group_aggs` merge of `differential.rs`, with `having`.
fn spec(having: Having) -> MergeSpec {
    let agg = |column, kind| Aggregate {
        column,
        kind,
        weight_column: None,
    };
    let avg = |column, count_column| agg(column, AggregateKind::Avg { count_column });
    MergeSpec {
        group_by: vec![GroupKey {
            column: 0,
            weight_column: Some(16),
        }],
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
        having: Some(having),
        ..MergeSpec::concat(VISIBLE, 1000)
    }
}

fn compare(column: usize, op: HavingOp, literal: HavingLiteral) -> Having {
    Having::Compare {
        column,
        op,
        literal,
    }
}

fn exact(text: &str) -> HavingLiteral {
    HavingLiteral::Exact(text.into())
}

fn is_null(column: usize, negated: bool) -> Having {
    Having::IsNull { column, negated }
}

/// The `grp` of each row the merge returns, in both protocols (which must agree).
fn groups(spec: &MergeSpec) -> Result<Vec<Option<String>>, MergeError> {
    let fx = Fixtures::load();
    let mut answers = Vec::new();
    for protocol in [Protocol::Text, Protocol::Binary] {
        let (out, output) = run(&fx, "group_aggs", protocol, spec, true)?;
        let packets = unframe(&out);
        let rows = &packets[1 + VISIBLE..1 + VISIBLE + output.rows as usize];
        let grp: Vec<Option<String>> = rows
            .iter()
            .map(|(_, payload)| {
                // Text: the first cell. Binary: a 0x00 header and a NULL bitmap (bit 2 is column 0) first.
                let (null, at) = match protocol {
                    Protocol::Text => (payload[0] == 0xfb, 0),
                    Protocol::Binary => (payload[1] & 0b100 != 0, 1 + (VISIBLE + 2).div_ceil(8)),
                };
                // `grp` values are short: a one-byte length prefix.
                (!null).then(|| {
                    let len = usize::from(payload[at]);
                    String::from_utf8(payload[at + 1..at + 1 + len].to_vec()).unwrap()
                })
            })
            .collect();
        answers.push(grp);
    }
    assert_eq!(answers[0], answers[1], "text and binary rows differ");
    Ok(answers.swap_remove(0))
}

fn names(groups: &[Option<&str>]) -> Vec<Option<String>> {
    groups.iter().map(|g| g.map(String::from)).collect()
}

#[test]
fn having_tests_the_summed_count_not_a_shards_partial() {
    // No shard holds more than one row of `x`, so a HAVING on the shards would drop it.
    let got = groups(&spec(compare(1, HavingOp::Gt, exact("2")))).unwrap();
    assert_eq!(got, names(&[Some("x"), Some("y"), Some("z")]));
}

#[test]
fn null_aggregates_make_comparisons_unknown() {
    let sum_qty = |op, n| compare(2, op, exact(n));
    let either = Having::Or(
        Box::new(sum_qty(HavingOp::Ge, "9")),
        Box::new(is_null(2, false)),
    );
    assert_eq!(
        groups(&spec(either)).unwrap(),
        names(&[None, Some("w"), Some("x")])
    );
    // NOT unknown is unknown: `w` (SUM NULL) is not kept by NOT (SUM(qty) > 0).
    let not_positive = Having::Not(Box::new(sum_qty(HavingOp::Gt, "0")));
    assert_eq!(groups(&spec(not_positive)).unwrap(), names(&[Some("z")]));
    let with_null = compare(1, HavingOp::Ne, HavingLiteral::Null);
    assert_eq!(groups(&spec(with_null)).unwrap(), names(&[]));
}

#[test]
fn decimals_compare_exactly_and_avg_as_its_rounded_quotient() {
    // SUM(amount) of `x` is 10.00 - 0.01 + 0.01.
    let ten = compare(3, HavingOp::Eq, exact("10"));
    assert_eq!(groups(&spec(ten)).unwrap(), names(&[Some("x")]));
    // AVG(amount) of `x` is 10/3, which MariaDB holds (and compares) as 3.333333.
    let avg = |op| compare(7, op, exact("3.333333"));
    assert_eq!(
        groups(&spec(avg(HavingOp::Eq))).unwrap(),
        names(&[Some("x")])
    );
    assert!(
        !groups(&spec(avg(HavingOp::Gt)))
            .unwrap()
            .contains(&Some("x".into()))
    );
    // AVG(qty): NULL group 9, `x` 3, `y` 6, `z` -0.6667, `w` NULL.
    let avg_qty = compare(6, HavingOp::Gt, exact("4.5"));
    assert_eq!(groups(&spec(avg_qty)).unwrap(), names(&[None, Some("y")]));
}

#[test]
fn doubles_compare_as_doubles() {
    // MAX(score): `x` holds 1e20.
    let huge = compare(5, HavingOp::Gt, HavingLiteral::Double("1e19".into()));
    assert_eq!(groups(&spec(huge)).unwrap(), names(&[Some("x")]));
    let both = Having::And(
        Box::new(compare(5, HavingOp::Ge, exact("7"))),
        Box::new(compare(5, HavingOp::Le, exact("12.5"))),
    );
    assert_eq!(groups(&spec(both)).unwrap(), names(&[Some("y"), Some("z")]));
}

#[test]
fn having_runs_before_limit_and_null_tests_take_any_type() {
    let first_big = MergeSpec {
        limit: Some(1),
        ..spec(compare(1, HavingOp::Ge, exact("3")))
    };
    assert_eq!(groups(&first_big).unwrap(), names(&[Some("x")]));
    // MIN(name) is a string: fine for IS NOT NULL.
    assert_eq!(groups(&spec(is_null(9, true))).unwrap().len(), 5);
}

#[test]
fn comparing_a_string_column_is_refused() {
    let r = groups(&spec(compare(0, HavingOp::Eq, exact("1"))));
    assert!(
        matches!(r, Err(MergeError::HavingNotNumeric { column: 0, .. })),
        "{r:?}"
    );
    let out_of_range = groups(&spec(is_null(23, false)));
    assert!(matches!(
        out_of_range,
        Err(MergeError::ColumnOutOfRange { column: 23, .. })
    ));
}
