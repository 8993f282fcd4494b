//! Auth plugins: with `auth_plugin: caching_sha2_password` in its config the proxy greets with that plugin and
//! answers on its fast path (AuthMoreData `0x01 0x03`, then OK), so mysql_async, the `mariadb` CLI and the raw
//! client all log in and run routed statements; a wrong password is still 1045. With the default config
//! (`mysql_native_password`), a client that answers with `caching_sha2_password` anyway is verified with the
//! plugin it chose.
//!
//! The raw client computes the SHA-256 scramble with its own SHA-256 (`harness/raw/sha256.rs`), so the proxy's
//! verification is not checked against its own code.

use mysql_async::Opts;
use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::raw::{self, CACHING_SHA2_PASSWORD, NATIVE_PASSWORD, RawConn};
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded, cli, proxy};

/// A cluster of 2 backends and 8 shards with `orders`, its proxy offering `plugin` (the default when `None`).
async fn cluster(plugin: Option<&str>) -> Cluster {
    let builder = Cluster::builder(2, 8);
    let builder = match plugin {
        Some(plugin) => builder.auth_plugin(plugin),
        None => builder,
    };
    let cluster = builder.start().await;
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    cluster
}

/// The plugin named in the proxy's greeting.
async fn greeting_plugin(cluster: &Cluster) -> Option<String> {
    raw::greet(cluster.proxy_port()).await.1.auth_plugin
}

/// Asserts that order `id` of `tenant` with `note` is stored on the tenant's shard, and only there.
async fn assert_stored(cluster: &Cluster, id: u64, tenant: u64, note: &str) {
    let sql = format!("SELECT id, note FROM orders WHERE tenant_id = {tenant}");
    for shard in cluster.shards() {
        let rows: Vec<(u64, String)> = cluster.query_shard(shard, &sql).await;
        let expected = if *shard == *cluster.shard_for("orders", tenant) {
            vec![(id, note.to_owned())]
        } else {
            Vec::new()
        };
        assert_eq!(rows, expected, "tenant {tenant} on shard {}", shard.name);
    }
}

/// Writes an order through a raw session and reads it back through the same session.
async fn raw_round_trip(conn: &mut RawConn, cluster: &Cluster, id: u64, tenant: u64, note: &str) {
    conn.query(&insert_order(id, tenant, note))
        .await
        .expect_ok("raw INSERT");
    let rows = conn
        .query(&format!(
            "SELECT note FROM orders WHERE tenant_id = {tenant}"
        ))
        .await
        .expect_rows("raw SELECT");
    assert_eq!(rows, vec![vec![Some(note.to_owned())]]);
    assert_stored(cluster, id, tenant, note).await;
}

#[tokio::test]
async fn caching_sha2_config_lets_mysql_async_log_in_and_run_routed_statements() {
    bounded(async {
        let cluster = cluster(Some(CACHING_SHA2_PASSWORD)).await;
        assert_eq!(
            greeting_plugin(&cluster).await.as_deref(),
            Some(CACHING_SHA2_PASSWORD)
        );
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop(insert_order(1, 7, "sha2-driver"))
            .await
            .expect("INSERT");
        let notes: Vec<String> = conn
            .query("SELECT note FROM orders WHERE tenant_id = 7")
            .await
            .expect("SELECT");
        assert_eq!(notes, ["sha2-driver"]);
        assert_stored(&cluster, 1, 7, "sha2-driver").await;
    })
    .await;
}

#[tokio::test]
async fn caching_sha2_config_lets_the_mariadb_cli_log_in_and_run_routed_statements() {
    bounded(async {
        let cluster = cluster(Some(CACHING_SHA2_PASSWORD)).await;
        let port = cluster.proxy_port();
        cli::batch(
            port,
            &[],
            "INSERT INTO orders (id, tenant_id, note) VALUES (2, 8, 'sha2-cli')",
        )
        .await
        .success("INSERT via the CLI");
        let out = cli::batch(port, &[], "SELECT id, note FROM orders WHERE tenant_id = 8")
            .await
            .success("SELECT via the CLI");
        assert_eq!(
            cli::tsv_rows(&out),
            vec![vec!["id", "note"], vec!["2", "sha2-cli"]]
        );
        assert_stored(&cluster, 2, 8, "sha2-cli").await;
    })
    .await;
}

#[tokio::test]
async fn caching_sha2_config_answers_a_sha2_client_on_the_fast_path() {
    bounded(async {
        let cluster = cluster(Some(CACHING_SHA2_PASSWORD)).await;
        let port = cluster.proxy_port();
        let mut conn =
            RawConn::login_with_plugin(port, "app", "app", Some("app"), CACHING_SHA2_PASSWORD)
                .await
                .expect("caching_sha2_password login refused");
        assert_eq!(
            conn.auth_more_data,
            vec![vec![0x01, 0x03]],
            "fast-auth OK, then OK"
        );
        raw_round_trip(&mut conn, &cluster, 3, 9, "sha2-raw").await;
        // A client that insists on mysql_native_password is verified with it.
        let mut native =
            RawConn::login_with_plugin(port, "app", "app", Some("app"), NATIVE_PASSWORD)
                .await
                .expect("mysql_native_password login refused by a caching_sha2_password proxy");
        assert!(
            native.auth_more_data.is_empty(),
            "{:?}",
            native.auth_more_data
        );
        raw_round_trip(&mut native, &cluster, 4, 10, "native-raw").await;
    })
    .await;
}

#[tokio::test]
async fn caching_sha2_config_refuses_a_wrong_password_with_1045() {
    bounded(async {
        let cluster = cluster(Some(CACHING_SHA2_PASSWORD)).await;
        let port = cluster.proxy_port();
        let expected = "Access denied for user 'app'@'127.0.0.1' (using password: YES)";
        let url = format!("mysql://app:wrong@127.0.0.1:{port}/app");
        let result = proxy::try_connect(Opts::from_url(&url).expect("URL")).await;
        let message =
            expect::server_error(result, codes::ACCESS_DENIED, "mysql_async, wrong password");
        assert_eq!(message, expected);

        let refused =
            RawConn::login_with_plugin(port, "app", "wrong", Some("app"), CACHING_SHA2_PASSWORD)
                .await
                .err()
                .expect("a wrong caching_sha2_password scramble was accepted");
        let message = expect::raw_error(
            &refused,
            codes::ACCESS_DENIED,
            "raw sha2 client, wrong password",
        );
        assert_eq!(message, expected);

        let out = cli::batch(port, &["-pwrong"], "SELECT 1").await;
        assert!(
            !out.status.success(),
            "the CLI logged in with a wrong password:\n{}",
            out.stdout
        );
        assert!(
            out.stderr.contains("ERROR 1045"),
            "CLI stderr: {}",
            out.stderr
        );

        // The right password still works afterwards.
        let mut conn = cluster.proxy_conn().await;
        conn.ping().await.expect("ping after refusals");
    })
    .await;
}

#[tokio::test]
async fn native_config_verifies_a_client_answering_with_caching_sha2() {
    bounded(async {
        let cluster = cluster(None).await;
        let port = cluster.proxy_port();
        assert_eq!(
            greeting_plugin(&cluster).await.as_deref(),
            Some(NATIVE_PASSWORD)
        );
        let mut conn =
            RawConn::login_with_plugin(port, "app", "app", Some("app"), CACHING_SHA2_PASSWORD)
                .await
                .expect("a caching_sha2_password answer to a native greeting was refused");
        raw_round_trip(&mut conn, &cluster, 5, 11, "sha2-on-native").await;
        let refused =
            RawConn::login_with_plugin(port, "app", "wrong", Some("app"), CACHING_SHA2_PASSWORD)
                .await
                .err()
                .expect("a wrong caching_sha2_password scramble was accepted");
        expect::raw_error(
            &refused,
            codes::ACCESS_DENIED,
            "raw sha2 client, wrong password",
        );
    })
    .await;
}
