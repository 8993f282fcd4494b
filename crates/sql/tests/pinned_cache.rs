//! The plan cache on joins pinned to one tenant and on reference-table writes: a hit
//! binds every key of the statement it answers, never those of the statement it was
//! made from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shardgate_sql::{Analyzer, Route, Scratch, TenantKey};
use support::{Keyspace, render};

/// The join shape used below, with `o` and `i` pinned by two literals.
fn join(o: &str, i: &str) -> String {
    format!(
        "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id \
         WHERE o.tenant_id = {o} AND i.tenant_id = {i}"
    )
}

#[test]
fn a_hit_binds_the_new_tenant_for_every_joined_table() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let first = analyzer
        .analyze(&join("5", "5"), &keyspace, &mut scratch)
        .unwrap();
    let fingerprint = scratch.fingerprint().to_owned();
    let second = analyzer
        .analyze(&join("7", "7"), &keyspace, &mut scratch)
        .unwrap();
    assert_eq!(scratch.fingerprint(), fingerprint);
    assert!(!first.cached && second.cached);
    assert_eq!(
        second.route,
        Route::Tenant {
            table: "orders".into(),
            key: TenantKey::Int(7)
        }
    );
    // Same shape, the two tables pinned to different tenants: refused on the hit too.
    let mixed = analyzer.analyze(&join("7", "8"), &keyspace, &mut scratch);
    assert!(
        render(&mixed).starts_with(
            "Unsupported: the sharded tables of this statement are limited to different tenants"
        ),
        "{mixed:?}"
    );
    let mixed = analyzer.analyze(&join("'7'", "7"), &keyspace, &mut scratch);
    assert!(
        mixed.is_err(),
        "'7' and 7 are compared as keys, not guessed equal: {mixed:?}"
    );
    assert_eq!((analyzer.cache_misses(), analyzer.cache_hits()), (1, 3));
}

#[test]
fn a_hit_of_a_join_pinned_by_one_literal_reads_that_literal() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let shape = |tenant: &str| {
        format!(
            "SELECT o.id, i.sku FROM orders o JOIN order_items i \
             ON i.order_id = o.id AND i.tenant_id = o.tenant_id \
             WHERE o.tenant_id = {tenant} AND o.status = 'open' LIMIT 10"
        )
    };
    for (tenant, key) in [
        ("5", TenantKey::Int(5)),
        ("'acme'", TenantKey::Str("acme".into())),
        ("?", TenantKey::Param(0)),
    ] {
        let analysis = analyzer
            .analyze(&shape(tenant), &keyspace, &mut scratch)
            .unwrap();
        assert_eq!(
            analysis.route,
            Route::Tenant {
                table: "orders".into(),
                key
            }
        );
    }
    assert_eq!((analyzer.cache_misses(), analyzer.cache_hits()), (1, 2));
}

#[test]
fn placeholders_that_cannot_be_compared_are_refused_cached_or_not() {
    let expected = "Unsupported: the tenant is written as a `?` placeholder and again elsewhere";
    for warm in [false, true] {
        let analyzer = Analyzer::new(16);
        let keyspace = Keyspace::default();
        let mut scratch = Scratch::default();
        if warm {
            analyzer
                .analyze(&join("1", "1"), &keyspace, &mut scratch)
                .unwrap();
        }
        for sql in [join("?", "?"), join("?", "3"), join("3", "?")] {
            let refused = render(&analyzer.analyze(&sql, &keyspace, &mut scratch));
            assert!(
                refused.starts_with(expected),
                "warm={warm} {sql}: {refused}"
            );
        }
    }
}

#[test]
fn reference_writes_are_cached_and_carry_no_literal() {
    let analyzer = Analyzer::new(16);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    for (name, code) in [("'France'", "'FR'"), ("'Germany'", "'DE'"), ("?", "?")] {
        let sql = format!("UPDATE countries SET name = {name} WHERE code = {code}");
        let analysis = analyzer.analyze(&sql, &keyspace, &mut scratch).unwrap();
        assert_eq!(
            analysis.route,
            Route::EveryShard {
                table: "countries".into()
            }
        );
    }
    assert_eq!((analyzer.cache_misses(), analyzer.cache_hits()), (1, 2));
}
