//! The proxy's metrics in the Prometheus text format, read on demand from the state the data path keeps anyway
//! (pool counters, backend health, client count): scraping costs the data path nothing.

use std::fmt::Write;

use shardgate_pool::{BreakerState, PoolStatus};
use shardgate_topology::ShardId;

use crate::routing::Routing;
use crate::server::Shared;
use crate::stats::{BUCKETS, HistogramSnapshot, KINDS, ROUTES, Stats};
use shardgate_topology::MoveState;

/// Writes metric families: each family's HELP and TYPE once, then its samples.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

impl Exposition {
    /// A histogram family with one series.
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        h: &HistogramSnapshot,
    ) {
        self.family(name, "histogram", help);
        self.buckets(name, labels, h);
    }

    /// One histogram series: cumulative buckets, sum and count.
    fn buckets(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (i, n) in h.cumulative.iter().enumerate() {
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, n);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds);
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        v.into()
    }
}

/// Every metric, as the body of a `/metrics` reply.
pub fn render(shared: &Shared) -> String {
    let routing = shared.routing.load();
    let mut e = Exposition {
        out: String::with_capacity(64 * 1024),
    };
    e.family(
        "shardgate_client_connections",
        "gauge",
        "Client connections open now.",
    );
    e.sample("shardgate_client_connections", &[], shared.clients());
    e.family(
        "shardgate_client_connections_refused_total",
        "counter",
        "Client connections refused because max_client_connections were open.",
    );
    let refused = shared
        .refused_clients
        .load(std::sync::atomic::Ordering::Relaxed);
    e.sample("shardgate_client_connections_refused_total", &[], refused);
    e.family(
        "shardgate_draining",
        "gauge",
        "1 once shutdown has started.",
    );
    e.sample("shardgate_draining", &[], u8::from(shared.is_draining()));
    e.family(
        "shardgate_topology_version",
        "gauge",
        "Version of the topology being served.",
    );
    e.sample(
        "shardgate_topology_version",
        &[],
        routing.topology.version(),
    );
    let reloads = shared
        .topology_reloads
        .load(std::sync::atomic::Ordering::Relaxed);
    let errors = shared
        .topology_reload_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    e.family(
        "shardgate_topology_reloads_total",
        "counter",
        "Topologies applied since start.",
    );
    e.sample("shardgate_topology_reloads_total", &[], reloads);
    e.family(
        "shardgate_topology_reload_errors_total",
        "counter",
        "Topologies refused since start (invalid, not newer, keyspace or first shard changed, unreadable).",
    );
    e.sample("shardgate_topology_reload_errors_total", &[], errors);
    statements(&mut e, shared, &routing);
    backends(&mut e, &routing);
    pools(&mut e, &routing);
    e.out
}

fn statements(e: &mut Exposition, shared: &Shared, routing: &Routing) {
    let stats = &shared.stats;
    e.family(
        "shardgate_statements_total",
        "counter",
        "Statements (COM_QUERY, COM_STMT_EXECUTE) by kind and by where they ran: single shard, multi (several tenants' shards), scatter (every shard, merged), all (every shard: DDL, reference writes), proxy (answered or refused by the proxy).",
    );
    for (class, n) in stats.statements() {
        let labels = [("kind", KINDS[class.kind]), ("route", ROUTES[class.route])];
        e.sample("shardgate_statements_total", &labels, n);
    }
    e.family(
        "shardgate_errors_total",
        "counter",
        "Errors sent to clients, by MySQL error code (the proxy's own and the backends').",
    );
    for (code, n) in stats.errors() {
        e.sample("shardgate_errors_total", &[("code", &code.to_string())], n);
    }
    e.histogram(
        "shardgate_statement_duration_seconds",
        "Time from a statement's arrival to the end of its reply.",
        &[],
        &stats.latency(),
    );
    e.histogram(
        "shardgate_pool_wait_seconds",
        "Time statements waited for a backend connection.",
        &[],
        &stats.pool_wait(),
    );
    let reshard = &stats.reshard;
    let counters = [
        (
            "shardgate_reshard_held_statements_total",
            "Statements a resharding cutover held.",
            &reshard.held,
        ),
        (
            "shardgate_reshard_hold_timeouts_total",
            "Held statements released by hold_max_ms rather than by the workflow.",
            &reshard.hold_timeouts,
        ),
        (
            "shardgate_reshard_refused_total",
            "Statements reaching every shard refused while a source still held moved rows.",
            &reshard.refused,
        ),
    ];
    for (name, help, value) in counters {
        e.family(name, "counter", help);
        e.sample(name, &[], value.load(std::sync::atomic::Ordering::Relaxed));
    }
    e.histogram(
        "shardgate_reshard_hold_seconds",
        "How long statements a resharding cutover held waited.",
        &[],
        &Stats::snapshot(&reshard.hold_time),
    );
    e.family(
        "shardgate_reshard_inflight",
        "gauge",
        "Open transactions and running statements on keys a resharding workflow is moving (a cutover waits for none).",
    );
    e.sample(
        "shardgate_reshard_inflight",
        &[],
        reshard.inflight.load(std::sync::atomic::Ordering::SeqCst),
    );
    e.family(
        "shardgate_reshard_moves",
        "gauge",
        "Source shards of resharding workflows in the topology, by state.",
    );
    for (state, label) in [
        (MoveState::DualWrite, "dual_write"),
        (MoveState::Hold, "hold"),
        (MoveState::Cleanup, "cleanup"),
    ] {
        let n = routing
            .topology
            .moves()
            .iter()
            .filter(|m| m.state == state)
            .count();
        e.sample("shardgate_reshard_moves", &[("state", label)], n as u64);
    }
    let shards = routing.topology.shards();
    let backend: Vec<_> = routing
        .backend_times()
        .iter()
        .map(|h| Stats::snapshot(h))
        .collect();
    let name = "shardgate_backend_duration_seconds";
    e.family(
        name,
        "histogram",
        "Time a shard took to answer a statement (command sent to reply complete).",
    );
    for (shard, h) in shards.iter().zip(&backend) {
        if h.count > 0 {
            e.buckets(name, &[("shard", &shard.name)], h);
        }
    }
    let (bytes_in, bytes_out) = stats.bytes();
    e.family(
        "shardgate_client_received_bytes_total",
        "counter",
        "Bytes of statements received from clients.",
    );
    e.sample("shardgate_client_received_bytes_total", &[], bytes_in);
    e.family(
        "shardgate_client_sent_bytes_total",
        "counter",
        "Bytes of replies sent to clients.",
    );
    e.sample("shardgate_client_sent_bytes_total", &[], bytes_out);
    let analyzer = &shared.analyzer;
    e.family(
        "shardgate_plan_cache_hits_total",
        "counter",
        "Statements analysed from a cached plan.",
    );
    e.sample(
        "shardgate_plan_cache_hits_total",
        &[],
        analyzer.cache_hits(),
    );
    e.family(
        "shardgate_plan_cache_misses_total",
        "counter",
        "Statements that had to be parsed.",
    );
    e.sample(
        "shardgate_plan_cache_misses_total",
        &[],
        analyzer.cache_misses(),
    );
    e.family("shardgate_plan_cache_entries", "gauge", "Plans cached now.");
    e.sample("shardgate_plan_cache_entries", &[], analyzer.cache_len());
}

fn backends(e: &mut Exposition, routing: &Routing) {
    let backends = routing.topology.backends();
    let status: Vec<_> = routing.health().iter().map(|h| h.status()).collect();
    let labelled = || {
        backends.iter().zip(&status).map(|(b, s)| {
            let addr = format!("{}:{}", b.host, b.port);
            (b.name.as_str(), addr, s)
        })
    };
    e.family(
        "shardgate_backend_up",
        "gauge",
        "1 while the backend server's circuit breaker is closed (it accepts connections), else 0.",
    );
    for (name, addr, s) in labelled() {
        e.sample(
            "shardgate_backend_up",
            &[("backend", name), ("address", &addr)],
            u8::from(s.is_up()),
        );
    }
    e.family(
        "shardgate_backend_breaker_state",
        "gauge",
        "Circuit breaker state of the backend server: 1 for the current state.",
    );
    for (name, _, s) in labelled() {
        for (state, label) in [
            (BreakerState::Closed, "closed"),
            (BreakerState::Open, "open"),
            (BreakerState::Probing, "probing"),
        ] {
            let v = u8::from(s.state == state);
            e.sample(
                "shardgate_backend_breaker_state",
                &[("backend", name), ("state", label)],
                v,
            );
        }
    }
    e.family(
        "shardgate_backend_breaker_opened_total",
        "counter",
        "Times the backend server's circuit breaker opened.",
    );
    for (name, _, s) in labelled() {
        e.sample(
            "shardgate_backend_breaker_opened_total",
            &[("backend", name)],
            s.opened_total,
        );
    }
    e.family(
        "shardgate_backend_consecutive_failures",
        "gauge",
        "Connect or health-check failures in a row.",
    );
    for (name, _, s) in labelled() {
        let v = s.consecutive_failures;
        e.sample(
            "shardgate_backend_consecutive_failures",
            &[("backend", name)],
            v,
        );
    }
    e.family(
        "shardgate_backend_check_seconds",
        "gauge",
        "Duration of the last health check or probe of the backend server.",
    );
    for (name, _, s) in labelled() {
        if let Some((_, took)) = s.last_check {
            e.sample(
                "shardgate_backend_check_seconds",
                &[("backend", name)],
                took.as_secs_f64(),
            );
        }
    }
}

/// A per-shard pool metric: name, type, help, and how to read it from a shard's status.
type PoolFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PoolStatus) -> u64,
);

/// One shard's pools summed over workers.
fn shard_status(routing: &Routing, shard: ShardId) -> PoolStatus {
    let mut sum = PoolStatus::default();
    for pool in routing.shard_pools(shard) {
        let s = pool.status();
        sum.idle += s.idle;
        sum.in_use += s.in_use;
        sum.waiting += s.waiting;
        sum.max_size += s.max_size;
        sum.opened += s.opened;
        sum.connect_failures += s.connect_failures;
        sum.acquire_timeouts += s.acquire_timeouts;
        sum.expired += s.expired;
    }
    sum
}

fn pools(e: &mut Exposition, routing: &Routing) {
    let shards = routing.topology.shards();
    let status: Vec<(&str, PoolStatus)> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), shard_status(routing, ShardId(i as u32))))
        .collect();
    let families: [PoolFamily; 8] = [
        (
            "shardgate_pool_idle_connections",
            "gauge",
            "Idle backend connections of the shard.",
            |s| s.idle as u64,
        ),
        (
            "shardgate_pool_in_use_connections",
            "gauge",
            "Backend connections of the shard in use.",
            |s| s.in_use as u64,
        ),
        (
            "shardgate_pool_waiting",
            "gauge",
            "Statements waiting for a backend connection of the shard.",
            |s| s.waiting as u64,
        ),
        (
            "shardgate_pool_max_connections",
            "gauge",
            "Most backend connections of the shard (all workers).",
            |s| s.max_size as u64,
        ),
        (
            "shardgate_pool_opened_total",
            "counter",
            "Backend connections opened to the shard.",
            |s| s.opened,
        ),
        (
            "shardgate_pool_connect_failures_total",
            "counter",
            "Backend connects to the shard that failed.",
            |s| s.connect_failures,
        ),
        (
            "shardgate_pool_acquire_timeouts_total",
            "counter",
            "Statements that got no backend connection of the shard in time (ERR 1040).",
            |s| s.acquire_timeouts,
        ),
        (
            "shardgate_pool_expired_total",
            "counter",
            "Backend connections closed for idle timeout or max lifetime.",
            |s| s.expired,
        ),
    ];
    for (name, kind, help, value) in families {
        e.family(name, kind, help);
        for (shard, s) in &status {
            e.sample(name, &[("shard", shard)], value(s));
        }
    }
}

/// The backends' health as JSON lines for `/backends`: one object per server.
pub fn backends_json(shared: &Shared) -> String {
    let routing = shared.routing.load();
    let mut out = String::from("[");
    for (i, (b, h)) in routing
        .topology
        .backends()
        .iter()
        .zip(routing.health())
        .enumerate()
    {
        let s = h.status();
        let state = match s.state {
            BreakerState::Closed => "up",
            BreakerState::Open => "down",
            BreakerState::Probing => "probing",
        };
        let check_ms = s.last_check.map(|(_, took)| took.as_secs_f64() * 1000.0);
        let ago_ms = s.last_check.map(|(at, _)| at.elapsed().as_millis());
        let _ = write!(
            out,
            "{}\n  {{\"backend\": {}, \"address\": {}, \"state\": \"{state}\", \"consecutive_failures\": {}, \
             \"opened_total\": {}, \"last_check_ms\": {}, \"last_check_ago_ms\": {}, \"last_error\": {}}}",
            if i > 0 { "," } else { "" },
            json_string(&b.name),
            json_string(&format!("{}:{}", b.host, b.port)),
            s.consecutive_failures,
            s.opened_total,
            check_ms.map_or("null".to_string(), |v| format!("{v:.3}")),
            ago_ms.map_or("null".to_string(), |v| v.to_string()),
            s.last_error
                .as_deref()
                .map_or("null".to_string(), json_string),
        );
    }
    out.push_str("\n]\n");
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_json_strings_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(json_string("x\"y\u{1}"), "\"x\\\"y\\u0001\"");
    }
}
