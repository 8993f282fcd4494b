//! The text MariaDB prints for FLOAT and DOUBLE values, needed when a merged SUM or AVG over floating-point
//! columns is re-encoded for the text protocol.
//!
//! MariaDB (`String::set_real`, `my_gcvt`) prints a column without fixed decimals as the shortest digits that read
//! back to the same value, in plain notation when the decimal point is at most 15 places from the first digit and
//! in `1.5e-16` notation otherwise. A column with fixed decimals is printed with exactly that many.

/// Decimals value MariaDB uses for "not fixed" (FLOATING_POINT_DECIMALS): print the shortest exact form.
pub(crate) const NOT_FIXED_DEC: u8 = 31;

/// The text MariaDB sends for a DOUBLE with `decimals` in its column definition.
pub(crate) fn format_double(v: f64, decimals: u8) -> String {
    if decimals < NOT_FIXED_DEC {
        return format!("{:.*}", usize::from(decimals), v);
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as MariaDB's dtoa mode 0 does.
    shortest(&format!("{v:e}"))
}

/// The text MariaDB sends for a FLOAT with `decimals` in its column definition.
pub(crate) fn format_float(v: f32, decimals: u8) -> String {
    if decimals < NOT_FIXED_DEC {
        return format!("{:.*}", usize::from(decimals), v);
    }
    shortest(&format!("{v:e}"))
}

/// Turns Rust's scientific form (`-1.2345e-7`) into MariaDB's choice of plain or scientific notation.
fn shortest(sci: &str) -> String {
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if digits.bytes().all(|d| d == b'0') {
        return "0".to_string();
    }
    let len = digits.len() as i32;
    // Position of the decimal point counted from the first digit, as dtoa reports it.
    let decpt = exp + 1;
    let mut s = String::with_capacity(digits.len() + 8);
    if negative {
        s.push('-');
    }
    // my_gcvt keeps plain notation for -14 <= decpt <= 15 (DBL_DIG), or when digits follow the point anyway.
    if decpt >= -14 && (decpt <= 15 || len > decpt) {
        if decpt <= 0 {
            s.push_str("0.");
            s.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            s.push_str(&digits);
        } else if decpt < len {
            let (int, frac) = digits.split_at(decpt as usize);
            s.push_str(int);
            s.push('.');
            s.push_str(frac);
        } else {
            s.push_str(&digits);
            s.extend(std::iter::repeat_n('0', (decpt - len) as usize));
        }
    } else {
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push_str(&exp.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_mariadb_prints_them() {
        // Expected texts are what MariaDB 10.11 returned for `SELECT <literal>e0` over the text protocol.
        let cases: &[(f64, &str)] = &[
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e20, "1e20"),
            (1e-15, "0.000000000000001"),
            (1e-16, "1e-16"),
            (123456789012345678.0, "1.2345678901234568e17"),
            (1.5e16, "1.5e16"),
            (2e15, "2e15"),
            (1234567890123456.7, "1234567890123456.8"),
            (-1.5e-7, "-0.00000015"),
            (1e100, "1e100"),
            (1e15, "1e15"),
            (123456789012345.0, "123456789012345"),
            (0.0001, "0.0001"),
            (1e-5, "0.00001"),
            (1e-100, "1e-100"),
            (1e16, "1e16"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (5e-324, "5e-324"),
            (0.0, "0"),
            (100.0, "100"),
            (123456789012345678901.0, "1.2345678901234568e20"),
            (1.5e-15, "0.0000000000000015"),
            (-2e-15, "-0.000000000000002"),
            (12345.678, "12345.678"),
            (1e-14, "0.00000000000001"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_double(v, NOT_FIXED_DEC), want, "{v:e}");
        }
    }

    #[test]
    fn fixed_decimals_print_exactly_that_many_digits() {
        assert_eq!(format_double(2.5, 2), "2.50");
        assert_eq!(format_double(1.23456, 3), "1.235");
        assert_eq!(format_float(0.1, NOT_FIXED_DEC), "0.1");
    }
}
