//! etcd as a topology source for a fleet of proxies.
//!
//! Every proxy reads one key holding the topology YAML (its `mod_revision` tells a change), applies a change as it
//! would a file change, keeps a copy in its topology file (so it restarts with what it served), and records the
//! version it serves under `acks_prefix + proxy_id`, attached to a lease it keeps alive: a controller lists the
//! prefix to see which live proxy serves which version. A proxy that finds the key empty seeds it with its file.
//!
//! The client speaks etcd v3's JSON gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`, `/v3/lease/…`) over plain
//! HTTP/1.1: a handful of unary calls, no new dependency. The key is polled every 250 ms rather than watched with a
//! stream: one small request per proxy per poll, and nothing to resynchronise after a dropped stream.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::config::EtcdSource;
use crate::server::Shared;

/// How often the topology key is read.
const POLL: Duration = Duration::from_millis(250);
/// Lease of a proxy's acknowledgement key: it disappears this long after the proxy stops.
const ACK_TTL_S: u64 = 10;
/// Longest one call to etcd may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd {endpoint}: {detail}")]
    Call { endpoint: String, detail: String },
}

/// A client of the first reachable endpoint.
#[derive(Debug, Clone)]
pub struct Etcd {
    endpoints: Vec<String>,
}

impl Etcd {
    pub fn new(endpoints: &[String]) -> Self {
        Etcd {
            endpoints: endpoints.to_vec(),
        }
    }

    /// One gateway call on the first endpoint that answers.
    async fn call(&self, path: &str, body: Value) -> Result<Value, EtcdError> {
        let mut last = None;
        for endpoint in &self.endpoints {
            match tokio::time::timeout(CALL_TIMEOUT, post(endpoint, path, &body.to_string())).await
            {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(detail)) => last = Some((endpoint, detail)),
                Err(_) => last = Some((endpoint, format!("no answer within {CALL_TIMEOUT:?}"))),
            }
        }
        let (endpoint, detail) = last
            .map_or((String::new(), "no endpoint".to_string()), |(e, d)| {
                (e.clone(), d)
            });
        Err(EtcdError::Call { endpoint, detail })
    }

    /// The value of `key` and its modification revision; `None` if the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<(String, u64)>, EtcdError> {
        let reply = self
            .call(
                "/v3/kv/range",
                json!({ "key": base64::encode(key.as_bytes()) }),
            )
            .await?;
        let Some(kv) = reply["kvs"].get(0) else {
            return Ok(None);
        };
        let value = kv["value"]
            .as_str()
            .map(base64::decode)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        let revision = kv["mod_revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        Ok(Some((
            String::from_utf8_lossy(&value).into_owned(),
            revision,
        )))
    }

    /// Every key under `prefix` with its value.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, EtcdError> {
        let end = prefix_end(prefix.as_bytes());
        let body =
            json!({ "key": base64::encode(prefix.as_bytes()), "range_end": base64::encode(&end) });
        let reply = self.call("/v3/kv/range", body).await?;
        let decode = |v: &Value| {
            v.as_str()
                .and_then(|s| base64::decode(s).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        Ok(reply["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (decode(&kv["key"]), decode(&kv["value"])))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Sets `key` (under `lease`, if given).
    pub async fn put(&self, key: &str, value: &str, lease: Option<i64>) -> Result<(), EtcdError> {
        let mut body = json!({ "key": base64::encode(key.as_bytes()), "value": base64::encode(value.as_bytes()) });
        if let Some(lease) = lease {
            body["lease"] = json!(lease.to_string());
        }
        self.call("/v3/kv/put", body).await.map(drop)
    }

    /// Sets `key` only if it does not exist; true if this call created it.
    pub async fn create(&self, key: &str, value: &str) -> Result<bool, EtcdError> {
        let key64 = base64::encode(key.as_bytes());
        let body = json!({
            "compare": [{ "key": key64, "target": "CREATE", "create_revision": "0" }],
            "success": [{ "request_put": { "key": key64, "value": base64::encode(value.as_bytes()) } }],
        });
        let reply = self.call("/v3/kv/txn", body).await?;
        Ok(reply["succeeded"].as_bool().unwrap_or(false))
    }

    /// A new lease of `ttl_s` seconds.
    pub async fn grant(&self, ttl_s: u64) -> Result<i64, EtcdError> {
        let reply = self
            .call("/v3/lease/grant", json!({ "TTL": ttl_s.to_string() }))
            .await?;
        Ok(reply["ID"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or(0))
    }

    /// Renews `lease`; false once it has expired.
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, EtcdError> {
        let reply = self
            .call("/v3/lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        let ttl = reply["result"]["TTL"]
            .as_str()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(ttl > 0)
    }
}

/// The first key after every key starting with `prefix` (etcd's `range_end` for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// POST `body` to `http://endpoint/path` and parse the JSON answer.
async fn post(endpoint: &str, path: &str, body: &str) -> Result<Value, String> {
    let mut tcp = TcpStream::connect(endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.split(' ').nth(1).unwrap_or_default();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    // Streaming calls (lease keepalive) answer chunked.
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let json = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    if status != "200" {
        return Err(format!("HTTP {status}: {}", json.trim()));
    }
    serde_json::from_str(&json).map_err(|e| format!("not JSON ({e}): {json}"))
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("truncated chunk size")?;
        let size =
            usize::from_str_radix(size.trim(), 16).map_err(|e| format!("chunk size: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .unwrap_or_default()
            .trim_start_matches("\r\n");
    }
}

/// Reads the topology from etcd at start, seeding the key from `file_text` when it is empty. Returns the text to
/// serve and its revision.
pub async fn bootstrap(source: &EtcdSource, file_text: &str) -> Result<(String, u64), EtcdError> {
    let etcd = Etcd::new(&source.endpoints);
    if let Some(found) = etcd.get(&source.key).await? {
        return Ok(found);
    }
    if etcd.create(&source.key, file_text).await? {
        info!(key = %source.key, "etcd had no topology: seeded it with the topology file");
    }
    Ok(etcd
        .get(&source.key)
        .await?
        .unwrap_or((file_text.to_string(), 0)))
}

/// Follows the topology key and keeps this proxy's acknowledgement alive, until the process exits.
pub async fn follow(shared: Arc<Shared>, source: EtcdSource, mut revision: u64) {
    let etcd = Etcd::new(&source.endpoints);
    let ack_key = format!("{}{}", source.acks_prefix, source.proxy_id());
    let mut lease: Option<i64> = None;
    let mut acked = 0;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls = 0u64;
    loop {
        tick.tick().await;
        polls += 1;
        match etcd.get(&source.key).await {
            Ok(Some((text, rev))) if rev != revision => {
                revision = rev;
                if shared.apply_topology(&text, "etcd", true).is_ok()
                    && let Err(e) = shared.persist_topology(&text)
                {
                    warn!(error = %e, "topology from etcd applied but not written to the topology file");
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "cannot read the topology from etcd; still serving the current one")
            }
        }
        // The acknowledgement: at every version change, and the lease renewed every few seconds.
        let version = shared.routing.load().topology.version();
        let renew = polls.is_multiple_of((ACK_TTL_S * 1000 / 3 / POLL.as_millis() as u64).max(1));
        if lease.is_none() || version != acked || renew {
            match ack(&etcd, &ack_key, &shared, version, &mut lease).await {
                Ok(()) => acked = version,
                Err(e) => {
                    warn!(error = %e, key = %ack_key, "cannot record the version served in etcd")
                }
            }
        }
    }
}

/// Writes `version` under the proxy's key, attached to a live lease (granted again if it expired).
async fn ack(
    etcd: &Etcd,
    key: &str,
    shared: &Shared,
    version: u64,
    lease: &mut Option<i64>,
) -> Result<(), EtcdError> {
    let live = match *lease {
        Some(id) => etcd.keep_alive(id).await?,
        None => false,
    };
    let id = if live {
        lease.unwrap_or_default()
    } else {
        let id = etcd.grant(ACK_TTL_S).await?;
        *lease = Some(id);
        id
    };
    let value = json!({ "version": version, "admin": shared.config.admin_listen }).to_string();
    etcd.put(key, &value, Some(id)).await
}

/// Standard base64 (RFC 4648, with padding), for etcd's JSON gateway.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        let mut n = 0u32;
        let mut bits = 0;
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| format!("not base64: {c:#x}"))?;
            n = (n << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((n >> bits) as u8);
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_match_rfc_4648_vectors() {
            for (plain, coded) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(super::encode(plain.as_bytes()), coded);
                assert_eq!(super::decode(coded).unwrap(), plain.as_bytes());
            }
            assert!(super::decode("Zm9v!").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            super::dechunk("3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n").unwrap(),
            "{\"a\":1}"
        );
        assert!(super::dechunk("5\r\nab").is_err());
    }

    #[test]
    fn the_end_of_a_prefix_range_is_its_last_byte_plus_one() {
        assert_eq!(super::prefix_end(b"a/"), b"a0");
        assert_eq!(super::prefix_end(b"a\xff"), b"b");
        assert_eq!(super::prefix_end(b"\xff"), [0]);
    }
}
