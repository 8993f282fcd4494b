//! `shardctl topology validate FILE`: the same checks the proxy runs before serving a file.

use std::io::Write;
use std::path::Path;

use shardgate_topology::Topology;

/// Loads and validates `file`; prints `ok: version N, S shards, B backends`. An invalid file is
/// returned as the error, whose problems the caller lists.
pub fn run(file: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let topology = Topology::load(file)?;
    writeln!(out, "{}", summary(&topology))?;
    Ok(())
}

/// The one-line verdict for a valid topology.
fn summary(topology: &Topology) -> String {
    format!(
        "ok: version {}, {} shards, {} backends",
        topology.version(),
        topology.shards().len(),
        topology.backends().len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_states_version_shards_and_backends() {
        let topology = Topology::from_yaml_str(
            "version: 3\nkeyspace: app\nbackends: [{name: a, host: h, port: 1}, {name: b, host: h, port: 2}]\n\
             shards: [{name: '-80', backend: a, database: d0}, {name: '80-', backend: b, database: d1}]\n",
        )
        .unwrap();
        assert_eq!(summary(&topology), "ok: version 3, 2 shards, 2 backends");
    }
}
