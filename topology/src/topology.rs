//! The topology snapshot and its routing: tenant id -> keyspace id -> shard.
//!
//! Place in the data path: `route`. A statement takes one [`Topology`] from the
//! [`crate::TopologyHandle`] and keeps it; every lookup here is read-only, allocation-free on
//! success, and cannot panic. This module must not know sockets, pools or SQL syntax: it is
//! handed a table name and a tenant id and answers with a [`ShardId`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::spec::{BackendSpec, PinSpec, ShardSpec, TableSpec, TableType, TopologySpec};
use crate::tenant::{DecimalFault, parse_unsigned_decimal, shown};
use crate::{
    AutoIncrement, Backend, KeyspaceId, Move, MoveSpec, Pin, RouteError, Shard, ShardId, TableRule,
    TableRuleRef, TenantRef, TopologyError, Vindex, vindex,
};

/// One immutable, validated topology snapshot.
///
/// Built only by validation ([`Topology::from_yaml_str`], [`Topology::load`],
/// [`TopologySpec::validate`]), so its shards always cover the key space exactly once and every
/// reference inside it resolves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Topology {
    /// Monotonic version from the file.
    version: u64,
    /// Logical database name clients `USE`.
    keyspace: String,
    /// Sharding column of tables not listed.
    sharding_column: String,
    /// Listed sharded tables, in file order.
    tables: Vec<TableRule>,
    /// Table name -> index into `tables`.
    table_index: HashMap<String, usize>,
    /// Reference tables (a full copy on every shard), in file order.
    references: Vec<String>,
    /// The same names, for lookups on every statement.
    reference_index: HashSet<String>,
    /// Backends, in file order.
    backends: Vec<Backend>,
    /// Shards sorted by range start; `shards[i].id == ShardId(i)`.
    shards: Vec<Shard>,
    /// Shard name -> id.
    shard_index: HashMap<String, ShardId>,
    /// Pins, in file order.
    pins: Vec<Pin>,
    /// Pins that stand for an integer (`hash` tables and integer ids on `xxhash` tables).
    int_pins: HashMap<u64, ShardId>,
    /// Every pin by its canonical text (string ids on `xxhash` tables).
    text_pins: HashMap<String, ShardId>,
    /// Keys resharding workflows are moving.
    moves: Vec<Move>,
}

impl Topology {
    /// Indexes validated parts; `shards` must already be sorted and numbered. `tables` are
    /// the listed sharded tables and the reference tables.
    pub(crate) fn from_parts(
        version: u64,
        keyspace: String,
        sharding_column: String,
        (tables, references): (Vec<TableRule>, Vec<String>),
        backends: Vec<Backend>,
        shards: Vec<Shard>,
        (pins, moves): (Vec<Pin>, Vec<Move>),
    ) -> Topology {
        let reference_index = references.iter().cloned().collect();
        let table_index = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let shard_index = shards.iter().map(|s| (s.name.clone(), s.id)).collect();
        let int_pins = pins
            .iter()
            .filter_map(|p| p.tenant.as_integer().map(|n| (n, p.shard)))
            .collect();
        let text_pins = pins
            .iter()
            .map(|p| (p.tenant.canonical_text(), p.shard))
            .collect();
        Topology {
            version,
            keyspace,
            sharding_column,
            tables,
            table_index,
            references,
            reference_index,
            backends,
            shards,
            shard_index,
            pins,
            int_pins,
            text_pins,
            moves,
        }
    }

    /// Parses and validates YAML text; see [`crate::spec`] for the format.
    pub fn from_yaml_str(text: &str) -> Result<Topology, TopologyError> {
        TopologySpec::from_yaml_str(text)?.validate()
    }

    /// Reads, parses and validates a topology file; every error names the path.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|error| TopologyError::Read {
            path: path.to_owned(),
            error,
        })?;
        Topology::from_yaml_str(&text).map_err(|error| TopologyError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// The monotonic version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The logical database name clients `USE`.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// The sharding column of tables not listed in the file.
    pub fn default_sharding_column(&self) -> &str {
        &self.sharding_column
    }

    /// All shards, sorted by range start; `shards()[i].id == ShardId(i)`.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard with this id, or `None` for an id from another snapshot that is out of range here.
    /// Ids returned by this snapshot's own lookups always resolve.
    pub fn shard(&self, id: ShardId) -> Option<&Shard> {
        self.shards.get(id.index())
    }

    /// The shard with this Vitess name (`"80-"`), if any.
    pub fn shard_by_name(&self, name: &str) -> Option<ShardId> {
        self.shard_index.get(name).copied()
    }

    /// All backends, in file order; [`Shard::backend`] indexes this.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// The backend holding a shard of this snapshot.
    pub fn backend_of(&self, shard: &Shard) -> Option<&Backend> {
        self.backends.get(shard.backend)
    }

    /// The sharded tables listed in the file, in file order (reference tables are in
    /// [`Topology::reference_tables`]).
    pub fn tables(&self) -> &[TableRule] {
        &self.tables
    }

    /// The reference tables listed in the file, in file order: every shard holds a full copy.
    pub fn reference_tables(&self) -> &[String] {
        &self.references
    }

    /// Whether `table` (case-sensitive) is a reference table. Every other table is sharded,
    /// listed or not.
    pub fn is_reference_table(&self, table: &str) -> bool {
        self.reference_index.contains(table)
    }

    /// Keys resharding workflows are moving, in file order.
    pub fn moves(&self) -> &[Move] {
        &self.moves
    }

    /// The tenant pins, in file order.
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// The sharding rule of a table. Table names are case-sensitive (MySQL on Linux); tables not
    /// listed use the keyspace's default column with the `hash` vindex. Callers compare the
    /// column case-insensitively. A reference table has no rule: check
    /// [`Topology::is_reference_table`] first (what this returns for one is the default, unused).
    pub fn table_rule(&self, table: &str) -> TableRuleRef<'_> {
        match self
            .table_index
            .get(table)
            .and_then(|&i| self.tables.get(i))
        {
            Some(rule) => TableRuleRef {
                column: &rule.column,
                vindex: rule.vindex,
                listed: true,
            },
            None => TableRuleRef {
                column: &self.sharding_column,
                vindex: Vindex::Hash,
                listed: false,
            },
        }
    }

    /// The column of sharded `table` (case-sensitive) whose ids come from a sequence, and that
    /// sequence; `None` when its rows get ids some other way (listed without `auto_increment`,
    /// not listed, or a reference table).
    pub fn auto_increment(&self, table: &str) -> Option<&AutoIncrement> {
        self.table_index
            .get(table)
            .and_then(|&i| self.tables.get(i))
            .and_then(|rule| rule.auto_increment.as_ref())
    }

    /// The sharding column of a table; see [`Topology::table_rule`] (and reference tables there).
    pub fn sharding_column(&self, table: &str) -> &str {
        self.table_rule(table).column
    }

    /// Routes a tenant id of a table to its shard: pins first, then the table's vindex, then a
    /// binary search over range starts.
    ///
    /// On a `hash` table a [`TenantRef::Str`] must be a plain unsigned decimal (`'42'` routes
    /// like `42`, `'042'` too); anything else (`''`, `'42abc'`, `'-1'`, `' 42'`) is refused, never
    /// guessed. On an `xxhash` table a [`TenantRef::Int`] hashes its decimal text, as Vitess does.
    ///
    /// A reference table is refused ([`RouteError::ReferenceTable`]): it lives on every shard.
    pub fn route(&self, table: &str, tenant: TenantRef<'_>) -> Result<ShardId, RouteError> {
        let vindex = self.sharded_rule(table)?.vindex;
        let pinned = match (vindex, tenant) {
            (Vindex::Hash, _) => self.int_pins.get(&integer_tenant(table, tenant)?),
            (Vindex::Xxhash, TenantRef::Int(n)) => self.int_pins.get(&n),
            (Vindex::Xxhash, TenantRef::Str(s)) => self.text_pins.get(s),
        };
        match pinned {
            Some(&shard) => Ok(shard),
            None => Ok(self.shard_for_keyspace_id(self.keyspace_id(table, tenant)?)),
        }
    }

    /// The keyspace id a tenant id of a table hashes to, ignoring pins; refuses a reference table.
    pub fn keyspace_id(
        &self,
        table: &str,
        tenant: TenantRef<'_>,
    ) -> Result<KeyspaceId, RouteError> {
        Ok(match (self.sharded_rule(table)?.vindex, tenant) {
            (Vindex::Hash, _) => vindex::hash(integer_tenant(table, tenant)?),
            (Vindex::Xxhash, TenantRef::Int(n)) => vindex::xxhash_u64(n),
            (Vindex::Xxhash, TenantRef::Str(s)) => vindex::xxhash(s.as_bytes()),
        })
    }

    /// The rule of a table routed by tenant, which must not be a reference table.
    fn sharded_rule(&self, table: &str) -> Result<TableRuleRef<'_>, RouteError> {
        if self.is_reference_table(table) {
            return Err(RouteError::ReferenceTable {
                table: table.to_owned(),
            });
        }
        Ok(self.table_rule(table))
    }

    /// The shard owning a keyspace id: the last shard whose range starts at or below it.
    /// Ranges are half-open, so a boundary belongs to the shard it starts.
    pub fn shard_for_keyspace_id(&self, k: KeyspaceId) -> ShardId {
        // Key-range shards come first, sorted; dedicated ones (after them) own no key.
        let ranged = self.shards.partition_point(|s| !s.dedicated);
        let after = self.shards[..ranged].partition_point(|s| s.range.start <= k.0);
        // Validation guarantees a shard starting at 0, so `after >= 1`.
        ShardId(u32::try_from(after.saturating_sub(1)).unwrap_or(u32::MAX))
    }

    /// The spec this snapshot was built from, normalised: shards in key order, table columns and
    /// vindexes written only where they differ from the defaults, reference tables after the
    /// sharded ones.
    pub fn to_spec(&self) -> TopologySpec {
        let backend_name = |i: usize| {
            self.backends
                .get(i)
                .map(|b| b.name.clone())
                .unwrap_or_default()
        };
        let shard_name = |id: ShardId| self.shard(id).map(|s| s.name.clone()).unwrap_or_default();
        TopologySpec {
            version: self.version,
            keyspace: self.keyspace.clone(),
            sharding_column: self.sharding_column.clone(),
            tables: self
                .tables
                .iter()
                .map(|t| TableSpec {
                    name: t.name.clone(),
                    kind: TableType::Sharded,
                    column: (t.column != self.sharding_column).then(|| t.column.clone()),
                    vindex: (t.vindex != Vindex::Hash).then_some(t.vindex),
                    auto_increment: t.auto_increment.clone(),
                })
                .chain(self.references.iter().map(|name| TableSpec {
                    name: name.clone(),
                    kind: TableType::Reference,
                    column: None,
                    vindex: None,
                    auto_increment: None,
                }))
                .collect(),
            backends: self
                .backends
                .iter()
                .map(|b| BackendSpec {
                    name: b.name.clone(),
                    host: b.host.clone(),
                    port: b.port,
                })
                .collect(),
            shards: self
                .shards
                .iter()
                .map(|s| ShardSpec {
                    name: s.name.clone(),
                    backend: backend_name(s.backend),
                    database: s.database.clone(),
                    dedicated: s.dedicated,
                })
                .collect(),
            pins: self
                .pins
                .iter()
                .map(|p| PinSpec {
                    tenant: p.tenant.clone(),
                    shard: shard_name(p.shard),
                })
                .collect(),
            moves: self
                .moves
                .iter()
                .map(|m| MoveSpec {
                    workflow: m.workflow.clone(),
                    shard: shard_name(m.shard),
                    tenants: m.tenants(),
                    state: m.state,
                    hold_ms: u64::try_from(m.hold.as_millis()).unwrap_or(u64::MAX),
                })
                .collect(),
        }
    }

    /// The snapshot as YAML that [`Topology::from_yaml_str`] reads back to an equal snapshot.
    pub fn to_yaml(&self) -> String {
        self.to_spec().to_yaml()
    }
}

/// The integer a `hash` table routes by.
fn integer_tenant(table: &str, tenant: TenantRef<'_>) -> Result<u64, RouteError> {
    match tenant {
        TenantRef::Int(n) => Ok(n),
        TenantRef::Str(s) => parse_unsigned_decimal(s).map_err(|fault| {
            let (table, tenant) = (table.to_owned(), shown(s));
            match fault {
                DecimalFault::NotDigits => RouteError::TenantNotInteger { table, tenant },
                DecimalFault::TooLarge => RouteError::TenantOutOfRange { table, tenant },
            }
        }),
    }
}

#[cfg(test)]
mod tests;
