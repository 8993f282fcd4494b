//! Temporary tables: a session that has any is pinned to one backend connection on one shard, where they live.
//!
//! A temporary table belongs to the connection that created it, and the tables it is used with belong to shards, so
//! all of a session's temporary tables live on one shard: the one the first statement using them needs (its
//! tenant's shard, or for statements on temporary and reference tables alone, the session's own shard). Until then
//! `CREATE TEMPORARY TABLE` is checked on a pooled connection (created and dropped at once) and kept, to be replayed
//! on the pinned connection. From then on every statement of the session on that shard, temporary tables or not,
//! runs on that connection, in or out of transactions; a statement that would need temporary tables on another
//! shard is refused. When the last temporary table is dropped the connection is reset and goes back to the pool;
//! if it breaks, its temporary tables are gone and the session is told so (ADR 17).

use shardgate_pool::Pooled;
use shardgate_sql::{Analysis, Route, Schema, StatementKind, TableName};
use shardgate_topology::{ShardId, TenantRef};
use shardgate_wire::WireError;

use super::Session;
use super::transaction::backend_error;
use crate::backend::ShardConnector;
use crate::mysql_error::*;
use crate::routing::{Routing, ShardIdentity, TopologySchema};

/// The session's temporary tables and where they live.
#[derive(Default)]
pub(super) struct TemporaryTables {
    /// Names as created (MariaDB compares table names case-sensitively on Linux).
    names: Vec<String>,
    /// `CREATE TEMPORARY TABLE` statements not yet run on the pinned connection (no shard chosen yet).
    pending: Vec<String>,
    pin: Option<Pin>,
}

/// The connection holding the temporary tables; `conn` is empty while a statement or a transaction uses it.
struct Pin {
    /// The shard's id in the snapshot the session routes on now (see [`Session::follow_pin`]).
    shard: ShardId,
    /// Which database on which server that is, across topology versions.
    identity: Option<ShardIdentity>,
    conn: Option<Pooled<ShardConnector>>,
}

impl TemporaryTables {
    pub(super) fn any(&self) -> bool {
        !self.names.is_empty()
    }

    fn is_temporary(&self, t: &TableName) -> bool {
        t.schema.is_none() && self.names.iter().any(|n| **n == *t.name)
    }

    /// True when `analysis` names one of the session's temporary tables.
    pub(super) fn used_by(&self, analysis: &Analysis) -> bool {
        self.any() && analysis.tables.iter().any(|t| self.is_temporary(t))
    }
}

/// The topology's schema with the session's temporary tables seen as reference tables: present on the shard that
/// runs the statement, so that the analysis routes by the sharded tables alone.
pub(super) struct WithTemporary<'a> {
    topology: TopologySchema<'a>,
    temp: &'a TemporaryTables,
}

impl<'a> WithTemporary<'a> {
    pub(super) fn new(routing: &'a Routing, temp: &'a TemporaryTables) -> Self {
        WithTemporary {
            topology: TopologySchema(&routing.topology),
            temp,
        }
    }
}

impl WithTemporary<'_> {
    fn temporary(&self, table: &str) -> bool {
        self.temp.names.iter().any(|n| n == table)
    }
}

impl Schema for WithTemporary<'_> {
    fn generation(&self) -> u64 {
        self.topology.generation()
    }
    fn sharding_column(&self, table: &str) -> Option<&str> {
        if self.temporary(table) {
            return None;
        }
        self.topology.sharding_column(table)
    }
    fn is_reference(&self, table: &str) -> bool {
        self.temporary(table) || self.topology.is_reference(table)
    }
    fn is_session_local(&self, table: &str) -> bool {
        self.temporary(table)
    }
    fn vindex(&self, table: &str) -> Option<&str> {
        if self.temporary(table) {
            return None;
        }
        self.topology.vindex(table)
    }
    fn sequence_column(&self, table: &str) -> Option<&str> {
        if self.temporary(table) {
            return None;
        }
        self.topology.sequence_column(table)
    }
}

/// The id a pin takes when its shard left the topology: no statement routes there.
const ORPHANED: ShardId = ShardId(u32::MAX);

fn refuse(msg: impl Into<String>) -> MysqlError {
    MysqlError::new(ER_NOT_SUPPORTED_YET, msg)
}

impl Session {
    /// `CREATE TEMPORARY TABLE name …`: run on the pinned connection, or checked and kept until a shard is chosen.
    pub(super) async fn create_temporary(
        &mut self,
        routing: &Routing,
        analysis: &Analysis,
        text: &str,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let Some(name) = analysis.tables.first().filter(|t| t.schema.is_none()) else {
            let msg = "CREATE TEMPORARY TABLE with a schema-qualified name is not supported";
            return self.send_error(&refuse(msg)).await;
        };
        if shardgate_sql::guard::has_select(self.scratch.fingerprint()) {
            let msg = "CREATE TEMPORARY TABLE … SELECT is not supported: create the table, then fill it with \
                       INSERT … SELECT (routed like any statement on it)";
            return self.send_error(&refuse(msg)).await;
        }
        let name = name.name.to_string();
        if self.temp.pin.is_none() && self.temp.names.contains(&name) {
            // Not created anywhere yet, so no server would say it: answer as MySQL does.
            let if_not_exists = self
                .scratch
                .fingerprint()
                .to_ascii_uppercase()
                .contains("IF NOT EXISTS");
            if if_not_exists {
                return self.send_ok(0, 0).await;
            }
            let e = MysqlError::new(
                ER_TABLE_EXISTS_ERROR,
                format!("Table '{name}' already exists"),
            );
            return self.send_error(&e).await;
        }
        if let Some(shard) = self.temp.pin.as_ref().map(|p| p.shard) {
            self.run_on_shard(routing, shard, payload, false).await?;
            if !self.statement_failed() && !self.temp.names.contains(&name) {
                self.temp.names.push(name);
            }
            return Ok(());
        }
        // No shard yet: let a server check the statement now (create, then drop at once), replay it later.
        let shard = self.any_shard();
        let mut conn = match self.checkout(routing, shard).await {
            Ok(c) => c,
            Err(e) => return self.send_error(&e).await,
        };
        if let Err(e) = conn.run_internal(text).await {
            if !e.is_fatal() {
                conn.release();
            }
            return self.send_error(&backend_error(routing, shard, e)).await;
        }
        let dropped = conn
            .run_internal(&format!(
                "DROP TEMPORARY TABLE `{}`",
                name.replace('`', "``")
            ))
            .await;
        // Reset rather than trust the drop: nothing of this session may stay on a pooled connection.
        if dropped.is_ok() {
            conn.reset_and_release().await;
        }
        self.temp.names.retain(|n| *n != name);
        self.temp.names.push(name);
        self.temp.pending.push(text.to_string());
        self.send_ok(0, 0).await
    }

    /// A statement naming a temporary table: runs on the pinned connection's shard, choosing it on first use.
    pub(super) async fn run_with_temporary(
        &mut self,
        routing: &Routing,
        analysis: &Analysis,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let shard = match self.temporary_target(routing, analysis) {
            Ok(s) => s,
            Err(e) => return self.send_error(&e).await,
        };
        if self.temp.pin.as_ref().is_some_and(|p| p.shard == ORPHANED) {
            let msg = "the shard holding this session's temporary tables left the topology: they can no longer be \
                       used (reconnect, or reset the connection, to start afresh)";
            return self.send_error(&refuse(msg)).await;
        }
        if let Some(pin) = &self.temp.pin
            && pin.shard != shard
        {
            let msg = format!(
                "this session's temporary tables are on shard {}, where they were first used; this statement \
                 needs shard {}",
                routing.describe(pin.shard),
                routing.describe(shard)
            );
            return self.send_error(&refuse(msg)).await;
        }
        if self.temp.pin.is_none()
            && let Err(e) = self.pin_temporary(routing, shard).await
        {
            return self.send_error(&e).await;
        }
        let dropped = match analysis.kind {
            StatementKind::Ddl { .. }
                if shardgate_sql::guard::is_drop(self.scratch.fingerprint()) =>
            {
                analysis.tables.iter().map(|t| t.name.to_string()).collect()
            }
            _ => Vec::new(),
        };
        self.run_on_shard(routing, shard, payload, false).await?;
        if !dropped.is_empty() && !self.statement_failed() {
            self.temp.names.retain(|n| !dropped.contains(n));
            self.unpin_if_unused().await;
        }
        Ok(())
    }

    /// The shard a statement on temporary tables needs (`analysis` was made with them as [`WithTemporary`]).
    fn temporary_target(
        &mut self,
        routing: &Routing,
        analysis: &Analysis,
    ) -> Result<ShardId, MysqlError> {
        let home = self.temp.pin.as_ref().map(|p| p.shard);
        let sharded = analysis
            .tables
            .iter()
            .any(|t| !self.temp.is_temporary(t) && !routing.topology.is_reference_table(&t.name));
        if matches!(analysis.kind, StatementKind::Ddl { .. }) && sharded {
            return Err(refuse(
                "DDL naming both temporary and other tables is not supported: name only temporary tables",
            ));
        }
        if !sharded {
            return Ok(home.unwrap_or_else(|| self.any_shard()));
        }
        match &analysis.route {
            Route::Tenant { table, key } => {
                let tenant = match key {
                    shardgate_sql::TenantKey::Int(n) => TenantRef::Int(*n),
                    shardgate_sql::TenantKey::Str(s) => TenantRef::Str(s),
                    _ => return Err(refuse("a tenant key that cannot be routed in a text query")),
                };
                routing
                    .topology
                    .route(table, tenant)
                    .map_err(|e| refuse(e.to_string()))
            }
            _ => Err(refuse(
                "a statement using temporary tables together with sharded tables must be pinned to one tenant \
                 (tenant_col = value), so that it runs on the one shard holding the temporary tables",
            )),
        }
    }

    /// Pins a connection on `shard` for the temporary tables and creates them there. Inside a transaction that
    /// already holds `shard`, that connection becomes the pin (it stays the transaction's until it ends).
    async fn pin_temporary(&mut self, routing: &Routing, shard: ShardId) -> Result<(), MysqlError> {
        let identity = routing.identity(shard);
        let in_transaction = self.txn.as_mut().and_then(|t| t.slot(shard)).is_some();
        // Outside such a transaction the pin gets a connection of its own.
        let mut own = if in_transaction {
            None
        } else {
            Some(self.checkout(routing, shard).await?)
        };
        let conn = match own.as_mut() {
            Some(conn) => conn,
            None => match self
                .txn
                .as_mut()
                .and_then(|t| t.slot(shard))
                .and_then(|slot| slot.as_mut())
            {
                Some(conn) => conn,
                None => {
                    return Err(refuse(
                        "internal error: the transaction's connection is in use",
                    ));
                }
            },
        };
        for sql in &self.temp.pending {
            if let Err(e) = conn.run_internal(sql).await {
                // The server accepted it before; whatever changed, the session's temporary tables are not there.
                self.temp = TemporaryTables::default();
                return Err(backend_error(routing, shard, e));
            }
        }
        self.temp.pending.clear();
        self.temp.pin = Some(Pin {
            shard,
            identity,
            conn: own,
        });
        Ok(())
    }

    /// After a topology reload the pinned shard may have another id: finds it by identity in `routing`.
    pub(super) fn follow_pin(&mut self, routing: &Routing) {
        let Some(pin) = self.temp.pin.as_mut() else {
            return;
        };
        if routing.identity(pin.shard) == pin.identity {
            return;
        }
        let moved = (0..routing.topology.shards().len() as u32)
            .map(ShardId)
            .find(|&s| routing.identity(s) == pin.identity);
        // A shard that left the topology matches no id: its temporary tables can no longer be reached.
        pin.shard = moved.unwrap_or(ORPHANED);
    }

    /// The pinned connection, if `shard` holds the session's temporary tables. An error when that connection was
    /// lost (a statement on it broke): the temporary tables went with it.
    pub(super) fn take_pinned(
        &mut self,
        routing: &Routing,
        shard: ShardId,
    ) -> Result<Option<Pooled<ShardConnector>>, MysqlError> {
        let Some(pin) = self.temp.pin.as_mut().filter(|p| p.shard == shard) else {
            return Ok(None);
        };
        match pin.conn.take() {
            Some(conn) => Ok(Some(conn)),
            None => {
                self.temp = TemporaryTables::default();
                Err(MysqlError::new(
                    ER_NET_READ_ERROR,
                    format!(
                        "the connection holding this session's temporary tables on shard {} was lost: they are \
                         gone",
                        routing.describe(shard)
                    ),
                ))
            }
        }
    }

    /// Puts a connection back where it belongs once a statement or transaction is done with it: the pin if it is
    /// the pinned one, else the pool.
    pub(super) fn return_conn(&mut self, shard: ShardId, conn: Pooled<ShardConnector>) {
        match self.temp.pin.as_mut() {
            Some(pin) if pin.shard == shard && pin.conn.is_none() => pin.conn = Some(conn),
            _ => conn.release(),
        }
    }

    /// Gives the pinned connection back to the pool, reset, once no temporary table is left and no transaction
    /// is using it.
    pub(super) async fn unpin_if_unused(&mut self) {
        if self.temp.any() {
            return;
        }
        self.temp.pending.clear();
        match self.temp.pin.take() {
            Some(Pin {
                conn: Some(conn), ..
            }) => conn.reset_and_release().await,
            // In a transaction's hands: it comes back at the transaction's end, then goes.
            Some(pin) => self.temp.pin = Some(pin),
            None => {}
        }
    }

    /// Drops every temporary table (client gone, COM_RESET_CONNECTION): the pinned connection is reset.
    pub(super) async fn release_temporary(&mut self) {
        self.temp.names.clear();
        self.unpin_if_unused().await;
        self.temp = TemporaryTables::default();
    }

    /// True when the statement just forwarded ended in an error.
    fn statement_failed(&self) -> bool {
        self.warnings.iter().any(|w| w.is_error())
    }
}
