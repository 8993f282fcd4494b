//! What one round against one target measured, per tenant class: latencies of answered statements, errors by
//! MySQL code, statements still unanswered at the end of the grace period, and (open loop) statements never sent.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::latency::Latency;
use crate::tenants::Class;

/// Error code for failures that are not MySQL server errors (I/O, protocol, driver).
pub const CLIENT_ERROR: u16 = 0;

/// The MySQL error code of `error`, or [`CLIENT_ERROR`].
pub fn error_code(error: &mysql_async::Error) -> u16 {
    match error {
        mysql_async::Error::Server(s) => s.code,
        _ => CLIENT_ERROR,
    }
}

/// Counts for one class (or all of them).
#[derive(Debug, Clone, Default)]
pub struct ClassStats {
    /// Latencies of statements that succeeded.
    pub latency: Latency,
    /// Failed statements by MySQL error code ([`CLIENT_ERROR`] for the others).
    pub errors: BTreeMap<u16, u64>,
    /// Statements sent but still unanswered when the grace period after the deadline ran out.
    pub timeouts: u64,
    /// Open loop: statements due before the deadline that were never sent, their connection being behind.
    pub unsent: u64,
}

impl ClassStats {
    /// Statements that succeeded.
    pub fn ok(&self) -> u64 {
        self.latency.count()
    }

    /// Statements that failed, whatever the code.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &ClassStats) {
        self.latency.merge(&other.latency);
        for (code, n) in &other.errors {
            *self.errors.entry(*code).or_default() += n;
        }
        self.timeouts += other.timeouts;
        self.unsent += other.unsent;
    }
}

/// One round against one target (or one connection's share of it).
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Per class, indexed by [`Class::index`].
    pub classes: [ClassStats; 3],
    /// From the start of the round to the last answer (or give-up) of the slowest connection.
    pub elapsed: Duration,
    /// Open loop: how late each operation was sent after it was due (pacing precision, plus time spent
    /// behind schedule). Empty in closed loop.
    pub send_lag: Latency,
}

impl Round {
    /// Counts an answered statement: its latency if it succeeded, its error code if not.
    pub fn record(&mut self, class: Class, latency: Duration, error: Option<&mysql_async::Error>) {
        let stats = &mut self.classes[class.index()];
        match error {
            None => stats.latency.record(latency),
            Some(e) => *stats.errors.entry(error_code(e)).or_default() += 1,
        }
    }

    /// Counts a statement unanswered at the end of the grace period.
    pub fn timeout(&mut self, class: Class) {
        self.classes[class.index()].timeouts += 1;
    }

    /// Counts a statement that was due but never sent.
    pub fn unsent(&mut self, class: Class) {
        self.classes[class.index()].unsent += 1;
    }

    /// The counts of one class.
    pub fn class(&self, class: Class) -> &ClassStats {
        &self.classes[class.index()]
    }

    /// All classes together.
    pub fn overall(&self) -> ClassStats {
        let mut all = ClassStats::default();
        for c in &self.classes {
            all.merge(c);
        }
        all
    }

    /// Adds another connection's share of the same round.
    pub fn merge(&mut self, other: &Round) {
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge(theirs);
        }
        self.elapsed = self.elapsed.max(other.elapsed);
        self.send_lag.merge(&other.send_lag);
    }

    /// Successful statements per second of `stats`, a class of this round or all of it.
    pub fn qps(&self, stats: &ClassStats) -> f64 {
        stats.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for the log after each round.
    pub fn summary(&self) -> String {
        let all = self.overall();
        let p = all.latency.percentiles();
        let mut text = format!(
            "{:.0} qps, p50 {} us, p99 {} us, max {} us, errors {:?}, timeouts {}, unsent {}",
            self.qps(&all),
            p.p50,
            p.p99,
            p.max,
            all.errors,
            all.timeouts,
            all.unsent
        );
        if self.send_lag.count() > 0 {
            let lag = self.send_lag.percentiles();
            text += &format!(", sent late by p50 {} us, p99 {} us", lag.p50, lag.p99);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "no".into(),
            state: "42000".into(),
        })
    }

    #[test]
    fn errors_are_counted_by_code_and_kept_out_of_latencies() {
        let mut r = Round::default();
        r.record(Class::Rest, Duration::from_micros(100), None);
        r.record(
            Class::Rest,
            Duration::from_micros(5),
            Some(&server_error(1235)),
        );
        r.record(
            Class::Hot,
            Duration::from_micros(5),
            Some(&server_error(1235)),
        );
        let all = r.overall();
        assert_eq!(all.ok(), 1);
        assert_eq!(all.errors, BTreeMap::from([(1235, 2)]));
        assert_eq!(r.class(Class::Hot).error_count(), 1);
        assert_eq!(
            r.class(Class::Spike).ok() + r.class(Class::Spike).error_count(),
            0
        );
    }

    #[test]
    fn merging_connections_adds_counts_and_keeps_the_longest_elapsed() {
        let mut a = Round {
            elapsed: Duration::from_secs(3),
            ..Round::default()
        };
        a.timeout(Class::Spike);
        let mut b = Round {
            elapsed: Duration::from_millis(3100),
            ..Round::default()
        };
        b.unsent(Class::Spike);
        b.record(Class::Spike, Duration::from_millis(1), None);
        a.merge(&b);
        let s = a.class(Class::Spike);
        assert_eq!((s.ok(), s.timeouts, s.unsent), (1, 1, 1));
        assert_eq!(a.elapsed, Duration::from_millis(3100));
    }
}
