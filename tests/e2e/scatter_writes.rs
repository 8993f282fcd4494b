//! `allow_scatter_writes: true`: UPDATE and DELETE naming no tenant run on every shard, in one transaction, with
//! the affected rows of all shards added up — as on one database holding every tenant.

use mysql_async::prelude::Queryable;

use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded};

#[tokio::test]
async fn tenantless_writes_change_every_shard_when_the_config_allows_them() {
    bounded(async {
        let cluster = Cluster::builder(2, 4).allow_scatter_writes().start().await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut flat = cluster.flat_database(&[ORDERS_DDL]).await;
        let mut proxy = cluster.proxy_conn().await;
        for id in 0..24u64 {
            let sql = insert_order(id, id % 8, if id % 3 == 0 { "old" } else { "new" });
            proxy.query_drop(&sql).await.expect("insert");
            flat.query_drop(&sql).await.expect("flat insert");
        }
        for sql in [
            "UPDATE orders SET note = 'stale' WHERE note = 'old'",
            "DELETE FROM orders WHERE id > 20",
        ] {
            proxy.query_drop(sql).await.expect(sql);
            flat.query_drop(sql).await.expect(sql);
            assert_eq!(
                proxy.affected_rows(),
                flat.affected_rows(),
                "`{sql}`: affected rows"
            );
        }
        let read = "SELECT id, tenant_id, note FROM orders ORDER BY id";
        let via_proxy: Vec<(u64, u64, String)> = proxy.query(read).await.expect("read back");
        let direct: Vec<(u64, u64, String)> = flat.query(read).await.expect("read flat");
        assert_eq!(via_proxy, direct);
    })
    .await;
}
