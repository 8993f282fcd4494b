//! The controller: runs a workflow's phases against the shards and the proxies, saving the record after every
//! step so that a killed controller resumes where it stopped (DESIGN.md, "Resharding"; ADR 21).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use shardgate_reshard::capture::{self, Filter, Purpose};
use shardgate_reshard::chunk::{quote, string_literal};
use shardgate_reshard::{CutoverReport, Kind, Phase, TableProgress, Workflow, WorkflowStore};
use shardgate_topology::{MoveState, TopologySpec, Vindex};

use super::fleet;
use super::plan::{self, Direction};
use super::rows::{self, Resolver, Targets};

mod copy;
mod create;
mod finish;
mod switch;

/// How long proxies get to serve a version outside a cutover.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Captured changes applied per round.
const APPLY_BATCH: u64 = 500;
/// A cutover starts once this few changes are left to apply.
const CUTOVER_BACKLOG: u64 = 200;
/// Batches of captured changes applied per source in one catch-up outside the cutover: clients may write faster
/// than the controller applies, so a catch-up ends after these even with changes left (the lag).
const CATCH_UP_BATCHES: u64 = 40;
/// Verify passes before giving up on a clean one.
const VERIFY_PASSES: u64 = 5;

/// A shard's database, as the controller reaches it.
#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    port: u16,
    database: String,
}

/// What runs the workflow.
pub struct Controller {
    pub store: WorkflowStore,
    pub wf: Workflow,
    pub password: String,
    /// Stop once this phase's work is done.
    pub stop_after: Phase,
    original: TopologySpec,
    /// The same, validated: table rules for the tenant filters.
    rules: shardgate_topology::Topology,
    endpoints: HashMap<String, Endpoint>,
    /// Verbose progress on stderr.
    pub quiet: bool,
}

/// `SHARDCTL_STALL=<phase>=<ms>`: a fault-injection hook for tests that kill the controller inside a phase.
async fn stall(phase: Phase) {
    let Ok(spec) = std::env::var("SHARDCTL_STALL") else {
        return;
    };
    let ms = spec
        .split_once('=')
        .filter(|(name, _)| *name == phase.name())
        .and_then(|(_, ms)| ms.parse::<u64>().ok());
    if let Some(ms) = ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Controller {
    pub fn new(
        store: WorkflowStore,
        wf: Workflow,
        password: String,
        stop_after: Phase,
    ) -> anyhow::Result<Self> {
        let original = TopologySpec::from_yaml_str(&wf.original_topology)
            .context("the workflow's original topology")?;
        let new: Vec<&shardgate_reshard::NewShard> = match &wf.kind {
            Kind::Split { into, .. } => into.iter().collect(),
            Kind::Merge { into, .. } => vec![into],
            Kind::MoveTenants { new_shard, .. } => new_shard.iter().collect(),
        };
        // Every shard of the original topology, and the ones the workflow creates: name, backend, database.
        let shards = original
            .shards
            .iter()
            .map(|s| (&s.name, &s.backend, &s.database, false))
            .chain(new.iter().map(|s| (&s.name, &s.backend, &s.database, true)));
        let mut endpoints = HashMap::new();
        for (name, backend, database, created) in shards {
            let found = original.backends.iter().find(|b| b.name == *backend);
            let b = match found {
                Some(b) => b,
                None if created => bail!("no backend {backend:?} in the topology"),
                None => continue,
            };
            let endpoint = Endpoint {
                host: b.host.clone(),
                port: b.port,
                database: database.clone(),
            };
            endpoints.insert(name.clone(), endpoint);
        }
        let mut plain = original.clone();
        plain.moves.clear();
        let rules = plain
            .validate()
            .context("the workflow's original topology")?;
        Ok(Controller {
            store,
            wf,
            password,
            stop_after,
            original,
            rules,
            endpoints,
            quiet: false,
        })
    }

    fn say(&self, what: &str) {
        if !self.quiet {
            eprintln!("[{}] {}: {what}", self.wf.id, self.wf.phase.name());
        }
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.wf.updated_at = now();
        self.store.save(&self.wf)?;
        if let Ok(path) = self.store.metrics_path(&self.wf.id) {
            let _ = std::fs::write(&path, super::status::prometheus(&self.wf));
        }
        Ok(())
    }

    async fn connect(&self, shard: &str, database: bool) -> anyhow::Result<Conn> {
        let ep = self
            .endpoints
            .get(shard)
            .with_context(|| format!("no shard {shard:?}"))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(ep.host.clone())
            .tcp_port(ep.port)
            .user(Some(self.wf.settings.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(database.then(|| ep.database.clone()))
            .prefer_socket(false);
        let mut conn = Conn::new(opts)
            .await
            .with_context(|| format!("connecting to shard {shard} ({}:{})", ep.host, ep.port))?;
        // The controller's own writes are neither captured nor fenced.
        conn.query_drop(format!(
            "SET {} = {}",
            capture::BYPASS_VARIABLE,
            string_literal(&self.wf.id)
        ))
        .await?;
        Ok(conn)
    }

    /// The shards keys leave and reach in `direction`.
    fn sides(&self, direction: Direction) -> (Vec<String>, Vec<String>) {
        let sources = self.wf.sources();
        let targets: Vec<String> = match &self.wf.kind {
            Kind::MoveTenants { to, .. } => vec![to.clone()],
            Kind::Split { into, .. } => into.iter().map(|s| s.name.clone()).collect(),
            Kind::Merge { into, .. } => vec![into.name.clone()],
        };
        match direction {
            Direction::Forward => (sources, targets),
            Direction::Back => (targets, sources),
        }
    }

    fn resolver(&self, direction: Direction) -> anyhow::Result<Resolver> {
        let after = || -> anyhow::Result<Box<shardgate_topology::Topology>> {
            let mut spec = plan::owned(
                &self.original,
                &self.wf.kind,
                Direction::Forward,
                &self.original,
            );
            spec.moves.clear();
            Ok(Box::new(spec.validate()?))
        };
        let before = || -> anyhow::Result<Box<shardgate_topology::Topology>> {
            let mut spec = self.original.clone();
            spec.moves.clear();
            Ok(Box::new(spec.validate()?))
        };
        Ok(match (&self.wf.kind, direction) {
            (Kind::MoveTenants { to, .. }, Direction::Forward) => Resolver::One(to.clone()),
            (Kind::MoveTenants { .. }, Direction::Back) | (Kind::Split { .. }, Direction::Back) => {
                Resolver::One(self.wf.sources().first().cloned().unwrap_or_default())
            }
            (Kind::Split { .. }, Direction::Forward) => Resolver::ByTopology(after()?),
            (Kind::Merge { into, .. }, Direction::Forward) => Resolver::One(into.name.clone()),
            (Kind::Merge { .. }, Direction::Back) => Resolver::ByTopology(before()?),
        })
    }

    /// Which rows of `table` move. A tenant move compares the tenant column with literals of its type: strings on an
    /// `xxhash` table (`'42'`, never `42`, which MySQL would compare as a number with every string), integers on a
    /// `hash` table, where a string id has no rows (`'acme'` would compare equal to 0).
    fn filter(&self, table: &TableProgress) -> Filter {
        match (&self.wf.kind, &table.tenant_column) {
            (Kind::MoveTenants { tenants, .. }, Some(column)) => {
                let strings = self.rules.table_rule(&table.table).vindex == Vindex::Xxhash;
                let values = tenants
                    .iter()
                    .filter_map(|t| match (strings, t.parse::<u64>()) {
                        (true, _) => Some(string_literal(t)),
                        (false, Ok(n)) => Some(n.to_string()),
                        (false, Err(_)) => None,
                    })
                    .collect();
                Filter::TenantIn {
                    column: column.clone(),
                    values,
                }
            }
            _ => Filter::All,
        }
    }

    /// The moving tables as they are on `shard`: a source's own, or on any other shard each table once (a merge's
    /// target has the tables of every source).
    fn tables_on(&self, shard: &str) -> Vec<TableProgress> {
        let own: Vec<TableProgress> = self
            .wf
            .tables
            .iter()
            .filter(|t| t.source == shard)
            .cloned()
            .collect();
        if !own.is_empty() {
            return own;
        }
        let mut unique: Vec<TableProgress> = Vec::new();
        for t in &self.wf.tables {
            if !unique.iter().any(|u| u.table == t.table) {
                unique.push(t.clone());
            }
        }
        unique
    }

    /// Publishes the served topology with this workflow's moves replaced by `entries` (nothing when they are so
    /// already); returns the version the proxies are to serve.
    async fn publish_moves(&self, entries: &[(String, MoveState)]) -> anyhow::Result<TopologySpec> {
        let admins = &self.wf.settings.admins;
        let served = fleet::served(admins).await?;
        let next = plan::with_moves(
            &served,
            &self.wf.id,
            &self.wf.kind,
            entries,
            self.wf.settings.hold_ms,
        )?;
        if next.moves == served.moves {
            return Ok(served);
        }
        fleet::publish(admins, &next).await?;
        Ok(next)
    }

    async fn connect_all(&self, shards: &[String]) -> anyhow::Result<Targets> {
        let mut out = HashMap::new();
        for s in shards {
            out.insert(s.clone(), self.connect(s, true).await?);
        }
        Ok(out)
    }

    /// Runs until the workflow ends, stops after `stop_after`, or fails.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        self.kill_orphans().await?;
        if self.store.cancel_requested(&self.wf.id)
            && !self.wf.phase.is_final()
            && !self.wf.phase.target_owns()
        {
            self.wf.cancel()?;
        }
        loop {
            self.save()?;
            if self.wf.phase.is_final() {
                self.say("done");
                return Ok(());
            }
            match self.wf.phase {
                Phase::Create => self.create().await?,
                Phase::DualWrite => self.dual_write().await?,
                Phase::Backfill => self.backfill().await?,
                Phase::Verify => self.verify().await?,
                Phase::Cutover => self.switch(Direction::Forward).await?,
                Phase::Reversing => self.switch(Direction::Back).await?,
                Phase::Switched | Phase::Reversed => {}
                Phase::Cleanup => self.cleanup().await?,
                Phase::Cancelling => self.cancel().await?,
                Phase::Complete | Phase::Cancelled => {}
            }
            if self.stopping()? {
                return Ok(());
            }
            if self.wf.phase == self.stop_after {
                self.save()?;
                self.say("stopped here as asked");
                return Ok(());
            }
            self.wf.advance()?;
        }
    }

    /// Kills DDL a killed controller left running on the servers: its statements go on after it dies, and one still
    /// waiting for a table's metadata lock queues every statement on that table behind it (two of them can make the
    /// server pick a client's statement as a deadlock victim). This process holds the workflow's claim, so no other
    /// live controller of it can be running them.
    async fn kill_orphans(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        let shards: Vec<String> = self.endpoints.keys().cloned().collect();
        for shard in shards {
            let Some(ep) = self.endpoints.get(&shard) else {
                continue;
            };
            if !seen.insert((ep.host.clone(), ep.port)) {
                continue;
            }
            let Ok(mut conn) = self.connect(&shard, false).await else {
                continue;
            };
            let orphans: Vec<u64> = conn
                .query(format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE {}",
                    string_literal(&format!("{}%", ddl_tag(&self.wf.id).trim_end()))
                ))
                .await?;
            for id in orphans {
                self.say(&format!(
                    "killing statement {id} a previous controller left on {}:{}",
                    ep.host, ep.port
                ));
                let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
            }
        }
        Ok(())
    }

    /// A cancel asked for from outside ends this run; the `cancel` command takes over.
    fn stopping(&mut self) -> anyhow::Result<bool> {
        if self.wf.phase != Phase::Cancelling && self.store.cancel_requested(&self.wf.id) {
            self.save()?;
            self.say("stopping: a cancel was asked for");
            return Ok(true);
        }
        Ok(false)
    }

    /// Waits while paused; true when a cancel was asked for meanwhile.
    async fn pause_point(&mut self) -> anyhow::Result<bool> {
        let mut said = false;
        while self.store.is_paused(&self.wf.id) {
            if !said {
                self.say("paused");
                said = true;
            }
            if self.store.cancel_requested(&self.wf.id) {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(self.store.cancel_requested(&self.wf.id)
            && self.wf.phase != Phase::Cancelling
            && !self.wf.phase.target_owns())
    }

    async fn throttle(&self, rows: u64, took: Duration) {
        let mut wait = Duration::ZERO;
        if self.wf.settings.rows_per_second > 0 {
            let budget =
                Duration::from_secs_f64(rows as f64 / self.wf.settings.rows_per_second as f64);
            wait = budget.saturating_sub(took);
        }
        // Back off when the shard is slow: a chunk that took long gets as long again to breathe.
        if took > Duration::from_millis(250) {
            wait = wait.max(took);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A step that met a lock wait timeout or a deadlock (a client's transaction held rows it reads) is tried again
/// this many times.
const RETRIES: u32 = 20;

/// Ends the failed step's source transaction and waits a little longer each time before the next try.
async fn settle(src: &mut Conn, tries: u32) {
    let _ = src.query_drop("ROLLBACK").await;
    tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
}

/// The comment every DDL of a workflow's controller carries, so that a later controller of the workflow finds what
/// a killed one left running (see [`Controller::kill_orphans`]).
fn ddl_tag(workflow: &str) -> String {
    format!("/* shardgate-reshard:{workflow} */ ")
}

/// Runs DDL that needs the table's metadata lock, waiting at most `secs` for it. While it waits, the table's new
/// statements queue behind it: keep `secs` short.
async fn ddl_with_wait(conn: &mut Conn, tag: &str, ddl: &str, secs: u64) -> anyhow::Result<()> {
    conn.query_drop(format!("SET SESSION lock_wait_timeout = {secs}"))
        .await?;
    conn.query_drop(format!("{tag}{ddl}")).await?;
    Ok(())
}

/// DDL outside the cutover: short waits for the metadata lock (so that a long transaction never queues the table's
/// statements for long), tried again until it gets through, for about a minute.
async fn ddl_patiently(conn: &mut Conn, tag: &str, ddl: &str) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match ddl_with_wait(conn, tag, ddl, 1).await {
            Err(e) if tries < 30 && is_lock_wait(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

fn is_lock_wait(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<mysql_async::Error>(), Some(mysql_async::Error::Server(s)) if s.code == 1205)
}
