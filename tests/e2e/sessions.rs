//! Session state and statements the proxy answers or refuses itself: `DATABASE()`, the variables it owns, `SHOW
//! DATABASES`, `USE`, `SET NAMES` (tracked per session, applied lazily on whichever backend connection serves a
//! statement, and never leaking to the next client of that connection), DDL fan-out that fails on one shard,
//! and executable comments. Transactions and session variables are in `transactions.rs`.
//!
//! What a client sees is checked through the proxy; what was stored, directly on the shard database.

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::outcome::{self, Outcome};
use crate::harness::raw::{DetailedReply, RawConn};
use crate::harness::schema::{ORDERS_DDL, insert_order, start_with_orders};
use crate::harness::{Cluster, bounded};

/// Rows of a result set as bytes.
type Rows = Vec<Vec<Option<Vec<u8>>>>;

/// A cell holding `text`.
fn cell(text: &str) -> Option<Vec<u8>> {
    Some(text.as_bytes().to_vec())
}

/// Runs `sql` through mysql_async; returns the column names and rows, failing on anything but a result set.
async fn select(conn: &mut mysql_async::Conn, sql: &str) -> (Vec<String>, Rows) {
    match outcome::via_mysql_async(conn, sql).await {
        Outcome::Rows { columns, rows } => (columns.into_iter().map(|c| c.name).collect(), rows),
        other => panic!("`{sql}`: expected a result set, got {other:?}"),
    }
}

/// Runs `sql` (any bytes) through the raw client; returns the rows, failing on anything but a result set.
async fn raw_select(conn: &mut RawConn, sql: &[u8]) -> (Vec<String>, Rows) {
    match conn.query_detailed(sql).await {
        DetailedReply::Rows { columns, rows } => {
            let names = columns
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c.name).into_owned())
                .collect();
            (names, rows)
        }
        other => panic!(
            "`{}`: expected a result set, got {other:?}",
            String::from_utf8_lossy(sql)
        ),
    }
}

/// A raw session through the proxy, as `app` on keyspace `app`.
async fn raw_login(cluster: &Cluster) -> RawConn {
    RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
        .await
        .expect("raw login to the proxy refused")
}

/// The note of order `id` of `tenant`, read directly on the tenant's shard with a utf8mb4 connection.
async fn stored_note(cluster: &Cluster, tenant: u64, id: u64) -> String {
    let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant} AND id = {id}");
    let notes: Vec<String> = cluster
        .query_shard(cluster.shard_for("orders", tenant), &sql)
        .await;
    assert_eq!(
        notes.len(),
        1,
        "order {id} of tenant {tenant} on its shard: {notes:?}"
    );
    notes.into_iter().next().unwrap_or_default()
}

/// Asserts that `conn` still routes: writes an order for `tenant`, reads it back, and finds it on the shard.
async fn assert_usable(cluster: &Cluster, conn: &mut mysql_async::Conn, id: u64, tenant: u64) {
    conn.query_drop(insert_order(id, tenant, "still-usable"))
        .await
        .expect("the session must stay usable");
    let notes: Vec<String> = conn
        .query(format!(
            "SELECT note FROM orders WHERE tenant_id = {tenant} AND id = {id}"
        ))
        .await
        .expect("the session must stay usable");
    assert_eq!(notes, ["still-usable"]);
    assert_eq!(stored_note(cluster, tenant, id).await, "still-usable");
}

#[tokio::test]
async fn select_database_answers_the_keyspace_under_the_column_name_database() {
    bounded(async {
        let cluster = Cluster::start(2, 8).await;
        let mut conn = cluster.proxy_conn().await;
        let expected = (vec!["DATABASE()".to_owned()], vec![vec![cell("app")]]);
        assert_eq!(
            select(&mut conn, "SELECT DATABASE()").await,
            expected,
            "mysql_async"
        );
        let mut raw = raw_login(&cluster).await;
        assert_eq!(
            raw_select(&mut raw, b"SELECT DATABASE()").await,
            expected,
            "raw client"
        );
    })
    .await;
}

#[tokio::test]
async fn proxy_owned_variables_answer_the_configured_packet_limit_and_a_null_socket() {
    bounded(async {
        let limit: u64 = 3 << 20;
        let cluster = Cluster::builder(2, 8)
            .max_allowed_packet(limit)
            .start()
            .await;
        // What the backend would have said, so the test proves the proxy answered, not the backend.
        let backend: Vec<(u64, Option<String>)> = cluster.backends()[0]
            .query(None, "SELECT @@max_allowed_packet, @@socket")
            .await;
        assert!(
            backend[0].0 != limit && backend[0].1.is_some(),
            "backend: {backend:?}"
        );

        let sql = "SELECT @@max_allowed_packet, @@socket";
        let expected = (
            vec!["@@max_allowed_packet".to_owned(), "@@socket".to_owned()],
            vec![vec![cell(&limit.to_string()), None]],
        );
        let mut conn = cluster.proxy_conn().await;
        assert_eq!(select(&mut conn, sql).await, expected, "mysql_async");
        let mut raw = raw_login(&cluster).await;
        assert_eq!(
            raw_select(&mut raw, sql.as_bytes()).await,
            expected,
            "raw client"
        );
    })
    .await;
}

#[tokio::test]
async fn show_databases_lists_the_keyspace_and_hides_the_shard_databases() {
    bounded(async {
        let cluster = Cluster::start(2, 8).await;
        let on_backend: Vec<String> = cluster.backends()[0].query(None, "SHOW DATABASES").await;
        assert!(
            on_backend.iter().any(|db| db == "app_000"),
            "backend: {on_backend:?}"
        );
        let expected = (
            vec!["Database".to_owned()],
            vec![vec![cell("information_schema")], vec![cell("app")]],
        );
        let mut conn = cluster.proxy_conn().await;
        assert_eq!(
            select(&mut conn, "SHOW DATABASES").await,
            expected,
            "mysql_async"
        );
        let mut raw = raw_login(&cluster).await;
        assert_eq!(
            raw_select(&mut raw, b"SHOW DATABASES").await,
            expected,
            "raw client"
        );
    })
    .await;
}

#[tokio::test]
async fn show_databases_with_a_pattern_never_lists_shard_databases() {
    bounded(async {
        let cluster = Cluster::start(2, 8).await;
        let mut conn = cluster.proxy_conn().await;
        for sql in [
            "SHOW DATABASES LIKE 'app%'",
            "SHOW DATABASES LIKE '%'",
            "/* a comment first */ SHOW DATABASES",
            "show schemas like 'a%' -- trailing comment",
        ] {
            let (_, rows) = select(&mut conn, sql).await;
            let listed: Vec<String> = rows
                .iter()
                .map(|row| {
                    String::from_utf8_lossy(row[0].as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            for shard in cluster.shards() {
                assert!(
                    !listed.contains(&shard.database),
                    "`{sql}` lists shard database {}: {listed:?}",
                    shard.database
                );
            }
            assert!(
                listed.iter().any(|db| db == "app"),
                "`{sql}` must list the keyspace: {listed:?}"
            );
        }
        // Anything past the pattern would be pasted into a statement the backend runs: refused, not evaluated.
        for sql in [
            "SHOW DATABASES WHERE `Database` <> ''",
            "SHOW DATABASES LIKE 'x' INTO OUTFILE '/tmp/shardgate-show-databases'",
            "SHOW DATABASES LIKE 'x' INTO @v",
        ] {
            let message =
                expect::server_error(conn.query_drop(sql).await, codes::NOT_SUPPORTED_YET, sql);
            assert!(!message.is_empty(), "{sql}");
        }
        assert!(!std::path::Path::new("/tmp/shardgate-show-databases").exists());
        let (_, rows) = select(&mut conn, "SHOW DATABASES").await;
        assert_eq!(rows.len(), 2, "the session stays usable");
    })
    .await;
}

#[tokio::test]
async fn use_of_the_keyspace_is_ok_and_of_any_other_database_gets_1049_leaving_the_session_usable()
{
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("USE app").await.expect("USE app refused");
        for db in ["other", "app_000", "information_schema_x"] {
            let sql = format!("USE {db}");
            let message =
                expect::server_error(conn.query_drop(&sql).await, codes::UNKNOWN_DATABASE, &sql);
            assert_eq!(message, format!("Unknown database '{db}'"));
        }
        assert_eq!(
            select(&mut conn, "SELECT DATABASE()").await.1,
            vec![vec![cell("app")]],
            "a refused USE must not change the database"
        );
        assert_usable(&cluster, &mut conn, 1, 7).await;
    })
    .await;
}

#[tokio::test]
async fn set_names_latin1_round_trips_non_ascii_text_as_the_backend_stores_it() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let tenant = 11;
        let mut raw = raw_login(&cluster).await;
        raw.query("SET NAMES latin1")
            .await
            .expect_ok("SET NAMES latin1");
        // "café déjà vu" in latin1: one byte per accented letter, not valid UTF-8.
        let mut insert =
            format!("INSERT INTO orders (id, tenant_id, note) VALUES (1, {tenant}, '").into_bytes();
        insert.extend_from_slice(b"caf\xe9 d\xe9j\xe0 vu')");
        match raw.query_detailed(&insert).await {
            DetailedReply::Ok {
                affected_rows: 1, ..
            } => {}
            other => panic!("latin1 INSERT: {other:?}"),
        }
        assert_eq!(
            stored_note(&cluster, tenant, 1).await,
            "café déjà vu",
            "what the backend stored"
        );

        // Text written by a utf8mb4 client reads back in latin1 on this session.
        let mut utf8 = cluster.proxy_conn().await;
        utf8.query_drop(format!(
            "INSERT INTO orders (id, tenant_id, note) VALUES (2, {tenant}, 'grüße')"
        ))
        .await
        .expect("utf8mb4 INSERT");
        assert_eq!(stored_note(&cluster, tenant, 2).await, "grüße");
        let sql = format!("SELECT note FROM orders WHERE tenant_id = {tenant} ORDER BY id");
        let (_, rows) = raw_select(&mut raw, sql.as_bytes()).await;
        assert_eq!(
            rows,
            vec![
                vec![Some(b"caf\xe9 d\xe9j\xe0 vu".to_vec())],
                vec![Some(b"gr\xfc\xdfe".to_vec())]
            ],
            "the latin1 session must read latin1 bytes"
        );
        // And the utf8mb4 client reads both as UTF-8.
        let (_, rows) = select(&mut utf8, &sql).await;
        assert_eq!(rows, vec![vec![cell("café déjà vu")], vec![cell("grüße")]]);
    })
    .await;
}

#[tokio::test]
async fn set_names_of_an_unknown_charset_gets_1115_and_the_session_keeps_its_charset() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let mut conn = cluster.proxy_conn().await;
        let sql = "SET NAMES klingon";
        let message = expect::server_error(
            conn.query_drop(sql).await,
            codes::UNKNOWN_CHARACTER_SET,
            sql,
        );
        assert!(message.contains("klingon"), "message: {message:?}");
        let note = "grüße ✓ 🚀";
        conn.query_drop(format!(
            "INSERT INTO orders (id, tenant_id, note) VALUES (1, 5, '{note}')"
        ))
        .await
        .expect("the session must stay usable");
        assert_eq!(
            stored_note(&cluster, 5, 1).await,
            note,
            "what the backend stored"
        );
        let (_, rows) = select(&mut conn, "SELECT note FROM orders WHERE tenant_id = 5").await;
        assert_eq!(
            rows,
            vec![vec![cell(note)]],
            "read back on the same session"
        );
    })
    .await;
}

#[tokio::test]
async fn set_names_with_a_collation_mariadb_rejects_fails_and_leaves_the_session_usable() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let mut conn = cluster.proxy_conn().await;
        conn.query_drop("INSERT INTO orders (id, tenant_id, note) VALUES (1, 5, 'grüße')")
            .await
            .expect("INSERT");
        // MariaDB refuses both at once (1253 COLLATION_CHARSET_MISMATCH, 1273 UNKNOWN_COLLATION) and keeps the
        // session's character set.
        for sql in [
            "SET NAMES latin1 COLLATE utf8mb4_bin",
            "SET NAMES utf8mb4 COLLATE nosuch_ci",
        ] {
            let set = conn.query_drop(sql).await;
            let next: Result<Vec<String>, _> = conn
                .query("SELECT note FROM orders WHERE tenant_id = 5")
                .await;
            match next {
                Ok(notes) => assert_eq!(notes, ["grüße"], "after `{sql}`"),
                Err(e) => {
                    panic!("after `{sql}` (answered {set:?}), the next statement failed: {e}")
                }
            }
            assert!(
                set.is_err(),
                "`{sql}` must fail as it does on MariaDB, not answer OK"
            );
        }
    })
    .await;
}

/// How many sessions to open, at most, before one is served by a given backend connection.
const MAX_SESSIONS_TO_SHARE: usize = 64;

#[tokio::test]
async fn session_charset_does_not_leak_to_the_next_client_of_a_backend_connection() {
    bounded(async {
        // One backend connection per shard: both clients' statements on a tenant share it.
        let cluster = start_with_orders(Cluster::builder(2, 8).pool_max_size(1)).await;
        let tenant = 21;
        let direct = cluster.backend_of(cluster.shard_for("orders", tenant));
        let database = &cluster.shard_for("orders", tenant).database;
        direct
            .exec(&format!("INSERT INTO `{database}`.orders (id, tenant_id, note) VALUES (1, {tenant}, 'grüße'), (2, {tenant}, 'grüße ✓ 🚀')"))
            .await;
        let sql = format!("SELECT CONNECTION_ID(), note FROM orders WHERE tenant_id = {tenant} ORDER BY id");

        let mut latin1 = raw_login(&cluster).await;
        latin1.query("SET NAMES latin1").await.expect_ok("SET NAMES latin1");
        let (_, a) = raw_select(&mut latin1, sql.as_bytes()).await;
        assert_eq!(a[0][1], Some(b"gr\xfc\xdfe".to_vec()), "client A reads latin1");

        // The proxy may split a shard's pool between worker threads that take sessions in turn: open sessions
        // until one is served by A's backend connection. Every one of them must read UTF-8.
        let mut shared = None;
        for _ in 0..MAX_SESSIONS_TO_SHARE {
            let mut utf8 = cluster.proxy_conn().await;
            let (_, b) = select(&mut utf8, &sql).await;
            assert_eq!(
                b.iter().map(|row| row[1].clone()).collect::<Vec<_>>(),
                vec![cell("grüße"), cell("grüße ✓ 🚀")],
                "client B (utf8mb4) must not read in client A's latin1"
            );
            if b[0][0] == a[0][0] {
                shared = Some(utf8);
                break;
            }
        }
        let mut utf8 = shared.expect("no session was served by client A's backend connection");
        utf8.query_drop(format!("INSERT INTO orders (id, tenant_id, note) VALUES (3, {tenant}, 'B ✓ wrote')"))
            .await
            .expect("client B's INSERT");
        assert_eq!(stored_note(&cluster, tenant, 3).await, "B ✓ wrote", "B's text as stored");

        // A's setting is still A's.
        let (_, a) = raw_select(&mut latin1, sql.as_bytes()).await;
        let (_, b) = select(&mut utf8, &sql).await;
        assert_eq!(a[0][0], b[0][0], "same backend connection again");
        assert_eq!(a[0][1], Some(b"gr\xfc\xdfe".to_vec()), "client A still reads latin1");
        assert_eq!(b[0][1], cell("grüße"), "client B still reads UTF-8");
    })
    .await;
}

#[tokio::test]
async fn ddl_failing_on_one_shard_gets_1430_naming_that_shard_and_still_reaches_the_others() {
    bounded(async {
        let cluster = Cluster::start(2, 8).await;
        let victim = cluster.shards()[5].clone();
        cluster
            .backend_of(&victim)
            .exec(&format!("CREATE TABLE `{}`.audit (id INT PRIMARY KEY, marker VARCHAR(10))", victim.database))
            .await;
        let mut conn = cluster.proxy_conn().await;
        let sql = "CREATE TABLE audit (id BIGINT PRIMARY KEY, tenant_id BIGINT UNSIGNED NOT NULL, what VARCHAR(20))";
        let message = expect::server_error(conn.query_drop(sql).await, codes::DDL_FAN_OUT_FAILED, sql);
        assert!(
            message.contains("1 of 8") && message.contains(&format!("{}: ", victim.name)),
            "the message must name the one failed shard: {message:?}"
        );
        assert!(message.contains("already exists"), "the message must carry MariaDB's reason: {message:?}");
        for shard in cluster.shards().iter().filter(|s| s.name != victim.name) {
            let named = message.contains(&format!("{}: ", shard.name));
            assert!(!named, "{message:?} names shard {}, which succeeded", shard.name);
        }
        let columns = "SELECT column_name FROM information_schema.columns \
                       WHERE table_schema = DATABASE() AND table_name = 'audit' ORDER BY ordinal_position";
        for shard in cluster.shards() {
            let got: Vec<String> = cluster.query_shard(shard, columns).await;
            let expected = if shard.name == victim.name {
                ["id", "marker"].as_slice()
            } else {
                ["id", "tenant_id", "what"].as_slice()
            };
            assert_eq!(got, expected, "audit on shard {} ({})", shard.name, shard.database);
        }
        conn.query_drop("INSERT INTO audit (id, tenant_id, what) VALUES (1, 1, 'ok')")
            .await
            .unwrap_or_else(|e| panic!("the session must stay usable: {e}"));
    })
    .await;
}

/// Statement counters of every backend: `Com_select`, `Com_insert`, `Com_update`, `Com_delete`.
async fn statement_counters(conns: &mut [mysql_async::Conn]) -> Vec<Vec<(String, u64)>> {
    let mut all = Vec::new();
    for conn in conns {
        let rows: Vec<(String, u64)> = conn
            .query(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_insert', 'Com_update', 'Com_delete')",
            )
            .await
            .expect("SHOW GLOBAL STATUS");
        all.push(rows);
    }
    all
}

#[tokio::test]
async fn executable_comments_are_read_as_the_server_reads_them() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 8)).await;
        let mut conn = cluster.proxy_conn().await;
        for (id, tenant) in [(1, 1), (2, 2)] {
            conn.query_drop(insert_order(id, tenant, "kept"))
                .await
                .expect("INSERT");
        }
        // The content of a comment for this server version is part of the statement: both tenants' rows.
        for sql in [
            "SELECT note FROM orders WHERE tenant_id = 1 /*! OR 1=1 */",
            "SELECT note FROM orders WHERE tenant_id = 1 /*!50000 OR 1=1 */",
            "SELECT note FROM orders WHERE tenant_id = 1 /*M! OR 1=1 */",
        ] {
            let notes: Vec<String> = conn.query(sql).await.expect(sql);
            assert_eq!(notes, ["kept", "kept"], "{sql}");
        }
        // A comment for a newer server is a comment; dump tools' hints are read.
        let notes: Vec<String> = conn
            .query("SELECT /*!40001 SQL_NO_CACHE */ note FROM orders WHERE tenant_id = 1 /*!999999 OR 1=1 */")
            .await
            .expect("version-gated comments");
        assert_eq!(notes, ["kept"]);
        // Writes that the content widens to every shard are refused, and reach no backend.
        let mut watchers = Vec::new();
        for backend in cluster.backends() {
            watchers.push(backend.conn().await);
        }
        let before = statement_counters(&mut watchers).await;
        for sql in [
            "DELETE FROM orders WHERE tenant_id = 1 /*!  OR 1=1 */",
            "UPDATE orders SET note = 'leak' WHERE tenant_id = 1 /*! OR 1=1 */",
        ] {
            expect::server_error(conn.query_drop(sql).await, codes::NOT_SUPPORTED_YET, sql);
        }
        expect::server_error(
            conn.query_drop("SELECT 1 /*! + 1").await,
            codes::PARSE_ERROR,
            "an executable comment left open",
        );
        let after = statement_counters(&mut watchers).await;
        assert_eq!(after, before, "a refused statement reached a backend");
        for tenant in [1, 2] {
            assert_eq!(
                stored_note(&cluster, tenant, tenant).await,
                "kept",
                "tenant {tenant}'s row"
            );
        }
        assert_usable(&cluster, &mut conn, 3, 1).await;
    })
    .await;
}

#[tokio::test]
async fn information_schema_describes_the_keyspace_tables_as_drivers_and_dump_tools_ask() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(2, 4)).await;
        let mut conn = cluster.proxy_conn().await;
        let tables: Vec<String> = conn
            .query(
                "SELECT table_name FROM INFORMATION_SCHEMA.TABLES WHERE table_schema = DATABASE() \
                 AND table_name = 'orders'",
            )
            .await
            .expect("information_schema.tables");
        assert_eq!(tables, ["orders"]);
        let columns: Vec<String> = conn
            .query(
                "select column_name from information_schema.columns where table_schema=database() \
                 and table_name='orders' order by ordinal_position",
            )
            .await
            .expect("information_schema.columns");
        assert_eq!(columns, ["id", "tenant_id", "note"]);
        // A join of information_schema views (as mariadb-dump sends) is not a join of sharded tables.
        let files: Vec<String> = conn
            .query(
                "SELECT DISTINCT TABLESPACE_NAME FROM INFORMATION_SCHEMA.FILES WHERE FILE_TYPE = 'UNDO LOG' \
                 AND TABLESPACE_NAME IN (SELECT DISTINCT TABLESPACE_NAME FROM INFORMATION_SCHEMA.FILES)",
            )
            .await
            .expect("information_schema.files");
        assert!(files.is_empty());
        // Other server schemas stay out of reach.
        expect::server_error(
            conn.query_drop("SELECT user FROM mysql.user").await,
            codes::NOT_SUPPORTED_YET,
            "mysql.user",
        );
    })
    .await;
}

#[tokio::test]
async fn show_warnings_lists_what_the_sessions_previous_statement_left() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 2).pool_max_size(1)).await;
        let mut flat = cluster.flat_database(&[ORDERS_DDL]).await;
        let mut a = cluster.proxy_conn().await;
        let mut b = cluster.proxy_conn().await;
        let with_warning = "SELECT note FROM orders WHERE tenant_id = 5 AND id = 'abc'";
        let _: Vec<String> = a
            .query(with_warning)
            .await
            .expect("a statement with a warning");
        let _: Vec<String> = flat.query(with_warning).await.expect("the same, directly");
        // Another session using the same (only) backend connection in between changes nothing for `a`.
        let _: Vec<u64> = b.query("SELECT 1").await.expect("b");
        type Row = (String, u64, String);
        let via_proxy: Vec<Row> = a.query("SHOW WARNINGS").await.expect("SHOW WARNINGS");
        let direct: Vec<Row> = flat
            .query("SHOW WARNINGS")
            .await
            .expect("SHOW WARNINGS directly");
        assert!(
            !direct.is_empty(),
            "the statement must leave a warning on MariaDB"
        );
        assert_eq!(via_proxy, direct);
        let count: Vec<u64> = a.query("SHOW COUNT(*) WARNINGS").await.expect("count");
        assert_eq!(count, [direct.len() as u64]);
        let count: Vec<u64> = a
            .query("SELECT @@warning_count")
            .await
            .expect("@@warning_count");
        assert_eq!(count, [direct.len() as u64]);
        // The next statement starts afresh; an error is listed as MySQL lists it.
        let _: Vec<u64> = a.query("SELECT 1").await.expect("clean statement");
        let none: Vec<Row> = a.query("SHOW WARNINGS").await.expect("SHOW WARNINGS");
        assert!(none.is_empty());
        assert!(a.query_drop("SELECT FOUND_ROWS()").await.is_err());
        let error: Vec<Row> = a
            .query("SHOW WARNINGS")
            .await
            .expect("SHOW WARNINGS after an error");
        assert_eq!(error.len(), 1);
        assert_eq!((error[0].0.as_str(), error[0].1), ("Error", 1235));
    })
    .await;
}

#[tokio::test]
async fn version_is_the_one_the_handshake_advertised() {
    bounded(async {
        let cluster = start_with_orders(Cluster::builder(1, 2)).await;
        let mut conn = cluster.proxy_conn().await;
        let advertised = conn.server_version();
        let (version, variable): (String, String) = conn
            .query_first("SELECT VERSION(), @@version")
            .await
            .expect("VERSION()")
            .expect("a row");
        assert_eq!(version, variable);
        assert!(version.ends_with("-shardgate"), "{version}");
        let numbers: Vec<u16> = version
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse().expect("a number"))
            .collect();
        assert_eq!(numbers, [advertised.0, advertised.1, advertised.2]);
    })
    .await;
}
