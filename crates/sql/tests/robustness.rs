//! No input makes the analyzer panic or overflow its stack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shardgate_sql::{Analyzer, Scratch, SqlError};
use support::Keyspace;

/// Analyses `sql` on a thread with tokio's default 2 MiB stack.
fn analyze_on_small_stack(sql: String) -> Result<(), SqlError> {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let analyzer = Analyzer::new(16);
            analyzer
                .analyze(&sql, &Keyspace::default(), &mut Scratch::default())
                .map(drop)
        })
        .unwrap()
        .join()
        .expect("analysis panicked or overflowed")
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let parens = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(
        analyze_on_small_stack(parens),
        Err(SqlError::Unsupported { .. })
    ));
    let chain = format!(
        "SELECT * FROM orders WHERE tenant_id = 1{}",
        " AND a = 1".repeat(100_000)
    );
    assert!(matches!(
        analyze_on_small_stack(chain),
        Err(SqlError::Unsupported { .. })
    ));
    for deep_item in [
        format!(
            "SELECT a{} AS x FROM orders ORDER BY x",
            " + 1".repeat(3_990)
        ),
        format!("SELECT a FROM orders ORDER BY a{}", " OR a".repeat(3_990)),
    ] {
        assert!(matches!(
            analyze_on_small_stack(deep_item),
            Err(SqlError::Unsupported { .. })
        ));
    }
    let unions = format!("SELECT 1{}", " UNION SELECT 1".repeat(100_000));
    assert!(matches!(
        analyze_on_small_stack(unions),
        Err(SqlError::Unsupported { .. })
    ));
    let subqueries = format!(
        "SELECT * FROM t WHERE a IN {}(1){}",
        "(SELECT a FROM t WHERE a IN ".repeat(5_000),
        ")".repeat(5_000)
    );
    assert!(analyze_on_small_stack(subqueries).is_err());
}

#[test]
fn chains_just_under_the_guard_are_analysed() {
    let chain = format!(
        "SELECT * FROM orders WHERE tenant_id = 1{}",
        " AND a = 1".repeat(1_990)
    );
    assert!(analyze_on_small_stack(chain).is_ok());
    let sum = format!(
        "SELECT * FROM orders WHERE tenant_id = 1 AND a = 1{}",
        " + 1".repeat(3_990)
    );
    assert!(analyze_on_small_stack(sum).is_ok());
}

#[test]
fn big_but_flat_statements_are_analysed() {
    let rows = format!(
        "INSERT INTO orders (tenant_id, v) VALUES (7, 'x'){}",
        ", (7, 'y')".repeat(20_000)
    );
    assert!(analyze_on_small_stack(rows).is_ok());
    let list = format!(
        "SELECT * FROM orders WHERE tenant_id = 7 AND id IN (0{})",
        ", 1".repeat(20_000)
    );
    assert!(analyze_on_small_stack(list).is_ok());
}

#[test]
fn big_statements_on_many_tenants_are_analysed() {
    let tenants = format!(
        "SELECT a, COUNT(*) FROM orders WHERE tenant_id IN (0{}) GROUP BY a ORDER BY a LIMIT 5",
        (1..20_000).map(|n| format!(", {n}")).collect::<String>()
    );
    assert!(analyze_on_small_stack(tenants).is_ok());
    let chain = format!(
        "SELECT a FROM orders WHERE tenant_id = 0{}",
        (1..1_990)
            .map(|n| format!(" OR tenant_id = {n}"))
            .collect::<String>()
    );
    assert!(analyze_on_small_stack(chain).is_ok());
    let rows = format!(
        "INSERT INTO orders (tenant_id, v) VALUES (0, 'x'){}",
        (1..5_000)
            .map(|n| format!(", ({n}, 'y')"))
            .collect::<String>()
    );
    assert!(analyze_on_small_stack(rows).is_ok());
}

#[test]
fn big_joins_of_sharded_tables_are_analysed_or_refused_not_overflowed() {
    let join = format!(
        "SELECT * FROM orders o0{} WHERE o0.tenant_id = 7",
        (1..1_000)
            .map(|n| format!(" JOIN orders o{n} ON o{n}.tenant_id = o{}.tenant_id", n - 1))
            .collect::<String>()
    );
    assert!(analyze_on_small_stack(join).is_ok());
    let too_many = format!(
        "SELECT * FROM orders o0{} WHERE o0.tenant_id = 7",
        (1..2_000)
            .map(|n| format!(" JOIN orders o{n} ON o{n}.tenant_id = 7"))
            .collect::<String>()
    );
    assert!(matches!(
        analyze_on_small_stack(too_many),
        Err(SqlError::Unsupported { .. })
    ));
    let nested = format!(
        "SELECT * FROM orders WHERE tenant_id = 1 AND id IN {}(1){}",
        "(SELECT order_id FROM order_items WHERE tenant_id = 1 AND id IN ".repeat(5_000),
        ")".repeat(5_000)
    );
    assert!(analyze_on_small_stack(nested).is_err());
    let unions = format!(
        "SELECT a FROM orders WHERE tenant_id = 1{}",
        " UNION SELECT a FROM order_items WHERE tenant_id = 1".repeat(100_000)
    );
    assert!(analyze_on_small_stack(unions).is_err());
}

/// Every prefix and many splices of valid statements: errors are fine, panics are not.
#[test]
fn mangled_statements_never_panic() {
    let seeds = [
        "SELECT o.a, 'x\\'y', N'z', x'2a', 0x2a, b'1', 1.5e3, ? FROM ks.orders AS o WHERE o.tenant_id = -5 AND (b = \"q\" OR c IN (1, 2)) -- c",
        "INSERT INTO orders (tenant_id, v) VALUES (1, _utf8mb4'a'), (1, @v) ON DUPLICATE KEY UPDATE v = VALUES(v); ",
        "UPDATE orders SET v = v + 1 /* c */ WHERE tenant_id = 0b101 # tail\n",
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
        "SET @@session.x = 1, @y := 'é', GLOBAL z = DEFAULT",
        "WITH c AS (SELECT 1) SELECT `we``ird`, @@version FROM c JOIN t USING (id)",
        "SHOW VARIABLES LIKE 'a%'",
        "/*+ hint */ DELETE FROM orders WHERE tenant_id = ?;",
        "SELECT DISTINCT a AS x, AVG(b), MIN(c) m FROM orders WHERE tenant_id IN (1, 'a', ?) GROUP BY x, 2 ORDER BY x DESC, m LIMIT 5, 10 FOR UPDATE",
        "REPLACE INTO orders (tenant_id, v) VALUES (1, 'a'), (2, 'b') ON DUPLICATE KEY UPDATE v = VALUES(v)",
        "SELECT * FROM orders o LEFT JOIN (order_items i JOIN countries c ON c.code = i.c) ON i.tenant_id = o.tenant_id WHERE o.tenant_id = 5 AND EXISTS (SELECT 1 FROM customers u WHERE u.tenant_id = o.tenant_id)",
        "UPDATE countries SET n = (SELECT MAX(n) FROM currencies) WHERE code IN ('FR', ?)",
    ];
    let analyzer = Analyzer::new(64);
    let keyspace = Keyspace::default();
    let mut scratch = Scratch::default();
    let mut run = |text: &str| {
        let _ = analyzer.analyze(text, &keyspace, &mut scratch);
    };
    for seed in seeds {
        for (end, _) in seed.char_indices() {
            run(&seed[..end]);
            run(&seed[end..]);
        }
        for other in seeds {
            for (cut, _) in seed.char_indices().step_by(3) {
                let other_cut = other.len() * cut / seed.len().max(1);
                if other.is_char_boundary(other_cut) {
                    run(&format!("{}{}", &seed[..cut], &other[other_cut..]));
                }
            }
        }
    }
}
