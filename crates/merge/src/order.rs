//! Comparing rows the way MariaDB does, and the two operations built on it here: a stable ORDER BY and DISTINCT.
//!
//! Every key is decoded once per row before sorting, so a sort costs one decode per cell, not one per comparison.

use std::cmp::Ordering;

use crate::collation::{pad_weight, trim_weight};
use crate::column::{Column, Kind};
use crate::row::Row;
use crate::spec::{MergeSpec, SortKey};
use crate::value::{self, Key};
use crate::{MergeError, Protocol};

/// The binary character set: strings in it have no collation.
const CHARSET_BINARY: u16 = 63;

/// How the cells of one result set are decoded: its column definitions and row protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decoder<'a> {
    pub columns: &'a [Column],
    pub protocol: Protocol,
}

impl Decoder<'_> {
    fn column(&self, column: usize) -> Result<&Column, MergeError> {
        self.columns
            .get(column)
            .ok_or(MergeError::ColumnOutOfRange {
                column,
                columns: self.columns.len(),
            })
    }

    /// The key of a cell by its own column type.
    fn plain_key<'r>(&self, row: &'r Row, column: usize) -> Result<Key<'r>, MergeError> {
        let col = self.column(column)?;
        match row.cell(column) {
            None => Ok(Key::Null),
            Some(cell) => value::key(col, self.protocol, cell)
                .map_err(|problem| MergeError::BadValue { column, problem }),
        }
    }

    /// The key MariaDB compares `column` by: for a string with a weight column, the weight (decoded by the weight
    /// column's own type, so that an ENUM's `col+0` compares as a number); otherwise the value itself.
    /// `allow_ordinal` is false where an ENUM/SET without a weight would be ordered wrongly.
    pub(crate) fn key<'r>(
        &self,
        row: &'r Row,
        column: usize,
        weight: Option<usize>,
        allow_ordinal: bool,
    ) -> Result<Key<'r>, MergeError> {
        let col = self.column(column)?;
        if let Kind::Bytes { ordinal } = col.kind() {
            if let Some(w) = weight {
                let weight = self.plain_key(row, w)?;
                return Ok(match (weight, self.plain_key(row, column)?) {
                    // Binary strings have no collation: their weight is their bytes, trailing spaces included.
                    (Key::Bytes { bytes, .. }, Key::Bytes { bytes: value, .. })
                        if col.charset != CHARSET_BINARY =>
                    {
                        let (bytes, pad) = trim_weight(value, bytes);
                        Key::Bytes {
                            bytes,
                            pad: pad.or_else(|| pad_weight(col.charset)),
                        }
                    }
                    (weight, _) => weight,
                });
            }
            if ordinal && !allow_ordinal {
                return Err(MergeError::OrdinalWithoutWeight { column });
            }
        }
        self.plain_key(row, column)
    }
}

/// Compares two rows' keys, reversing the keys marked descending. NULL first ascending means NULL last
/// descending, as in MariaDB.
pub(crate) fn compare(a: &[Key<'_>], b: &[Key<'_>], descending: &[bool]) -> Ordering {
    for ((x, y), &desc) in a.iter().zip(b).zip(descending) {
        let o = x.compare(y);
        if o != Ordering::Equal {
            return if desc { o.reverse() } else { o };
        }
    }
    Ordering::Equal
}

/// Positions of `keys` in stable sorted order: equal rows keep their input order.
pub(crate) fn sorted_positions(keys: &[Vec<Key<'_>>], descending: &[bool]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| compare(&keys[a], &keys[b], descending));
    order
}

/// `rows` rearranged so that position i holds the row that was at `order[i]`.
pub(crate) fn permute(rows: Vec<Row>, order: &[usize]) -> Vec<Row> {
    let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// ORDER BY: a stable sort of `rows` by `keys`.
pub(crate) fn sort(
    rows: Vec<Row>,
    dec: Decoder<'_>,
    keys: &[SortKey],
) -> Result<Vec<Row>, MergeError> {
    let descending: Vec<bool> = keys.iter().map(|k| k.descending).collect();
    let order = {
        let mut all = Vec::with_capacity(rows.len());
        for row in &rows {
            let k = keys
                .iter()
                .map(|k| dec.key(row, k.column, k.weight_column, false))
                .collect::<Result<Vec<_>, _>>()?;
            all.push(k);
        }
        sorted_positions(&all, &descending)
    };
    Ok(permute(rows, &order))
}

/// DISTINCT: keeps the first of each set of rows whose first `visible` cells are all equal, in the rows'
/// current order.
pub(crate) fn distinct(
    rows: Vec<Row>,
    dec: Decoder<'_>,
    spec: &MergeSpec,
    visible: usize,
) -> Result<Vec<Row>, MergeError> {
    let keep = {
        let mut all = Vec::with_capacity(rows.len());
        for row in &rows {
            let k = (0..visible)
                .map(|c| dec.key(row, c, spec.distinct_weight(c), true))
                .collect::<Result<Vec<_>, _>>()?;
            all.push(k);
        }
        let ascending = vec![false; visible];
        let order = sorted_positions(&all, &ascending);
        let mut keep = vec![false; rows.len()];
        // The sort is stable, so the first of each run of equal rows is the earliest of them.
        for (i, &pos) in order.iter().enumerate() {
            let first_of_run =
                i == 0 || compare(&all[order[i - 1]], &all[pos], &ascending) != Ordering::Equal;
            keep[pos] = first_of_run;
        }
        keep
    };
    Ok(rows
        .into_iter()
        .zip(keep)
        .filter_map(|(row, k)| k.then_some(row))
        .collect())
}
