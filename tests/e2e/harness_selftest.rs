//! The harness checked against real MariaDB, without the proxy: servers start in parallel on their own ports and
//! go away with their handles, and the raw client's handshake, commands and error parsing work against the real
//! thing, so that a failing proxy test points at the proxy and not at the harness. The same checks the proxy
//! tests make (error codes, closing on oversized packets) are shown here to be what MariaDB itself does.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::harness::expect::{self, codes};
use crate::harness::raw::{self, RawConn};
use crate::harness::{MariaDb, bounded, cli};

/// Creates user `app`/`app` on a bare server, as the proxy's users look to clients.
async fn with_app_user(server: &MariaDb) {
    server
        .exec("CREATE USER app@'%' IDENTIFIED BY 'app'; GRANT ALL ON *.* TO app@'%'; CREATE DATABASE app; CREATE TABLE app.t (a INT)")
        .await;
}

#[tokio::test]
async fn mariadb_servers_start_in_parallel_on_their_own_ports_and_answer_queries() {
    bounded(async {
        let (a, b, c) = tokio::join!(MariaDb::start(), MariaDb::start(), MariaDb::start());
        let mut ports = vec![a.port(), b.port(), c.port()];
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3, "servers share a port");
        for server in [&a, &b, &c] {
            let mut conn = server.conn().await;
            let (one, socket): (i64, String) = conn
                .query_first("SELECT 1, @@socket")
                .await
                .expect("query failed")
                .expect("no row");
            assert_eq!(one, 1);
            assert_eq!(
                socket,
                server.socket_path().display().to_string(),
                "connected to somebody else's server"
            );
            conn.disconnect().await.expect("disconnect failed");
        }
    })
    .await;
}

#[tokio::test]
async fn dropping_a_mariadb_kills_it_and_removes_its_files() {
    bounded(async {
        let server = MariaDb::start().await;
        let pid = server.pid();
        let folder = server
            .socket_path()
            .parent()
            .expect("socket is in the server's folder")
            .to_path_buf();
        assert!(folder.join("data").is_dir());
        drop(server);
        assert!(
            !folder.exists(),
            "datadir left behind: {}",
            folder.display()
        );
        // Killed and reaped: no process (not even a zombie) is left with its pid.
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "mariadbd (pid {pid}) is still there"
        );
    })
    .await;
}

#[tokio::test]
async fn raw_client_logs_in_and_runs_commands_on_real_mariadb() {
    bounded(async {
        let server = MariaDb::start().await;
        with_app_user(&server).await;

        let mut conn = RawConn::login(server.port(), "app", "app", None)
            .await
            .expect("login refused");
        assert!(
            conn.handshake.server_version.contains("MariaDB"),
            "{:?}",
            conn.handshake
        );
        conn.ping().await.expect_ok("COM_PING");
        conn.init_db("app").await.expect_ok("COM_INIT_DB app");
        let rows = conn
            .query("SELECT DATABASE(), NULL, 'x'")
            .await
            .expect_rows("SELECT");
        assert_eq!(
            rows,
            vec![vec![Some("app".to_owned()), None, Some("x".to_owned())]]
        );
        assert_eq!(
            conn.query("INSERT INTO t VALUES (1), (2)")
                .await
                .expect_ok("INSERT"),
            2
        );
        let err = conn.init_db("nope").await.expect_err("COM_INIT_DB nope");
        expect::raw_error(
            &err,
            codes::UNKNOWN_DATABASE,
            "COM_INIT_DB to a missing database",
        );
        let err = conn.command(0x42, b"").await.expect_err("unknown command");
        expect::raw_error(&err, codes::UNKNOWN_COMMAND, "unknown command byte");
        conn.reset_connection()
            .await
            .expect_ok("COM_RESET_CONNECTION");
        conn.ping().await.expect_ok("COM_PING after the errors");

        let with_db = RawConn::login(server.port(), "app", "app", Some("app"))
            .await
            .expect("login with db refused");
        drop(with_db);
        let refused = RawConn::login(server.port(), "app", "wrong", None)
            .await
            .err()
            .expect("wrong password accepted");
        let message = expect::raw_error(&refused, codes::ACCESS_DENIED, "wrong password");
        assert_eq!(
            message,
            "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );
    })
    .await;
}

#[tokio::test]
async fn mysql_async_reports_access_denied_the_way_the_proxy_must() {
    bounded(async {
        let server = MariaDb::start().await;
        with_app_user(&server).await;
        let url = format!("mysql://app:wrong@127.0.0.1:{}/app", server.port());
        let result = mysql_async::Conn::from_url(url).await;
        let message = expect::server_error(result, codes::ACCESS_DENIED, "wrong password");
        assert_eq!(
            message,
            "Access denied for user 'app'@'127.0.0.1' (using password: YES)"
        );
    })
    .await;
}

#[tokio::test]
async fn real_mariadb_answers_an_oversized_packet_with_1153_and_closes() {
    bounded(async {
        let server = MariaDb::start_with(&["--max-allowed-packet=1M"]).await;
        with_app_user(&server).await;
        let conn = RawConn::login(server.port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        let (mut reader, mut writer) = conn.into_stream().into_split();
        let mut query = vec![raw::COM_QUERY];
        query.extend_from_slice(b"SELECT '");
        query.resize(2 * 1024 * 1024, b'x');
        query.push(b'\'');
        // The server may stop reading mid-packet: write in the background and ignore write errors.
        let writing = tokio::spawn(async move {
            let _ = tokio::io::AsyncWriteExt::write_all(&mut writer, &raw::packet_bytes(0, &query))
                .await;
            writer
        });
        let closed = raw::read_until_closed(&mut reader, Duration::from_secs(30)).await;
        let errors = closed.errors();
        assert_eq!(
            errors.len(),
            1,
            "expected one ERR before the close, got {closed:?}"
        );
        expect::raw_error(
            &errors[0],
            codes::PACKET_TOO_LARGE,
            "2 MiB packet over a 1 MiB limit",
        );
        drop(writing.await);
    })
    .await;
}

#[tokio::test]
async fn mariadb_cli_runs_in_batch_and_interactive_mode_against_real_mariadb() {
    bounded(async {
        let server = MariaDb::start().await;
        with_app_user(&server).await;
        server.exec("INSERT INTO app.t VALUES (7)").await;
        let out = cli::batch(server.port(), &[], "SELECT a FROM t")
            .await
            .success("batch");
        assert_eq!(cli::tsv_rows(&out), vec![vec!["a"], vec!["7"]]);
        let out = cli::interactive(server.port(), &["-A"], "SELECT a FROM t;")
            .await
            .success("interactive");
        assert!(out.contains("Server version:"), "no banner in:\n{out}");
        assert_eq!(cli::table_rows(&out), vec![vec!["a"], vec!["7"]]);
    })
    .await;
}
