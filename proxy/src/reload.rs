//! Topology reloads: from the file (watched), on SIGHUP, and from the admin endpoint.
//!
//! Every source ends in [`Shared::apply_topology`]: the text is parsed and validated, its version must be above
//! the one served, and its keyspace and first shard must stay (clients name the keyspace; the first shard holds the
//! sequence tables and the user locks). Then the next [`Routing`] is built from the current one, keeping the pools
//! of shards that stay, and swapped in whole. A statement in flight finishes on the snapshot it loaded; a
//! transaction keeps the snapshot it started on until it ends. A refused topology changes nothing, is logged with
//! its reason and counted in `shardgate_topology_reload_errors_total`.
//!
//! The file is watched by polling its metadata (modification time, size, inode) every 250 ms: cheap, and it sees
//! an editor's write in place as well as an atomic rename over the file.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use shardgate_topology::{ShardId, Topology};
use tracing::{debug, info, warn};

use crate::server::Shared;

/// How often the topology file's metadata is read.
const POLL: Duration = Duration::from_millis(250);

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        })
    }
}

/// Why a topology was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid topology: {0}")]
    Invalid(#[from] shardgate_topology::TopologyError),
    #[error("version {offered} is not above the version served, {serving}")]
    NotNewer { serving: u64, offered: u64 },
    #[error("the keyspace cannot change on reload (serving {serving:?}, offered {offered:?})")]
    KeyspaceChanged { serving: String, offered: String },
    #[error(
        "the first shard cannot move on reload: it holds the sequence tables and the user locks ({0})"
    )]
    FirstShardMoved(String),
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

impl Shared {
    /// Validates `text` and serves it if it is newer (see the module comment). Returns the version served. The file
    /// and SIGHUP sources pass `same_version_ok`: the file holding the version already served is not a change.
    pub fn apply_topology(
        &self,
        text: &str,
        source: &str,
        same_version_ok: bool,
    ) -> Result<u64, ReloadError> {
        let result = self.try_apply(text);
        match &result {
            Err(ReloadError::NotNewer { serving, offered })
                if same_version_ok && serving == offered =>
            {
                debug!(source, version = serving, "topology unchanged");
                return Ok(*serving);
            }
            Ok(version) => {
                self.topology_reloads.fetch_add(1, Ordering::Relaxed);
                info!(source, version, "topology reloaded");
            }
            Err(e) => {
                self.topology_reload_errors.fetch_add(1, Ordering::Relaxed);
                warn!(source, error = %e, "topology refused; still serving the previous one");
            }
        }
        result
    }

    fn try_apply(&self, text: &str) -> Result<u64, ReloadError> {
        let topology = Topology::from_yaml_str(text)?;
        // One reload at a time: building the next routing from the current one and swapping it must not interleave
        // with another reload.
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.routing.load_full();
        let serving = &current.topology;
        if topology.version() <= serving.version() {
            return Err(ReloadError::NotNewer {
                serving: serving.version(),
                offered: topology.version(),
            });
        }
        if topology.keyspace() != serving.keyspace() {
            return Err(ReloadError::KeyspaceChanged {
                serving: serving.keyspace().to_string(),
                offered: topology.keyspace().to_string(),
            });
        }
        let version = topology.version();
        let topology = Arc::new(topology);
        let next = current.next(Arc::clone(&topology), &self.config, self.workers);
        let first = ShardId(0);
        if next.identity(first) != current.identity(first) {
            return Err(ReloadError::FirstShardMoved(format!(
                "{} becomes {}",
                current.describe(first),
                next.describe(first)
            )));
        }
        self.routing.store(next);
        Ok(version)
    }

    /// Reads the topology file and applies it (SIGHUP, or a change the watcher saw).
    pub fn reload_file(&self, source: &str) -> Result<u64, ReloadError> {
        let path = &self.config.topology.file;
        let stamp = FileStamp::of(path);
        *self
            .file_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stamp;
        let text = std::fs::read_to_string(path).map_err(|error| ReloadError::Read {
            path: path.display().to_string(),
            error,
        });
        match text {
            Ok(text) => self.apply_topology(&text, source, true),
            Err(e) => {
                self.topology_reload_errors.fetch_add(1, Ordering::Relaxed);
                warn!(source, error = %e, "topology refused; still serving the previous one");
                Err(e)
            }
        }
    }

    /// Writes a topology the admin endpoint applied back to the file (write, then rename over it), so that a
    /// restart serves it too, and notes its stamp so the watcher does not read it again.
    pub fn persist_topology(&self, text: &str) -> std::io::Result<()> {
        let path = &self.config.topology.file;
        let tmp = path.with_extension("yaml.shardgate-tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        *self
            .file_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = FileStamp::of(path);
        Ok(())
    }

    /// Notes the file as it is at start.
    pub fn note_file_stamp(&self) {
        *self
            .file_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = FileStamp::of(&self.config.topology.file);
    }
}

/// Watches the topology file until the process exits; a change is applied (a file with the version already
/// served is the one being served, not an error).
pub async fn watch_file(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = FileStamp::of(&shared.config.topology.file);
        let seen = *shared
            .file_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.is_none() || now == seen {
            continue;
        }
        // The outcome is logged and counted where it is decided.
        let _ = shared.reload_file("file change");
    }
}
