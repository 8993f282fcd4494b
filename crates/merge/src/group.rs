//! GROUP BY and aggregates across shards: rows with equal group keys (each shard sent at most one per group)
//! become one row whose aggregate cells combine the shards' partial results.

use crate::MergeError;
use crate::column::{Column, Kind};
use crate::decimal::Decimal;
use crate::order::{self, Decoder};
use crate::row::Row;
use crate::spec::{Aggregate, AggregateKind, MergeSpec};
use crate::value::{self, Key, Number};

/// Groups `rows` and computes the aggregates. `input` decodes shard cells; `output` holds the columns as the
/// client sees them (AVG columns rewritten), by which computed cells are encoded.
///
/// With group keys and no ORDER BY the groups come out sorted by them ascending, as MariaDB's GROUP BY returns
/// them; a DISTINCT planned as GROUP BY keeps the order in which rows first appeared instead.
/// Other cells of a group's row are those of its first row, as MariaDB shows for non-aggregated columns.
pub(crate) fn group(
    rows: Vec<Row>,
    spec: &MergeSpec,
    input: Decoder<'_>,
    output: &[Column],
) -> Result<Vec<Row>, MergeError> {
    if spec.group_by.is_empty() && spec.aggregates.is_empty() {
        return Ok(rows);
    }
    // SELECT DISTINCT may come as a GROUP BY over every visible column; MariaDB then keeps first-seen order.
    let implicit_sort = spec.order_by.is_empty() && !spec.distinct;
    let (rows, bounds, first_seen) = if spec.group_by.is_empty() {
        let bounds = if rows.is_empty() { vec![] } else { vec![0] };
        (rows, bounds, vec![0])
    } else {
        // Where the group order does not show, ENUM keys need no weight for it.
        let allow_ordinal = !implicit_sort;
        let ascending = vec![false; spec.group_by.len()];
        let (order, bounds) = {
            let mut keys = Vec::with_capacity(rows.len());
            for row in &rows {
                let k = spec
                    .group_by
                    .iter()
                    .map(|g| input.key(row, g.column, g.weight_column, allow_ordinal))
                    .collect::<Result<Vec<_>, _>>()?;
                keys.push(k);
            }
            let order = order::sorted_positions(&keys, &ascending);
            let bounds: Vec<usize> = (0..order.len())
                .filter(|&i| {
                    i == 0
                        || order::compare(&keys[order[i - 1]], &keys[order[i]], &ascending)
                            != std::cmp::Ordering::Equal
                })
                .collect();
            (order, bounds)
        };
        // The sort is stable, so a group's first member is its earliest row.
        let first_seen = bounds.iter().map(|&b| order[b]).collect();
        (order::permute(rows, &order), bounds, first_seen)
    };
    let mut out = Vec::with_capacity(bounds.len());
    for (i, &start) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).copied().unwrap_or(rows.len());
        let members = &rows[start..end];
        let mut row = members[0].clone();
        for agg in &spec.aggregates {
            combine(&mut row, members, agg, input, output)?;
        }
        out.push((first_seen[i], row));
    }
    if !implicit_sort {
        out.sort_by_key(|(seen, _)| *seen);
    }
    Ok(out.into_iter().map(|(_, row)| row).collect())
}

/// Writes one aggregate's result over the group's members into `row`.
fn combine(
    row: &mut Row,
    members: &[Row],
    agg: &Aggregate,
    input: Decoder<'_>,
    output: &[Column],
) -> Result<(), MergeError> {
    let column = agg.column;
    let out_col = output.get(column).ok_or(MergeError::ColumnOutOfRange {
        column,
        columns: output.len(),
    })?;
    let encode = |n: &Number| {
        value::encode(out_col, input.protocol, n)
            .map_err(|problem| MergeError::BadValue { column, problem })
    };
    match agg.kind {
        AggregateKind::Count => {
            let total = sum(members, column, input)?.unwrap_or(Number::Int(0));
            row.set(column, Some(encode(&total)?));
        }
        AggregateKind::Sum => {
            let total = sum(members, column, input)?;
            row.set(column, total.as_ref().map(encode).transpose()?);
        }
        AggregateKind::Min | AggregateKind::Max => {
            extreme(row, members, agg, input)?;
        }
        AggregateKind::Avg { count_column } => {
            let total = sum(members, column, input)?;
            let count = match sum(members, count_column, input)? {
                None => 0,
                Some(Number::Int(c)) => c,
                Some(_) => {
                    return Err(MergeError::BadValue {
                        column: count_column,
                        problem: "AVG count column is not an integer",
                    });
                }
            };
            let avg = match (total, u64::try_from(count)) {
                (Some(_), Ok(0)) | (None, _) => None,
                (Some(Number::Float(s)), Ok(c)) => Some(Number::Float(s / c as f64)),
                (Some(Number::Int(s)), Ok(c)) => Decimal::from_int(s)
                    .div_round(c, usize::from(out_col.decimals))
                    .map(Number::Decimal),
                (Some(Number::Decimal(s)), Ok(c)) => s
                    .div_round(c, usize::from(out_col.decimals))
                    .map(Number::Decimal),
                (Some(_), Err(_)) => {
                    return Err(MergeError::BadValue {
                        column: count_column,
                        problem: "AVG count is negative",
                    });
                }
            };
            row.set(column, avg.as_ref().map(encode).transpose()?);
        }
    }
    Ok(())
}

/// The sum of a numeric column over `members`, `None` when every cell is NULL.
fn sum(members: &[Row], column: usize, input: Decoder<'_>) -> Result<Option<Number>, MergeError> {
    let col = input
        .columns
        .get(column)
        .ok_or(MergeError::ColumnOutOfRange {
            column,
            columns: input.columns.len(),
        })?;
    if !matches!(
        col.kind(),
        Kind::Int { .. } | Kind::Decimal | Kind::Float | Kind::Double
    ) {
        return Err(MergeError::UnsupportedAggregate {
            column,
            type_code: col.type_code,
        });
    }
    let mut total: Option<Number> = None;
    for m in members {
        let Some(cell) = m.cell(column) else { continue };
        let n = value::number(col, input.protocol, cell)
            .map_err(|problem| MergeError::BadValue { column, problem })?;
        total = Some(match total {
            None => n,
            Some(t) => t.add(&n).ok_or(MergeError::BadValue {
                column,
                problem: "sum overflows",
            })?,
        });
    }
    Ok(total)
}

/// MIN or MAX: copies the winning member's cell (and its weight) into `row`. Ties keep the earlier member.
fn extreme(
    row: &mut Row,
    members: &[Row],
    agg: &Aggregate,
    input: Decoder<'_>,
) -> Result<(), MergeError> {
    let want = if agg.kind == AggregateKind::Min {
        std::cmp::Ordering::Less
    } else {
        std::cmp::Ordering::Greater
    };
    let mut best: Option<(usize, Key<'_>)> = None;
    for (i, m) in members.iter().enumerate() {
        // MariaDB compares ENUM and SET by their text for MIN/MAX, so no weight is needed for them here.
        let k = input.key(m, agg.column, agg.weight_column, true)?;
        if matches!(k, Key::Null) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| k.compare(b) == want) {
            best = Some((i, k));
        }
    }
    match best {
        // The group's row already is the first member.
        Some((0, _)) => {}
        Some((i, _)) => {
            let winner = &members[i];
            row.set(agg.column, winner.cell(agg.column).map(<[u8]>::to_vec));
            if let Some(w) = agg.weight_column {
                row.set(w, winner.cell(w).map(<[u8]>::to_vec));
            }
        }
        None => row.set(agg.column, None),
    }
    Ok(())
}
