//! Exact DECIMAL values: MariaDB sends DECIMAL cells as text (in both protocols) with up to 65 digits, more than any
//! machine integer or float holds, so comparing, summing and averaging them is done on the digits themselves.
//!
//! This module knows nothing of packets or columns; it turns text into numbers and numbers back into the text
//! MariaDB would print.

use std::cmp::Ordering;

/// A borrowed view of a DECIMAL's text, normalised for comparison without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecimalKey<'a> {
    /// Sign; false for zero so that `-0.00` and `0.00` compare equal.
    negative: bool,
    /// Integer digits without leading zeros (empty for zero).
    int: &'a [u8],
    /// Fraction digits without trailing zeros, so that `1.5` and `1.50` compare equal.
    frac: &'a [u8],
}

impl<'a> DecimalKey<'a> {
    /// Parses `[-+]digits[.digits]`; `None` when the text is not a plain decimal.
    pub(crate) fn parse(text: &'a [u8]) -> Option<Self> {
        let (negative, body) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, text),
        };
        let (int, frac) = match body.iter().position(|&b| b == b'.') {
            Some(dot) => (&body[..dot], &body[dot + 1..]),
            None => (body, &body[body.len()..]),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.iter().chain(frac).all(u8::is_ascii_digit) {
            return None;
        }
        let lead = int.iter().position(|&b| b != b'0').unwrap_or(int.len());
        let trail = frac.iter().rposition(|&b| b != b'0').map_or(0, |p| p + 1);
        let (int, frac) = (&int[lead..], &frac[..trail]);
        Some(DecimalKey {
            negative: negative && !(int.is_empty() && frac.is_empty()),
            int,
            frac,
        })
    }
}

impl Ord for DecimalKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Without leading zeros a longer integer part is a larger magnitude; without trailing zeros the fraction
        // parts compare as plain byte strings ("5" < "51" because 0.50 < 0.51).
        let magnitude = self
            .int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac));
        match (self.negative, other.negative) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }
}

impl PartialOrd for DecimalKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An owned exact decimal: the value is `digits / 10^scale`, negated when `negative`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    /// Decimal digits 0..=9, most significant first. Never shorter than `scale`.
    digits: Vec<u8>,
    /// How many of `digits` are after the decimal point.
    scale: usize,
}

impl Decimal {
    /// Parses the text MariaDB sends for a DECIMAL cell, keeping its scale (`1.50` has two fraction digits).
    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        // The key validates the text; its parts have leading and trailing zeros stripped.
        let key = DecimalKey::parse(text)?;
        let scale = match text.iter().position(|&b| b == b'.') {
            Some(dot) => text.len() - dot - 1,
            None => 0,
        };
        let mut digits = Vec::with_capacity(key.int.len() + scale);
        digits.extend(key.int.iter().map(|d| d - b'0'));
        digits.extend(key.frac.iter().map(|d| d - b'0'));
        digits.resize(key.int.len() + scale, 0);
        Some(
            Decimal {
                negative: key.negative,
                digits,
                scale,
            }
            .normalised(),
        )
    }

    /// The integer `v` as a decimal with no fraction digits.
    pub(crate) fn from_int(v: i128) -> Self {
        let digits = v
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|d| d - b'0')
            .collect();
        Decimal {
            negative: v < 0,
            digits,
            scale: 0,
        }
        .normalised()
    }

    fn is_zero(&self) -> bool {
        self.digits.iter().all(|&d| d == 0)
    }

    /// Drops redundant leading zeros and the sign of zero, so that equal values have one form per scale.
    fn normalised(mut self) -> Self {
        let keep = self.scale.max(1);
        let extra = self
            .digits
            .iter()
            .take(self.digits.len().saturating_sub(keep))
            .take_while(|&&d| d == 0)
            .count();
        self.digits.drain(..extra);
        if self.is_zero() {
            self.negative = false;
        }
        self
    }

    /// This value's digits widened to `scale` fraction digits and `int_len` integer digits.
    fn aligned(&self, int_len: usize, scale: usize) -> Vec<u8> {
        let own_int = self.digits.len() - self.scale;
        let mut out = vec![0; int_len - own_int];
        out.extend_from_slice(&self.digits);
        out.resize(int_len + scale, 0);
        out
    }

    /// The exact sum of two decimals.
    pub(crate) fn add(&self, other: &Decimal) -> Decimal {
        let scale = self.scale.max(other.scale);
        // One more integer digit than either operand holds room for the carry.
        let int_len = (self.digits.len() - self.scale).max(other.digits.len() - other.scale) + 1;
        let a = self.aligned(int_len, scale);
        let b = other.aligned(int_len, scale);
        let (negative, digits) = if self.negative == other.negative {
            (self.negative, add_magnitudes(&a, &b))
        } else if a >= b {
            // Equal-length digit vectors compare lexicographically as magnitudes.
            (self.negative, sub_magnitudes(&a, &b))
        } else {
            (other.negative, sub_magnitudes(&b, &a))
        };
        Decimal {
            negative,
            digits,
            scale,
        }
        .normalised()
    }

    /// This value divided by `divisor`, rounded half away from zero to `scale` fraction digits, the way MariaDB
    /// rounds AVG. `None` when `divisor` is zero.
    pub(crate) fn div_round(&self, divisor: u64, scale: usize) -> Option<Decimal> {
        if divisor == 0 {
            return None;
        }
        // One digit past `scale` decides the rounding: digits beyond it cannot move a value across the half-way
        // point, so a truncated quotient rounds exactly like the true one.
        let work = self.scale.max(scale + 1);
        let mut dividend = self.digits.clone();
        dividend.resize(self.digits.len() + (work - self.scale), 0);
        let divisor = u128::from(divisor);
        let mut rem: u128 = 0;
        let mut quotient = Vec::with_capacity(dividend.len());
        for d in dividend {
            rem = rem * 10 + u128::from(d);
            // rem < 10 * divisor, so the quotient digit is 0..=9.
            quotient.push((rem / divisor) as u8);
            rem %= divisor;
        }
        Some(
            Decimal {
                negative: self.negative,
                digits: quotient,
                scale: work,
            }
            .rounded(scale),
        )
    }

    /// This value with exactly `scale` fraction digits: padded with zeros, or rounded half away from zero.
    pub(crate) fn rounded(mut self, scale: usize) -> Decimal {
        if self.scale <= scale {
            self.digits
                .resize(self.digits.len() + (scale - self.scale), 0);
            self.scale = scale;
            return self.normalised();
        }
        let cut = self.digits.len() - (self.scale - scale);
        let round_up = self.digits[cut] >= 5;
        self.digits.truncate(cut);
        self.scale = scale;
        if round_up {
            // Add one unit in the last place, carrying leftwards; a carry out of the top digit grows the number.
            let mut i = self.digits.len();
            loop {
                if i == 0 {
                    self.digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if self.digits[i] == 9 {
                    self.digits[i] = 0;
                } else {
                    self.digits[i] += 1;
                    break;
                }
            }
        }
        self.normalised()
    }

    /// The order of two exact values, whatever their scales (`1.50` equals `1.5`).
    pub(crate) fn compare(&self, other: &Decimal) -> Ordering {
        let scale = self.scale.max(other.scale);
        let int_len = (self.digits.len() - self.scale).max(other.digits.len() - other.scale);
        // Equal-length digit vectors compare lexicographically as magnitudes; zero is never negative.
        let magnitude = self
            .aligned(int_len, scale)
            .cmp(&other.aligned(int_len, scale));
        match (self.negative, other.negative) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }

    /// The nearest double, as MariaDB converts a DECIMAL to compare it with a DOUBLE (from its text).
    pub(crate) fn to_f64(&self) -> f64 {
        // The text is always `[-]digits[.digits]`, which parses; NaN would only make a comparison unknown.
        self.to_text().parse().unwrap_or(f64::NAN)
    }

    /// The text MariaDB prints: an optional minus, at least one integer digit, and exactly `scale` fraction digits.
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.digits.len() + 2);
        if self.negative {
            s.push('-');
        }
        let int_len = self.digits.len() - self.scale;
        if int_len == 0 {
            s.push('0');
        }
        for (i, d) in self.digits.iter().enumerate() {
            if i == int_len && self.scale > 0 {
                s.push('.');
            }
            s.push(char::from(b'0' + d));
        }
        s
    }
}

/// Sum of two equal-length digit vectors whose leading digit leaves room for the carry.
fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0; a.len()];
    let mut carry = 0;
    for i in (0..a.len()).rev() {
        let s = a[i] + b[i] + carry;
        out[i] = s % 10;
        carry = s / 10;
    }
    out
}

/// Difference of two equal-length digit vectors, `a >= b`.
fn sub_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0; a.len()];
    let mut borrow = 0;
    for i in (0..a.len()).rev() {
        let (mut d, sub) = (a[i], b[i] + borrow);
        borrow = u8::from(d < sub);
        if d < sub {
            d += 10;
        }
        out[i] = d - sub;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::parse(s.as_bytes()).unwrap()
    }

    fn key(s: &str) -> DecimalKey<'_> {
        DecimalKey::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn keys_order_by_value_not_by_text() {
        assert!(key("9.50") < key("10.00"));
        assert!(key("-10.00") < key("-9.50"));
        assert!(key("-0.01") < key("0.00"));
        assert!(key("0.5") < key("0.51"));
        assert_eq!(key("1.5"), key("01.50"));
        assert_eq!(key("-0.00").cmp(&key("0")), Ordering::Equal);
        assert!(key("123456789012345678901234567890.1") > key("99999999999999999999999999999.9"));
    }

    #[test]
    fn parse_refuses_text_that_is_not_a_plain_decimal() {
        for bad in ["", "-", ".", "1e5", "1.2.3", "abc", " 1"] {
            assert!(Decimal::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn sums_are_exact_beyond_the_range_of_floats_and_i128() {
        let a = dec("99999999999999999999999999999999999999999999999999999999999999.99");
        let s = a.add(&dec("0.01"));
        assert_eq!(
            s.to_text(),
            "100000000000000000000000000000000000000000000000000000000000000.00"
        );
        assert_eq!(dec("-3.25").add(&dec("10.00")).to_text(), "6.75");
        assert_eq!(dec("-10.00").add(&dec("9.5")).to_text(), "-0.50");
        assert_eq!(dec("-1.50").add(&dec("1.50")).to_text(), "0.00");
        assert_eq!(dec("0.1").add(&dec("0.2")).to_text(), "0.3");
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        // Checked against MariaDB: AVG over 32 rows summing to 1 and -1 prints 0.0313 and -0.0313.
        assert_eq!(dec("1").div_round(32, 4).unwrap().to_text(), "0.0313");
        assert_eq!(dec("-1").div_round(32, 4).unwrap().to_text(), "-0.0313");
        assert_eq!(dec("0.1").div_round(32, 5).unwrap().to_text(), "0.00313");
        assert_eq!(dec("2").div_round(3, 4).unwrap().to_text(), "0.6667");
        assert_eq!(dec("-2").div_round(3, 4).unwrap().to_text(), "-0.6667");
        assert_eq!(dec("9.99").div_round(1, 6).unwrap().to_text(), "9.990000");
        assert_eq!(dec("0.99995").div_round(1, 4).unwrap().to_text(), "1.0000");
        assert_eq!(dec("-1").div_round(100_000, 4).unwrap().to_text(), "0.0000");
        assert!(dec("1").div_round(0, 4).is_none());
    }

    #[test]
    fn integers_convert_at_the_extremes() {
        assert_eq!(Decimal::from_int(0).to_text(), "0");
        assert_eq!(
            Decimal::from_int(i128::MIN).to_text(),
            "-170141183460469231731687303715884105728"
        );
        assert_eq!(Decimal::from_int(-5).rounded(2).to_text(), "-5.00");
    }
}
