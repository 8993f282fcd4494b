//! Checks after a workflow, made behind the proxy's back on every shard database: each row the clients were told
//! about is on the shard the proxy's final topology routes it to, exactly as the ledger says; bulk rows nobody
//! touched are all there, unchanged; no tenant has rows anywhere else; no trigger is left.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use mysql_async::prelude::{FromRow, Queryable};
use shardgate_topology::{TenantRef, Topology};

use super::data::{PRISTINE, ROW_COLUMNS, TABLES, Tenant, bulk_row};
use super::workload::{Key, Report, Row};
use crate::harness::Cluster;

/// How many differences a failing check prints.
const SHOWN: usize = 20;

/// A shard database on one of the cluster's servers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Index into [`Cluster::backends`].
    pub backend: usize,
    pub database: String,
}

/// The topology the proxy serves now (`GET /topology`), parsed by the topology crate.
pub async fn served_topology(cluster: &Cluster) -> Topology {
    let (status, yaml) = cluster.proxy().admin_get("/topology").await;
    assert_eq!(status, 200, "GET /topology: {yaml}");
    Topology::from_yaml_str(&yaml)
        .unwrap_or_else(|e| panic!("GET /topology served an invalid topology: {e:?}\n{yaml}"))
}

/// Where `topology` keeps the shard named `name`.
pub fn place_of(cluster: &Cluster, topology: &Topology, name: &str) -> Place {
    let id = topology
        .shard_by_name(name)
        .unwrap_or_else(|| panic!("the topology has no shard {name}"));
    let shard = topology.shard(id).expect("a listed shard");
    let backend = topology.backend_of(shard).expect("a listed backend");
    let index = cluster
        .backends()
        .iter()
        .position(|b| b.port() == backend.port)
        .unwrap_or_else(|| {
            panic!(
                "shard {name} is on port {}, no server of the cluster",
                backend.port
            )
        });
    Place {
        backend: index,
        database: shard.database.clone(),
    }
}

/// The name of the shard `topology` routes `tenant` to.
/// Asserts `tenant` has no pin and so lives where the hash puts it, on `home` (`when`: for the message).
pub fn assert_unpinned_on(topology: &Topology, tenant: u64, home: &str, when: &str) {
    assert!(
        topology
            .pins()
            .iter()
            .all(|p| p.tenant != shardgate_topology::PinTenant::Int(tenant)),
        "no pin for tenant {tenant} {when}: {}",
        topology.to_yaml()
    );
    assert_eq!(
        owner_name(topology, tenant),
        home,
        "tenant {tenant} lives on {home} {when}"
    );
}

pub fn owner_name(topology: &Topology, tenant: u64) -> String {
    let id = topology
        .route(TABLES[0], TenantRef::Int(tenant))
        .unwrap_or_else(|e| panic!("cannot route tenant {tenant}: {e:?}"));
    topology.shard(id).expect("a routed shard").name.clone()
}

/// Runs a query on `place`; `Ok(empty)` when the database or table does not exist (dropped by a workflow).
async fn query<T: FromRow + Send + 'static>(cluster: &Cluster, place: &Place, sql: &str) -> Vec<T> {
    let backend = &cluster.backends()[place.backend];
    let mut conn = match mysql_async::Conn::new(backend.opts(Some(&place.database))).await {
        Ok(conn) => conn,
        Err(mysql_async::Error::Server(e)) if e.code == 1049 => return Vec::new(),
        Err(e) => panic!("cannot connect to {place:?}: {e}"),
    };
    let rows = match conn.query(sql).await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(e)) if e.code == 1146 => Vec::new(),
        Err(e) => panic!("{place:?} refused `{sql}`: {e}"),
    };
    let _ = conn.disconnect().await;
    rows
}

/// Every tenant's rows on the shard `topology` routes it to equal the ledger, and its untouched bulk rows are all
/// there; returns how many rows were compared.
pub async fn rows_match_ledger(
    cluster: &Cluster,
    topology: &Topology,
    tenants: &[Tenant],
    report: &Report,
) -> u64 {
    let mut problems = Vec::new();
    let mut compared = 0u64;
    for tenant in tenants {
        let place = place_of(cluster, topology, &owner_name(topology, tenant.id));
        for (table_index, table) in TABLES.iter().enumerate() {
            let bulk = tenant.bulk[table_index];
            let is_bulk = format!("(id BETWEEN 1 AND {bulk} AND {PRISTINE})");
            let pristine: HashSet<i64> = query::<i64>(
                cluster,
                &place,
                &format!(
                    "SELECT id FROM `{table}` WHERE tenant_id = {} AND {is_bulk}",
                    tenant.id
                ),
            )
            .await
            .into_iter()
            .collect();
            let touched: BTreeMap<i64, Row> = query::<(i64, i64, Option<String>, String, String)>(
                cluster,
                &place,
                &format!(
                    "SELECT id, {ROW_COLUMNS} FROM `{table}` \
                     WHERE tenant_id = {} AND {is_bulk} IS NOT TRUE",
                    tenant.id
                ),
            )
            .await
            .into_iter()
            .map(|(id, ver, note, created_at, uid)| {
                (
                    id,
                    Row {
                        ver,
                        note,
                        created_at,
                        uid,
                    },
                )
            })
            .collect();
            compared += (pristine.len() + touched.len()) as u64;
            let key = |id| Key {
                table: table_index,
                tenant: tenant.id,
                id,
            };
            let mut explain = |what: String| {
                problems.push(format!("{table} tenant {} on {place:?}: {what}", tenant.id))
            };
            for (k, expected) in report
                .ledger
                .iter()
                .filter(|(k, _)| k.table == table_index && k.tenant == tenant.id)
            {
                let found = touched.get(&k.id);
                match (expected, found) {
                    (Some(want), Some(got)) if want == got => {}
                    // A bulk row read back unchanged (after a rolled-back transaction).
                    (Some(want), None) if pristine.contains(&k.id) && *want == bulk_row(k.id) => {}
                    (None, None) if !pristine.contains(&k.id) => {}
                    _ => explain(format!(
                        "id {}: ledger {expected:?}, shard {found:?}{}",
                        k.id,
                        if pristine.contains(&k.id) {
                            " (an untouched bulk row)"
                        } else {
                            ""
                        }
                    )),
                }
            }
            for id in touched.keys() {
                if !report.ledger.contains_key(&key(*id)) && !report.ambiguous.contains(&key(*id)) {
                    explain(format!(
                        "id {id}: a row no client wrote or was told about: {:?}",
                        touched[id]
                    ));
                }
            }
            let missing: Vec<i64> = (1..=bulk)
                .filter(|id| !pristine.contains(id))
                .filter(|id| {
                    !report.ledger.contains_key(&key(*id)) && !report.ambiguous.contains(&key(*id))
                })
                .collect();
            if !missing.is_empty() {
                explain(format!(
                    "{} untouched bulk rows missing or changed, e.g. ids {:?}",
                    missing.len(),
                    &missing[..missing.len().min(10)]
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences between the shards and the ledger:\n{}",
        problems.len(),
        problems[..problems.len().min(SHOWN)].join("\n")
    );
    compared
}

/// Every database `topology` or the cluster's first topology names (plus `extra`).
pub fn all_places(cluster: &Cluster, topology: &Topology, extra: &[Place]) -> BTreeSet<Place> {
    let mut places: BTreeSet<Place> = cluster
        .shards()
        .iter()
        .map(|s| Place {
            backend: s.backend,
            database: s.database.clone(),
        })
        .collect();
    for shard in topology.shards() {
        places.insert(place_of(cluster, topology, &shard.name));
    }
    places.extend(extra.iter().cloned());
    places
}

/// Rows of every tenant of `tenants` live only on the shard `topology` routes it to, and no other tenant has rows
/// anywhere; returns the row counts per place.
pub async fn rows_only_on_owners(
    cluster: &Cluster,
    topology: &Topology,
    tenants: &[Tenant],
    extra: &[Place],
) -> BTreeMap<Place, u64> {
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for place in all_places(cluster, topology, extra) {
        let mut here = 0;
        for table in TABLES {
            let per_tenant: Vec<(u64, u64)> = query(
                cluster,
                &place,
                &format!("SELECT tenant_id, COUNT(*) FROM `{table}` GROUP BY tenant_id"),
            )
            .await;
            for (tenant, rows) in per_tenant {
                here += rows;
                if !tenants.iter().any(|t| t.id == tenant) {
                    problems.push(format!(
                        "{place:?} {table}: {rows} rows of tenant {tenant}, which no test wrote"
                    ));
                    continue;
                }
                let owner = place_of(cluster, topology, &owner_name(topology, tenant));
                if owner != place {
                    problems.push(format!(
                        "{place:?} {table}: {rows} rows of tenant {tenant}, \
                         which belongs on {owner:?}"
                    ));
                }
            }
        }
        counts.insert(place, here);
    }
    assert!(
        problems.is_empty(),
        "rows where they do not belong:\n{}",
        problems.join("\n")
    );
    counts
}

/// The `(schema, trigger)` pairs on every server of the cluster (the tests create none of their own).
pub async fn triggers(cluster: &Cluster) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for backend in cluster.backends() {
        let found: Vec<(String, String)> = backend
            .query(
                None,
                "SELECT TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA NOT IN \
                 ('mysql', 'sys', 'information_schema', 'performance_schema')",
            )
            .await;
        all.extend(found);
    }
    all
}

/// Asserts no trigger is left on any server.
pub async fn no_triggers_left(cluster: &Cluster) {
    let left = triggers(cluster).await;
    assert!(left.is_empty(), "triggers left behind: {left:?}");
}

/// Asserts the served topology lists no move.
pub fn no_moves_left(topology: &Topology) {
    assert!(
        topology.moves().is_empty(),
        "moves left in the topology: {:?}",
        topology.to_yaml()
    );
}
