//! The test schema: one sharded table, `orders`, sharded by the topology's default column `tenant_id`.
//!
//! `tenant_id` is `BIGINT UNSIGNED` so that tenant ids above 2^63 (valid keyspace inputs) can be stored.

/// DDL for `orders`, run in every shard database with [`super::Cluster::ddl_on_every_shard`].
pub const ORDERS_DDL: &str = "CREATE TABLE orders (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, note VARCHAR(64))";

/// Starts the cluster `builder` describes and creates `orders` in every shard database.
pub async fn start_with_orders(builder: super::cluster::ClusterBuilder) -> super::Cluster {
    let cluster = builder.start().await;
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    cluster
}

/// The notes of `tenant`'s orders, oldest id first, read on its shard directly: what is committed.
pub async fn committed_notes(cluster: &super::Cluster, tenant: u64) -> Vec<String> {
    let shard = cluster.shard_for("orders", tenant);
    let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant} ORDER BY id");
    cluster.query_shard(shard, &sql).await
}

/// An `INSERT` of one order (`note` must not contain quotes).
pub fn insert_order(id: u64, tenant: u64, note: &str) -> String {
    assert!(
        !note.contains('\''),
        "notes are inlined in SQL; keep quotes out"
    );
    format!("INSERT INTO orders (id, tenant_id, note) VALUES ({id}, {tenant}, '{note}')")
}
