//! Connection phase: the server's HandshakeV10, the client's HandshakeResponse41, and AuthSwitchRequest.
//!
//! Both directions encode and decode here: the proxy is the server to its clients and the client of its backends.

use bytes::{BufMut, BytesMut};

use crate::WireError;
use crate::auth::NONCE_LEN;
use crate::capability::*;
use crate::lenenc::{Reader, put_lenenc_bytes, put_nul_bytes};

/// The first packet a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    /// Default collation id of the server.
    pub charset: u8,
    pub status: u16,
    /// The auth plugin data (20 bytes for both plugins shardgate speaks).
    pub nonce: Vec<u8>,
    pub auth_plugin: String,
}

impl ServerHandshake {
    /// Encodes the payload (no packet header).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(10);
        put_nul_bytes(out, self.server_version.as_bytes());
        out.put_u32_le(self.connection_id);
        let (part1, part2) = self.nonce.split_at(self.nonce.len().min(8));
        out.put_slice(part1);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.charset);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        out.put_u8((self.nonce.len() + 1) as u8);
        out.put_slice(&[0; 10]);
        put_nul_bytes(out, part2);
        put_nul_bytes(out, self.auth_plugin.as_bytes());
    }

    /// Decodes a server's greeting.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "handshake");
        if payload.first() == Some(&0xff) {
            return Err(crate::response::ErrPacket::decode(payload)?.into());
        }
        let version = r.u8()?;
        if version != 10 {
            return Err(WireError::Unsupported(format!(
                "handshake protocol version {version}"
            )));
        }
        let server_version = String::from_utf8_lossy(r.nul_bytes()?).into_owned();
        let connection_id = r.u32()?;
        let mut nonce = r.take(8)?.to_vec();
        r.u8()?;
        let mut capabilities = u32::from(r.u16()?);
        let charset = r.u8()?;
        let status = r.u16()?;
        capabilities |= u32::from(r.u16()?) << 16;
        let data_len = usize::from(r.u8()?);
        r.take(10)?;
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = data_len.saturating_sub(9).max(12);
            nonce.extend_from_slice(r.take(n)?);
            r.u8()?;
        }
        let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            String::from_utf8_lossy(r.nul_or_rest()).into_owned()
        } else {
            crate::auth::MYSQL_NATIVE_PASSWORD.to_string()
        };
        Ok(ServerHandshake {
            server_version,
            connection_id,
            capabilities,
            charset,
            status,
            nonce,
            auth_plugin,
        })
    }
}

/// The client's answer to the greeting (protocol 4.1 form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
}

/// The fixed-size prefix every HandshakeResponse41 and SSLRequest shares.
const FIXED_LEN: usize = 32;

impl HandshakeResponse {
    /// True when `payload` is an SSLRequest: the fixed prefix alone, with CLIENT_SSL set.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == FIXED_LEN
            && Reader::new(payload, "ssl request")
                .u32()
                .is_ok_and(|c| c & CLIENT_SSL != 0)
    }

    /// Decodes a client's response. Pre-4.1 clients are refused.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "handshake response");
        let capabilities = r.u32()?;
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(WireError::Unsupported(
                "clients older than protocol 4.1".into(),
            ));
        }
        let max_packet = r.u32()?;
        let charset = r.u8()?;
        r.take(23)?;
        let user = utf8(r.nul_bytes()?, "user name")?;
        let auth_response = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?.to_vec()
        } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8()?);
            r.take(n)?.to_vec()
        } else {
            r.nul_bytes()?.to_vec()
        };
        let database = if capabilities & CLIENT_CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(utf8(r.nul_or_rest(), "database name")?).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(utf8(r.nul_or_rest(), "auth plugin name")?)
        } else {
            None
        };
        // Connection attributes (CLIENT_CONNECT_ATTRS) follow; shardgate does not use them.
        Ok(HandshakeResponse {
            capabilities,
            max_packet,
            charset,
            user,
            auth_response,
            database,
            auth_plugin,
        })
    }

    /// Encodes the payload (no packet header).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u32_le(self.capabilities);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.charset);
        out.put_slice(&[0; 23]);
        put_nul_bytes(out, self.user.as_bytes());
        if self.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(out, &self.auth_response);
        } else {
            out.put_u8(self.auth_response.len() as u8);
            out.put_slice(&self.auth_response);
        }
        if self.capabilities & CLIENT_CONNECT_WITH_DB != 0 {
            put_nul_bytes(out, self.database.as_deref().unwrap_or("").as_bytes());
        }
        if self.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            put_nul_bytes(out, self.auth_plugin.as_deref().unwrap_or("").as_bytes());
        }
    }
}

fn utf8(b: &[u8], what: &'static str) -> Result<String, WireError> {
    String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed {
        what,
        detail: "not valid UTF-8".into(),
    })
}

/// A server's request to continue authentication with another plugin (payload starts with 0xFE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin: String,
    pub nonce: Vec<u8>,
}

impl AuthSwitchRequest {
    /// Encodes the payload (no packet header).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(0xfe);
        put_nul_bytes(out, self.plugin.as_bytes());
        put_nul_bytes(out, &self.nonce);
    }

    /// Decodes a payload that starts with 0xFE.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "auth switch request");
        r.u8()?;
        let plugin = String::from_utf8_lossy(r.nul_bytes()?).into_owned();
        let mut nonce = r.remaining().to_vec();
        if nonce.last() == Some(&0) {
            nonce.pop();
        }
        nonce.truncate(NONCE_LEN);
        Ok(AuthSwitchRequest { plugin, nonce })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_handshake_round_trips() {
        let hs = ServerHandshake {
            server_version: "5.5.5-10.11.6-MariaDB-shardgate".into(),
            connection_id: 77,
            capabilities: PROXY_SERVER_CAPABILITIES,
            charset: 45,
            status: SERVER_STATUS_AUTOCOMMIT,
            nonce: b"0123456789abcdefghij".to_vec(),
            auth_plugin: "mysql_native_password".into(),
        };
        let mut b = BytesMut::new();
        hs.encode(&mut b);
        assert_eq!(ServerHandshake::decode(&b).unwrap(), hs);
    }

    #[test]
    fn handshake_response_round_trips_with_and_without_lenenc_auth_data() {
        for extra in [CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, 0] {
            let r = HandshakeResponse {
                capabilities: CLIENT_PROTOCOL_41
                    | CLIENT_SECURE_CONNECTION
                    | CLIENT_PLUGIN_AUTH
                    | CLIENT_CONNECT_WITH_DB
                    | extra,
                max_packet: 1 << 24,
                charset: 45,
                user: "app".into(),
                auth_response: vec![1; 20],
                database: Some("app".into()),
                auth_plugin: Some("mysql_native_password".into()),
            };
            let mut b = BytesMut::new();
            r.encode(&mut b);
            assert_eq!(HandshakeResponse::decode(&b).unwrap(), r);
            assert!(!HandshakeResponse::is_ssl_request(&b));
        }
    }

    #[test]
    fn truncated_handshake_responses_are_errors() {
        let r = HandshakeResponse {
            capabilities: CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION,
            user: "app".into(),
            auth_response: vec![1; 20],
            ..Default::default()
        };
        let mut b = BytesMut::new();
        r.encode(&mut b);
        for cut in 0..b.len() - 1 {
            assert!(
                HandshakeResponse::decode(&b[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_ssl_request_is_recognised() {
        let mut b = BytesMut::new();
        b.put_u32_le(CLIENT_PROTOCOL_41 | CLIENT_SSL);
        b.put_slice(&[0; 28]);
        assert!(HandshakeResponse::is_ssl_request(&b));
    }
}
