//! Routing: rows written through the proxy land on exactly the shard the topology names (no copies, no strays),
//! read back whole through the proxy, and updates and deletes through the proxy reach the same rows.
//!
//! The oracle is the topology crate itself (`Topology::route`), fed the same YAML the proxy loads; the truth is
//! what each shard database holds, read directly on its backend.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use shardgate_topology::Topology;

use crate::harness::cluster::routed_shard_name;
use crate::harness::expect::{self, codes};
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded, join_all, layout, proxy, within};

/// Client connections writing and reading concurrently through the proxy.
const CLIENTS: usize = 4;

/// Budget for each phase of the test.
const PHASE_ALLOWANCE: Duration = Duration::from_secs(300);

/// The tenant pinned to a dedicated shard.
const PINNED_TENANT: u64 = 42;

/// What should be stored: order id -> (tenant, note).
type Ledger = BTreeMap<u64, (u64, String)>;

/// One tenant's orders as (id, note), ordered by id.
type Orders = Vec<(u64, String)>;

/// Tenants 1..=1000 plus ids at the edges of the u64 range (above i64::MAX too).
fn tenants() -> Vec<u64> {
    (1..=1000)
        .chain([
            1 << 32,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 5,
            u64::MAX - 1,
            u64::MAX,
        ])
        .collect()
}

/// One to three orders per tenant, with ids unique across tenants.
fn initial_ledger() -> Ledger {
    let mut next_id = 1u64;
    let mut ledger = Ledger::new();
    for tenant in tenants() {
        for k in 0..=(tenant % 3) {
            ledger.insert(next_id, (tenant, format!("t{tenant}-r{k}")));
            next_id += 1;
        }
    }
    ledger
}

/// The orders of each tenant, ordered by id.
fn by_tenant(ledger: &Ledger) -> BTreeMap<u64, Orders> {
    let mut tenants: BTreeMap<u64, Orders> = BTreeMap::new();
    for (id, (tenant, note)) in ledger {
        tenants
            .entry(*tenant)
            .or_default()
            .push((*id, note.clone()));
    }
    tenants
}

/// A shard for the pin that differs from where the tenant's hash would put it, so the pin is visible.
fn pin_target(n_shards: usize) -> String {
    let shards = layout::shards(n_shards, 1);
    let unpinned = Topology::from_yaml_str(&layout::topology_yaml(1, &[3306], &shards, &[]))
        .expect("unpinned topology must parse");
    let hashed = routed_shard_name(&unpinned, "orders", PINNED_TENANT);
    let target = if hashed == "fe-" { "-02" } else { "fe-" };
    target.to_owned()
}

#[tokio::test]
async fn rows_land_on_the_shard_the_topology_names() {
    bounded(async {
        let pinned_shard = pin_target(128);
        let cluster = Cluster::builder(2, 128)
            .pin(PINNED_TENANT, &pinned_shard)
            .start()
            .await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut ledger = initial_ledger();

        let inserts: Vec<(String, u64)> = ledger
            .iter()
            .map(|(id, (tenant, note))| (insert_order(*id, *tenant, note), 1))
            .collect();
        within(
            PHASE_ALLOWANCE,
            "inserting through the proxy",
            write_through_proxy(&cluster, inserts),
        )
        .await;
        assert_backends_hold_exactly(&cluster, &ledger).await;
        let pinned_rows: Vec<u64> = cluster
            .query_shard(
                cluster.shard_named(&pinned_shard),
                &format!("SELECT id FROM orders WHERE tenant_id = {PINNED_TENANT}"),
            )
            .await;
        assert_eq!(
            pinned_rows.len(),
            1 + (PINNED_TENANT % 3) as usize,
            "pinned tenant's rows are not on {pinned_shard}"
        );
        within(
            PHASE_ALLOWANCE,
            "reading back through the proxy",
            read_back_through_proxy(&cluster, &ledger),
        )
        .await;

        // Update every order of tenants ending in 0; delete the first order of tenants ending in 5.
        let tenants = by_tenant(&ledger);
        let mut changes = Vec::new();
        for (tenant, orders) in &tenants {
            if tenant % 10 == 0 {
                let note = format!("updated-{tenant}");
                changes.push((
                    format!("UPDATE orders SET note = '{note}' WHERE tenant_id = {tenant}"),
                    orders.len() as u64,
                ));
                for (id, _) in orders {
                    ledger.insert(*id, (*tenant, note.clone()));
                }
            } else if tenant % 10 == 5 {
                let (first, _) = &orders[0];
                changes.push((
                    format!("DELETE FROM orders WHERE tenant_id = {tenant} AND id = {first}"),
                    1,
                ));
                ledger.remove(first);
            }
        }
        within(
            PHASE_ALLOWANCE,
            "updating and deleting through the proxy",
            write_through_proxy(&cluster, changes),
        )
        .await;
        assert_backends_hold_exactly(&cluster, &ledger).await;
        within(
            PHASE_ALLOWANCE,
            "reading back after changes",
            read_back_through_proxy(&cluster, &ledger),
        )
        .await;
    })
    .await;
}

/// Runs `(statement, expected affected rows)` pairs through the proxy on [`CLIENTS`] concurrent connections.
async fn write_through_proxy(cluster: &Cluster, statements: Vec<(String, u64)>) {
    let mut shares: Vec<Vec<(String, u64)>> = vec![Vec::new(); CLIENTS];
    for (i, statement) in statements.into_iter().enumerate() {
        shares[i % CLIENTS].push(statement);
    }
    let mut clients = tokio::task::JoinSet::new();
    for share in shares {
        let opts = cluster.proxy_opts();
        clients.spawn(async move {
            let mut conn = proxy::connect(opts).await;
            for (sql, expected) in share {
                conn.query_drop(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("proxy refused `{sql}`: {e}"));
                assert_eq!(conn.affected_rows(), expected, "affected rows of `{sql}`");
            }
            conn.disconnect().await.expect("disconnect failed");
        });
    }
    join_all(clients).await;
}

/// Reads every tenant's orders through the proxy and compares them with the ledger.
async fn read_back_through_proxy(cluster: &Cluster, ledger: &Ledger) {
    let expected = by_tenant(ledger);
    let mut shares: Vec<Vec<(u64, Orders)>> = vec![Vec::new(); CLIENTS];
    for (i, tenant) in tenants().into_iter().enumerate() {
        let orders = expected.get(&tenant).cloned().unwrap_or_default();
        shares[i % CLIENTS].push((tenant, orders));
    }
    let mut clients = tokio::task::JoinSet::new();
    for share in shares {
        let opts = cluster.proxy_opts();
        clients.spawn(async move {
            let mut conn = proxy::connect(opts).await;
            for (tenant, expected) in share {
                let sql =
                    format!("SELECT id, note FROM orders WHERE tenant_id = {tenant} ORDER BY id");
                let got: Orders = conn
                    .query(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("proxy refused `{sql}`: {e}"));
                assert_eq!(got, expected, "tenant {tenant} read back through the proxy");
            }
            conn.disconnect().await.expect("disconnect failed");
        });
    }
    join_all(clients).await;
}

/// Reads every shard database directly: each row must sit on the shard the topology routes its tenant to, and
/// the union of all shards must equal the ledger (nothing lost, copied or stray).
async fn assert_backends_hold_exactly(cluster: &Cluster, ledger: &Ledger) {
    let mut stored = Ledger::new();
    let mut misplaced = Vec::new();
    let mut duplicated = Vec::new();
    for (index, shard) in cluster.shards().iter().enumerate() {
        let rows: Vec<(u64, u64, String)> = cluster
            .query_shard(shard, "SELECT id, tenant_id, note FROM orders")
            .await;
        for (id, tenant, note) in rows {
            let owner = cluster.shard_index_for("orders", tenant);
            if owner != index {
                misplaced.push(format!(
                    "order {id} of tenant {tenant} is on {} but belongs on {}",
                    shard.name,
                    cluster.shards()[owner].name
                ));
            }
            if stored.insert(id, (tenant, note)).is_some() {
                duplicated.push(id);
            }
        }
    }
    assert!(
        misplaced.is_empty(),
        "{} misplaced rows, e.g. {:?}",
        misplaced.len(),
        &misplaced[..misplaced.len().min(10)]
    );
    assert!(
        duplicated.is_empty(),
        "orders stored on several shards: {duplicated:?}"
    );
    let missing: Vec<&u64> = ledger
        .keys()
        .filter(|id| !stored.contains_key(id))
        .collect();
    let extra: Vec<&u64> = stored
        .keys()
        .filter(|id| !ledger.contains_key(id))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing orders {missing:?}, unexpected orders {extra:?}"
    );
    let wrong: Vec<_> = ledger
        .iter()
        .filter(|(id, row)| stored.get(id) != Some(row))
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "orders stored with other contents than written: {wrong:?}"
    );
}

#[tokio::test]
async fn the_proxy_says_which_shards_it_has_and_where_a_tenant_lives() {
    bounded(async {
        let cluster = Cluster::builder(2, 8)
            .pin(PINNED_TENANT, "e0-")
            .start()
            .await;
        let mut conn = cluster.proxy_conn().await;
        let shards: Vec<(String, u64, String, String, String)> = conn
            .query("SHOW SHARDGATE_SHARDS")
            .await
            .expect("SHOW SHARDGATE_SHARDS");
        let listed: Vec<(String, String)> = shards
            .iter()
            .map(|(name, _, _, _, database)| (name.clone(), database.clone()))
            .collect();
        let expected: Vec<(String, String)> = cluster
            .shards()
            .iter()
            .map(|s| (s.name.clone(), s.database.clone()))
            .collect();
        assert_eq!(listed, expected);
        for (name, _, _, address, _) in &shards {
            let backend = cluster.backend_of(cluster.shard_named(name));
            assert_eq!(
                address,
                &format!("127.0.0.1:{}", backend.port()),
                "shard {name}"
            );
        }
        for tenant in [1u64, 7, 1000, PINNED_TENANT] {
            let route: Vec<(String, u64, String, String, String)> = conn
                .query(format!("SHOW SHARDGATE_ROUTE FOR orders {tenant}"))
                .await
                .expect("SHOW SHARDGATE_ROUTE");
            assert_eq!(route.len(), 1);
            assert_eq!(
                route[0].0,
                cluster.shard_for("orders", tenant).name,
                "tenant {tenant}"
            );
        }
        expect::server_error(
            conn.query_drop("SHOW SHARDGATE_NONSENSE").await,
            codes::PARSE_ERROR,
            "an unknown proxy statement",
        );
    })
    .await;
}

#[tokio::test]
async fn the_plan_cache_counts_its_hits() {
    bounded(async {
        let cluster = Cluster::builder(1, 2).start().await;
        cluster.ddl_on_every_shard(ORDERS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        let status =
            |rows: Vec<(String, u64)>| -> BTreeMap<String, u64> { rows.into_iter().collect() };
        let before = status(conn.query("SHOW SHARDGATE_STATUS").await.expect("status"));
        for tenant in 0..10u64 {
            let _: Vec<String> = conn
                .query(format!(
                    "SELECT note FROM orders WHERE tenant_id = {tenant}"
                ))
                .await
                .expect("select");
        }
        let after = status(conn.query("SHOW SHARDGATE_STATUS").await.expect("status"));
        // One shape: analysed once, then served from the cache nine times.
        assert_eq!(after["plan_cache_misses"] - before["plan_cache_misses"], 1);
        assert_eq!(after["plan_cache_hits"] - before["plan_cache_hits"], 9);
        assert!(after["plan_cache_entries"] >= 1);
        assert!(after["plan_cache_capacity"] >= after["plan_cache_entries"]);
    })
    .await;
}
