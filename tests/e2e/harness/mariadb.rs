//! One real MariaDB server per handle, owned by one test.
//!
//! Each server gets a private temporary folder (datadir, socket, error log) and a free loopback port, and dies with
//! its handle. Creating a datadir from nothing (`mariadb-install-db`) is done once and cached under Cargo's
//! per-target temporary folder; every server then starts from a copy of that template.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, Pool};
use tempfile::TempDir;

use super::binaries;
use super::deadline::Deadline;

/// How long a server may take to accept its first connection.
const STARTUP_ALLOWANCE: Duration = Duration::from_secs(60);

/// How long one connection attempt during startup may take before it counts as "not yet".
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many ports to try when another process grabs the chosen one between choosing and binding.
const PORT_ATTEMPTS: usize = 5;

/// Flags that decide the shape of InnoDB's files: the template is created with them and every server started
/// with them, so that no server resizes or converts files at startup.
const LAYOUT_ARGS: &[&str] = &["--innodb-log-file-size=8M", "--innodb-file-per-table=0"];

/// Flags that keep each server small in memory and quick to start and to create schemas on: many tests run in
/// parallel on a 2-core machine, and test data need not survive a crash.
const SERVER_ARGS: &[&str] = &[
    "--bind-address=127.0.0.1",
    "--skip-log-bin",
    "--skip-name-resolve",
    "--max-connections=2000",
    "--performance-schema=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-buffer-size=2M",
    "--innodb-temp-data-file-path=ibtmp1:4M:autoextend",
    "--innodb-use-native-aio=0",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--key-buffer-size=1M",
];

/// Bumped when the template's creation flags change, so an old cached template is not reused.
const TEMPLATE_LAYOUT_VERSION: u32 = 1;

/// The cached template datadir, created at most once per test process.
static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();

/// A running MariaDB server. Dropping it kills the server and deletes its files.
pub struct MariaDb {
    /// The `mariadbd` process.
    child: Child,
    /// The loopback TCP port it listens on.
    port: u16,
    /// Private folder: `data/`, `mariadb.sock`, `error.log`. Removed on drop, after the process is dead.
    root: TempDir,
    /// The extra flags it was started with, for a restart.
    extra_args: Vec<String>,
}

/// Why one startup attempt did not produce a server.
enum StartFailure {
    /// Another process took the port first; worth another try with another port.
    PortTaken,
    /// Anything else; retrying will not help. Carries the error log.
    Fatal(String),
}

impl MariaDb {
    /// Starts a server with the harness's default flags.
    pub async fn start() -> MariaDb {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra `mariadbd` flags (e.g. `--max-allowed-packet=1M`), which override the defaults.
    pub async fn start_with(extra_args: &[&str]) -> MariaDb {
        let template =
            tokio::task::spawn_blocking(|| TEMPLATE.get_or_init(install_template).clone())
                .await
                .expect("creating the MariaDB template datadir panicked");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let mut server = Self::spawn(&template, free_port(), extra_args);
            match server.wait_until_ready().await {
                Ok(()) => return server,
                Err(StartFailure::PortTaken) => last_log = server.error_log(),
                Err(StartFailure::Fatal(log)) => {
                    panic!("mariadbd failed to start; its error log:\n{log}")
                }
            }
        }
        panic!(
            "mariadbd lost the race for a free port {PORT_ATTEMPTS} times; last error log:\n{last_log}"
        )
    }

    /// Copies the template into a fresh folder and starts `mariadbd` on it.
    fn spawn(template: &Path, port: u16, extra_args: &[&str]) -> MariaDb {
        let root = tempfile::Builder::new()
            .prefix("shardgate-mariadb-")
            .tempdir()
            .expect("cannot create a temporary folder for a MariaDB datadir");
        let data = root.path().join("data");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(&data)
            .status()
            .expect("cannot run cp to copy the template datadir");
        assert!(
            copied.success(),
            "cp -a {} {} failed",
            template.display(),
            data.display()
        );
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let child = Self::launch(root.path(), port, &extra_args);
        MariaDb {
            child,
            port,
            root,
            extra_args,
        }
    }

    /// Starts `mariadbd` on the datadir under `root`.
    fn launch(root: &Path, port: u16, extra_args: &[String]) -> Child {
        let data = root.join("data");
        // A temporary folder of its own: in the shared /tmp, another server's internal temporary table names collide
        // with this one's (ERROR 6 on delete of '/tmp/#sql-temptable-…').
        let tmp = root.join("tmp");
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            panic!("cannot create {}: {e}", tmp.display());
        }
        Command::new(binaries::mariadbd())
            // Must come first: ignore every my.cnf on the machine.
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", root.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", root.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", root.join("error.log").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            // Lets mariadbd run when the tests run as root (CI); only a warning otherwise.
            .arg("--user=root")
            .args(LAYOUT_ARGS)
            .args(SERVER_ARGS)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot spawn mariadbd")
    }

    /// Kills the server with SIGKILL (a crash: no clean shutdown) and waits for it to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same datadir and port (after [`MariaDb::kill9`]) and waits until it serves.
    pub async fn restart(&mut self) {
        self.kill9();
        self.child = Self::launch(self.root.path(), self.port, &self.extra_args);
        if let Err(e) = self.wait_until_ready().await {
            let log = match e {
                StartFailure::PortTaken => {
                    format!("port {} taken\n{}", self.port, self.error_log())
                }
                StartFailure::Fatal(log) => log,
            };
            panic!("mariadbd did not come back after a restart:\n{log}");
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process: SIGSTOP makes a hung server.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -{signal} {} failed", self.child.id());
    }

    /// Polls until a client can log in and sees this very server (not another one that grabbed the port).
    async fn wait_until_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Deadline::after(STARTUP_ALLOWANCE);
        loop {
            if let Ok(Some(_status)) = self.child.try_wait() {
                let log = self.error_log();
                let port_taken =
                    log.contains("Address already in use") || log.contains("Bind on TCP/IP port");
                return Err(if port_taken {
                    StartFailure::PortTaken
                } else {
                    StartFailure::Fatal(log)
                });
            }
            if let Ok(Ok(mut conn)) =
                tokio::time::timeout(PROBE_TIMEOUT, Conn::new(self.opts(None))).await
            {
                let socket: Option<String> =
                    conn.query_first("SELECT @@socket").await.ok().flatten();
                let _ = conn.disconnect().await;
                return if socket.as_deref() == Some(self.socket_path().to_string_lossy().as_ref()) {
                    Ok(())
                } else {
                    Err(StartFailure::PortTaken)
                };
            }
            if deadline.expired() {
                return Err(StartFailure::Fatal(format!(
                    "no connection within {:?}\n{}",
                    deadline.allowance(),
                    self.error_log()
                )));
            }
            deadline.pause().await;
        }
    }

    /// The loopback TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's Unix socket (the harness itself always uses TCP, like the proxy does).
    pub fn socket_path(&self) -> PathBuf {
        self.root.path().join("mariadb.sock")
    }

    /// A mysql_async URL for `root` (no password) over TCP, optionally with a default database.
    pub fn url(&self, db: Option<&str>) -> String {
        format!(
            "mysql://root@127.0.0.1:{}/{}?prefer_socket=false",
            self.port,
            db.unwrap_or("")
        )
    }

    /// Connection options for `root` over TCP, optionally with a default database.
    pub fn opts(&self, db: Option<&str>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .db_name(db)
            .prefer_socket(false)
            .into()
    }

    /// A new connection as `root`, no default database.
    pub async fn conn(&self) -> Conn {
        self.conn_db(None).await
    }

    /// A new connection as `root` with `db` as default database.
    pub async fn conn_db(&self, db: Option<&str>) -> Conn {
        Conn::new(self.opts(db))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to MariaDB on port {}: {e}", self.port))
    }

    /// A connection pool as `root`, no default database.
    pub fn pool(&self) -> Pool {
        Pool::new(self.opts(None))
    }

    /// Runs one or more statements (text protocol) and discards their results.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn().await;
        conn.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("MariaDB on port {} refused `{sql}`: {e}", self.port));
        let _ = conn.disconnect().await;
    }

    /// Runs a query in database `db` (if given) and returns its rows.
    pub async fn query<T: FromRow + Send + 'static>(&self, db: Option<&str>, sql: &str) -> Vec<T> {
        let mut conn = self.conn_db(db).await;
        let rows = conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("MariaDB on port {} refused `{sql}`: {e}", self.port));
        let _ = conn.disconnect().await;
        rows
    }

    /// The server's error log so far (empty if unreadable).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("error.log")).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.error_log();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- MariaDB on port {}: last lines of its error log ---\n{}",
                self.port,
                tail.join("\n")
            );
        }
    }
}

/// A loopback port that was free a moment ago. Another process may take it before `mariadbd` binds it; the
/// caller notices and retries.
/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// Returns the template datadir, creating it if no test process has yet.
///
/// The template lives in Cargo's per-target temporary folder, named after the server version and the layout
/// flags, so it is reused across test processes (nextest runs one process per test) and never goes stale after
/// an upgrade. It is built in a staging folder and renamed into place: a concurrent process sees all or nothing.
fn install_template() -> PathBuf {
    let cache_root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(cache_root).expect("cannot create CARGO_TARGET_TMPDIR");
    let template = cache_root.join(format!(
        "mariadb-template-v{TEMPLATE_LAYOUT_VERSION}-{}",
        server_version()
    ));
    if template.join("mysql").is_dir() {
        return template;
    }
    let staging = tempfile::Builder::new()
        .prefix(".mariadb-template-staging-")
        .tempdir_in(cache_root)
        .expect("cannot create a staging folder for the MariaDB template");
    let data = staging.path().join("data");
    // A temporary folder of its own: installs racing on a cold cache must not share the bootstrap server's files.
    let tmp = staging.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("cannot create the template's temporary folder");
    let output = Command::new(binaries::mariadb_install_db())
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg("--user=root")
        // root@localhost, root@127.0.0.1 and root@::1 log in with an empty password: the proxy's backend login.
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .args(LAYOUT_ARGS)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run mariadb-install-db");
    assert!(
        output.status.success(),
        "mariadb-install-db failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match std::fs::rename(&data, &template) {
        Ok(()) => template,
        // Another process won the race; its template is complete, since it was renamed into place whole.
        Err(_) if template.join("mysql").is_dir() => template,
        Err(e) => panic!(
            "cannot move the MariaDB template into {}: {e}",
            template.display()
        ),
    }
}

/// The installed server's version, reduced to characters safe in a folder name.
fn server_version() -> String {
    let output = Command::new(binaries::mariadbd())
        .arg("--version")
        .output()
        .expect("cannot run mariadbd --version");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .skip_while(|word| *word != "Ver")
        .nth(1)
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
