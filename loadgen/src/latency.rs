//! Latency distributions: an HDR histogram in microseconds with 3 significant digits, and the percentiles the
//! reports print. Fixed memory however long the run; merging rounds or connections adds counts exactly.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency told apart: one hour in microseconds. Longer ones are recorded as this.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// Significant decimal digits kept: values are exact to within 0.1%.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency distribution.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Counts by microseconds, `0..=HIGHEST_US`.
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty distribution.
    #[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts: low 1, high ≥ 2, 3 digits
    pub fn new() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
                .expect("valid constant histogram bounds"),
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us);
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both histograms have the same bounds, so re-recording each bucket is exact and cannot fail.
        for v in other.hist.iter_recorded() {
            self.hist
                .saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The reported percentiles; all zero when nothing was recorded.
    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: self.hist.value_at_quantile(0.50),
            p90: self.hist.value_at_quantile(0.90),
            p99: self.hist.value_at_quantile(0.99),
            p999: self.hist.value_at_quantile(0.999),
            max: self.hist.max(),
        }
    }
}

/// Latency percentiles in microseconds (each the highest value of its histogram bucket, so never understated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest latency.
    pub max: u64,
}

impl Percentiles {
    /// Each percentile's median over `all` (the upper middle for an even count); zeros for none.
    pub fn median(all: &[Percentiles]) -> Percentiles {
        let col = |f: fn(&Percentiles) -> u64| {
            let mut v: Vec<u64> = all.iter().map(f).collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        Percentiles {
            p50: col(|p| p.p50),
            p90: col(|p| p.p90),
            p99: col(|p| p.p99),
            p999: col(|p| p.p999),
            max: col(|p| p.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `got` is within the histogram's 0.1% of `want`.
    fn close(got: u64, want: u64) -> bool {
        got.abs_diff(want) as f64 <= want as f64 * 0.001 + 1.0
    }

    fn uniform(from_us: u64, to_us: u64) -> Latency {
        let mut l = Latency::new();
        for us in from_us..=to_us {
            l.record(Duration::from_micros(us));
        }
        l
    }

    #[test]
    fn percentiles_are_read_from_the_histogram_to_three_digits() {
        let p = uniform(1, 100_000).percentiles();
        for (got, want) in [
            (p.p50, 50_000),
            (p.p90, 90_000),
            (p.p99, 99_000),
            (p.p999, 99_900),
            (p.max, 100_000),
        ] {
            assert!(close(got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn percentiles_never_understate_a_latency() {
        let mut l = Latency::new();
        l.record(Duration::from_micros(12_345));
        let p = l.percentiles();
        assert!(p.p50 >= 12_345 && close(p.p50, 12_345));
        assert_eq!(p.p50, p.max);
    }

    #[test]
    fn an_empty_distribution_reports_zeros() {
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
        assert_eq!(Latency::new().count(), 0);
    }

    #[test]
    fn latencies_past_an_hour_are_recorded_as_an_hour() {
        let mut l = Latency::new();
        l.record(Duration::from_secs(7200));
        assert_eq!(l.count(), 1);
        assert!(close(l.percentiles().max, HIGHEST_US));
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_tails() {
        let mut a = uniform(1, 1000);
        let b = uniform(1_000_001, 1_000_010);
        a.merge(&b);
        assert_eq!(a.count(), 1010);
        assert!(close(a.percentiles().max, 1_000_010));
        assert!(close(a.percentiles().p50, 505));
    }

    #[test]
    fn median_over_rounds_is_taken_per_percentile() {
        let p = |x: u64| Percentiles {
            p50: x,
            p90: 10 * x,
            p99: 100 - x,
            p999: x,
            max: x,
        };
        let m = Percentiles::median(&[p(1), p(3), p(2)]);
        assert_eq!((m.p50, m.p90, m.p99), (2, 20, 98));
        assert_eq!(Percentiles::median(&[]), Percentiles::default());
    }
}
