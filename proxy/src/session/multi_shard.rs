//! Statements the analysis routed to several shards: scattered SELECTs (merged), UPDATE/DELETE on a set of tenants
//! or on every shard, and multi-row INSERTs split by tenant.
//!
//! Writes on several shards outside a transaction run inside one the proxy opens and commits itself (best effort
//! across shards, ADR 11), so a statement that fails on one shard leaves nothing on the others.

use shardgate_merge::{MergeSpec, OutputKind};
use shardgate_sql::{InsertPart, MergePlan, TenantKey};
use shardgate_topology::{ShardId, TenantRef};
use shardgate_wire::WireError;
use shardgate_wire::command::{COM_QUERY, command_packet};
use shardgate_wire::stmt::{ExecuteRequest, ParamValue};

use super::Session;
use super::forward::ShardCommand;
use super::transaction::Ended;
use crate::mysql_error::*;
use crate::routing::Routing;

impl Session {
    /// A text-protocol statement routed to `keys`' shards (every shard when `None`).
    pub(super) async fn run_scatter(
        &mut self,
        routing: &Routing,
        table: &str,
        keys: Option<&[TenantKey]>,
        merge: Option<&MergePlan>,
        payload: &[u8],
    ) -> Result<(), WireError> {
        let shards = match self.scatter_shards(routing, table, keys, None) {
            Ok(s) => s,
            Err(e) => return self.send_error(&e).await,
        };
        match merge {
            Some(plan) => {
                let packet = command_packet(COM_QUERY, plan.shard_sql.as_bytes());
                let targets: Vec<_> = shards
                    .iter()
                    .map(|s| (*s, ShardCommand::Raw(&packet)))
                    .collect();
                let spec = merge_spec(plan, self.shared.config.scatter_max_rows);
                self.scatter(routing, &targets, &spec).await?;
                self.flush_reply().await
            }
            None => {
                let targets: Vec<_> = shards
                    .iter()
                    .map(|s| (*s, ShardCommand::Raw(payload)))
                    .collect();
                self.scatter_write(routing, WriteKind::of(keys), &targets)
                    .await
            }
        }
    }

    /// A write to reference tables: every shard holds a copy, so every shard runs it, all or nothing.
    pub(super) async fn run_everywhere(
        &mut self,
        routing: &Routing,
        command: ShardCommand<'_>,
    ) -> Result<(), WireError> {
        let targets: Vec<_> = routing
            .topology
            .shards()
            .iter()
            .map(|s| (s.id, command))
            .collect();
        self.scatter_write(routing, WriteKind::Copies, &targets)
            .await
    }

    /// An INSERT whose rows belong to several tenants: each tenant's rows on its shard.
    pub(super) async fn run_split_insert(
        &mut self,
        routing: &Routing,
        table: &str,
        parts: &[InsertPart],
        kind: WriteKind,
    ) -> Result<(), WireError> {
        let mut packets = Vec::with_capacity(parts.len());
        for part in parts {
            let shard = match tenant_ref(&part.key).and_then(|t| route(routing, table, t)) {
                Ok(s) => s,
                Err(e) => return self.send_error(&e).await,
            };
            let packet = command_packet(COM_QUERY, part.sql.as_bytes());
            packets.push((shard, packet));
        }
        let targets: Vec<_> = packets
            .iter()
            .map(|(s, p)| (*s, ShardCommand::Raw(p)))
            .collect();
        self.scatter_write(routing, kind, &targets).await
    }

    /// Runs a write on several shards, inside the session's transaction or one of its own, and answers with the
    /// summed OK (or the first shard's error, after which nothing is committed).
    pub(super) async fn scatter_write(
        &mut self,
        routing: &Routing,
        kind: WriteKind,
        targets: &[(ShardId, ShardCommand<'_>)],
    ) -> Result<(), WireError> {
        if kind == WriteKind::Tenantless && !self.shared.config.allow_scatter_writes {
            let msg = "UPDATE or DELETE without a tenant key would change every shard: name the tenant (or tenants) \
                       in the WHERE clause, or set allow_scatter_writes in the proxy config";
            return self
                .send_error(&MysqlError::new(ER_NOT_SUPPORTED_YET, msg))
                .await;
        }
        let own_transaction = !self.in_transaction() && targets.len() > 1;
        if own_transaction {
            self.open_transaction(Some("BEGIN".to_string()), routing);
        }
        let mut spec = MergeSpec::concat(0, self.shared.config.scatter_max_rows);
        spec.copies = kind == WriteKind::Copies;
        if let WriteKind::Sequenced { first_id } = kind {
            spec.insert_id = Some(first_id);
        }
        let start = self.client.write_buf().len();
        let kind = self.scatter(routing, targets, &spec).await?;
        if own_transaction {
            let succeeded = matches!(kind, Some(OutputKind::Ok { .. }));
            if let Ended::CommitFailed(e) = self.end_transaction(routing, succeeded).await {
                self.client.write_buf().truncate(start);
                self.queue_error(&e);
            }
        }
        self.flush_reply().await
    }

    /// The shards of `keys` (bound from `params` for placeholders), each once, in order; every shard for `None`.
    pub(super) fn scatter_shards(
        &self,
        routing: &Routing,
        table: &str,
        keys: Option<&[TenantKey]>,
        params: Option<&ExecuteRequest<'_>>,
    ) -> Result<Vec<ShardId>, MysqlError> {
        let Some(keys) = keys else {
            return Ok(routing.topology.shards().iter().map(|s| s.id).collect());
        };
        let mut shards: Vec<ShardId> = Vec::with_capacity(keys.len());
        for key in keys {
            let value;
            let tenant = match key {
                TenantKey::Param(i) => {
                    let Some(params) = params else {
                        return Err(not_routable(format!(
                            "tenant key {key:?} cannot be routed in a text query"
                        )));
                    };
                    value = params
                        .param(usize::from(*i))
                        .map_err(|e| not_routable(format!("tenant parameter {}: {e}", i + 1)))?;
                    param_tenant(&value, *i)?
                }
                other => tenant_ref(other)?,
            };
            let shard = route(routing, table, tenant)?;
            if !shards.contains(&shard) {
                shards.push(shard);
            }
        }
        Ok(shards)
    }
}

/// What a write on several shards changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteKind {
    /// The rows of the tenants it names, on their shards: affected rows add up.
    Tenants,
    /// A sharded table's rows with no tenant named: every shard, only with `allow_scatter_writes`.
    Tenantless,
    /// A reference table's copy on every shard: one copy's affected rows.
    Copies,
    /// Rows of the tenants it names, with ids the proxy took from a sequence: the OK reports the first one.
    Sequenced { first_id: u64 },
}

impl WriteKind {
    /// An UPDATE/DELETE limited to `keys`' tenants, or to none.
    pub(super) fn of<T>(keys: Option<T>) -> WriteKind {
        if keys.is_some() {
            WriteKind::Tenants
        } else {
            WriteKind::Tenantless
        }
    }
}

/// The merge the plan describes, for `shardgate-merge`.
pub(super) fn merge_spec(plan: &MergePlan, max_rows: usize) -> MergeSpec {
    use shardgate_merge::{
        Aggregate, AggregateKind, ColumnWeight, GroupKey, Having, HavingLiteral, HavingOp, SortKey,
    };
    use shardgate_sql::AggregateKind as Planned;
    let mut spec = MergeSpec::concat(plan.visible_columns, max_rows);
    spec.order_by = plan
        .order_by
        .iter()
        .map(|k| SortKey {
            column: k.column,
            descending: k.descending,
            weight_column: k.weight_column,
        })
        .collect();
    spec.group_by = plan
        .group_by
        .iter()
        .map(|k| GroupKey {
            column: k.column,
            weight_column: k.weight_column,
        })
        .collect();
    spec.aggregates = plan
        .aggregates
        .iter()
        .map(|a| Aggregate {
            column: a.column,
            weight_column: a.weight_column,
            kind: match a.kind {
                Planned::Count => AggregateKind::Count,
                Planned::Sum => AggregateKind::Sum,
                Planned::Min => AggregateKind::Min,
                Planned::Max => AggregateKind::Max,
                Planned::Avg { count_column } => AggregateKind::Avg { count_column },
            },
        })
        .collect();
    /// The merger's form of a planned HAVING. Recursive: the planner bounds the depth.
    fn having(planned: &shardgate_sql::HavingExpr) -> Having {
        use shardgate_sql::{HavingExpr as Cond, HavingLiteral as Lit, HavingOp as Op};
        let boxed = |planned: &Cond| Box::new(having(planned));
        match planned {
            Cond::Compare {
                column,
                op,
                literal,
            } => Having::Compare {
                column: *column,
                op: match op {
                    Op::Eq => HavingOp::Eq,
                    Op::Ne => HavingOp::Ne,
                    Op::Lt => HavingOp::Lt,
                    Op::Le => HavingOp::Le,
                    Op::Gt => HavingOp::Gt,
                    Op::Ge => HavingOp::Ge,
                },
                literal: match literal {
                    Lit::Exact(text) => HavingLiteral::Exact(text.clone()),
                    Lit::Double(text) => HavingLiteral::Double(text.clone()),
                    Lit::Null => HavingLiteral::Null,
                },
            },
            Cond::IsNull { column, negated } => Having::IsNull {
                column: *column,
                negated: *negated,
            },
            Cond::And(a, b) => Having::And(boxed(a), boxed(b)),
            Cond::Or(a, b) => Having::Or(boxed(a), boxed(b)),
            Cond::Not(a) => Having::Not(boxed(a)),
        }
    }
    spec.having = plan.having.as_ref().map(having);
    spec.distinct = plan.distinct;
    spec.distinct_weights = if plan.distinct {
        plan.group_by
            .iter()
            .filter_map(|k| {
                k.weight_column.map(|weight_column| ColumnWeight {
                    column: k.column,
                    weight_column,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    spec.offset = plan.offset;
    spec.limit = plan.limit;
    spec
}

/// A literal tenant key as the topology takes it.
pub(super) fn tenant_ref(key: &TenantKey) -> Result<TenantRef<'_>, MysqlError> {
    match key {
        TenantKey::Int(n) => Ok(TenantRef::Int(*n)),
        TenantKey::Str(s) => Ok(TenantRef::Str(s)),
        TenantKey::Param(i) => Err(not_routable(format!(
            "tenant parameter {} is not bound here",
            i + 1
        ))),
    }
}

/// A bound parameter as a tenant: integers (two's complement for negatives, as for literals) or UTF-8 strings.
pub(super) fn param_tenant<'v>(
    value: &'v ParamValue<'_>,
    index: u16,
) -> Result<TenantRef<'v>, MysqlError> {
    let n = index + 1;
    match value {
        ParamValue::Int(v) => Ok(TenantRef::Int(*v as u64)),
        ParamValue::UInt(v) => Ok(TenantRef::Int(*v)),
        ParamValue::Bytes(b) => std::str::from_utf8(b)
            .map(TenantRef::Str)
            .map_err(|_| not_routable(format!("tenant parameter {n} is not valid UTF-8"))),
        ParamValue::Null => Err(not_routable(format!(
            "tenant parameter {n} is NULL: it names no tenant"
        ))),
        other => Err(not_routable(format!(
            "tenant parameter {n} must be an integer or a string, not {other:?}"
        ))),
    }
}

pub(super) fn route(
    routing: &Routing,
    table: &str,
    tenant: TenantRef<'_>,
) -> Result<ShardId, MysqlError> {
    routing
        .topology
        .route(table, tenant)
        .map_err(|e| not_routable(e.to_string()))
}

fn not_routable(msg: String) -> MysqlError {
    MysqlError::new(ER_NOT_SUPPORTED_YET, msg)
}
