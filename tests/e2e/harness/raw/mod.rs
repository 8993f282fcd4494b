//! A deliberately small client side of the MySQL protocol, for tests that must send what no driver sends: unknown
//! command bytes, truncated or oversized packets, commands drivers hide (`COM_INIT_DB`).
//!
//! It is written from the protocol documentation and shares nothing with `crates/wire` on purpose: the proxy's
//! codec must not be checked against itself. It speaks only what the tests need: `HandshakeV10`, a
//! `HandshakeResponse41` with `mysql_native_password` or `caching_sha2_password` (following an auth switch to
//! either; the latter only on its fast path), OK/ERR/EOF, and text result sets without `CLIENT_DEPRECATE_EOF` (so
//! the classic EOF path gets exercised too). Malformed replies fail the test with a message naming what was
//! malformed.

use std::io::ErrorKind;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::deadline::{Deadline, within};

mod detailed;
mod parse;
pub mod sha256;

pub use detailed::{DetailedReply, RawColumn};
pub use parse::parse_err;
use parse::{Cursor, parse_handshake, trim_nul};

/// `COM_QUIT`: close the session.
pub const COM_QUIT: u8 = 0x01;
/// `COM_INIT_DB`: change the default database.
pub const COM_INIT_DB: u8 = 0x02;
/// `COM_QUERY`: run SQL text.
pub const COM_QUERY: u8 = 0x03;
/// `COM_PING`: is the server alive.
pub const COM_PING: u8 = 0x0e;
/// `COM_RESET_CONNECTION`: reset session state without re-authenticating.
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// Capability flags this client may ask for (a subset of the protocol's).
mod caps {
    /// `CLIENT_LONG_PASSWORD` (MariaDB calls it `CLIENT_MYSQL`).
    pub const LONG_PASSWORD: u32 = 0x0000_0001;
    /// A database name follows in the handshake response.
    pub const CONNECT_WITH_DB: u32 = 0x0000_0008;
    /// The 4.1 protocol (SQLSTATE in ERR packets, 41-style handshake response).
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    /// The client knows about transactions (status flags in OK packets).
    pub const TRANSACTIONS: u32 = 0x0000_2000;
    /// Length-prefixed auth response.
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    /// The client can handle several result sets.
    pub const MULTI_RESULTS: u32 = 0x0002_0000;
    /// Auth plugin names in the handshake.
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
}

/// The SHA-1 plugin, this client's default.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";

/// The SHA-256 plugin (MySQL 8's default); only its fast path, which needs no TLS.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

/// `utf8mb4_general_ci`.
const CHARSET_UTF8MB4: u8 = 45;

/// Largest packet this client announces it accepts.
const CLIENT_MAX_PACKET: u32 = 16 * 1024 * 1024;

/// How long any one exchange with the server may take.
const EXCHANGE_ALLOWANCE: Duration = Duration::from_secs(15);

/// What the server said in its `HandshakeV10`.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Server version string, e.g. `8.0.34-shardgate` or `10.11.6-MariaDB`.
    pub server_version: String,
    /// Connection id.
    pub connection_id: u32,
    /// Server capability flags (lower and upper halves joined).
    pub capabilities: u32,
    /// The 20-byte auth challenge.
    pub scramble: Vec<u8>,
    /// Default auth plugin, if announced.
    pub auth_plugin: Option<String>,
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// MySQL error code, e.g. 1047.
    pub code: u16,
    /// SQLSTATE, e.g. `08S01` (empty if the packet had none).
    pub state: String,
    /// Human-readable message.
    pub message: String,
}

/// The server's reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An OK packet.
    Ok {
        /// Rows changed by the statement.
        affected_rows: u64,
    },
    /// An ERR packet.
    Err(ServerError),
    /// A text result set: rows of nullable cells.
    Rows(Vec<Vec<Option<String>>>),
}

impl Reply {
    /// Asserts an OK packet.
    pub fn expect_ok(self, what: &str) -> u64 {
        match self {
            Reply::Ok { affected_rows } => affected_rows,
            other => panic!("{what}: expected OK, got {other:?}"),
        }
    }

    /// Asserts an ERR packet and returns it.
    pub fn expect_err(self, what: &str) -> ServerError {
        match self {
            Reply::Err(err) => err,
            other => panic!("{what}: expected an ERR packet, got {other:?}"),
        }
    }

    /// Asserts a result set and returns its rows.
    pub fn expect_rows(self, what: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Reply::Rows(rows) => rows,
            other => panic!("{what}: expected a result set, got {other:?}"),
        }
    }
}

/// A logged-in raw session.
pub struct RawConn {
    /// The socket.
    stream: TcpStream,
    /// Sequence id the next packet read must carry.
    next_seq: u8,
    /// The server's greeting.
    pub handshake: Handshake,
    /// Payloads of the AuthMoreData packets (`0x01 …`) the server sent during login, in order.
    pub auth_more_data: Vec<Vec<u8>>,
}

/// Opens a TCP connection to `127.0.0.1:port` and reads the server's greeting.
pub async fn greet(port: u16) -> (TcpStream, Handshake) {
    let mut stream = within(
        EXCHANGE_ALLOWANCE,
        "TCP connect",
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    let (seq, greeting) = within(
        EXCHANGE_ALLOWANCE,
        "reading the server greeting",
        read_packet(&mut stream),
    )
    .await
    .unwrap_or_else(|e| panic!("no server greeting on port {port}: {e}"));
    assert_eq!(seq, 0, "the server greeting must have sequence id 0");
    (stream, parse_handshake(&greeting))
}

impl RawConn {
    /// Logs in with `mysql_native_password`, optionally selecting `db`. `Err` is the server's ERR packet.
    pub async fn login(
        port: u16,
        user: &str,
        password: &str,
        db: Option<&str>,
    ) -> Result<RawConn, ServerError> {
        Self::login_with_plugin(port, user, password, db, NATIVE_PASSWORD).await
    }

    /// Logs in announcing `plugin` ([`NATIVE_PASSWORD`] or [`CACHING_SHA2_PASSWORD`]) and answering the greeting's
    /// nonce with that plugin's scramble, whatever plugin the greeting named. Follows an auth switch to either
    /// plugin; accepts `caching_sha2_password`'s fast-auth-OK marker and fails the test on a request for full
    /// authentication. `Err` is the server's ERR packet.
    pub async fn login_with_plugin(
        port: u16,
        user: &str,
        password: &str,
        db: Option<&str>,
        plugin: &str,
    ) -> Result<RawConn, ServerError> {
        let (mut stream, handshake) = greet(port).await;
        let response = handshake_response(&handshake, user, password, db, plugin);
        let mut auth_more_data = Vec::new();
        within(EXCHANGE_ALLOWANCE, "login", async {
            write_packet(&mut stream, 1, &response)
                .await
                .expect("cannot send the handshake response");
            let mut expected_seq = 2u8;
            loop {
                let (seq, packet) = read_packet(&mut stream)
                    .await
                    .expect("connection lost during login");
                assert_eq!(seq, expected_seq, "login reply out of order");
                match packet.first() {
                    Some(0x00) => break,
                    Some(0xff) => return Err(parse_err(&packet)),
                    Some(0xfe) => {
                        let mut cur = Cursor::new(&packet[1..], "AuthSwitchRequest");
                        let plugin = String::from_utf8_lossy(cur.nul_terminated()).into_owned();
                        let nonce = trim_nul(cur.rest());
                        let scrambled = scramble(&plugin, password, nonce);
                        write_packet(&mut stream, seq.wrapping_add(1), &scrambled)
                            .await
                            .expect("cannot answer the auth switch");
                        expected_seq = seq.wrapping_add(2);
                    }
                    Some(0x01) => {
                        assert_eq!(
                            packet.get(1),
                            Some(&0x03),
                            "AuthMoreData other than caching_sha2_password's fast-auth OK (full authentication \
                             needs TLS, which the raw client does not speak): {packet:?}"
                        );
                        auth_more_data.push(packet);
                        expected_seq = seq.wrapping_add(1);
                    }
                    other => panic!("unexpected login reply starting with {other:?}: {packet:?}"),
                }
            }
            Ok(RawConn {
                stream,
                next_seq: 0,
                handshake,
                auth_more_data,
            })
        })
        .await
    }

    /// Sends a command (`command` byte followed by `args`) and reads the reply.
    pub async fn command(&mut self, command: u8, args: &[u8]) -> Reply {
        self.send_command(command, args).await;
        self.read_reply().await
    }

    /// Sends a command without reading the reply.
    pub async fn send_command(&mut self, command: u8, args: &[u8]) {
        let mut payload = Vec::with_capacity(1 + args.len());
        payload.push(command);
        payload.extend_from_slice(args);
        write_packet(&mut self.stream, 0, &payload)
            .await
            .expect("cannot send a command");
        self.next_seq = 1;
    }

    /// `COM_PING`.
    pub async fn ping(&mut self) -> Reply {
        self.command(COM_PING, &[]).await
    }

    /// `COM_INIT_DB`.
    pub async fn init_db(&mut self, db: &str) -> Reply {
        self.command(COM_INIT_DB, db.as_bytes()).await
    }

    /// `COM_RESET_CONNECTION`.
    pub async fn reset_connection(&mut self) -> Reply {
        self.command(COM_RESET_CONNECTION, &[]).await
    }

    /// `COM_QUERY`.
    pub async fn query(&mut self, sql: &str) -> Reply {
        self.command(COM_QUERY, sql.as_bytes()).await
    }

    /// Reads the reply to the command just sent: OK, ERR or a text result set.
    pub async fn read_reply(&mut self) -> Reply {
        self.read_detailed_reply().await.into()
    }

    /// Reads the next packet of the current reply, checking its sequence id.
    async fn next(&mut self) -> Vec<u8> {
        let (seq, packet) = read_packet(&mut self.stream)
            .await
            .expect("connection lost while reading a reply");
        assert_eq!(
            seq, self.next_seq,
            "reply packet out of order (packet: {packet:?})"
        );
        self.next_seq = seq.wrapping_add(1);
        packet
    }

    /// The socket, for tests that go on by hand.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Gives up the session, keeping the socket.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// Reads one packet: 3-byte little-endian length, sequence id, payload.
pub async fn read_packet(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

/// Writes one packet (payload under 16 MiB).
pub async fn write_packet(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    seq: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    stream.write_all(&packet_bytes(seq, payload)).await?;
    stream.flush().await
}

/// The bytes of one packet (payload under 16 MiB).
pub fn packet_bytes(seq: u8, payload: &[u8]) -> Vec<u8> {
    assert!(
        payload.len() < 0xff_ffff,
        "raw client does not split packets"
    );
    let len = (payload.len() as u32).to_le_bytes();
    let mut bytes = Vec::with_capacity(4 + payload.len());
    bytes.extend_from_slice(&[len[0], len[1], len[2], seq]);
    bytes.extend_from_slice(payload);
    bytes
}

/// How a connection ended, as seen by [`read_until_closed`].
#[derive(Debug)]
pub struct Closed {
    /// Bytes received before the end.
    pub bytes: Vec<u8>,
    /// Whether it ended with a reset rather than an orderly close.
    pub by_reset: bool,
}

impl Closed {
    /// Payloads of the complete packets received, and the number of bytes after the last complete packet.
    pub fn packets(&self) -> (Vec<&[u8]>, usize) {
        let mut packets = Vec::new();
        let mut rest = self.bytes.as_slice();
        while rest.len() >= 4 {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], 0]) as usize;
            let Some(payload) = rest.get(4..4 + len) else {
                break;
            };
            packets.push(payload);
            rest = &rest[4 + len..];
        }
        (packets, rest.len())
    }

    /// The ERR packets received.
    pub fn errors(&self) -> Vec<ServerError> {
        let (packets, _) = self.packets();
        packets
            .into_iter()
            .filter(|p| p.first() == Some(&0xff))
            .map(parse_err)
            .collect()
    }

    /// Whether everything received was whole ERR packets (or nothing at all).
    pub fn only_errors(&self) -> bool {
        let (packets, trailing) = self.packets();
        trailing == 0 && packets.iter().all(|p| p.first() == Some(&0xff))
    }
}

/// Reads until the peer closes the connection; panics if it stays open past `allowance`.
pub async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    allowance: Duration,
) -> Closed {
    let deadline = Deadline::after(allowance);
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(deadline.remaining(), stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Closed {
                    bytes,
                    by_reset: false,
                };
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Closed {
                    bytes,
                    by_reset: true,
                };
            }
            Ok(Err(e)) => panic!("unexpected socket error while waiting for the close: {e}"),
            Err(_) => panic!(
                "the connection is still open after {allowance:?} (received {} bytes: {:?})",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

/// `SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password)))`; empty for an empty password.
pub fn native_password(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// The scramble `plugin` computes for `password` and `nonce`; fails the test for a plugin this client lacks.
fn scramble(plugin: &str, password: &str, nonce: &[u8]) -> Vec<u8> {
    match plugin {
        NATIVE_PASSWORD => native_password(password, nonce),
        CACHING_SHA2_PASSWORD => sha256::caching_sha2_password(password, nonce),
        other => panic!("the raw client cannot speak the auth plugin {other:?}"),
    }
}

/// Builds a `HandshakeResponse41` announcing `plugin`, answering the greeting's nonce with its scramble.
fn handshake_response(
    handshake: &Handshake,
    user: &str,
    password: &str,
    db: Option<&str>,
    plugin: &str,
) -> Vec<u8> {
    let wanted = caps::LONG_PASSWORD
        | caps::PROTOCOL_41
        | caps::TRANSACTIONS
        | caps::SECURE_CONNECTION
        | caps::MULTI_RESULTS
        | caps::PLUGIN_AUTH
        | if db.is_some() {
            caps::CONNECT_WITH_DB
        } else {
            0
        };
    let flags = wanted & handshake.capabilities;
    assert!(
        flags & caps::PROTOCOL_41 != 0,
        "the server does not speak protocol 4.1"
    );
    let auth = scramble(plugin, password, &handshake.scramble);
    let mut out = Vec::new();
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&CLIENT_MAX_PACKET.to_le_bytes());
    out.push(CHARSET_UTF8MB4);
    out.extend_from_slice(&[0u8; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(auth.len() as u8);
    out.extend_from_slice(&auth);
    if let Some(db) = db.filter(|_| flags & caps::CONNECT_WITH_DB != 0) {
        out.extend_from_slice(db.as_bytes());
        out.push(0);
    }
    if flags & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.as_bytes());
        out.push(0);
    }
    out
}

#[test]
fn native_password_matches_a_vector_computed_independently() {
    // Python: s1 = sha1(b"app"); mask = sha1(bytes(range(1, 21)) + sha1(s1)); bytes(a ^ b for a, b in zip(s1, mask))
    let nonce: Vec<u8> = (1..=20).collect();
    let expected = "12328035ee495da7a700c0f172e911706641abc5";
    let got: String = native_password("app", &nonce)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, expected);
    assert!(native_password("", &nonce).is_empty());
}
