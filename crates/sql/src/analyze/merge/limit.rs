//! LIMIT on several shards: the merger skips and counts; the shards send enough rows.
//!
//! Each shard runs `LIMIT offset + count` (no offset) when the first `offset + count`
//! rows of the merged answer are sure to be among each shard's first `offset + count`:
//! rows that are not grouped, or groups sorted by exactly their group keys (each group
//! then comes whole from every shard that has it). Otherwise a shard's cut could drop
//! part of a group the answer needs, so the shards run without LIMIT. So they do with
//! HAVING: the merger drops rows the shards sent, so the answer may need rows past each
//! shard's first `offset + count`. And with DISTINCT: the shards' DISTINCT also sees the
//! hidden weight columns, and MariaDB's `WEIGHT_STRING` keeps trailing spaces that a
//! PAD SPACE collation ignores, so `'a'` and `'a '` would be two of a shard's rows but
//! one row of the answer.

use sqlparser::ast::{Expr, LimitClause, OffsetRows, Query, Value};

use super::{Builder, items, layout, refused};
use crate::error::SqlError;
use crate::scatter::{GroupKey, SortKey};

impl Builder<'_> {
    /// The merger's offset and limit; edits the shard text's LIMIT clause.
    pub(super) fn limit(
        &mut self,
        query: &Query,
        distinct: bool,
        order_by: &[SortKey],
        group_by: &[GroupKey],
    ) -> Result<(u64, Option<u64>), SqlError> {
        let (offset, count) = match &query.limit_clause {
            None => return Ok((0, None)),
            Some(LimitClause::LimitOffset {
                limit: Some(count),
                offset,
                limit_by,
            }) if limit_by.is_empty() => {
                let offset = match offset {
                    None => 0,
                    Some(offset) if offset.rows == OffsetRows::None => number(&offset.value)?,
                    Some(_) => return Err(refused("OFFSET ... ROWS")),
                };
                (offset, number(count)?)
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                (number(offset)?, number(limit)?)
            }
            Some(LimitClause::LimitOffset { .. }) => return Err(refused("this LIMIT form")),
        };
        let grouped = !group_by.is_empty() && !distinct;
        let aggregated = self.items.iter().any(|item| item.call.is_some());
        let ordered_by = |column: usize| order_by.iter().any(|key| key.column == column);
        let push = if distinct || self.select.having.is_some() {
            false
        } else if grouped {
            let keyed = |column: usize| group_by.iter().any(|key| key.column == column);
            !order_by.is_empty()
                && order_by.iter().all(|key| keyed(key.column))
                && group_by.iter().all(|key| ordered_by(key.column))
        } else {
            // Without groups, aggregates give each shard one row: no LIMIT needed.
            !aggregated
        };
        let replacement = match (push, offset) {
            (true, 0) => return Ok((offset, Some(count))),
            // MySQL's idiom for "all rows after the offset" is a count of 2^64 - 1, so a
            // sum past it means all rows too.
            (true, _) => format!("LIMIT {}", offset.saturating_add(count)),
            (false, _) => String::new(),
        };
        let located = self.located()?;
        let mut range = layout::span(&located.tokens, &located.layout.limit)
            .ok_or_else(|| items::unlocated("LIMIT clause"))?;
        if replacement.is_empty() {
            // Take the blank before the clause with it, so no stray space is left.
            let before = located
                .layout
                .limit
                .first()
                .and_then(|&at| located.tokens.previous_solid(at));
            if let Some(before) = before {
                range.start = located.tokens.range(before).end;
            }
        }
        self.edits.push((range, replacement));
        Ok((offset, Some(count)))
    }
}

/// A LIMIT or OFFSET value: a literal integer.
fn number(expr: &Expr) -> Result<u64, SqlError> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(digits, false) => digits
                .parse()
                .map_err(|_| refused(&format!("LIMIT value {digits}"))),
            Value::Placeholder(_) => Err(SqlError::unsupported(
                "LIMIT with a ? placeholder in a query on several shards: the shards' LIMIT is computed from the values; write the numbers",
            )),
            _ => Err(refused(&format!("LIMIT value {expr}"))),
        },
        _ => Err(refused(&format!("LIMIT value {expr}"))),
    }
}
