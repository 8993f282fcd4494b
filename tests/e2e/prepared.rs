//! Prepared statements over the binary protocol (mysql_async's `exec` prepares and executes server-side): routed by
//! the bound tenant parameter, answered byte for byte as the shard answers the same execute directly.

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value};

use crate::harness::expect::{self, codes};
use crate::harness::{Cluster, bounded};

/// A table with a spread of column types, so binary-protocol rows cover integers, decimals, floats, strings,
/// temporals and NULLs.
const ITEMS_DDL: &str = "CREATE TABLE items (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, \
    name VARCHAR(32), price DECIMAL(10,2), ratio DOUBLE, made DATETIME(3), day DATE, small TINYINT, big BIGINT UNSIGNED)";

const INSERT: &str = "INSERT INTO items (id, tenant_id, name, price, ratio, made, day, small, big) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn item(id: u64, tenant: u64) -> Vec<Value> {
    let name = if id.is_multiple_of(3) {
        Value::NULL
    } else {
        Value::from(format!("item-{id}"))
    };
    vec![
        Value::from(id),
        Value::from(tenant),
        name,
        Value::from(format!("{}.{:02}", id * 7, id % 100)),
        Value::from(id as f64 / 3.0),
        Value::Date(2026, 11, (id % 28 + 1) as u8, 10, 30, 5, 123_000),
        Value::Date(2025, 1, (id % 28 + 1) as u8, 0, 0, 0, 0),
        Value::from((id % 256) as i64 - 128),
        Value::from(u64::MAX - id),
    ]
}

/// Rows as the client library decoded them, for comparison.
fn values(rows: Vec<Row>) -> Vec<Vec<Value>> {
    rows.into_iter().map(Row::unwrap).collect()
}

#[tokio::test]
async fn executes_route_by_the_bound_tenant_and_match_the_shard_byte_for_byte() {
    bounded(async {
        let cluster = Cluster::builder(2, 8).start().await;
        cluster.ddl_on_every_shard(ITEMS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        let tenants = [1u64, 2, 3, 40, 77, 1000, u64::MAX];
        for (i, tenant) in tenants.iter().enumerate() {
            for j in 0..3 {
                let id = (i * 10 + j) as u64;
                conn.exec_drop(INSERT, Params::Positional(item(id, *tenant)))
                    .await
                    .expect("prepared insert");
            }
        }
        let select = "SELECT id, name, price, ratio, made, day, small, big FROM items WHERE tenant_id = ? ORDER BY id";
        for tenant in tenants {
            let shard = cluster.shard_for("items", tenant);
            // Stored on the shard the topology names, and nowhere else.
            let count: Vec<u64> = cluster
                .query_shard(shard, &format!("SELECT COUNT(*) FROM items WHERE tenant_id = {tenant}"))
                .await;
            assert_eq!(count, [3], "tenant {tenant} on {}", shard.name);
            let via_proxy: Vec<Row> = conn.exec(select, (tenant,)).await.expect("prepared select");
            let mut direct = cluster.backend_of(shard).conn_db(Some(&shard.database)).await;
            let on_shard: Vec<Row> = direct.exec(select, (tenant,)).await.expect("direct select");
            assert_eq!(values(via_proxy), values(on_shard), "tenant {tenant}");
        }
        // A string parameter for an integer tenant column routes like the number, as in a text query.
        let names: Vec<Option<String>> = conn
            .exec("SELECT name FROM items WHERE tenant_id = ? AND id = ?", ("40", 31))
            .await
            .expect("string tenant");
        assert_eq!(names, [Some("item-31".to_string())]);
    })
    .await;
}

#[tokio::test]
async fn a_statement_prepared_once_runs_on_every_shard_and_in_transactions() {
    bounded(async {
        // One connection per shard and two sessions: the backend statements are shared through the pool.
        let cluster = Cluster::builder(1, 4).pool_max_size(1).start().await;
        cluster.ddl_on_every_shard(ITEMS_DDL).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        let stmt = a.prep(INSERT).await.expect("prepare");
        for id in 0..40u64 {
            a.exec_drop(&stmt, Params::Positional(item(id, id % 9)))
                .await
                .expect("execute");
        }
        b.query_drop("BEGIN").await.expect("BEGIN");
        b.exec_drop(
            "UPDATE items SET name = ? WHERE tenant_id = ?",
            ("renamed", 4),
        )
        .await
        .expect("prepared update in a transaction");
        b.query_drop("ROLLBACK").await.expect("ROLLBACK");
        let names: Vec<Option<String>> = a
            .exec(
                "SELECT name FROM items WHERE tenant_id = ? AND id = ?",
                (4, 4),
            )
            .await
            .expect("select");
        assert_eq!(
            names,
            [Some("item-4".to_string())],
            "the rolled-back update must not show"
        );
        let mut rows = 0;
        for t in 0..9u64 {
            let n: Vec<u64> = a
                .exec("SELECT COUNT(*) FROM items WHERE tenant_id = ?", (t,))
                .await
                .expect("count");
            rows += n[0];
        }
        assert_eq!(rows, 40);
        a.close(stmt).await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn statements_that_cannot_be_routed_are_refused_at_prepare_or_execute() {
    bounded(async {
        let cluster = Cluster::builder(1, 4).start().await;
        cluster.ddl_on_every_shard(ITEMS_DDL).await;
        let mut conn = cluster.proxy_conn().await;
        // Without a tenant an UPDATE would change every shard: refused when it runs (allow_scatter_writes is off).
        expect::server_error(
            conn.exec_drop("UPDATE items SET name = ? WHERE id = ?", ("x", 1))
                .await,
            codes::NOT_SUPPORTED_YET,
            "UPDATE without a tenant",
        );
        expect::server_error(
            conn.prep("INSERT INTO items (id, tenant_id) VALUES (?, ?), (?, ?)")
                .await
                .map(drop),
            codes::NOT_SUPPORTED_YET,
            "a multi-row INSERT whose tenants are parameters",
        );
        expect::server_error(
            conn.exec_drop("SELECT name FROM items WHERE tenant_id = ?", (Value::NULL,))
                .await,
            codes::NOT_SUPPORTED_YET,
            "NULL tenant",
        );
        expect::server_error(
            conn.prep("SELECT nosuch FROM items WHERE tenant_id = ?")
                .await
                .map(drop),
            codes::BAD_FIELD,
            "the server's own error at prepare",
        );
        let one: Vec<u64> = conn.exec("SELECT 1", ()).await.expect("still usable");
        assert_eq!(one, [1]);
    })
    .await;
}

/// The raw client's side of COM_STMT_*: what mysql_async never sends (long data, reset, fetch).
mod raw_commands {
    use crate::harness::raw::{RawConn, read_packet};

    pub const COM_STMT_PREPARE: u8 = 0x16;
    pub const COM_STMT_EXECUTE: u8 = 0x17;
    pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const COM_STMT_RESET: u8 = 0x1a;
    pub const COM_STMT_FETCH: u8 = 0x1c;

    /// Prepares `sql`; returns the statement id and parameter count, having read the whole reply (this client
    /// reads classic EOFs: one after non-empty parameter and column lists).
    pub async fn prepare(raw: &mut RawConn, sql: &str) -> (u32, u16) {
        raw.send_command(COM_STMT_PREPARE, sql.as_bytes()).await;
        let (_, ok) = read_packet(raw.stream()).await.expect("PREPARE_OK");
        assert_eq!(ok[0], 0, "PREPARE_OK expected, got {ok:?}");
        let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
        let columns = u16::from_le_bytes([ok[5], ok[6]]);
        let params = u16::from_le_bytes([ok[7], ok[8]]);
        let eofs = u16::from(params > 0) + u16::from(columns > 0);
        for _ in 0..params + columns + eofs {
            read_packet(raw.stream()).await.expect("definition");
        }
        (id, params)
    }

    /// The first packet of the reply to the command just sent.
    pub async fn first_reply_packet(raw: &mut RawConn) -> Vec<u8> {
        read_packet(raw.stream()).await.expect("reply").1
    }

    /// A COM_STMT_EXECUTE of statement `id` with BIGINT params `ints` followed by long-data string params
    /// (their values omitted, as the protocol wants after COM_STMT_SEND_LONG_DATA).
    pub fn execute(id: u32, ints: &[i64], long_params: usize) -> Vec<u8> {
        let n = ints.len() + long_params;
        let mut args = id.to_le_bytes().to_vec();
        args.push(0); // no cursor
        args.extend_from_slice(&1u32.to_le_bytes());
        args.extend(std::iter::repeat_n(0u8, n.div_ceil(8)));
        args.push(1); // types follow
        for _ in ints {
            args.extend_from_slice(&[0x08, 0]);
        }
        for _ in 0..long_params {
            args.extend_from_slice(&[0xfd, 0]);
        }
        for v in ints {
            args.extend_from_slice(&v.to_le_bytes());
        }
        args
    }

    pub fn long_data(id: u32, param: u16, data: &[u8]) -> Vec<u8> {
        let mut args = id.to_le_bytes().to_vec();
        args.extend_from_slice(&param.to_le_bytes());
        args.extend_from_slice(data);
        args
    }
}

#[tokio::test]
async fn long_data_reset_and_fetch_behave_as_on_mysql() {
    use raw_commands::*;
    bounded(async {
        let cluster = Cluster::builder(1, 4).start().await;
        cluster.ddl_on_every_shard(ITEMS_DDL).await;
        let mut raw =
            crate::harness::raw::RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
                .await
                .expect("raw login");
        let (id, params) = prepare(
            &mut raw,
            "INSERT INTO items (id, tenant_id, name) VALUES (?, ?, ?)",
        )
        .await;
        assert_eq!(params, 3);
        // Two chunks for parameter 2; no replies to them.
        raw.send_command(COM_STMT_SEND_LONG_DATA, &long_data(id, 2, b"hello "))
            .await;
        raw.send_command(COM_STMT_SEND_LONG_DATA, &long_data(id, 2, b"world"))
            .await;
        raw.send_command(COM_STMT_EXECUTE, &execute(id, &[1, 5], 1))
            .await;
        let ok = first_reply_packet(&mut raw).await;
        assert_eq!(ok[..2], [0, 1], "OK with one affected row, got {ok:?}");
        let shard = cluster.shard_for("items", 5);
        let names: Vec<String> = cluster
            .query_shard(shard, "SELECT name FROM items WHERE tenant_id = 5")
            .await;
        assert_eq!(names, ["hello world"]);

        // COM_STMT_RESET drops buffered long data: the next execute must carry the value itself.
        raw.send_command(COM_STMT_SEND_LONG_DATA, &long_data(id, 2, b"discarded"))
            .await;
        let reset = raw.command(COM_STMT_RESET, &id.to_le_bytes()).await;
        reset.expect_ok("COM_STMT_RESET");
        // With no long data now, parameter 2 must be in the packet: send it inline.
        let mut typed = id.to_le_bytes().to_vec();
        typed.push(0); // no cursor
        typed.extend_from_slice(&1u32.to_le_bytes());
        typed.push(0); // null bitmap: none
        typed.push(1); // types follow
        typed.extend_from_slice(&[0x08, 0, 0x08, 0, 0xfd, 0]);
        typed.extend_from_slice(&2i64.to_le_bytes());
        typed.extend_from_slice(&5i64.to_le_bytes());
        typed.push(6);
        typed.extend_from_slice(b"inline");
        raw.send_command(COM_STMT_EXECUTE, &typed).await;
        let ok = first_reply_packet(&mut raw).await;
        assert_eq!(ok[0], 0, "OK expected, got {ok:?}");
        let names: Vec<String> = cluster
            .query_shard(
                shard,
                "SELECT name FROM items WHERE tenant_id = 5 ORDER BY id",
            )
            .await;
        assert_eq!(names, ["hello world", "inline"]);

        let fetch = raw
            .command(
                COM_STMT_FETCH,
                &[&id.to_le_bytes()[..], &1u32.to_le_bytes()].concat(),
            )
            .await;
        assert_eq!(fetch.expect_err("COM_STMT_FETCH").code, 1421);
        let unknown = raw.command(COM_STMT_RESET, &999u32.to_le_bytes()).await;
        assert_eq!(unknown.expect_err("unknown statement").code, 1243);
        raw.ping().await.expect_ok("still usable");
    })
    .await;
}
