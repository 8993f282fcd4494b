//! Sequences: an INSERT that leaves a sequenced `id` out (or gives it NULL or 0) gets ids from the sequence table
//! on the first shard, reserved in blocks, unique across shards; the OK and `LAST_INSERT_ID()` report the first.
//! For a table sharded by that id, the ids decide where each row goes.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::{Cluster, bounded};

const TICKETS_DDL: &str = "CREATE TABLE tickets (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, what VARCHAR(16))";
const COUNTERS_DDL: &str = "CREATE TABLE counters (id BIGINT PRIMARY KEY, v INT)";

/// A cluster with both sequenced tables and their sequence tables (block size `cache`).
async fn cluster(cache: u64) -> Cluster {
    let cluster = Cluster::builder(2, 4).start().await;
    cluster.ddl_on_every_shard(TICKETS_DDL).await;
    cluster.ddl_on_every_shard(COUNTERS_DDL).await;
    let first = &cluster.shards()[0];
    let mut conn = cluster
        .backend_of(first)
        .conn_db(Some(&first.database))
        .await;
    for seq in ["tickets_seq", "counters_seq"] {
        conn.query_drop(format!(
            "CREATE TABLE {seq} (id INT PRIMARY KEY, next_id BIGINT UNSIGNED NOT NULL, cache BIGINT UNSIGNED NOT NULL)"
        ))
        .await
        .expect("sequence table");
        conn.query_drop(format!(
            "INSERT INTO {seq} (id, next_id, cache) VALUES (0, 1, {cache})"
        ))
        .await
        .expect("sequence row");
    }
    cluster
}

/// Every (id, shard name) of `table`, read on the shards directly.
async fn stored_ids(cluster: &Cluster, table: &str) -> Vec<(u64, String)> {
    let mut all = Vec::new();
    for shard in cluster.shards() {
        let ids: Vec<u64> = cluster
            .query_shard(shard, &format!("SELECT id FROM {table}"))
            .await;
        all.extend(ids.into_iter().map(|id| (id, shard.name.clone())));
    }
    all.sort();
    all
}

#[tokio::test]
async fn generated_ids_are_unique_across_shards_and_reported_to_the_client() {
    bounded(async {
        let cluster = cluster(5).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        a.query_drop("INSERT INTO tickets (tenant_id, what) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .await
            .expect("multi-tenant insert without ids");
        let first = a
            .last_insert_id()
            .expect("the OK reports the first generated id");
        assert_eq!(a.affected_rows(), 3);
        let seen: Vec<u64> = a
            .query("SELECT LAST_INSERT_ID()")
            .await
            .expect("LAST_INSERT_ID()");
        assert_eq!(seen, [first]);
        for i in 0..8u64 {
            let conn = if i % 2 == 0 { &mut a } else { &mut b };
            conn.query_drop(format!(
                "INSERT INTO tickets (id, tenant_id, what) VALUES (NULL, {i}, 'n')"
            ))
            .await
            .expect("NULL id");
        }
        b.query_drop(
            "INSERT INTO tickets (id, tenant_id, what) VALUES (0, 9, 'zero'), (5000, 9, 'kept')",
        )
        .await
        .expect("0 generates, an explicit id is kept");
        let ids = stored_ids(&cluster, "tickets").await;
        assert_eq!(ids.len(), 13);
        let unique: BTreeSet<u64> = ids.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            unique.len(),
            13,
            "ids must be unique across shards: {ids:?}"
        );
        assert!(unique.contains(&5000));
        // Blocks of 5 were reserved; the sequence moved past every id handed out.
        let first_shard = &cluster.shards()[0];
        let next: Vec<u64> = cluster
            .query_shard(first_shard, "SELECT next_id FROM tickets_seq WHERE id = 0")
            .await;
        let max_generated = unique
            .iter()
            .copied()
            .filter(|id| *id != 5000)
            .max()
            .unwrap_or(0);
        assert!(
            next[0] > max_generated,
            "next_id {} must be past {max_generated}",
            next[0]
        );
        // Tenant 9's rows read back through its shard: the 0 became a generated id, 5000 stayed.
        let rows: Vec<(u64, String)> = a
            .query("SELECT id, what FROM tickets WHERE tenant_id = 9 ORDER BY what")
            .await
            .expect("read back");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], (5000, "kept".to_string()));
        assert!(
            rows[1].0 != 0 && rows[1].0 != 5000 && rows[1].1 == "zero",
            "{rows:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_table_sharded_by_its_sequenced_id_places_each_row_by_the_id_it_got() {
    bounded(async {
        let cluster = cluster(1000).await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("INSERT INTO counters (v) VALUES (1), (2), (3), (4), (5), (6), (7), (8)")
            .await
            .expect("insert without ids into a table sharded by id");
        let ids = stored_ids(&cluster, "counters").await;
        assert_eq!(ids.len(), 8);
        for (id, shard) in &ids {
            assert_eq!(shard, &cluster.shard_for("counters", *id).name, "row {id}");
        }
        let shards: BTreeSet<&String> = ids.iter().map(|(_, s)| s).collect();
        assert!(
            shards.len() > 1,
            "eight ids should spread over several shards: {ids:?}"
        );
        // A prepared INSERT must name its id.
        expect::server_error(
            conn.prep("INSERT INTO counters (v) VALUES (?)")
                .await
                .map(drop),
            codes::NOT_SUPPORTED_YET,
            "prepared insert without the sequenced id",
        );
    })
    .await;
}
