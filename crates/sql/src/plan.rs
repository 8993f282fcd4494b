//! A plan: everything about a statement that its fingerprint fixes.
//!
//! Statements with one fingerprint differ only in their literals, so a plan stores the
//! kind, the tables and the route's shape, and for the tenant only *which slots* hold
//! it. Binding a plan to a statement decodes those slots from that statement's text:
//! a cache hit never returns the tenant of the statement the plan was made from.
//!
//! What is cached (see [`Plan::is_cacheable`]): tenant routes (joins included: every
//! key of every joined table is a slot, decoded and compared on each hit), writes to
//! reference tables (no key at all), and scatter UPDATEs and DELETEs, whose answer is
//! the route's shape plus keys decoded from slots. Not
//! cached: scatter SELECTs, whose merge plan and shard text depend on literals
//! (`LIMIT 10`, `ORDER BY 2`, the text copied around them), so every such statement is
//! parsed; and the parts of a split INSERT, which the analyzer builds from the AST
//! whenever a bound plan finds rows of several tenants.
//!
//! An INSERT into a table whose ids come from a sequence is cached like any INSERT, with
//! the slot of each row's sequence value ([`IdsPlan`]): whether a row asks for an id
//! turns on its literal (`0` and `7` share a fingerprint), so every bind reads those
//! slots, and [`Route::NeedsIds`] is never stored, only recomputed. An omitted column,
//! `NULL` and `DEFAULT` are words of the fingerprint, so the rows they mark hold for the
//! whole fingerprint.

use std::collections::HashSet;
use std::sync::Arc;

use sqlparser::ast::Value;

use crate::analysis::{Analysis, Route, StatementKind, TableName, TenantKey};
use crate::analyze::{Draft, DraftRoute, KeyExpr};
use crate::error::SqlError;
use crate::literal::{self, Refusal};
use crate::scatter::MergePlan;
use crate::scratch::Slot;
use crate::sequence::IdsPlan;
use crate::slot_map::SlotMap;

/// What a fingerprint fixes about its statements.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The [`Schema`](crate::Schema) generation the plan was made under.
    pub(crate) generation: u64,
    /// How many slots the fingerprint has (a cheap check against the key's meaning).
    pub(crate) slot_count: usize,
    /// The statement kind.
    pub(crate) kind: StatementKind,
    /// Every table referenced.
    pub(crate) tables: Arc<[TableName]>,
    /// Schema qualifier of the routed table.
    pub(crate) schema: Option<Arc<str>>,
    /// The statement calls `DATABASE()` or `SCHEMA()`.
    pub(crate) calls_database: bool,
    /// Where statements of this shape run.
    pub(crate) route: PlanRoute,
    /// For an INSERT into a table whose ids come from a sequence: where each row's value
    /// for that column is. Rows asking for an id turn any route into
    /// [`Route::NeedsIds`].
    pub(crate) ids: Option<IdsPlan>,
}

/// The route's shape.
#[derive(Debug)]
pub(crate) enum PlanRoute {
    /// No sharded table: any shard.
    AnyShard,
    /// A write to reference tables: every shard. Nothing in it comes from a literal.
    EveryShard(Arc<str>),
    /// No routing decision (session statements, DDL, other).
    NoRoute,
    /// One sharded table; the tenant is read from the statement.
    Tenant(TenantPlan),
    /// One sharded table, on a set of tenants or on all of them.
    Scatter(ScatterPlan),
    /// An INSERT with rows that always ask for an id, and no tenant until they have one:
    /// [`Plan::ids`] gives the route.
    NeedsIds,
}

/// Where the tenants of a statement on several of them are written.
#[derive(Debug)]
pub(crate) struct ScatterPlan {
    /// The sharded table.
    pub(crate) table: Arc<str>,
    /// Its sharding column.
    pub(crate) column: Arc<str>,
    /// Every literal naming one of the tenants (repeats kept); `None`: all tenants.
    pub(crate) keys: Option<Vec<KeySource>>,
    /// The merge plan (SELECT) or nothing (writes) for several shards, or why the
    /// statement cannot run on several.
    pub(crate) merge: Result<Option<Arc<MergePlan>>, SqlError>,
}

/// Where the tenant of a single-table statement is written.
#[derive(Debug)]
pub(crate) struct TenantPlan {
    /// The sharded table.
    pub(crate) table: Arc<str>,
    /// Its sharding column.
    pub(crate) column: Arc<str>,
    /// Every place naming the tenant (conjuncts, or one per inserted row); never empty.
    pub(crate) keys: Vec<KeySource>,
    /// What it means when they differ.
    pub(crate) rule: KeyRule,
}

/// One place a statement names its tenant.
#[derive(Debug)]
pub(crate) enum KeySource {
    /// Slot `index` of the fingerprint, after a `-` when `negated`.
    Slot {
        /// Index into [`Scratch::slots`](crate::Scratch::slots).
        index: usize,
        /// The statement writes `-` before the literal.
        negated: bool,
    },
    /// Already decoded from the AST (the literal is not one slot). Such a plan is
    /// never cached.
    Decoded {
        /// The decoded key, or why it is not one.
        key: Result<TenantKey, Refusal>,
        /// The literal as SQL text, for error messages.
        literal: String,
    },
}

/// What several tenant keys that differ mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRule {
    /// WHERE conjuncts: the statement matches no row; refused as conflicting.
    Conjuncts,
    /// INSERT rows: rows for several tenants.
    Rows,
    /// Keys pinning the sharded tables of a join (or subquery): the statement would
    /// join tenants, maybe on several shards; refused. So is a `?` among several keys,
    /// which cannot be compared with the others before execution.
    Join,
}

impl Plan {
    /// The plan of a draft: each tenant literal becomes its slot, or is decoded from
    /// the AST when it is not exactly one slot (see [`sources`]).
    pub(crate) fn from_draft(
        draft: Draft<'_>,
        slots: &SlotMap,
        covered: bool,
        generation: u64,
        slot_count: usize,
    ) -> Self {
        let route = match draft.route {
            DraftRoute::AnyShard => PlanRoute::AnyShard,
            DraftRoute::EveryShard { table } => PlanRoute::EveryShard(table),
            DraftRoute::Tenant {
                table,
                column,
                keys,
                rule,
            } => PlanRoute::Tenant(TenantPlan {
                table,
                column,
                keys: sources(keys, slots, covered),
                rule,
            }),
            DraftRoute::Scatter {
                table,
                column,
                keys,
                merge,
            } => PlanRoute::Scatter(ScatterPlan {
                table,
                column,
                keys: keys.map(|keys| sources(keys, slots, covered)),
                merge,
            }),
            DraftRoute::NeedsIds => PlanRoute::NeedsIds,
        };
        let ids = draft
            .ids
            .map(|ids| IdsPlan::from_draft(*ids, slots, covered));
        Self {
            generation,
            slot_count,
            kind: draft.kind,
            tables: draft.tables.into(),
            schema: draft.schema,
            calls_database: draft.calls_database,
            route,
            ids,
        }
    }

    /// The plan of an answer that needs no tenant: valid for the whole fingerprint when
    /// the statement has no literal, or its kind carries none (see [`Plan::fixes`]).
    pub(crate) fn fixed(analysis: Analysis, generation: u64, slot_count: usize) -> Self {
        Self {
            generation,
            slot_count,
            route: match analysis.route {
                Route::AnyShard => PlanRoute::AnyShard,
                Route::EveryShard { table } => PlanRoute::EveryShard(table),
                Route::None
                | Route::Tenant { .. }
                | Route::Scatter { .. }
                | Route::SplitInsert { .. }
                | Route::NeedsIds { .. } => PlanRoute::NoRoute,
            },
            ids: None,
            kind: analysis.kind,
            tables: analysis.tables,
            schema: analysis.schema,
            calls_database: analysis.calls_database,
        }
    }

    /// Whether `analysis`, which names no tenant, holds for every statement with the
    /// same fingerprint: statements without literals differ only in whitespace and
    /// comments, and some kinds carry nothing taken from a literal.
    pub(crate) fn fixes(analysis: &Analysis, slot_count: usize) -> bool {
        let literal_free = matches!(
            analysis.kind,
            StatementKind::Begin
                | StatementKind::Commit
                | StatementKind::Rollback
                | StatementKind::Show
                | StatementKind::Ddl { .. }
                | StatementKind::Other
        );
        matches!(analysis.route, Route::AnyShard | Route::None) && (slot_count == 0 || literal_free)
    }

    /// Whether the plan holds for every statement of its fingerprint (given that the
    /// statement it was made from is covered by AST values).
    pub(crate) fn is_cacheable(&self) -> bool {
        let from_slots =
            |keys: &[KeySource]| keys.iter().all(|key| matches!(key, KeySource::Slot { .. }));
        let route = match &self.route {
            PlanRoute::AnyShard
            | PlanRoute::EveryShard(_)
            | PlanRoute::NoRoute
            | PlanRoute::NeedsIds => true,
            PlanRoute::Tenant(tenant) => from_slots(&tenant.keys),
            PlanRoute::Scatter(scatter) => {
                self.kind != StatementKind::Select && scatter.keys.as_deref().is_none_or(from_slots)
            }
        };
        route && self.ids.as_ref().is_none_or(IdsPlan::is_cacheable)
    }

    /// The analysis of statement `sql`, whose slots are `slots`.
    ///
    /// Rows asking for a generated id make it [`Route::NeedsIds`], ahead of the tenant
    /// route; but a statement refused for its tenants is refused before any id is taken
    /// for it. Rows of several tenants are not a refusal: once the ids are in, the
    /// statement is split as usual.
    pub(crate) fn bind(
        &self,
        sql: &str,
        slots: &[Slot],
        cached: bool,
    ) -> Result<Analysis, SqlError> {
        let route = match &self.route {
            PlanRoute::AnyShard => Ok(Some(Route::AnyShard)),
            PlanRoute::EveryShard(table) => Ok(Some(Route::EveryShard {
                table: Arc::clone(table),
            })),
            PlanRoute::NoRoute => Ok(Some(Route::None)),
            PlanRoute::Tenant(tenant) => tenant.key(sql, slots).map(|key| {
                Some(Route::Tenant {
                    table: Arc::clone(&tenant.table),
                    key,
                })
            }),
            PlanRoute::Scatter(scatter) => scatter.route(sql, slots).map(Some),
            PlanRoute::NeedsIds => Ok(None),
        };
        if let Some(ids) = &self.ids
            && matches!(route, Ok(_) | Err(SqlError::MultipleTenants { .. }))
            && let Some(needs_ids) = ids.route(sql, slots)?
        {
            return Ok(self.analysis(needs_ids, cached));
        }
        match route? {
            Some(route) => Ok(self.analysis(route, cached)),
            None => Err(SqlError::unsupported(
                "internal error: no row of the INSERT needs an id, yet it has no tenant",
            )),
        }
    }

    /// The analysis of a statement of this plan routed by `route`.
    pub(crate) fn analysis(&self, route: Route, cached: bool) -> Analysis {
        Analysis {
            kind: self.kind.clone(),
            route,
            tables: Arc::clone(&self.tables),
            schema: self.schema.clone(),
            calls_database: self.calls_database,
            cached,
        }
    }

    /// For an INSERT plan: the table, and the tenant of each row of statement `sql`.
    pub(crate) fn row_keys(&self, sql: &str, slots: &[Slot]) -> Option<RowKeys> {
        let PlanRoute::Tenant(tenant) = &self.route else {
            return None;
        };
        if tenant.rule != KeyRule::Rows {
            return None;
        }
        let keys = tenant
            .keys
            .iter()
            .map(|source| decode(&tenant.table, &tenant.column, sql, slots, source))
            .collect();
        Some(RowKeys {
            table: Arc::clone(&tenant.table),
            keys,
        })
    }
}

/// The tenants of an INSERT's rows.
#[derive(Debug)]
pub(crate) struct RowKeys {
    /// The sharded table.
    pub(crate) table: Arc<str>,
    /// Each row's tenant, in row order, or why one is not a tenant.
    pub(crate) keys: Result<Vec<TenantKey>, SqlError>,
}

/// The key sources of `keys`: their slots, or their values decoded from the AST when a
/// value is not exactly one slot.
///
/// Unless `covered` (every slot is an AST value), a value's span is not trusted to be
/// all of it: sqlparser gives `'ac' 'me'` the span of `'ac'` alone. Then only
/// placeholders are read from their slots.
fn sources(keys: Vec<KeyExpr<'_>>, slots: &SlotMap, covered: bool) -> Vec<KeySource> {
    keys.into_iter()
        .map(|key| {
            let trusted = covered || matches!(key.value.value, Value::Placeholder(_));
            match trusted.then(|| slots.index_of(key.value.span)).flatten() {
                Some(index) => KeySource::Slot {
                    index,
                    negated: key.negated,
                },
                None => KeySource::Decoded {
                    key: literal::decode_value(&key.value.value, key.negated),
                    literal: format!("{}{}", if key.negated { "-" } else { "" }, key.value),
                },
            }
        })
        .collect()
}

impl ScatterPlan {
    /// The route of statement `sql`: its distinct tenants (a tenant route when there is
    /// only one), or every shard.
    fn route(&self, sql: &str, slots: &[Slot]) -> Result<Route, SqlError> {
        let keys = match &self.keys {
            None => None,
            Some(sources) => {
                let mut seen = HashSet::with_capacity(sources.len());
                let mut keys = Vec::with_capacity(sources.len());
                for source in sources {
                    let key = decode(&self.table, &self.column, sql, slots, source)?;
                    if seen.insert(key.clone()) {
                        keys.push(key);
                    }
                }
                if keys.len() == 1
                    && let Some(key) = keys.pop()
                {
                    return Ok(Route::Tenant {
                        table: Arc::clone(&self.table),
                        key,
                    });
                }
                Some(keys)
            }
        };
        Ok(Route::Scatter {
            table: Arc::clone(&self.table),
            keys,
            merge: self.merge.clone()?,
        })
    }
}

impl TenantPlan {
    /// The one tenant every key names.
    fn key(&self, sql: &str, slots: &[Slot]) -> Result<TenantKey, SqlError> {
        let mut first: Option<TenantKey> = None;
        for source in &self.keys {
            let key = decode(&self.table, &self.column, sql, slots, source)?;
            if self.rule == KeyRule::Join
                && self.keys.len() > 1
                && matches!(key, TenantKey::Param(_))
            {
                return Err(SqlError::unsupported(
                    "the tenant is written as a `?` placeholder and again elsewhere: shardgate \
                     cannot prove before execution that they name one tenant; write the \
                     placeholder once and join the other sharding columns to it \
                     (`i.tenant_id = o.tenant_id`)",
                ));
            }
            match &first {
                None => first = Some(key),
                Some(seen) if *seen == key => {}
                Some(_) => return Err(self.conflict()),
            }
        }
        first.ok_or_else(|| SqlError::MissingTenantKey {
            table: self.table.to_string(),
            column: self.column.to_string(),
        })
    }

    /// The error for keys naming different tenants.
    fn conflict(&self) -> SqlError {
        let (table, column) = (self.table.to_string(), self.column.to_string());
        match self.rule {
            KeyRule::Conjuncts => SqlError::ConflictingTenants { table, column },
            KeyRule::Rows => SqlError::MultipleTenants { table, column },
            KeyRule::Join => SqlError::unsupported(
                "the sharded tables of this statement are limited to different tenants; joins \
                 across tenants (and shards) are not supported",
            ),
        }
    }
}

/// Decodes one key source of statement `sql` naming a tenant of `table`.
fn decode(
    table: &str,
    column: &str,
    sql: &str,
    slots: &[Slot],
    source: &KeySource,
) -> Result<TenantKey, SqlError> {
    let bad_literal = |literal: String, reason: Refusal| SqlError::BadTenantLiteral {
        table: table.to_owned(),
        column: column.to_owned(),
        literal,
        reason,
    };
    match source {
        KeySource::Slot { index, negated } => {
            let slot = slots.get(*index).ok_or_else(|| {
                SqlError::unsupported("internal error: plan does not match the statement")
            })?;
            literal::decode_slot(sql, slot, *negated).map_err(|reason| {
                let text = sql.get(slot.span()).unwrap_or_default();
                let sign = if *negated { "-" } else { "" };
                bad_literal(format!("{sign}{text}"), reason)
            })
        }
        KeySource::Decoded { key, literal } => key
            .clone()
            .map_err(|reason| bad_literal(literal.clone(), reason)),
    }
}
