//! The live topology: one atomically swapped snapshot.
//!
//! Place in the data path: each statement calls [`TopologyHandle::load`] once and routes on that
//! snapshot until it finishes, so a reload never changes a statement's shard halfway. Loads are
//! lock-free; stores (reload, admin endpoint, resharding) are rare and never block readers. This
//! module must not know where topologies come from (file, SIGHUP, HTTP) nor who reads them.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::{Topology, TopologyError};

/// The snapshot being served, replaceable at any time by a newer version.
#[derive(Debug)]
pub struct TopologyHandle {
    /// The current snapshot.
    current: ArcSwap<Topology>,
}

impl TopologyHandle {
    /// Starts serving `topology`.
    pub fn new(topology: Topology) -> Self {
        TopologyHandle {
            current: ArcSwap::from_pointee(topology),
        }
    }

    /// The current snapshot; keep it for the whole statement.
    pub fn load(&self) -> Arc<Topology> {
        self.current.load_full()
    }

    /// Serves `topology` from now on, if its version is above the one being served; otherwise
    /// refuses with [`TopologyError::VersionNotGrowing`] and keeps the current snapshot.
    ///
    /// Concurrent stores are safe: the check and the swap are one compare-and-swap, so a lower
    /// version can never replace a higher one that won a race.
    pub fn store(&self, topology: Topology) -> Result<(), TopologyError> {
        let next = Arc::new(topology);
        loop {
            let current = self.current.load();
            if next.version() <= current.version() {
                return Err(TopologyError::VersionNotGrowing {
                    serving: current.version(),
                    offered: next.version(),
                });
            }
            let previous = self.current.compare_and_swap(&*current, Arc::clone(&next));
            if Arc::ptr_eq(&previous, &current) {
                return Ok(());
            }
        }
    }

    /// The version being served.
    pub fn version(&self) -> u64 {
        self.current.load().version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(version: u64) -> Topology {
        Topology::from_yaml_str(&format!(
            "version: {version}\nkeyspace: app\nbackends: [{{name: db0, host: h, port: 1}}]\n\
             shards: [{{name: '-', backend: db0, database: app_0}}]\n"
        ))
        .unwrap()
    }

    #[test]
    fn store_refuses_a_version_that_does_not_grow() {
        let handle = TopologyHandle::new(topology(5));
        for stale in [4, 5] {
            let err = handle.store(topology(stale)).unwrap_err();
            assert!(
                matches!(err, TopologyError::VersionNotGrowing { serving: 5, offered } if offered == stale)
            );
            assert!(err.to_string().contains("serving version 5"), "{err}");
        }
        assert_eq!(handle.version(), 5);
    }

    #[test]
    fn store_swaps_in_a_newer_version_while_old_snapshots_stay_valid() {
        let handle = TopologyHandle::new(topology(1));
        let in_flight = handle.load();
        handle.store(topology(2)).unwrap();
        assert_eq!(in_flight.version(), 1);
        assert_eq!(handle.load().version(), 2);
        assert_eq!(handle.version(), 2);
    }

    #[test]
    fn concurrent_stores_leave_the_highest_version() {
        let handle = Arc::new(TopologyHandle::new(topology(0)));
        let threads: Vec<_> = (1..=8)
            .map(|v| {
                let handle = Arc::clone(&handle);
                let t = topology(v);
                std::thread::spawn(move || {
                    let _ = handle.store(t);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(handle.version(), 8);
    }
}
