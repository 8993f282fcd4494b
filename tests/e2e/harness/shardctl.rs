//! The real `shardctl` binary as a child process, for resharding tests: runs `shardctl reshard …` against a
//! cluster's proxy, reads the workflow record it keeps, and kills it (SIGKILL) where a test wants it dead.
//!
//! Every invocation's stdout and stderr go to files (never to pipes, which a chatty controller could fill while the
//! test is busy elsewhere) and are appended to `$CARGO_TARGET_TMPDIR/e2e-logs/<test>.shardctl.log` when it ends;
//! a failing test prints the last lines of that log. The workflow records live in a private state folder, one
//! `<workflow>.json` each, written whole by the controller, so a test may poll them without racing a writer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::deadline::Deadline;
use super::proxy::Proxy;

/// How long one controller run may take before the test gives up on it (the test's own deadline is longer).
pub const RUN_ALLOWANCE: Duration = Duration::from_secs(150);

/// How often a [`PhaseWatch`] reads the record.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// How many log lines a failing test prints.
const FAILURE_TAIL_LINES: usize = 120;

/// The `shardctl` binary Cargo built beside the proxy; panics when it was not built.
pub fn binary() -> PathBuf {
    let path = Proxy::binary().with_file_name("shardctl");
    assert!(
        path.is_file(),
        "{} is missing: build it with cargo build -p shardctl",
        path.display()
    );
    path
}

/// A controller's state folder and the proxies it talks to; runs `shardctl` commands for one test.
pub struct Shardctl {
    /// Where the workflow records live (`--state-dir`).
    state: TempDir,
    /// Scratch folder for the output files of each invocation.
    scratch: TempDir,
    /// `127.0.0.1:PORT` of each proxy's admin endpoint (`--admin`).
    admins: Vec<String>,
    /// The test's shardctl log.
    log: PathBuf,
    /// Invocations so far, to name output files.
    runs: Mutex<u32>,
}

/// One finished invocation.
#[derive(Debug)]
pub struct Finished {
    /// The command line after `shardctl`.
    pub args: Vec<String>,
    /// How it ended.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Finished {
    /// The exit code; `None` when a signal ended it.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics unless the command exited 0.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "shardctl {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A controller running in the background.
pub struct Running {
    /// The process; killed if the handle drops while it runs.
    child: tokio::process::Child,
    /// Its command line after `shardctl`.
    args: Vec<String>,
    /// Its output files.
    out: PathBuf,
    err: PathBuf,
    /// When it started.
    started: Instant,
    /// The test's shardctl log.
    log: PathBuf,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether it has exited (without reaping more than `try_wait` does).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills it with SIGKILL (no chance to clean up: a crash) and reaps it, so that its pid is gone from `/proc`
    /// before a successor checks the workflow's lock.
    pub async fn kill9(self) -> Finished {
        let mut this = self;
        let _ = this.child.start_kill();
        this.wait(Duration::from_secs(10)).await
    }

    /// Waits up to `allowance` for it to exit by itself; panics (after killing it) when it does not.
    pub async fn wait(mut self, allowance: Duration) -> Finished {
        let status = match tokio::time::timeout(allowance, self.child.wait()).await {
            Ok(status) => status.expect("cannot wait for shardctl"),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                panic!(
                    "shardctl {} did not finish within {allowance:?}; its output:\n{}\n{}",
                    self.args.join(" "),
                    read(&self.out),
                    read(&self.err)
                )
            }
        };
        let finished = Finished {
            args: std::mem::take(&mut self.args),
            status,
            stdout: read(&self.out),
            stderr: read(&self.err),
            took: self.started.elapsed(),
        };
        append_log(&self.log, &finished);
        finished
    }
}

impl Shardctl {
    /// A controller for the proxy `proxy` (its admin endpoint), with an empty state folder.
    pub fn new(proxy: &Proxy) -> Shardctl {
        let state = tempfile::Builder::new()
            .prefix("shardctl-state-")
            .tempdir()
            .expect("cannot create a state folder for shardctl");
        let scratch = tempfile::Builder::new()
            .prefix("shardctl-out-")
            .tempdir()
            .expect("cannot create a folder for shardctl's output");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
        let _ = std::fs::create_dir_all(&dir);
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", ".");
        let log = dir.join(format!("{test}.shardctl.log"));
        let _ = std::fs::write(&log, "");
        Shardctl {
            state,
            scratch,
            admins: vec![format!("127.0.0.1:{}", proxy.admin_port())],
            log,
            runs: Mutex::new(0),
        }
    }

    /// The `--state-dir`.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// `--admin 127.0.0.1:PORT` for each proxy.
    pub fn admin_args(&self) -> Vec<String> {
        self.admins
            .iter()
            .flat_map(|a| ["--admin".to_string(), a.clone()])
            .collect()
    }

    /// Starts `shardctl reshard ARGS --state-dir DIR` with `env` added (e.g. `SHARDCTL_STALL`).
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.insert(0, "reshard".to_string());
        args.push("--state-dir".to_string());
        args.push(self.state_dir().display().to_string());
        let n = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            *runs += 1;
            *runs
        };
        let out = self.scratch.path().join(format!("{n:03}.out"));
        let err = self.scratch.path().join(format!("{n:03}.err"));
        let file = |p: &Path| File::create(p).expect("cannot create an output file for shardctl");
        let child = tokio::process::Command::new(binary())
            .args(&args)
            .env_remove("SHARDCTL_PASSWORD")
            .env_remove("SHARDCTL_STALL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .kill_on_drop(true)
            .spawn()
            .expect("cannot spawn shardctl");
        Running {
            child,
            args,
            out,
            err,
            started: Instant::now(),
            log: self.log.clone(),
        }
    }

    /// Runs `shardctl reshard ARGS --admin … --state-dir DIR` (a command that creates a workflow) to its end.
    pub async fn run_creating(&self, args: &[&str]) -> Finished {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(self.admin_args());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run(&all, &[]).await
    }

    /// Runs `shardctl reshard ARGS --state-dir DIR` to its end (within [`RUN_ALLOWANCE`]).
    pub async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Finished {
        self.spawn(args, env).wait(RUN_ALLOWANCE).await
    }

    /// The record of `workflow` as `shardctl reshard status --workflow ID --json` prints it.
    pub async fn status(&self, workflow: &str) -> Record {
        let done = self
            .run(&["status", "--workflow", workflow, "--json"], &[])
            .await;
        done.assert_ok();
        let value: serde_json::Value =
            serde_json::from_str(done.stdout.trim()).unwrap_or_else(|e| {
                panic!(
                    "status --json printed no JSON object ({e}):\n{}",
                    done.stdout
                )
            });
        assert!(
            value.is_object(),
            "status --workflow --json: one object, got {value}"
        );
        Record(value)
    }

    /// The record file of `workflow` as it is now; `None` before the controller wrote it.
    pub fn record(&self, workflow: &str) -> Option<Record> {
        read_record(&self.state_dir().join(format!("{workflow}.json")))
    }

    /// Waits until the record of `workflow` satisfies `done`, panicking after `allowance` or when `running`
    /// (the controller expected to get there) exits first.
    pub async fn wait_for(
        &self,
        workflow: &str,
        what: &str,
        allowance: Duration,
        running: Option<&mut Running>,
        done: impl Fn(&Record) -> bool,
    ) -> Record {
        let deadline = Deadline::after(allowance);
        let mut running = running;
        loop {
            if let Some(record) = self.record(workflow)
                && done(&record)
            {
                return record;
            }
            if let Some(r) = running.as_deref_mut()
                && r.has_exited()
            {
                // One more look: it may have written the record and exited in between.
                if let Some(record) = self.record(workflow)
                    && done(&record)
                {
                    return record;
                }
                let args = r.args.join(" ");
                panic!(
                    "{what}: shardctl {args} exited first; record: {:?}\nstdout:\n{}\nstderr:\n{}",
                    self.record(workflow).map(|r| r.0),
                    read(&r.out),
                    read(&r.err)
                );
            }
            assert!(
                !deadline.expired(),
                "{what}: not within {allowance:?}; record: {:?}",
                self.record(workflow).map(|r| r.0)
            );
            deadline.pause().await;
        }
    }

    /// Starts watching the record of `workflow`, noting when each phase was first seen.
    pub fn watch(&self, workflow: &str) -> PhaseWatch {
        let path = self.state_dir().join(format!("{workflow}.json"));
        let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
        let order: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let (seen2, order2) = (Arc::clone(&seen), Arc::clone(&order));
        let task = tokio::spawn(async move {
            loop {
                if let Some(phase) = read_record(&path).map(|r| r.phase()) {
                    let now = Instant::now();
                    let mut seen = seen2.lock().unwrap_or_else(|p| p.into_inner());
                    let mut order = order2.lock().unwrap_or_else(|p| p.into_inner());
                    if order.last().is_none_or(|(last, _)| *last != phase) {
                        order.push((phase.clone(), now));
                    }
                    seen.entry(phase).or_insert(now);
                }
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
        });
        PhaseWatch { seen, order, task }
    }
}

impl Drop for Shardctl {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = read(&self.log);
            let tail: Vec<&str> = log.lines().rev().take(FAILURE_TAIL_LINES).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- shardctl (full log: {}) ---\n{}",
                self.log.display(),
                tail.join("\n")
            );
            // Output of invocations still running (or killed by the test) is in the scratch folder only.
            let mut outputs: Vec<PathBuf> = std::fs::read_dir(self.scratch.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            outputs.sort();
            for path in outputs {
                let text = read(&path);
                let lines: Vec<&str> = text.lines().rev().take(30).collect();
                if !lines.is_empty() {
                    let lines: Vec<&str> = lines.into_iter().rev().collect();
                    eprintln!("--- {} (tail) ---\n{}", path.display(), lines.join("\n"));
                }
            }
            for record in std::fs::read_dir(self.state.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if record.path().extension().is_some_and(|e| e == "json") {
                    eprintln!(
                        "--- {} ---\n{}",
                        record.path().display(),
                        read(&record.path())
                    );
                }
            }
        }
    }
}

/// A workflow record, as JSON (the tests read it the way an operator's script would).
#[derive(Debug, Clone)]
pub struct Record(pub serde_json::Value);

impl Record {
    /// `phase`.
    pub fn phase(&self) -> String {
        self.str("phase").unwrap_or_default()
    }

    /// A string field, `None` when absent or null.
    pub fn str(&self, field: &str) -> Option<String> {
        self.0.get(field)?.as_str().map(str::to_string)
    }

    /// A number field (0 when absent).
    pub fn num(&self, field: &str) -> f64 {
        self.0.get(field).and_then(|v| v.as_f64()).unwrap_or(0.0)
    }

    /// The `tables` entries.
    pub fn tables(&self) -> Vec<serde_json::Value> {
        self.0
            .get("tables")
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// Sum of a numeric field over `tables` (`rows_copied`, `rows_estimated`, `rows_cleaned`).
    pub fn tables_sum(&self, field: &str) -> u64 {
        self.tables()
            .iter()
            .filter_map(|t| t.get(field)?.as_u64())
            .sum()
    }

    /// The `cutovers` entries.
    pub fn cutovers(&self) -> Vec<serde_json::Value> {
        self.0
            .get("cutovers")
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap_or_default()
    }

    /// Asserts the workflow ended in `phase` after a verify pass found every chunk equal.
    pub fn assert_ended(&self, phase: &str) {
        assert_eq!(self.phase(), phase, "{:?}", self.0);
        assert!(
            self.verify_clean(),
            "verify ended clean: {:?}",
            self.0["verify"]
        );
    }

    /// `verify.clean`.
    pub fn verify_clean(&self) -> bool {
        self.0
            .pointer("/verify/clean")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// Phases of one workflow as a background task saw them (polling its record every 20 ms).
pub struct PhaseWatch {
    /// When each phase was first seen.
    seen: Arc<Mutex<BTreeMap<String, Instant>>>,
    /// Every change of phase, in order.
    order: Arc<Mutex<Vec<(String, Instant)>>>,
    /// The polling task; aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl PhaseWatch {
    /// When `phase` was first seen.
    pub fn first_seen(&self, phase: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(phase)
            .copied()
    }

    /// Every stretch the record spent in `phase`: from when it was seen to when the next phase was (or now).
    pub fn spans(&self, phase: &str) -> Vec<(Instant, Instant)> {
        let order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        order
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| p == phase)
            .map(|(i, (_, at))| (*at, order.get(i + 1).map_or_else(Instant::now, |n| n.1)))
            .collect()
    }

    /// The phases seen, in order (a phase seen again after another appears again).
    pub fn sequence(&self) -> Vec<String> {
        let order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        order.iter().map(|(p, _)| p.clone()).collect()
    }
}

impl Drop for PhaseWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads and parses a record file; `None` when absent or (never expected: it is renamed into place) unparsable.
fn read_record(path: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok().map(Record)
}

/// A file's text; empty when unreadable.
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Appends one invocation to the test's shardctl log.
fn append_log(log: &Path, run: &Finished) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
    else {
        return;
    };
    let _ = writeln!(
        file,
        "=== shardctl {} -> {} after {:?}\n--- stdout\n{}--- stderr\n{}",
        run.args.join(" "),
        run.status,
        run.took,
        run.stdout,
        run.stderr
    );
}
