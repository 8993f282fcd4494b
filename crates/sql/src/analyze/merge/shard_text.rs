//! The text every shard runs: the statement with its edits applied and the hidden
//! columns appended to the select list.
//!
//! Only the select list and the LIMIT clause are ever edited, at places found by
//! [`Located`](super::items::Located); the rest is the client's text byte for byte.
//! The rewritten select list is parsed back before it is used.

use std::ops::Range;

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::Builder;
use super::items::{self, Item};
use crate::error::SqlError;
use crate::scatter::AggregateKind;

impl Builder<'_> {
    /// The statement each shard runs: edits applied, hidden columns appended.
    pub(super) fn shard_sql(&mut self) -> Result<String, SqlError> {
        let Some(located) = &self.located else {
            // Nothing was located, so nothing was edited.
            return Ok(self.sql.to_owned());
        };
        let list = located.select_at
            ..located
                .items
                .last()
                .map(|range| range.end)
                .ok_or_else(|| items::unlocated("select item"))?;
        if !self.hidden.is_empty() {
            let columns: Vec<String> = self
                .hidden
                .iter()
                .enumerate()
                .map(|(at, text)| format!(", {text} AS `__sg_h{at}`"))
                .collect();
            self.edits.push((list.end..list.end, columns.concat()));
        }
        self.edits
            .sort_by_key(|(range, _)| (range.start, range.end));
        let shard_sql = self.edited(0..self.sql.len())?;
        let list_edited = self
            .edits
            .iter()
            .any(|(range, _)| list.contains(&range.start) || range.start == list.end);
        if list_edited {
            self.check_list(&self.edited(list)?)?;
        }
        Ok(shard_sql)
    }

    /// The bytes `window` of the statement with the edits inside it applied.
    fn edited(&self, window: Range<usize>) -> Result<String, SqlError> {
        let mut out = String::with_capacity(window.len() + 64);
        let mut copied = window.start;
        for (range, text) in &self.edits {
            if range.start < window.start || range.end > window.end {
                continue;
            }
            out.push_str(
                self.sql
                    .get(copied..range.start)
                    .ok_or_else(|| items::unlocated("piece"))?,
            );
            out.push_str(text);
            copied = range.end;
        }
        out.push_str(
            self.sql
                .get(copied..window.end)
                .ok_or_else(|| items::unlocated("piece"))?,
        );
        Ok(out)
    }

    /// Parses the rewritten select list (`SELECT ...` up to the last hidden column)
    /// back: the visible items not rewritten must be unchanged, and every hidden
    /// column there. Only the list is parsed, so a deep WHERE clause costs nothing.
    fn check_list(&self, list: &str) -> Result<(), SqlError> {
        let statements = Parser::parse_sql(&MySqlDialect {}, list).unwrap_or_default();
        let projection = match statements.as_slice() {
            [Statement::Query(query)] => match query.body.as_ref() {
                SetExpr::Select(select) => Some(&select.projection),
                _ => None,
            },
            _ => None,
        };
        let exact = projection.is_some_and(|projection| {
            let avg = |item: &Item<'_>| {
                matches!(
                    item.call.map(|call| call.kind),
                    Some(AggregateKind::Avg { .. })
                )
            };
            projection.len() == self.items.len() + self.hidden.len()
                && self
                    .items
                    .iter()
                    .zip(projection)
                    .zip(&self.select.projection)
                    .all(|((item, new), old)| avg(item) || new == old)
        });
        if exact {
            Ok(())
        } else {
            Err(items::unlocated("piece"))
        }
    }
}
