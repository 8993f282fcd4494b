//! The proxy's own statements for looking at routing, in the spirit of Vitess's `SHOW VITESS_SHARDS`:
//!
//! - `SHOW SHARDGATE_SHARDS`: every shard with its key range, backend and database;
//! - `SHOW SHARDGATE_ROUTE FOR <table> <tenant>`: the shard a tenant's rows of a table live on (the tenant an
//!   integer or a quoted string, as in a WHERE clause);
//! - `SHOW SHARDGATE_STATUS`: the proxy's own counters (plan cache size, hits and misses so far).
//!
//! Both answer from the topology snapshot the proxy routes with, so they show what the next statement will do.

use shardgate_topology::TenantRef;
use shardgate_wire::WireError;
use shardgate_wire::response::{TYPE_LONGLONG, TYPE_VAR_STRING, put_text_result_set};

use super::Session;
use crate::mysql_error::*;
use crate::routing::Routing;

/// The columns both statements answer with: one row per shard.
const SHARD_COLUMNS: &[(&str, u8)] = &[
    ("Shard", TYPE_VAR_STRING),
    ("Id", TYPE_LONGLONG),
    ("Backend", TYPE_VAR_STRING),
    ("Address", TYPE_VAR_STRING),
    ("Database", TYPE_VAR_STRING),
];

/// A proxy statement recognised in a COM_QUERY.
pub(super) enum Inspect<'a> {
    Shards,
    Status,
    Route { table: &'a str, tenant: &'a str },
}

/// Recognises the proxy's statements (`SHOW SHARDGATE_…`), which no backend knows.
pub(super) fn parse(text: &str) -> Option<Result<Inspect<'_>, MysqlError>> {
    let trimmed = text.trim().trim_end_matches(';').trim_end();
    let mut words = trimmed.split_ascii_whitespace();
    let show = words.next()?;
    let what = words.next()?;
    if !show.eq_ignore_ascii_case("SHOW") || !what.get(..10)?.eq_ignore_ascii_case("SHARDGATE_") {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    Some(match (what, rest.as_slice()) {
        (w, []) if is(w, "SHARDGATE_SHARDS") => Ok(Inspect::Shards),
        (w, []) if is(w, "SHARDGATE_STATUS") => Ok(Inspect::Status),
        (w, [for_, table, tenant]) if is(w, "SHARDGATE_ROUTE") && is(for_, "FOR") => {
            Ok(Inspect::Route {
                table: table.trim_matches('`'),
                tenant,
            })
        }
        _ => Err(MysqlError::new(
            ER_PARSE_ERROR,
            format!(
                "unknown proxy statement `{trimmed}`: shardgate knows SHOW SHARDGATE_SHARDS, SHOW SHARDGATE_STATUS and SHOW \
                 SHARDGATE_ROUTE FOR <table> <tenant>"
            ),
        )),
    })
}

impl Session {
    pub(super) async fn inspect(
        &mut self,
        routing: &Routing,
        what: Inspect<'_>,
    ) -> Result<(), WireError> {
        let rows: Vec<Vec<Option<Vec<u8>>>> = match what {
            Inspect::Status => return self.show_status().await,
            Inspect::Shards => routing
                .topology
                .shards()
                .iter()
                .map(|s| shard_row(routing, s))
                .collect(),
            Inspect::Route { table, tenant } => {
                let tenant_ref = if let Some(quoted) =
                    tenant.strip_prefix('\'').and_then(|t| t.strip_suffix('\''))
                {
                    TenantRef::Str(quoted)
                } else if let Ok(n) = tenant.parse::<u64>() {
                    TenantRef::Int(n)
                } else if let Ok(n) = tenant.parse::<i64>() {
                    TenantRef::Int(n as u64)
                } else {
                    let msg = format!("tenant {tenant} is neither an integer nor a quoted string");
                    return self.send_error(&MysqlError::new(ER_PARSE_ERROR, msg)).await;
                };
                let shard = match routing.topology.route(table, tenant_ref) {
                    Ok(id) => routing.topology.shard(id),
                    Err(e) => {
                        return self
                            .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, e.to_string()))
                            .await;
                    }
                };
                let Some(shard) = shard else {
                    let msg = "the topology routed to a shard it does not have";
                    return self
                        .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                        .await;
                };
                vec![shard_row(routing, shard)]
            }
        };
        let status = self.status();
        let deprecate_eof = self.deprecate_eof();
        put_text_result_set(
            self.client.write_buf(),
            self.reply_seq,
            deprecate_eof,
            status,
            SHARD_COLUMNS,
            &rows,
        );
        self.flush_reply().await
    }
}

impl Session {
    /// `SHOW SHARDGATE_STATUS`: `Variable_name`, `Value` rows, as `SHOW STATUS` answers.
    async fn show_status(&mut self) -> Result<(), WireError> {
        let analyzer = &self.shared.analyzer;
        let counters = [
            (
                "plan_cache_capacity",
                self.shared.config.plan_cache_size as u64,
            ),
            ("plan_cache_entries", analyzer.cache_len() as u64),
            ("plan_cache_hits", analyzer.cache_hits()),
            ("plan_cache_misses", analyzer.cache_misses()),
        ];
        let rows: Vec<Vec<Option<Vec<u8>>>> = counters
            .iter()
            .map(|(name, value)| {
                vec![
                    Some(name.as_bytes().to_vec()),
                    Some(value.to_string().into_bytes()),
                ]
            })
            .collect();
        let status = self.status();
        let deprecate_eof = self.deprecate_eof();
        put_text_result_set(
            self.client.write_buf(),
            self.reply_seq,
            deprecate_eof,
            status,
            &[
                ("Variable_name", TYPE_VAR_STRING),
                ("Value", TYPE_VAR_STRING),
            ],
            &rows,
        );
        self.flush_reply().await
    }
}

fn shard_row(routing: &Routing, shard: &shardgate_topology::Shard) -> Vec<Option<Vec<u8>>> {
    let backend = routing.topology.backend_of(shard);
    let cell = |s: String| Some(s.into_bytes());
    vec![
        cell(shard.name.clone()),
        cell(shard.id.0.to_string()),
        cell(backend.map(|b| b.name.clone()).unwrap_or_default()),
        cell(
            backend
                .map(|b| format!("{}:{}", b.host, b.port))
                .unwrap_or_default(),
        ),
        cell(shard.database.clone()),
    ]
}
