//! The admin HTTP endpoint: `/healthz` (the process runs), `/readyz` (it takes new clients: 503 once draining),
//! `/metrics` (Prometheus text format), `/backends` (each backend server's health as JSON), `/topology` (GET: the
//! topology served, as YAML; PUT: serve a new one, see `crate::reload`) and `/topology/version`.
//!
//! A deliberately small HTTP/1.1 server: one request per connection, bounded request size and time. It runs on the
//! main thread's runtime, away from the workers, so a slow scraper never delays a statement. Bind it to loopback
//! (the default): it can change the topology.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::metrics;
use crate::server::Shared;

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Largest request body (a topology) read.
const MAX_BODY: usize = 4 << 20;
/// Longest a request may take to arrive and its reply to be written.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the admin endpoint on `listener` until the process exits.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if tokio::time::timeout(REQUEST_TIMEOUT, handle(&shared, tcp))
                        .await
                        .is_err()
                    {
                        debug!(%peer, "admin request timed out");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(shared: &Shared, mut tcp: TcpStream) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_REQUEST {
            respond(&mut tcp, 431, "text/plain", "request header too large\n").await;
            return;
        }
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |i| i + 4);
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut body = head[end..].to_vec();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    if method == "PUT" && path == "/topology" {
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let Some(length) = length.filter(|&n| n <= MAX_BODY) else {
            let msg = "a Content-Length of at most 4 MiB is required\n";
            respond(&mut tcp, 411, "text/plain", msg).await;
            return;
        };
        while body.len() < length {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        body.truncate(length);
        return put_topology(shared, &mut tcp, &body).await;
    }
    if method != "GET" {
        respond(&mut tcp, 405, "text/plain", "only GET, and PUT /topology\n").await;
        return;
    }
    match path {
        "/topology" => {
            let yaml = shared.routing.load().topology.to_yaml();
            respond(&mut tcp, 200, "application/yaml", &yaml).await
        }
        "/topology/fleet" => fleet(shared, &mut tcp).await,
        "/topology/version" => {
            let version = format!("{}\n", shared.routing.load().topology.version());
            respond(&mut tcp, 200, "text/plain", &version).await
        }
        "/reshard/inflight" => {
            let n = shared
                .stats
                .reshard
                .inflight
                .load(std::sync::atomic::Ordering::SeqCst);
            respond(&mut tcp, 200, "text/plain", &format!("{n}\n")).await
        }
        "/healthz" => respond(&mut tcp, 200, "text/plain", "ok\n").await,
        "/readyz" if shared.is_draining() => {
            respond(&mut tcp, 503, "text/plain", "draining\n").await
        }
        "/readyz" if !any_backend_up(shared) => {
            respond(&mut tcp, 503, "text/plain", "no backend server is up\n").await
        }
        "/readyz" => respond(&mut tcp, 200, "text/plain", "ready\n").await,
        "/metrics" => {
            let body = metrics::render(shared);
            respond(&mut tcp, 200, "text/plain; version=0.0.4", &body).await
        }
        "/backends" => {
            respond(
                &mut tcp,
                200,
                "application/json",
                &metrics::backends_json(shared),
            )
            .await
        }
        _ => {
            let msg = "not found: try /healthz, /readyz, /metrics, /backends, /topology, /topology/version, /reshard/inflight\n";
            respond(&mut tcp, 404, "text/plain", msg).await
        }
    }
}

/// True when at least one backend server's breaker is closed: with some shards down the proxy still serves the
/// others (each failing shard answers its own errors), so only all of them down makes it unready.
fn any_backend_up(shared: &Shared) -> bool {
    let routing = shared.routing.load();
    routing.health().is_empty() || routing.health().iter().any(|h| h.status().is_up())
}

/// GET /topology/fleet: with etcd, what every live proxy of the fleet acknowledged (its id, the version it serves
/// and its admin address), as JSON.
async fn fleet(shared: &Shared, tcp: &mut TcpStream) {
    let Some(source) = &shared.config.topology.etcd else {
        return respond(
            tcp,
            404,
            "text/plain",
            "no etcd topology source configured\n",
        )
        .await;
    };
    let etcd = crate::etcd::Etcd::new(&source.endpoints);
    match etcd.list(&source.acks_prefix).await {
        Ok(acks) => {
            let entries: Vec<serde_json::Value> = acks
                .into_iter()
                .map(|(key, value)| {
                    let id = key.strip_prefix(&source.acks_prefix).unwrap_or(&key).to_string();
                    let ack: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
                    serde_json::json!({ "proxy": id, "version": ack["version"], "admin": ack["admin"] })
                })
                .collect();
            let body = serde_json::Value::Array(entries).to_string() + "\n";
            respond(tcp, 200, "application/json", &body).await
        }
        Err(e) => respond(tcp, 502, "text/plain", &format!("{e}\n")).await,
    }
}

/// PUT /topology: applied, then written to the topology file; 409 with the reason when refused.
async fn put_topology(shared: &Shared, tcp: &mut TcpStream, body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        return respond(tcp, 400, "text/plain", "the topology must be UTF-8 YAML\n").await;
    };
    match shared.apply_topology(text, "admin endpoint", false) {
        Ok(version) => {
            if let Err(e) = shared.persist_topology(text) {
                warn!(error = %e, "topology applied but not written to its file; a restart serves the old one");
            }
            // With etcd, the fleet follows the key: the new topology goes there too.
            if let Some(source) = &shared.config.topology.etcd {
                let etcd = crate::etcd::Etcd::new(&source.endpoints);
                if let Err(e) = etcd.put(&source.key, text, None).await {
                    let msg =
                        format!("serving version {version} here, but not written to etcd: {e}\n");
                    return respond(tcp, 502, "text/plain", &msg).await;
                }
            }
            respond(
                tcp,
                200,
                "text/plain",
                &format!("serving version {version}\n"),
            )
            .await
        }
        Err(e) => respond(tcp, 409, "text/plain", &format!("{e}\n")).await,
    }
}

async fn respond(tcp: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The peer may be gone; there is nobody to tell.
    if tcp.write_all(head.as_bytes()).await.is_ok() {
        let _ = tcp.write_all(body.as_bytes()).await;
    }
    let _ = tcp.shutdown().await;
}
