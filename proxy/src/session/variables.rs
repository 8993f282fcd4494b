//! `SET` of session variables: checked on a backend, remembered per session, replayed on whichever connection
//! runs the session's next statement (see [`crate::settings`]).

use std::sync::Arc;

use shardgate_sql::{SetAssignment, SetScope};
use shardgate_topology::ShardId;
use shardgate_wire::WireError;

use super::Session;
use super::transaction::Ended;
use crate::charset::is_identifier;
use crate::mysql_error::*;
use crate::routing::Routing;

/// Column types whose values are numbers in SQL (the rest are replayed as quoted strings).
const NUMERIC_TYPES: &[u8] = &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0xf6];

impl Session {
    /// The shard for a statement on no sharded table: the transaction's first shard, else the first shard.
    pub(super) fn any_shard(&self) -> ShardId {
        self.txn
            .as_ref()
            .and_then(|txn| txn.first_shard())
            .unwrap_or(ShardId(0))
    }

    /// `SET [SESSION] a = x, b = y`: session variables only.
    pub(super) async fn set_variables(
        &mut self,
        routing: &Routing,
        assignments: &[SetAssignment],
    ) -> Result<(), WireError> {
        if let Some(bad) = assignments.iter().find(|a| a.scope != SetScope::Session) {
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
        if !others.is_empty()
            && let Err(e) = self.resolve_variables(routing, &others).await
        {
            return self.send_error(&e).await;
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

    /// Runs the assignments on a backend connection (which checks them), reads back the values the server
    /// resolved, and makes them part of the session's settings.
    async fn resolve_variables(
        &mut self,
        routing: &Routing,
        assignments: &[&SetAssignment],
    ) -> Result<(), MysqlError> {
        let shard = self.any_shard();
        let (mut conn, held) = self.acquire(routing, shard).await?;
        let set = assignments
            .iter()
            .map(|a| format!("{} = {}", a.name, a.value))
            .collect::<Vec<_>>()
            .join(", ");
        let read = assignments
            .iter()
            .map(|a| format!("@@SESSION.{}", a.name))
            .collect::<Vec<_>>()
            .join(", ");
        let result = async {
            conn.run_internal(&format!("SET SESSION {set}")).await?;
            conn.query_row(&format!("SELECT {read}")).await
        }
        .await;
        let values = match result {
            Ok(values) if values.len() == assignments.len() => values,
            Ok(_) => {
                // The connection now carries settings it does not record: close it rather than reuse it.
                drop(conn);
                return Err(MysqlError::new(
                    ER_NOT_SUPPORTED_YET,
                    "the backend did not return the variables just set",
                ));
            }
            Err(WireError::Server {
                code,
                state,
                message,
            }) => {
                // Refused by the server: a failed SET changes nothing, so the connection is as it was.
                self.give_back(shard, conn, held);
                return Err(MysqlError::from_backend(code, state, message));
            }
            Err(e) => {
                return Err(MysqlError::new(
                    ER_NET_READ_ERROR,
                    format!("shard {}: {e}", routing.describe(shard)),
                ));
            }
        };
        let mut next = (*self.settings).clone();
        for (a, (ty, value)) in assignments.iter().zip(values) {
            let literal = match value {
                None => "NULL".to_string(),
                Some(v) if NUMERIC_TYPES.contains(&ty) => v,
                Some(v) => shardgate_sql::rewrite::quote_string(&v),
            };
            next = next.with_var(&a.name.to_ascii_lowercase(), &literal);
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
