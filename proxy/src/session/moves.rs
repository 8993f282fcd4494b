//! Statements meet resharding: held during a cutover, refused where the source still holds moved rows.
//!
//! The current topology's moves (`shardgate_topology::moves`) say which keys a workflow is moving. While one is in
//! `hold`, a statement that would touch its keys waits for a version that ends the hold (the workflow flipped
//! ownership, or gave up), at most `hold_max_ms`, then runs where that version sends it. A transaction that already
//! touched the moving keys is not held but counted (`moving_transactions`, on the admin endpoint): the workflow
//! fences the source only once no proxy counts one, and holding it would wait for the fence. While a move is in `cleanup`, a statement reaching every shard would count the source's leftover
//! copies as well as the target's rows: refused until the workflow completes.
//!
//! Nothing here runs unless the topology has moves: the hot path pays one length check.

use std::sync::Arc;
use std::time::Duration;

use shardgate_sql::{Route, TenantKey};
use shardgate_topology::{Move, MoveState, TenantRef, Topology};
use tokio::time::Instant;
use tracing::info;

use super::Session;
use crate::mysql_error::*;
use crate::stats::Inflight;

/// How often a held statement looks for the version that releases it.
const POLL: Duration = Duration::from_millis(2);

/// A statement's way past the moves: whether it waited, and its count as in flight on moving keys (dropped when
/// the statement is done).
#[derive(Default)]
pub(super) struct Passage {
    pub waited: bool,
    pub inflight: Option<Inflight>,
}

/// What a statement reaches, as far as moves care.
pub(super) enum Reach {
    /// One tenant's rows of a table.
    Tenant { table: String, tenant: Tenant },
    /// Possibly every shard (a scatter, a split insert, a statement for every shard).
    Shards,
}

/// A tenant id, owned: a held statement outlives the packet it was read from.
pub(super) enum Tenant {
    Int(u64),
    Str(String),
}

impl Tenant {
    fn as_ref(&self) -> TenantRef<'_> {
        match self {
            Tenant::Int(n) => TenantRef::Int(*n),
            Tenant::Str(s) => TenantRef::Str(s),
        }
    }

    pub(super) fn of(tenant: TenantRef<'_>) -> Tenant {
        match tenant {
            TenantRef::Int(n) => Tenant::Int(n),
            TenantRef::Str(s) => Tenant::Str(s.to_string()),
        }
    }
}

impl Reach {
    /// What a text statement's route reaches; `None` when it touches no sharded table, or its tenant is a
    /// parameter (prepared statements say with [`Reach::Tenant`] built from the bound value).
    pub(super) fn of_route(route: &Route) -> Option<Reach> {
        match route {
            Route::Tenant { table, key } => {
                let tenant = match key {
                    TenantKey::Int(n) => Tenant::Int(*n),
                    TenantKey::Str(s) => Tenant::Str(s.to_string()),
                    _ => return None,
                };
                Some(Reach::Tenant {
                    table: table.to_string(),
                    tenant,
                })
            }
            Route::Scatter { .. }
            | Route::EveryShard { .. }
            | Route::SplitInsert { .. }
            | Route::NeedsIds { .. } => Some(Reach::Shards),
            _ => None,
        }
    }

    /// The move of `topology` in `state` whose keys this reaches, if any.
    fn meets<'t>(&self, topology: &'t Topology, state: MoveState) -> Option<&'t Move> {
        let mut moves = topology.moves().iter().filter(|m| m.state == state);
        match self {
            Reach::Tenant { table, tenant } => {
                let shard = topology.route(table, tenant.as_ref()).ok()?;
                moves.find(|m| m.covers(shard, Some(tenant.as_ref())))
            }
            Reach::Shards => moves.next(),
        }
    }

    /// Where this runs in `topology`, to tell whether two versions send it to the same place.
    fn place(&self, topology: &Topology) -> Vec<String> {
        match self {
            Reach::Tenant { table, tenant } => topology
                .route(table, tenant.as_ref())
                .ok()
                .and_then(|id| topology.shard(id))
                .map(|s| vec![format!("{}/{}", s.backend, s.database)])
                .unwrap_or_default(),
            Reach::Shards => topology
                .shards()
                .iter()
                .map(|s| format!("{}/{}", s.backend, s.database))
                .collect(),
        }
    }
}

impl Session {
    /// Whether the current topology moves nothing (the one check every statement pays).
    pub(super) fn no_moves(&self, routing: &super::RoutingRef) -> bool {
        match routing {
            super::RoutingRef::Current(guard) => guard.topology.moves().is_empty(),
            super::RoutingRef::Pinned(_) => self.shared.routing.load().topology.moves().is_empty(),
        }
    }

    /// Counts the open transaction, if any, as one touching moving keys.
    fn mark_moving(&mut self) {
        let counter = &self.shared.stats.reshard.inflight;
        if let Some(txn) = self.txn.as_mut().filter(|t| t.moving.is_none()) {
            txn.moving = Some(Inflight::new(counter));
        }
    }

    /// The error for a statement reaching every shard while a source still holds rows moved away from it.
    fn refuse_leftovers(&self, topology: &Topology, reach: &Reach) -> Option<MysqlError> {
        if !matches!(reach, Reach::Shards) {
            return None;
        }
        let m = reach.meets(topology, MoveState::Cleanup)?;
        self.shared
            .stats
            .reshard
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let msg = format!(
            "shard {} still holds copies of the rows resharding workflow {} moved away until the workflow completes: \
             statements reaching every shard are refused meanwhile (name the tenant)",
            topology.shard(m.shard).map_or("?", |s| s.name.as_str()),
            m.workflow
        );
        Some(MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
    }

    /// Lets a statement through the current topology's moves: waits while a cutover holds its keys, refuses it
    /// where leftover copies would make its answer wrong. `reach` is computed by the caller only when the topology
    /// has moves. The caller keeps the passage until the statement is done (it counts the statement as in flight on
    /// moving keys), and routes on the current snapshot if it waited.
    pub(super) async fn pass_moves(&mut self, reach: &Reach) -> Result<Passage, MysqlError> {
        let counter = &self.shared.stats.reshard.inflight;
        let mut current = self.shared.routing.load_full();
        if let Some(e) = self.refuse_leftovers(&current.topology, reach) {
            return Err(e);
        }
        // A transaction already working on the moving keys is never held: the cutover waits for it to end.
        if self.txn.as_ref().is_some_and(|t| t.moving.is_some()) {
            return Ok(Passage::default());
        }
        if reach
            .meets(&current.topology, MoveState::DualWrite)
            .is_some()
        {
            // Counted first, then looked at again: a hold published meanwhile is seen here, or this statement is
            // seen by the controller's drain.
            let work = Inflight::new(counter);
            current = self.shared.routing.load_full();
            if reach.meets(&current.topology, MoveState::Hold).is_none() {
                self.mark_moving();
                return Ok(Passage {
                    waited: false,
                    inflight: Some(work),
                });
            }
        }
        let Some(m) = reach.meets(&current.topology, MoveState::Hold) else {
            return Ok(Passage::default());
        };
        let started = Instant::now();
        let limit = started + self.shared.config.hold_max();
        let workflow = m.workflow.clone();
        let stats = &self.shared.stats.reshard;
        stats
            .held
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        loop {
            tokio::time::sleep(POLL).await;
            current = self.shared.routing.load_full();
            if reach.meets(&current.topology, MoveState::Hold).is_none() {
                break;
            }
            if Instant::now() >= limit {
                stats
                    .hold_timeouts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(conn = self.conn_id, %workflow, "a statement held past hold_max_ms runs where the topology now says");
                break;
            }
        }
        stats.hold_time.observe(started.elapsed());
        let mut inflight = None;
        let still_moving = reach
            .meets(&current.topology, MoveState::DualWrite)
            .is_some()
            || reach.meets(&current.topology, MoveState::Hold).is_some();
        if still_moving {
            // Released to the source (the cutover gave up, or hold_max_ms passed).
            inflight = Some(Inflight::new(counter));
            self.mark_moving();
        }
        // Released into a version where the source still holds the moved rows: a scatter would count them twice.
        if let Some(e) = self.refuse_leftovers(&current.topology, reach) {
            return Err(e);
        }
        // A transaction routes on the snapshot it started on. With nothing run yet it simply moves to the current
        // one; with work elsewhere it may keep its snapshot only if this statement still goes where it went.
        let pinned = self.txn.as_ref().and_then(|t| t.routing().cloned());
        let stale = pinned.filter(|p| p.topology.version() != current.topology.version());
        if let (Some(txn), Some(pinned)) = (self.txn.as_mut(), stale) {
            if txn.is_empty() {
                txn.repin(current.snapshot());
            } else if reach.place(&pinned.topology) != reach.place(&current.topology) {
                let routing = Arc::clone(&pinned);
                self.abort_transaction(&routing).await;
                let msg = format!(
                    "Deadlock found when trying to get lock; try restarting transaction (resharding workflow \
                     {workflow} moved keys this transaction reached)"
                );
                return Err(MysqlError::new(ER_RESTART_TRANSACTION, msg));
            }
        }
        Ok(Passage {
            waited: true,
            inflight,
        })
    }
}
