//! Bad input is an error, never a panic or a wrong reply: damaged shard replies, shards that disagree, and specs
//! that do not fit the result set. Real replies come from `fixtures/replies.txt` (see `fixtures/capture.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Fixtures, run, unframe};
use shardgate_merge::{
    Aggregate, AggregateKind, GroupKey, MergeError, MergeSpec, OutputKind, Protocol, SortKey, merge,
};
use shardgate_wire::lenenc::put_lenenc_bytes;

/// A spec exercising every stage, valid for the `group_aggs` replies.
fn busy_spec() -> MergeSpec {
    let a = |column, kind| Aggregate {
        column,
        kind,
        weight_column: None,
    };
    MergeSpec {
        group_by: vec![GroupKey {
            column: 0,
            weight_column: Some(16),
        }],
        aggregates: vec![
            a(1, AggregateKind::Count),
            a(3, AggregateKind::Sum),
            a(5, AggregateKind::Max),
            a(7, AggregateKind::Avg { count_column: 19 }),
            a(8, AggregateKind::Avg { count_column: 20 }),
            Aggregate {
                weight_column: Some(17),
                ..a(9, AggregateKind::Min)
            },
            a(11, AggregateKind::Min),
        ],
        distinct: true,
        order_by: vec![SortKey {
            column: 1,
            descending: true,
            weight_column: None,
        }],
        limit: Some(3),
        ..MergeSpec::concat(16, 1000)
    }
}

#[test]
fn truncated_or_corrupted_packets_never_panic() {
    let fx = Fixtures::load();
    let spec = busy_spec();
    for protocol in [Protocol::Text, Protocol::Binary] {
        let shards = fx.shards("group_aggs", protocol);
        for shard in 0..shards.len() {
            for packet in 0..shards[shard].len() {
                let original = shards[shard][packet].clone();
                let mut damaged: Vec<Bytes> =
                    (0..original.len()).map(|n| original.slice(..n)).collect();
                for i in 0..original.len() {
                    for b in [0x00, 0xfb, 0xfe, 0xff] {
                        let mut p = original.to_vec();
                        p[i] = b;
                        damaged.push(Bytes::from(p));
                    }
                }
                for bad in damaged {
                    let mut replies = shards.clone();
                    replies[shard][packet] = bad;
                    let mut out = BytesMut::new();
                    // Either outcome is fine; reaching the next iteration is the claim.
                    let _ = merge(&spec, protocol, replies, true, 1, &mut out);
                }
            }
        }
    }
}

#[test]
fn a_result_set_and_an_ok_cannot_be_merged() {
    let fx = Fixtures::load();
    let mut replies = fx.shards("concat", Protocol::Text);
    replies[1] = fx.reply("dml_insert", "shard2", Protocol::Text, "deprecate");
    let r = merge(
        &MergeSpec::concat(4, 100),
        Protocol::Text,
        replies,
        true,
        1,
        &mut BytesMut::new(),
    );
    assert!(matches!(r, Err(MergeError::MixedReplies { shard: 1, .. })));
}

#[test]
fn shards_must_agree_on_columns() {
    let fx = Fixtures::load();
    let mut replies = fx.shards("concat", Protocol::Text);
    replies[2] = fx.reply("concat_limit", "shard3", Protocol::Text, "deprecate");
    let r = merge(
        &MergeSpec::concat(2, 100),
        Protocol::Text,
        replies,
        true,
        1,
        &mut BytesMut::new(),
    );
    assert!(matches!(
        r,
        Err(MergeError::ColumnCountMismatch {
            shard: 2,
            got: 2,
            want: 4
        })
    ));

    // (id, amount DECIMAL) against (id, score DOUBLE).
    let mut replies = fx.shards("order_amount", Protocol::Binary);
    replies[1] = fx.reply("order_score_desc", "shard2", Protocol::Binary, "deprecate");
    let r = merge(
        &MergeSpec::concat(2, 100),
        Protocol::Binary,
        replies,
        true,
        1,
        &mut BytesMut::new(),
    );
    assert!(matches!(
        r,
        Err(MergeError::ColumnTypeMismatch {
            shard: 1,
            column: 1,
            ..
        })
    ));
}

#[test]
fn specs_naming_missing_columns_are_refused() {
    let fx = Fixtures::load();
    let r = run(
        &fx,
        "concat",
        Protocol::Text,
        &MergeSpec::concat(5, 100),
        true,
    );
    assert!(matches!(
        r,
        Err(MergeError::ColumnOutOfRange {
            column: 4,
            columns: 4
        })
    ));
    let spec = MergeSpec {
        order_by: vec![SortKey {
            column: 1,
            descending: false,
            weight_column: Some(9),
        }],
        ..MergeSpec::concat(4, 100)
    };
    let r = run(&fx, "concat", Protocol::Text, &spec, true);
    assert!(matches!(
        r,
        Err(MergeError::ColumnOutOfRange { column: 9, .. })
    ));
}

#[test]
fn sum_of_a_string_column_is_unsupported() {
    let fx = Fixtures::load();
    let spec = MergeSpec {
        aggregates: vec![Aggregate {
            column: 1,
            kind: AggregateKind::Sum,
            weight_column: None,
        }],
        ..MergeSpec::concat(4, 100)
    };
    let r = run(&fx, "concat", Protocol::Text, &spec, true);
    assert!(matches!(
        r,
        Err(MergeError::UnsupportedAggregate {
            column: 1,
            type_code: 0xfd
        })
    ));
}

#[test]
fn no_replies_or_an_empty_reply_are_errors() {
    let mut out = BytesMut::new();
    let spec = MergeSpec::concat(1, 10);
    assert!(matches!(
        merge(&spec, Protocol::Text, vec![], true, 1, &mut out),
        Err(MergeError::NoReplies)
    ));
    let r = merge(
        &spec,
        Protocol::Text,
        vec![vec![Bytes::from_static(b"\x00\0\0\x02\0\0\0")], vec![]],
        true,
        1,
        &mut out,
    );
    assert!(matches!(r, Err(MergeError::EmptyReply { shard: 1 })));
}

#[test]
fn an_error_wins_even_over_a_malformed_reply() {
    let fx = Fixtures::load();
    let err = fx.reply("err_missing_table", "shard2", Protocol::Text, "deprecate");
    let replies = vec![vec![Bytes::from_static(b"\x05garbage")], err.clone()];
    let mut out = BytesMut::new();
    let o = merge(
        &MergeSpec::concat(1, 10),
        Protocol::Text,
        replies,
        false,
        7,
        &mut out,
    )
    .unwrap();
    assert_eq!(o.kind, OutputKind::Err { code: 1146 });
    assert_eq!(unframe(&out), vec![(7, err[0].to_vec())]);
}

#[test]
fn sequence_ids_wrap_around() {
    let fx = Fixtures::load();
    let mut out = BytesMut::new();
    let o = merge(
        &MergeSpec::concat(4, 100),
        Protocol::Text,
        fx.shards("concat", Protocol::Text),
        true,
        250,
        &mut out,
    )
    .unwrap();
    let seqs: Vec<u8> = unframe(&out).iter().map(|(s, _)| *s).collect();
    let want: Vec<u8> = (0..seqs.len())
        .map(|i| 250u8.wrapping_add(i as u8))
        .collect();
    assert_eq!((o.rows, seqs), (12, want));
}

/// A one-column text result set whose column is an ENUM.
fn enum_reply(values: &[&str]) -> Vec<Bytes> {
    let mut def = BytesMut::new();
    for s in ["def", "db", "t", "t", "e", "e"] {
        put_lenenc_bytes(&mut def, s.as_bytes());
    }
    def.put_u8(0x0c);
    def.put_u16_le(45);
    def.put_u32_le(20);
    def.put_u8(0xfe);
    def.put_u16_le(0x0100); // ENUM_FLAG
    def.put_u8(0);
    def.put_u16_le(0);
    let mut reply = vec![Bytes::from_static(b"\x01"), def.freeze()];
    for v in values {
        let mut row = BytesMut::new();
        put_lenenc_bytes(&mut row, v.as_bytes());
        reply.push(row.freeze());
    }
    reply.push(Bytes::from_static(b"\xfe\0\0\x02\0\0\0"));
    reply
}

#[test]
fn ordering_an_enum_without_its_index_is_refused() {
    // MariaDB sorts ENUM by position in the type's list; the text alone would give a different order.
    let spec = MergeSpec {
        order_by: vec![SortKey {
            column: 0,
            descending: false,
            weight_column: None,
        }],
        ..MergeSpec::concat(1, 10)
    };
    let replies = vec![enum_reply(&["small", "large"]), enum_reply(&["medium"])];
    let r = merge(
        &spec,
        Protocol::Text,
        replies.clone(),
        true,
        1,
        &mut BytesMut::new(),
    );
    assert!(matches!(
        r,
        Err(MergeError::OrdinalWithoutWeight { column: 0 })
    ));
    // Without ordering an ENUM merges like any string.
    let o = merge(
        &MergeSpec::concat(1, 10),
        Protocol::Text,
        replies,
        true,
        1,
        &mut BytesMut::new(),
    )
    .unwrap();
    assert_eq!(o.rows, 3);
}
