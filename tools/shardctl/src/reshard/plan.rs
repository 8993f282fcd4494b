//! What each topology version of a workflow says: pure functions from the served topology to the next one.
//!
//! Every publish starts from what the proxies serve now (another operator may have pinned a tenant meanwhile) and
//! changes only this workflow's part: its `moves` entries, and at the flip the pins (a tenant move) or the shard
//! list (a split or merge). Each result is validated here, so the proxies never refuse what the controller sends.

use anyhow::{Context, bail};
use shardgate_reshard::{Kind, NewShard};
use shardgate_topology::spec::ShardSpec;
use shardgate_topology::{MoveSpec, MoveState, PinSpec, TenantRef, Topology, TopologySpec};

use super::tenant_of;
#[cfg(test)]
use shardgate_topology::PinTenant;

/// Which way keys are going: to the target (cutover) or back to the source (reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Back,
}

fn tenants(kind: &Kind) -> Vec<shardgate_topology::PinTenant> {
    match kind {
        Kind::MoveTenants { tenants, .. } => tenants.iter().map(|t| tenant_of(t)).collect(),
        _ => Vec::new(),
    }
}

/// `spec` with this workflow's moves replaced by `entries` (a shard and what proxies do about its moving keys), as
/// the next version.
pub fn with_moves(
    spec: &TopologySpec,
    workflow: &str,
    kind: &Kind,
    entries: &[(String, MoveState)],
    hold_ms: u64,
) -> anyhow::Result<TopologySpec> {
    let mut next = spec.clone();
    next.version = spec.version + 1;
    next.moves.retain(|m| m.workflow != workflow);
    for (shard, state) in entries {
        next.moves.push(MoveSpec {
            workflow: workflow.to_string(),
            shard: shard.clone(),
            tenants: tenants(kind),
            state: *state,
            hold_ms,
        });
    }
    next.validate().context("the next topology is invalid")?;
    Ok(next)
}

fn shard_spec(s: &NewShard, dedicated: bool) -> ShardSpec {
    ShardSpec {
        name: s.name.clone(),
        backend: s.backend.clone(),
        database: s.database.clone(),
        dedicated,
    }
}

/// `spec` with the dedicated shard a tenant move creates, if it creates one and `spec` lacks it.
pub fn with_new_shard(spec: &TopologySpec, kind: &Kind) -> TopologySpec {
    let mut next = spec.clone();
    let new = match kind {
        Kind::MoveTenants { new_shard, .. } => new_shard.as_ref(),
        _ => None,
    };
    if let Some(new) = new.filter(|n| !next.shards.iter().any(|s| s.name == n.name)) {
        next.shards.push(shard_spec(new, true));
    }
    next
}

/// Ownership in `direction` applied to `spec` (not yet validated nor versioned): pins for moved tenants, or the
/// shard list changed. `sources` are the tenant move's source shards (to pin them back on a reverse).
pub fn owned(
    spec: &TopologySpec,
    kind: &Kind,
    direction: Direction,
    original: &TopologySpec,
) -> TopologySpec {
    let mut next = with_new_shard(spec, kind);
    match (kind, direction) {
        (Kind::MoveTenants { tenants, to, .. }, Direction::Forward) => {
            for t in tenants {
                let tenant = tenant_of(t);
                next.pins.retain(|p| p.tenant != tenant);
                next.pins.push(PinSpec {
                    tenant,
                    shard: to.clone(),
                });
            }
        }
        (Kind::MoveTenants { tenants, .. }, Direction::Back) => {
            // Back to what the topology said before the workflow: the old pin, or none.
            for t in tenants {
                let tenant = tenant_of(t);
                next.pins.retain(|p| p.tenant != tenant);
                if let Some(old) = original.pins.iter().find(|p| p.tenant == tenant) {
                    next.pins.push(old.clone());
                }
            }
        }
        (Kind::Split { shard, into }, Direction::Forward) => {
            next.shards.retain(|s| s.name != *shard);
            next.shards
                .extend(into.iter().map(|s| shard_spec(s, false)));
        }
        (Kind::Merge { shards, into }, Direction::Forward) => {
            next.shards.retain(|s| !shards.contains(&s.name));
            next.shards.push(shard_spec(into, false));
        }
        (Kind::Split { shard, into }, Direction::Back) => {
            next.shards
                .retain(|s| !into.iter().any(|n| n.name == s.name));
            if let Some(old) = original.shards.iter().find(|s| s.name == *shard) {
                next.shards.push(old.clone());
            }
        }
        (Kind::Merge { shards, into }, Direction::Back) => {
            next.shards.retain(|s| s.name != into.name);
            next.shards.extend(
                original
                    .shards
                    .iter()
                    .filter(|s| shards.contains(&s.name))
                    .cloned(),
            );
        }
    }
    next
}

/// Whether `spec` already gives the keys to the side `direction` leads to (a controller killed just after
/// publishing the flip finds it done).
pub fn is_owned(spec: &TopologySpec, kind: &Kind, direction: Direction) -> bool {
    let has = |name: &str| spec.shards.iter().any(|s| s.name == name);
    let pinned_to = |t: &String, to: &String| {
        let tenant = tenant_of(t);
        spec.pins
            .iter()
            .any(|p| p.tenant == tenant && p.shard == *to)
    };
    match (kind, direction) {
        (Kind::MoveTenants { tenants, to, .. }, Direction::Forward) => {
            tenants.iter().all(|t| pinned_to(t, to))
        }
        (Kind::MoveTenants { tenants, to, .. }, Direction::Back) => {
            !tenants.iter().any(|t| pinned_to(t, to))
        }
        (Kind::Split { into, .. }, Direction::Forward) => into.iter().all(|s| has(&s.name)),
        (Kind::Split { shard, .. }, Direction::Back) => has(shard),
        (Kind::Merge { into, .. }, Direction::Forward) => has(&into.name),
        (Kind::Merge { shards, .. }, Direction::Back) => shards.iter().all(|s| has(s)),
    }
}

/// The next version after a flip in `direction`: ownership changed, this workflow's moves replaced by `after`
/// (whose shards must exist in the new shard list).
pub fn flipped(
    spec: &TopologySpec,
    original: &TopologySpec,
    workflow: &str,
    kind: &Kind,
    direction: Direction,
    after: &[(String, MoveState)],
    hold_ms: u64,
) -> anyhow::Result<TopologySpec> {
    let changed = owned(spec, kind, direction, original);
    // The moves are replaced before validation: the old ones may name a shard the flip removed.
    with_moves(&changed, workflow, kind, after, hold_ms)
}

/// The shard `tenant` lives on in `topology`, by the first table (listed ones first, then the keyspace's default
/// rule) whose vindex can route it: a string id has no place on a `hash` table, but does on an `xxhash` one.
pub fn tenant_home(topology: &Topology, tenant: &str) -> anyhow::Result<String> {
    let tenant_ref = match tenant.parse::<u64>() {
        Ok(n) => TenantRef::Int(n),
        Err(_) => TenantRef::Str(tenant),
    };
    let tables = topology
        .tables()
        .iter()
        .map(|t| t.name.as_str())
        .chain([""]);
    let mut last = None;
    for table in tables {
        match topology.route(table, tenant_ref) {
            Ok(id) => {
                let name = topology.shard(id).map(|s| s.name.clone());
                return name.context("a shard of the topology");
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("no table routes tenant {tenant}"),
    }
}

/// Checks a plan against the served topology before anything is created.
pub fn check(spec: &TopologySpec, kind: &Kind) -> anyhow::Result<()> {
    let first = spec
        .validate()
        .context("the served topology is invalid")?
        .shards()
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let exists = |name: &str| spec.shards.iter().any(|s| s.name == name);
    let dedicated = |name: &str| spec.shards.iter().any(|s| s.name == name && s.dedicated);
    for name in match kind {
        Kind::Split { shard, .. } => std::slice::from_ref(shard),
        Kind::Merge { shards, .. } => shards.as_slice(),
        Kind::MoveTenants { .. } => &[],
    } {
        if dedicated(name) {
            bail!(
                "{name:?} is a dedicated shard: it owns no key range to split or merge (move its tenants instead)"
            );
        }
    }
    match kind {
        Kind::MoveTenants {
            tenants,
            to,
            new_shard,
        } => {
            if tenants.is_empty() {
                bail!("name at least one tenant");
            }
            if !exists(to) && new_shard.is_none() {
                bail!(
                    "no shard {to:?} in the topology (give --backend to create it as a dedicated shard)"
                );
            }
        }
        Kind::Split { shard, into } => {
            if !exists(shard) {
                bail!("no shard {shard:?} in the topology");
            }
            if *shard == first {
                bail!(
                    "shard {shard:?} is the first shard, which holds the sequences and user locks: it cannot be split yet"
                );
            }
            if spec.pins.iter().any(|p| p.shard == *shard) {
                bail!("tenants are pinned to {shard:?}: move them first");
            }
            if into.len() < 2 {
                bail!("a split needs at least two new shards");
            }
        }
        Kind::Merge { shards, into: _ } => {
            for s in shards {
                if !exists(s) {
                    bail!("no shard {s:?} in the topology");
                }
                if *s == first {
                    bail!(
                        "shard {s:?} is the first shard, which holds the sequences and user locks: it cannot be merged yet"
                    );
                }
                if spec.pins.iter().any(|p| p.shard == *s) {
                    bail!("tenants are pinned to {s:?}: move them first");
                }
            }
            if shards.len() < 2 {
                bail!("a merge needs at least two shards");
            }
        }
    }
    // The shard list after the flip must cover the key space exactly once.
    let mut after = owned(spec, kind, Direction::Forward, spec);
    after.version += 1;
    after.moves.clear();
    after
        .validate()
        .context("the topology after this move would be invalid")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPOLOGY: &str = "version: 3\nkeyspace: app\nbackends: [{name: a, host: h, port: 1}]\n\
        shards: [{name: '-40', backend: a, database: d0}, {name: '40-80', backend: a, database: d1}, \
        {name: '80-', backend: a, database: d2}]\n";

    fn spec() -> TopologySpec {
        TopologySpec::from_yaml_str(TOPOLOGY).unwrap()
    }

    fn new(name: &str) -> NewShard {
        NewShard {
            name: name.into(),
            backend: "a".into(),
            database: format!("app_{}", name.replace('-', "_")),
        }
    }

    #[test]
    fn a_tenant_move_is_announced_held_then_flipped_to_a_pin_and_back() {
        let kind = Kind::MoveTenants {
            tenants: vec!["42".into()],
            to: "80-".into(),
            new_shard: None,
        };
        check(&spec(), &kind).unwrap();
        let dual = with_moves(
            &spec(),
            "wf",
            &kind,
            &[("-40".into(), MoveState::DualWrite)],
            2000,
        )
        .unwrap();
        assert_eq!(dual.version, 4);
        assert_eq!(dual.moves.len(), 1);
        assert_eq!(dual.moves[0].tenants, vec![PinTenant::Int(42)]);
        let held =
            with_moves(&dual, "wf", &kind, &[("-40".into(), MoveState::Hold)], 2000).unwrap();
        assert_eq!(
            (held.version, held.moves.len(), held.moves[0].state),
            (5, 1, MoveState::Hold)
        );
        assert!(!is_owned(&held, &kind, Direction::Forward));
        let cleanup = [("-40".to_string(), MoveState::Cleanup)];
        let flipped = flipped(
            &held,
            &spec(),
            "wf",
            &kind,
            Direction::Forward,
            &cleanup,
            2000,
        )
        .unwrap();
        assert_eq!(flipped.version, 6);
        assert_eq!(flipped.pins.len(), 1);
        assert_eq!(flipped.moves[0].state, MoveState::Cleanup);
        assert!(is_owned(&flipped, &kind, Direction::Forward));
        let back = flipped_back(&flipped, &kind);
        assert!(
            back.pins.is_empty(),
            "no pin before the workflow, none after a reverse"
        );
        assert!(is_owned(&back, &kind, Direction::Back));
        let done = with_moves(&flipped, "wf", &kind, &[], 2000).unwrap();
        assert!(done.moves.is_empty());
    }

    fn flipped_back(spec: &TopologySpec, kind: &Kind) -> TopologySpec {
        let sources = [("-40".to_string(), MoveState::DualWrite)];
        flipped(
            spec,
            &self::spec(),
            "wf",
            kind,
            Direction::Back,
            &sources,
            2000,
        )
        .unwrap()
    }

    #[test]
    fn a_split_replaces_the_shard_and_a_reverse_restores_it() {
        let kind = Kind::Split {
            shard: "40-80".into(),
            into: vec![new("40-60"), new("60-80")],
        };
        check(&spec(), &kind).unwrap();
        let forward =
            flipped(&spec(), &spec(), "wf", &kind, Direction::Forward, &[], 2000).unwrap();
        let names: Vec<&str> = forward.shards.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["-40", "80-", "40-60", "60-80"]);
        assert!(is_owned(&forward, &kind, Direction::Forward));
        let sources = [("40-80".to_string(), MoveState::DualWrite)];
        let back = flipped(
            &forward,
            &spec(),
            "wf",
            &kind,
            Direction::Back,
            &sources,
            2000,
        )
        .unwrap();
        assert!(
            back.shards
                .iter()
                .any(|s| s.name == "40-80" && s.database == "d1")
        );
        assert_eq!(back.shards.len(), 3);
        assert!(is_owned(&back, &kind, Direction::Back));
    }

    #[test]
    fn impossible_plans_are_refused_before_anything_is_created() {
        let split_first = Kind::Split {
            shard: "-40".into(),
            into: vec![new("-20"), new("20-40")],
        };
        assert!(
            check(&spec(), &split_first)
                .unwrap_err()
                .to_string()
                .contains("first shard")
        );
        let gap = Kind::Split {
            shard: "40-80".into(),
            into: vec![new("40-50"), new("60-80")],
        };
        assert!(
            check(&spec(), &gap).is_err(),
            "the new shards must cover the old range"
        );
        let merge = Kind::Merge {
            shards: vec!["40-80".into(), "80-".into()],
            into: new("40-"),
        };
        check(&spec(), &merge).unwrap();
        let nowhere = Kind::MoveTenants {
            tenants: vec!["42".into()],
            to: "nowhere".into(),
            new_shard: None,
        };
        assert!(check(&spec(), &nowhere).is_err());
        let mut pinned = spec();
        pinned.pins.push(PinSpec {
            tenant: PinTenant::Int(9),
            shard: "40-80".into(),
        });
        let split = Kind::Split {
            shard: "40-80".into(),
            into: vec![new("40-60"), new("60-80")],
        };
        assert!(
            check(&pinned, &split)
                .unwrap_err()
                .to_string()
                .contains("pinned")
        );
    }
}
