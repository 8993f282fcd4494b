//! From one parsed statement to a draft plan (DML and queries) or a final answer
//! (session statements, DDL, everything else).
//!
//! Runs only on a plan-cache miss. A draft points at the AST values that name the
//! tenant; [`Plan::from_draft`](crate::plan::Plan::from_draft) then ties them to the
//! lexer's slots so the plan can be reused for every statement of the fingerprint.
//!
//! The rules. A statement touching one sharded table, once, in its own FROM (or target)
//! list:
//!
//! - SELECT, UPDATE, DELETE: `col = <literal>` in a top-level conjunct of the WHERE
//!   clause names the tenant ([`Route::Tenant`](crate::Route::Tenant)). Without one, a
//!   top-level conjunct `col IN (<literal>, ...)` or an OR of such conditions names a
//!   set of tenants, and no such conjunct means every tenant: both are
//!   [`Route::Scatter`](crate::Route::Scatter). A scatter SELECT carries a
//!   [`MergePlan`](crate::MergePlan) (see [`merge`] for the shapes it covers; the rest
//!   is refused); a scatter UPDATE or DELETE may not have LIMIT or RETURNING.
//! - INSERT, REPLACE: the sharding column of every row names its tenant. Rows of
//!   several tenants (literal values, no `?`) are split into one INSERT per tenant
//!   ([`Route::SplitInsert`](crate::Route::SplitInsert), built in [`split`] when the
//!   plan is bound). `INSERT ... SELECT` names one tenant when its SELECT is pinned to
//!   it and the rows it inserts provably belong to it (see below). Into a table whose
//!   ids come from a sequence, rows leaving the id to be generated make it
//!   [`Route::NeedsIds`](crate::Route::NeedsIds) first (see [`insert`]).
//!
//! A SELECT reading sharded tables several times, or one inside a subquery, derived
//! table, CTE or UNION, and an UPDATE or DELETE of one sharded table whose subqueries
//! read sharded tables, run on one tenant's shard when every read is provably limited to
//! that tenant ([`pinned`] states the rule); otherwise they are refused (no scatter).
//! So does an `INSERT ... SELECT` whose SELECT is pinned so, when the value it gives the
//! target's sharding column is that tenant (the pinning literal, or a pinned table's
//! sharding column). Any other INSERT may not read a sharded table besides its target.
//!
//! A write touching only reference tables runs on every shard ([`mod@reference`]); a write
//! to a reference table that reads a sharded one is refused.
//!
//! Everything else on a sharded table is refused, never guessed.

mod fallback;
mod insert;
mod merge;
mod pinned;
mod reference;
mod session;
pub(crate) mod split;
mod tables;
mod tenant;
mod write;

use std::sync::Arc;

use sqlparser::ast::{Query, Select, SetExpr, Statement};

use crate::Schema;
use crate::analysis::{Analysis, StatementKind, TableName};
use crate::error::SqlError;
use crate::plan::KeyRule;
use crate::scatter::MergePlan;
use crate::sequence::DraftIds;

pub(crate) use fallback::classify as classify_unparsed;
pub(crate) use insert::column_position;
pub(crate) use tenant::{KeyExpr, literal, unnest};

use pinned::Pinned;
use tables::{References, Scope, ShardedTable};
use tenant::Target;

/// A plan still pointing into the AST.
#[derive(Debug)]
pub(crate) struct Draft<'a> {
    /// The statement kind.
    pub(crate) kind: StatementKind,
    /// Every table referenced.
    pub(crate) tables: Vec<TableName>,
    /// Schema qualifier of the routed table.
    pub(crate) schema: Option<Arc<str>>,
    /// The statement calls `DATABASE()` or `SCHEMA()`.
    pub(crate) calls_database: bool,
    /// Where it runs.
    pub(crate) route: DraftRoute<'a>,
    /// For an INSERT into a table whose ids come from a sequence: each row's value for
    /// that column, which may turn the route into [`Route::NeedsIds`](crate::Route::NeedsIds).
    /// (Boxed: most drafts have none, and a draft is moved around by value.)
    pub(crate) ids: Option<Box<DraftIds<'a>>>,
}

/// The route of a draft.
#[derive(Debug)]
pub(crate) enum DraftRoute<'a> {
    /// No sharded table.
    AnyShard,
    /// A write to reference tables only.
    EveryShard {
        /// The reference table written.
        table: Arc<str>,
    },
    /// One sharded table, on the shards of a set of tenants or on every shard.
    Scatter {
        /// The sharded table.
        table: Arc<str>,
        /// Its sharding column.
        column: Arc<str>,
        /// The literals naming the tenants (repeats kept); `None`: every tenant.
        keys: Option<Vec<KeyExpr<'a>>>,
        /// What running on several shards takes: a merge plan for a SELECT, nothing
        /// for a write; or why the statement cannot run on several shards (refused
        /// only when its tenants turn out to be several).
        merge: Result<Option<Arc<MergePlan>>, SqlError>,
    },
    /// An INSERT some of whose rows always ask for a generated id (the sequence column
    /// omitted, `NULL` or `DEFAULT`) and whose tenants are unknown until the ids are in:
    /// the sequence column is the sharding column. [`Draft::ids`] says which rows.
    NeedsIds,
    /// One sharded table, tenant named by `keys` (never empty).
    Tenant {
        /// The sharded table.
        table: Arc<str>,
        /// Its sharding column.
        column: Arc<str>,
        /// The literals naming the tenant.
        keys: Vec<KeyExpr<'a>>,
        /// What differing keys mean.
        rule: KeyRule,
    },
}

/// What analysing a statement gives.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    /// A plan to bind (and cache when it is tied to the slots).
    Draft(Draft<'a>),
    /// The answer itself; never cached (it depends on the statement's literals).
    Final(Analysis),
}

/// Analyses one statement (whose text is `sql`) against `schema`.
pub(crate) fn statement<'a>(
    sql: &str,
    stmt: &'a Statement,
    schema: &dyn Schema,
) -> Result<Outcome<'a>, SqlError> {
    match stmt {
        Statement::Query(query) => select(sql, stmt, query, schema),
        Statement::Insert(insert) => insert::analyze(stmt, insert, schema),
        Statement::Update(update) => write::update(stmt, update, schema),
        Statement::Delete(delete) => write::delete(stmt, delete, schema),
        _ => session::classify(stmt, schema).map(Outcome::Final),
    }
}

/// A query: routed by the WHERE clause of its main SELECT, or, when it reads sharded
/// tables elsewhere too, by the tenant they are all pinned to.
fn select<'a>(
    sql: &str,
    stmt: &'a Statement,
    query: &'a Query,
    schema: &dyn Schema,
) -> Result<Outcome<'a>, SqlError> {
    let refs = tables::collect(stmt, schema)?;
    if refs.sharded.is_empty() {
        return Ok(any_shard(StatementKind::Select, refs));
    }
    refs.refuse_unsafe_operators()?;
    let main = main_select(query);
    let scope = main.map_or_else(|| Ok(Scope::default()), |select| Scope::of(&select.from))?;
    let single = match refs.sharded.as_slice() {
        [only] => scope
            .tables
            .iter()
            .find(|entry| entry.name.name == only.name)
            .map(|entry| (only.clone(), entry)),
        _ => None,
    };
    let Some((
        ShardedTable {
            name: table,
            column,
        },
        entry,
    )) = single
    else {
        let pinned = pinned::query(query, schema, &refs)?;
        return pinned_route(StatementKind::Select, refs, pinned);
    };
    let target = Target {
        table: entry,
        column: &column,
        scope: &scope,
    };
    let selection = main.and_then(|select| select.selection.as_ref());
    let keys = target.where_keys(selection);
    let qualifier = entry.name.schema.clone();
    if keys.is_empty() {
        let merge = merge::plan(sql, query).map(|plan| Some(Arc::new(plan)));
        let keys = target.where_key_set(selection);
        return Ok(scatter(
            StatementKind::Select,
            refs,
            (table, column, qualifier),
            keys,
            merge,
        ));
    }
    routed(
        StatementKind::Select,
        refs,
        (table, column, qualifier),
        keys,
        KeyRule::Conjuncts,
    )
}

/// The draft of a statement pinned to one tenant.
fn pinned_route<'a>(
    kind: StatementKind,
    refs: References,
    pinned: Pinned<'a>,
) -> Result<Outcome<'a>, SqlError> {
    let Pinned {
        table,
        column,
        schema,
        keys,
    } = pinned;
    routed(kind, refs, (table, column, schema), keys, KeyRule::Join)
}

/// The SELECT a query's rows come from, through parentheses; none for UNION etc.
fn main_select(query: &Query) -> Option<&Select> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return Some(select),
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            _ => return None,
        }
    }
}

/// A draft for a statement on no sharded table.
fn any_shard<'a>(kind: StatementKind, refs: References) -> Outcome<'a> {
    Outcome::Draft(Draft {
        kind,
        tables: refs.tables,
        schema: None,
        calls_database: refs.calls_database,
        route: DraftRoute::AnyShard,
        ids: None,
    })
}

/// A draft for a statement on a set of tenants (`keys`) or on every tenant (`None`).
fn scatter<'a>(
    kind: StatementKind,
    refs: References,
    (table, column, schema): (Arc<str>, Arc<str>, Option<Arc<str>>),
    keys: Option<Vec<KeyExpr<'a>>>,
    merge: Result<Option<Arc<MergePlan>>, SqlError>,
) -> Outcome<'a> {
    Outcome::Draft(Draft {
        kind,
        tables: refs.tables,
        schema,
        calls_database: refs.calls_database,
        route: DraftRoute::Scatter {
            table,
            column,
            keys,
            merge,
        },
        ids: None,
    })
}

/// A draft routed by `keys`; refuses a statement without any.
fn routed<'a>(
    kind: StatementKind,
    refs: References,
    (table, column, schema): (Arc<str>, Arc<str>, Option<Arc<str>>),
    keys: Vec<KeyExpr<'a>>,
    rule: KeyRule,
) -> Result<Outcome<'a>, SqlError> {
    if keys.is_empty() {
        return Err(SqlError::MissingTenantKey {
            table: table.to_string(),
            column: column.to_string(),
        });
    }
    Ok(Outcome::Draft(Draft {
        kind,
        tables: refs.tables,
        schema,
        calls_database: refs.calls_database,
        route: DraftRoute::Tenant {
            table,
            column,
            keys,
            rule,
        },
        ids: None,
    }))
}

/// The error for a write to tables none of which is sharded, whose target is not a
/// reference table.
fn unsharded_write(refs: &References) -> SqlError {
    let table = refs.tables.first().map_or("", |table| &table.name);
    SqlError::unsupported(format!(
        "writes to unsharded table `{table}` are not supported (only reference tables are written, on every shard)"
    ))
}
