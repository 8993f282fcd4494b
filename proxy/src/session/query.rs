//! One statement of a COM_QUERY: analyse it, then answer it here, run it on one shard, or fan it out.

use std::borrow::Cow;

use shardgate_sql::guard::{self, WarningsQuery};
use shardgate_sql::rewrite::{ProxyValues, substitute, unwrap_executable_comments};
use shardgate_sql::{Route, SqlError, StatementKind, TenantKey};
use shardgate_topology::TenantRef;
use shardgate_wire::WireError;
use shardgate_wire::command::command_packet;
use tracing::debug;

use super::Session;
use super::answered::is_show_databases;
use super::forward::ShardCommand;
use super::inspect;
use super::multi_shard::WriteKind;
use super::transaction::Ended;
use crate::mysql_error::*;
use crate::routing::{Routing, TopologySchema};

impl Session {
    /// Handles one statement (`payload` starts with the command byte).
    pub(super) async fn on_statement(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let routing = self.routing();
        let text = String::from_utf8_lossy(&payload[1..]);
        let lossy = matches!(text, Cow::Owned(_));
        // The statement the server runs is the content of its executable comments: that is what gets analysed.
        let unwrapped = if text.contains("/*") {
            let version = self.shared.config.server_version_number();
            match unwrap_executable_comments(&text, version) {
                Ok(Some(sql)) if !lossy => {
                    let packet = command_packet(payload[0], sql.as_bytes());
                    Some(packet)
                }
                Ok(Some(_)) => {
                    let msg = "executable comments in a statement that is not valid UTF-8 are not supported";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                }
                Ok(None) => None,
                Err(e) => {
                    let msg = format!("You have an error in your SQL syntax: {}", e.0);
                    return self.send_error(&MysqlError::new(ER_PARSE_ERROR, msg)).await;
                }
            }
        } else {
            None
        };
        let payload = unwrapped.as_deref().unwrap_or(payload);
        let text = match &unwrapped {
            Some(p) => String::from_utf8_lossy(&p[1..]),
            None => text,
        };
        // SHOW WARNINGS reads what the previous statement left; every other statement starts afresh.
        match guard::warnings_query(&text) {
            Some(query) => return self.show_warnings(query == WarningsQuery::Count).await,
            // `SELECT @@warning_count` reads the previous statement's count too.
            None if !reads_diagnostics(&text) => self.warnings.clear(),
            None => {}
        }
        match inspect::parse(&text) {
            Some(Ok(what)) => return self.inspect(&routing, what).await,
            Some(Err(e)) => return self.send_error(&e).await,
            None => {}
        }
        let schema = TopologySchema(&routing.topology);
        let analyzed = if self.temp.any() {
            // The session's temporary tables change what its statements mean: analysed for it alone.
            let schema = super::temporary::WithTemporary::new(&routing, &self.temp);
            self.shared
                .analyzer
                .analyze_uncached(&text, &schema, &mut self.scratch)
        } else {
            self.shared
                .analyzer
                .analyze(&text, &schema, &mut self.scratch)
        };
        let analysis = match analyzed {
            Ok(a) => {
                self.class = crate::stats::Class::of(&a);
                Ok(a)
            }
            Err(e) => Err(e),
        };
        let analysis = match analysis {
            Ok(a) => a,
            // MariaDB answers a statement of comments alone with OK, and a blank one with ER_EMPTY_QUERY.
            Err(SqlError::Empty)
                if !text
                    .trim_matches(|c: char| c.is_whitespace() || c == ';')
                    .is_empty() =>
            {
                return self.send_ok(0, 0).await;
            }
            Err(e) => return self.send_error(&MysqlError::from(&e)).await,
        };
        // Resharding: only a topology with moves costs anything here. The passage lives until the statement is
        // done: it counts it as in flight on moving keys.
        let (routing, _passage) = if self.no_moves(&routing) {
            (routing, None)
        } else {
            match super::moves::Reach::of_route(&analysis.route) {
                Some(reach) => match self.pass_moves(&reach).await {
                    Ok(passage) if passage.waited => (self.routing(), passage.inflight),
                    Ok(passage) => (routing, passage.inflight),
                    Err(e) => return self.send_error(&e).await,
                },
                None => (routing, None),
            }
        };
        if let Some(call) = shardgate_sql::locks::lock_call(self.scratch.fingerprint()) {
            return self.run_lock_statement(&routing, call, payload).await;
        }
        if guard::is_create_temporary(self.scratch.fingerprint()) {
            return self
                .create_temporary(&routing, &analysis, &text, payload)
                .await;
        }
        if self.temp.used_by(&analysis) {
            return self.run_with_temporary(&routing, &analysis, payload).await;
        }
        if guard::is_drop_temporary(self.scratch.fingerprint()) {
            // MySQL answers IF EXISTS of a missing table with OK (and a note).
            if self
                .scratch
                .fingerprint()
                .to_ascii_uppercase()
                .contains("IF EXISTS")
            {
                return self.send_ok(0, 0).await;
            }
            let name = analysis.tables.first().map_or("", |t| &*t.name);
            let e = MysqlError::new(ER_BAD_TABLE_ERROR, format!("Unknown table '{name}'"));
            return self.send_error(&e).await;
        }
        if let Some(reason) = guard::shared_connection_violation(self.scratch.fingerprint()) {
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, reason))
                .await;
        }
        // LAST_INSERT_ID() and ROW_COUNT() are the session's, not the backend connection's: answered here.
        let substituted = if guard::calls_session_function(self.scratch.fingerprint()) {
            let (id, rows) = (self.last_insert_id.to_string(), self.row_count.to_string());
            let functions = [
                ("LAST_INSERT_ID", id.as_str()),
                ("ROW_COUNT", rows.as_str()),
            ];
            let values = ProxyValues {
                database: Some(routing.topology.keyspace()),
                variables: &[],
                functions: &functions,
            };
            substitute(&text, &values).map(|sql| command_packet(payload[0], sql.as_bytes()))
        } else {
            None
        };
        let payload = substituted.as_deref().unwrap_or(payload);
        let text = match &substituted {
            Some(p) => String::from_utf8_lossy(&p[1..]),
            None => text,
        };
        match (&analysis.kind, &analysis.route) {
            (_, Route::Tenant { .. } | Route::Scatter { .. } | Route::SplitInsert { .. })
                if analysis.tables.iter().any(|t| t.schema.is_some()) =>
            {
                let msg = "schema-qualified table names are not supported yet: select the keyspace as the default \
                           database and name tables without a qualifier";
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
            (_, Route::Tenant { table, key }) => {
                if lossy && matches!(key, TenantKey::Str(_)) {
                    let msg = "a string tenant id in a statement that is not valid UTF-8 cannot be routed safely";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                }
                let tenant = match key {
                    TenantKey::Int(n) => TenantRef::Int(*n),
                    TenantKey::Str(s) => TenantRef::Str(s),
                    other => {
                        let msg = format!("tenant key {other:?} cannot be routed in a text query");
                        return self
                            .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                            .await;
                    }
                };
                match routing.topology.route(table, tenant) {
                    Ok(shard) => {
                        let idempotent = matches!(analysis.kind, StatementKind::Select);
                        self.run_on_shard(&routing, shard, payload, idempotent)
                            .await
                    }
                    Err(e) => {
                        self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, e.to_string()))
                            .await
                    }
                }
            }
            (_, Route::Scatter { table, keys, merge }) => {
                if lossy
                    && keys
                        .iter()
                        .flatten()
                        .any(|k| matches!(k, TenantKey::Str(_)))
                {
                    let msg = "a string tenant id in a statement that is not valid UTF-8 cannot be routed safely";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                }
                self.run_scatter(&routing, table, keys.as_deref(), merge.as_deref(), payload)
                    .await
            }
            (
                _,
                Route::NeedsIds {
                    table,
                    column,
                    rows,
                },
            ) => {
                if lossy {
                    let msg = "an INSERT that is not valid UTF-8 cannot have ids filled in safely";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                }
                self.run_with_ids(&routing, table, column, rows, &text)
                    .await
            }
            (_, Route::EveryShard { .. }) => {
                self.run_everywhere(&routing, ShardCommand::Raw(payload))
                    .await
            }
            (_, Route::SplitInsert { table, parts }) => {
                if lossy {
                    let msg =
                        "a multi-tenant INSERT that is not valid UTF-8 cannot be split safely";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                }
                self.run_split_insert(&routing, table, parts, WriteKind::Tenants)
                    .await
            }
            (StatementKind::Begin, _) => {
                // BEGIN inside a transaction commits it first, as on MySQL.
                if let Ended::CommitFailed(e) = self.end_transaction(&routing, true).await {
                    return self.send_error(&e).await;
                }
                let begin = text.trim().trim_end_matches(';').trim_end().to_string();
                self.open_transaction(Some(begin), &routing);
                self.send_ok(0, 0).await
            }
            (StatementKind::Commit, _) => match self.end_transaction(&routing, true).await {
                Ended::Done => self.send_ok(0, 0).await,
                Ended::CommitFailed(e) => self.send_error(&e).await,
            },
            (StatementKind::Rollback, _) => {
                self.end_transaction(&routing, false).await;
                self.send_ok(0, 0).await
            }
            (StatementKind::Other, _)
                if guard::is_savepoint_statement(self.scratch.fingerprint()) =>
            {
                let sql = text.trim().trim_end_matches(';').trim_end().to_string();
                self.savepoint(&routing, &sql).await
            }
            (StatementKind::Other, _) if guard::is_unlock_tables(self.scratch.fingerprint()) => {
                // The proxy never takes table locks (LOCK TABLES is refused), so there are none to release.
                self.send_ok(0, 0).await
            }
            (StatementKind::Other, _) => {
                match guard::transaction_setting(self.scratch.fingerprint()) {
                    Some(setting) => {
                        let sql = text.trim().trim_end_matches(';').trim_end().to_string();
                        self.set_transaction(&routing, setting, sql).await
                    }
                    None => {
                        let msg = "this statement is not supported by shardgate yet";
                        self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                            .await
                    }
                }
            }
            (StatementKind::Set(assignments), _) => {
                let assignments = assignments.clone();
                self.set_variables(&routing, &assignments).await
            }
            (StatementKind::SetNames { charset, collation }, _) => {
                self.set_names(&routing, charset.clone(), collation.clone())
                    .await
            }
            (StatementKind::Use(db), _) => {
                let db = db.clone();
                self.use_database(&db).await
            }
            (StatementKind::Ddl { .. }, _)
                if guard::ddl_names_another_schema(self.scratch.fingerprint()) =>
            {
                let msg = "DDL naming a schema (db.table) is not supported: it would run outside the shards' \
                           databases; name tables without a qualifier";
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
            (StatementKind::Ddl { .. }, _) => {
                // DDL commits the open transaction first, as on MySQL.
                if let Ended::CommitFailed(e) = self.end_transaction(&routing, true).await {
                    return self.send_error(&e).await;
                }
                self.fan_out_ddl(&routing, payload).await
            }
            (StatementKind::Select, Route::AnyShard)
                if analysis.calls_database || text.contains("@@") || calls_version(&text) =>
            {
                let information_schema = analysis.tables.iter().any(|t| {
                    t.schema
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("information_schema"))
                });
                self.run_tableless_select(&routing, &text, payload, information_schema)
                    .await
            }
            (StatementKind::Show, _) if is_show_databases(self.scratch.fingerprint()) => {
                self.show_databases(&routing, &text, payload[0]).await
            }
            (StatementKind::Show, _) if !guard::show_is_allowed(self.scratch.fingerprint()) => {
                let msg = "this SHOW statement is not supported: it would describe a backend server, not the \
                           keyspace";
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
            (StatementKind::Select | StatementKind::Show, Route::AnyShard) => {
                // No sharded table: every shard gives the same answer, so the first one serves it (in a
                // transaction, the first shard it already holds).
                let shard = self.any_shard();
                self.run_on_shard(&routing, shard, payload, true).await
            }
            (kind, _) => {
                let msg = format!("{} is not supported by shardgate yet", describe(kind));
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
        }
    }

    /// Runs a DDL statement on every shard, one after another, and reports the shards where it failed.
    async fn fan_out_ddl(&mut self, routing: &Routing, payload: &[u8]) -> Result<(), WireError> {
        let Ok(sql) = std::str::from_utf8(&payload[1..]) else {
            let msg = "DDL that is not valid UTF-8 is not supported";
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        };
        let mut failures = Vec::new();
        for shard in routing.topology.shards() {
            if let Err(e) = self.run_internal_on_shard(routing, shard.id, sql).await {
                failures.push(format!("{}: {e}", shard.name));
            }
        }
        if failures.is_empty() {
            return self.send_ok(0, 0).await;
        }
        debug!(
            conn = self.conn_id,
            failed = failures.len(),
            "DDL fan-out failed on some shards"
        );
        let total = routing.topology.shards().len();
        let msg = format!(
            "DDL failed on {} of {total} shards: {}",
            failures.len(),
            failures.join("; ")
        );
        self.send_error(&MysqlError::new(ER_QUERY_ON_FOREIGN_DATA_SOURCE, msg))
            .await
    }
}

/// Whether the statement may call `VERSION()`, which the proxy answers with the version it advertises.
fn calls_version(text: &str) -> bool {
    contains_ignoring_case(text, b"version(")
}

/// Whether the statement reads `@@warning_count` or `@@error_count`.
fn reads_diagnostics(text: &str) -> bool {
    text.contains("@@")
        && (contains_ignoring_case(text, b"warning_count")
            || contains_ignoring_case(text, b"error_count"))
}

/// Whether `text` contains `needle` (ASCII), in any case, without making a lower-case copy of every statement.
fn contains_ignoring_case(text: &str, needle: &[u8]) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn describe(kind: &StatementKind) -> String {
    match kind {
        StatementKind::Insert | StatementKind::Replace => "this INSERT shape".to_string(),
        other => format!("{other:?} statement"),
    }
}
