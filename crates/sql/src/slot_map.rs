//! Tying AST values to the lexer's slots, by source position.
//!
//! sqlparser gives every value the line/column span it was read from; the lexer gives
//! every slot a byte range. A value whose span is exactly a slot's is that slot. A plan
//! is cached only when *every* slot is an AST value: then statements with the same
//! fingerprint differ only in values, and the plan holds for all of them. A slot the
//! parser read as something else (an alias, part of a concatenation, an identifier)
//! means the lexer and the parser disagree about the text, and nothing is cached.

use std::ops::ControlFlow;

use sqlparser::ast::{Statement, ValueWithSpan, Visit, Visitor};
use sqlparser::tokenizer::{Location, Span};

use crate::position;
use crate::scratch::Slot;

/// Slot locations of one statement, in source order.
#[derive(Debug)]
pub(crate) struct SlotMap {
    /// Start and end of each slot, as sqlparser counts them.
    spans: Vec<(Location, Location)>,
}

impl SlotMap {
    /// Locates every slot of `sql`.
    pub(crate) fn new(sql: &str, slots: &[Slot]) -> Self {
        Self {
            spans: position::slot_locations(sql, slots),
        }
    }

    /// The slot whose text is exactly `span`.
    pub(crate) fn index_of(&self, span: Span) -> Option<usize> {
        let index = self
            .spans
            .binary_search_by_key(&span.start, |(start, _)| *start)
            .ok()?;
        let (_, end) = self.spans.get(index)?;
        (*end == span.end).then_some(index)
    }

    /// Whether every slot is a value of `statement`'s AST.
    pub(crate) fn covers(&self, statement: &Statement) -> bool {
        let mut marker = Marker {
            map: self,
            seen: vec![false; self.spans.len()],
        };
        let _ = statement.visit(&mut marker);
        marker.seen.iter().all(|&seen| seen)
    }
}

/// Marks the slots the AST's values occupy.
struct Marker<'m> {
    /// The slots.
    map: &'m SlotMap,
    /// Which slots a value was found at.
    seen: Vec<bool>,
}

impl Visitor for Marker<'_> {
    type Break = ();

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
        if let Some(seen) = self
            .map
            .index_of(value.span)
            .and_then(|index| self.seen.get_mut(index))
        {
            *seen = true;
        }
        ControlFlow::Continue(())
    }
}
