//! Reports: what was run, and per target the medians over rounds, overall and per tenant class, as a terminal
//! table ([`table`]) or one JSON document ([`json`]). Reads measured [`Round`]s; never touches a connection.

pub mod json;
pub mod table;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::latency::Percentiles;
use crate::round::{ClassStats, Round};
use crate::tenants::{Class, Spike};
use crate::workload::Mix;

/// How the run was set up, printed above the numbers.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Open loop at this total rate, or closed loop.
    pub rate: Option<f64>,
    /// Concurrent connections.
    pub connections: usize,
    /// Seconds per round and target.
    pub seconds: u64,
    /// Rounds.
    pub rounds: usize,
    /// Time allowed after the deadline for operations in flight.
    pub grace: Duration,
    /// The operation mix.
    pub mix: Mix,
    /// Number of tenants.
    pub tenants: u64,
    /// Zipf exponent.
    pub zipf: f64,
    /// Tenants in the hot class.
    pub hot_tenants: u64,
    /// The spike, if any.
    pub spike: Option<Spike>,
    /// Classes shown, in order.
    pub classes: Vec<Class>,
}

/// All rounds of one target.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// The target URL (redacted when printed).
    pub url: String,
    /// Its rounds, in the order they ran.
    pub rounds: Vec<Round>,
}

/// One row of numbers: for one round, or medians over rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Line {
    /// Successful operations per second (median over rounds).
    pub qps: f64,
    /// Latency percentiles of successful operations, µs (each the median over rounds).
    pub latency: Percentiles,
    /// Successful operations (sum over rounds).
    pub ok: u64,
    /// Failed operations (sum over rounds).
    pub errors: u64,
    /// Operations unanswered after the grace period (sum over rounds).
    pub timeouts: u64,
    /// Operations due but never sent (sum over rounds).
    pub unsent: u64,
}

impl Line {
    /// The numbers of `stats`, a class of `round` or all of it.
    pub fn of(round: &Round, stats: &ClassStats) -> Line {
        Line {
            qps: round.qps(stats),
            latency: stats.latency.percentiles(),
            ok: stats.ok(),
            errors: stats.error_count(),
            timeouts: stats.timeouts,
            unsent: stats.unsent,
        }
    }

    /// Medians of rates and percentiles, sums of counts.
    pub fn over_rounds(lines: &[Line]) -> Line {
        let mut qps: Vec<f64> = lines.iter().map(|l| l.qps).collect();
        qps.sort_by(f64::total_cmp);
        let latencies: Vec<Percentiles> = lines.iter().map(|l| l.latency).collect();
        Line {
            qps: qps.get(qps.len() / 2).copied().unwrap_or(0.0),
            latency: Percentiles::median(&latencies),
            ok: lines.iter().map(|l| l.ok).sum(),
            errors: lines.iter().map(|l| l.errors).sum(),
            timeouts: lines.iter().map(|l| l.timeouts).sum(),
            unsent: lines.iter().map(|l| l.unsent).sum(),
        }
    }
}

impl TargetResult {
    /// A target with no rounds yet.
    pub fn new(url: String) -> Self {
        TargetResult {
            url,
            rounds: Vec::new(),
        }
    }

    /// Medians over rounds, all classes together.
    pub fn overall(&self) -> Line {
        let lines: Vec<Line> = self
            .rounds
            .iter()
            .map(|r| Line::of(r, &r.overall()))
            .collect();
        Line::over_rounds(&lines)
    }

    /// Medians over rounds for one class.
    pub fn class(&self, class: Class) -> Line {
        let lines: Vec<Line> = self
            .rounds
            .iter()
            .map(|r| Line::of(r, r.class(class)))
            .collect();
        Line::over_rounds(&lines)
    }

    /// Errors by MySQL code, summed over rounds and classes.
    pub fn errors_by_code(&self) -> BTreeMap<u16, u64> {
        let mut all = BTreeMap::new();
        for r in &self.rounds {
            for (code, n) in r.overall().errors {
                *all.entry(code).or_default() += n;
            }
        }
        all
    }
}

impl Setup {
    /// One sentence saying how the numbers were made.
    pub fn describe(&self) -> String {
        let mode = match self.rate {
            Some(rate) => format!(
                "open loop at {rate} ops/s over {} connections",
                self.connections
            ),
            None => format!("closed loop, {} connections", self.connections),
        };
        let spike = match &self.spike {
            Some(s) => format!(
                "; spike: tenant {} x{} from {:.1} s for {:.1} s",
                s.tenant,
                s.factor,
                s.start.as_secs_f64(),
                s.length.as_secs_f64()
            ),
            None => String::new(),
        };
        format!(
            "{mode}; {} s x {} round(s) per target, grace {:.1} s; mix {}; {} tenants, Zipf {}, hot = top {}{spike}",
            self.seconds,
            self.rounds,
            self.grace.as_secs_f64(),
            self.mix.name(),
            self.tenants,
            self.zipf,
            self.hot_tenants,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A setup and two targets of two rounds each, every class with something in it.
    pub fn sample() -> (Setup, Vec<TargetResult>) {
        let setup = Setup {
            rate: Some(5000.0),
            connections: 4,
            seconds: 3,
            rounds: 2,
            grace: Duration::from_secs(2),
            mix: Mix::Point,
            tenants: 200,
            zipf: 1.0,
            hot_tenants: 2,
            spike: Some(Spike {
                tenant: 7,
                factor: 10.0,
                start: Duration::from_secs(1),
                length: Duration::from_secs(1),
            }),
            classes: Class::ALL.to_vec(),
        };
        let round = |us: u64| {
            let mut r = Round {
                elapsed: Duration::from_secs(1),
                ..Round::default()
            };
            for class in Class::ALL {
                for _ in 0..10 {
                    r.record(class, Duration::from_micros(us), None);
                }
            }
            r.record(
                Class::Spike,
                Duration::ZERO,
                Some(&mysql_async::Error::Server(mysql_async::ServerError {
                    code: 1235,
                    message: String::new(),
                    state: "42000".into(),
                })),
            );
            r.timeout(Class::Rest);
            r.unsent(Class::Hot);
            r
        };
        let target = |url: &str, us: u64| TargetResult {
            url: url.into(),
            rounds: vec![round(us), round(2 * us)],
        };
        (
            setup,
            vec![
                target("mysql://root:secret@127.0.0.1:3306/a", 100),
                target("mysql://app:app@127.0.0.1:15306/b", 300),
            ],
        )
    }

    #[test]
    fn medians_over_rounds_sum_the_counts() {
        let (_, targets) = sample();
        let all = targets[0].overall();
        assert_eq!(
            (all.ok, all.errors, all.timeouts, all.unsent),
            (60, 2, 2, 2)
        );
        assert_eq!(all.qps, 30.0);
        assert_eq!(targets[0].class(Class::Spike).ok, 20);
        assert_eq!(targets[0].errors_by_code(), BTreeMap::from([(1235, 2)]));
    }
}
