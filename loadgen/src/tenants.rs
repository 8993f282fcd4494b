//! Who a statement is for: tenants drawn from a Zipf distribution (tenant id = Zipf rank, tenant 1 the hottest),
//! an optional spiking tenant, and the class each tenant's numbers are reported under.
//!
//! Pure arithmetic on uniform draws and instants within a round: no randomness source, no clock, no SQL.

use std::time::Duration;

/// The class a tenant's statements are reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The top 1% of tenants by Zipf rank (at least one), the spiking tenant excepted.
    Hot,
    /// Every other tenant.
    Rest,
    /// The spiking tenant, when there is one.
    Spike,
}

impl Class {
    /// Every class, in report order; also the index order of per-class arrays.
    pub const ALL: [Class; 3] = [Class::Hot, Class::Rest, Class::Spike];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Hot => "hot",
            Class::Rest => "rest",
            Class::Spike => "spike",
        }
    }

    /// Position in [`Class::ALL`] and in per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How many tenants count as hot: the top 1% by rank, at least one.
pub fn hot_count(tenants: u64) -> u64 {
    (tenants / 100).max(1)
}

/// The share of all statements a tenant gets while it spikes: `factor` times its normal share, at most all.
pub fn spike_share(normal: f64, factor: f64) -> f64 {
    (normal * factor).clamp(0.0, 1.0)
}

/// One tenant sent `factor` times its normal share during `[start, start + length)` of every round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// The spiking tenant.
    pub tenant: u64,
    /// Multiplier of its normal share while the spike lasts.
    pub factor: f64,
    /// When the spike begins, from the start of the round.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
}

impl Spike {
    /// Whether a statement due `at` into the round falls inside the spike.
    pub fn active(&self, at: Duration) -> bool {
        at >= self.start && at - self.start < self.length
    }
}

/// Assigns tenants to report classes.
#[derive(Debug, Clone, Copy)]
pub struct Classes {
    /// Tenants `1..=hot` are hot.
    hot: u64,
    /// The spiking tenant, reported on its own whether or not it is also hot.
    spike: Option<u64>,
}

impl Classes {
    /// Classes for `tenants` tenants and an optional spiking tenant.
    pub fn new(tenants: u64, spike: Option<u64>) -> Self {
        Classes {
            hot: hot_count(tenants),
            spike,
        }
    }

    /// The class of `tenant`.
    pub fn of(&self, tenant: u64) -> Class {
        if self.spike == Some(tenant) {
            Class::Spike
        } else if tenant <= self.hot {
            Class::Hot
        } else {
            Class::Rest
        }
    }

    /// The classes a report shows: `spike` only when there is a spiking tenant.
    pub fn shown(&self) -> Vec<Class> {
        Class::ALL
            .into_iter()
            .filter(|c| *c != Class::Spike || self.spike.is_some())
            .collect()
    }
}

/// The spike, with its shares precomputed.
#[derive(Debug, Clone, Copy)]
struct SpikeDraw {
    spike: Spike,
    /// Cumulative normal share of the tenants ranked before the spiking one.
    below: f64,
    /// The spiking tenant's normal share.
    normal: f64,
    /// Its share while spiking.
    share: f64,
}

/// Maps uniform draws to tenants: Zipf shares, reshaped while a spike is active.
#[derive(Debug, Clone)]
pub struct Picker {
    /// Cumulative shares: `cdf[k - 1]` is the share of tenants `1..=k`; the last entry is exactly 1.
    cdf: Vec<f64>,
    /// The spike, if any.
    spike: Option<SpikeDraw>,
}

impl Picker {
    /// Tenants `1..=tenants` with shares proportional to `1 / rank^zipf` (0 = uniform).
    pub fn new(tenants: u64, zipf: f64, spike: Option<Spike>) -> Self {
        let n = tenants.max(1);
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(zipf)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        let mut picker = Picker { cdf, spike: None };
        picker.spike = spike.map(|s| {
            let normal = picker.share(s.tenant);
            SpikeDraw {
                spike: s,
                below: picker.share_below(s.tenant),
                normal,
                share: spike_share(normal, s.factor),
            }
        });
        picker
    }

    /// Number of tenants.
    pub fn tenants(&self) -> u64 {
        self.cdf.len() as u64
    }

    /// Cumulative normal share of tenants `1..tenant`.
    fn share_below(&self, tenant: u64) -> f64 {
        match tenant.checked_sub(2) {
            Some(i) => self.cdf.get(i as usize).copied().unwrap_or(1.0),
            None => 0.0,
        }
    }

    /// The normal (unspiked) share of `tenant`; 0 for tenants that do not exist.
    pub fn share(&self, tenant: u64) -> f64 {
        match tenant.checked_sub(1).and_then(|i| self.cdf.get(i as usize)) {
            Some(c) => c - self.share_below(tenant),
            None => 0.0,
        }
    }

    /// The tenant whose cumulative interval holds `u`.
    fn lookup(&self, u: f64) -> u64 {
        (self.cdf.partition_point(|&c| c <= u) as u64 + 1).min(self.tenants())
    }

    /// The tenant for a uniform draw `u` in `[0, 1)` of a statement due `at` into the round.
    ///
    /// Inside the spike the spiking tenant takes the first `share` of the unit interval; the rest is spread over
    /// the other tenants in their normal proportions.
    pub fn pick(&self, u: f64, at: Duration) -> u64 {
        let Some(s) = self.spike.filter(|s| s.spike.active(at)) else {
            return self.lookup(u);
        };
        if u < s.share || self.tenants() == 1 {
            return s.spike.tenant;
        }
        // Rescale to the others' total normal share, then step over the spiking tenant's interval.
        let v = (u - s.share) / (1.0 - s.share) * (1.0 - s.normal);
        let v = if v < s.below { v } else { v + s.normal };
        match self.lookup(v) {
            // Only reachable by rounding at the edge of the spiking tenant's interval.
            t if t == s.spike.tenant && t < self.tenants() => t + 1,
            t if t == s.spike.tenant => t - 1,
            t => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` evenly spaced draws covering the unit interval: deterministic stand-ins for random ones.
    fn grid(n: u32) -> impl Iterator<Item = f64> {
        (0..n).map(move |i| (f64::from(i) + 0.5) / f64::from(n))
    }

    fn spike(tenant: u64, factor: f64) -> Spike {
        Spike {
            tenant,
            factor,
            start: Duration::from_secs(2),
            length: Duration::from_secs(3),
        }
    }

    #[test]
    fn hot_class_is_the_top_percent_by_rank_and_at_least_one() {
        assert_eq!(hot_count(1), 1);
        assert_eq!(hot_count(50), 1);
        assert_eq!(hot_count(200), 2);
        assert_eq!(hot_count(1000), 10);
        let classes = Classes::new(200, None);
        assert_eq!(classes.of(1), Class::Hot);
        assert_eq!(classes.of(2), Class::Hot);
        assert_eq!(classes.of(3), Class::Rest);
        assert_eq!(classes.of(200), Class::Rest);
    }

    #[test]
    fn spiking_tenant_has_its_own_class_even_when_it_is_hot() {
        let classes = Classes::new(200, Some(1));
        assert_eq!(classes.of(1), Class::Spike);
        assert_eq!(classes.of(2), Class::Hot);
        assert_eq!(Classes::new(200, Some(50)).of(50), Class::Spike);
    }

    #[test]
    fn spike_class_is_shown_only_when_a_tenant_spikes() {
        assert_eq!(Classes::new(10, None).shown(), [Class::Hot, Class::Rest]);
        assert_eq!(Classes::new(10, Some(3)).shown(), Class::ALL);
    }

    #[test]
    fn spike_share_is_factor_times_the_normal_share_capped_at_all() {
        assert!((spike_share(0.01, 10.0) - 0.1).abs() < 1e-12);
        assert_eq!(spike_share(0.3, 5.0), 1.0);
        assert!((spike_share(0.2, 0.5) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn spike_is_active_from_its_start_for_its_length_only() {
        let s = spike(1, 2.0);
        assert!(!s.active(Duration::from_millis(1999)));
        assert!(s.active(Duration::from_secs(2)));
        assert!(s.active(Duration::from_millis(4999)));
        assert!(!s.active(Duration::from_secs(5)));
    }

    #[test]
    fn normal_shares_follow_zipf_and_sum_to_one() {
        let p = Picker::new(100, 1.0, None);
        assert!((p.share(1) / p.share(2) - 2.0).abs() < 1e-9);
        assert!((p.share(1) / p.share(10) - 10.0).abs() < 1e-9);
        let total: f64 = (1..=100).map(|t| p.share(t)).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(p.share(0), 0.0);
        assert_eq!(p.share(101), 0.0);
    }

    #[test]
    fn draws_outside_the_spike_follow_the_normal_shares() {
        let p = Picker::new(200, 1.0, Some(spike(7, 20.0)));
        let n = 100_000;
        for tenant in [1, 7, 50] {
            let hits = grid(n)
                .filter(|&u| p.pick(u, Duration::from_secs(1)) == tenant)
                .count();
            let seen = hits as f64 / f64::from(n);
            assert!(
                (seen - p.share(tenant)).abs() < 2e-5,
                "tenant {tenant}: {seen}"
            );
        }
    }

    #[test]
    fn spiking_tenant_gets_factor_times_its_share_inside_the_spike() {
        let p = Picker::new(200, 1.0, Some(spike(7, 20.0)));
        let n = 100_000;
        let at = Duration::from_secs(3);
        let draws: Vec<u64> = grid(n).map(|u| p.pick(u, at)).collect();
        let seen = draws.iter().filter(|&&t| t == 7).count() as f64 / f64::from(n);
        assert!((seen - 20.0 * p.share(7)).abs() < 2e-5, "{seen}");
        // The others keep their proportions among themselves.
        let one = draws.iter().filter(|&&t| t == 1).count() as f64;
        let two = draws.iter().filter(|&&t| t == 2).count() as f64;
        assert!((one / two - 2.0).abs() < 0.01, "{one} / {two}");
        assert!(draws.iter().all(|&t| (1..=200).contains(&t)));
    }

    #[test]
    fn a_spike_past_the_whole_share_sends_everything_to_the_spiking_tenant() {
        let p = Picker::new(10, 1.0, Some(spike(3, 1000.0)));
        assert!(grid(1000).all(|u| p.pick(u, Duration::from_secs(2)) == 3));
    }

    #[test]
    fn draws_stay_within_the_tenants_at_the_edges_of_the_unit_interval() {
        let p = Picker::new(5, 1.2, Some(spike(5, 3.0)));
        for at in [Duration::ZERO, Duration::from_secs(2)] {
            for u in [0.0, 1e-300, 0.5, 1.0 - 1e-16, 1.0] {
                assert!((1..=5).contains(&p.pick(u, at)), "u {u} at {at:?}");
            }
        }
        assert_eq!(
            Picker::new(1, 1.0, Some(spike(1, 0.5))).pick(0.9, Duration::from_secs(2)),
            1
        );
    }
}
