//! The server side of the connection phase: greet, check the password, agree on capabilities.

use std::net::SocketAddr;

use bytes::BytesMut;
use shardgate_wire::auth::{self, CACHING_SHA2_PASSWORD, MYSQL_NATIVE_PASSWORD, SHA2_FAST_AUTH_OK};
use shardgate_wire::capability::*;
use shardgate_wire::handshake::{AuthSwitchRequest, HandshakeResponse, ServerHandshake};
use shardgate_wire::response::{OkPacket, put_err};
use shardgate_wire::{PacketStream, WireError};
use tokio::net::TcpStream;
use tracing::info;

use crate::charset::names_for_collation;
use crate::mysql_error::*;
use crate::server::Shared;

/// A handshake packet is small; anything bigger is not a MySQL client.
const HANDSHAKE_MAX_PACKET: usize = 64 * 1024;

/// What a successful login settled.
pub struct Login {
    pub caps: u32,
    pub user: String,
    pub names: &'static str,
}

/// Runs the connection phase. `Ok(None)` means the client was refused (it has been told why).
pub async fn handshake(
    shared: &Shared,
    client: &mut PacketStream<TcpStream>,
    peer: SocketAddr,
    conn_id: u32,
) -> Result<Option<Login>, WireError> {
    let nonce = auth::new_nonce()?;
    let plugin = shared.config.auth_plugin.as_str();
    let greeting = ServerHandshake {
        server_version: shared.config.server_version.clone(),
        connection_id: conn_id,
        capabilities: PROXY_SERVER_CAPABILITIES,
        charset: 45,
        status: SERVER_STATUS_AUTOCOMMIT,
        nonce: nonce.to_vec(),
        auth_plugin: plugin.to_string(),
    };
    let mut buf = BytesMut::new();
    greeting.encode(&mut buf);
    client.queue(0, &buf);
    client.flush().await?;

    let Some(packet) = client.read_packet(HANDSHAKE_MAX_PACKET).await? else {
        return Ok(None);
    };
    let mut seq = packet.seq.wrapping_add(1);
    if HandshakeResponse::is_ssl_request(&packet.payload) {
        refuse(
            client,
            seq,
            ER_HANDSHAKE_ERROR,
            "TLS is not enabled on this shardgate listener",
        )
        .await?;
        return Ok(None);
    }
    let resp = match HandshakeResponse::decode(&packet.payload) {
        Ok(r) => r,
        Err(e) => {
            refuse(
                client,
                seq,
                ER_HANDSHAKE_ERROR,
                &format!("Bad handshake: {e}"),
            )
            .await?;
            return Err(e);
        }
    };

    // Verify with the client's plugin when it is one we speak; otherwise ask it to switch to ours.
    let client_plugin = resp.auth_plugin.as_deref().unwrap_or(MYSQL_NATIVE_PASSWORD);
    let (used_plugin, nonce, token) =
        if [MYSQL_NATIVE_PASSWORD, CACHING_SHA2_PASSWORD].contains(&client_plugin) {
            (client_plugin, nonce.to_vec(), resp.auth_response.clone())
        } else if resp.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            let switch = AuthSwitchRequest {
                plugin: plugin.to_string(),
                nonce: auth::new_nonce()?.to_vec(),
            };
            let mut buf = BytesMut::new();
            switch.encode(&mut buf);
            client.queue(seq, &buf);
            client.flush().await?;
            let Some(answer) = client.read_packet(HANDSHAKE_MAX_PACKET).await? else {
                return Ok(None);
            };
            seq = answer.seq.wrapping_add(1);
            (plugin, switch.nonce, answer.payload.to_vec())
        } else {
            let msg = format!(
                "Client does not support authentication protocol requested by server ({plugin})"
            );
            refuse(client, seq, ER_NOT_SUPPORTED_AUTH_MODE, &msg).await?;
            return Ok(None);
        };

    let account = shared.config.users.iter().find(|u| u.name == resp.user);
    let ok =
        account.is_some_and(|u| auth::verify(used_plugin, u.password.as_bytes(), &nonce, &token));
    if !ok {
        info!(conn = conn_id, %peer, user = %resp.user, "access denied");
        let using = if token.is_empty() { "NO" } else { "YES" };
        let msg = format!(
            "Access denied for user '{}'@'{}' (using password: {using})",
            resp.user,
            peer.ip()
        );
        refuse(client, seq, ER_ACCESS_DENIED_ERROR, &msg).await?;
        return Ok(None);
    }
    if used_plugin == CACHING_SHA2_PASSWORD {
        seq = client.queue(seq, &[0x01, SHA2_FAST_AUTH_OK]);
    }

    if let Some(db) = &resp.database {
        let keyspace_matches = shared.routing.load().topology.keyspace() == db;
        if !keyspace_matches {
            refuse(
                client,
                seq,
                ER_BAD_DB_ERROR,
                &format!("Unknown database '{db}'"),
            )
            .await?;
            return Ok(None);
        }
    }
    let ok = OkPacket {
        status: SERVER_STATUS_AUTOCOMMIT,
        ..OkPacket::default()
    };
    ok.put(client.write_buf(), seq);
    client.flush().await?;
    Ok(Some(Login {
        caps: resp.capabilities & PROXY_SERVER_CAPABILITIES,
        user: resp.user,
        names: names_for_collation(resp.charset),
    }))
}

async fn refuse(
    client: &mut PacketStream<TcpStream>,
    seq: u8,
    code: ErrorCode,
    message: &str,
) -> Result<(), WireError> {
    put_err(client.write_buf(), seq, code.code, code.state, message);
    client.flush().await
}
