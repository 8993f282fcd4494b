//! Statement analysis for shardgate: which table a statement touches and which tenant
//! it belongs to, or why it is refused.
//!
//! Place in the data path: after the session has a statement's text, before the route
//! is looked up in the topology. This crate knows nothing of sockets, shards or the
//! topology: the caller describes the keyspace with a [`Schema`] and maps the returned
//! [`TenantKey`] to a shard itself.
//!
//! The answer is exact or an error ([`SqlError`]), never a guess. A statement names
//! one tenant ([`Route::Tenant`]; joins and subqueries over several sharded tables too,
//! when every one is provably limited to that tenant), a set of tenants or none
//! ([`Route::Scatter`]: the proxy decides by its policy whether to run it on those
//! shards, or on all), or, for an INSERT, rows of several tenants
//! ([`Route::SplitInsert`]). A write to reference tables runs on every shard
//! ([`Route::EveryShard`]). An INSERT whose ids come from a sequence
//! ([`Schema::sequence_column`]) and are left to be generated is [`Route::NeedsIds`]:
//! the proxy fills them in ([`fill_ids`]) and analyses the result. A scatter SELECT
//! comes with a [`MergePlan`] whose merged answer is what one MariaDB holding every
//! tenant would return; a shape that cannot be merged exactly is refused.
//!
//! The hot path is the plan cache: a hand-written lexer ([`Scratch`] holds its output)
//! fingerprints the statement; a cached plan says which literal slot holds the tenant,
//! and only that slot is decoded. On a miss, sqlparser parses the text and the
//! analysis builds the plan. Scatter SELECTs and split INSERTs depend on more than
//! their tenant literals, so they are parsed every time.
//!
//! What the caller must guarantee, because the analysis reads SQL the way MySQL does
//! in its default modes:
//!
//! - backends never run with `sql_mode` `NO_BACKSLASH_ESCAPES` (string boundaries
//!   would move) or `ANSI_QUOTES` (`"x"` would become a column); the proxy should
//!   refuse a client `SET` that turns them on ([`StatementKind::Set`] lists them);
//! - statement text reaches [`Analyzer::analyze`] as the UTF-8 the backend will run
//!   (client character sets such as GBK, whose multi-byte characters may contain a
//!   `\` or `'` byte, must be refused or converted before both);
//! - unique keys of sharded tables include the sharding column, so that
//!   `ON DUPLICATE KEY UPDATE` and `REPLACE` only ever meet their own tenant's rows;
//! - one [`Analyzer`] serves one keyspace: plans are keyed by fingerprint and
//!   [`Schema::generation`], not by schema identity.
//!
//! ```
//! use shardgate_sql::{Analyzer, Route, Schema, Scratch, TenantKey};
//!
//! struct Keyspace;
//! impl Schema for Keyspace {
//!     fn generation(&self) -> u64 { 1 }
//!     fn sharding_column(&self, table: &str) -> Option<&str> {
//!         (table == "orders").then_some("tenant_id")
//!     }
//! }
//!
//! let analyzer = Analyzer::new(1024);
//! let mut scratch = Scratch::default();
//! let analysis = analyzer
//!     .analyze("SELECT * FROM orders WHERE tenant_id = 42", &Keyspace, &mut scratch)
//!     .unwrap();
//! assert!(matches!(analysis.route, Route::Tenant { key: TenantKey::Int(42), .. }));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod analysis;
mod analyze;
mod analyzer;
mod cache;
mod error;
mod fill;
pub mod guard;
mod lexer;
mod literal;
pub mod locks;
mod plan;
mod position;
pub mod rewrite;
mod scan;
mod scatter;
mod scratch;
mod sequence;
mod slot_map;
mod split_statements;
mod tokens;

pub use analysis::{
    Analysis, InsertPart, Route, SetAssignment, SetScope, StatementKind, TableName, TenantKey,
};
pub use analyzer::Analyzer;
pub use error::SqlError;
pub use fill::fill_ids;
pub use scatter::{
    Aggregate, AggregateKind, GroupKey, HavingExpr, HavingLiteral, HavingOp, MergePlan, SortKey,
};
pub use scratch::{LiteralKind, Scratch, Slot};
pub use split_statements::split_statements;

/// The keyspace's tables, as the caller knows them.
///
/// Only [`Schema::generation`] and [`Schema::sharding_column`] are required; the others
/// default to the answer that refuses what they would allow (no reference tables, no
/// joins between different sharded tables).
pub trait Schema {
    /// Changes whenever any table's sharding changes; plans made under another
    /// generation are made again.
    fn generation(&self) -> u64;

    /// The sharding column of `table`, or `None` when the table is not sharded: a
    /// reference table ([`Schema::is_reference`]), or, for a caller that has them, a
    /// table held the same on every shard that the proxy may read but never write.
    ///
    /// `table` is the name as written in the statement, without its schema qualifier.
    /// Names are compared as the caller decides: with backends running
    /// `lower_case_table_names = 1`, fold case here, or `ORDERS` would read as an
    /// unsharded table.
    fn sharding_column(&self, table: &str) -> Option<&str>;

    /// Whether `table`, which is not sharded, is a reference table: every shard holds a
    /// full copy, so a write to it runs on every shard ([`Route::EveryShard`]). Asked
    /// only of tables whose [`Schema::sharding_column`] is `None`.
    fn is_reference(&self, table: &str) -> bool {
        let _ = table;
        false
    }

    /// Whether `table`, which is not sharded, exists only where the statement runs (a
    /// session's temporary table): read like a reference table, and written where the
    /// statement's sharded reads take it (an `INSERT … SELECT` pinned to one tenant runs
    /// on that tenant's shard) or anywhere when it reads none.
    fn is_session_local(&self, table: &str) -> bool {
        let _ = table;
        false
    }

    /// Which function maps a tenant of sharded `table` to its shard (its vindex, e.g.
    /// `hash`), as an identity: two sharded tables with the same one keep every tenant's
    /// rows on the same shard, so a statement joining them for one tenant runs on that
    /// shard. `None`: not known, and joins of `table` with another sharded table are
    /// refused.
    fn vindex(&self, table: &str) -> Option<&str> {
        let _ = table;
        None
    }

    /// The column of sharded `table` whose ids come from a sequence (Vitess's
    /// `auto_increment`), or `None` when the shards give ids themselves. An INSERT or
    /// REPLACE that leaves that column to be generated (omits it, or gives it `NULL`,
    /// `DEFAULT` or `0`) is answered [`Route::NeedsIds`]; the proxy takes ids from the
    /// sequence and writes them in with [`fill_ids`]. Asked only of INSERT and REPLACE
    /// targets whose [`Schema::sharding_column`] is known.
    fn sequence_column(&self, table: &str) -> Option<&str> {
        let _ = table;
        None
    }
}
