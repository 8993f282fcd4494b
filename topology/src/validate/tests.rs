use crate::{Problem, Topology, TopologyError};

const BASE: &str = r#"version: 1
keyspace: app
backends:
  - name: db0
    host: 127.0.0.1
    port: 3306
  - name: db1
    host: 127.0.0.1
    port: 3307
shards:
  - name: "-80"
    backend: db0
    database: app_000
  - name: "80-"
    backend: db1
    database: app_001
"#;

/// Validates `yaml` and returns every problem's message; panics if it was valid.
fn problems(yaml: &str) -> Vec<String> {
    match Topology::from_yaml_str(yaml) {
        Ok(_) => panic!("expected an invalid topology:\n{yaml}"),
        Err(err) => {
            let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
            assert!(!problems.is_empty(), "not a validation error: {err}");
            problems
        }
    }
}

/// Validates `yaml`, expecting exactly one problem, and returns its message.
fn only_problem(yaml: &str) -> String {
    let mut all = problems(yaml);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn with_shards(shards: &str) -> String {
    let head = BASE.split("shards:").next().unwrap();
    format!("{head}shards:\n{shards}")
}

fn shard(name: &str, backend: &str, database: &str) -> String {
    format!("  - {{name: \"{name}\", backend: {backend}, database: \"{database}\"}}\n")
}

#[test]
fn base_fixture_is_valid() {
    Topology::from_yaml_str(BASE).unwrap();
}

#[test]
fn a_gap_between_shards_is_reported_by_names_and_hex_boundaries() {
    let yaml = with_shards(&(shard("-40", "db0", "a") + &shard("80-", "db0", "b")));
    let msg = only_problem(&yaml);
    assert!(
        msg.contains("[4000000000000000, 8000000000000000)"),
        "{msg}"
    );
    assert!(msg.contains("\"-40\"") && msg.contains("\"80-\""), "{msg}");
    assert!(msg.contains("owned by no shard"), "{msg}");
}

#[test]
fn gaps_at_the_bottom_and_top_of_the_key_space_are_reported() {
    let yaml = with_shards(&shard("40-c0", "db0", "a"));
    let all = problems(&yaml);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].contains("[0000000000000000, 4000000000000000)") && all[0].contains("bottom"),
        "{}",
        all[0]
    );
    assert!(
        all[1].contains("[c000000000000000, ffffffffffffffff]") && all[1].contains("top"),
        "{}",
        all[1]
    );
}

#[test]
fn an_overlap_is_reported_by_names_and_hex_boundaries() {
    let yaml = with_shards(&(shard("-80", "db0", "a") + &shard("40-", "db0", "b")));
    let msg = only_problem(&yaml);
    assert!(
        msg.contains("[4000000000000000, 8000000000000000)"),
        "{msg}"
    );
    assert!(msg.contains("owned by both \"-80\" and \"40-\""), "{msg}");
}

#[test]
fn two_names_for_the_same_range_overlap() {
    let yaml = with_shards(&(shard("-", "db0", "a") + &shard("00-", "db0", "b")));
    let msg = only_problem(&yaml);
    assert!(msg.contains("owned by both"), "{msg}");
}

#[test]
fn a_topology_without_shards_is_refused() {
    let msg = only_problem(&with_shards("  []\n"));
    assert!(msg.contains("at least one shard"), "{msg}");
    let head = BASE.split("shards:").next().unwrap();
    assert!(only_problem(head).contains("at least one shard"));
}

#[test]
fn duplicate_shard_names_are_refused() {
    let yaml = with_shards(
        &(shard("-80", "db0", "a") + &shard("80-", "db0", "b") + &shard("80-", "db1", "c")),
    );
    let all = problems(&yaml);
    assert!(
        all.iter()
            .any(|m| m
                .starts_with("shards[2].name: shard name \"80-\" is already used by shards[1]")),
        "{all:#?}"
    );
}

#[test]
fn malformed_shard_names_are_refused_by_field() {
    let yaml = with_shards(&(shard("-80", "db0", "a") + &shard("8-", "db0", "b")));
    let msg = only_problem(&yaml);
    assert!(
        msg.starts_with("shards[1].name: shard name \"8-\""),
        "{msg}"
    );
    assert!(msg.contains("odd number"), "{msg}");
}

#[test]
fn a_shard_on_an_unknown_backend_is_refused() {
    let yaml = BASE.replace("backend: db1", "backend: db9");
    assert_eq!(
        only_problem(&yaml),
        "shards[1].backend: unknown backend \"db9\""
    );
}

#[test]
fn duplicate_backend_names_are_refused() {
    let yaml = BASE
        .replace("name: db1", "name: db0")
        .replace("backend: db1", "backend: db0");
    let msg = only_problem(&yaml);
    assert_eq!(
        msg,
        "backends[1].name: backend name \"db0\" is already used by backends[0]"
    );
}

#[test]
fn port_zero_is_refused() {
    let msg = only_problem(&BASE.replace("port: 3307", "port: 0"));
    assert_eq!(msg, "backends[1].port: port must not be 0");
}

#[test]
fn empty_names_are_refused() {
    let msg = only_problem(&BASE.replace(
        "host: 127.0.0.1\n    port: 3307",
        "host: ''\n    port: 3307",
    ));
    assert_eq!(msg, "backends[1].host: must not be empty");
    let msg = only_problem(&BASE.replace("keyspace: app", "keyspace: ''"));
    assert_eq!(msg, "keyspace: must not be empty");
}

#[test]
fn empty_database_names_are_refused() {
    let msg = only_problem(&BASE.replace("database: app_001", "database: ''"));
    assert_eq!(msg, "shards[1].database: must not be empty");
}

#[test]
fn database_names_must_be_safe_identifiers() {
    for bad in ["app-1", "app 1", "app`1", "ä", &"x".repeat(65)] {
        let msg = only_problem(&BASE.replace("database: app_001", &format!("database: \"{bad}\"")));
        assert!(
            msg.starts_with("shards[1].database: database name"),
            "{msg}"
        );
        assert!(msg.contains("not a safe identifier"), "{msg}");
    }
    Topology::from_yaml_str(&BASE.replace("database: app_001", "database: App$_9")).unwrap();
}

#[test]
fn two_shards_in_one_database_of_one_backend_are_refused() {
    let msg = only_problem(&BASE.replace(
        "backend: db1\n    database: app_001",
        "backend: db0\n    database: app_000",
    ));
    assert_eq!(
        msg,
        "shards[1].database: database \"app_000\" on backend \"db0\" is already used by shard \"-80\""
    );
    // The same database name on two different servers is fine.
    Topology::from_yaml_str(&BASE.replace("database: app_001", "database: app_000")).unwrap();
}

#[test]
fn pins_must_name_existing_shards() {
    let yaml = format!("{BASE}pins:\n  - tenant: 42\n    shard: \"c0-\"\n");
    assert_eq!(only_problem(&yaml), "pins[0].shard: unknown shard \"c0-\"");
}

#[test]
fn a_tenant_pinned_twice_is_refused_even_as_integer_and_string() {
    let yaml = format!(
        "{BASE}pins:\n  - {{tenant: 42, shard: \"-80\"}}\n  - {{tenant: \"42\", shard: \"80-\"}}\n"
    );
    assert_eq!(
        only_problem(&yaml),
        "pins[1].tenant: tenant \"42\" is already pinned by pins[0]"
    );
}

#[test]
fn a_table_listed_twice_is_refused() {
    let yaml = format!("{BASE}tables:\n  - name: orders\n  - name: orders\n    vindex: xxhash\n");
    assert_eq!(
        only_problem(&yaml),
        "tables[1].name: table \"orders\" is already listed at tables[0]"
    );
}

#[test]
fn a_reference_table_takes_no_column_and_no_vindex() {
    let yaml = format!(
        "{BASE}tables:\n  - name: orders\n  - name: countries\n    type: reference\n    \
         column: code\n    vindex: hash\n"
    );
    assert_eq!(
        problems(&yaml),
        [
            "tables[1].column: table \"countries\" is a reference table (a full copy on every shard) \
             and takes no column",
            "tables[1].vindex: table \"countries\" is a reference table (a full copy on every shard) \
             and takes no vindex",
        ]
    );
}

#[test]
fn a_reference_table_takes_no_sequence() {
    let yaml = format!(
        "{BASE}tables:\n  - name: countries\n    type: reference\n    \
         auto_increment: {{ column: id, sequence: countries_seq }}\n"
    );
    assert_eq!(
        only_problem(&yaml),
        "tables[0].auto_increment: table \"countries\" is a reference table (a full copy on every \
         shard) and takes no auto_increment"
    );
}

#[test]
fn every_sequence_problem_is_listed_with_its_field() {
    let yaml = format!(
        "{BASE}tables:\n\
         \x20 - {{ name: a, auto_increment: {{ column: '', sequence: '' }} }}\n\
         \x20 - {{ name: b, auto_increment: {{ column: id, sequence: 'b-seq' }} }}\n\
         \x20 - {{ name: c, auto_increment: {{ column: id, sequence: 'b`seq' }} }}\n\
         \x20 - {{ name: d, auto_increment: {{ column: id, sequence: a }} }}\n"
    );
    assert_eq!(
        problems(&yaml),
        [
            "tables[0].auto_increment.column: must not be empty",
            "tables[0].auto_increment.sequence: must not be empty",
            "tables[1].auto_increment.sequence: sequence name \"b-seq\" is not a safe identifier \
             ([A-Za-z0-9_$]+)",
            "tables[2].auto_increment.sequence: sequence name \"b`seq\" is not a safe identifier \
             ([A-Za-z0-9_$]+)",
            "tables[3].auto_increment.sequence: sequence \"a\" is the name of the table listed at \
             tables[0]",
        ]
    );
    // Two tables may share one sequence: their ids are then unique across both.
    Topology::from_yaml_str(&format!(
        "{BASE}tables:\n\
         \x20 - {{ name: a, auto_increment: {{ column: id, sequence: ids }} }}\n\
         \x20 - {{ name: b, column: id, auto_increment: {{ column: id, sequence: ids }} }}\n"
    ))
    .unwrap();
}

#[test]
fn an_auto_increment_needs_both_fields_and_no_others() {
    let missing = format!("{BASE}tables:\n  - {{ name: a, auto_increment: {{ column: id }} }}\n");
    let err = Topology::from_yaml_str(&missing).unwrap_err();
    assert!(
        err.to_string().contains("missing field `sequence`"),
        "{err}"
    );
    let extra = format!(
        "{BASE}tables:\n  - {{ name: a, auto_increment: {{ column: id, sequence: s, start: 1 }} }}\n"
    );
    let err = Topology::from_yaml_str(&extra).unwrap_err();
    assert!(err.to_string().contains("unknown field `start`"), "{err}");
}

#[test]
fn a_table_is_either_sharded_or_reference_never_both() {
    let yaml = format!(
        "{BASE}tables:\n  - name: countries\n    type: reference\n  - name: countries\n    column: code\n"
    );
    assert_eq!(
        only_problem(&yaml),
        "tables[1].name: table \"countries\" is already listed at tables[0]"
    );
    let t = Topology::from_yaml_str(&format!(
        "{BASE}tables:\n  - name: orders\n    type: sharded\n  - name: countries\n    type: reference\n"
    ))
    .unwrap();
    assert!(t.is_reference_table("countries") && !t.is_reference_table("orders"));
}

#[test]
fn an_unknown_table_type_is_refused_with_its_location() {
    let yaml = format!("{BASE}tables:\n  - name: countries\n    type: global\n");
    let err = Topology::from_yaml_str(&yaml).unwrap_err();
    let TopologyError::Syntax { line, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, Some(19), "{message}");
    assert!(
        message.contains("unknown variant `global`, expected `sharded` or `reference`"),
        "{message}"
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let yaml = format!(
        "{}pins:\n  - {{tenant: 1, shard: nowhere}}\n",
        BASE.replace("backend: db1", "backend: db9")
            .replace("port: 3306", "port: 0")
            .replace("\"80-\"", "\"c0-\"")
    );
    let err = Topology::from_yaml_str(&yaml).unwrap_err();
    let all: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 4, "{all:#?}");
    assert!(matches!(err.problems().last(), Some(Problem::Gap { .. })));
    assert!(
        err.to_string()
            .starts_with("topology is invalid (4 problems): "),
        "{err}"
    );
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = Topology::from_yaml_str(&BASE.replace("port: 3307", "port: [")).unwrap_err();
    let TopologyError::Syntax {
        line,
        column,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(line.is_some() && column.is_some(), "{err:?}");
    assert!(message.contains("line"), "{message}");
}

#[test]
fn unknown_fields_are_refused_with_their_location() {
    let err =
        Topology::from_yaml_str(&BASE.replace("    port: 3306", "    port: 3306\n    weight: 2"))
            .unwrap_err();
    let TopologyError::Syntax { line, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, Some(7), "{message}");
    assert!(message.contains("unknown field `weight`"), "{message}");
}

#[test]
fn wrong_types_are_refused_with_their_location() {
    let err = Topology::from_yaml_str(&BASE.replace("port: 3307", "port: 70000")).unwrap_err();
    let TopologyError::Syntax { line, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, Some(9), "{message}");
    let err = Topology::from_yaml_str(&BASE.replace("version: 1", "version: -1")).unwrap_err();
    assert!(
        matches!(err, TopologyError::Syntax { line: Some(1), .. }),
        "{err:?}"
    );
}

#[test]
fn missing_required_fields_are_refused() {
    let err = Topology::from_yaml_str(&BASE.replace("version: 1\n", "")).unwrap_err();
    assert!(err.to_string().contains("missing field `version`"), "{err}");
}
