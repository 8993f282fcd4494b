//! HAVING across shards: the condition the shards ran without, tested on each merged row.
//!
//! A shard's HAVING would see only its partial aggregates (a group of 3 rows split 2 + 1 fails `COUNT(*) > 2` on
//! both shards), so the planner takes HAVING out of the shards' statement and the merge applies it here: after
//! grouping and aggregation, before DISTINCT, ORDER BY and LIMIT, as MariaDB does. It reads cells as the client
//! would receive them, so an AVG is the quotient already rounded to its scale, which is what MariaDB's HAVING
//! compares too.
//!
//! Comparisons are MariaDB's for a numeric column against a numeric literal: integer and DECIMAL columns against
//! an integer or fixed-point literal compare exactly; a FLOAT or DOUBLE on either side makes it a comparison of
//! doubles. Strings and temporals are refused ([`MergeError::HavingNotNumeric`]): they compare by collation or by
//! converting the literal, which a result set does not carry enough to reproduce.

use std::cmp::Ordering;

use crate::MergeError;
use crate::column::{Column, Kind, types};
use crate::decimal::Decimal;
use crate::order::Decoder;
use crate::row::Row;
use crate::spec::{Having, HavingLiteral, HavingOp};
use crate::value::{self, Number};

/// How deeply a condition may nest. The planner bounds its conditions well below this; the bound keeps the
/// recursion here far from the stack's limit whoever built the spec.
const MAX_DEPTH: usize = 256;

/// Keeps the rows for which `having` is true, in their order.
pub(crate) fn filter(
    rows: Vec<Row>,
    having: &Having,
    dec: Decoder<'_>,
) -> Result<Vec<Row>, MergeError> {
    // Compiled before the first row, so a bad condition is refused even when there are no rows to test.
    let test = Test::compile(having, dec.columns, 0)?;
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        if test.eval(&row, dec)? == Some(true) {
            kept.push(row);
        }
    }
    Ok(kept)
}

/// A [`Having`] with its literals parsed and its columns checked.
#[derive(Debug)]
enum Test {
    Compare {
        column: usize,
        op: HavingOp,
        literal: Literal,
    },
    IsNull {
        column: usize,
        negated: bool,
    },
    And(Box<Test>, Box<Test>),
    Or(Box<Test>, Box<Test>),
    Not(Box<Test>),
}

/// A parsed [`HavingLiteral`].
#[derive(Debug)]
enum Literal {
    /// An exact number, and its nearest double for comparisons with FLOAT and DOUBLE columns.
    Exact(Decimal, f64),
    Double(f64),
    Null,
}

impl Test {
    /// Parses the literals and checks the compared columns' types; `depth` is how deep `having` is nested.
    fn compile(having: &Having, columns: &[Column], depth: usize) -> Result<Test, MergeError> {
        if depth > MAX_DEPTH {
            return Err(MergeError::BadHaving {
                problem: "nested too deeply",
            });
        }
        let nested = |h: &Having| Test::compile(h, columns, depth + 1).map(Box::new);
        Ok(match having {
            Having::Compare {
                column,
                op,
                literal,
            } => {
                let col = columns.get(*column).ok_or(MergeError::ColumnOutOfRange {
                    column: *column,
                    columns: columns.len(),
                })?;
                let numeric = matches!(
                    col.kind(),
                    Kind::Int { .. } | Kind::Decimal | Kind::Float | Kind::Double | Kind::Null
                );
                if !numeric {
                    return Err(MergeError::HavingNotNumeric {
                        column: *column,
                        type_code: col.type_code,
                    });
                }
                Test::Compare {
                    column: *column,
                    op: *op,
                    literal: Literal::parse(literal)?,
                }
            }
            Having::IsNull { column, negated } => Test::IsNull {
                column: *column,
                negated: *negated,
            },
            Having::And(a, b) => Test::And(nested(a)?, nested(b)?),
            Having::Or(a, b) => Test::Or(nested(a)?, nested(b)?),
            Having::Not(a) => Test::Not(nested(a)?),
        })
    }

    /// The condition's value on `row`: `None` is SQL's unknown.
    fn eval(&self, row: &Row, dec: Decoder<'_>) -> Result<Option<bool>, MergeError> {
        // Both sides of AND and OR are evaluated, so a cell that cannot be decoded is an error whatever the other
        // side says.
        Ok(match self {
            Test::IsNull { column, negated } => Some(row.cell(*column).is_none() != *negated),
            Test::Compare {
                column,
                op,
                literal,
            } => compare(row, *column, dec, literal)?.map(|order| op.holds(order)),
            Test::And(a, b) => match (a.eval(row, dec)?, b.eval(row, dec)?) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Test::Or(a, b) => match (a.eval(row, dec)?, b.eval(row, dec)?) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Test::Not(a) => a.eval(row, dec)?.map(|v| !v),
        })
    }
}

impl Literal {
    fn parse(literal: &HavingLiteral) -> Result<Literal, MergeError> {
        let bad = |problem| MergeError::BadHaving { problem };
        Ok(match literal {
            HavingLiteral::Exact(text) => {
                let d = Decimal::parse(text.as_bytes()).ok_or(bad("malformed exact number"))?;
                let f = d.to_f64();
                Literal::Exact(d, f)
            }
            HavingLiteral::Double(text) => {
                let f: f64 = text.parse().map_err(|_| bad("malformed double"))?;
                if !f.is_finite() {
                    return Err(bad("double out of range"));
                }
                Literal::Double(f)
            }
            HavingLiteral::Null => Literal::Null,
        })
    }
}

impl HavingOp {
    /// Whether `column <op> literal` holds when the column's value compares to the literal as `order`.
    fn holds(self, order: Ordering) -> bool {
        match self {
            HavingOp::Eq => order == Ordering::Equal,
            HavingOp::Ne => order != Ordering::Equal,
            HavingOp::Lt => order == Ordering::Less,
            HavingOp::Le => order != Ordering::Greater,
            HavingOp::Gt => order == Ordering::Greater,
            HavingOp::Ge => order != Ordering::Less,
        }
    }
}

/// How the cell in `column` compares to `literal`; `None` when either is NULL.
fn compare(
    row: &Row,
    column: usize,
    dec: Decoder<'_>,
    literal: &Literal,
) -> Result<Option<Ordering>, MergeError> {
    let (Some(cell), false) = (row.cell(column), matches!(literal, Literal::Null)) else {
        return Ok(None);
    };
    let col = dec
        .columns
        .get(column)
        .ok_or(MergeError::ColumnOutOfRange {
            column,
            columns: dec.columns.len(),
        })?;
    let number = value::number(col, dec.protocol, cell)
        .map_err(|problem| MergeError::BadValue { column, problem })?;
    let number = match number {
        // A FLOAT's text is rounded for display; MariaDB compares the single-precision value itself, widened.
        Number::Float(v) if col.type_code == types::FLOAT => Number::Float(f64::from(v as f32)),
        other => other,
    };
    Ok(match (&number, literal) {
        (Number::Int(a), Literal::Exact(b, _)) => Some(Decimal::from_int(*a).compare(b)),
        (Number::Decimal(a), Literal::Exact(b, _)) => Some(a.compare(b)),
        (Number::Float(a), Literal::Exact(_, b)) | (Number::Float(a), Literal::Double(b)) => {
            a.partial_cmp(b)
        }
        (Number::Int(a), Literal::Double(b)) => (*a as f64).partial_cmp(b),
        (Number::Decimal(a), Literal::Double(b)) => a.to_f64().partial_cmp(b),
        (_, Literal::Null) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use bytes::{BufMut, Bytes, BytesMut};
    use shardgate_wire::lenenc::put_lenenc_bytes;

    /// A column definition of `type_code` with `decimals` fraction digits.
    fn col(type_code: u8, decimals: u8) -> Column {
        let mut b = BytesMut::new();
        for s in ["def", "", "", "", "c", ""] {
            put_lenenc_bytes(&mut b, s.as_bytes());
        }
        b.put_slice(&[0x0c, 63, 0, 20, 0, 0, 0, type_code, 0, 0, decimals, 0, 0]);
        Column::parse(&b).unwrap()
    }

    /// The columns of the text rows below: BIGINT, DECIMAL(10,2), DOUBLE, FLOAT, VARCHAR.
    fn columns() -> Vec<Column> {
        vec![
            col(types::LONGLONG, 0),
            col(types::NEWDECIMAL, 2),
            col(types::DOUBLE, 31),
            col(types::FLOAT, 31),
            col(0xfd, 0),
        ]
    }

    /// A text row of `cells` (`None` for NULL).
    fn row(cells: [Option<&str>; 5]) -> Row {
        let mut b = BytesMut::new();
        for cell in cells {
            match cell {
                Some(text) => put_lenenc_bytes(&mut b, text.as_bytes()),
                None => b.put_u8(0xfb),
            }
        }
        Row::parse(Bytes::from(b), &columns(), Protocol::Text).unwrap()
    }

    fn cmp(column: usize, op: HavingOp, literal: HavingLiteral) -> Having {
        Having::Compare {
            column,
            op,
            literal,
        }
    }

    fn exact(text: &str) -> HavingLiteral {
        HavingLiteral::Exact(text.into())
    }

    /// The value of `having` on `row`.
    fn value(having: &Having, row: &Row) -> Result<Option<bool>, MergeError> {
        let columns = columns();
        let dec = Decoder {
            columns: &columns,
            protocol: Protocol::Text,
        };
        Test::compile(having, &columns, 0)?.eval(row, dec)
    }

    #[test]
    fn integers_and_decimals_compare_exactly_with_exact_literals() {
        let r = row([Some("3"), Some("10.00"), Some("0.1"), Some("0.1"), None]);
        let holds = |h: Having| value(&h, &r).unwrap();
        assert_eq!(
            holds(cmp(0, HavingOp::Gt, exact("2.999999999999999999999"))),
            Some(true)
        );
        assert_eq!(holds(cmp(0, HavingOp::Eq, exact("3.0"))), Some(true));
        assert_eq!(holds(cmp(0, HavingOp::Lt, exact("-5"))), Some(false));
        assert_eq!(holds(cmp(1, HavingOp::Eq, exact("10"))), Some(true));
        assert_eq!(
            holds(cmp(1, HavingOp::Ge, exact("10.000000000000000000001"))),
            Some(false)
        );
        assert_eq!(holds(cmp(1, HavingOp::Ne, exact("-10"))), Some(true));
    }

    #[test]
    fn floating_point_on_either_side_compares_as_doubles() {
        let r = row([Some("3"), Some("0.10"), Some("0.1"), Some("0.1"), None]);
        let holds = |h: Having| value(&h, &r).unwrap();
        let double = |t: &str| HavingLiteral::Double(t.into());
        assert_eq!(holds(cmp(2, HavingOp::Eq, exact("0.1"))), Some(true));
        // FLOAT 0.1 is 0.100000001490116... as MariaDB compares it.
        assert_eq!(holds(cmp(3, HavingOp::Gt, exact("0.1"))), Some(true));
        assert_eq!(holds(cmp(0, HavingOp::Lt, double("3.5e0"))), Some(true));
        assert_eq!(holds(cmp(1, HavingOp::Eq, double("1e-1"))), Some(true));
    }

    #[test]
    fn null_makes_a_comparison_unknown_and_three_valued_logic_follows() {
        let r = row([Some("3"), None, Some("1"), Some("1"), None]);
        let holds = |h: Having| value(&h, &r).unwrap();
        let unknown = cmp(1, HavingOp::Gt, exact("0"));
        let yes = cmp(0, HavingOp::Eq, exact("3"));
        let no = cmp(0, HavingOp::Eq, exact("4"));
        let boxed = |h: &Having| Box::new(h.clone());
        assert_eq!(holds(unknown.clone()), None);
        assert_eq!(holds(cmp(0, HavingOp::Eq, HavingLiteral::Null)), None);
        assert_eq!(holds(Having::Not(boxed(&unknown))), None);
        assert_eq!(holds(Having::And(boxed(&unknown), boxed(&yes))), None);
        assert_eq!(holds(Having::And(boxed(&unknown), boxed(&no))), Some(false));
        assert_eq!(holds(Having::Or(boxed(&unknown), boxed(&yes))), Some(true));
        assert_eq!(holds(Having::Or(boxed(&no), boxed(&unknown))), None);
        let is_null = |column, negated| Having::IsNull { column, negated };
        assert_eq!(holds(is_null(1, false)), Some(true));
        assert_eq!(holds(is_null(4, true)), Some(false));
        assert_eq!(holds(is_null(0, true)), Some(true));
    }

    #[test]
    fn strings_bad_literals_and_deep_trees_are_refused() {
        let r = row([Some("3"), None, None, None, Some("a")]);
        assert!(matches!(
            value(&cmp(4, HavingOp::Eq, exact("1")), &r),
            Err(MergeError::HavingNotNumeric { column: 4, .. })
        ));
        for bad in [
            exact("1e3"),
            exact("abc"),
            HavingLiteral::Double("x".into()),
        ] {
            assert!(matches!(
                value(&cmp(0, HavingOp::Eq, bad), &r),
                Err(MergeError::BadHaving { .. })
            ));
        }
        let mut deep = Having::IsNull {
            column: 0,
            negated: false,
        };
        for _ in 0..=MAX_DEPTH {
            deep = Having::Not(Box::new(deep));
        }
        assert!(matches!(
            value(&deep, &r),
            Err(MergeError::BadHaving { .. })
        ));
    }
}
