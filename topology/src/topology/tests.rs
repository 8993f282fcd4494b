use super::*;
use crate::{AutoIncrement, KeyRange, PinTenant, even_shard_ranges};

const FOUR_SHARDS: &str = r#"
version: 7
keyspace: app
tables:
  - name: orders
    column: customer_id
  - name: countries
    type: reference
  - name: events
    vindex: xxhash
    auto_increment: { column: id, sequence: events_seq }
backends:
  - name: db0
    host: 127.0.0.1
    port: 3306
  - name: db1
    host: 127.0.0.1
    port: 3307
shards:
  - name: "c0-"
    backend: db1
    database: app_003
  - name: "-40"
    backend: db0
    database: app_000
  - name: "40-80"
    backend: db0
    database: app_001
  - name: "80-c0"
    backend: db1
    database: app_002
pins:
  - tenant: 42
    shard: "c0-"
  - tenant: acme
    shard: "-40"
"#;

fn four() -> Topology {
    Topology::from_yaml_str(FOUR_SHARDS).unwrap()
}

fn name_of(t: &Topology, id: ShardId) -> &str {
    &t.shard(id).unwrap().name
}

/// A tenant id whose `hash` keyspace id is not owned by `shard`, to prove a pin overrides it.
fn hashed_elsewhere(t: &Topology, shard: &str) -> u64 {
    (0..)
        .find(|&n| name_of(t, t.shard_for_keyspace_id(vindex::hash(n))) != shard)
        .unwrap()
}

#[test]
fn shards_are_sorted_by_range_start_and_numbered_in_order() {
    let t = four();
    let names: Vec<&str> = t.shards().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["-40", "40-80", "80-c0", "c0-"]);
    for (i, shard) in t.shards().iter().enumerate() {
        assert_eq!(shard.id, ShardId(u32::try_from(i).unwrap()));
        assert_eq!(t.shard(shard.id), Some(shard));
    }
    assert_eq!(t.shard(ShardId(4)), None);
    assert_eq!(t.backend_of(&t.shards()[3]).unwrap().port, 3307);
    assert_eq!(t.shard_by_name("80-c0"), Some(ShardId(2)));
}

#[test]
fn keyspace_id_lookup_is_start_inclusive_and_end_exclusive() {
    let t = four();
    let at = |k: u64| name_of(&t, t.shard_for_keyspace_id(KeyspaceId(k)));
    assert_eq!(at(0), "-40");
    assert_eq!(at((0x40 << 56) - 1), "-40");
    assert_eq!(at(0x40 << 56), "40-80");
    assert_eq!(at((0x80 << 56) - 1), "40-80");
    assert_eq!(at(0x80 << 56), "80-c0");
    assert_eq!(at(0xc0 << 56), "c0-");
    assert_eq!(at(u64::MAX), "c0-");
}

#[test]
fn lookup_agrees_with_range_containment_over_128_shards() {
    let mut yaml = String::from(
        "version: 1\nkeyspace: app\nbackends: [{name: db0, host: h, port: 1}]\nshards:\n",
    );
    for (i, (name, _)) in even_shard_ranges(128).unwrap().iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: \"{name}\", backend: db0, database: app_{i:03}}}\n"
        ));
    }
    let t = Topology::from_yaml_str(&yaml).unwrap();
    for n in 0..2_000 {
        let k = vindex::hash(n);
        let shard = t.shard(t.shard_for_keyspace_id(k)).unwrap();
        assert!(shard.range.contains(k), "{k} not in {}", shard.name);
    }
    let boundary = KeyspaceId(0x02 << 56);
    assert_eq!(name_of(&t, t.shard_for_keyspace_id(boundary)), "02-04");
}

#[test]
fn route_hashes_integer_tenants_with_the_vitess_hash_vindex() {
    let t = four();
    // Vitess: hash(1) = 166b40b44aba4bd6 (-40), hash(4) = d2fd8867d50d2dfe (c0-).
    assert_eq!(
        name_of(&t, t.route("orders", TenantRef::Int(1)).unwrap()),
        "-40"
    );
    assert_eq!(
        name_of(&t, t.route("orders", TenantRef::Int(4)).unwrap()),
        "c0-"
    );
    assert_eq!(
        name_of(&t, t.route("unlisted", TenantRef::Int(4)).unwrap()),
        "c0-"
    );
}

#[test]
fn pins_win_over_the_hash() {
    let t = four();
    let n = hashed_elsewhere(&t, "c0-");
    let yaml = FOUR_SHARDS.replace("tenant: 42", &format!("tenant: {n}"));
    let t = Topology::from_yaml_str(&yaml).unwrap();
    assert_eq!(
        name_of(&t, t.route("orders", TenantRef::Int(n)).unwrap()),
        "c0-"
    );
    let text = n.to_string();
    assert_eq!(
        name_of(&t, t.route("orders", TenantRef::Str(&text)).unwrap()),
        "c0-"
    );
    assert_eq!(
        name_of(&t, t.route("events", TenantRef::Int(n)).unwrap()),
        "c0-"
    );
    assert_eq!(
        name_of(&t, t.route("events", TenantRef::Str(&text)).unwrap()),
        "c0-"
    );
    assert_eq!(
        name_of(&t, t.route("events", TenantRef::Str("acme")).unwrap()),
        "-40"
    );
    assert_eq!(
        t.keyspace_id("orders", TenantRef::Int(n)).unwrap(),
        vindex::hash(n)
    );
}

#[test]
fn string_tenant_on_a_hash_table_routes_like_the_integer() {
    let t = four();
    for n in [0, 1, 42, 1_000_003, u64::MAX] {
        let as_int = t.route("orders", TenantRef::Int(n)).unwrap();
        assert_eq!(
            t.route("orders", TenantRef::Str(&n.to_string())).unwrap(),
            as_int,
            "{n}"
        );
    }
    assert_eq!(
        t.route("orders", TenantRef::Str("0042")).unwrap(),
        t.route("orders", TenantRef::Int(42)).unwrap()
    );
}

#[test]
fn string_tenant_on_a_hash_table_that_is_not_a_plain_decimal_is_refused() {
    let t = four();
    for bad in ["", "42abc", "-1", " 42", "4.2", "1e3"] {
        let err = t.route("orders", TenantRef::Str(bad)).unwrap_err();
        assert!(
            matches!(err, RouteError::TenantNotInteger { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("orders"), "{err}");
        assert!(!err.is_retryable());
    }
    let err = t
        .route("orders", TenantRef::Str("18446744073709551616"))
        .unwrap_err();
    assert!(
        matches!(err, RouteError::TenantOutOfRange { .. }),
        "{err:?}"
    );
}

#[test]
fn xxhash_table_hashes_strings_as_bytes_and_integers_as_decimal_text() {
    let t = four();
    assert_eq!(
        t.keyspace_id("events", TenantRef::Str("test1")).unwrap(),
        vindex::xxhash(b"test1")
    );
    assert_eq!(
        t.keyspace_id("events", TenantRef::Int(7)).unwrap(),
        vindex::xxhash(b"7")
    );
    assert_eq!(
        t.route("events", TenantRef::Int(7)),
        t.route("events", TenantRef::Str("7"))
    );
    assert!(t.route("events", TenantRef::Str("")).is_ok());
}

#[test]
fn table_rules_fall_back_to_the_keyspace_default() {
    let t = four();
    assert_eq!(t.sharding_column("orders"), "customer_id");
    assert_eq!(t.table_rule("orders").vindex, Vindex::Hash);
    assert_eq!(t.sharding_column("events"), "tenant_id");
    assert_eq!(t.table_rule("events").vindex, Vindex::Xxhash);
    let other = t.table_rule("users");
    assert_eq!(
        (other.column, other.vindex, other.listed),
        ("tenant_id", Vindex::Hash, false)
    );
    // Table names are case-sensitive, as in MySQL on Linux.
    assert!(!t.table_rule("ORDERS").listed);
}

#[test]
fn reference_tables_are_listed_apart_from_sharded_ones() {
    let t = four();
    assert_eq!(t.reference_tables(), ["countries"]);
    assert!(t.is_reference_table("countries"));
    assert!(!t.is_reference_table("orders") && !t.is_reference_table("users"));
    // Case-sensitive like every table name: `COUNTRIES` is another, sharded, table.
    assert!(!t.is_reference_table("COUNTRIES"));
    let sharded: Vec<&str> = t.tables().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(sharded, ["orders", "events"]);
}

#[test]
fn a_reference_table_is_never_routed_by_tenant() {
    let t = four();
    let refused = RouteError::ReferenceTable {
        table: "countries".into(),
    };
    assert_eq!(
        t.route("countries", TenantRef::Int(42)),
        Err(refused.clone())
    );
    assert_eq!(t.keyspace_id("countries", TenantRef::Int(1)), Err(refused));
}

#[test]
fn sequence_columns_are_found_by_table_and_default_to_none() {
    let t = Topology::from_yaml_str(&format!(
        "version: 1\nkeyspace: app\ntables:\n\
         \x20 - {{ name: sbtest1, column: id, auto_increment: {{ column: id, sequence: sbtest1_seq }} }}\n\
         \x20 - {{ name: orders, auto_increment: {{ column: id, sequence: orders_seq }} }}\n\
         \x20 - {{ name: events }}\n\
         \x20 - {{ name: countries, type: reference }}\n{}",
        FOUR_SHARDS.split_once("backends:").map(|(_, rest)| format!("backends:{rest}")).unwrap()
    ))
    .unwrap();
    let sbtest = t.auto_increment("sbtest1").unwrap();
    assert_eq!(
        (sbtest.column.as_str(), sbtest.sequence.as_str()),
        ("id", "sbtest1_seq")
    );
    assert_eq!(t.sharding_column("sbtest1"), "id");
    // Sharded by the keyspace's default column, with ids from its own sequence.
    assert_eq!(
        t.auto_increment("orders"),
        Some(&AutoIncrement {
            column: "id".into(),
            sequence: "orders_seq".into(),
        })
    );
    assert_eq!(t.sharding_column("orders"), "tenant_id");
    for none in ["events", "countries", "users", "ORDERS"] {
        assert_eq!(t.auto_increment(none), None, "{none}");
    }
}

#[test]
fn yaml_round_trips_to_an_equal_snapshot() {
    let t = four();
    let text = t.to_yaml();
    let again = Topology::from_yaml_str(&text).unwrap();
    assert_eq!(again, t);
    assert_eq!(again.to_yaml(), text);
    assert!(text.contains("type: reference"), "{text}");
    assert!(text.contains("sequence: events_seq"), "{text}");
    assert_eq!(again.auto_increment("events").unwrap().column, "id");
    assert_eq!(t.version(), 7);
    assert_eq!(t.keyspace(), "app");
    assert_eq!(t.pins()[1].tenant, PinTenant::Str("acme".into()));
}

#[test]
fn yaml_round_trip_keeps_names_that_look_like_numbers_as_strings() {
    let yaml = "version: 1\nkeyspace: '123'\nbackends: [{name: '1', host: '10', port: 1}]\n\
                shards: [{name: '-80', backend: '1', database: '007'}, {name: '80-', backend: '1', database: 'x'}]\n\
                pins: [{tenant: '42', shard: '-80'}, {tenant: 'true', shard: '80-'}, {tenant: 7, shard: '80-'}]\n";
    let t = Topology::from_yaml_str(yaml).unwrap();
    let again = Topology::from_yaml_str(&t.to_yaml()).unwrap();
    assert_eq!(again, t);
    assert_eq!(again.pins()[0].tenant, PinTenant::Str("42".into()));
    assert_eq!(again.pins()[2].tenant, PinTenant::Int(7));
}

#[test]
fn load_names_the_file_in_every_error() {
    let dir = std::env::temp_dir().join(format!("shardgate-topology-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.yaml");
    let err = Topology::load(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.yaml"), "{err}");

    let invalid = dir.join("invalid.yaml");
    std::fs::write(
        &invalid,
        FOUR_SHARDS.replace("backend: db1", "backend: db9"),
    )
    .unwrap();
    let err = Topology::load(&invalid).unwrap_err();
    assert!(err.to_string().contains("invalid.yaml"), "{err}");
    assert_eq!(err.problems().len(), 2, "{err}");

    let valid = dir.join("valid.yaml");
    std::fs::write(&valid, FOUR_SHARDS).unwrap();
    assert_eq!(Topology::load(&valid).unwrap(), four());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_full_range_shard_owns_everything() {
    for name in ["-", "0"] {
        let t = Topology::from_yaml_str(&format!(
            "version: 1\nkeyspace: app\nbackends: [{{name: db0, host: h, port: 1}}]\n\
             shards: [{{name: '{name}', backend: db0, database: app}}]\n"
        ))
        .unwrap();
        assert_eq!(t.shards()[0].range, KeyRange::FULL);
        assert_eq!(t.route("t", TenantRef::Int(u64::MAX)).unwrap(), ShardId(0));
        assert_eq!(t.shard_for_keyspace_id(KeyspaceId(u64::MAX)), ShardId(0));
    }
}

#[test]
fn a_dedicated_shard_owns_no_keys_and_serves_only_its_pinned_tenants() {
    let text = FOUR_SHARDS.replace(
        "pins:\n",
        "  - { name: acme_corp, backend: db1, database: app_acme, dedicated: true }\npins:\n  - { tenant: 7, shard: acme_corp }\n",
    );
    let t = Topology::from_yaml_str(&text).unwrap();
    assert_eq!(t.shards().len(), 5);
    let dedicated = t.shard_by_name("acme_corp").unwrap();
    assert_eq!(dedicated, ShardId(4), "after every key-range shard");
    assert!(t.shard(dedicated).unwrap().dedicated);
    assert_eq!(t.route("orders", TenantRef::Int(7)).unwrap(), dedicated);
    // No unpinned tenant ever lands there, whatever its keyspace id.
    for tenant in 0..2_000u64 {
        if tenant == 7 {
            continue;
        }
        assert_ne!(
            t.route("orders", TenantRef::Int(tenant)).unwrap(),
            dedicated
        );
    }
    assert_eq!(
        t.shard_for_keyspace_id(KeyspaceId(u64::MAX)),
        t.shard_by_name("c0-").unwrap()
    );
    // Written back as it was read.
    let again = Topology::from_yaml_str(&t.to_yaml()).unwrap();
    assert_eq!(again, t);
    assert!(t.to_yaml().contains("dedicated: true"));
}

#[test]
fn a_dedicated_shard_needs_a_plain_name_and_key_range_shards_beside_it() {
    for bad in ["40-80", "acme corp", ""] {
        let text = FOUR_SHARDS.replace(
            "pins:\n",
            &format!(
                "  - {{ name: \"{bad}\", backend: db1, database: app_x, dedicated: true }}\npins:\n"
            ),
        );
        let e = Topology::from_yaml_str(&text).unwrap_err();
        assert!(
            e.problems()
                .iter()
                .any(|p| matches!(p, crate::Problem::BadDedicatedName { .. })),
            "{bad:?}: {e}"
        );
    }
    let alone = "version: 1\nkeyspace: app\nbackends: [{name: a, host: h, port: 1}]\n\
        shards: [{name: big, backend: a, database: d, dedicated: true}]\n";
    let e = Topology::from_yaml_str(alone).unwrap_err();
    assert!(
        e.problems()
            .iter()
            .any(|p| matches!(p, crate::Problem::NoShards)),
        "{e}"
    );
}
