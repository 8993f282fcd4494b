//! Byte offsets in the statement text ↔ sqlparser's line/column locations.
//!
//! The lexer records literal slots as byte ranges (cheap, the hot path); sqlparser
//! records where each AST value came from as 1-based line and column, counting
//! characters and starting a new line after each `\n` only (a `\r` is one column).
//! This module converts between the two, and is used only when a plan is made.

use sqlparser::tokenizer::Location;

use crate::scratch::Slot;

/// The location sqlparser gives to the character at byte `offset` of `sql`
/// (or to the end of the text when `offset` is past it).
pub(crate) fn location_of(sql: &str, offset: usize) -> Location {
    let mut location = Location { line: 1, column: 1 };
    for (index, ch) in sql.char_indices() {
        if index >= offset {
            break;
        }
        advance(&mut location, ch);
    }
    location
}

/// The byte offset of `location` in `sql`, if the text has it.
pub(crate) fn offset_of(sql: &str, location: Location) -> Option<usize> {
    let mut here = Location { line: 1, column: 1 };
    for (index, ch) in sql.char_indices() {
        if here == location {
            return Some(index);
        }
        advance(&mut here, ch);
    }
    (here == location).then_some(sql.len())
}

/// Start and end locations of every slot, in slot order, found in one pass.
pub(crate) fn slot_locations(sql: &str, slots: &[Slot]) -> Vec<(Location, Location)> {
    let mut wanted = slots
        .iter()
        .flat_map(|slot| [slot.span().start, slot.span().end])
        .peekable();
    let mut found = Vec::with_capacity(slots.len() * 2);
    let mut here = Location { line: 1, column: 1 };
    for (index, ch) in sql.char_indices().chain(std::iter::once((sql.len(), '\0'))) {
        while wanted.next_if(|&offset| offset <= index).is_some() {
            found.push(here);
        }
        advance(&mut here, ch);
    }
    found
        .chunks_exact(2)
        .filter_map(|pair| match pair {
            [start, end] => Some((*start, *end)),
            _ => None,
        })
        .collect()
}

/// The byte offsets of `locations`, which must not decrease, found in one pass; a
/// location the text does not have gives `None`.
pub(crate) fn offsets_of(sql: &str, locations: &[Location]) -> Vec<Option<usize>> {
    let mut found = Vec::with_capacity(locations.len());
    let mut wanted = locations.iter().peekable();
    let mut here = Location { line: 1, column: 1 };
    for (index, ch) in sql.char_indices().chain(std::iter::once((sql.len(), '\0'))) {
        while wanted.next_if(|&&location| location == here).is_some() {
            found.push(Some(index));
        }
        // A location between characters of this one, or behind us, is not in the text.
        while wanted.next_if(|&&location| location < here).is_some() {
            found.push(None);
        }
        advance(&mut here, ch);
    }
    found.resize(locations.len(), None);
    found
}

/// Moves past one character the way sqlparser's tokenizer does.
fn advance(location: &mut Location, ch: char) {
    if ch == '\n' {
        location.line += 1;
        location.column = 1;
    } else {
        location.column += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::LiteralKind;

    fn at(line: u64, column: u64) -> Location {
        Location { line, column }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let sql = "SELECT 'é', 5";
        let five = sql.find('5').unwrap_or_default();
        assert_eq!(location_of(sql, five), at(1, 13));
        assert_eq!(offset_of(sql, at(1, 13)), Some(five));
    }

    #[test]
    fn newline_starts_a_line_and_carriage_return_is_a_column() {
        let sql = "SELECT\r\n  5";
        assert_eq!(location_of(sql, sql.len() - 1), at(2, 3));
    }

    #[test]
    fn slot_locations_match_start_and_end() {
        let sql = "SELECT 12,\n 'ab'";
        let slots = [
            Slot::Literal {
                kind: LiteralKind::Int,
                span: 7..9,
            },
            Slot::Literal {
                kind: LiteralKind::Str,
                span: 12..16,
            },
        ];
        assert_eq!(
            slot_locations(sql, &slots),
            vec![(at(1, 8), at(1, 10)), (at(2, 2), at(2, 6))]
        );
    }

    #[test]
    fn offsets_of_sorted_locations_are_found_in_one_pass() {
        let sql = "SELECT 'é',\n 5";
        assert_eq!(
            offsets_of(
                sql,
                &[at(1, 1), at(1, 8), at(1, 11), at(2, 2), at(2, 3), at(9, 1)]
            ),
            vec![Some(0), Some(7), Some(11), Some(14), Some(15), None]
        );
    }

    #[test]
    fn offset_of_missing_location_is_none() {
        assert_eq!(offset_of("SELECT 1", at(3, 1)), None);
    }
}
