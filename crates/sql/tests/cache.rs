//! The plan cache: one plan per shape, and every hit reads its own statement's tenant.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shardgate_sql::{Analysis, Analyzer, Route, Scratch, SqlError, StatementKind, TenantKey};
use support::{Keyspace, render};

/// The tenant key `sql` routes to.
fn key(analyzer: &Analyzer, sql: &str, scratch: &mut Scratch) -> TenantKey {
    match analyzer
        .analyze(sql, &Keyspace::default(), scratch)
        .unwrap()
        .route
    {
        Route::Tenant { key, .. } => key,
        other => panic!("{sql}: routed {other:?}"),
    }
}

#[test]
fn statements_differing_only_in_literals_share_one_plan() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let first = key(
        &analyzer,
        "SELECT * FROM orders WHERE tenant_id = 5 AND status = 'open'",
        &mut scratch,
    );
    let fingerprint = scratch.fingerprint().to_owned();
    let second = key(
        &analyzer,
        "SELECT * FROM orders WHERE tenant_id = 6 AND status = 'closed'",
        &mut scratch,
    );
    assert_eq!(scratch.fingerprint(), fingerprint);
    assert_eq!(
        (
            analyzer.cache_misses(),
            analyzer.cache_hits(),
            analyzer.cache_len()
        ),
        (1, 1, 1)
    );
    assert_eq!(first, TenantKey::Int(5));
    assert_eq!(
        second,
        TenantKey::Int(6),
        "a hit must decode its own statement's tenant"
    );
}

#[test]
fn a_hit_decodes_each_statements_own_literal_kind() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let shape = |value: &str| format!("SELECT * FROM orders WHERE tenant_id = {value} LIMIT 10");
    assert_eq!(key(&analyzer, &shape("5"), &mut scratch), TenantKey::Int(5));
    assert_eq!(
        key(&analyzer, &shape("'acme'"), &mut scratch),
        TenantKey::Str("acme".into())
    );
    assert_eq!(
        key(&analyzer, &shape("0x2a"), &mut scratch),
        TenantKey::Int(42)
    );
    assert_eq!(
        key(&analyzer, &shape("?"), &mut scratch),
        TenantKey::Param(0)
    );
    let decimal = analyzer.analyze(&shape("1.5"), &Keyspace::default(), &mut scratch);
    assert!(
        matches!(decimal, Err(SqlError::BadTenantLiteral { .. })),
        "{decimal:?}"
    );
    assert_eq!(analyzer.cache_misses(), 1);
    assert_eq!(analyzer.cache_hits(), 4);
}

#[test]
fn a_negated_slot_stays_negated_on_a_hit() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    assert_eq!(
        key(
            &analyzer,
            "DELETE FROM orders WHERE tenant_id = -1",
            &mut scratch
        ),
        TenantKey::Int(u64::MAX)
    );
    assert_eq!(
        key(
            &analyzer,
            "DELETE FROM orders WHERE tenant_id = -2",
            &mut scratch
        ),
        TenantKey::Int(u64::MAX - 1)
    );
    assert_eq!(analyzer.cache_hits(), 1);
}

#[test]
fn whitespace_and_comments_do_not_split_the_cache() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    key(
        &analyzer,
        "SELECT * FROM orders WHERE tenant_id = 5",
        &mut scratch,
    );
    key(
        &analyzer,
        "SELECT  *\n FROM orders /* from the app */ WHERE tenant_id = 9 -- end",
        &mut scratch,
    );
    assert_eq!((analyzer.cache_len(), analyzer.cache_hits()), (1, 1));
}

#[test]
fn executable_comment_inside_a_cached_shape_is_still_refused() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    key(
        &analyzer,
        "SELECT * FROM orders WHERE tenant_id = 5",
        &mut scratch,
    );
    let attack = analyzer.analyze(
        "SELECT * FROM orders WHERE tenant_id = 5 /*! OR 1=1 */",
        &Keyspace::default(),
        &mut scratch,
    );
    assert!(
        matches!(attack, Err(SqlError::Unsupported { .. })),
        "{attack:?}"
    );
    assert_eq!(analyzer.cache_hits(), 0);
}

#[test]
fn conflicting_and_multiple_tenants_are_checked_on_every_hit() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    let select =
        |a: u8, b: u8| format!("SELECT * FROM orders WHERE tenant_id = {a} AND tenant_id = {b}");
    let insert =
        |a: u8, b: u8| format!("INSERT INTO orders (tenant_id, id) VALUES ({a}, 1), ({b}, 2)");
    assert!(
        analyzer
            .analyze(&select(5, 5), &keyspace, &mut scratch)
            .is_ok()
    );
    assert!(
        analyzer
            .analyze(&insert(5, 5), &keyspace, &mut scratch)
            .is_ok()
    );
    let conflicting = analyzer.analyze(&select(5, 6), &keyspace, &mut scratch);
    let multiple = analyzer.analyze(&insert(5, 6), &keyspace, &mut scratch);
    assert!(
        matches!(conflicting, Err(SqlError::ConflictingTenants { .. })),
        "{conflicting:?}"
    );
    let Ok(Analysis {
        route: Route::SplitInsert { parts, .. },
        cached: false,
        ..
    }) = multiple
    else {
        panic!("rows of two tenants must be split, not routed by the cached plan: {multiple:?}");
    };
    let keys: Vec<&TenantKey> = parts.iter().map(|part| &part.key).collect();
    assert_eq!(keys, [&TenantKey::Int(5), &TenantKey::Int(6)]);
    assert_eq!(analyzer.cache_hits(), 2);
}

#[test]
fn a_zero_id_is_read_from_every_hit_and_needs_ids_is_never_frozen() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    let mut route = |sql: &str| {
        let analysis = analyzer.analyze(sql, &keyspace, &mut scratch).unwrap();
        (analysis.route, analysis.cached)
    };
    let needs = |rows: Vec<usize>| Route::NeedsIds {
        table: "sbtest1".into(),
        column: "id".into(),
        rows,
    };
    let tenant = |key| Route::Tenant {
        table: "sbtest1".into(),
        key,
    };
    // sysbench's oltp_insert with auto_inc: `0`, then the statement with its id filled in.
    let shape =
        |id: &str| format!("INSERT INTO sbtest1 (id, k, c, pad) VALUES ({id}, 7, 'c', 'p')");
    assert_eq!(route(&shape("0")), (needs(vec![0]), false));
    let filled = shardgate_sql::fill_ids(&shape("0"), "id", &[(0, 1001)]).unwrap();
    assert_eq!(filled, shape("1001"));
    assert_eq!(route(&filled), (tenant(TenantKey::Int(1001)), true));
    assert_eq!(route(&shape("0")), (needs(vec![0]), true));
    assert_eq!(route(&shape("'0'")), (needs(vec![0]), true));
    // The same fingerprint with a placeholder: the client's id.
    assert_eq!(route(&shape("?")), (tenant(TenantKey::Param(0)), true));
    assert_eq!(analyzer.cache_misses(), 1);

    // An omitted column is in the fingerprint: every hit needs ids for every row.
    let omitted =
        |a: u8, b: u8| format!("INSERT INTO tickets (tenant_id, n) VALUES ({a}, 1), ({b}, 2)");
    let all_rows = Route::NeedsIds {
        table: "tickets".into(),
        column: "id".into(),
        rows: vec![0, 1],
    };
    assert_eq!(route(&omitted(5, 5)), (all_rows.clone(), false));
    assert_eq!(route(&omitted(5, 6)), (all_rows, true));
    assert_eq!(analyzer.cache_misses(), 2);
}

#[test]
fn a_value_refused_for_the_sequence_is_refused_on_every_hit() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    let shape = |id: &str| format!("INSERT INTO tickets (tenant_id, id) VALUES (5, {id})");
    assert!(
        analyzer
            .analyze(&shape("7"), &keyspace, &mut scratch)
            .is_ok()
    );
    for bad in ["''", "'x'", "0.0"] {
        let answer = analyzer.analyze(&shape(bad), &keyspace, &mut scratch);
        assert!(
            matches!(answer, Err(SqlError::BadSequenceValue { .. })),
            "{bad}: {answer:?}"
        );
    }
    // One shape: each hit reads its own literal, of whatever kind.
    assert_eq!((analyzer.cache_misses(), analyzer.cache_hits()), (1, 3));
}

#[test]
fn placeholder_rows_of_possibly_several_tenants_are_refused() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let sql = "INSERT INTO orders (tenant_id, id) VALUES (?, 1), (?, 2)";
    for _ in 0..2 {
        let answer = analyzer.analyze(sql, &Keyspace::default(), &mut scratch);
        assert!(
            matches!(answer, Err(SqlError::MultipleTenants { .. })),
            "{answer:?}"
        );
    }
}

#[test]
fn a_new_schema_generation_remakes_the_plan() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let sql = "SELECT * FROM orders WHERE tenant_id = 5";
    let sharded = Keyspace {
        generation: 1,
        orders_sharded: true,
    };
    let unsharded = Keyspace {
        generation: 2,
        orders_sharded: false,
    };
    assert!(matches!(
        analyzer.analyze(sql, &sharded, &mut scratch).unwrap().route,
        Route::Tenant { .. }
    ));
    assert_eq!(
        analyzer
            .analyze(sql, &unsharded, &mut scratch)
            .unwrap()
            .route,
        Route::AnyShard
    );
    assert_eq!(
        (
            analyzer.cache_misses(),
            analyzer.cache_hits(),
            analyzer.cache_len()
        ),
        (2, 0, 1)
    );
}

#[test]
fn session_statements_with_literals_are_not_cached() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    let first = analyzer
        .analyze("SET NAMES 'utf8mb4'", &keyspace, &mut scratch)
        .unwrap();
    let second = analyzer
        .analyze("SET NAMES 'latin1'", &keyspace, &mut scratch)
        .unwrap();
    assert_eq!(
        first.kind,
        StatementKind::SetNames {
            charset: "utf8mb4".into(),
            collation: None
        }
    );
    assert_eq!(
        second.kind,
        StatementKind::SetNames {
            charset: "latin1".into(),
            collation: None
        }
    );
    assert_eq!(analyzer.cache_len(), 0);
}

#[test]
fn statements_fixed_by_their_fingerprint_are_cached() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    for sql in [
        "BEGIN",
        "begin ",
        "COMMIT",
        "SET NAMES utf8mb4",
        "SET NAMES utf8mb4 -- again",
    ] {
        analyzer.analyze(sql, &keyspace, &mut scratch).unwrap();
    }
    assert_eq!((analyzer.cache_misses(), analyzer.cache_hits()), (4, 1));
    let names = analyzer
        .analyze("SET NAMES latin1", &keyspace, &mut scratch)
        .unwrap();
    assert_eq!(
        names.kind,
        StatementKind::SetNames {
            charset: "latin1".into(),
            collation: None
        }
    );
    let show = analyzer
        .analyze("SHOW FULL TABLES", &keyspace, &mut scratch)
        .unwrap();
    let again = analyzer
        .analyze("SHOW  FULL TABLES", &keyspace, &mut scratch)
        .unwrap();
    assert_eq!(
        (show.kind, show.route, again.cached),
        (StatementKind::Show, Route::AnyShard, true)
    );
    // sqlparser keeps a LIKE pattern as a bare string, not a value tied to its slot.
    analyzer
        .analyze("SHOW VARIABLES LIKE 'a%'", &keyspace, &mut scratch)
        .unwrap();
    let like = analyzer
        .analyze("SHOW VARIABLES LIKE 'b%'", &keyspace, &mut scratch)
        .unwrap();
    assert!(!like.cached);
}

#[test]
fn a_literal_the_parser_reads_differently_is_not_cached() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let concatenated = "SELECT * FROM orders WHERE tenant_id = 'ac' 'me'";
    assert_eq!(
        key(&analyzer, concatenated, &mut scratch),
        TenantKey::Str("acme".into())
    );
    assert_eq!(
        key(&analyzer, concatenated, &mut scratch),
        TenantKey::Str("acme".into())
    );
    let aliased = "SELECT 1 'one' FROM orders WHERE tenant_id = 5";
    assert_eq!(key(&analyzer, aliased, &mut scratch), TenantKey::Int(5));
    assert_eq!((analyzer.cache_len(), analyzer.cache_hits()), (0, 0));
}

#[test]
fn refusals_are_the_same_cached_or_not() {
    let analyzer = Analyzer::new(16);
    let mut scratch = Scratch::default();
    let keyspace = Keyspace::default();
    for sql in [
        "INSERT INTO orders (id) VALUES (1)",
        "DELETE FROM orders WHERE id = 1 LIMIT 1",
    ] {
        let first = render(&analyzer.analyze(sql, &keyspace, &mut scratch));
        let second = render(&analyzer.analyze(sql, &keyspace, &mut scratch));
        assert!(
            first.starts_with("MissingTenantKey")
                || first.starts_with("Unsupported: DELETE with LIMIT"),
            "{first}"
        );
        assert_eq!(first, second);
    }
}

#[test]
fn the_cache_stays_bounded() {
    let analyzer = Analyzer::new(8);
    let mut scratch = Scratch::default();
    for n in 0..100 {
        let sql = format!("SELECT c{n} FROM orders WHERE tenant_id = 1");
        key(&analyzer, &sql, &mut scratch);
        assert!(analyzer.cache_len() <= 8);
    }
}

#[test]
fn one_analyzer_serves_many_threads() {
    let analyzer = Analyzer::new(64);
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let analyzer = &analyzer;
            scope.spawn(move || {
                let mut scratch = Scratch::default();
                for n in 0..200u64 {
                    let tenant = thread * 1000 + n;
                    let sql = format!("SELECT * FROM orders WHERE tenant_id = {tenant}");
                    assert_eq!(key(analyzer, &sql, &mut scratch), TenantKey::Int(tenant));
                }
            });
        }
    });
    assert_eq!(analyzer.cache_len(), 1);
    assert_eq!(analyzer.cache_hits() + analyzer.cache_misses(), 800);
}
