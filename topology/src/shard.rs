//! Shards and the backends that hold them.
//!
//! Place in the data path: routing ends in a [`ShardId`]; the proxy reads the [`Shard`] (which
//! database) and its [`Backend`] (which server) to pick a pool. These are descriptions only:
//! this module must not know connections, pools or health.

use std::fmt;

use crate::KeyRange;

/// A shard's position in [`crate::Topology::shards`]; valid within the snapshot that produced it
/// (a later snapshot may number its shards differently).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The index into [`crate::Topology::shards`].
    pub fn index(self) -> usize {
        // u32 -> usize is lossless on every platform shardgate builds for (>= 32 bits).
        self.0 as usize
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A MySQL/MariaDB server endpoint. Many shards may live on one backend.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Backend {
    /// Name the shards refer to it by (`db0`).
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

/// One shard: a key range stored in one database on one backend.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Shard {
    /// Its position in [`crate::Topology::shards`].
    pub id: ShardId,
    /// Vitess key-range name as written in the file (`-02`, `fe-`).
    pub name: String,
    /// The keyspace ids it owns, parsed from `name`; empty for a dedicated shard.
    pub range: KeyRange,
    /// A shard of its own for pinned tenants: it owns no key range. Dedicated shards come after every key-range
    /// shard in [`crate::Topology::shards`].
    pub dedicated: bool,
    /// Index into [`crate::Topology::backends`]; always valid within the same snapshot.
    pub backend: usize,
    /// Database (schema) on the backend holding this shard's rows; a safe identifier
    /// (`[A-Za-z0-9_$]+`), so it can be quoted with backticks without escaping.
    pub database: String,
}
