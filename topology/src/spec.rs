//! The topology file format, as people write it: YAML, every section `deny_unknown_fields`.
//!
//! Place in the data path: none; this is the configuration surface. A [`TopologySpec`] is
//! unchecked; [`TopologySpec::validate`] turns it into an immutable [`crate::Topology`] or lists
//! every problem. Tools that write topologies (`shardctl topology generate`, resharding) build a
//! spec and validate it. This module must not know routing or sockets.
//!
//! ```yaml
//! version: 1                 # required, grows with every change
//! keyspace: app              # required: the logical database clients USE
//! sharding_column: tenant_id # default "tenant_id": the column of tables not listed
//! tables:                    # optional
//!   - name: orders
//!     column: customer_id    # default: sharding_column
//!     vindex: hash           # hash (default) | xxhash
//!     auto_increment:        # optional: ids of column `id` come from sequence table
//!       column: id           # `orders_seq` (on the first shard), not from each shard's
//!       sequence: orders_seq # own AUTO_INCREMENT; sharded tables only
//!   - name: countries
//!     type: reference        # sharded (default) | reference: a full copy on every shard,
//!                            # so no column and no vindex
//! backends:
//!   - { name: db0, host: 127.0.0.1, port: 3306 }
//! shards:
//!   - { name: "-80", backend: db0, database: app_000 }
//!   - { name: "80-", backend: db0, database: app_001 }
//! pins:                      # optional: these tenants skip the hash
//!   - { tenant: 42, shard: "80-" }
//! ```

use serde::{Deserialize, Serialize};

use crate::{AutoIncrement, PinTenant, Topology, TopologyError, Vindex};

/// The sharding column used when the file names none.
pub const DEFAULT_SHARDING_COLUMN: &str = "tenant_id";

fn default_sharding_column() -> String {
    DEFAULT_SHARDING_COLUMN.to_owned()
}

/// A whole topology file, unchecked.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Monotonic version; a running proxy only accepts a larger one.
    pub version: u64,
    /// The logical database name clients `USE`.
    pub keyspace: String,
    /// Column holding the tenant id in tables not listed under `tables`.
    #[serde(default = "default_sharding_column")]
    pub sharding_column: String,
    /// Tables whose column or vindex differ from the default, and reference tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableSpec>,
    /// MySQL/MariaDB servers.
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
    /// Shards, in any order; their names are their key ranges.
    #[serde(default)]
    pub shards: Vec<ShardSpec>,
    /// Tenants sent to a chosen shard, ahead of the hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<PinSpec>,
    /// Keys a resharding workflow is moving (see [`crate::moves`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<crate::MoveSpec>,
}

/// A listed table.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Table name, case-sensitive.
    pub name: String,
    /// How its rows are placed; written `type:` in the file, left out for a sharded table.
    #[serde(
        default,
        rename = "type",
        skip_serializing_if = "TableType::is_sharded"
    )]
    pub kind: TableType,
    /// Sharding column; `None` = the keyspace's `sharding_column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Vindex; `None` = `hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vindex: Option<Vindex>,
    /// The column whose ids come from a sequence; sharded tables only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_increment: Option<AutoIncrement>,
}

/// How a listed table's rows are placed on the shards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableType {
    /// Each row lives on the shard of its tenant (the sharding column through the vindex).
    /// The default, and what every unlisted table is.
    #[default]
    Sharded,
    /// Every shard holds a full copy (Vitess's reference tables: countries, plans, feature
    /// flags): reads run on any shard, writes on all of them. Such a table has no sharding
    /// column and no vindex.
    Reference,
}

impl TableType {
    /// Whether this is the default, which the file leaves unwritten.
    pub fn is_sharded(&self) -> bool {
        *self == TableType::Sharded
    }

    /// The name used in the YAML file (`sharded`, `reference`).
    pub fn name(self) -> &'static str {
        match self {
            TableType::Sharded => "sharded",
            TableType::Reference => "reference",
        }
    }
}

/// A backend server.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// Name shards refer to.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// A shard.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSpec {
    /// Vitess key-range name (`-02`, `02-04`, `fe-`); the range is parsed from it.
    pub name: String,
    /// Name of the backend holding it.
    pub backend: String,
    /// Database (schema) on that backend.
    pub database: String,
    /// A shard of its own for pinned tenants (a big customer's): it owns no key range, so its name is free (letters,
    /// digits, `_`; not a key-range name) and only tenants pinned to it live there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dedicated: bool,
}

/// A tenant pin.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinSpec {
    /// The tenant id, integer or string.
    pub tenant: PinTenant,
    /// Name of the shard it lives on.
    pub shard: String,
}

impl TopologySpec {
    /// Parses YAML text without validating it. Syntax and type errors carry the line and column
    /// the YAML parser reports.
    pub fn from_yaml_str(text: &str) -> Result<TopologySpec, TopologyError> {
        serde_yaml_ng::from_str(text).map_err(|error| {
            let location = error.location();
            TopologyError::Syntax {
                line: location.as_ref().map(serde_yaml_ng::Location::line),
                column: location.as_ref().map(serde_yaml_ng::Location::column),
                message: error.to_string(),
            }
        })
    }

    /// Writes the spec as YAML that [`TopologySpec::from_yaml_str`] reads back unchanged.
    ///
    /// Serialising these plain types cannot fail; should `serde_yaml_ng` ever refuse, the text
    /// returned is a YAML comment naming the error, which every loader rejects as incomplete.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self)
            .unwrap_or_else(|error| format!("# cannot write topology: {error}\n"))
    }

    /// Checks every rule (full key-space coverage, known backends, safe database names, pins
    /// naming real shards, no duplicates…) and builds the snapshot, or fails listing every problem.
    pub fn validate(&self) -> Result<Topology, TopologyError> {
        crate::validate::validate(self)
    }
}
