//! The test schema: one sharded table, `orders`, sharded by the topology's default column `tenant_id`.
//!
//! `tenant_id` is `BIGINT UNSIGNED` so that tenant ids above 2^63 (valid keyspace inputs) can be stored.

/// DDL for `orders`, run in every shard database with [`super::Cluster::ddl_on_every_shard`].
pub const ORDERS_DDL: &str = "CREATE TABLE orders (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, note VARCHAR(64))";

/// An `INSERT` of one order (`note` must not contain quotes).
pub fn insert_order(id: u64, tenant: u64, note: &str) -> String {
    assert!(
        !note.contains('\''),
        "notes are inlined in SQL; keep quotes out"
    );
    format!("INSERT INTO orders (id, tenant_id, note) VALUES ({id}, {tenant}, '{note}')")
}
