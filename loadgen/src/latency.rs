//! Latency distributions: an HDR histogram in microseconds with 3 significant digits, and the percentiles the
//! reports print. Fixed memory however long the run; merging rounds or connections adds counts exactly.
//!
//! A histogram over `1..=HIGHEST_US` at 3 digits is about 190 KB, and every connection keeps a few. So that
//! 10,000 connections do not need gigabytes, a distribution keeps its first [`PENDING_MAX`] latencies as a plain
//! list (4 bytes each) and only makes its histogram when that list is full: a connection that sends a few hundred
//! statements in a round never has one, and the merged total of a round does.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency told apart: one hour in microseconds. Longer ones are recorded as this.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// Significant decimal digits kept: values are exact to within 0.1%.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies kept as a list before they go into a histogram (4 KiB of them).
const PENDING_MAX: usize = 1024;

/// A latency distribution.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Latencies in microseconds (at most [`HIGHEST_US`], which fits in a `u32`) not yet in `hist`; never more
    /// than [`PENDING_MAX`].
    pending: Vec<u32>,
    /// Counts by microseconds, `0..=HIGHEST_US`; made when `pending` first overflows.
    hist: Option<Histogram<u64>>,
}

/// An empty histogram over `1..=HIGHEST_US`.
#[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts: low 1, high ≥ 2, 3 digits
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("valid constant histogram bounds")
}

impl Latency {
    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.record_us(u32::try_from(us.min(HIGHEST_US)).unwrap_or(u32::MAX));
    }

    /// Adds one latency of `us` microseconds (at most [`HIGHEST_US`]).
    fn record_us(&mut self, us: u32) {
        self.pending.push(us);
        if self.pending.len() >= PENDING_MAX {
            let hist = self.hist.get_or_insert_with(histogram);
            for us in self.pending.drain(..) {
                hist.saturating_record(u64::from(us));
            }
        }
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latency) {
        for &us in &other.pending {
            self.record_us(us);
        }
        if let Some(theirs) = &other.hist {
            // Both histograms have the same bounds, so re-recording each bucket is exact and cannot fail.
            let mine = self.hist.get_or_insert_with(histogram);
            for v in theirs.iter_recorded() {
                mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.pending.len() as u64 + self.hist.as_ref().map_or(0, Histogram::len)
    }

    /// The reported percentiles; all zero when nothing was recorded.
    pub fn percentiles(&self) -> Percentiles {
        if self.count() == 0 {
            return Percentiles::default();
        }
        let mut hist = self.hist.clone().unwrap_or_else(histogram);
        for &us in &self.pending {
            hist.saturating_record(u64::from(us));
        }
        Percentiles {
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
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
        let mut l = Latency::default();
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
        let mut l = Latency::default();
        l.record(Duration::from_micros(12_345));
        let p = l.percentiles();
        assert!(p.p50 >= 12_345 && close(p.p50, 12_345));
        assert_eq!(p.p50, p.max);
    }

    #[test]
    fn an_empty_distribution_reports_zeros() {
        assert_eq!(Latency::default().percentiles(), Percentiles::default());
        assert_eq!(Latency::default().count(), 0);
    }

    #[test]
    fn latencies_past_an_hour_are_recorded_as_an_hour() {
        let mut l = Latency::default();
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
    fn few_latencies_are_listed_and_many_go_into_the_histogram_with_the_same_percentiles() {
        let few = uniform(1, 100);
        assert!(few.hist.is_none() && few.pending.len() == 100);
        let many = uniform(1, 100_000);
        assert!(many.hist.is_some() && many.pending.len() < PENDING_MAX);
        assert_eq!(many.count(), 100_000);
        let mut listed = Latency::default();
        let mut merged = Latency::default();
        for us in [7, 700, 70_000] {
            listed.record(Duration::from_micros(us));
            let mut one = Latency::default();
            one.record(Duration::from_micros(us));
            merged.merge(&one);
        }
        merged.merge(&many);
        let mut direct = many.clone();
        direct.merge(&listed);
        assert_eq!(merged.count(), 100_003);
        assert_eq!(merged.percentiles(), direct.percentiles());
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
