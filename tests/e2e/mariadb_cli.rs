//! The real `mariadb` command-line client through the proxy: batch mode, interactive mode (which queries
//! `@@version_comment`, and without `-A` also `SHOW DATABASES`, `SHOW TABLES` and `COM_FIELD_LIST`, on connect),
//! and utf8mb4 text. Values printed by the client are checked against the shard database on its backend.

use crate::harness::schema::ORDERS_DDL;
use crate::harness::{Cluster, bounded, cli};

/// A cluster of 2 backends and 16 shards with `orders`.
async fn cluster() -> Cluster {
    let cluster = Cluster::start(2, 16).await;
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    cluster
}

/// Asserts that the shard owning `tenant` holds exactly `expected` (id, tenant, note) rows.
async fn assert_on_backend(cluster: &Cluster, tenant: u64, expected: &[(u64, u64, &str)]) {
    let shard = cluster.shard_for("orders", tenant);
    let rows: Vec<(u64, u64, String)> = cluster
        .query_shard(
            shard,
            &format!("SELECT id, tenant_id, note FROM orders WHERE tenant_id = {tenant}"),
        )
        .await;
    let expected: Vec<(u64, u64, String)> = expected
        .iter()
        .map(|(i, t, n)| (*i, *t, (*n).to_owned()))
        .collect();
    assert_eq!(
        rows, expected,
        "tenant {tenant} on shard {} ({})",
        shard.name, shard.database
    );
}

#[tokio::test]
async fn mariadb_cli_connects_and_runs_routed_statements() {
    bounded(async {
        let cluster = cluster().await;
        let port = cluster.proxy_port();
        cli::batch(
            port,
            &[],
            "INSERT INTO orders (id, tenant_id, note) VALUES (1, 7, 'cli-batch')",
        )
        .await
        .success("INSERT via the CLI");
        let out = cli::batch(port, &[], "SELECT id, note FROM orders WHERE tenant_id = 7")
            .await
            .success("SELECT via the CLI");
        assert_eq!(
            cli::tsv_rows(&out),
            vec![vec!["id", "note"], vec!["1", "cli-batch"]]
        );
        assert_on_backend(&cluster, 7, &[(1, 7, "cli-batch")]).await;

        // Several statements in one -e: the client sends them one by one.
        let out = cli::batch(
            port,
            &[],
            "UPDATE orders SET note = 'cli-updated' WHERE tenant_id = 7; SELECT note FROM orders WHERE tenant_id = 7",
        )
        .await
        .success("UPDATE and SELECT via the CLI");
        assert_eq!(cli::tsv_rows(&out), vec![vec!["note"], vec!["cli-updated"]]);
        assert_on_backend(&cluster, 7, &[(1, 7, "cli-updated")]).await;
    })
    .await;
}

#[tokio::test]
async fn mariadb_cli_interactive_session_connects_and_runs_routed_statements() {
    bounded(async {
        let cluster = cluster().await;
        let input = "INSERT INTO orders (id, tenant_id, note) VALUES (2, 8, 'cli-interactive');\n\
                     SELECT id, note FROM orders WHERE tenant_id = 8;";
        // -A: no tab-completion queries, so the only extra statement is `select @@version_comment limit 1`.
        let out = cli::interactive(cluster.proxy_port(), &["-A"], input)
            .await
            .success("interactive session");
        assert!(out.contains("Server version:"), "no welcome banner:\n{out}");
        assert!(
            !out.contains("ERROR"),
            "the session reported an error:\n{out}"
        );
        assert_eq!(
            cli::table_rows(&out),
            vec![vec!["id", "note"], vec!["2", "cli-interactive"]],
            "screen:\n{out}"
        );
        assert_on_backend(&cluster, 8, &[(2, 8, "cli-interactive")]).await;
    })
    .await;
}

#[tokio::test]
async fn mariadb_cli_interactive_session_survives_tab_completion_queries_on_connect() {
    bounded(async {
        let cluster = cluster().await;
        let input = "INSERT INTO orders (id, tenant_id, note) VALUES (3, 9, 'cli-rehash');\n\
                     SELECT id, note FROM orders WHERE tenant_id = 9;";
        // No -A: the client reads database, table and column names first.
        let out = cli::interactive(cluster.proxy_port(), &[], input)
            .await
            .success("interactive session with rehash");
        assert!(
            !out.contains("ERROR"),
            "the session reported an error:\n{out}"
        );
        assert_eq!(
            cli::table_rows(&out),
            vec![vec!["id", "note"], vec!["3", "cli-rehash"]],
            "screen:\n{out}"
        );
        assert_on_backend(&cluster, 9, &[(3, 9, "cli-rehash")]).await;
    })
    .await;
}

#[tokio::test]
async fn mariadb_cli_with_utf8mb4_round_trips_non_ascii_text() {
    bounded(async {
        let cluster = cluster().await;
        let note = "grüße ✓ 🚀";
        let sql = format!(
            "SET NAMES utf8mb4; INSERT INTO orders (id, tenant_id, note) VALUES (4, 10, '{note}'); \
             SELECT note FROM orders WHERE tenant_id = 10"
        );
        let out = cli::batch(
            cluster.proxy_port(),
            &["--default-character-set=utf8mb4"],
            &sql,
        )
        .await
        .success("utf8mb4 session");
        assert_eq!(cli::tsv_rows(&out), vec![vec!["note"], vec![note]]);
        assert_on_backend(&cluster, 10, &[(4, 10, note)]).await;
    })
    .await;
}
