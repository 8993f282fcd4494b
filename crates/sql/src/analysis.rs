//! What the analyzer tells the proxy about one statement.
//!
//! Plain data: the statement's kind, where it must run ([`Route`]), and the tables it
//! touches. The proxy maps a tenant key to a shard with its topology snapshot; this
//! crate never sees shards.

use std::sync::Arc;

use crate::scatter::MergePlan;

/// The answer for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// What kind of statement it is.
    pub kind: StatementKind,
    /// Where it must run.
    pub route: Route,
    /// Every table it references (FROM, JOIN, subqueries, CTEs, INSERT target, DDL
    /// target), in order of first appearance, without repeats.
    pub tables: Arc<[TableName]>,
    /// The schema qualifier written on the routed sharded table (`ks.orders` gives
    /// `ks`), which the proxy must check is the keyspace. Qualifiers of other tables
    /// are in [`Analysis::tables`].
    pub schema: Option<Arc<str>>,
    /// The statement calls `DATABASE()` or `SCHEMA()`: a shard would answer with its
    /// own database name, so the proxy must answer these itself.
    pub calls_database: bool,
    /// The answer came from a cached plan (no parse).
    pub cached: bool,
}

/// A table reference as written, optionally qualified by a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The qualifier in `schema.table`, if written.
    pub schema: Option<Arc<str>>,
    /// The table name, case as written.
    pub name: Arc<str>,
}

/// The kind of a statement, with what the proxy needs to act on session statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT` (and parenthesised or `WITH` queries).
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `REPLACE`.
    Replace,
    /// `SET NAMES charset [COLLATE collation]` (`SET NAMES DEFAULT` gives `DEFAULT`).
    SetNames {
        /// The character set named.
        charset: String,
        /// The collation, if named.
        collation: Option<String>,
    },
    /// `SET CHARACTER SET charset` or `SET CHARSET charset`: unlike `SET NAMES`, the
    /// connection character set becomes the database's.
    SetCharacterSet {
        /// The character set named.
        charset: String,
    },
    /// Any other `SET` of variables, one entry per assignment.
    Set(Vec<SetAssignment>),
    /// `USE db`.
    Use(String),
    /// `BEGIN` or `START TRANSACTION`.
    Begin,
    /// `COMMIT` (without `AND CHAIN`).
    Commit,
    /// `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, not `AND CHAIN`).
    Rollback,
    /// `SHOW ...`, `DESCRIBE table`.
    Show,
    /// `CREATE`/`ALTER`/`DROP`/`TRUNCATE`/`RENAME TABLE`, `CREATE`/`DROP INDEX`.
    Ddl {
        /// The (first) table it changes, without its schema qualifier, when known.
        table: Option<String>,
    },
    /// Anything else; the proxy decides (e.g. `EXPLAIN`, `SAVEPOINT`, `CALL`,
    /// `SET TRANSACTION`). Such a statement may read or write any table: it was not
    /// checked for tenants.
    Other,
}

/// One assignment of a `SET` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAssignment {
    /// Whose variable it is.
    pub scope: SetScope,
    /// The variable's name without `@`, `@@` or a scope prefix (`sql_mode`, `x`).
    pub name: String,
    /// The assigned value as SQL text, e.g. `'ab'`, `1`, `DEFAULT`, `utf8mb4`.
    pub value: String,
}

/// The scope of a `SET` assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetScope {
    /// A system variable of this session (`SESSION`, `LOCAL`, `@@session.`, `@@`, none).
    Session,
    /// A server-wide system variable (`GLOBAL`, `@@global.`).
    Global,
    /// A user variable (`@name`).
    User,
}

/// Where a statement must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// On the shard of one tenant: of one sharded table, or of several that place a
    /// tenant on the same shard (one vindex) and are all limited to that tenant.
    Tenant {
        /// The sharded table (for a join, the first sharded table read; route by it).
        table: Arc<str>,
        /// The tenant named by the statement.
        key: TenantKey,
    },
    /// On the shards of several tenants of one sharded table, or on every shard.
    ///
    /// A statement whose WHERE clause names one tenant (`col = <literal>`) is
    /// [`Route::Tenant`]; one naming a set of them (`col IN (...)`, or `col = a OR
    /// col = b`), or none, is a scatter. A set that names one tenant once duplicates
    /// are removed (`col IN (5, 5)`) is [`Route::Tenant`] again.
    Scatter {
        /// The sharded table.
        table: Arc<str>,
        /// The tenants the statement is limited to, without duplicates, in order of
        /// first appearance: run it on each of their shards (once per shard). `None`:
        /// run it on every shard.
        keys: Option<Vec<TenantKey>>,
        /// For a SELECT, how to combine the shards' result sets (its
        /// [`MergePlan::shard_sql`] is what each shard runs). `None` for UPDATE and
        /// DELETE: each shard runs the statement as written and the affected-row
        /// counts add up; whether a write without any tenant may run on every shard
        /// is the proxy's policy.
        merge: Option<Arc<MergePlan>>,
    },
    /// An INSERT or REPLACE whose VALUES rows belong to several tenants: run each part
    /// on its tenant's shard. Each part is the original statement (modifiers, column
    /// list and any `ON DUPLICATE KEY UPDATE` kept) with only that tenant's rows, in
    /// their original order. The parts are not atomic together: the proxy decides
    /// whether to run them in one distributed transaction or refuse.
    SplitInsert {
        /// The sharded table.
        table: Arc<str>,
        /// One part per tenant, in order of the tenant's first row.
        parts: Vec<InsertPart>,
    },
    /// An INSERT or REPLACE into a sharded table whose ids come from a sequence
    /// ([`Schema::sequence_column`](crate::Schema::sequence_column)), some of whose rows
    /// leave that column to be generated: it omits the column from its column list (every
    /// row), or gives it `NULL`, `DEFAULT` or `0` (as MySQL without `NO_AUTO_VALUE_ON_ZERO`:
    /// a literal that reads as the integer 0 asks for an id too). Nothing runs yet: the
    /// proxy takes one id per row from the sequence, writes them in with
    /// [`fill_ids`](crate::fill_ids) and analyses the result, which routes as any INSERT.
    ///
    /// This comes before any tenant route: when the sequence column is the sharding column
    /// (sysbench's `sbtest`, sharded by `id`), the statement has no tenant until its ids
    /// are filled in. Rows that give the column a value (an integer other than 0, or a `?`
    /// the client binds) keep it. A prepared statement can get this route too (a column
    /// omitted, or `NULL`, whatever its placeholders); the proxy decides whether it can
    /// serve it.
    NeedsIds {
        /// The sharded table written.
        table: Arc<str>,
        /// Its sequence column, as the schema names it.
        column: Arc<str>,
        /// The 0-based indexes of the VALUES rows that need an id, in order (every row
        /// when the column is omitted); never empty.
        rows: Vec<usize>,
    },
    /// On any one shard: no sharded table is touched (e.g. `SELECT 1`, `SHOW ...`,
    /// reads of reference tables).
    AnyShard,
    /// On every shard, inside one transaction: an INSERT, UPDATE, DELETE or REPLACE
    /// that touches only reference tables, each of which every shard holds a full copy
    /// of. The statement is the same on every shard and reads only those copies, so
    /// each shard makes the same change; were it to fail on one shard, the transaction
    /// must be rolled back on all, or the copies diverge.
    EveryShard {
        /// The reference table written (the first target of a multi-table write).
        table: Arc<str>,
    },
    /// No routing decision: session and transaction statements, DDL and
    /// [`StatementKind::Other`]; the proxy acts on the kind.
    None,
}

/// The rows of one tenant of a [`Route::SplitInsert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertPart {
    /// The tenant of every row of `sql`.
    pub key: TenantKey,
    /// The INSERT statement to run on that tenant's shard.
    pub sql: String,
}

/// The tenant a statement names, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantKey {
    /// An integer, a hex or bit value, or a negative integer as its i64 value cast
    /// to u64 (Vitess semantics).
    Int(u64),
    /// A string literal, unescaped. The proxy converts it by the column's type
    /// (`'42'` for an integer column is tenant 42).
    Str(String),
    /// The 0-based `?` placeholder of a prepared statement that holds the tenant.
    Param(u16),
}
