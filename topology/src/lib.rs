//! shardgate's topology: which shard owns which tenant.
//!
//! Place in the data path: `route`. After `crates/sql` has found a statement's table and tenant id,
//! the proxy takes one [`Topology`] snapshot from the [`TopologyHandle`] and asks it
//! [`Topology::route`]: tenant id -> keyspace id (a Vitess-compatible vindex) -> [`ShardId`]
//! -> [`Shard`] (a key range, a [`Backend`] endpoint and a database). The snapshot is immutable;
//! a statement keeps the one it started with.
//!
//! What this crate must not know: sockets, connections, pools, SQL text or the MySQL protocol.
//! It deals in integers, strings and key ranges; it never blocks and never panics on input.
//!
//! Modules, in the order a tenant id meets them:
//! - [`tenant`]: a tenant id as the SQL layer found it, and tenant pins.
//! - [`vindex`]: tenant id -> [`KeyspaceId`] (`hash` = Vitess DES, `xxhash` = Vitess xxh64).
//! - [`key_range`]: half-open key ranges and Vitess shard names (`-80`, `80-`).
//! - [`shard`]: shards and backends.
//! - [`table`]: per-table sharding column and vindex, sequence columns; reference tables.
//! - [`spec`]: the YAML file format, as written by people.
//! - `validate`: spec -> [`Topology`], listing every problem at once.
//! - [`topology`]: the validated, immutable snapshot and its routing.
//! - [`handle`]: the live snapshot, swapped atomically.
//! - [`error`]: what can go wrong, as facts.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod handle;
pub mod key_range;
pub mod keyspace_id;
pub mod moves;
pub mod shard;
pub mod spec;
pub mod table;
pub mod tenant;
pub mod topology;
mod validate;
pub mod vindex;

pub use error::{Problem, RouteError, ShardNameFault, TopologyError};
pub use handle::TopologyHandle;
pub use key_range::{KeyRange, even_shard_ranges, parse_shard_name};
pub use keyspace_id::KeyspaceId;
pub use moves::{DEFAULT_HOLD_MS, Move, MoveSpec, MoveState};
pub use shard::{Backend, Shard, ShardId};
pub use spec::{PinSpec, TableType, TopologySpec};
pub use table::{AutoIncrement, TableRule, TableRuleRef};
pub use tenant::{Pin, PinTenant, TenantRef};
pub use topology::Topology;
pub use vindex::Vindex;
