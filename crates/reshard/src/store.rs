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
        let mut w = Workflow::new(
            "split-40",
            "app",
            Kind::Split {
                shard: "40-80".into(),
                into: vec!["40-60".into(), "60-80".into()],
            },
        );
        store.save(&w).unwrap();
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
