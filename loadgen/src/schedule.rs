//! Open loop: when each statement is meant to be sent.
//!
//! The total rate is split over the connections and their slots interleave: slot `j` of the whole run is due at
//! `j / rate`, and connection `c` of `n` owns slots `c, c + n, c + 2n, …`. A connection that falls behind still
//! measures each statement from its slot, so queueing shows in the latency (no coordinated omission).
//! Pure arithmetic: no clock, no sockets.

use std::time::Duration;

/// The intended send times of one connection's statements, from the start of the round.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Total statements per second across all connections; positive and finite.
    rate: f64,
    /// Number of connections sharing the rate.
    connections: u64,
    /// This connection, `0..connections`.
    connection: u64,
}

impl Schedule {
    /// The schedule of `connection` (0-based) of `connections` sharing a total of `rate` statements per second.
    pub fn new(rate: f64, connections: usize, connection: usize) -> Self {
        Schedule {
            rate,
            connections: connections.max(1) as u64,
            connection: connection as u64,
        }
    }

    /// When this connection's `k`-th statement (0-based) is due.
    pub fn intended(&self, k: u64) -> Duration {
        let slot = k
            .saturating_mul(self.connections)
            .saturating_add(self.connection);
        Duration::try_from_secs_f64(slot as f64 / self.rate).unwrap_or(Duration::MAX)
    }

    /// How many of this connection's statements are due before `end`.
    pub fn due_before(&self, end: Duration) -> u64 {
        let estimate =
            (end.as_secs_f64() * self.rate - self.connection as f64) / self.connections as f64;
        let mut n = estimate.ceil().max(0.0) as u64;
        // The estimate can be off by one from rounding; settle it against `intended` itself.
        while n > 0 && self.intended(n - 1) >= end {
            n -= 1;
        }
        while self.intended(n) < end {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_sends_at_the_full_rate() {
        let s = Schedule::new(1000.0, 1, 0);
        assert_eq!(s.intended(0), Duration::ZERO);
        assert_eq!(s.intended(1), Duration::from_millis(1));
        assert_eq!(s.intended(2500), Duration::from_millis(2500));
    }

    #[test]
    fn each_connection_is_spaced_connections_over_rate_apart() {
        let s = Schedule::new(1000.0, 4, 1);
        assert_eq!(s.intended(0), Duration::from_millis(1));
        assert_eq!(s.intended(1), Duration::from_millis(5));
        assert_eq!(s.intended(2), Duration::from_millis(9));
    }

    #[test]
    fn connections_interleave_into_one_evenly_spaced_stream() {
        let n = 3;
        let mut all: Vec<Duration> = (0..n)
            .flat_map(|c| {
                let s = Schedule::new(600.0, n, c);
                (0..100).map(move |k| s.intended(k))
            })
            .collect();
        all.sort();
        for (j, t) in all.iter().enumerate() {
            let want = Duration::from_secs_f64(j as f64 / 600.0);
            assert!(
                t.abs_diff(want) < Duration::from_nanos(2),
                "slot {j}: {t:?}"
            );
        }
    }

    #[test]
    fn due_before_counts_exactly_the_slots_before_the_end() {
        for (rate, n, c, end_ms) in [
            (1000.0, 1, 0, 3000),
            (1000.0, 4, 3, 3000),
            (333.0, 7, 2, 1234),
            (0.5, 2, 1, 10_000),
            (50_000.0, 8, 5, 3000),
        ] {
            let s = Schedule::new(rate, n, c);
            let end = Duration::from_millis(end_ms);
            let due = s.due_before(end);
            assert!(due == 0 || s.intended(due - 1) < end, "{rate} {n} {c}");
            assert!(s.intended(due) >= end, "{rate} {n} {c}");
        }
    }

    #[test]
    fn the_whole_run_is_rate_times_seconds_statements() {
        let total: u64 = (0..4)
            .map(|c| Schedule::new(2000.0, 4, c).due_before(Duration::from_secs(3)))
            .sum();
        assert_eq!(total, 6000);
    }

    #[test]
    fn a_connection_whose_first_slot_is_past_the_end_has_nothing_due() {
        assert_eq!(
            Schedule::new(1.0, 4, 3).due_before(Duration::from_secs(2)),
            0
        );
    }
}
