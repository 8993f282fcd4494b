//! Backfill and verify: chunked copy under source row locks, captured changes applied, chunk checksums.

use super::*;

impl Controller {
    pub(super) async fn backfill(&mut self) -> anyhow::Result<()> {
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
    pub(super) async fn apply_round(
        &mut self,
        direction: Direction,
        rounds: u64,
    ) -> anyhow::Result<u64> {
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

    pub(super) async fn verify(&mut self) -> anyhow::Result<()> {
        if self.wf.verify.clean {
            // Verified before (a resumed or repeated run): what changed since is in the changelog, applied next.
            self.apply_round(Direction::Forward, CATCH_UP_BATCHES)
                .await?;
            return Ok(());
        }
        let (_, targets) = self.sides(Direction::Forward);
        let resolver = self.resolver(Direction::Forward)?;
        let mut target_conns = self.connect_all(&targets).await?;
        // Each table is compared as a whole: every source's rows (a merge has several) against every target's (a
        // split has several), chunk by chunk in key order.
        let mut names: Vec<String> = Vec::new();
        for t in &self.wf.tables {
            if !names.contains(&t.table) {
                names.push(t.table.clone());
            }
        }
        for _ in 0..VERIFY_PASSES {
            self.apply_round(Direction::Forward, CATCH_UP_BATCHES)
                .await?;
            let mut mismatched = 0;
            let mut rows_compared = 0;
            for name in &names {
                let group: Vec<TableProgress> = self
                    .wf
                    .tables
                    .iter()
                    .filter(|t| &t.table == name)
                    .cloned()
                    .collect();
                let Some(t) = group.first().cloned() else {
                    continue;
                };
                let filter = self.filter(&t);
                let shards: Vec<String> = group.iter().map(|g| g.source.clone()).collect();
                let mut sources = self.connect_all(&shards).await?;
                let mut after: Option<Vec<String>> = None;
                loop {
                    if self.pause_point().await? {
                        return Ok(());
                    }
                    // Chunk ends from the side that holds every row of the table alone.
                    let ends = if sources.len() == 1 {
                        &mut sources
                    } else {
                        &mut target_conns
                    };
                    let Some(conn) = ends.values_mut().next() else {
                        break;
                    };
                    let upto = rows::chunk_end(
                        conn,
                        &t,
                        &filter,
                        after.as_deref(),
                        self.wf.settings.chunk_rows,
                    )
                    .await?;
                    let range = (after.as_deref(), upto.as_deref());
                    let mut equal =
                        compare(&mut sources, &mut target_conns, &t, &filter, range).await?;
                    if !equal.0 {
                        // Writes go on: rows whose changes are captured but not yet applied differ for now and are
                        // copied when they are. Only rows that differ without a pending change are a mismatch (no
                        // change is applied meanwhile: this controller is the only one applying them).
                        let differing = rows::differing_keys(
                            &mut sources,
                            &mut target_conns,
                            &t,
                            &filter,
                            range,
                        )
                        .await?;
                        let pending =
                            rows::pending_keys(&mut sources, &self.wf.id, &t.table).await?;
                        equal.0 = differing.is_subset(&pending);
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
                            .entry(name.clone())
                            .or_default() += 1;
                        let mut tries = 0;
                        loop {
                            let targets = &mut target_conns;
                            let attempt = rows::recopy_range(
                                &mut sources,
                                targets,
                                &t,
                                &filter,
                                &resolver,
                                range,
                            )
                            .await;
                            match attempt {
                                Err(e) if e.is_transient() && tries < RETRIES => {
                                    tries += 1;
                                    for src in sources.values_mut() {
                                        settle(src, tries).await;
                                    }
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
}

/// Whether the sources and the targets hold the same rows in the key range, and how many rows the sources hold.
async fn compare(
    sources: &mut Targets,
    targets: &mut Targets,
    t: &TableProgress,
    filter: &Filter,
    range: (Option<&[String]>, Option<&[String]>),
) -> anyhow::Result<(bool, u64)> {
    let mut conns: Vec<&mut Conn> = sources.values_mut().collect();
    let a = rows::checksum(&mut conns, t, filter, range.0, range.1).await?;
    let mut conns: Vec<&mut Conn> = targets.values_mut().collect();
    let b = rows::checksum(&mut conns, t, filter, range.0, range.1).await?;
    Ok((a == b, a.0))
}
