//! `shardctl topology pin TENANT SHARD`: sends a tenant to a chosen shard (or back to the hash with `--remove`)
//! by writing the next topology version, either to the file a proxy watches or through a proxy's admin endpoint.
//!
//! Only routing changes: moving the tenant's rows is resharding. The new version is the served one plus one, built
//! from what the proxy (or the file) has now, and validated here before it is sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use shardgate_topology::{PinSpec, PinTenant, TopologySpec};

/// Arguments of `shardctl topology pin`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["file", "admin"])))]
pub struct PinArgs {
    /// The tenant id (an integer, or a string for string-keyed tables).
    pub tenant: String,
    /// The shard to send it to (its name, e.g. `-80`); leave out with `--remove`.
    #[arg(required_unless_present = "remove")]
    pub shard: Option<String>,
    /// Remove the tenant's pin instead: it goes back to where the hash sends it.
    #[arg(long, conflicts_with = "shard")]
    pub remove: bool,
    /// Rewrite this topology file (written beside it, then renamed over it; a proxy watching it reloads).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// A proxy's admin endpoint (`127.0.0.1:15001`): read its topology, send the next one with PUT /topology.
    #[arg(long)]
    pub admin: Option<String>,
}

/// Runs the command; prints what changed.
pub fn run(args: &PinArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let shard = if args.remove {
        None
    } else {
        args.shard.as_deref()
    };
    let tenant = tenant_of(&args.tenant);
    match (&args.file, &args.admin) {
        (Some(file), _) => {
            let version = pin_file(file, tenant, shard)?;
            writeln!(out, "wrote {} version {version}", file.display())?;
        }
        (None, Some(admin)) => {
            let answer = pin_via_admin(admin, tenant, shard)?;
            writeln!(out, "{admin}: {}", answer.trim())?;
        }
        (None, None) => bail!("give --file or --admin"),
    }
    Ok(())
}

/// `42` is an integer tenant, anything else a string one.
pub fn tenant_of(text: &str) -> PinTenant {
    match text.parse::<u64>() {
        Ok(n) => PinTenant::Int(n),
        Err(_) => PinTenant::Str(text.to_string()),
    }
}

/// The next version of `spec` with `tenant` pinned to `shard` (`None`: unpinned), validated.
pub fn with_pin(
    spec: &TopologySpec,
    tenant: PinTenant,
    shard: Option<&str>,
) -> anyhow::Result<TopologySpec> {
    let mut next = spec.clone();
    next.version = spec.version + 1;
    let before = next.pins.len();
    next.pins.retain(|p| p.tenant != tenant);
    match shard {
        Some(shard) => next.pins.push(PinSpec {
            tenant,
            shard: shard.to_string(),
        }),
        None if next.pins.len() == before => bail!("tenant {tenant:?} has no pin to remove"),
        None => {}
    }
    next.validate()?;
    Ok(next)
}

/// Rewrites `file` with the pin; returns the new version.
pub fn pin_file(file: &Path, tenant: PinTenant, shard: Option<&str>) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let next = with_pin(&TopologySpec::from_yaml_str(&text)?, tenant, shard)?;
    let tmp = file.with_extension("yaml.shardctl-tmp");
    std::fs::write(&tmp, next.to_yaml()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("renaming over {}", file.display()))?;
    Ok(next.version)
}

/// Reads the topology a proxy serves, sends the next one with the pin; returns the proxy's answer.
pub fn pin_via_admin(
    admin: &str,
    tenant: PinTenant,
    shard: Option<&str>,
) -> anyhow::Result<String> {
    let (status, current) = http(admin, "GET", "/topology", "")?;
    if status != 200 {
        bail!(
            "{admin}: GET /topology answered {status}: {}",
            current.trim()
        );
    }
    let next = with_pin(&TopologySpec::from_yaml_str(&current)?, tenant, shard)?;
    let (status, answer) = http(admin, "PUT", "/topology", &next.to_yaml())?;
    if status != 200 {
        bail!(
            "{admin}: the proxy refused the topology ({status}): {}",
            answer.trim()
        );
    }
    Ok(answer)
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut tcp = TcpStream::connect(addr)
        .with_context(|| format!("connecting to the admin endpoint {addr}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    tcp.read_to_string(&mut reply)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{addr} did not answer HTTP"))?;
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = "version: 3\nkeyspace: app\nbackends: [{name: a, host: h, port: 1}]\n\
        shards: [{name: '-80', backend: a, database: d0}, {name: '80-', backend: a, database: d1}]\n";

    #[test]
    fn a_pin_is_added_moved_and_removed_each_time_as_the_next_version() {
        let spec = TopologySpec::from_yaml_str(TOPOLOGY).unwrap();
        let pinned = with_pin(&spec, tenant_of("42"), Some("80-")).unwrap();
        assert_eq!(pinned.version, 4);
        assert_eq!(pinned.pins.len(), 1);
        let moved = with_pin(&pinned, tenant_of("42"), Some("-80")).unwrap();
        assert_eq!(
            (
                moved.version,
                moved.pins.len(),
                moved.pins[0].shard.as_str()
            ),
            (5, 1, "-80")
        );
        let removed = with_pin(&moved, tenant_of("42"), None).unwrap();
        assert!(removed.pins.is_empty());
        assert!(
            with_pin(&removed, tenant_of("42"), None).is_err(),
            "nothing to remove"
        );
        assert!(
            with_pin(&spec, tenant_of("42"), Some("nowhere")).is_err(),
            "validated"
        );
        assert_eq!(tenant_of("acme"), PinTenant::Str("acme".into()));
    }

    #[test]
    fn the_file_is_rewritten_whole_with_the_next_version() {
        let dir = std::env::temp_dir().join(format!("shardctl-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("topology.yaml");
        std::fs::write(&file, TOPOLOGY).unwrap();
        assert_eq!(pin_file(&file, tenant_of("7"), Some("80-")).unwrap(), 4);
        let back = shardgate_topology::Topology::load(&file).unwrap();
        assert_eq!(back.version(), 4);
        assert_eq!(back.pins().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
