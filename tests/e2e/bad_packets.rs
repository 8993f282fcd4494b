//! Bad packets: an unknown command gets an error and the session goes on; a truncated packet, a garbage handshake
//! response or a packet over `max_allowed_packet` ends that one connection, and only that one: a client connected
//! at the same time keeps working, new clients get in, the proxy process stays up.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::io::AsyncWriteExt;

use crate::harness::expect::{self, codes};
use crate::harness::raw::{self, RawConn};
use crate::harness::schema::{ORDERS_DDL, insert_order};
use crate::harness::{Cluster, bounded};

/// How long the proxy may take to close a connection it should drop.
const CLOSE_ALLOWANCE: Duration = Duration::from_secs(15);

/// A cluster with `orders`, and a bystander client that has already written an order for tenant 7.
async fn cluster_with_bystander(cluster: Cluster) -> (Cluster, mysql_async::Conn) {
    cluster.ddl_on_every_shard(ORDERS_DDL).await;
    let mut bystander = cluster.proxy_conn().await;
    bystander
        .query_drop(insert_order(1, 7, "bystander"))
        .await
        .expect("bystander insert failed");
    (cluster, bystander)
}

/// The bystander still reads its order, a new client gets in, and the proxy is still running.
async fn assert_others_unaffected(cluster: &mut Cluster, bystander: &mut mysql_async::Conn) {
    let notes: Vec<String> = bystander
        .query("SELECT note FROM orders WHERE tenant_id = 7")
        .await
        .expect("a connection open at the same time must keep working");
    assert_eq!(notes, ["bystander"]);
    let mut newcomer = cluster.proxy_conn().await;
    newcomer.ping().await.expect("a new client must get in");
    newcomer.disconnect().await.expect("disconnect failed");
    assert!(cluster.proxy_mut().is_running(), "the proxy process died");
}

/// Asserts that the peer sent nothing but ERR packets before closing.
fn assert_only_errors_before_close(closed: &raw::Closed, what: &str) {
    assert!(
        closed.only_errors(),
        "{what}: the proxy sent something other than an error before closing: {:?}",
        String::from_utf8_lossy(&closed.bytes)
    );
}

#[tokio::test]
async fn unknown_command_byte_gets_1047_and_the_connection_stays_usable() {
    bounded(async {
        let cluster = Cluster::start(1, 2).await;
        let mut conn = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        for command in [0x42u8, 0xee] {
            let err = conn
                .command(command, b"junk")
                .await
                .expect_err("unknown command");
            expect::raw_error(
                &err,
                codes::UNKNOWN_COMMAND,
                &format!("command byte 0x{command:02x}"),
            );
            conn.ping()
                .await
                .expect_ok("COM_PING after an unknown command");
        }
    })
    .await;
}

#[tokio::test]
async fn truncated_packet_closes_only_that_connection() {
    bounded(async {
        let (mut cluster, mut bystander) = cluster_with_bystander(Cluster::start(1, 2).await).await;
        let mut victim = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused")
            .into_stream();
        // A header announcing 100 bytes, 7 of them, then end of stream.
        let mut bytes = vec![100, 0, 0, 0, raw::COM_QUERY];
        bytes.extend_from_slice(b"SELECT");
        victim
            .write_all(&bytes)
            .await
            .expect("cannot send the truncated packet");
        victim.shutdown().await.expect("cannot half-close");
        let closed = raw::read_until_closed(&mut victim, CLOSE_ALLOWANCE).await;
        assert_only_errors_before_close(&closed, "truncated packet");
        assert_others_unaffected(&mut cluster, &mut bystander).await;
    })
    .await;
}

#[tokio::test]
async fn garbage_handshake_response_closes_only_that_connection() {
    bounded(async {
        let (mut cluster, mut bystander) = cluster_with_bystander(Cluster::start(1, 2).await).await;
        let garbage: [Vec<u8>; 3] = [
            vec![0xff; 12], // far too short for a HandshakeResponse41
            vec![0x00; 64], // no capabilities at all (a pre-4.1 client)
            (0..200u32).map(|i| (i * 37 + 11) as u8).collect(), // noise with random-looking flags
        ];
        for payload in garbage {
            let (mut stream, _greeting) = raw::greet(cluster.proxy_port()).await;
            raw::write_packet(&mut stream, 1, &payload)
                .await
                .expect("cannot send the garbage");
            let closed = raw::read_until_closed(&mut stream, CLOSE_ALLOWANCE).await;
            assert_only_errors_before_close(
                &closed,
                &format!("garbage handshake response {:?}", &payload[..8]),
            );
        }
        assert_others_unaffected(&mut cluster, &mut bystander).await;
    })
    .await;
}

#[tokio::test]
async fn packet_over_max_allowed_packet_gets_1153_and_closes_only_that_connection() {
    bounded(async {
        const LIMIT: usize = 1024 * 1024;
        let cluster = Cluster::builder(1, 2).max_allowed_packet(LIMIT as u64);
        let (mut cluster, mut bystander) = cluster_with_bystander(cluster.start().await).await;
        let reported: Option<u64> = bystander
            .query_first("SELECT @@max_allowed_packet")
            .await
            .expect("SELECT @@max_allowed_packet failed");
        assert_eq!(
            reported,
            Some(LIMIT as u64),
            "the proxy must report the limit it enforces"
        );

        let mut conn = RawConn::login(cluster.proxy_port(), "app", "app", Some("app"))
            .await
            .expect("login refused");
        // Just under the limit: still a normal query.
        let padding = "x".repeat(LIMIT - 200);
        let rows = conn
            .query(&format!(
                "SELECT note FROM orders WHERE tenant_id = 7 AND note <> '{padding}'"
            ))
            .await
            .expect_rows("a query just under max_allowed_packet");
        assert_eq!(rows, vec![vec![Some("bystander".to_owned())]]);

        // Twice the limit: ERR 1153, then the proxy hangs up.
        let mut query = vec![raw::COM_QUERY];
        query.extend_from_slice(b"SELECT '");
        query.resize(2 * LIMIT, b'x');
        query.push(b'\'');
        let (mut reader, mut writer) = conn.into_stream().into_split();
        // The proxy may stop reading mid-packet: write in the background and ignore write errors.
        let writing = tokio::spawn(async move {
            let _ = writer.write_all(&raw::packet_bytes(0, &query)).await;
            writer
        });
        let closed = raw::read_until_closed(&mut reader, CLOSE_ALLOWANCE).await;
        let errors = closed.errors();
        assert_eq!(
            errors.len(),
            1,
            "expected one ERR packet before the close, got {closed:?}"
        );
        expect::raw_error(
            &errors[0],
            codes::PACKET_TOO_LARGE,
            "a 2 MiB packet over a 1 MiB limit",
        );
        drop(writing.await);
        assert_others_unaffected(&mut cluster, &mut bystander).await;
    })
    .await;
}
