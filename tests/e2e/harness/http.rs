//! A plain HTTP/1.1 client for the tests: the proxy's admin endpoint, Prometheus's API, etcd's JSON gateway. One
//! request per connection (`Connection: close`); a chunked body is joined.

/// `method path` with `body` to `127.0.0.1:port`: the status and the body, or `None` when nothing answers (a
/// server still starting).
pub async fn try_request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.ok()?;
    let status = reply.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// [`try_request`], panicking when nothing answers.
pub async fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    try_request(port, method, path, body)
        .await
        .unwrap_or_else(|| panic!("no HTTP answer from 127.0.0.1:{port} to {method} {path}"))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.trim_start_matches("\r\n");
    }
}

/// The value of the sample `series` (name and labels exactly as exposed) in a Prometheus text exposition, `None`
/// when it is absent; panics when it is not a number.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{series} is not a number: {v:?}"))
        })
}
