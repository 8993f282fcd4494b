//! `shardctl topology show FILE [--json]`: shards with their ranges, backends and databases, and
//! the pins, as an aligned table or as JSON.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use shardgate_topology::{Backend, PinTenant, Topology};

/// Loads `file` and prints it as a table, or as JSON with `json`.
pub fn run(file: &Path, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let topology = Topology::load(file)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&to_json(&topology))?
        )?;
    } else {
        out.write_all(table(&topology).as_bytes())?;
    }
    Ok(())
}

/// `host:port`, with IPv6 hosts in brackets.
fn address(backend: Option<&Backend>) -> String {
    match backend {
        Some(b) if b.host.contains(':') => format!("[{}]:{}", b.host, b.port),
        Some(b) => format!("{}:{}", b.host, b.port),
        None => String::new(),
    }
}

/// A range end as 16 hex digits, or `top` for the end of the key space.
fn end_hex(end: Option<u64>) -> String {
    end.map_or_else(|| "top".to_owned(), |e| format!("{e:016x}"))
}

/// Pads each column to its widest cell; two spaces between columns.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// The human-readable view.
fn table(topology: &Topology) -> String {
    let mut text = format!(
        "keyspace {}, version {}, {} shards, {} backends, default sharding column {}\n\n",
        topology.keyspace(),
        topology.version(),
        topology.shards().len(),
        topology.backends().len(),
        topology.default_sharding_column(),
    );
    let mut rows = vec![
        ["SHARD", "START", "END", "BACKEND", "DATABASE"]
            .map(String::from)
            .to_vec(),
    ];
    for shard in topology.shards() {
        let backend = topology.backend_of(shard);
        let (start, end) = if shard.dedicated {
            ("dedicated".to_string(), "-".to_string())
        } else {
            (
                format!("{:016x}", shard.range.start),
                end_hex(shard.range.end),
            )
        };
        rows.push(vec![
            shard.name.clone(),
            start,
            end,
            format!(
                "{} {}",
                backend.map(|b| b.name.as_str()).unwrap_or_default(),
                address(backend)
            ),
            shard.database.clone(),
        ]);
    }
    text.push_str(&aligned(&rows));
    if !topology.tables().is_empty() {
        let mut rows = vec![
            ["TABLE", "COLUMN", "VINDEX", "SEQUENCE"]
                .map(String::from)
                .to_vec(),
        ];
        for t in topology.tables() {
            let sequence = t
                .auto_increment
                .as_ref()
                .map_or_else(String::new, |a| format!("{} from {}", a.column, a.sequence));
            rows.push(vec![
                t.name.clone(),
                t.column.clone(),
                t.vindex.to_string(),
                sequence,
            ]);
        }
        text.push('\n');
        text.push_str(&aligned(&rows));
    }
    if !topology.reference_tables().is_empty() {
        let mut rows = vec![vec!["REFERENCE TABLE (a copy on every shard)".to_string()]];
        for name in topology.reference_tables() {
            rows.push(vec![name.clone()]);
        }
        text.push('\n');
        text.push_str(&aligned(&rows));
    }
    if !topology.pins().is_empty() {
        let mut rows = vec![["PINNED TENANT", "SHARD"].map(String::from).to_vec()];
        for pin in topology.pins() {
            let shard = topology
                .shard(pin.shard)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            rows.push(vec![pin.tenant.to_string(), shard]);
        }
        text.push('\n');
        text.push_str(&aligned(&rows));
    }
    text
}

/// The machine-readable view; range ends are `null` at the top of the key space.
fn to_json(topology: &Topology) -> Value {
    let shards: Vec<Value> = topology
        .shards()
        .iter()
        .map(|shard| {
            let backend = topology.backend_of(shard);
            json!({
                "id": shard.id.0,
                "name": shard.name,
                "start": (!shard.dedicated).then(|| format!("{:016x}", shard.range.start)),
                "end": shard.range.end.filter(|_| !shard.dedicated).map(|e| format!("{e:016x}")),
                "dedicated": shard.dedicated,
                "backend": backend.map(|b| b.name.as_str()),
                "address": address(backend),
                "database": shard.database,
            })
        })
        .collect();
    let pins: Vec<Value> = topology
        .pins()
        .iter()
        .map(|pin| {
            let tenant = match &pin.tenant {
                PinTenant::Int(n) => json!(n),
                PinTenant::Str(s) => json!(s),
            };
            json!({ "tenant": tenant, "shard": topology.shard(pin.shard).map(|s| s.name.as_str()) })
        })
        .collect();
    let tables: Vec<Value> = topology
        .tables()
        .iter()
        .map(|t| {
            let auto_increment = t
                .auto_increment
                .as_ref()
                .map(|a| json!({ "column": a.column, "sequence": a.sequence }));
            json!({ "name": t.name, "column": t.column, "vindex": t.vindex.name(), "auto_increment": auto_increment })
        })
        .collect();
    let backends: Vec<Value> = topology
        .backends()
        .iter()
        .map(|b| json!({ "name": b.name, "host": b.host, "port": b.port }))
        .collect();
    json!({
        "version": topology.version(),
        "keyspace": topology.keyspace(),
        "sharding_column": topology.default_sharding_column(),
        "tables": tables,
        "reference_tables": topology.reference_tables(),
        "backends": backends,
        "shards": shards,
        "pins": pins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Topology {
        Topology::from_yaml_str(
            "version: 2\nkeyspace: app\ntables: [{name: events, vindex: xxhash, auto_increment: {column: id, sequence: events_seq}}, {name: countries, type: reference}]\n\
             backends: [{name: db0, host: 127.0.0.1, port: 3306}, {name: db1, host: '::1', port: 3307}]\n\
             shards: [{name: '-80', backend: db0, database: app_000}, {name: '80-', backend: db1, database: app_001}]\n\
             pins: [{tenant: 42, shard: '80-'}, {tenant: acme, shard: '-80'}]\n",
        )
        .unwrap()
    }

    #[test]
    fn table_lists_each_shard_with_hex_range_address_and_database() {
        let text = table(&sample());
        assert!(
            text.contains("-80    0000000000000000  8000000000000000  db0 127.0.0.1:3306  app_000"),
            "{text}"
        );
        assert!(
            text.contains("80-    8000000000000000  top               db1 [::1]:3307      app_001"),
            "{text}"
        );
        assert!(text.contains("42             80-"), "{text}");
        assert!(text.contains("\"acme\"         -80"), "{text}");
        assert!(
            text.contains("events  tenant_id  xxhash  id from events_seq"),
            "{text}"
        );
        assert!(
            text.contains("REFERENCE TABLE (a copy on every shard)\ncountries"),
            "{text}"
        );
    }

    #[test]
    fn json_has_shards_pins_and_a_null_end_at_the_top() {
        let value = to_json(&sample());
        assert_eq!(value["version"], 2);
        assert_eq!(value["shards"][1]["end"], Value::Null);
        assert_eq!(value["shards"][0]["end"], "8000000000000000");
        assert_eq!(value["shards"][1]["address"], "[::1]:3307");
        assert_eq!(value["pins"][0]["tenant"], 42);
        assert_eq!(value["pins"][1]["tenant"], "acme");
        assert_eq!(value["tables"][0]["vindex"], "xxhash");
        assert_eq!(value["reference_tables"][0], "countries");
        assert_eq!(
            value["tables"][0]["auto_increment"]["sequence"],
            "events_seq"
        );
    }
}
