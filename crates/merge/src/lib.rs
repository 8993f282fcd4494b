//! Merging the replies of several shards into the one reply a single MariaDB holding all rows would send.
//!
//! Place in the data path: the last step of a scattered SELECT. The planner (`crates/sql`) rewrote the statement
//! for the shards and described the merge in a [`MergeSpec`]; the proxy collected every shard's complete reply;
//! [`merge`] decodes just enough of each cell to group, aggregate, filter (HAVING), deduplicate and sort as MariaDB
//! would, and writes the framed reply for the client. Cells it does not compute are copied byte for byte.
//!
//! It knows nothing of shards beyond "a list of replies", nothing of SQL text, and nothing of sockets: the wire
//! codec is `shardgate-wire`'s.
//!
//! Choices worth knowing:
//! - An ERR from any shard wins: the first one (in reply order) is forwarded verbatim and [`merge`] returns
//!   `Ok` with [`OutputKind::Err`], because for the client it is a normal reply, not a proxy failure.
//! - All rows are buffered (up to [`MergeSpec::max_rows`]); the shards' own ORDER BY is not relied on.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod collation;
mod column;
mod decimal;
mod error;
mod float;
mod group;
mod having;
mod order;
mod reply;
mod row;
mod spec;
mod value;

use bytes::{BufMut, Bytes, BytesMut};
use shardgate_wire::lenenc::put_lenenc_int;
use shardgate_wire::packet::{begin_packet, finish_packet, put_packet};
use shardgate_wire::response::{ErrPacket, OkPacket, put_eof};

pub use error::MergeError;
pub use spec::{
    Aggregate, AggregateKind, ColumnWeight, GroupKey, Having, HavingLiteral, HavingOp, MergeSpec,
    Protocol, SortKey,
};

use column::Column;
use order::Decoder;
use reply::{Reply, ResultSet};
use row::Row;

/// SERVER_MORE_RESULTS_EXISTS: a shard's multi-statement state must not leak into the merged reply.
const MORE_RESULTS: u16 = 0x0008;
/// SERVER_QUERY_NO_GOOD_INDEX_USED | SERVER_QUERY_NO_INDEX_USED: true of the whole if true of any shard's part.
const INDEX_HINTS: u16 = 0x0010 | 0x0020;

/// What [`merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Result set, OK or ERR.
    pub kind: OutputKind,
    /// Rows sent to the client (0 unless a result set).
    pub rows: u64,
    /// Status flags of the reply (0 for an ERR, which carries none).
    pub status: u16,
    /// Warnings, summed over the shards.
    pub warnings: u16,
}

/// Which kind of reply [`merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// A result set with [`Output::rows`] rows.
    ResultSet,
    /// Every shard answered OK (a statement without rows): one OK with the summed counts.
    Ok {
        /// Summed over the shards.
        affected_rows: u64,
        /// The first non-zero one in shard order, 0 if none.
        last_insert_id: u64,
    },
    /// A shard failed: its ERR was forwarded.
    Err {
        /// The MySQL error code.
        code: u16,
    },
}

/// Merges every shard's complete reply (packet payloads without headers, in shard order) into one reply for the
/// client, framed into `out` with sequence ids from `first_seq`. `client_deprecate_eof` is the client's
/// CLIENT_DEPRECATE_EOF capability; the replies must come from backends that negotiated it.
///
/// On error `out` may hold part of a reply and must be discarded.
pub fn merge(
    spec: &MergeSpec,
    protocol: Protocol,
    replies: Vec<Vec<Bytes>>,
    client_deprecate_eof: bool,
    first_seq: u8,
    out: &mut BytesMut,
) -> Result<Output, MergeError> {
    if replies.is_empty() {
        return Err(MergeError::NoReplies);
    }
    if let Some(shard) = replies.iter().position(Vec::is_empty) {
        return Err(MergeError::EmptyReply { shard });
    }
    if let Some(shard) = replies.iter().position(|r| reply::is_err(r)) {
        let payload = replies[shard].last().cloned().unwrap_or_default();
        let err =
            ErrPacket::decode(&payload).map_err(|source| MergeError::Wire { shard, source })?;
        put_packet(out, first_seq, &payload);
        return Ok(Output {
            kind: OutputKind::Err { code: err.code },
            rows: 0,
            status: 0,
            warnings: 0,
        });
    }
    let mut oks = Vec::new();
    let mut sets = Vec::new();
    for (shard, packets) in replies.into_iter().enumerate() {
        let r = reply::classify(packets).map_err(|source| MergeError::Wire { shard, source })?;
        match r {
            Reply::Ok(ok) if sets.is_empty() => oks.push(ok),
            Reply::ResultSet(rs) if oks.is_empty() => sets.push(rs),
            Reply::Ok(_) => {
                return Err(MergeError::MixedReplies {
                    shard,
                    got: "an OK",
                    want: "a result set",
                });
            }
            Reply::ResultSet(_) => {
                return Err(MergeError::MixedReplies {
                    shard,
                    got: "a result set",
                    want: "an OK",
                });
            }
        }
    }
    if sets.is_empty() {
        // Copies of one write (a reference table on every shard) report what one copy did, info included.
        let oks = if spec.copies {
            &oks[..1.min(oks.len())]
        } else {
            &oks[..]
        };
        return Ok(merge_oks(oks, spec.insert_id, first_seq, out));
    }
    merge_result_sets(spec, protocol, sets, client_deprecate_eof, first_seq, out)
}

/// One OK for a statement that ran on every shard: counts summed, the first generated id (or the one the proxy
/// generated), the first status.
fn merge_oks(oks: &[OkPacket], insert_id: Option<u64>, seq: u8, out: &mut BytesMut) -> Output {
    let affected_rows = oks
        .iter()
        .fold(0u64, |a, ok| a.saturating_add(ok.affected_rows));
    let last_insert_id = insert_id.unwrap_or_else(|| {
        oks.iter()
            .map(|ok| ok.last_insert_id)
            .find(|&id| id != 0)
            .unwrap_or(0)
    });
    let status = oks.first().map_or(0, |ok| ok.status) & !MORE_RESULTS;
    let warnings = oks.iter().fold(0u16, |a, ok| a.saturating_add(ok.warnings));
    // One OK's info text ("Records: 2  Duplicates: 0 …") is still true; a sum of several would need rebuilding.
    let info = match oks {
        [one] => one.info.clone(),
        _ => String::new(),
    };
    let ok = OkPacket {
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info,
    };
    ok.put(out, seq);
    Output {
        kind: OutputKind::Ok {
            affected_rows,
            last_insert_id,
        },
        rows: 0,
        status,
        warnings,
    }
}

/// Parses every shard's column definitions and checks that they agree in number and type with shard 0's.
fn columns_of(sets: &[ResultSet]) -> Result<Vec<Column>, MergeError> {
    let mut first: Vec<Column> = Vec::new();
    for (shard, rs) in sets.iter().enumerate() {
        let cols = rs
            .definitions
            .iter()
            .map(|d| Column::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| MergeError::Wire { shard, source })?;
        if shard == 0 {
            first = cols;
            continue;
        }
        if cols.len() != first.len() {
            return Err(MergeError::ColumnCountMismatch {
                shard,
                got: cols.len(),
                want: first.len(),
            });
        }
        if let Some((column, (c, f))) = cols
            .iter()
            .zip(&first)
            .enumerate()
            .find(|(_, (c, f))| c.type_code != f.type_code)
        {
            return Err(MergeError::ColumnTypeMismatch {
                shard,
                column,
                got: c.type_code,
                want: f.type_code,
            });
        }
    }
    Ok(first)
}

/// Merges result sets as `spec` says (group, HAVING, DISTINCT, sort, offset and limit, in that order) and writes the
/// client's result set: shard 0's definitions of the visible columns, the rows, and the terminator.
fn merge_result_sets(
    spec: &MergeSpec,
    protocol: Protocol,
    sets: Vec<ResultSet>,
    client_deprecate_eof: bool,
    first_seq: u8,
    out: &mut BytesMut,
) -> Result<Output, MergeError> {
    let columns = columns_of(&sets)?;
    let width = columns.len();
    let visible = spec.visible(width);
    if visible == 0 {
        return Err(MergeError::NoVisibleColumns);
    }
    if let Some(column) = spec
        .columns()
        .chain(visible.checked_sub(1))
        .find(|&c| c >= width)
    {
        return Err(MergeError::ColumnOutOfRange {
            column,
            columns: width,
        });
    }
    let total: usize = sets.iter().map(|rs| rs.rows.len()).sum();
    if total > spec.max_rows {
        return Err(MergeError::TooManyRows {
            rows: total,
            limit: spec.max_rows,
        });
    }
    // The client sees AVG where the shards sent SUM: rewrite those column definitions.
    let mut shown = columns.clone();
    for agg in &spec.aggregates {
        if let AggregateKind::Avg { .. } = agg.kind {
            let c = &columns[agg.column];
            shown[agg.column] = c.avg_of_sum().ok_or(MergeError::UnsupportedAggregate {
                column: agg.column,
                type_code: c.type_code,
            })?;
        }
    }
    let status = sets.iter().fold(sets[0].status & !MORE_RESULTS, |s, rs| {
        s | (rs.status & INDEX_HINTS)
    });
    let warnings = sets
        .iter()
        .fold(0u16, |w, rs| w.saturating_add(rs.warnings));
    let definitions = sets[0].definitions.clone();

    let mut rows = Vec::with_capacity(total);
    for (shard, rs) in sets.into_iter().enumerate() {
        for payload in rs.rows {
            let row = Row::parse(payload, &columns, protocol)
                .map_err(|source| MergeError::Wire { shard, source })?;
            rows.push(row);
        }
    }
    let input = Decoder {
        columns: &columns,
        protocol,
    };
    let output = Decoder {
        columns: &shown,
        protocol,
    };
    let mut rows = group::group(rows, spec, input, &shown)?;
    if let Some(having) = &spec.having {
        // On the combined cells, as the client will see them: `output` decodes AVG as the quotient.
        rows = having::filter(rows, having, output)?;
    }
    if spec.distinct {
        rows = order::distinct(rows, output, spec, visible)?;
    }
    if !spec.order_by.is_empty() {
        rows = order::sort(rows, output, &spec.order_by)?;
    }
    let skip = usize::try_from(spec.offset).unwrap_or(usize::MAX);
    let take = spec
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));

    let start = begin_packet(out);
    put_lenenc_int(out, visible as u64);
    let mut seq = finish_packet(out, start, first_seq);
    for (i, def) in definitions.iter().take(visible).enumerate() {
        seq = if shown[i] == columns[i] {
            put_packet(out, seq, def)
        } else {
            put_packet(out, seq, &shown[i].rewrite(def))
        };
    }
    if !client_deprecate_eof {
        // Warnings raised while producing rows are not known yet when MariaDB sends this EOF.
        seq = put_eof(out, seq, 0, status);
    }
    let mut sent = 0u64;
    for row in rows.iter().skip(skip).take(take) {
        seq = row.write(out, seq, visible, protocol);
        sent += 1;
    }
    if client_deprecate_eof {
        let start = begin_packet(out);
        out.put_u8(0xfe);
        put_lenenc_int(out, 0);
        put_lenenc_int(out, 0);
        out.put_u16_le(status);
        out.put_u16_le(warnings);
        finish_packet(out, start, seq);
    } else {
        put_eof(out, seq, warnings, status);
    }
    Ok(Output {
        kind: OutputKind::ResultSet,
        rows: sent,
        status,
        warnings,
    })
}
