//! COM_QUERY: analyse the statement, then answer it here, run it on one shard, or fan it out.

use std::borrow::Cow;

use shardgate_sql::rewrite::{ProxyValues, substitute};
use shardgate_sql::{Route, StatementKind, TenantKey};
use shardgate_topology::{ShardId, TenantRef};
use shardgate_wire::WireError;
use shardgate_wire::response::{TYPE_VAR_STRING, put_text_result_set};
use tracing::debug;

use super::Session;
use crate::charset::{is_identifier, is_known_charset};
use crate::mysql_error::*;
use crate::routing::{Routing, TopologySchema};

impl Session {
    /// Handles one COM_QUERY packet (`payload` starts with the command byte).
    pub(super) async fn on_query(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let routing = self.shared.routing.load_full();
        let text = String::from_utf8_lossy(&payload[1..]);
        let lossy = matches!(text, Cow::Owned(_));
        let schema = TopologySchema(&routing.topology);
        let analysis = match self
            .shared
            .analyzer
            .analyze(&text, &schema, &mut self.scratch)
        {
            Ok(a) => a,
            Err(e) => return self.send_error(&MysqlError::from(&e)).await,
        };
        match (&analysis.kind, &analysis.route) {
            (_, Route::Tenant { .. }) if analysis.tables.iter().any(|t| t.schema.is_some()) => {
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
            (StatementKind::SetNames { charset, collation }, _) => {
                self.set_names(charset.clone(), collation.clone()).await
            }
            (StatementKind::Use(db), _) => {
                let db = db.clone();
                self.use_database(&db).await
            }
            (StatementKind::Ddl { .. }, _) => self.fan_out_ddl(&routing, payload).await,
            (StatementKind::Select, Route::AnyShard)
                if analysis.calls_database || text.contains("@@") =>
            {
                self.run_tableless_select(&routing, &text, payload).await
            }
            (StatementKind::Show, _) if is_show_databases(&text) => {
                let keyspace = routing.topology.keyspace().as_bytes().to_vec();
                let rows = vec![
                    vec![Some(b"information_schema".to_vec())],
                    vec![Some(keyspace)],
                ];
                self.send_result_set(&[("Database", TYPE_VAR_STRING)], &rows)
                    .await
            }
            (StatementKind::Select | StatementKind::Show, Route::AnyShard) => {
                // No sharded table: every shard gives the same answer, so the first one serves it.
                self.run_on_shard(&routing, ShardId(0), payload, true).await
            }
            (kind, _) => {
                let msg = format!("{} is not supported by shardgate yet", describe(kind));
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
        }
    }

    async fn set_names(
        &mut self,
        charset: String,
        collation: Option<String>,
    ) -> Result<(), WireError> {
        if !is_known_charset(&charset) {
            let msg = format!("Unknown character set: '{charset}'");
            return self
                .send_error(&MysqlError::new(ER_UNKNOWN_CHARACTER_SET, msg))
                .await;
        }
        self.names = match collation {
            Some(c) if is_identifier(&c) => format!("{charset} COLLATE {c}"),
            Some(c) => {
                let msg = format!("collation {c:?} is not a plain name");
                return self
                    .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await;
            }
            None => charset,
        };
        self.send_ok(0, 0).await
    }

    /// A tableless SELECT that mentions values the proxy owns (`DATABASE()`, `@@socket`, `@@max_allowed_packet`):
    /// those are substituted, and the first shard evaluates the rest.
    async fn run_tableless_select(
        &mut self,
        routing: &Routing,
        text: &str,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let max_packet = self.shared.config.max_allowed_packet.to_string();
        let variables = [
            ("socket", "NULL"),
            ("max_allowed_packet", max_packet.as_str()),
        ];
        let values = ProxyValues {
            database: Some(routing.topology.keyspace()),
            variables: &variables,
        };
        match substitute(text, &values) {
            Some(rewritten) => {
                let mut packet = Vec::with_capacity(rewritten.len() + 1);
                packet.push(payload[0]);
                packet.extend_from_slice(rewritten.as_bytes());
                self.run_on_shard(routing, ShardId(0), &packet, true).await
            }
            None => self.run_on_shard(routing, ShardId(0), payload, true).await,
        }
    }

    async fn send_result_set(
        &mut self,
        columns: &[(&str, u8)],
        rows: &[Vec<Option<Vec<u8>>>],
    ) -> Result<(), WireError> {
        let deprecate_eof = self.deprecate_eof();
        put_text_result_set(
            self.client.write_buf(),
            1,
            deprecate_eof,
            self.status,
            columns,
            rows,
        );
        self.client.flush().await
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

fn is_show_databases(text: &str) -> bool {
    let mut words = text
        .split_ascii_whitespace()
        .map(|w| w.trim_end_matches(';'));
    matches!(
        (words.next(), words.next(), words.next()),
        (Some(a), Some(b), None) if a.eq_ignore_ascii_case("show")
            && (b.eq_ignore_ascii_case("databases") || b.eq_ignore_ascii_case("schemas"))
    )
}

fn describe(kind: &StatementKind) -> String {
    match kind {
        StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback => {
            "transaction control (BEGIN/COMMIT/ROLLBACK)".to_string()
        }
        StatementKind::Set(_) => "SET of session variables".to_string(),
        StatementKind::Insert | StatementKind::Replace => "this INSERT shape".to_string(),
        other => format!("{other:?} statement"),
    }
}
