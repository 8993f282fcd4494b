//! `shardctl topology generate`: a valid topology with `n` evenly split shards spread over the
//! backends in contiguous blocks (shard `i` on backend `i * B / n`), database `{prefix}_{i:03}`.
//! Used by `deploy/dev-cluster.sh` and by tests.

use std::io::Write;

use clap::Args;
use shardgate_topology::spec::{BackendSpec, DEFAULT_SHARDING_COLUMN, ShardSpec, TopologySpec};
use shardgate_topology::{Topology, even_shard_ranges};

/// Arguments of `shardctl topology generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of shards: a power of two from 1 to 256.
    #[arg(long, default_value_t = 128)]
    pub shards: u32,
    /// Keyspace: the logical database name clients USE.
    #[arg(long, default_value = "app")]
    pub keyspace: String,
    /// A backend as NAME=HOST:PORT (IPv6 hosts in brackets); repeat for more, in order.
    #[arg(long = "backend", value_name = "NAME=HOST:PORT", required = true, value_parser = parse_backend)]
    pub backends: Vec<BackendSpec>,
    /// Topology version.
    #[arg(long, default_value_t = 1)]
    pub version: u64,
    /// Prefix of the shard databases (`{prefix}_{i:03}`); default: the keyspace.
    #[arg(long)]
    pub database_prefix: Option<String>,
    /// Sharding column of every table.
    #[arg(long, default_value = DEFAULT_SHARDING_COLUMN)]
    pub sharding_column: String,
}

/// Builds, validates and prints the topology YAML.
pub fn run(args: &GenerateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let topology = generate(args)?;
    out.write_all(topology.to_yaml().as_bytes())?;
    Ok(())
}

/// The generated topology, validated like any other.
fn generate(args: &GenerateArgs) -> anyhow::Result<Topology> {
    let ranges = even_shard_ranges(args.shards)?;
    let prefix = args.database_prefix.as_deref().unwrap_or(&args.keyspace);
    let n = u64::from(args.shards);
    let b = u64::try_from(args.backends.len())?;
    let shards = ranges
        .into_iter()
        .zip(0u64..)
        .map(|((name, _), i)| {
            // Contiguous blocks: i * B / n < B because i < n.
            let backend = usize::try_from(i * b / n)
                .ok()
                .and_then(|k| args.backends.get(k));
            ShardSpec {
                name,
                backend: backend.map(|b| b.name.clone()).unwrap_or_default(),
                database: format!("{prefix}_{i:03}"),
                dedicated: false,
            }
        })
        .collect();
    let spec = TopologySpec {
        version: args.version,
        keyspace: args.keyspace.clone(),
        sharding_column: args.sharding_column.clone(),
        tables: Vec::new(),
        backends: args.backends.clone(),
        shards,
        pins: Vec::new(),
        moves: Vec::new(),
    };
    Ok(spec.validate()?)
}

/// Parses `NAME=HOST:PORT`; `HOST` may be `[v6 address]`.
fn parse_backend(text: &str) -> Result<BackendSpec, String> {
    let (name, address) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=HOST:PORT (no '=')"))?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not NAME=HOST:PORT (no ':PORT')"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: port {port:?} is not a number from 1 to 65535"))?;
    if name.is_empty() || host.is_empty() || port == 0 {
        return Err(format!(
            "{text:?} is not NAME=HOST:PORT with a name, a host and a non-zero port"
        ));
    }
    Ok(BackendSpec {
        name: name.to_owned(),
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(shards: u32, backends: &[&str]) -> GenerateArgs {
        GenerateArgs {
            shards,
            keyspace: "app".into(),
            backends: backends.iter().map(|b| parse_backend(b).unwrap()).collect(),
            version: 1,
            database_prefix: None,
            sharding_column: DEFAULT_SHARDING_COLUMN.into(),
        }
    }

    #[test]
    fn generated_yaml_validates_and_spreads_shards_in_contiguous_blocks() {
        let args = args(
            128,
            &[
                "db0=127.0.0.1:3307",
                "db1=127.0.0.1:3308",
                "db2=127.0.0.1:3309",
            ],
        );
        let mut out = Vec::new();
        run(&args, &mut out).unwrap();
        let topology = Topology::from_yaml_str(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(topology.shards().len(), 128);
        let backends: Vec<usize> = topology.shards().iter().map(|s| s.backend).collect();
        assert!(
            backends.windows(2).all(|w| w[0] <= w[1]),
            "blocks must be contiguous"
        );
        let counts: Vec<usize> = (0..3)
            .map(|b| backends.iter().filter(|&&x| x == b).count())
            .collect();
        assert_eq!(counts, [43, 43, 42]);
        assert_eq!(topology.shards()[0].name, "-02");
        assert_eq!(topology.shards()[0].database, "app_000");
        assert_eq!(topology.shards()[127].database, "app_127");
    }

    #[test]
    fn database_prefix_and_version_are_honoured() {
        let mut a = args(2, &["db0=h:1"]);
        a.database_prefix = Some("tenants".into());
        a.version = 9;
        let topology = generate(&a).unwrap();
        assert_eq!(topology.version(), 9);
        assert_eq!(topology.shards()[1].database, "tenants_001");
    }

    #[test]
    fn a_shard_count_that_is_not_a_power_of_two_is_refused() {
        let err = generate(&args(100, &["db0=h:1"])).unwrap_err();
        assert!(err.to_string().contains("100"), "{err}");
    }

    #[test]
    fn an_unsafe_database_prefix_is_refused_by_validation() {
        let mut a = args(2, &["db0=h:1"]);
        a.database_prefix = Some("bad-name".into());
        assert!(
            generate(&a)
                .unwrap_err()
                .to_string()
                .contains("not a safe identifier")
        );
    }

    #[test]
    fn backend_arguments_parse_name_host_and_port() {
        let b = parse_backend("db0=127.0.0.1:3307").unwrap();
        assert_eq!(
            (b.name.as_str(), b.host.as_str(), b.port),
            ("db0", "127.0.0.1", 3307)
        );
        let b = parse_backend("v6=[::1]:3306").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 3306));
        for bad in [
            "db0",
            "db0=host",
            "db0=host:0",
            "db0=host:x",
            "=host:1",
            "db0=:1",
        ] {
            assert!(parse_backend(bad).is_err(), "{bad}");
        }
    }
}
