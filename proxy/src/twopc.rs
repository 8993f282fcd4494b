//! Two-phase commit across shards (`transaction_mode: twopc`): MariaDB XA on the shards, and a durable decision
//! log here, so that a crash between PREPARE and COMMIT is resolved the same way on every shard at the next start.
//!
//! Each transaction gets a global id `sg-<proxy id>-<n>`; each shard it touches is one branch of it (branch
//! qualifier: the shard's index), started with `XA START`. COMMIT ends and prepares every branch, appends
//! `commit <gtrid>` to the log and syncs it to disk — the commit point — then commits the branches and appends
//! `done <gtrid>`. At start-up, every backend's `XA RECOVER` lists the prepared branches: those of this proxy's id
//! whose transaction the log says committed are committed, the others rolled back (their decision was never made).
//! The proxy id is written as the log's first line, so several proxies can share backends as long as each has its
//! own log.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use shardgate_topology::Topology;
use shardgate_wire::WireError;
use tracing::{info, warn};

use crate::backend::{BackendConn, BackendTarget};
use crate::config::Config;

/// Why the decision log or recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum TwopcError {
    #[error("decision log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("decision log {path} line {line}: {what}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("recovering prepared transactions on {backend}: {detail}")]
    Recover { backend: String, detail: String },
}

/// The decision log of this proxy.
pub struct DecisionLog {
    path: PathBuf,
    id: String,
    file: Mutex<File>,
    next: AtomicU64,
}

/// A test hook: `SHARDGATE_FAULT=twopc-after-prepare` or `twopc-after-decision` makes the process abort at that
/// point of a two-phase commit, to prove recovery. Not for production use.
pub fn fault(point: &str) {
    if std::env::var("SHARDGATE_FAULT").is_ok_and(|v| v == point) {
        warn!(point, "SHARDGATE_FAULT: aborting");
        std::process::abort();
    }
}

impl DecisionLog {
    /// Opens (or creates) the log; returns it with the transactions decided as committed but not known done.
    pub fn open(path: &Path) -> Result<(DecisionLog, HashSet<String>), TwopcError> {
        let io = |source| TwopcError::Io {
            path: path.to_owned(),
            source,
        };
        let mut id = None;
        let mut committed = HashSet::new();
        if path.exists() {
            let reader = BufReader::new(File::open(path).map_err(io)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line.map_err(io)?;
                let corrupt = |what: &str| TwopcError::Corrupt {
                    path: path.to_owned(),
                    line: n + 1,
                    what: what.to_string(),
                };
                match line.split_once(' ') {
                    Some(("id", v)) if id.is_none() => id = Some(v.to_string()),
                    Some(("commit", g)) => {
                        committed.insert(g.to_string());
                    }
                    Some(("done", g)) => {
                        committed.remove(g);
                    }
                    // A torn last line: its record was never synced, so it decided nothing.
                    _ if line.is_empty() => {}
                    _ => return Err(corrupt(&format!("unreadable record {line:?}"))),
                }
            }
        }
        let fresh = id.is_none();
        let id = match id {
            Some(id) => id,
            None => {
                let nonce = shardgate_wire::auth::new_nonce().map_err(|e| {
                    io(std::io::Error::other(format!(
                        "no randomness for a proxy id: {e}"
                    )))
                })?;
                nonce[..6].iter().map(|b| format!("{b:02x}")).collect()
            }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if fresh {
            writeln!(file, "id {id}").map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let log = DecisionLog {
            path: path.to_owned(),
            id,
            file: Mutex::new(file),
            next: AtomicU64::new(1),
        };
        Ok((log, committed))
    }

    /// A global transaction id no other transaction of this proxy's log has.
    pub fn new_gtrid(&self) -> String {
        // The start time keeps ids of a restarted proxy apart from those before the restart.
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{epoch}-{n}", self.prefix())
    }

    /// What every global id of this proxy starts with.
    fn prefix(&self) -> String {
        format!("sg-{}-", self.id)
    }

    /// The commit point: the decision is on disk when this returns.
    pub fn record_commit(&self, gtrid: &str) -> Result<(), TwopcError> {
        self.append(&format!("commit {gtrid}\n"), true)
    }

    /// Every branch committed: recovery has nothing left to do for it.
    pub fn record_done(&self, gtrid: &str) -> Result<(), TwopcError> {
        self.append(&format!("done {gtrid}\n"), false)
    }

    fn append(&self, record: &str, sync: bool) -> Result<(), TwopcError> {
        let io = |source| TwopcError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = self
            .file
            .lock()
            .map_err(|_| io(std::io::Error::other("decision log lock poisoned")))?;
        file.write_all(record.as_bytes()).map_err(io)?;
        if sync {
            file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// Resolves every prepared branch of this proxy on every backend of `topology`: committed if the log decided
    /// so, rolled back otherwise. Returns how many branches were committed and rolled back.
    pub async fn recover(
        &self,
        committed: &HashSet<String>,
        topology: &Topology,
        config: &Config,
    ) -> Result<(usize, usize), TwopcError> {
        let prefix = self.prefix();
        let (mut commits, mut rollbacks) = (0, 0);
        for (index, backend) in topology.backends().iter().enumerate() {
            let Some(shard) = topology.shards().iter().find(|s| s.backend == index) else {
                continue;
            };
            let name = format!("{} ({}:{})", backend.name, backend.host, backend.port);
            let failed = |detail: String| TwopcError::Recover {
                backend: name.clone(),
                detail,
            };
            let target = BackendTarget {
                host: backend.host.clone(),
                port: backend.port,
                database: shard.database.clone(),
                user: config.backend.user.clone(),
                password: config.backend.password.clone(),
                connect_timeout: config.pool.connect_timeout(),
                reply_timeout: None,
            };
            let mut conn = BackendConn::connect(&target, false)
                .await
                .map_err(|e| failed(e.to_string()))?;
            for (gtrid, bqual) in prepared_branches(&mut conn)
                .await
                .map_err(|e| failed(e.to_string()))?
            {
                if !gtrid.starts_with(&prefix) {
                    continue;
                }
                let commit = committed.contains(&gtrid);
                let verb = if commit { "COMMIT" } else { "ROLLBACK" };
                let sql = format!("XA {verb} {}", xid(&gtrid, &bqual));
                conn.run_internal(&sql)
                    .await
                    .map_err(|e| failed(format!("{sql}: {e}")))?;
                info!(backend = %name, %gtrid, %bqual, decision = verb, "resolved a prepared transaction branch");
                if commit {
                    commits += 1;
                } else {
                    rollbacks += 1;
                }
            }
        }
        self.compact()?;
        Ok((commits, rollbacks))
    }

    /// Every transaction in the log is resolved: start it over with just the proxy id, so it does not grow
    /// without bound across restarts.
    fn compact(&self) -> Result<(), TwopcError> {
        let io = |source| TwopcError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = self
            .file
            .lock()
            .map_err(|_| io(std::io::Error::other("decision log lock poisoned")))?;
        file.set_len(0).map_err(io)?;
        writeln!(file, "id {}", self.id).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

/// `'gtrid','bqual'` as XA statements take it (both are the proxy's own ASCII ids).
pub fn xid(gtrid: &str, bqual: &str) -> String {
    format!("'{gtrid}','{bqual}'")
}

/// The prepared branches `XA RECOVER` lists on a server, as (gtrid, bqual).
async fn prepared_branches(conn: &mut BackendConn) -> Result<Vec<(String, String)>, WireError> {
    let rows = conn.query_rows("XA RECOVER").await?;
    let mut out = Vec::new();
    for row in rows {
        // formatID, gtrid_length, bqual_length, data (gtrid then bqual, concatenated).
        let cell = |i: usize| row.get(i).and_then(|(_, v)| v.clone()).unwrap_or_default();
        let (Ok(gl), Ok(bl)) = (cell(1).parse::<usize>(), cell(2).parse::<usize>()) else {
            continue;
        };
        let data = cell(3);
        if let (Some(g), Some(b)) = (data.get(..gl), data.get(gl..gl + bl)) {
            out.push((g.to_string(), b.to_string()));
        }
    }
    Ok(out)
}
