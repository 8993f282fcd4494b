//! Cleanup and cancel: the moved rows deleted from the source, or the target copy dropped; the machinery removed.

use super::*;

impl Controller {
    /// Deletes rows in chunks (the controller's session is neither captured nor fenced); returns how many.
    pub(super) async fn delete_in_chunks(
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

    pub(super) async fn remove_capture(&self, shards: &[String]) -> anyhow::Result<()> {
        for s in shards {
            let mut conn = self.connect(s, true).await?;
            for t in &self.tables_on(s) {
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

    pub(super) async fn remove_moves(&self) -> anyhow::Result<()> {
        let next = self.publish_moves(&[]).await?;
        fleet::wait_for(&self.wf.settings.admins, next.version, ACK_WAIT).await
    }

    pub(super) async fn cleanup(&mut self) -> anyhow::Result<()> {
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

    pub(super) async fn cancel(&mut self) -> anyhow::Result<()> {
        let (sources, targets) = self.sides(Direction::Forward);
        let served = fleet::served(&self.wf.settings.admins).await?;
        if plan::is_owned(&served, &self.wf.kind, Direction::Forward) {
            bail!("the target owns the keys: reverse first, then cancel");
        }
        self.remove_moves().await?;
        self.remove_capture(&sources).await?;
        self.remove_capture(&targets).await?;
        match &self.wf.kind {
            Kind::MoveTenants {
                new_shard: Some(new),
                ..
            } => {
                // The dedicated shard the workflow made leaves the topology, then its database goes.
                let served = fleet::served(&self.wf.settings.admins).await?;
                if served.shards.iter().any(|s| s.name == new.name)
                    && !served.pins.iter().any(|p| p.shard == new.name)
                {
                    let mut next = served.clone();
                    next.version += 1;
                    next.shards.retain(|s| s.name != new.name);
                    next.validate()
                        .context("the topology without the new shard is invalid")?;
                    fleet::publish(&self.wf.settings.admins, &next).await?;
                    fleet::wait_for(&self.wf.settings.admins, next.version, ACK_WAIT).await?;
                }
                let mut conn = self.connect(&new.name, false).await?;
                conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote(&new.database)))
                    .await?;
            }
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
