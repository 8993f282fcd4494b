//! A tenant with a string id, on a table sharded by `xxhash`, moves: its rows are compared as strings (a tenant
//! `'42'` is not the integer 42), and tables sharded by `hash`, where a string id has no rows, are left alone.

use mysql_async::prelude::Queryable;
use shardgate_topology::spec::TableSpec;
use shardgate_topology::{TopologySpec, Vindex};

use crate::harness::shardctl::Shardctl;
use crate::harness::{Cluster, bounded, http};

async fn count(conn: &mut mysql_async::Conn, sql: &str) -> u64 {
    conn.query_first(sql).await.expect("count").unwrap_or(0)
}

#[tokio::test]
async fn a_string_tenant_moves_and_look_alike_ids_of_other_types_stay() {
    bounded(async {
        let cluster = Cluster::builder(2, 4).start().await;
        // `accounts` is sharded by the string column `account` (xxhash); `orders` by the integer `tenant_id` (hash).
        let port = cluster.proxy().admin_port();
        let (_, yaml) = http::request(port, "GET", "/topology", "").await;
        let mut spec = TopologySpec::from_yaml_str(&yaml).expect("topology");
        spec.version += 1;
        spec.tables.push(TableSpec {
            name: "accounts".into(),
            kind: Default::default(),
            column: Some("account".into()),
            vindex: Some(Vindex::Xxhash),
            auto_increment: None,
        });
        let (status, answer) = http::request(port, "PUT", "/topology", &spec.to_yaml()).await;
        assert_eq!(status, 200, "{answer}");
        cluster
            .ddl_on_every_shard(
                "CREATE TABLE accounts (account VARCHAR(32) NOT NULL, id BIGINT NOT NULL, note VARCHAR(20), \
                 PRIMARY KEY (account, id))",
            )
            .await;
        cluster
            .ddl_on_every_shard(
                "CREATE TABLE orders (tenant_id BIGINT UNSIGNED NOT NULL, id BIGINT NOT NULL, note VARCHAR(20), \
                 PRIMARY KEY (tenant_id, id))",
            )
            .await;
        let mut conn = cluster.proxy_conn().await;
        for id in 1..=40 {
            for account in ["acme", "42", "zeta"] {
                conn.query_drop(format!(
                    "INSERT INTO accounts (account, id, note) VALUES ('{account}', {id}, 'n')"
                ))
                .await
                .expect("insert account");
            }
            // Tenant 0 of the integer table: what 'acme' would equal if compared as a number.
            conn.query_drop(format!("INSERT INTO orders (tenant_id, id, note) VALUES (0, {id}, 'n')"))
                .await
                .expect("insert order");
        }
        let topology = spec.validate().expect("the published topology");
        let home = topology
            .shard(topology.route("accounts", shardgate_topology::TenantRef::Str("acme")).expect("route"))
            .expect("shard")
            .name
            .clone();
        let to = cluster.another_shard(&home).name;
        let ctl = Shardctl::new(cluster.proxy());
        ctl.run_creating(&[
            "move-tenant",
            "--workflow",
            "acme",
            "--tenant",
            "acme",
            "--to",
            &to,
            "--stop-after",
            "complete",
        ])
        .await
        .assert_ok();
        let record = ctl.status("acme").await;
        record.assert_ended("complete");
        let tables: Vec<String> = record
            .tables()
            .iter()
            .filter_map(|t| t["table"].as_str().map(str::to_string))
            .collect();
        assert_eq!(tables, ["accounts"], "a hash table holds no row of a string tenant");

        let (_, yaml) = http::request(port, "GET", "/topology", "").await;
        assert!(yaml.contains("tenant: acme"), "acme is pinned:\n{yaml}");
        let acme = "SELECT COUNT(*) FROM accounts WHERE account = 'acme'";
        assert_eq!(count(&mut conn, acme).await, 40, "acme reads all its rows on its new shard");
        let target = cluster.shard_named(&to).clone();
        let on_target: Vec<u64> = cluster.query_shard(&target, acme).await;
        assert_eq!(on_target, [40]);
        for other in ["42", "zeta"] {
            let sql = format!("SELECT COUNT(*) FROM accounts WHERE account = '{other}'");
            assert_eq!(count(&mut conn, &sql).await, 40, "{other} is untouched");
        }
        let zero = "SELECT COUNT(*) FROM orders WHERE tenant_id = 0";
        assert_eq!(count(&mut conn, zero).await, 40, "integer tenant 0 is untouched");
        super::check::no_triggers_left(&cluster).await;
    })
    .await;
}
