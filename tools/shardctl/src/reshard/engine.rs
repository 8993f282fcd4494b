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
use shardgate_topology::{MoveState, TopologySpec};

use super::fleet;
use super::plan::{self, Direction};
use super::rows::{self, Resolver, Targets};

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

/// The literal a tenant id is compared with in SQL.
fn tenant_literal(t: &str) -> String {
    match t.parse::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => string_literal(t),
    }
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
        let mut endpoints = HashMap::new();
        let backend = |name: &str| original.backends.iter().find(|b| b.name == name);
        for s in &original.shards {
            if let Some(b) = backend(&s.backend) {
                endpoints.insert(
                    s.name.clone(),
                    Endpoint {
                        host: b.host.clone(),
                        port: b.port,
                        database: s.database.clone(),
                    },
                );
            }
        }
        let new: Vec<&shardgate_reshard::NewShard> = match &wf.kind {
            Kind::Split { into, .. } => into.iter().collect(),
            Kind::Merge { into, .. } => vec![into],
            Kind::MoveTenants { .. } => Vec::new(),
        };
        for s in new {
            let b = backend(&s.backend)
                .with_context(|| format!("no backend {:?} in the topology", s.backend))?;
            endpoints.insert(
                s.name.clone(),
                Endpoint {
                    host: b.host.clone(),
                    port: b.port,
                    database: s.database.clone(),
                },
            );
        }
        Ok(Controller {
            store,
            wf,
            password,
            stop_after,
            original,
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

    fn filter(&self, table: &TableProgress) -> Filter {
        match (&self.wf.kind, &table.tenant_column) {
            (Kind::MoveTenants { tenants, .. }, Some(column)) => Filter::TenantIn {
                column: column.clone(),
                values: tenants.iter().map(|t| tenant_literal(t)).collect(),
            },
            _ => Filter::All,
        }
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

    // ---- create ---------------------------------------------------------------------------------------------

    async fn create(&mut self) -> anyhow::Result<()> {
        let (sources, targets) = self.sides(Direction::Forward);
        let new_shard = !matches!(self.wf.kind, Kind::MoveTenants { .. });
        if new_shard {
            for t in &targets {
                let mut conn = self.connect(t, false).await?;
                let db = self
                    .endpoints
                    .get(t)
                    .map(|e| e.database.clone())
                    .unwrap_or_default();
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote(&db)))
                    .await?;
            }
        }
        if self.wf.tables.is_empty() {
            let sources = match &self.wf.kind {
                Kind::MoveTenants { tenants, .. } => vec![self.tenant_home(tenants)?],
                _ => sources,
            };
            self.plan_tables(&sources).await?;
            self.save()?;
        }
        let mut target_conns = self.connect_all(&targets).await?;
        let sources = self.wf.sources();
        for s in &sources {
            let mut src = self.connect(s, true).await?;
            let tables: Vec<String> = self
                .wf
                .tables
                .iter()
                .filter(|t| &t.source == s)
                .map(|t| t.table.clone())
                .collect();
            for table in &tables {
                let (_, ddl): (String, String) = src
                    .query_first(format!("SHOW CREATE TABLE {}", quote(table)))
                    .await?
                    .with_context(|| format!("SHOW CREATE TABLE {table}"))?;
                let ddl = ddl.replacen("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1);
                for conn in target_conns.values_mut() {
                    conn.query_drop(&ddl).await?;
                }
            }
        }
        stall(Phase::Create).await;
        // Change capture on the sources; on the targets too, for a reverse after the cutover (nothing writes the
        // moving keys there before it, the controller's own writes aside).
        for s in sources.iter().chain(targets.iter()) {
            let mut conn = self.connect(s, true).await?;
            conn.query_drop(capture::create_changelog()).await?;
            for t in self.wf.tables.clone() {
                if t.tenant_column.is_none() && !sources.contains(s) {
                    continue;
                }
                let filter = self.filter(&t);
                for ddl in capture::drop_triggers(&self.wf.id, &t.table, Purpose::Capture)
                    .into_iter()
                    .chain(capture::capture_triggers(
                        &self.wf.id,
                        &t.table,
                        &t.key_columns,
                        &filter,
                    ))
                {
                    ddl_patiently(&mut conn, &ddl_tag(&self.wf.id), &ddl).await?;
                }
            }
        }
        self.say("target schemas and change capture in place");
        Ok(())
    }

    /// The shard the tenants live on (by the keyspace's default rule; each table is checked in `plan_tables`).
    fn tenant_home(&self, tenants: &[String]) -> anyhow::Result<String> {
        let topology = self.original.validate()?;
        let mut home = None;
        for t in tenants {
            let tenant = super::tenant_of(t);
            let text = tenant.canonical_text();
            let tenant_ref = match &tenant {
                shardgate_topology::PinTenant::Int(n) => shardgate_topology::TenantRef::Int(*n),
                shardgate_topology::PinTenant::Str(_) => shardgate_topology::TenantRef::Str(&text),
            };
            let id = topology.route("", tenant_ref)?;
            let name = topology
                .shard(id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if home.as_ref().is_some_and(|h| *h != name) {
                bail!(
                    "the tenants live on different shards ({} and {name}): move them in separate workflows",
                    home.unwrap_or_default()
                );
            }
            home = Some(name);
        }
        home.context("name at least one tenant")
    }

    /// Lists the tables that move from each source, with their keys and sizes.
    async fn plan_tables(&mut self, sources: &[String]) -> anyhow::Result<()> {
        let topology = self.original.validate()?;
        let mut planned = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            let mut src = self.connect(s, true).await?;
            let names: Vec<String> = src
                .query(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND \
                     TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE '\\_shardgate%' ORDER BY TABLE_NAME",
                )
                .await?;
            for name in names {
                let reference = topology.is_reference_table(&name);
                let moves_tenants = matches!(self.wf.kind, Kind::MoveTenants { .. });
                // Reference tables are on every shard already; a new shard gets one copy, from the first source.
                if reference && (moves_tenants || i > 0) {
                    continue;
                }
                let columns: Vec<String> = src
                    .exec(
                        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND \
                         TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                        (&name,),
                    )
                    .await?;
                let keys: Vec<(String, String)> = src
                    .exec(
                        "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k JOIN \
                         information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = \
                         k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME WHERE k.TABLE_SCHEMA = DATABASE() AND \
                         k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION",
                        (&name,),
                    )
                    .await?;
                if keys.is_empty() {
                    bail!(
                        "table {name} on shard {s} has no primary key: it cannot be copied in chunks"
                    );
                }
                if let Some((k, ty)) = keys
                    .iter()
                    .find(|(_, ty)| ty.contains("binary") || ty.contains("blob"))
                {
                    bail!(
                        "table {name}: primary-key column {k} is of type {ty}, which change capture cannot record"
                    );
                }
                let tenant_column =
                    (!reference).then(|| topology.sharding_column(&name).to_string());
                if let Kind::MoveTenants { tenants, .. } = &self.wf.kind {
                    for t in tenants {
                        let text = t.clone();
                        let tenant_ref = match t.parse::<u64>() {
                            Ok(n) => shardgate_topology::TenantRef::Int(n),
                            Err(_) => shardgate_topology::TenantRef::Str(&text),
                        };
                        let id = topology.route(&name, tenant_ref)?;
                        let there = topology
                            .shard(id)
                            .map(|x| x.name.as_str())
                            .unwrap_or_default();
                        if there != s {
                            bail!(
                                "table {name} keeps tenant {t} on shard {there}, not {s}: move it in its own workflow"
                            );
                        }
                    }
                }
                if let Some(col) = tenant_column
                    .as_ref()
                    .filter(|col| !columns.iter().any(|c| c.eq_ignore_ascii_case(col)))
                {
                    bail!("table {name} on shard {s} has no tenant column {col}");
                }
                let mut t =
                    TableProgress::new(s, &name, keys.into_iter().map(|(k, _)| k).collect());
                t.columns = columns;
                t.tenant_column = tenant_column;
                planned.push(t);
            }
        }
        self.wf.tables = planned;
        for i in 0..self.wf.tables.len() {
            let t = self.wf.tables[i].clone();
            let mut src = self.connect(&t.source, true).await?;
            let n: Option<u64> = src
                .query_first(format!(
                    "SELECT COUNT(*) FROM {} WHERE {}",
                    quote(&t.table),
                    self.filter(&t).sql("")
                ))
                .await?;
            self.wf.tables[i].rows_estimated = n.unwrap_or(0);
        }
        Ok(())
    }

    // ---- dual-write -----------------------------------------------------------------------------------------

    async fn dual_write(&mut self) -> anyhow::Result<()> {
        let (sources, _) = self.sides(Direction::Forward);
        let served = fleet::served(&self.wf.settings.admins).await?;
        let next = plan::with_moves(
            &served,
            &self.wf.id,
            &self.wf.kind,
            &sources,
            Some(MoveState::DualWrite),
            self.wf.settings.hold_ms,
        )?;
        fleet::publish(&self.wf.settings.admins, &next).await?;
        self.wf.dual_write_version = Some(next.version);
        self.save()?;
        stall(Phase::DualWrite).await;
        fleet::wait_for(&self.wf.settings.admins, next.version, ACK_WAIT).await?;
        self.say(&format!("every proxy serves version {}", next.version));
        Ok(())
    }

    // ---- backfill -------------------------------------------------------------------------------------------

    async fn backfill(&mut self) -> anyhow::Result<()> {
        let (_, targets) = self.sides(Direction::Forward);
        let resolver = self.resolver(Direction::Forward)?;
        let mut target_conns = self.connect_all(&targets).await?;
        let started = Instant::now();
        let mut copied_here = 0u64;
        let mut stalled = false;
        for i in 0..self.wf.tables.len() {
            let mut src = self
                .connect(&self.wf.tables[i].source.clone(), true)
                .await?;
            let mut last_apply = Instant::now();
            while !self.wf.tables[i].copied {
                if self.pause_point().await? {
                    return Ok(());
                }
                let t = self.wf.tables[i].clone();
                let filter = self.filter(&t);
                let chunk_started = Instant::now();
                let mut tries = 0;
                let copied = loop {
                    let chunk = self.wf.settings.chunk_rows;
                    let attempt = rows::copy_chunk(
                        &mut src,
                        &mut target_conns,
                        &t,
                        &filter,
                        &resolver,
                        chunk,
                    )
                    .await;
                    match attempt {
                        Err(e) if e.is_transient() && tries < RETRIES => {
                            tries += 1;
                            settle(&mut src, tries).await;
                        }
                        other => break other?,
                    }
                };
                let (n, last) = match copied {
                    Some((n, key)) => (n, Some(key)),
                    None => (0, None),
                };
                self.wf.checkpoint(&t.source, &t.table, n, last)?;
                copied_here += n;
                let secs = started.elapsed().as_secs_f64().max(0.001);
                self.wf.copy_rate = copied_here as f64 / secs;
                if last_apply.elapsed() > Duration::from_millis(500) {
                    self.apply_round(Direction::Forward, 1).await?;
                    last_apply = Instant::now();
                }
                self.save()?;
                if !stalled {
                    stall(Phase::Backfill).await;
                    stalled = true;
                }
                self.throttle(n, chunk_started.elapsed()).await;
            }
        }
        self.say(&format!(
            "copied {copied_here} rows at {:.0} rows/s",
            self.wf.copy_rate
        ));
        Ok(())
    }

    /// Applies captured changes in `direction`, up to `rounds` batches per source (0: until none are left, only
    /// once the source is fenced and nothing new can come); returns how many.
    async fn apply_round(&mut self, direction: Direction, rounds: u64) -> anyhow::Result<u64> {
        let (from, to) = self.sides(direction);
        let resolver = self.resolver(direction)?;
        let mut targets = self.connect_all(&to).await?;
        let mut total = 0;
        let mut pending = 0;
        for s in &from {
            let mut src = self.connect(s, true).await?;
            let tables: Vec<TableProgress> = self
                .wf
                .tables
                .iter()
                .filter(|t| direction == Direction::Back || &t.source == s)
                .cloned()
                .collect();
            let refs: Vec<&TableProgress> = tables.iter().collect();
            let filters = |t: &TableProgress| self.filter(t);
            let mut round = 0;
            let mut tries = 0;
            loop {
                let attempt = rows::apply_changes(
                    &mut src,
                    &mut targets,
                    &self.wf.id,
                    &refs,
                    &filters,
                    &resolver,
                    APPLY_BATCH,
                )
                .await;
                let n = match attempt {
                    Err(e) if e.is_transient() && tries < RETRIES => {
                        tries += 1;
                        settle(&mut src, tries).await;
                        continue;
                    }
                    other => other?,
                };
                total += n;
                round += 1;
                if n == 0 || (rounds > 0 && round >= rounds) {
                    break;
                }
            }
            pending += rows::pending(&mut src, &self.wf.id).await?;
        }
        self.wf.changes_applied += total;
        self.wf.changes_pending = pending;
        Ok(total)
    }

    // ---- verify ---------------------------------------------------------------------------------------------

    async fn verify(&mut self) -> anyhow::Result<()> {
        if self.wf.verify.clean {
            // Verified before (a resumed or repeated run): what changed since is in the changelog, applied next.
            self.apply_round(Direction::Forward, CATCH_UP_BATCHES)
                .await?;
            return Ok(());
        }
        let (_, targets) = self.sides(Direction::Forward);
        let resolver = self.resolver(Direction::Forward)?;
        let mut target_conns = self.connect_all(&targets).await?;
        for _ in 0..VERIFY_PASSES {
            self.apply_round(Direction::Forward, CATCH_UP_BATCHES)
                .await?;
            let mut mismatched = 0;
            let mut rows_compared = 0;
            for i in 0..self.wf.tables.len() {
                let t = self.wf.tables[i].clone();
                let filter = self.filter(&t);
                let mut src = self.connect(&t.source, true).await?;
                let mut after: Option<Vec<String>> = None;
                loop {
                    if self.pause_point().await? {
                        return Ok(());
                    }
                    let upto = rows::chunk_end(
                        &mut src,
                        &t,
                        &filter,
                        after.as_deref(),
                        self.wf.settings.chunk_rows,
                    )
                    .await?;
                    let range = (after.as_deref(), upto.as_deref());
                    let mut equal = self
                        .compare(&mut src, &mut target_conns, &t, &filter, range)
                        .await?;
                    if !equal.0 {
                        // Maybe only lag: apply what was captured, then look again.
                        self.apply_round(Direction::Forward, CATCH_UP_BATCHES)
                            .await?;
                        equal = self
                            .compare(&mut src, &mut target_conns, &t, &filter, range)
                            .await?;
                    }
                    rows_compared += equal.1;
                    self.wf.verify.chunks_checked += 1;
                    if !equal.0 {
                        mismatched += 1;
                        self.wf.verify.chunks_mismatched += 1;
                        *self
                            .wf
                            .verify
                            .mismatches_by_table
                            .entry(format!("{}/{}", t.source, t.table))
                            .or_default() += 1;
                        let mut tries = 0;
                        loop {
                            let filters = (&filter, &filter);
                            let targets = &mut target_conns;
                            let attempt = rows::recopy_range(
                                &mut src, targets, &t, filters, &resolver, range,
                            )
                            .await;
                            match attempt {
                                Err(e) if e.is_transient() && tries < RETRIES => {
                                    tries += 1;
                                    settle(&mut src, tries).await;
                                }
                                other => {
                                    other?;
                                    break;
                                }
                            };
                        }
                    }
                    match upto {
                        Some(key) => after = Some(key),
                        None => break,
                    }
                }
                self.save()?;
            }
            self.wf.verify.passes += 1;
            self.wf.verify.rows_compared = rows_compared;
            self.wf.verify.clean = mismatched == 0;
            self.save()?;
            self.say(&format!(
                "verify pass {}: {mismatched} chunks differed, {rows_compared} rows compared",
                self.wf.verify.passes
            ));
            if self.wf.verify.clean {
                return Ok(());
            }
            stall(Phase::Verify).await;
        }
        bail!(
            "verify found differing chunks in {VERIFY_PASSES} passes in a row; they were copied again: run resume to verify again"
        )
    }

    async fn compare(
        &self,
        src: &mut Conn,
        targets: &mut Targets,
        t: &TableProgress,
        filter: &Filter,
        range: (Option<&[String]>, Option<&[String]>),
    ) -> anyhow::Result<(bool, u64)> {
        let a = rows::checksum(&mut [src], t, filter, range.0, range.1).await?;
        let mut conns: Vec<&mut Conn> = targets.values_mut().collect();
        let b = rows::checksum(&mut conns, t, filter, range.0, range.1).await?;
        Ok((a == b, a.0))
    }

    // ---- cutover and reverse --------------------------------------------------------------------------------

    /// The moves this workflow leaves in the topology while nothing is held: the source owning the keys has them in
    /// dual-write; once the target owns them, a tenant move's source is in cleanup (it still holds copies).
    fn resting(&self, owner: Direction) -> (Option<MoveState>, Vec<String>) {
        let (sources, _) = self.sides(Direction::Forward);
        match (owner, &self.wf.kind) {
            (Direction::Back, _) => (Some(MoveState::DualWrite), sources),
            (Direction::Forward, Kind::MoveTenants { .. }) => (Some(MoveState::Cleanup), sources),
            (Direction::Forward, _) => (None, Vec::new()),
        }
    }

    /// Drops this workflow's fences on `shards`; only those that exist, since even a DROP TRIGGER IF EXISTS waits
    /// for the table's metadata lock.
    async fn drop_fences(&self, shards: &[String], within: Duration) -> anyhow::Result<()> {
        let secs = within.as_secs_f64().ceil().max(1.0) as u64;
        for s in shards {
            let mut conn = self.connect(s, true).await?;
            let existing: Vec<String> = conn
                .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
                .await?;
            for t in &self.wf.tables {
                for event in capture::Event::ALL {
                    let name = capture::trigger_name(&self.wf.id, &t.table, Purpose::Deny, event);
                    if existing.contains(&name) {
                        ddl_with_wait(
                            &mut conn,
                            &ddl_tag(&self.wf.id),
                            &format!("DROP TRIGGER IF EXISTS {}", quote(&name)),
                            secs,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Cutover (`Forward`) or reverse (`Back`): hold, fence, drain, flip, release — or abort within the bound.
    async fn switch(&mut self, direction: Direction) -> anyhow::Result<()> {
        let (from, to) = self.sides(direction);
        let owner_before = match direction {
            Direction::Forward => Direction::Back,
            Direction::Back => Direction::Forward,
        };
        let served = fleet::served(&self.wf.settings.admins).await?;
        if plan::is_owned(&served, &self.wf.kind, direction) {
            // A controller killed just after the flip: it happened.
            self.say("the flip was already published");
            return self.switched(direction, &served, 0, 0, &from).await;
        }
        // A previous attempt may have died holding or fenced: undo it first.
        self.drop_fences(&from, Duration::from_secs(30)).await?;
        let (state, shards) = self.resting(owner_before);
        let unheld = plan::with_moves(
            &served,
            &self.wf.id,
            &self.wf.kind,
            &shards,
            state,
            self.wf.settings.hold_ms,
        )?;
        if unheld.moves != served.moves {
            fleet::publish(&self.wf.settings.admins, &unheld).await?;
        }
        // Start with a small backlog, so that the hold is short.
        for _ in 0..25 {
            self.apply_round(direction, CATCH_UP_BATCHES).await?;
            if self.wf.changes_pending <= CUTOVER_BACKLOG {
                break;
            }
        }
        if self.wf.changes_pending > CUTOVER_BACKLOG {
            self.save()?;
            bail!(
                "{} captured changes are still waiting to be applied: clients write faster than the copy keeps up; \
                 cut over when the write rate is lower (the workflow stays where it is)",
                self.wf.changes_pending
            );
        }
        stall(if direction == Direction::Forward {
            Phase::Cutover
        } else {
            Phase::Reversing
        })
        .await;
        let bound = Duration::from_millis(self.wf.settings.hold_ms);
        let started = Instant::now();
        let attempt = self
            .hold_and_flip(direction, &from, &to, started, bound)
            .await;
        match attempt {
            Ok((flipped, drained)) => {
                let held = started.elapsed().as_millis() as u64;
                self.switched(direction, &flipped, held, drained, &from)
                    .await
            }
            Err(reason) => {
                let held = started.elapsed().as_millis() as u64;
                // Release to the side that owns the keys: no fence, no hold.
                self.drop_fences(&from, Duration::from_secs(30)).await?;
                let served = fleet::served(&self.wf.settings.admins).await?;
                let (state, shards) = self.resting(owner_before);
                let released = plan::with_moves(
                    &served,
                    &self.wf.id,
                    &self.wf.kind,
                    &shards,
                    state,
                    self.wf.settings.hold_ms,
                )?;
                fleet::publish(&self.wf.settings.admins, &released).await?;
                let reason = format!("{reason:#}");
                self.wf.cutovers.push(CutoverReport {
                    at: now(),
                    outcome: "aborted".into(),
                    held_ms: held,
                    changes_drained: 0,
                    reason: Some(reason.clone()),
                });
                self.wf.last_error = Some(format!("cutover aborted after {held} ms: {reason}"));
                let back = if direction == Direction::Forward {
                    Phase::Verify
                } else {
                    Phase::Switched
                };
                if direction == Direction::Forward {
                    self.wf.abort_cutover(back)?;
                } else {
                    self.wf.phase = back;
                }
                self.save()?;
                bail!("cutover aborted after {held} ms, traffic stays where it was: {reason}")
            }
        }
    }

    async fn hold_and_flip(
        &mut self,
        direction: Direction,
        from: &[String],
        to: &[String],
        started: Instant,
        bound: Duration,
    ) -> anyhow::Result<(TopologySpec, u64)> {
        let left = |what: &str| -> anyhow::Result<Duration> {
            let used = started.elapsed();
            if used >= bound {
                bail!(
                    "the hold bound of {} ms passed while {what}",
                    bound.as_millis()
                );
            }
            Ok(bound - used)
        };
        let admins = self.wf.settings.admins.clone();
        let served = fleet::served(&admins).await?;
        let held = plan::with_moves(
            &served,
            &self.wf.id,
            &self.wf.kind,
            from,
            Some(MoveState::Hold),
            self.wf.settings.hold_ms,
        )?;
        fleet::publish(&admins, &held).await?;
        fleet::wait_for(
            &admins,
            held.version,
            left("waiting for the proxies to hold")?,
        )
        .await?;
        // The fence: each CREATE TRIGGER waits for the transactions using the table to end (its metadata lock).
        for s in from {
            let mut conn = self.connect(s, true).await?;
            for t in self.wf.tables.clone() {
                if t.tenant_column.is_none() {
                    // Reference tables keep being written through every shard; they are not fenced.
                    continue;
                }
                let filter = self.filter(&t);
                for ddl in capture::deny_triggers(&self.wf.id, &t.table, &filter) {
                    let wait = left(&format!("fencing {} on {s}", t.table))?;
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    ddl_with_wait(&mut conn, &ddl_tag(&self.wf.id), &ddl, secs)
                        .await
                        .with_context(|| {
                            format!(
                                "fencing table {} on shard {s} (a transaction kept it busy)",
                                t.table
                            )
                        })?;
                }
            }
        }
        left("fencing the source")?;
        let before = self.wf.changes_applied;
        self.apply_round(direction, 0).await?;
        let drained = self.wf.changes_applied - before;
        // The side that gets the keys is no longer fenced (after a reverse, it was).
        self.drop_fences(to, left("applying the last captured changes")?)
            .await?;
        left("unfencing the target")?;
        let served = fleet::served(&admins).await?;
        let (state, shards) = self.resting(direction);
        let after = state.map(|s| (s, &shards[..]));
        let flipped = plan::flipped(
            &served,
            &self.original,
            &self.wf.id,
            &self.wf.kind,
            direction,
            after,
            self.wf.settings.hold_ms,
        )?;
        fleet::publish(&admins, &flipped).await?;
        Ok((flipped, drained))
    }

    async fn switched(
        &mut self,
        direction: Direction,
        flipped: &TopologySpec,
        held_ms: u64,
        drained: u64,
        _from: &[String],
    ) -> anyhow::Result<()> {
        let outcome = if direction == Direction::Forward {
            "switched"
        } else {
            "reversed"
        };
        self.wf.cutovers.push(CutoverReport {
            at: now(),
            outcome: outcome.into(),
            held_ms,
            changes_drained: drained,
            reason: None,
        });
        self.wf.cutover_version = Some(flipped.version);
        self.save()?;
        self.say(&format!(
            "{outcome} in version {} after holding {held_ms} ms ({drained} changes drained)",
            flipped.version
        ));
        // The holds end as each proxy sees the flip; a laggard keeps holding until it does.
        fleet::wait_for(&self.wf.settings.admins, flipped.version, ACK_WAIT).await
    }

    // ---- cleanup, cancel ------------------------------------------------------------------------------------

    /// Deletes rows in chunks (the controller's session is neither captured nor fenced); returns how many.
    async fn delete_in_chunks(
        &mut self,
        shard: &str,
        i: usize,
        filter: &Filter,
    ) -> anyhow::Result<u64> {
        let t = self.wf.tables[i].clone();
        let mut conn = self.connect(shard, true).await?;
        let mut total = 0;
        loop {
            if self.pause_point().await? {
                return Ok(total);
            }
            let started = Instant::now();
            let sql = capture::delete_chunk(
                &t.table,
                &t.key_columns,
                filter,
                self.wf.settings.chunk_rows,
            );
            conn.query_drop(&sql).await?;
            let n = conn.affected_rows();
            total += n;
            if self.wf.phase == Phase::Cleanup {
                self.wf.tables[i].rows_cleaned += n;
                self.save()?;
            }
            if n == 0 {
                return Ok(total);
            }
            self.throttle(n, started.elapsed()).await;
        }
    }

    async fn remove_capture(&self, shards: &[String]) -> anyhow::Result<()> {
        for s in shards {
            let mut conn = self.connect(s, true).await?;
            for t in &self.wf.tables {
                for purpose in [Purpose::Capture, Purpose::Deny] {
                    for ddl in capture::drop_triggers(&self.wf.id, &t.table, purpose) {
                        ddl_patiently(&mut conn, &ddl_tag(&self.wf.id), &ddl).await?;
                    }
                }
            }
            let exists: Option<String> = conn
                .query_first(format!(
                    "SHOW TABLES LIKE {}",
                    string_literal(capture::CHANGELOG_TABLE)
                ))
                .await?;
            if exists.is_some() {
                conn.query_drop(format!(
                    "DELETE FROM {} WHERE workflow = {}",
                    quote(capture::CHANGELOG_TABLE),
                    string_literal(&self.wf.id)
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn remove_moves(&self) -> anyhow::Result<()> {
        let served = fleet::served(&self.wf.settings.admins).await?;
        if served.moves.iter().any(|m| m.workflow == self.wf.id) {
            let next = plan::with_moves(
                &served,
                &self.wf.id,
                &self.wf.kind,
                &[],
                None,
                self.wf.settings.hold_ms,
            )?;
            fleet::publish(&self.wf.settings.admins, &next).await?;
            fleet::wait_for(&self.wf.settings.admins, next.version, ACK_WAIT).await?;
        }
        Ok(())
    }

    async fn cleanup(&mut self) -> anyhow::Result<()> {
        stall(Phase::Cleanup).await;
        for i in 0..self.wf.tables.len() {
            let t = self.wf.tables[i].clone();
            if t.tenant_column.is_none() {
                continue;
            }
            let filter = self.filter(&t);
            let n = self.delete_in_chunks(&t.source, i, &filter).await?;
            self.say(&format!(
                "deleted {n} rows of {} from {}",
                t.table, t.source
            ));
        }
        let (sources, targets) = self.sides(Direction::Forward);
        self.remove_capture(&sources).await?;
        self.remove_capture(&targets).await?;
        self.remove_moves().await?;
        Ok(())
    }

    async fn cancel(&mut self) -> anyhow::Result<()> {
        let (sources, targets) = self.sides(Direction::Forward);
        let served = fleet::served(&self.wf.settings.admins).await?;
        if plan::is_owned(&served, &self.wf.kind, Direction::Forward) {
            bail!("the target owns the keys: reverse first, then cancel");
        }
        self.remove_moves().await?;
        self.remove_capture(&sources).await?;
        self.remove_capture(&targets).await?;
        match &self.wf.kind {
            Kind::MoveTenants { .. } => {
                for i in 0..self.wf.tables.len() {
                    let t = self.wf.tables[i].clone();
                    let filter = self.filter(&t);
                    for target in &targets {
                        self.delete_in_chunks(target, i, &filter).await?;
                    }
                }
            }
            Kind::Split { .. } | Kind::Merge { .. } => {
                for target in &targets {
                    let db = self
                        .endpoints
                        .get(target)
                        .map(|e| e.database.clone())
                        .unwrap_or_default();
                    let mut conn = self.connect(target, false).await?;
                    conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote(&db)))
                        .await?;
                }
            }
        }
        self.store.request_cancel(&self.wf.id, false)?;
        self.say("target copy dropped; the source is as it was");
        Ok(())
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
