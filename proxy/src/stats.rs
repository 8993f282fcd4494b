//! Counters and latency histograms the data path keeps for `/metrics`.
//!
//! Each worker thread writes its own cache-line-aligned block (relaxed atomics, no sharing between cores on the hot
//! path); `/metrics` sums the blocks when it is scraped. Labels are bounded: statement kinds and routes are fixed
//! lists, shards are the topology's, error codes are the few a deployment sees (kept in a map written only on the
//! error path).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use shardgate_sql::{Analysis, Route, StatementKind};

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`), from 100 µs to 10 s.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A latency histogram with fixed buckets.
#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last counts those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram's totals, cumulative per bucket as Prometheus wants them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds this histogram's totals into `into`.
    fn add_to(&self, into: &mut HistogramSnapshot) {
        if into.cumulative.is_empty() {
            into.cumulative = vec![0; BUCKETS.len() + 1];
        }
        let mut running = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            running += b.load(Ordering::Relaxed);
            into.cumulative[i] += running;
        }
        into.count += running;
        into.sum_seconds += self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    }
}

/// Statement kinds, as labels.
pub const KINDS: [&str; 10] = [
    "select",
    "insert",
    "update",
    "delete",
    "replace",
    "ddl",
    "set",
    "transaction",
    "show",
    "other",
];

/// Where statements ran, as labels: one shard, several, every shard for a scatter or for a reference write, or
/// answered by the proxy itself (session statements, refusals, errors before routing).
pub const ROUTES: [&str; 5] = ["single", "multi", "scatter", "all", "proxy"];

/// A statement's kind and route, as indexes into [`KINDS`] and [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub kind: usize,
    pub route: usize,
}

impl Class {
    /// What a statement is before (or without) analysis.
    pub const UNROUTED: Class = Class { kind: 9, route: 4 };

    pub fn of(analysis: &Analysis) -> Class {
        let kind = match &analysis.kind {
            StatementKind::Select => 0,
            StatementKind::Insert => 1,
            StatementKind::Update => 2,
            StatementKind::Delete => 3,
            StatementKind::Replace => 4,
            StatementKind::Ddl { .. } => 5,
            StatementKind::Set(_)
            | StatementKind::SetNames { .. }
            | StatementKind::SetCharacterSet { .. }
            | StatementKind::Use(_) => 6,
            StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback => 7,
            StatementKind::Show => 8,
            _ => 9,
        };
        let route = match &analysis.route {
            Route::Tenant { .. } | Route::AnyShard | Route::NeedsIds { .. } => 0,
            Route::Scatter { keys: Some(_), .. } | Route::SplitInsert { .. } => 1,
            Route::Scatter { keys: None, .. } => 2,
            Route::EveryShard { .. } => 3,
            _ => 4,
        };
        // DDL fans out to every shard whatever its route says.
        let route = if kind == 5 { 3 } else { route };
        Class { kind, route }
    }
}

/// One worker's block.
#[repr(align(128))]
#[derive(Default)]
pub struct WorkerStats {
    statements: [[AtomicU64; ROUTES.len()]; KINDS.len()],
    /// Time from a command's arrival to the end of its reply, for statements (COM_QUERY, COM_STMT_EXECUTE).
    pub latency: Histogram,
    /// Time statements waited for a backend connection.
    pub pool_wait: Histogram,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl WorkerStats {
    pub fn count(&self, class: Class) {
        self.statements[class.kind][class.route].fetch_add(1, Ordering::Relaxed);
    }
}

/// Statements meeting resharding (rare: shared by every worker).
#[derive(Default)]
pub struct ReshardStats {
    /// Statements a cutover held.
    pub held: AtomicU64,
    /// Held statements released by `hold_max_ms` rather than by the workflow.
    pub hold_timeouts: AtomicU64,
    /// Statements refused while a source still held moved rows.
    pub refused: AtomicU64,
    /// How long held statements waited.
    pub hold_time: Histogram,
    /// Open transactions and running statements that touched keys a workflow is moving: a cutover fences the source
    /// once no proxy counts any.
    pub inflight: std::sync::Arc<AtomicU64>,
}

/// Counts a transaction or a statement in [`ReshardStats::inflight`] for as long as it lives.
pub struct Inflight(std::sync::Arc<AtomicU64>);

impl Inflight {
    pub fn new(counter: &std::sync::Arc<AtomicU64>) -> Self {
        // SeqCst: a statement counts itself before it looks at the topology again, and a controller reads the
        // count only after the proxy serves the hold; one of the two sees the other.
        counter.fetch_add(1, Ordering::SeqCst);
        Inflight(std::sync::Arc::clone(counter))
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Everything, for every worker (per-shard backend times live with the shards' pools, in the routing).
pub struct Stats {
    workers: Vec<WorkerStats>,
    errors: Mutex<BTreeMap<u16, u64>>,
    pub reshard: ReshardStats,
}

impl Stats {
    pub fn new(workers: usize) -> Self {
        Stats {
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            errors: Mutex::new(BTreeMap::new()),
            reshard: ReshardStats::default(),
        }
    }

    /// The block of `worker`.
    pub fn worker(&self, worker: usize) -> &WorkerStats {
        &self.workers[worker % self.workers.len()]
    }

    /// Counts an error sent to a client (the proxy's own or a backend's).
    pub fn error(&self, code: u16) {
        *self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(code)
            .or_default() += 1;
    }

    /// Statements so far by kind and route (indexes into [`KINDS`], [`ROUTES`]).
    pub fn statements(&self) -> Vec<(Class, u64)> {
        let mut out = Vec::new();
        for kind in 0..KINDS.len() {
            for route in 0..ROUTES.len() {
                let n: u64 = self
                    .workers
                    .iter()
                    .map(|w| w.statements[kind][route].load(Ordering::Relaxed))
                    .sum();
                if n > 0 {
                    out.push((Class { kind, route }, n));
                }
            }
        }
        out
    }

    pub fn errors(&self) -> BTreeMap<u16, u64> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn latency(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        self.workers.iter().for_each(|w| w.latency.add_to(&mut s));
        s
    }

    pub fn pool_wait(&self) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        self.workers.iter().for_each(|w| w.pool_wait.add_to(&mut s));
        s
    }

    /// The totals of one histogram.
    pub fn snapshot(h: &Histogram) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        h.add_to(&mut s);
        s
    }

    pub fn bytes(&self) -> (u64, u64) {
        let sum = |f: fn(&WorkerStats) -> &AtomicU64| {
            self.workers
                .iter()
                .map(|w| f(w).load(Ordering::Relaxed))
                .sum()
        };
        (sum(|w| &w.bytes_in), sum(|w| &w.bytes_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_an_overflow_bucket() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut s = HistogramSnapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], 1, "≤ 100 µs");
        assert_eq!(s.cumulative[5], 2, "≤ 5 ms");
        assert_eq!(s.cumulative[BUCKETS.len() - 1], 2, "≤ 10 s");
        assert_eq!(s.cumulative[BUCKETS.len()], 3, "+Inf");
        assert!((s.sum_seconds - 20.00305).abs() < 1e-6);
    }

    #[test]
    fn workers_are_summed_and_errors_counted_by_code() {
        let stats = Stats::new(2);
        let class = Class { kind: 0, route: 0 };
        stats.worker(0).count(class);
        stats.worker(1).count(class);
        stats.error(1064);
        stats.error(1064);
        assert_eq!(stats.statements(), [(class, 2)]);
        assert_eq!(stats.errors().get(&1064), Some(&2));
    }
}
