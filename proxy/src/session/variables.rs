//! `SET` of session variables: checked on a backend, remembered per session, replayed on whichever connection
//! runs the session's next statement (see [`crate::settings`]).

use std::sync::Arc;

use shardgate_sql::guard::TransactionSetting;
use shardgate_sql::{SetAssignment, SetScope};
use shardgate_topology::ShardId;
use shardgate_wire::WireError;

use super::Session;
use super::transaction::{Ended, backend_error};
use crate::charset::is_identifier;
use crate::mysql_error::*;
use crate::routing::Routing;
use crate::settings::target;

/// Column types whose values are numbers in SQL (the rest are replayed as quoted strings).
const NUMERIC_TYPES: &[u8] = &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0xf6];

impl Session {
    /// The shard for a statement on no sharded table: the transaction's first shard, else one shard per session.
    /// Spreading sessions over the shards keeps the queries every client runs at login (`SELECT @@…`) from all
    /// queuing on the first shard's pool when thousands connect at once.
    pub(super) fn any_shard(&self) -> ShardId {
        if let Some(first) = self.txn.as_ref().and_then(|txn| txn.first_shard()) {
            return first;
        }
        // The snapshot the statement routes on: the transaction's, or the current one.
        let shards = match self.txn.as_ref().and_then(|t| t.routing()) {
            Some(r) => r.topology.shards().len(),
            None => self.shared.routing.load().topology.shards().len(),
        };
        let shards = shards.max(1);
        ShardId(self.conn_id % shards as u32)
    }

    /// `SET [SESSION] a = x, @b = y`: session system variables and user variables.
    pub(super) async fn set_variables(
        &mut self,
        routing: &Routing,
        assignments: &[SetAssignment],
    ) -> Result<(), WireError> {
        if let Some(bad) = assignments.iter().find(|a| a.scope == SetScope::Global) {
            let msg = format!(
                "SET GLOBAL {} is not supported: it would change one backend server, not the keyspace",
                bad.name
            );
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        }
        if let Some(bad) = assignments.iter().find(|a| !is_identifier(&a.name)) {
            let msg = format!("variable name {:?} is not a plain name", bad.name);
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        }
        let mut others = Vec::new();
        let mut autocommit = None;
        for a in assignments {
            if a.name.eq_ignore_ascii_case("autocommit") {
                match parse_switch(&a.value) {
                    Some(on) => autocommit = Some(on),
                    None => {
                        let msg = format!(
                            "Variable 'autocommit' can't be set to the value of '{}'",
                            a.value.trim_matches('\'')
                        );
                        return self
                            .send_error(&MysqlError::new(ER_WRONG_VALUE_FOR_VAR, msg))
                            .await;
                    }
                }
            } else {
                others.push(a);
            }
        }
        if !others.is_empty() {
            // Names as the settings keep them: user variables with their `@` (their names ignore case too).
            let names: Vec<String> = others
                .iter()
                .map(|a| match a.scope {
                    SetScope::User => format!("@{}", a.name.to_ascii_lowercase()),
                    _ => a.name.to_ascii_lowercase(),
                })
                .collect();
            let set = others
                .iter()
                .zip(&names)
                .map(|(a, name)| format!("{} = {}", target(name), a.value))
                .collect::<Vec<_>>()
                .join(", ");
            if let Err(e) = self.resolve(routing, &format!("SET {set}"), &names).await {
                return self.send_error(&e).await;
            }
        }
        if let Some(on) = autocommit {
            // Turning autocommit on commits the open transaction, as on MySQL.
            if on && let Ended::CommitFailed(e) = self.end_transaction(routing, true).await {
                return self.send_error(&e).await;
            }
            self.autocommit = on;
            let next = if on {
                self.settings.without_var("autocommit")
            } else {
                self.settings.with_var("autocommit", "0")
            };
            self.settings = Arc::new(next);
        }
        self.send_ok(0, 0).await
    }

    /// `SET [SESSION|GLOBAL] TRANSACTION …`: the session form becomes the session's `tx_isolation` and
    /// `tx_read_only`; the plain form waits for the next transaction; the global one is refused.
    pub(super) async fn set_transaction(
        &mut self,
        routing: &Routing,
        setting: TransactionSetting,
        sql: String,
    ) -> Result<(), WireError> {
        match setting {
            TransactionSetting::Global => {
                let msg =
                    "SET GLOBAL TRANSACTION is not supported: it would change one backend server";
                self.send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                    .await
            }
            TransactionSetting::Session => {
                let names = ["tx_isolation".to_string(), "tx_read_only".to_string()];
                match self.resolve(routing, &sql, &names).await {
                    Ok(()) => self.send_ok(0, 0).await,
                    Err(e) => self.send_error(&e).await,
                }
            }
            TransactionSetting::Next if self.txn.is_some() => {
                let msg = "Transaction characteristics can't be changed while a transaction is in progress";
                self.send_error(&MysqlError::new(ER_CANT_CHANGE_TX_CHARACTERISTICS, msg))
                    .await
            }
            TransactionSetting::Next => {
                // Checked now, run later on every shard the next transaction joins.
                if let Err(e) = self.check_on_backend(routing, &sql).await {
                    return self.send_error(&e).await;
                }
                self.next_transaction = Some(sql);
                self.send_ok(0, 0).await
            }
        }
    }

    /// Runs `sql` on a pooled connection so that the server checks it. A `SET TRANSACTION` that succeeded would
    /// apply to that connection's next transaction, whoever runs it, so the connection is then closed, not pooled.
    async fn check_on_backend(&mut self, routing: &Routing, sql: &str) -> Result<(), MysqlError> {
        let shard = self.any_shard();
        let mut conn = self.checkout(routing, shard).await?;
        match conn.run_internal(sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if !e.is_fatal() {
                    conn.release();
                }
                Err(backend_error(routing, shard, e))
            }
        }
    }

    /// Runs `set_sql` on a backend connection (which checks it), reads back the session variables `names`
    /// (lower case) as the server resolved them, and makes them part of the session's settings.
    async fn resolve(
        &mut self,
        routing: &Routing,
        set_sql: &str,
        names: &[String],
    ) -> Result<(), MysqlError> {
        let shard = self.any_shard();
        let (mut conn, held) = self.acquire(routing, shard).await?;
        let read = names
            .iter()
            .map(|n| target(n))
            .collect::<Vec<_>>()
            .join(", ");
        let result = async {
            conn.run_internal(set_sql).await?;
            conn.query_row(&format!("SELECT {read}")).await
        }
        .await;
        let values = match result {
            Ok(values) if values.len() == names.len() => values,
            Ok(_) => {
                // The connection now carries settings it does not record: close it rather than reuse it (and a
                // transaction that held it lost that shard's part: the rest rolls back too).
                drop(conn);
                if held {
                    self.abort_transaction(routing).await;
                }
                return Err(MysqlError::new(
                    ER_NOT_SUPPORTED_YET,
                    "the backend did not return the variables just set",
                ));
            }
            Err(e) => {
                // Refused by the server: a failed SET changes nothing, so the connection is as it was.
                if !e.is_fatal() {
                    self.give_back(shard, conn, held);
                } else {
                    drop(conn);
                    if held {
                        self.abort_transaction(routing).await;
                    }
                }
                return Err(backend_error(routing, shard, e));
            }
        };
        let mut next = (*self.settings).clone();
        for (name, (ty, value)) in names.iter().zip(values) {
            let literal = match value {
                None => "NULL".to_string(),
                Some(v) if NUMERIC_TYPES.contains(&ty) => v,
                Some(v) => shardgate_sql::rewrite::quote_string(&v),
            };
            next = next.with_var(name, &literal);
        }
        let next = Arc::new(next);
        conn.applied = Arc::clone(&next);
        self.settings = next;
        self.give_back(shard, conn, held);
        Ok(())
    }
}

/// `1`, `ON`, `TRUE`, `DEFAULT` → on; `0`, `OFF`, `FALSE` → off, quoted or not.
fn parse_switch(value: &str) -> Option<bool> {
    let v = value.trim().trim_matches(|c| c == '\'' || c == '"');
    match v.to_ascii_uppercase().as_str() {
        "1" | "ON" | "TRUE" | "DEFAULT" => Some(true),
        "0" | "OFF" | "FALSE" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_switch;

    #[test]
    fn autocommit_values_follow_mysql() {
        assert_eq!(parse_switch("0"), Some(false));
        assert_eq!(parse_switch("'OFF'"), Some(false));
        assert_eq!(parse_switch("true"), Some(true));
        assert_eq!(parse_switch("DEFAULT"), Some(true));
        assert_eq!(parse_switch("2"), None);
        assert_eq!(parse_switch("'maybe'"), None);
    }
}
