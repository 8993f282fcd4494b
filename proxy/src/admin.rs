//! The admin HTTP endpoint: `/healthz` (the process runs), `/readyz` (it takes new clients: 503 once draining),
//! `/metrics` (Prometheus text format) and `/backends` (each backend server's health as JSON).
//!
//! A deliberately small HTTP/1.1 server: GET only, one request per connection, bounded request size and time. It
//! runs on the main thread's runtime, away from the workers, so a slow scraper never delays a statement.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::metrics;
use crate::server::Shared;

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
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
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    if method != "GET" {
        respond(&mut tcp, 405, "text/plain", "only GET\n").await;
        return;
    }
    match path {
        "/healthz" => respond(&mut tcp, 200, "text/plain", "ok\n").await,
        "/readyz" if shared.is_draining() => {
            respond(&mut tcp, 503, "text/plain", "draining\n").await
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
            respond(
                &mut tcp,
                404,
                "text/plain",
                "not found: try /healthz, /readyz, /metrics, /backends\n",
            )
            .await
        }
    }
}

async fn respond(tcp: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
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
