//! The entry point: lexer, plan cache, and on a miss sqlparser and the analysis.
//!
//! ```text
//! sql ──lexer──▶ fingerprint + slots ──cache hit──▶ plan.bind(slots) ──▶ Analysis
//!                                    └─miss──▶ parse ▶ analyze ▶ plan ─┘ (cached if every
//!                                                                        slot is an AST value)
//! ```
//!
//! Tenant-free answers (`SELECT 1`, `BEGIN`, `SET NAMES utf8mb4`, `SHOW ...`) are cached
//! too when nothing in them comes from a literal, so session chatter skips the parser.
//!
//! A hit decodes only the tenant's slot from the statement text: no AST, and no
//! allocation except for a string tenant key. Scatter SELECTs are never cached (their
//! merge plan depends on literals), and an INSERT whose bound rows name several
//! tenants is parsed again to be split, hit or not (see [`crate::plan`]). An INSERT
//! whose rows ask for generated ids is answered from its plan too: the plan reads each
//! row's sequence value from its slot on every hit.

use std::sync::Arc;

use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::Schema;
use crate::analysis::{Analysis, Route};
use crate::analyze::{self, Outcome, split};
use crate::cache::PlanCache;
use crate::error::SqlError;
use crate::lexer;
use crate::plan::{Plan, RowKeys};
use crate::scratch::{Scratch, Slot};
use crate::slot_map::SlotMap;

/// Analyses statements, caching a plan per fingerprint. Shared by every session.
#[derive(Debug)]
pub struct Analyzer {
    /// Plans by fingerprint.
    cache: PlanCache,
}

impl Analyzer {
    /// An analyzer whose plan cache holds at most `cache_capacity` plans (0: none).
    pub fn new(cache_capacity: usize) -> Self {
        Self {
            cache: PlanCache::new(cache_capacity),
        }
    }

    /// Analyses one statement: its kind, its route and the tables it touches.
    ///
    /// `scratch` is the session's reusable buffer; afterwards it holds the statement's
    /// fingerprint and slots. On the parse path this needs well under 1 MiB of stack.
    pub fn analyze(
        &self,
        sql: &str,
        schema: &dyn Schema,
        scratch: &mut Scratch,
    ) -> Result<Analysis, SqlError> {
        lexer::scan(sql, scratch)?;
        let generation = schema.generation();
        if let Some(plan) = self
            .cache
            .get(&scratch.fingerprint, generation, scratch.slots.len())
        {
            self.cache.record_hit();
            return match plan.bind(sql, &scratch.slots, true) {
                Err(error @ SqlError::MultipleTenants { .. }) => {
                    self.split(&plan, sql, scratch, None, error)
                }
                answer => answer,
            };
        }
        self.cache.record_miss();
        self.plan(sql, schema, scratch, generation, true)
    }

    /// [`Analyzer::analyze`] for a schema that holds for one session only (its temporary tables): never answered
    /// from the plan cache, never stored in it.
    pub fn analyze_uncached(
        &self,
        sql: &str,
        schema: &dyn Schema,
        scratch: &mut Scratch,
    ) -> Result<Analysis, SqlError> {
        lexer::scan(sql, scratch)?;
        self.plan(sql, schema, scratch, schema.generation(), false)
    }

    /// Statements answered from a cached plan so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache.hits()
    }

    /// Statements that had to be parsed so far.
    pub fn cache_misses(&self) -> u64 {
        self.cache.misses()
    }

    /// Plans cached now.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The miss path: parse, analyse, plan, cache (when `store`), bind.
    fn plan(
        &self,
        sql: &str,
        schema: &dyn Schema,
        scratch: &Scratch,
        generation: u64,
        store: bool,
    ) -> Result<Analysis, SqlError> {
        let statements = match parse(sql) {
            Ok(statements) => statements,
            Err(error) => {
                // Classified from the fingerprint's words alone: nothing read from a slot
                // can end up in a cached answer.
                let analysis = analyze::classify_unparsed(sql, scratch)
                    .ok_or_else(|| SqlError::from_parser(sql, &error))?;
                return Ok(self.keep_fixed(analysis, scratch, generation, store, || true));
            }
        };
        let statement = match statements.as_slice() {
            [statement] => statement,
            [] => return Err(SqlError::Empty),
            _ => return Err(SqlError::unsupported("multiple statements in one query")),
        };
        let draft = match analyze::statement(sql, statement, schema)? {
            Outcome::Final(analysis) => {
                let covered = || SlotMap::new(sql, &scratch.slots).covers(statement);
                return Ok(self.keep_fixed(analysis, scratch, generation, store, covered));
            }
            Outcome::Draft(draft) => draft,
        };
        let slots = SlotMap::new(sql, &scratch.slots);
        let covered = slots.covers(statement);
        let plan = Plan::from_draft(draft, &slots, covered, generation, scratch.slots.len());
        let analysis = plan.bind(sql, &scratch.slots, false);
        let plan = Arc::new(plan);
        if store && covered && plan.is_cacheable() {
            self.cache.insert(&scratch.fingerprint, Arc::clone(&plan));
        }
        match analysis {
            Err(error @ SqlError::MultipleTenants { .. }) => {
                self.split(&plan, sql, scratch, Some(statement), error)
            }
            answer => answer,
        }
    }

    /// An INSERT whose rows name several tenants (`error` says so): split into one
    /// INSERT per tenant, or `error` when it cannot be.
    ///
    /// Only statements without `?`: a placeholder's tenant is known only when the
    /// statement is executed, and a part would renumber the placeholders it keeps.
    fn split(
        &self,
        plan: &Plan,
        sql: &str,
        scratch: &Scratch,
        statement: Option<&Statement>,
        error: SqlError,
    ) -> Result<Analysis, SqlError> {
        if scratch
            .slots
            .iter()
            .any(|slot| matches!(slot, Slot::Param { .. }))
        {
            return Err(error);
        }
        let Some(RowKeys { table, keys }) = plan.row_keys(sql, &scratch.slots) else {
            return Err(error);
        };
        let row_keys = keys?;
        let parsed;
        let statement = match statement {
            Some(statement) => statement,
            None => {
                parsed = parse(sql).map_err(|error| SqlError::from_parser(sql, &error))?;
                match parsed.as_slice() {
                    [statement] => statement,
                    _ => return Err(error),
                }
            }
        };
        match split::parts(sql, statement, &row_keys)? {
            Some(parts) => Ok(plan.analysis(Route::SplitInsert { table, parts }, false)),
            None => Err(error),
        }
    }

    /// Caches a tenant-free answer when it holds for its whole fingerprint: it has no
    /// slot, or its kind takes nothing from one and every slot is a value (`covered`),
    /// so that no string the parser read as a name is frozen into the plan.
    fn keep_fixed(
        &self,
        analysis: Analysis,
        scratch: &Scratch,
        generation: u64,
        store: bool,
        covered: impl FnOnce() -> bool,
    ) -> Analysis {
        let slot_count = scratch.slots.len();
        if store && Plan::fixes(&analysis, slot_count) && (slot_count == 0 || covered()) {
            let plan = Plan::fixed(analysis.clone(), generation, slot_count);
            self.cache.insert(&scratch.fingerprint, Arc::new(plan));
        }
        analysis
    }
}

/// The statements of `sql`, parsed as MySQL.
fn parse(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::new(&MySqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
}
