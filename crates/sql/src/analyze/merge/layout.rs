//! Where the pieces of a main SELECT are in the statement text.
//!
//! The walk starts at the main SELECT's own `SELECT` keyword and reads tokens at its
//! parenthesis depth: commas there separate select items and ORDER BY or GROUP BY
//! entries, and reserved words there start clauses. Everything inside parentheses
//! (function arguments, subqueries, derived tables) is part of the piece around it.
//! The walk only finds candidates: every piece used later is checked by parsing it
//! again and comparing it with the AST.

use std::ops::Range;

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

use crate::error::SqlError;
use crate::tokens::Tokens;

/// Words that may precede the first select item (sqlparser's MySQL select modifiers).
const MODIFIERS: [Keyword; 10] = [
    Keyword::ALL,
    Keyword::DISTINCT,
    Keyword::DISTINCTROW,
    Keyword::HIGH_PRIORITY,
    Keyword::STRAIGHT_JOIN,
    Keyword::SQL_SMALL_RESULT,
    Keyword::SQL_BIG_RESULT,
    Keyword::SQL_BUFFER_RESULT,
    Keyword::SQL_NO_CACHE,
    Keyword::SQL_CALC_FOUND_ROWS,
];

/// The pieces of one main SELECT, as token indexes (blank tokens left out).
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The tokens of each select item, alias included.
    pub(super) items: Vec<Vec<usize>>,
    /// The tokens of each GROUP BY entry.
    pub(super) group_by: Vec<Vec<usize>>,
    /// The tokens of each ORDER BY entry, `ASC`/`DESC` included.
    pub(super) order_by: Vec<Vec<usize>>,
    /// The tokens of the LIMIT clause, from the `LIMIT` keyword on.
    pub(super) limit: Vec<usize>,
    /// The tokens of the HAVING clause, from the `HAVING` keyword on.
    pub(super) having: Vec<usize>,
}

/// The clause a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    /// The select list (modifiers first).
    Items,
    /// GROUP BY entries.
    GroupBy,
    /// ORDER BY entries.
    OrderBy,
    /// The LIMIT clause.
    Limit,
    /// The HAVING clause.
    Having,
    /// Any other clause (FROM, WHERE, locking, ...).
    Other,
}

impl Layout {
    /// The layout of the SELECT whose keyword starts at byte `select_at`.
    pub(super) fn of(tokens: &Tokens, select_at: usize) -> Result<Self, SqlError> {
        let start = tokens
            .starting_at(select_at)
            .filter(|&at| tokens.is_keyword(at, Keyword::SELECT))
            .ok_or_else(|| SqlError::unsupported("internal error: SELECT keyword not found"))?;
        let mut layout = Self::default();
        let mut clause = Clause::Items;
        let mut piece: Vec<usize> = Vec::new();
        let mut depth = 0usize;
        let mut at = start;
        while let Some(next) = tokens.next_solid(at) {
            at = next;
            let token = tokens.token(at);
            if depth == 0 {
                // `LIMIT n OFFSET m` is one clause.
                let offset = clause == Clause::Limit && tokens.is_keyword(at, Keyword::OFFSET);
                let starts = Self::clause_at(tokens, at).filter(|_| !offset);
                if starts.is_some() || matches!(token, Some(Token::SemiColon | Token::RParen)) {
                    layout.close(clause, &mut piece);
                    match starts {
                        Some((started, by)) => {
                            clause = started;
                            // `GROUP BY` and `ORDER BY` are two words; skip the second.
                            at = by;
                            // These two are cut out or replaced whole, keyword included.
                            if matches!(started, Clause::Limit | Clause::Having) {
                                piece.push(at);
                            }
                            continue;
                        }
                        None => break,
                    }
                }
                // `LIMIT 5, 10` is one clause; a comma in a HAVING is a syntax error.
                let whole = matches!(clause, Clause::Limit | Clause::Having);
                if matches!(token, Some(Token::Comma)) && !whole {
                    layout.close(clause, &mut piece);
                    continue;
                }
                let modifier = clause == Clause::Items
                    && layout.items.is_empty()
                    && piece.is_empty()
                    && MODIFIERS.iter().any(|&word| tokens.is_keyword(at, word));
                if modifier {
                    continue;
                }
            }
            match token {
                Some(Token::LParen) => depth += 1,
                Some(Token::RParen) => depth = depth.saturating_sub(1),
                _ => {}
            }
            piece.push(at);
        }
        layout.close(clause, &mut piece);
        Ok(layout)
    }

    /// The clause starting at token `at` (at depth 0), and its last keyword token.
    fn clause_at(tokens: &Tokens, at: usize) -> Option<(Clause, usize)> {
        let followed_by_by = || {
            tokens
                .next_solid(at)
                .filter(|&by| tokens.is_keyword(by, Keyword::BY))
        };
        let ends = [
            Keyword::FROM,
            Keyword::WHERE,
            Keyword::WINDOW,
            Keyword::QUALIFY,
            Keyword::WITH,
            Keyword::FOR,
            Keyword::LOCK,
            Keyword::INTO,
            Keyword::UNION,
            Keyword::EXCEPT,
            Keyword::INTERSECT,
            Keyword::OFFSET,
            Keyword::FETCH,
        ];
        if tokens.is_keyword(at, Keyword::GROUP) {
            followed_by_by().map(|by| (Clause::GroupBy, by))
        } else if tokens.is_keyword(at, Keyword::ORDER) {
            followed_by_by().map(|by| (Clause::OrderBy, by))
        } else if tokens.is_keyword(at, Keyword::LIMIT) {
            Some((Clause::Limit, at))
        } else if tokens.is_keyword(at, Keyword::HAVING) {
            Some((Clause::Having, at))
        } else if ends.iter().any(|&word| tokens.is_keyword(at, word)) {
            Some((Clause::Other, at))
        } else {
            None
        }
    }

    /// Files the finished piece under its clause.
    fn close(&mut self, clause: Clause, piece: &mut Vec<usize>) {
        let piece = std::mem::take(piece);
        if piece.is_empty() {
            return;
        }
        match clause {
            Clause::Items => self.items.push(piece),
            Clause::GroupBy => self.group_by.push(piece),
            Clause::OrderBy => self.order_by.push(piece),
            Clause::Limit => self.limit = piece,
            Clause::Having => self.having = piece,
            Clause::Other => {}
        }
    }
}

/// The bytes a piece covers, from its first token to its last.
pub(super) fn span(tokens: &Tokens, piece: &[usize]) -> Option<Range<usize>> {
    Some(tokens.span(*piece.first()?, *piece.last()?))
}
