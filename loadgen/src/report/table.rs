//! The terminal table: a row per target (medians over rounds, throughput relative to the first target), its
//! class rows indented under it, then its errors by MySQL code.

use std::fmt::Write;

use super::{Line, Setup, TargetResult};

/// Column headers after the name column.
const HEADERS: [&str; 11] = [
    "qps", "ratio", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "ok", "errors", "timeouts",
    "unsent",
];
/// Column widths after the name column.
const WIDTHS: [usize; 11] = [10, 6, 8, 8, 8, 9, 9, 9, 7, 8, 7];

/// The whole report as text.
pub fn render(setup: &Setup, results: &[TargetResult]) -> String {
    let names: Vec<String> = results.iter().map(|r| crate::redact(&r.url)).collect();
    let width = names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("target".len());
    let mut out = String::new();
    let _ = writeln!(out, "{}", setup.describe());
    let _ = write!(out, "{:<width$}", "target");
    for (h, w) in HEADERS.iter().zip(WIDTHS) {
        let _ = write!(out, " {h:>w$}");
    }
    out.push('\n');
    let overall: Vec<Line> = results.iter().map(TargetResult::overall).collect();
    let base = overall.first().map_or(0.0, |l| l.qps);
    for ((result, name), line) in results.iter().zip(&names).zip(&overall) {
        let ratio = if base > 0.0 {
            format!("{:.2}", line.qps / base)
        } else {
            "-".into()
        };
        row(&mut out, name, width, line, &ratio);
        for class in &setup.classes {
            let label = format!("  {}", class.name());
            row(&mut out, &label, width, &result.class(*class), "");
        }
        let errors = result.errors_by_code();
        if !errors.is_empty() {
            let codes: Vec<String> = errors
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  errors by code (0 = not a server error): {}",
                codes.join(", ")
            );
        }
    }
    out
}

/// One row: `name` padded to `width`, then the numbers of `line`.
fn row(out: &mut String, name: &str, width: usize, line: &Line, ratio: &str) {
    let p = &line.latency;
    let cells = [
        format!("{:.0}", line.qps),
        ratio.to_string(),
        p.p50.to_string(),
        p.p90.to_string(),
        p.p99.to_string(),
        p.p999.to_string(),
        p.max.to_string(),
        line.ok.to_string(),
        line.errors.to_string(),
        line.timeouts.to_string(),
        line.unsent.to_string(),
    ];
    let _ = write!(out, "{name:<width$}");
    for (cell, w) in cells.iter().zip(WIDTHS) {
        let _ = write!(out, " {cell:>w$}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indents_class_rows_under_each_target_and_hides_passwords() {
        let (setup, targets) = crate::report::tests::sample();
        let text = render(&setup, &targets);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("open loop at 5000 ops/s"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("target")
                && lines[1].contains("p90 us")
                && lines[1].contains("max us")
        );
        assert!(lines[2].starts_with("mysql://root@127.0.0.1:3306/a "));
        assert!(lines[3].starts_with("  hot "));
        assert!(lines[4].starts_with("  rest "));
        assert!(lines[5].starts_with("  spike "));
        assert_eq!(
            lines[6],
            "  errors by code (0 = not a server error): 1235: 2"
        );
        assert!(lines[7].starts_with("mysql://app@127.0.0.1:15306/b "));
        assert!(!text.contains("secret"));
        assert_eq!(lines.len(), 12);
    }

    #[test]
    fn every_row_lines_up_with_the_header() {
        let (setup, targets) = crate::report::tests::sample();
        let text = render(&setup, &targets);
        let widths: Vec<usize> = text
            .lines()
            .skip(1)
            .filter(|l| !l.contains("errors by code"))
            .map(str::len)
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{widths:?}");
    }
}
