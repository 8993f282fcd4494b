//! The application writing through the proxy while rows move, and the ledger of what it was told.
//!
//! Each client owns a disjoint set of keys (the ids it inserts, and the bulk ids congruent to its number), so the
//! last write it saw acknowledged decides what each of its rows must look like at the end. After every acknowledged
//! write the client reads the row back through the proxy and records it whole, including the values only the server
//! knew (`NOW(6)`, `UUID()`), or records it deleted; it also checks that the write did what it should (an update
//! bumped the version it last saw, a rolled-back transaction changed nothing). A write whose outcome the client cannot
//! know (the connection broke before the answer) makes its keys ambiguous: they are left alone from then on and
//! excluded from the checks, and counted. Every error a client sees is recorded with its code and statement.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use tokio::task::JoinSet;

use super::data::{FRESH_IDS, ROW_COLUMNS, TABLES, Tenant};
use crate::harness::Cluster;

/// How long one statement (or a login) may take before the client counts it as lost.
const STATEMENT_ALLOWANCE: Duration = Duration::from_secs(20);

/// One row of the workload: table (index into [`TABLES`]), tenant, id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub table: usize,
    pub tenant: u64,
    pub id: i64,
}

/// A row's compared columns, `created_at` as text with microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub ver: i64,
    pub note: Option<String>,
    pub created_at: String,
    pub uid: String,
}

/// How the load runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Concurrent clients.
    pub clients: usize,
    /// Pause between two operations of one client (keeps a 2-core machine able to run the controller too).
    pub pause: Duration,
    /// The clients stop by themselves after this long, whether or not they were told to.
    pub limit: Duration,
    /// Bulk ids up to this one (per table and tenant) may be updated or deleted by clients.
    pub touch: i64,
}

/// An error a client saw.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub client: usize,
    /// Since the load started.
    pub at: Duration,
    /// MySQL error code; 0 for a broken connection or a timeout.
    pub code: u16,
    pub message: String,
    /// The failing statement, after those of the same operation that went before it.
    pub sql: String,
}

/// One statement's timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub start: Instant,
    pub took: Duration,
    /// Whether it was for a moving tenant.
    pub moving: bool,
}

/// What the clients did and saw, merged.
#[derive(Debug, Default)]
pub struct Report {
    /// Each touched key's last known state: the row, or `None` for deleted.
    pub ledger: HashMap<Key, Option<Row>>,
    /// Keys whose outcome no client could know.
    pub ambiguous: HashSet<Key>,
    pub errors: Vec<ClientError>,
    /// Acknowledged writes that read back wrong.
    pub anomalies: Vec<String>,
    pub timings: Vec<Timing>,
    /// Operations (single writes and transactions) run.
    pub ops: u64,
}

impl Report {
    /// Panics with the first errors and anomalies unless there were none (and no ambiguous key, unless allowed).
    pub fn assert_clean(&self, allow_ambiguous: bool) {
        let mut by_code: HashMap<u16, usize> = HashMap::new();
        for e in &self.errors {
            *by_code.entry(e.code).or_default() += 1;
        }
        let first: Vec<String> = self
            .errors
            .iter()
            .take(15)
            .map(|e| {
                format!(
                    "  client {} at {:?}: {} {} ({})",
                    e.client, e.at, e.code, e.message, e.sql
                )
            })
            .collect();
        assert!(
            self.errors.is_empty(),
            "clients saw {} errors (by code: {by_code:?}):\n{}",
            self.errors.len(),
            first.join("\n")
        );
        let anomalies: Vec<&String> = self.anomalies.iter().take(15).collect();
        assert!(
            self.anomalies.is_empty(),
            "{} acknowledged writes read back wrong:\n{anomalies:#?}",
            self.anomalies.len()
        );
        assert!(
            allow_ambiguous || self.ambiguous.is_empty(),
            "{} keys ended ambiguous (a connection broke mid-write)",
            self.ambiguous.len()
        );
    }

    /// Durations of the moving tenants' statements that overlapped one of `spans`.
    pub fn moving_latencies_during(&self, spans: &[(Instant, Instant)]) -> Vec<Duration> {
        let mut out: Vec<Duration> = self
            .timings
            .iter()
            .filter(|t| t.moving)
            .filter(|t| {
                spans
                    .iter()
                    .any(|(a, b)| t.start <= *b && t.start + t.took >= *a)
            })
            .map(|t| t.took)
            .collect();
        out.sort();
        out
    }
}

/// The `p`-th percentile (0–100) of sorted durations; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Clients running in the background.
pub struct Workload {
    stop: Arc<AtomicBool>,
    /// Operations finished so far, over every client.
    done: Arc<AtomicU64>,
    clients: JoinSet<Report>,
}

impl Workload {
    /// Starts `settings.clients` clients through the cluster's proxy, writing to `tenants` (half of the operations
    /// on the moving ones, when there are any).
    pub fn start(cluster: &Cluster, tenants: &[Tenant], settings: Settings) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut clients = JoinSet::new();
        let started = Instant::now();
        for index in 0..settings.clients {
            let client = Client {
                index,
                settings,
                opts: cluster.proxy_opts(),
                conn: None,
                rng: Rng(
                    0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)
                ),
                moving: tenants.iter().filter(|t| t.moving).copied().collect(),
                others: tenants.iter().filter(|t| !t.moving).copied().collect(),
                next_fresh: FRESH_IDS + index as i64 * 10_000_000,
                known: HashMap::new(),
                touched: Vec::new(),
                report: Report::default(),
                started,
                op: 0,
                trail: Vec::new(),
            };
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            clients.spawn(client.run(stop, done));
        }
        Workload {
            stop,
            done,
            clients,
        }
    }

    /// Operations the clients finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Tells the clients to stop, waits for them, and merges what they saw.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut merged = Report::default();
        for part in crate::harness::join_all(self.clients).await {
            for (key, row) in part.ledger {
                assert!(
                    merged.ledger.insert(key, row).is_none(),
                    "two clients wrote {key:?}"
                );
            }
            merged.ambiguous.extend(part.ambiguous);
            merged.errors.extend(part.errors);
            merged.anomalies.extend(part.anomalies);
            merged.timings.extend(part.timings);
            merged.ops += part.ops;
        }
        merged.errors.sort_by_key(|e| e.at);
        merged
    }
}

/// xorshift64*: enough randomness for choosing operations, reproducible per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Why a statement did not succeed.
enum Fail {
    /// The server (or the proxy) answered an error.
    Server,
    /// No answer: the connection broke or the statement timed out.
    Lost,
}

/// What a write did to one key, to check its read-back against.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Inserted with version 1.
    Inserted,
    /// Version bumped from the one given.
    Bumped(i64),
    Deleted,
    /// Nothing (a rolled-back transaction or a failed statement): the previous version, or absent.
    Unchanged(Option<i64>),
}

/// One client: its connection, its keys and what it saw.
struct Client {
    index: usize,
    settings: Settings,
    opts: Opts,
    conn: Option<Conn>,
    rng: Rng,
    moving: Vec<Tenant>,
    others: Vec<Tenant>,
    next_fresh: i64,
    /// The version of each touched key as last read (`None`: deleted).
    known: HashMap<Key, Option<i64>>,
    /// Touched keys, to pick from.
    touched: Vec<Key>,
    report: Report,
    started: Instant,
    /// Operations so far (also makes each note unique).
    op: u64,
    /// Statements of the current operation so far, with when they were sent, for error reports.
    trail: Vec<String>,
}

impl Client {
    async fn run(mut self, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> Report {
        while !stop.load(Ordering::Relaxed) && self.started.elapsed() < self.settings.limit {
            self.op += 1;
            self.trail.clear();
            self.step().await;
            done.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.settings.pause).await;
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
        self.report.ops = self.op;
        self.report
    }

    /// One operation on a random tenant: a fresh insert, a write to a key it owns, or a small transaction.
    async fn step(&mut self) {
        let tenant =
            if !self.moving.is_empty() && (self.others.is_empty() || self.rng.below(2) == 0) {
                self.moving[self.rng.below(self.moving.len() as u64) as usize]
            } else {
                self.others[self.rng.below(self.others.len() as u64) as usize]
            };
        let table = self.rng.below(TABLES.len() as u64) as usize;
        match self.rng.below(100) {
            0..15 => self.transaction(tenant, table).await,
            15..45 => {
                let key = self.fresh(tenant.id, table);
                self.write_one(key).await
            }
            _ => match self.owned(tenant, table) {
                Some(key) => self.write_one(key).await,
                None => {
                    let key = self.fresh(tenant.id, table);
                    self.write_one(key).await
                }
            },
        }
    }

    /// A new key of this client.
    fn fresh(&mut self, tenant: u64, table: usize) -> Key {
        self.next_fresh += 1;
        Key {
            table,
            tenant,
            id: self.next_fresh,
        }
    }

    /// A key this client owns and may write: half the time a bulk row, else one it touched before; never an
    /// ambiguous one.
    fn owned(&mut self, tenant: Tenant, table: usize) -> Option<Key> {
        if self.rng.below(2) == 0 && !self.touched.is_empty() {
            let key = self.touched[self.rng.below(self.touched.len() as u64) as usize];
            return (!self.report.ambiguous.contains(&key)).then_some(key);
        }
        let (n, c) = (self.settings.clients as i64, self.index as i64);
        let limit = tenant.bulk[table].min(self.settings.touch);
        if limit <= c {
            return None;
        }
        let k = self.rng.below(((limit - 1 - c) / n + 1) as u64) as i64;
        let key = Key {
            table,
            tenant: tenant.id,
            id: 1 + c + n * k,
        };
        (!self.report.ambiguous.contains(&key)).then_some(key)
    }

    /// The version of `key` as this client knows it: what it last read, or a bulk row's 0, or absent.
    fn version(&self, key: Key) -> Option<i64> {
        match self.known.get(&key) {
            Some(v) => *v,
            None => {
                let bulk = self.bulk_of(key);
                (key.id >= 1 && key.id <= bulk).then_some(0)
            }
        }
    }

    fn bulk_of(&self, key: Key) -> i64 {
        self.moving
            .iter()
            .chain(&self.others)
            .find(|t| t.id == key.tenant)
            .map_or(0, |t| t.bulk[key.table])
    }

    fn is_moving(&self, tenant: u64) -> bool {
        self.moving.iter().any(|t| t.id == tenant)
    }

    /// One autocommitted write to `key`: insert if absent, else update (3 in 4) or delete; then read it back.
    async fn write_one(&mut self, key: Key) {
        let note = format!("c{}-{}", self.index, self.op);
        let before = self.version(key);
        let (sql, effect, expect_affected) = match before {
            None => (insert(key, &note), Effect::Inserted, 1),
            Some(v) if self.rng.below(4) > 0 => (update(key, &note), Effect::Bumped(v), 1),
            Some(_) => (delete(key), Effect::Deleted, 1),
        };
        match self.exec(&sql, key.tenant).await {
            Ok(affected) => {
                if affected != expect_affected {
                    self.anomaly(format!("{sql}: {affected} rows affected"));
                }
                self.read_back(key, effect, &note).await;
            }
            Err(Fail::Server) => self.read_back(key, Effect::Unchanged(before), &note).await,
            Err(Fail::Lost) => self.lose(&[key]),
        }
    }

    /// `BEGIN; UPDATE (or insert) one key; INSERT a fresh one; COMMIT` (1 in 5 rolled back), one tenant.
    async fn transaction(&mut self, tenant: Tenant, table: usize) {
        let Some(first) = self.owned(tenant, table) else {
            return;
        };
        let other_table = self.rng.below(TABLES.len() as u64) as usize;
        // One tenant per transaction: the second key is the first one's tenant's.
        let second = self.fresh(first.tenant, other_table);
        let note = format!("c{}-{}", self.index, self.op);
        let before = self.version(first);
        let (first_sql, first_effect) = match before {
            None => (insert(first, &note), Effect::Inserted),
            Some(v) => (update(first, &note), Effect::Bumped(v)),
        };
        let commit = self.rng.below(5) > 0;
        let steps = [
            "BEGIN".to_string(),
            first_sql,
            insert(second, &note),
            if commit { "COMMIT" } else { "ROLLBACK" }.to_string(),
        ];
        for sql in &steps {
            match self.exec(sql, first.tenant).await {
                Ok(_) => {}
                Err(Fail::Server) => {
                    if self.exec("ROLLBACK", first.tenant).await.is_err() {
                        return self.lose(&[first, second]);
                    }
                    self.read_back(first, Effect::Unchanged(before), &note)
                        .await;
                    self.read_back(second, Effect::Unchanged(None), &note).await;
                    return;
                }
                Err(Fail::Lost) => return self.lose(&[first, second]),
            }
        }
        if commit {
            self.read_back(first, first_effect, &note).await;
            self.read_back(second, Effect::Inserted, &note).await;
        } else {
            self.read_back(first, Effect::Unchanged(before), &note)
                .await;
            self.read_back(second, Effect::Unchanged(None), &note).await;
        }
    }

    /// Reads `key` back through the proxy, checks it shows `effect`, and records it in the ledger.
    async fn read_back(&mut self, key: Key, effect: Effect, note: &str) {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM `{}` WHERE tenant_id = {} AND id = {}",
            TABLES[key.table], key.tenant, key.id
        );
        let moving = self.is_moving(key.tenant);
        self.note_sent(&sql);
        let Some(conn) = self.connect().await else {
            return self.lose(&[key]);
        };
        let start = Instant::now();
        let result = tokio::time::timeout(
            STATEMENT_ALLOWANCE,
            conn.query_first::<(i64, Option<String>, String, String), _>(&sql),
        )
        .await;
        self.report.timings.push(Timing {
            start,
            took: start.elapsed(),
            moving,
        });
        let row = match result {
            Ok(Ok(row)) => row.map(|(ver, note, created_at, uid)| Row {
                ver,
                note,
                created_at,
                uid,
            }),
            Ok(Err(e)) => {
                let server = matches!(e, mysql_async::Error::Server(_));
                self.error(&sql, &e);
                if !server {
                    self.conn = None;
                }
                return self.lose(&[key]);
            }
            Err(_) => {
                self.timeout(&sql);
                return self.lose(&[key]);
            }
        };
        let version = row.as_ref().map(|r| r.ver);
        let fine = match effect {
            Effect::Inserted => row
                .as_ref()
                .is_some_and(|r| r.ver == 1 && r.note.as_deref() == Some(note)),
            Effect::Bumped(v) => row
                .as_ref()
                .is_some_and(|r| r.ver == v + 1 && r.note.as_deref() == Some(note)),
            Effect::Deleted => row.is_none(),
            Effect::Unchanged(v) => version == v,
        };
        if !fine {
            self.anomaly(format!(
                "{key:?} after {effect:?} (note {note}) reads back as {row:?}"
            ));
        }
        if !self.known.contains_key(&key) {
            self.touched.push(key);
        }
        self.known.insert(key, version);
        self.report.ledger.insert(key, row);
    }

    /// Runs one statement; its affected rows, or why not. Errors are recorded; a lost connection is dropped.
    async fn exec(&mut self, sql: &str, tenant: u64) -> Result<u64, Fail> {
        let moving = self.is_moving(tenant);
        self.note_sent(sql);
        let Some(conn) = self.connect().await else {
            return Err(Fail::Lost);
        };
        let start = Instant::now();
        let result = tokio::time::timeout(STATEMENT_ALLOWANCE, conn.query_drop(sql)).await;
        let affected = conn.affected_rows();
        self.report.timings.push(Timing {
            start,
            took: start.elapsed(),
            moving,
        });
        match result {
            Ok(Ok(())) => Ok(affected),
            Ok(Err(e)) => {
                let server = matches!(e, mysql_async::Error::Server(_));
                self.error(sql, &e);
                if server {
                    Err(Fail::Server)
                } else {
                    self.conn = None;
                    Err(Fail::Lost)
                }
            }
            Err(_) => {
                self.timeout(sql);
                Err(Fail::Lost)
            }
        }
    }

    /// The connection, logging in again if the last one broke; `None` (recorded) when that fails.
    async fn connect(&mut self) -> Option<&mut Conn> {
        if self.conn.is_none() {
            match tokio::time::timeout(STATEMENT_ALLOWANCE, Conn::new(self.opts.clone())).await {
                Ok(Ok(conn)) => self.conn = Some(conn),
                Ok(Err(e)) => {
                    self.error("(login)", &e);
                    return None;
                }
                Err(_) => {
                    self.timeout("(login)");
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    fn error(&mut self, sql: &str, e: &mysql_async::Error) {
        let (code, message) = match e {
            mysql_async::Error::Server(s) => (s.code, s.message.clone()),
            other => (0, other.to_string()),
        };
        self.report.errors.push(ClientError {
            client: self.index,
            at: self.started.elapsed(),
            code,
            message,
            sql: format!("{} -> failed: {sql}", self.trail.join("; ")),
        });
    }

    /// Adds a statement to the operation's trail.
    fn note_sent(&mut self, sql: &str) {
        let at = self.started.elapsed().as_secs_f64();
        self.trail.push(format!("[{at:.3}s] {}", shorten(sql)));
    }

    fn timeout(&mut self, sql: &str) {
        self.conn = None;
        self.report.errors.push(ClientError {
            client: self.index,
            at: self.started.elapsed(),
            code: 0,
            message: format!("no answer within {STATEMENT_ALLOWANCE:?}"),
            sql: sql.to_string(),
        });
    }

    fn anomaly(&mut self, what: String) {
        self.report.anomalies.push(format!(
            "client {} at {:?}: {what}",
            self.index,
            self.started.elapsed()
        ));
    }

    /// Marks keys whose outcome cannot be known; they are never written again nor checked.
    fn lose(&mut self, keys: &[Key]) {
        for key in keys {
            self.report.ambiguous.insert(*key);
            self.report.ledger.remove(key);
        }
    }
}

fn insert(key: Key, note: &str) -> String {
    format!(
        "INSERT INTO `{}` (tenant_id, id, ver, note, created_at, uid) \
         VALUES ({}, {}, 1, '{note}', NOW(6), UUID())",
        TABLES[key.table], key.tenant, key.id
    )
}

fn update(key: Key, note: &str) -> String {
    format!(
        "UPDATE `{}` SET ver = ver + 1, note = '{note}', created_at = NOW(6), uid = UUID() \
         WHERE tenant_id = {} AND id = {}",
        TABLES[key.table], key.tenant, key.id
    )
}

fn delete(key: Key) -> String {
    format!(
        "DELETE FROM `{}` WHERE tenant_id = {} AND id = {}",
        TABLES[key.table], key.tenant, key.id
    )
}

/// The start of a statement, for error reports.
fn shorten(sql: &str) -> &str {
    let end = sql.char_indices().nth(60).map_or(sql.len(), |(i, _)| i);
    &sql[..end]
}
