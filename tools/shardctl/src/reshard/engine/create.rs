//! Create and dual-write: the target tables, change capture on both sides, the proxies told.

use super::*;

impl Controller {
    pub(super) async fn create(&mut self) -> anyhow::Result<()> {
        let (sources, targets) = self.sides(Direction::Forward);
        let new_shard = !matches!(
            self.wf.kind,
            Kind::MoveTenants {
                new_shard: None,
                ..
            }
        );
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
        // A tenant's new dedicated shard joins the topology now, empty (nothing is pinned to it yet), so that schema
        // changes sent through the proxies reach it from here on.
        let served = fleet::served(&self.wf.settings.admins).await?;
        let mut grown = plan::with_new_shard(&served, &self.wf.kind);
        if grown.shards.len() != served.shards.len() {
            grown.version = served.version + 1;
            grown
                .validate()
                .context("the topology with the new shard is invalid")?;
            fleet::publish(&self.wf.settings.admins, &grown).await?;
            fleet::wait_for(&self.wf.settings.admins, grown.version, ACK_WAIT).await?;
        }
        stall(Phase::Create).await;
        self.say("target schemas in place");
        Ok(())
    }

    /// The shard the tenants live on (by the keyspace's default rule; each table is checked in `plan_tables`).
    pub(super) fn tenant_home(&self, tenants: &[String]) -> anyhow::Result<String> {
        let topology = self.original.validate()?;
        let mut home = None;
        for t in tenants {
            let name = plan::tenant_home(&topology, t)?;
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
    pub(super) async fn plan_tables(&mut self, sources: &[String]) -> anyhow::Result<()> {
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
                        // A table whose vindex cannot route this id (a string on a hash table) holds none of its
                        // rows.
                        let Ok(id) = topology.route(&name, tenant_ref) else {
                            continue;
                        };
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
                if matches!(self.filter(&t), Filter::TenantIn { ref values, .. } if values.is_empty())
                {
                    // None of the tenants can have rows here (string ids on a hash table).
                    continue;
                }
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

    pub(super) async fn dual_write(&mut self) -> anyhow::Result<()> {
        let next = self.publish_moves(&self.resting(Direction::Back)).await?;
        self.wf.dual_write_version = Some(next.version);
        self.save()?;
        stall(Phase::DualWrite).await;
        fleet::wait_for(&self.wf.settings.admins, next.version, ACK_WAIT).await?;
        self.say(&format!("every proxy serves version {}", next.version));
        self.capture().await?;
        self.say("change capture in place");
        Ok(())
    }

    /// Dual-write proper, once every proxy knows of the move: change capture on the sources, and on the targets too,
    /// for a reverse after the cutover (nothing writes the moving keys there before it, the controller's own writes
    /// aside). A write committed before is in the source when the backfill reads it.
    async fn capture(&mut self) -> anyhow::Result<()> {
        let (sources, targets) = self.sides(Direction::Forward);
        for s in sources.iter().chain(targets.iter()) {
            let mut conn = self.connect(s, true).await?;
            conn.query_drop(capture::create_changelog()).await?;
            for t in self.tables_on(s) {
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
        Ok(())
    }
}
