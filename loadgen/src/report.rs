//! Latency bookkeeping and reports: throughput, percentiles, errors by MySQL code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// One round against one target.
#[derive(Debug, Default)]
pub struct Round {
    /// Latencies in microseconds.
    pub latencies_us: Vec<u32>,
    /// Errors by MySQL error code (0 for errors that are not server errors).
    pub errors: BTreeMap<u16, u64>,
    pub elapsed: Duration,
}

impl Round {
    pub fn record(&mut self, latency: Duration, error: Option<&mysql_async::Error>) {
        self.latencies_us
            .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        if let Some(e) = error {
            let code = match e {
                mysql_async::Error::Server(s) => s.code,
                _ => 0,
            };
            *self.errors.entry(code).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Round) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    pub fn qps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentiles in microseconds, one per `qs` entry (each in 0..=1).
    pub fn percentiles(&self, qs: &[f64]) -> Vec<u32> {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        qs.iter()
            .map(|q| match sorted.len() {
                0 => 0,
                n => sorted[(((n - 1) as f64) * q).round() as usize],
            })
            .collect()
    }

    pub fn summary(&self) -> String {
        let p = self.percentiles(&[0.5, 0.99]);
        format!(
            "{:.0} qps, p50 {} us, p99 {} us, errors {:?}",
            self.qps(),
            p[0],
            p[1],
            self.errors
        )
    }
}

/// All rounds of one target.
pub struct TargetResult {
    pub url: String,
    pub rounds: Vec<Round>,
}

/// Medians over rounds.
struct Medians {
    qps: f64,
    p50: u32,
    p99: u32,
    p999: u32,
    errors: u64,
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

impl TargetResult {
    pub fn new(url: String) -> Self {
        TargetResult {
            url,
            rounds: Vec::new(),
        }
    }

    fn medians(&self) -> Medians {
        let ps: Vec<Vec<u32>> = self
            .rounds
            .iter()
            .map(|r| r.percentiles(&[0.5, 0.99, 0.999]))
            .collect();
        let col = |i: usize| median(ps.iter().map(|p| p[i]).collect()).unwrap_or(0);
        Medians {
            qps: median(self.rounds.iter().map(Round::qps).collect()).unwrap_or(0.0),
            p50: col(0),
            p99: col(1),
            p999: col(2),
            errors: self.rounds.iter().flat_map(|r| r.errors.values()).sum(),
        }
    }
}

/// A terminal table of medians over rounds, with throughput relative to the first target.
pub fn to_table(results: &[TargetResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<50} {:>10} {:>7} {:>8} {:>8} {:>9} {:>7}",
        "target", "qps", "ratio", "p50 us", "p99 us", "p99.9 us", "errors"
    );
    let meds: Vec<Medians> = results.iter().map(TargetResult::medians).collect();
    let base = meds.first().map_or(1.0, |m| m.qps).max(1e-9);
    for (r, m) in results.iter().zip(&meds) {
        let _ = writeln!(
            out,
            "{:<50} {:>10.0} {:>7.2} {:>8} {:>8} {:>9} {:>7}",
            crate::redact(&r.url),
            m.qps,
            m.qps / base,
            m.p50,
            m.p99,
            m.p999,
            m.errors
        );
    }
    out
}

/// The same medians as a JSON array for scripts.
pub fn to_json(results: &[TargetResult]) -> String {
    let items: Vec<String> = results
        .iter()
        .map(|r| {
            let m = r.medians();
            format!(
                "{{\"target\":\"{}\",\"qps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"errors\":{}}}",
                crate::redact(&r.url).replace('\\', "\\\\").replace('"', "\\\""),
                m.qps,
                m.p50,
                m.p99,
                m.p999,
                m.errors
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}
