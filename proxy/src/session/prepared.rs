//! Prepared statements (binary protocol): the proxy owns the client's statement ids; the statement is analysed
//! once, at prepare time, and each execute is routed by its bound tenant parameter, then run on whichever
//! connection serves that shard (prepared there on demand, see `backend::statements`).

use std::collections::HashMap;
use std::sync::Arc;

use shardgate_sql::{Analysis, Route, Slot, SqlError, StatementKind, TenantKey, guard};
use shardgate_topology::ShardId;
use shardgate_wire::command::{COM_QUERY, command_packet};
use shardgate_wire::packet::put_packet;
use shardgate_wire::response::put_eof;
use shardgate_wire::stmt::{
    ExecuteRequest, LAST_PREPARED_STATEMENT, ParamType, PrepareOk, SendLongData, statement_id_of,
};
use shardgate_wire::{ResponseKind, WireError};

use super::Session;
use super::forward::ShardCommand;
use super::moves::{self, Reach};
use super::multi_shard;
use crate::mysql_error::*;
use crate::routing::{Routing, TopologySchema};

/// Most statements one session may hold prepared (MySQL's max_prepared_stmt_count is server-wide; this keeps one
/// session from growing without bound).
const MAX_SESSION_STATEMENTS: usize = 16_382;

/// One client prepared statement.
pub(super) struct Statement {
    /// What runs: the statement text on a backend, or (with no analysis) the text the proxy runs as a query.
    sql: Arc<str>,
    /// How executes are routed; `None` for a session or transaction statement the proxy runs itself.
    analysis: Option<Analysis>,
    num_params: u16,
    /// Parameter types from the last execute that sent them; later executes may leave them out.
    types: Option<Vec<ParamType>>,
    /// COM_STMT_SEND_LONG_DATA chunks per parameter since the last execute.
    long_data: Vec<Option<Vec<u8>>>,
    /// Long data went past max_allowed_packet: the next execute fails, as on MySQL.
    long_data_overflow: bool,
}

impl Statement {
    /// A statement the proxy runs itself (BEGIN, COMMIT, SET …): no parameters, no backend statement.
    fn session(text: &str) -> Self {
        Statement {
            sql: Arc::from(text),
            analysis: None,
            num_params: 0,
            types: None,
            long_data: Vec::new(),
            long_data_overflow: false,
        }
    }
}

/// What a statement to prepare is.
enum Prepare {
    /// Prepared on the backends, routed at each execute.
    Backend(Analysis),
    /// Run by the proxy as a query at each execute.
    Session,
}

/// Whether the proxy runs this statement itself rather than a backend: transaction control and session settings
/// reply with a plain OK or ERR, the same to COM_STMT_EXECUTE as to COM_QUERY.
fn is_session_statement(kind: &StatementKind, fingerprint: &str) -> bool {
    match kind {
        StatementKind::Begin
        | StatementKind::Commit
        | StatementKind::Rollback
        | StatementKind::Set(_)
        | StatementKind::SetNames { .. }
        | StatementKind::Use(_) => true,
        StatementKind::Other => {
            guard::is_savepoint_statement(fingerprint)
                || guard::transaction_setting(fingerprint).is_some()
                || guard::is_unlock_tables(fingerprint)
        }
        _ => false,
    }
}

/// The session's prepared statements.
#[derive(Default)]
pub(super) struct Statements {
    by_id: HashMap<u32, Statement>,
    next_id: u32,
    last_prepared: u32,
}

impl Statements {
    /// Adds a statement; returns its id (never 0, which clients read as "none").
    fn register(&mut self, statement: Statement) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.last_prepared = id;
        self.by_id.insert(id, statement);
        id
    }
}

impl Session {
    /// COM_STMT_PREPARE.
    pub(super) async fn on_prepare(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let routing = self.routing();
        let Ok(text) = std::str::from_utf8(&payload[1..]) else {
            let msg = "a prepared statement that is not valid UTF-8 is not supported";
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        };
        if self.statements.by_id.len() >= MAX_SESSION_STATEMENTS {
            let msg = format!(
                "Can't create more than max_prepared_stmt_count statements (current value: {MAX_SESSION_STATEMENTS})"
            );
            return self
                .send_error(&MysqlError::new(ER_MAX_PREPARED_STMT_COUNT_REACHED, msg))
                .await;
        }
        let analysis = match self.analyze_for_prepare(&routing, text) {
            Ok(Prepare::Backend(a)) => a,
            Ok(Prepare::Session) => {
                // Run by the proxy at each execute, exactly as the same text in a COM_QUERY.
                let id = self.statements.register(Statement::session(text));
                let ok = PrepareOk {
                    statement_id: id,
                    num_columns: 0,
                    num_params: 0,
                    warnings: 0,
                };
                ok.put(self.client.write_buf(), self.reply_seq);
                return self.flush_reply().await;
            }
            Err(e) => return self.send_error(&e).await,
        };
        if self.temp.used_by(&analysis) {
            let msg = "prepared statements on temporary tables are not supported: send them as plain statements, \
                       which run on the connection holding the session's temporary tables";
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        }
        let shard = match &analysis.route {
            Route::Tenant {
                table,
                key: key @ (TenantKey::Int(_) | TenantKey::Str(_)),
            } => multi_shard::tenant_ref(key).and_then(|t| multi_shard::route(&routing, table, t)),
            _ => Ok(self.any_shard()),
        };
        let shard = match shard {
            Ok(s) => s,
            Err(e) => return self.send_error(&e).await,
        };
        let (mut conn, held) = match self.acquire(&routing, shard).await {
            Ok(c) => c,
            Err(e) => return self.send_error(&e).await,
        };
        // A scattered SELECT runs the planner's rewrite on every shard; its hidden columns stay out of the reply.
        let (sql, visible): (Arc<str>, usize) = match &analysis.route {
            Route::Scatter {
                merge: Some(plan), ..
            } => (Arc::from(plan.shard_sql.as_str()), plan.visible_columns),
            _ => (Arc::from(text), usize::MAX),
        };
        let prepared = match conn.prepare(&sql).await {
            Ok(p) => {
                self.give_back(shard, conn, held);
                p
            }
            Err(WireError::Server {
                code,
                state,
                message,
            }) => {
                self.give_back(shard, conn, held);
                return self
                    .send_error(&MysqlError::from_backend(code, state, message))
                    .await;
            }
            Err(e) => {
                drop(conn);
                if held {
                    self.abort_transaction(&routing).await;
                }
                let msg = format!("Lost connection to shard {}: {e}", routing.describe(shard));
                return self
                    .send_error(&MysqlError::new(ER_NET_READ_ERROR, msg))
                    .await;
            }
        };
        let num_params = prepared.ok.num_params;
        let id = self.statements.register(Statement {
            sql,
            analysis: Some(analysis),
            num_params,
            types: None,
            long_data: vec![None; usize::from(num_params)],
            long_data_overflow: false,
        });
        self.write_prepare_reply(id, &prepared, visible);
        self.flush_reply().await
    }

    /// Analysis of a statement to prepare; only what an execute can route, or what the proxy runs itself, is
    /// accepted.
    fn analyze_for_prepare(
        &mut self,
        routing: &Routing,
        text: &str,
    ) -> Result<Prepare, MysqlError> {
        let schema = TopologySchema(&routing.topology);
        let analysis = match self
            .shared
            .analyzer
            .analyze(text, &schema, &mut self.scratch)
        {
            Ok(a) => a,
            Err(SqlError::Empty) => {
                return Err(MysqlError::new(ER_EMPTY_QUERY, "Query was empty"));
            }
            Err(e) => return Err(MysqlError::from(&e)),
        };
        let fingerprint = self.scratch.fingerprint();
        if let Some(reason) = guard::shared_connection_violation(fingerprint) {
            return Err(MysqlError::new(ER_NOT_SUPPORTED_YET, reason));
        }
        let refuse = |why: &str| Err(MysqlError::new(ER_NOT_SUPPORTED_YET, why.to_string()));
        if is_session_statement(&analysis.kind, fingerprint) {
            let has_params = self
                .scratch
                .slots()
                .iter()
                .any(|s| matches!(s, Slot::Param { .. }));
            if has_params {
                return refuse("session and transaction statements cannot take `?` parameters");
            }
            return Ok(Prepare::Session);
        }
        if analysis.calls_database
            || guard::calls_session_function(fingerprint)
            || fingerprint.contains("@@")
        {
            return refuse(
                "DATABASE(), LAST_INSERT_ID(), ROW_COUNT() and @@variables cannot be prepared through shardgate; \
                 send them as plain queries",
            );
        }
        if analysis.tables.iter().any(|t| t.schema.is_some()) {
            return refuse(
                "schema-qualified table names are not supported yet: select the keyspace as the default database \
                 and name tables without a qualifier",
            );
        }
        match (&analysis.kind, &analysis.route) {
            (
                StatementKind::Select
                | StatementKind::Insert
                | StatementKind::Update
                | StatementKind::Delete
                | StatementKind::Replace,
                Route::Tenant { .. },
            )
            | (StatementKind::Select, Route::AnyShard)
            | (StatementKind::Select, Route::Scatter { merge: Some(_), .. })
            | (StatementKind::Update | StatementKind::Delete, Route::Scatter { merge: None, .. })
            | (
                StatementKind::Insert
                | StatementKind::Update
                | StatementKind::Delete
                | StatementKind::Replace,
                Route::EveryShard { .. },
            ) => Ok(Prepare::Backend(analysis)),
            (_, Route::NeedsIds { .. }) => refuse(
                "an INSERT that leaves its sequence column out (or gives it NULL or 0) cannot be prepared through \
                 shardgate yet: pass the id, or send it as a plain query",
            ),
            (StatementKind::Select | StatementKind::Insert | StatementKind::Update, _)
            | (StatementKind::Delete | StatementKind::Replace, _) => refuse(
                "this statement shape cannot be prepared through shardgate yet (a multi-row INSERT for several \
                 tenants: send it as a plain query)",
            ),
            _ => refuse(
                "only SELECT, INSERT, UPDATE, DELETE, REPLACE and session or transaction statements can be prepared \
                 through shardgate; send schema statements as plain queries",
            ),
        }
    }

    /// PREPARE_OK with the proxy's id, then the parameter and column definitions as the backend sent them, with
    /// the EOFs a client without CLIENT_DEPRECATE_EOF expects after each non-empty list.
    fn write_prepare_reply(
        &mut self,
        id: u32,
        prepared: &crate::backend::Prepared,
        visible: usize,
    ) {
        let classic = !self.deprecate_eof();
        let status = self.status();
        let (params, columns) = prepared
            .definitions
            .split_at(usize::from(prepared.ok.num_params).min(prepared.definitions.len()));
        let columns = &columns[..visible.min(columns.len())];
        let ok = PrepareOk {
            statement_id: id,
            num_columns: u16::try_from(columns.len()).unwrap_or(u16::MAX),
            ..prepared.ok
        };
        let out = self.client.write_buf();
        let mut seq = ok.put(out, self.reply_seq);
        for list in [params, columns] {
            for def in list {
                seq = put_packet(out, seq, def);
            }
            if classic && !list.is_empty() {
                seq = put_eof(out, seq, 0, status);
            }
        }
    }

    /// COM_STMT_EXECUTE.
    pub(super) async fn on_execute(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let routing = self.routing();
        let moves = !self.no_moves(&routing);
        let raw_id = payload
            .get(1..5)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let id = if raw_id == LAST_PREPARED_STATEMENT {
            self.statements.last_prepared
        } else {
            raw_id
        };
        let Some(stmt) = self.statements.by_id.get_mut(&id) else {
            return self
                .send_error(&unknown_statement(raw_id, "mysqld_stmt_execute"))
                .await;
        };
        let long_flags: Vec<bool> = stmt.long_data.iter().map(Option::is_some).collect();
        let overflow = std::mem::take(&mut stmt.long_data_overflow);
        let long_data = std::mem::replace(&mut stmt.long_data, vec![None; long_flags.len()]);
        let request =
            ExecuteRequest::decode(payload, stmt.num_params, stmt.types.as_deref(), &long_flags);
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let error = match e {
                    WireError::Unsupported(what) => MysqlError::new(ER_NOT_SUPPORTED_YET, what),
                    other => MysqlError::new(
                        ER_WRONG_ARGUMENTS,
                        format!("Incorrect arguments to mysqld_stmt_execute: {other}"),
                    ),
                };
                return self.send_error(&error).await;
            }
        };
        if request.new_params_bound() {
            stmt.types = Some(request.types().to_vec());
        }
        if overflow {
            let msg = "Parameter data sent with COM_STMT_SEND_LONG_DATA is larger than max_allowed_packet";
            return self
                .send_error(&MysqlError::new(ER_NET_PACKET_TOO_LARGE, msg))
                .await;
        }
        let sql = Arc::clone(&stmt.sql);
        // Resharding: only a topology with moves costs anything here.
        let reach = match &stmt.analysis {
            Some(analysis) if moves => match &analysis.route {
                Route::Tenant {
                    table,
                    key: TenantKey::Param(i),
                } => request.param(usize::from(*i)).ok().and_then(|value| {
                    let tenant = multi_shard::param_tenant(&value, *i).ok()?;
                    Some(Reach::Tenant {
                        table: table.to_string(),
                        tenant: moves::Tenant::of(tenant),
                    })
                }),
                other => Reach::of_route(other),
            },
            _ => None,
        };
        // The passage lives until the statement is done: it counts it as in flight on moving keys.
        let (routing, _passage) = match reach {
            Some(reach) => match self.pass_moves(&reach).await {
                Ok(passage) if passage.waited => (self.routing(), passage.inflight),
                Ok(passage) => (routing, passage.inflight),
                Err(e) => return self.send_error(&e).await,
            },
            None => (routing, None),
        };
        let Some(stmt) = self.statements.by_id.get(&id) else {
            return self
                .send_error(&unknown_statement(raw_id, "mysqld_stmt_execute"))
                .await;
        };
        let Some(analysis) = &stmt.analysis else {
            let query = command_packet(COM_QUERY, sql.as_bytes());
            return self.on_statement(&query).await;
        };
        self.class = crate::stats::Class::of(analysis);
        let idempotent = analysis.kind == StatementKind::Select;
        if let Route::EveryShard { .. } = &analysis.route {
            let command = ShardCommand::Execute {
                sql: &sql,
                request: &request,
                long_data: &long_data,
            };
            return self.run_everywhere(&routing, command).await;
        }
        if let Route::Scatter { table, keys, merge } = &analysis.route {
            let (table, keys, merge) = (Arc::clone(table), keys.clone(), merge.clone());
            let shards =
                match self.scatter_shards(&routing, &table, keys.as_deref(), Some(&request)) {
                    Ok(s) => s,
                    Err(e) => return self.send_error(&e).await,
                };
            let targets: Vec<_> = shards
                .iter()
                .map(|s| {
                    let command = ShardCommand::Execute {
                        sql: &sql,
                        request: &request,
                        long_data: &long_data,
                    };
                    (*s, command)
                })
                .collect();
            return match merge {
                Some(plan) => {
                    let spec = multi_shard::merge_spec(&plan, self.shared.config.scatter_max_rows);
                    self.scatter(&routing, &targets, &spec).await?;
                    self.flush_reply().await
                }
                None => {
                    let kind = multi_shard::WriteKind::of(keys);
                    self.scatter_write(&routing, kind, &targets).await
                }
            };
        }
        let shard = match route_execute(&routing, &analysis.route, &request) {
            Ok(Some(shard)) => shard,
            Ok(None) => self.any_shard(),
            Err(e) => return self.send_error(&e).await,
        };
        let command = ShardCommand::Execute {
            sql: &sql,
            request: &request,
            long_data: &long_data,
        };
        self.forward_on_shard(&routing, shard, command, ResponseKind::Query, idempotent)
            .await
    }

    /// COM_STMT_SEND_LONG_DATA: kept until the next execute (no reply, as on MySQL).
    pub(super) fn on_send_long_data(&mut self, payload: &[u8]) {
        let Ok(chunk) = SendLongData::decode(payload) else {
            return;
        };
        let limit = self.shared.config.max_allowed_packet;
        let Some(stmt) = self.statements.by_id.get_mut(&chunk.statement_id) else {
            return;
        };
        let Some(slot) = stmt.long_data.get_mut(usize::from(chunk.param_id)) else {
            return;
        };
        let data = slot.get_or_insert_with(Vec::new);
        if data.len() + chunk.data.len() > limit {
            stmt.long_data_overflow = true;
            return;
        }
        data.extend_from_slice(chunk.data);
    }

    /// COM_STMT_RESET: forgets long data (there are no cursors to close).
    pub(super) async fn on_statement_reset(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let id = statement_id_of(payload).unwrap_or(0);
        match self.statements.by_id.get_mut(&id) {
            Some(stmt) => {
                stmt.long_data.iter_mut().for_each(|d| *d = None);
                stmt.long_data_overflow = false;
                self.send_ok(0, 0).await
            }
            None => {
                self.send_error(&unknown_statement(id, "mysqld_stmt_reset"))
                    .await
            }
        }
    }

    /// COM_STMT_CLOSE: no reply.
    pub(super) fn on_statement_close(&mut self, payload: &[u8]) {
        if let Ok(id) = statement_id_of(payload) {
            self.statements.by_id.remove(&id);
        }
    }

    /// COM_STMT_FETCH: the proxy never opens cursors (executes run without one), so there is none to fetch from.
    pub(super) async fn on_fetch(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let id = statement_id_of(payload).unwrap_or(0);
        let msg = format!("The statement ({id}) has no open cursor.");
        self.send_error(&MysqlError::new(ER_STMT_HAS_NO_OPEN_CURSOR, msg))
            .await
    }
}

/// The shard an execute runs on: from the bound parameter or the literal tenant; `None` for any shard.
fn route_execute(
    routing: &Routing,
    route: &Route,
    request: &ExecuteRequest<'_>,
) -> Result<Option<ShardId>, MysqlError> {
    let Route::Tenant { table, key } = route else {
        return Ok(None);
    };
    let value;
    let tenant = match key {
        TenantKey::Param(i) => {
            value = request.param(usize::from(*i)).map_err(|e| {
                MysqlError::new(
                    ER_NOT_SUPPORTED_YET,
                    format!("tenant parameter {}: {e}", i + 1),
                )
            })?;
            multi_shard::param_tenant(&value, *i)?
        }
        other => multi_shard::tenant_ref(other)?,
    };
    multi_shard::route(routing, table, tenant).map(Some)
}

fn unknown_statement(id: u32, command: &str) -> MysqlError {
    MysqlError::new(
        ER_UNKNOWN_STMT_HANDLER,
        format!("Unknown prepared statement handler ({id}) given to {command}"),
    )
}
