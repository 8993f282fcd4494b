//! Shared fixtures: a test keyspace and a one-line rendering of every answer.
#![allow(dead_code)]

use shardgate_sql::{Analysis, Route, Schema, SqlError};

/// `orders`, `customers` and `order_items` sharded by `tenant_id` and `invoices` by
/// `account_id`, all with the `hash` vindex; `events` by `tenant_id` with `xxhash`;
/// sysbench's `sbtest1` by `id` (`hash`). `countries` and `currencies` are reference
/// tables; every other table is unsharded (read anywhere, never written). Ids come from
/// a sequence for `sbtest1.id` (its sharding column) and `tickets.id` (`tickets` is
/// sharded by `tenant_id`).
pub struct Keyspace {
    /// Reported generation.
    pub generation: u64,
    /// Whether `orders` is sharded (to test generation changes).
    pub orders_sharded: bool,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self {
            generation: 1,
            orders_sharded: true,
        }
    }
}

impl Schema for Keyspace {
    fn generation(&self) -> u64 {
        self.generation
    }

    fn sharding_column(&self, table: &str) -> Option<&str> {
        match table {
            "orders" if self.orders_sharded => Some("tenant_id"),
            "customers" | "order_items" | "events" | "tickets" => Some("tenant_id"),
            "invoices" => Some("account_id"),
            "sbtest1" => Some("id"),
            _ => None,
        }
    }

    fn is_reference(&self, table: &str) -> bool {
        matches!(table, "countries" | "currencies")
    }

    fn sequence_column(&self, table: &str) -> Option<&str> {
        matches!(table, "sbtest1" | "tickets").then_some("id")
    }

    fn vindex(&self, table: &str) -> Option<&str> {
        match table {
            "events" => Some("xxhash"),
            _ => self.sharding_column(table).map(|_| "hash"),
        }
    }
}

/// One line per answer, as the golden tables spell it.
pub fn render(result: &Result<Analysis, SqlError>) -> String {
    match result {
        Ok(analysis) => {
            let route = match &analysis.route {
                Route::Tenant { table, key } => format!("tenant {table} {key:?}"),
                Route::Scatter { table, keys, merge } => {
                    let keys = keys
                        .as_ref()
                        .map_or("all".to_owned(), |keys| format!("{keys:?}"));
                    let merge = if merge.is_some() { " merged" } else { "" };
                    format!("scatter {table} {keys}{merge}")
                }
                Route::SplitInsert { table, parts } => {
                    let parts: Vec<String> = parts
                        .iter()
                        .map(|part| format!("{:?}: {}", part.key, part.sql))
                        .collect();
                    format!("split {table} {}", parts.join(" | "))
                }
                Route::NeedsIds {
                    table,
                    column,
                    rows,
                } => format!("needs ids {table}.{column} rows {rows:?}"),
                Route::AnyShard => "any shard".to_owned(),
                Route::EveryShard { table } => format!("every shard {table}"),
                Route::None => "none".to_owned(),
            };
            let schema = analysis
                .schema
                .as_ref()
                .map(|s| format!(" schema={s}"))
                .unwrap_or_default();
            let database = if analysis.calls_database {
                " calls DATABASE()"
            } else {
                ""
            };
            format!("{:?} → {route}{schema}{database}", analysis.kind)
        }
        Err(error) => match error {
            SqlError::Parse {
                message,
                line,
                column,
                ..
            } => format!("Parse at {line}:{column}: {message}"),
            SqlError::MissingTenantKey { table, column } => {
                format!("MissingTenantKey {table}.{column}")
            }
            SqlError::MultipleTenants { table, column } => {
                format!("MultipleTenants {table}.{column}")
            }
            SqlError::ConflictingTenants { table, column } => {
                format!("ConflictingTenants {table}.{column}")
            }
            SqlError::ShardingColumnUpdate { table, column } => {
                format!("ShardingColumnUpdate {table}.{column}")
            }
            SqlError::MissingColumnList { table, column } => {
                format!("MissingColumnList {table}.{column}")
            }
            SqlError::BadTenantLiteral {
                table,
                column,
                literal,
                reason,
            } => {
                format!("BadTenantLiteral {table}.{column} {literal}: {reason}")
            }
            SqlError::SequenceInsert {
                table,
                column,
                reason,
            } => format!("SequenceInsert {table}.{column}: {reason}"),
            SqlError::BadSequenceValue {
                table,
                column,
                literal,
                reason,
            } => format!("BadSequenceValue {table}.{column} {literal}: {reason}"),
            SqlError::Unsupported { reason } => format!("Unsupported: {reason}"),
            SqlError::Empty => "Empty".to_owned(),
        },
    }
}

/// Whether `rendered` is what `expected` says: exact, or a prefix when `expected`
/// ends with `…`.
pub fn matches(rendered: &str, expected: &str) -> bool {
    match expected.strip_suffix('…') {
        Some(prefix) => rendered.starts_with(prefix),
        None => rendered == expected,
    }
}
