//! Where workflow records live: one JSON file per workflow in a folder, each written whole (a new file renamed over
//! the old one), so a controller killed mid-write leaves the previous record, never half of one.

use std::path::{Path, PathBuf};

use crate::Workflow;

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a workflow record: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("workflow ids are letters, digits, '-' and '_': {0:?}")]
    BadId(String),
}

/// Whether process `pid` runs (a zombie, exited but not yet reaped by its parent, does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A folder of workflow records.
#[derive(Debug, Clone)]
pub struct WorkflowStore {
    dir: PathBuf,
}

impl WorkflowStore {
    pub fn new(dir: &Path) -> Self {
        WorkflowStore {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        let ok = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(StoreError::BadId(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Writes `workflow` atomically.
    pub fn save(&self, workflow: &Workflow) -> Result<(), StoreError> {
        let path = self.path(&workflow.id)?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let text =
            serde_json::to_string_pretty(workflow).map_err(|source| StoreError::Corrupt {
                path: path.clone(),
                source,
            })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// The record of `id`, if there is one.
    pub fn load(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
        let path = self.path(id)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    fn flag(&self, id: &str, what: &str) -> Result<PathBuf, StoreError> {
        Ok(self.path(id)?.with_extension(what))
    }

    /// Asks the controller of `id` to stop copying (`true`) or to go on. Kept beside the record, not in it, so that
    /// the request and the controller's checkpoints never overwrite each other.
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<(), StoreError> {
        self.set_flag(id, "paused", paused)
    }

    /// Creates (`on`) or removes the flag file `<id>.<what>`.
    fn set_flag(&self, id: &str, what: &str, on: bool) -> Result<(), StoreError> {
        let path = self.flag(id, what)?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        if on {
            std::fs::write(&path, format!("{what}\n")).map_err(io)
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            }
        }
    }

    pub fn is_paused(&self, id: &str) -> bool {
        self.flag(id, "paused").is_ok_and(|p| p.exists())
    }

    /// Asks a running controller of `id` to stop so that the workflow can be cancelled (`false`: the request is
    /// withdrawn, once the cancel runs).
    pub fn request_cancel(&self, id: &str, on: bool) -> Result<(), StoreError> {
        self.set_flag(id, "cancel", on)
    }

    pub fn cancel_requested(&self, id: &str) -> bool {
        self.flag(id, "cancel").is_ok_and(|p| p.exists())
    }

    /// Where the controller of `id` writes its metrics (Prometheus text format, for a node exporter's textfile
    /// collector).
    pub fn metrics_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        self.flag(id, "prom")
    }

    /// Makes this process the controller of `id`; refused while another live process is (its pid is in the lock
    /// file and /proc knows it). A lock left by a killed controller is taken over.
    pub fn claim(&self, id: &str) -> Result<Result<(), u32>, StoreError> {
        let path = self.flag(id, "lock")?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let me = std::process::id();
        let holder = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if let Some(pid) =
            holder.filter(|&pid| pid != me && Path::new(&format!("/proc/{pid}")).exists())
        {
            return Ok(Err(pid));
        }
        let tmp = path.with_extension(format!("lock.{me}"));
        std::fs::write(&tmp, format!("{me}\n")).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(Ok(()))
    }

    /// The pid of the live controller of `id`, if any.
    pub fn controller(&self, id: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.flag(id, "lock").ok()?).ok()?;
        let pid = text.trim().parse::<u32>().ok()?;
        alive(pid).then_some(pid)
    }

    /// Every record, by id.
    pub fn list(&self) -> Result<Vec<Workflow>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(w) = self.load(&id)? {
                out.push(w);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Phase};

    #[test]
    fn records_are_saved_whole_and_read_back_and_bad_ids_are_refused() {
        let dir = std::env::temp_dir().join(format!("reshard-store-{}", std::process::id()));
        let store = WorkflowStore::new(&dir);
        assert!(store.list().unwrap().is_empty());
        let shard = |name: &str| crate::NewShard {
            name: name.into(),
            backend: "db0".into(),
            database: format!("app_{name}"),
        };
        let settings = crate::Settings {
            chunk_rows: 10,
            rows_per_second: 0,
            hold_ms: 2000,
            admins: vec![],
            user: "root".into(),
        };
        let kind = Kind::Split {
            shard: "40-80".into(),
            into: vec![shard("40-60"), shard("60-80")],
        };
        let mut w = Workflow::new("split-40", "app", kind, settings, 0);
        store.save(&w).unwrap();
        assert!(!store.is_paused("split-40"));
        store.set_paused("split-40", true).unwrap();
        assert!(store.is_paused("split-40"));
        store.set_paused("split-40", false).unwrap();
        assert!(!store.is_paused("split-40"));
        assert_eq!(store.claim("split-40").unwrap(), Ok(()));
        assert_eq!(store.controller("split-40"), Some(std::process::id()));
        std::fs::write(dir.join("split-40.lock"), "1\n").unwrap();
        assert_eq!(store.claim("split-40").unwrap(), Err(1), "pid 1 is alive");
        std::fs::write(dir.join("split-40.lock"), "4194999\n").unwrap();
        assert_eq!(
            store.claim("split-40").unwrap(),
            Ok(()),
            "a dead controller's lock is taken over"
        );
        w.advance().unwrap();
        store.save(&w).unwrap();
        let back = store.load("split-40").unwrap().unwrap();
        assert_eq!(back.phase, Phase::DualWrite);
        assert_eq!(store.list().unwrap(), [back]);
        assert!(store.load("nope").unwrap().is_none());
        assert!(matches!(store.load("../etc"), Err(StoreError::BadId(_))));
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        assert!(matches!(
            store.load("broken"),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
