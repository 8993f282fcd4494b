//! Cutover and reverse: hold, drain, fence, apply the last changes, flip, release — or abort within the bound.

use super::*;

impl Controller {
    /// The moves this workflow leaves in the topology while nothing is held, by who owns the keys: the source (the
    /// keys are in dual-write there), or the target (a tenant move's source is in cleanup: it still holds copies).
    pub(super) fn resting(&self, owner: Direction) -> Vec<(String, MoveState)> {
        let (sources, _) = self.sides(Direction::Forward);
        let state = match (owner, &self.wf.kind) {
            (Direction::Back, _) => MoveState::DualWrite,
            (Direction::Forward, Kind::MoveTenants { .. }) => MoveState::Cleanup,
            (Direction::Forward, _) => return Vec::new(),
        };
        sources.into_iter().map(|s| (s, state)).collect()
    }

    /// Before a switch in `direction`: the resting moves, with the side the keys leave in dual-write, so that every
    /// proxy counts the transactions and statements working on them (the drain waits for those).
    fn announced(&self, direction: Direction, state: MoveState) -> Vec<(String, MoveState)> {
        let (from, _) = self.sides(direction);
        let owner = match direction {
            Direction::Forward => Direction::Back,
            Direction::Back => Direction::Forward,
        };
        let mut entries: Vec<(String, MoveState)> = self
            .resting(owner)
            .into_iter()
            .filter(|(s, _)| !from.contains(s))
            .collect();
        entries.extend(from.into_iter().map(|s| (s, state)));
        entries
    }

    /// Drops this workflow's fences on `shards`; only those that exist, since even a DROP TRIGGER IF EXISTS waits
    /// for the table's metadata lock.
    pub(super) async fn drop_fences(
        &self,
        shards: &[String],
        within: Duration,
    ) -> anyhow::Result<()> {
        let secs = within.as_secs_f64().ceil().max(1.0) as u64;
        for s in shards {
            let mut conn = self.connect(s, true).await?;
            let existing: Vec<String> = conn
                .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
                .await?;
            for t in &self.tables_on(s) {
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
    pub(super) async fn switch(&mut self, direction: Direction) -> anyhow::Result<()> {
        let (from, to) = self.sides(direction);
        let served = fleet::served(&self.wf.settings.admins).await?;
        if plan::is_owned(&served, &self.wf.kind, direction) {
            // A controller killed just after the flip: it happened.
            self.say("the flip was already published");
            return self.switched(direction, &served, 0, 0, &from).await;
        }
        // A previous attempt may have died holding or fenced: undo it first.
        self.drop_fences(&from, Duration::from_secs(30)).await?;
        let announced = self
            .publish_moves(&self.announced(direction, MoveState::DualWrite))
            .await?;
        fleet::wait_for(&self.wf.settings.admins, announced.version, ACK_WAIT).await?;
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
                self.publish_moves(&self.announced(direction, MoveState::DualWrite))
                    .await?;
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

    pub(super) async fn hold_and_flip(
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
        let held = self
            .publish_moves(&self.announced(direction, MoveState::Hold))
            .await?;
        fleet::wait_for(
            &admins,
            held.version,
            left("waiting for the proxies to hold")?,
        )
        .await?;
        // The drain: transactions and statements that were working on the moving keys before the hold end by
        // themselves; new ones are held.
        fleet::wait_drained(
            &admins,
            left("waiting for transactions on the moving keys to end")?,
        )
        .await?;
        // The fence: each CREATE TRIGGER also waits for the transactions using the table (its metadata lock).
        for s in from {
            let mut conn = self.connect(s, true).await?;
            for t in self.tables_on(s) {
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
        let flipped = plan::flipped(
            &served,
            &self.original,
            &self.wf.id,
            &self.wf.kind,
            direction,
            &self.resting(direction),
            self.wf.settings.hold_ms,
        )?;
        fleet::publish(&admins, &flipped).await?;
        Ok((flipped, drained))
    }

    pub(super) async fn switched(
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
}
