//! The real `shardgate` binary as a child process.
//!
//! The proxy binds port 0 and announces the port it got with one line on stdout,
//! `shardgate listening mysql=127.0.0.1:PORT`; the harness waits for that line (with a deadline) instead of
//! guessing a port or sleeping. Everything the proxy prints is collected: it is written to
//! `$CARGO_TARGET_TMPDIR/e2e-logs/<test>.shardgate.log` when the handle drops, and echoed when the test failed.
//! A proxy that panicked (even in one session task, which leaves the process up) fails the test.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mysql_async::{Conn, Opts};
use tokio::sync::mpsc;

use super::deadline::{Deadline, within};

/// How long the proxy may take from spawn to its `listening` line (or to exiting, when it must refuse to start).
const STARTUP_ALLOWANCE: Duration = Duration::from_secs(30);

/// How long a client login through the proxy may take.
const LOGIN_ALLOWANCE: Duration = Duration::from_secs(15);

/// The announcement the proxy prints once its listener is bound, before the `IP:PORT`.
const LISTENING_PREFIX: &str = "shardgate listening mysql=";

/// What Rust's panic hook prints when a thread panics.
const PANIC_MARKER: &str = "panicked at";

/// How much of the proxy's output is kept in memory (the latest part).
const OUTPUT_CAP: usize = 1 << 20;

/// How many lines of the proxy's output a failing test prints.
const FAILURE_TAIL_LINES: usize = 200;

/// A running proxy. Dropping it kills the process.
pub struct Proxy {
    /// The `shardgate` process.
    child: Child,
    /// The MySQL-protocol port it announced.
    port: u16,
    /// The admin HTTP port it announced, if the admin endpoint is on.
    admin_port: Option<u16>,
    /// Everything it printed so far: stderr, and stdout lines prefixed with `[stdout]`.
    output: Arc<Mutex<String>>,
    /// The threads copying its stdout and stderr; joined on drop, so the output is complete.
    readers: Vec<JoinHandle<()>>,
}

/// The proxy exited before announcing a listener.
#[derive(Debug)]
pub struct ProxyExited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed to stderr.
    pub stderr: String,
}

impl Proxy {
    /// The proxy binary Cargo built for this test target.
    pub fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_shardgate"))
    }

    /// Starts `shardgate --config CONFIG` and waits for its `listening` line. Returns `Err` when the proxy exits
    /// first (what a test of bad configuration expects); panics when it neither listens nor exits in time.
    pub async fn start(config: &Path) -> Result<Proxy, ProxyExited> {
        Self::start_with_env(config, &[]).await
    }

    /// Kills the process (if it still runs) and waits for it; its output stays readable.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// [`Proxy::start`] with extra environment variables (fault injection: `SHARDGATE_FAULT`).
    pub async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Result<Proxy, ProxyExited> {
        let mut child = Command::new(Self::binary())
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot spawn the shardgate binary");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr = child.stderr.take().expect("stderr was piped");
        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel();
        let stdout_reader = spawn_stdout_reader(stdout, lines_tx, Arc::clone(&output));
        let stderr_reader = spawn_stderr_reader(stderr, Arc::clone(&output));

        let deadline = Deadline::after(STARTUP_ALLOWANCE);
        let first_line = tokio::time::timeout(deadline.remaining(), lines_rx.recv()).await;
        match first_line {
            Ok(Some(line)) => match parse_listening_line(&line) {
                Some((port, admin_port)) => Ok(Proxy {
                    child,
                    port,
                    admin_port,
                    output,
                    readers: vec![stdout_reader, stderr_reader],
                }),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "shardgate's first stdout line must be `{LISTENING_PREFIX}127.0.0.1:PORT`, got {line:?}\n\
                         its output:\n{}",
                        snapshot(&output)
                    )
                }
            },
            // Stdout closed without the line: the proxy is exiting.
            Ok(None) => {
                let status = wait_for_exit(&mut child, &deadline).await;
                let _ = stderr_reader.join();
                Err(ProxyExited {
                    status,
                    stderr: snapshot(&output),
                })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "shardgate neither announced a listener nor exited within {STARTUP_ALLOWANCE:?}; its output:\n{}",
                    snapshot(&output)
                )
            }
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin HTTP port; panics when the proxy announced none.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
            .expect("the proxy announced no admin endpoint")
    }

    /// `GET path` on the admin endpoint: the status code and the body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        super::http::request(self.admin_port(), "GET", path, "").await
    }

    /// The value of one `/metrics` sample (`name{labels}` exactly as exposed); panics when it is absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, metrics) = self.admin_get("/metrics").await;
        super::http::sample(&metrics, series).unwrap_or_else(|| panic!("{series} missing"))
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `allowance` for the process to exit by itself; its exit status, or `None` if it still runs.
    pub async fn wait_exit(
        &mut self,
        allowance: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Deadline::after(allowance);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if deadline.remaining().is_zero() {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A mysql_async URL for the dev user `app`/`app` and keyspace `app`, with default options.
    pub fn url(&self) -> String {
        format!("mysql://app:app@127.0.0.1:{}/app", self.port)
    }

    /// Default mysql_async options for [`Proxy::url`].
    pub fn opts(&self) -> Opts {
        Opts::from_url(&self.url()).expect("the proxy URL is well formed")
    }

    /// A new client connection as `app` to keyspace `app`; panics on failure.
    pub async fn conn(&self) -> Conn {
        connect(self.opts()).await
    }

    /// Everything the proxy printed so far (stderr, plus any stdout lines marked `[stdout]`).
    pub fn output(&self) -> String {
        snapshot(&self.output)
    }

    /// Whether the process is still running (a proxy must never die of bad input).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let exited_by_itself = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let output = self.output();
        let saved = save_log(&output);
        if std::thread::panicking() {
            let tail: Vec<&str> = output.lines().rev().take(FAILURE_TAIL_LINES).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- shardgate on port {} (exited by itself: {exited_by_itself:?}; full log: {saved}) ---\n{}",
                self.port,
                tail.join("\n")
            );
        } else if output.contains(PANIC_MARKER) {
            // A panic in one session task leaves the process up, so no client may notice; the design says the
            // proxy never panics on what it receives, so any panic fails the test that caused it.
            panic!("shardgate panicked during this test (full log: {saved}):\n{output}");
        }
    }
}

/// Logs in through the proxy with `opts`, within [`LOGIN_ALLOWANCE`]; panics on failure.
pub async fn connect(opts: Opts) -> Conn {
    let port = opts.tcp_port();
    match try_connect(opts).await {
        Ok(conn) => conn,
        Err(e) => panic!("cannot log in to the proxy on port {port}: {e}"),
    }
}

/// Tries to log in through the proxy with `opts`; a refusal is `Err`, no answer within [`LOGIN_ALLOWANCE`] panics.
pub async fn try_connect(opts: impl Into<Opts>) -> Result<Conn, mysql_async::Error> {
    within(
        LOGIN_ALLOWANCE,
        "logging in to the proxy",
        Conn::new(opts.into()),
    )
    .await
}

/// Extracts the port from the `listening` line; `None` if the line is anything else.
/// The MySQL port and, when announced (` admin=IP:PORT`), the admin port.
fn parse_listening_line(line: &str) -> Option<(u16, Option<u16>)> {
    let mut words = line.trim_end().strip_prefix(LISTENING_PREFIX)?.split(' ');
    let loopback_port = |a: &str| {
        let addr: std::net::SocketAddr = a.parse().ok()?;
        (addr.ip().is_loopback() && addr.port() != 0).then_some(addr.port())
    };
    let mysql = loopback_port(words.next()?)?;
    let admin = match words.next() {
        Some(w) => Some(loopback_port(w.strip_prefix("admin=")?)?),
        None => None,
    };
    Some((mysql, admin))
}

/// Forwards stdout lines to the starter and into the collected output, until the proxy closes stdout.
fn spawn_stdout_reader(
    stdout: ChildStdout,
    lines: mpsc::UnboundedSender<String>,
    output: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            append(&output, &format!("[stdout] {line}\n"));
            let _ = lines.send(line);
        }
    })
}

/// Collects stderr until the proxy closes it.
fn spawn_stderr_reader(mut stderr: ChildStderr, output: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            append(&output, &String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// Appends to the collected output, dropping the oldest part past [`OUTPUT_CAP`].
fn append(output: &Mutex<String>, text: &str) {
    let mut output = output
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    output.push_str(text);
    if output.len() > OUTPUT_CAP {
        let mut cut = output.len() - OUTPUT_CAP;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
}

/// A copy of the collected output.
fn snapshot(output: &Mutex<String>) -> String {
    output
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Waits for a child that closed its stdout to exit; kills it if it lingers past the deadline.
async fn wait_for_exit(child: &mut Child, deadline: &Deadline) -> ExitStatus {
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if deadline.expired() {
            let _ = child.kill();
            return child
                .wait()
                .expect("cannot reap the killed shardgate process");
        }
        deadline.pause().await;
    }
}

/// Writes the proxy's output to `$CARGO_TARGET_TMPDIR/e2e-logs/<test name>.shardgate.log`; returns where.
fn save_log(output: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", ".");
    let path = dir.join(format!("{test}.shardgate.log"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, output)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}
