//! Statements the proxy answers itself or rewrites before a shard runs them: `SET NAMES`, tableless SELECTs that
//! mention values the proxy owns, information_schema reads, `SHOW DATABASES`.

use std::sync::Arc;

use shardgate_sql::rewrite::{ProxyValues, quote_string, substitute};
use shardgate_sql::{LiteralKind, Slot};
use shardgate_wire::WireError;
use shardgate_wire::command::command_packet;

use super::Session;
use crate::charset::{is_identifier, is_known_charset};
use crate::mysql_error::*;
use crate::routing::Routing;

impl Session {
    /// `SET NAMES`: checked on a backend connection right away, so a charset or collation the server refuses is
    /// refused now (with the server's error) and the session keeps what it had, as MariaDB does.
    pub(super) async fn set_names(
        &mut self,
        routing: &Routing,
        charset: String,
        collation: Option<String>,
    ) -> Result<(), WireError> {
        // `SET NAMES DEFAULT` means the server's default character set: passed on as written.
        let default = charset.eq_ignore_ascii_case("DEFAULT") && collation.is_none();
        if !default && !is_known_charset(&charset) {
            let msg = format!("Unknown character set: '{charset}'");
            return self
                .send_error(&MysqlError::new(ER_UNKNOWN_CHARACTER_SET, msg))
                .await;
        }
        let names = match collation {
            Some(c) if is_identifier(&c) => format!("{charset} COLLATE {c}"),
            Some(c) => {
                let msg = format!("collation {c:?} is not a plain name");
                return self
                    .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await;
            }
            None => charset,
        };
        let mut next = (*self.settings).clone();
        next.names = names;
        let previous = std::mem::replace(&mut self.settings, Arc::new(next));
        let shard = self.any_shard();
        match self.acquire(routing, shard).await {
            Ok((conn, held)) => {
                self.give_back(shard, conn, held);
                self.send_ok(0, 0).await
            }
            Err(e) => {
                self.settings = previous;
                self.send_error(&e).await
            }
        }
    }

    /// A tableless SELECT that mentions values the proxy owns (`DATABASE()`, `@@socket`, `@@max_allowed_packet`):
    /// those are substituted, and the first shard evaluates the rest.
    pub(super) async fn run_tableless_select(
        &mut self,
        routing: &Routing,
        text: &str,
        payload: &[u8],
        information_schema: bool,
    ) -> Result<(), WireError> {
        let max_packet = self.shared.config.max_allowed_packet.to_string();
        // The previous statement's warnings are the session's, not the connection's (see warnings.rs).
        let warning_count = self.warnings.len().to_string();
        let error_count = self
            .warnings
            .iter()
            .filter(|w| w.level == "Error")
            .count()
            .to_string();
        // The version clients were told in the handshake, as MariaDB's VERSION() gives it (no `5.5.5-` prefix).
        let server_version = &self.shared.config.server_version;
        let version = quote_string(
            server_version
                .strip_prefix("5.5.5-")
                .unwrap_or(server_version),
        );
        let variables = [
            ("socket", "NULL"),
            ("version", version.as_str()),
            ("max_allowed_packet", max_packet.as_str()),
            ("warning_count", warning_count.as_str()),
            ("error_count", error_count.as_str()),
        ];
        let shard = self.any_shard();
        // information_schema describes the shard's own database: `table_schema = DATABASE()` must name it there,
        // so that drivers and dump tools asking about "their" tables find the shard's copies of them.
        let database = match routing.topology.shard(shard) {
            Some(s) if information_schema => s.database.as_str(),
            _ => routing.topology.keyspace(),
        };
        let values = ProxyValues {
            database: Some(database),
            variables: &variables,
            functions: &[("VERSION", version.as_str())],
        };
        match substitute(text, &values) {
            Some(rewritten) => {
                let packet = command_packet(payload[0], rewritten.as_bytes());
                self.run_on_shard(routing, shard, &packet, true).await
            }
            None => self.run_on_shard(routing, shard, payload, true).await,
        }
    }

    /// `SHOW DATABASES [LIKE 'p']`: a shard would list every schema on its server, so the keyspace list is built
    /// here and the backend only evaluates the pattern, which is the statement's own string literal.
    pub(super) async fn show_databases(
        &mut self,
        routing: &Routing,
        text: &str,
        command: u8,
    ) -> Result<(), WireError> {
        let pattern = match self.scratch.slots() {
            [] => None,
            [
                Slot::Literal {
                    kind: LiteralKind::Str,
                    span,
                },
            ] => text.get(span.clone()),
            _ => {
                let msg = "SHOW DATABASES LIKE takes one quoted pattern";
                return self
                    .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await;
            }
        };
        let filter = pattern
            .map(|p| format!("WHERE `Database` LIKE {p}"))
            .unwrap_or_default();
        // information_schema first, as MariaDB orders it.
        let sql = format!(
            "SELECT `Database` FROM (SELECT 'information_schema' AS `Database` UNION ALL SELECT {}) \
             AS shardgate_databases {filter} ORDER BY `Database` <> 'information_schema', `Database`",
            quote_string(routing.topology.keyspace())
        );
        let packet = command_packet(command, sql.as_bytes());
        let shard = self.any_shard();
        self.run_on_shard(routing, shard, &packet, true).await
    }
}

/// `SHOW DATABASES` or `SHOW SCHEMAS`, with or without `LIKE 'pattern'` (from the fingerprint: literal and
/// comments stripped, so nothing can hide after the pattern).
pub(super) fn is_show_databases(fingerprint: &str) -> bool {
    let words: Vec<&str> = fingerprint.split_ascii_whitespace().collect();
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    match words.as_slice() {
        [show, dbs, rest @ ..]
            if is(show, "SHOW") && (is(dbs, "DATABASES") || is(dbs, "SCHEMAS")) =>
        {
            matches!(rest, [] | [_, "?"] if rest.is_empty() || is(rest[0], "LIKE"))
        }
        _ => false,
    }
}
