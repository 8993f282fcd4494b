//! The plan cache: fingerprint → plan, shared by every session.
//!
//! Bounded: when it is full, about half of its entries (arbitrary ones) are dropped
//! before the next insert. Concurrent inserts may overshoot the bound by the number
//! of threads inserting at once. Lookups take a shard read lock of the `DashMap`
//! just long enough to clone an `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::plan::Plan;

/// Plans by fingerprint, with hit and miss counters.
#[derive(Debug)]
pub(crate) struct PlanCache {
    /// The plans.
    map: DashMap<Box<str>, Arc<Plan>>,
    /// Most entries kept; 0 disables caching.
    capacity: usize,
    /// Statements answered from a plan.
    hits: AtomicU64,
    /// Statements that were parsed.
    misses: AtomicU64,
}

impl PlanCache {
    /// An empty cache holding at most `capacity` plans.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The plan for `fingerprint`, if one was made under `generation` with
    /// `slot_count` slots.
    pub(crate) fn get(
        &self,
        fingerprint: &str,
        generation: u64,
        slot_count: usize,
    ) -> Option<Arc<Plan>> {
        let plan = Arc::clone(self.map.get(fingerprint)?.value());
        (plan.generation == generation && plan.slot_count == slot_count).then_some(plan)
    }

    /// Stores `plan` under `fingerprint`, making room first if the cache is full.
    pub(crate) fn insert(&self, fingerprint: &str, plan: Arc<Plan>) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(fingerprint) {
            let mut keep = false;
            self.map.retain(|_, _| {
                keep = !keep;
                keep
            });
        }
        self.map.insert(fingerprint.into(), plan);
    }

    /// Counts a statement answered from a plan.
    pub(crate) fn record_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a statement that had to be parsed.
    pub(crate) fn record_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Statements answered from a plan so far.
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Statements parsed so far.
    pub(crate) fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Plans held now.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::StatementKind;
    use crate::plan::PlanRoute;

    fn plan(generation: u64) -> Arc<Plan> {
        Arc::new(Plan {
            generation,
            slot_count: 0,
            kind: StatementKind::Select,
            tables: Arc::new([]),
            schema: None,
            calls_database: false,
            route: PlanRoute::AnyShard,
            ids: None,
        })
    }

    #[test]
    fn full_cache_evicts_before_inserting() {
        let cache = PlanCache::new(8);
        for n in 0..100 {
            cache.insert(&format!("SELECT {n}"), plan(1));
            assert!(cache.len() <= 8);
        }
        assert!(cache.get("SELECT 99", 1, 0).is_some());
    }

    #[test]
    fn plan_of_another_generation_is_not_returned() {
        let cache = PlanCache::new(8);
        cache.insert("SELECT ?", plan(1));
        assert!(cache.get("SELECT ?", 2, 0).is_none());
        assert!(cache.get("SELECT ?", 1, 1).is_none());
        assert!(cache.get("SELECT ?", 1, 0).is_some());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = PlanCache::new(0);
        cache.insert("SELECT ?", plan(1));
        assert_eq!(cache.len(), 0);
    }
}
