//! sqlparser's tokens of a statement, each with its byte range in the text.
//!
//! Used only off the hot path, when a statement must be rewritten for its shards
//! (scatter SELECTs): the rewrite copies pieces of the original text, so that strings,
//! escapes, comments and placeholders reach the shards exactly as the client wrote
//! them. sqlparser's `Display` is not used for that: it re-quotes strings without their
//! backslash escapes (`'a\\b'` would come back as `'a\b'`, a backspace to MySQL).
//! sqlparser's spans on expressions are not used either: in 0.63 many stop short
//! (`CAST(k AS CHAR)` spans `k`), so pieces are cut from tokens here and every piece
//! is checked by parsing it again ([`same_expr`]).

use std::ops::Range;

use sqlparser::ast::{Expr, SelectItem};
use sqlparser::dialect::MySqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::error::SqlError;
use crate::position;

/// The tokens of one statement, comments and whitespace included.
#[derive(Debug)]
pub(crate) struct Tokens {
    /// Each token and its bytes in the text.
    list: Vec<(Token, Range<usize>)>,
}

impl Tokens {
    /// Tokenizes `sql` as the parser did.
    pub(crate) fn new(sql: &str) -> Result<Self, SqlError> {
        let tokens = Tokenizer::new(&MySqlDialect {}, sql)
            .tokenize_with_location()
            .map_err(|error| SqlError::unsupported(format!("cannot tokenize: {error}")))?;
        let locations: Vec<Location> = tokens
            .iter()
            .flat_map(|token| [token.span.start, token.span.end])
            .collect();
        let offsets = position::offsets_of(sql, &locations);
        let mut list = Vec::with_capacity(tokens.len());
        for (token, range) in tokens.into_iter().zip(offsets.chunks_exact(2)) {
            let [Some(start), Some(end)] = range else {
                return Err(SqlError::unsupported(
                    "internal error: a token is not where the tokenizer put it",
                ));
            };
            list.push((token.token, *start..*end));
        }
        Ok(Self { list })
    }

    /// How many tokens there are.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Token `index`.
    pub(crate) fn token(&self, index: usize) -> Option<&Token> {
        self.list.get(index).map(|(token, _)| token)
    }

    /// The bytes of token `index` (empty past the end).
    pub(crate) fn range(&self, index: usize) -> Range<usize> {
        self.list
            .get(index)
            .map_or(usize::MAX..usize::MAX, |(_, range)| range.clone())
    }

    /// The token starting at byte `offset`.
    pub(crate) fn starting_at(&self, offset: usize) -> Option<usize> {
        self.list
            .binary_search_by_key(&offset, |(_, range)| range.start)
            .ok()
    }

    /// Whether token `index` is the unquoted keyword `keyword`.
    pub(crate) fn is_keyword(&self, index: usize, keyword: Keyword) -> bool {
        matches!(self.token(index), Some(Token::Word(word)) if word.quote_style.is_none() && word.keyword == keyword)
    }

    /// Whether token `index` is whitespace or a comment.
    pub(crate) fn is_blank(&self, index: usize) -> bool {
        matches!(self.token(index), Some(Token::Whitespace(_)))
    }

    /// The first token after `index` that is not blank.
    pub(crate) fn next_solid(&self, index: usize) -> Option<usize> {
        (index + 1..self.len()).find(|&at| !self.is_blank(at))
    }

    /// The last token before `index` that is not blank.
    pub(crate) fn previous_solid(&self, index: usize) -> Option<usize> {
        (0..index).rev().find(|&at| !self.is_blank(at))
    }

    /// The bytes from the start of token `first` to the end of token `last`.
    pub(crate) fn span(&self, first: usize, last: usize) -> Range<usize> {
        self.range(first).start..self.range(last).end
    }
}

/// Whether `text`, parsed alone, is exactly `expected`.
pub(crate) fn same_expr(text: &str, expected: &Expr) -> bool {
    parse_whole(text, |parser| parser.parse_expr()).is_some_and(|expr| expr == *expected)
}

/// Whether `text`, parsed alone, is exactly the select item `expected`.
pub(crate) fn same_item(text: &str, expected: &SelectItem) -> bool {
    parse_whole(text, |parser| parser.parse_select_item()).is_some_and(|item| item == *expected)
}

/// `text` parsed by `parse`, if that reads all of it.
fn parse_whole<T>(
    text: &str,
    parse: impl FnOnce(&mut Parser<'_>) -> Result<T, sqlparser::parser::ParserError>,
) -> Option<T> {
    let dialect = MySqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text).ok()?;
    let parsed = parse(&mut parser).ok()?;
    (parser.peek_token_ref().token == Token::EOF).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_byte_ranges() {
        let sql = "SELECT 'é' /* c */, x";
        let tokens = Tokens::new(sql).unwrap();
        let texts: Vec<&str> = (0..tokens.len())
            .filter(|&at| !tokens.is_blank(at))
            .map(|at| &sql[tokens.range(at)])
            .collect();
        assert_eq!(texts, ["SELECT", "'é'", ",", "x"]);
        assert!(tokens.is_keyword(0, Keyword::SELECT));
        assert_eq!(tokens.starting_at(7), Some(2));
    }

    #[test]
    fn a_piece_must_parse_to_the_same_expression() {
        let expr = Parser::new(&MySqlDialect {})
            .try_with_sql("CAST(k AS CHAR)")
            .unwrap()
            .parse_expr()
            .unwrap();
        assert!(same_expr("CAST(k AS CHAR)", &expr));
        assert!(same_expr("CAST( k  AS CHAR ) ", &expr));
        assert!(!same_expr("k", &expr));
        assert!(!same_expr("CAST(k AS CHAR) x", &expr));
    }
}
