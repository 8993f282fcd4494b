//! The select items of a scatter SELECT and, when a rewrite needs it, their text.

use std::ops::Range;

use sqlparser::ast::{Expr, Ident, SelectItem};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

use super::aggregate::{self, Call};
use super::layout::{self, Layout};
use crate::error::SqlError;
use crate::tokens::{self, Tokens};

/// One select item.
#[derive(Debug)]
pub(super) struct Item<'a> {
    /// The expression; `None` for `*` or `t.*`.
    pub(super) expr: Option<&'a Expr>,
    /// The alias, if written.
    pub(super) alias: Option<&'a Ident>,
    /// The aggregate the item is, if it is one.
    pub(super) call: Option<Call<'a>>,
}

/// The items of `projection`; refuses items the merger cannot handle.
pub(super) fn read(projection: &[SelectItem]) -> Result<Vec<Item<'_>>, SqlError> {
    let mut items = Vec::with_capacity(projection.len());
    for item in projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (Some(expr), None),
            SelectItem::ExprWithAlias { expr, alias } => (Some(expr), Some(alias)),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => (None, None),
            SelectItem::ExprWithAliases { .. } => {
                return Err(SqlError::unsupported("a select item with several aliases"));
            }
        };
        let call = expr.map(aggregate::classify).transpose()?.flatten();
        items.push(Item { expr, alias, call });
    }
    Ok(items)
}

/// The statement's tokens and where the main SELECT's pieces are in them.
#[derive(Debug)]
pub(super) struct Located {
    /// Where the SELECT keyword starts.
    pub(super) select_at: usize,
    /// Every token.
    pub(super) tokens: Tokens,
    /// The main SELECT's pieces.
    pub(super) layout: Layout,
    /// Each select item's text, alias included, checked to parse back to the item.
    pub(super) items: Vec<Range<usize>>,
}

impl Located {
    /// Locates the pieces of the SELECT whose keyword is at byte `select_at` of `sql`.
    pub(super) fn new(
        sql: &str,
        select_at: usize,
        projection: &[SelectItem],
    ) -> Result<Self, SqlError> {
        let tokens = Tokens::new(sql)?;
        let layout = Layout::of(&tokens, select_at)?;
        if layout.items.len() != projection.len() {
            return Err(unlocated("select item"));
        }
        let mut items = Vec::with_capacity(projection.len());
        for (item, piece) in projection.iter().zip(&layout.items) {
            let text = layout::span(&tokens, piece).ok_or_else(|| unlocated("select item"))?;
            if !sql
                .get(text.clone())
                .is_some_and(|text| tokens::same_item(text, item))
            {
                return Err(unlocated("select item"));
            }
            items.push(text);
        }
        Ok(Self {
            select_at,
            tokens,
            layout,
            items,
        })
    }

    /// The text of item `index`'s expression `expr`: the item without `[AS] alias`.
    pub(super) fn item_expr<'s>(
        &self,
        sql: &'s str,
        index: usize,
        expr: &Expr,
        aliased: bool,
    ) -> Result<&'s str, SqlError> {
        self.checked(sql, self.expr_piece(index, aliased), expr, "select item")
    }

    /// For item `index`, the call `F(argument)`: the call's bytes and the argument's
    /// text.
    pub(super) fn call_argument<'s>(
        &self,
        sql: &'s str,
        index: usize,
        call: &Expr,
        aliased: bool,
        argument: &Expr,
    ) -> Result<(Range<usize>, &'s str), SqlError> {
        let piece = self.expr_piece(index, aliased);
        self.checked(sql, piece, call, "select item")?;
        let piece = piece.unwrap_or_default();
        let open = piece
            .iter()
            .position(|&at| matches!(self.tokens.token(at), Some(Token::LParen)));
        let inside = open.and_then(|open| piece.get(open + 1..piece.len().saturating_sub(1)));
        let closed = piece
            .last()
            .is_some_and(|&at| matches!(self.tokens.token(at), Some(Token::RParen)));
        let text = self.checked(
            sql,
            inside.filter(|_| closed),
            argument,
            "aggregate argument",
        )?;
        let range = layout::span(&self.tokens, piece).ok_or_else(|| unlocated("select item"))?;
        Ok((range, text))
    }

    /// The tokens of item `index` without `[AS] alias`.
    fn expr_piece(&self, index: usize, aliased: bool) -> Option<&[usize]> {
        let piece = self.layout.items.get(index)?;
        let mut end = piece.len();
        if aliased {
            end = end.checked_sub(1)?;
            let as_keyword = end
                .checked_sub(1)
                .and_then(|at| piece.get(at))
                .is_some_and(|&at| self.tokens.is_keyword(at, Keyword::AS));
            if as_keyword {
                end -= 1;
            }
        }
        piece.get(..end)
    }

    /// The text of piece `piece` (a GROUP BY or ORDER BY entry), which must be `expr`;
    /// a trailing `ASC` or `DESC` is left out.
    pub(super) fn entry<'s>(
        &self,
        sql: &'s str,
        piece: Option<&Vec<usize>>,
        expr: &Expr,
        what: &str,
    ) -> Result<&'s str, SqlError> {
        let piece = piece.ok_or_else(|| unlocated(what))?;
        let direction = piece.last().is_some_and(|&at| {
            self.tokens.is_keyword(at, Keyword::ASC) || self.tokens.is_keyword(at, Keyword::DESC)
        });
        let end = piece.len() - usize::from(direction);
        self.checked(sql, piece.get(..end), expr, what)
    }

    /// The text of `piece`, if it parses back to `expr`.
    pub(super) fn checked<'s>(
        &self,
        sql: &'s str,
        piece: Option<&[usize]>,
        expr: &Expr,
        what: &str,
    ) -> Result<&'s str, SqlError> {
        piece
            .and_then(|piece| layout::span(&self.tokens, piece))
            .and_then(|range| sql.get(range))
            .filter(|text| tokens::same_expr(text, expr))
            .ok_or_else(|| unlocated(what))
    }
}

/// The refusal when the text does not split into the pieces the parser saw.
pub(super) fn unlocated(what: &str) -> SqlError {
    SqlError::unsupported(format!(
        "shardgate could not locate each {what} in the statement text to rewrite it for several shards"
    ))
}
