//! Differential runs: the same statements through the proxy (2 backends, 8 shards) and on a plain MariaDB server
//! holding the same tables unsharded, compared whole. A statement about one tenant must look to the client exactly
//! as if there were no proxy: affected rows, last insert id, warnings, info text, column definitions, every cell's
//! bytes and NULL-ness, row order where ORDER BY fixes it, and MariaDB's own errors (code, SQLSTATE, message).
//!
//! Each comparison runs over mysql_async (`CLIENT_DEPRECATE_EOF`, forwarded as is) and over the raw client
//! (classic EOF framing, which the proxy translates), and writes also over mysql_async with `CLIENT_FOUND_ROWS`
//! (which changes what UPDATE reports, and which the proxy keeps in a pool of its own). The final truth is what the
//! shard databases hold, read directly on the backends: the union of the shards must equal the plain server's
//! table, and every row must sit on the shard its tenant routes to.

use mysql_async::OptsBuilder;

use crate::harness::outcome::{self, Outcome};
use crate::harness::raw::RawConn;
use crate::harness::{Cluster, MariaDb, bounded};

/// The sharded table under test: every type whose text form a proxy could mangle, and a unique key that includes
/// the sharding column (so that duplicate-key upserts stay within one tenant).
const ITEMS_DDL: &str = "CREATE TABLE items (\
    id BIGINT NOT NULL, \
    tenant_id BIGINT UNSIGNED NOT NULL, \
    sku VARCHAR(32) NOT NULL, \
    name VARCHAR(40), \
    qty INT, \
    price DECIMAL(12,3), \
    created DATETIME(3), \
    payload VARBINARY(64), \
    big BIGINT UNSIGNED, \
    flag TINYINT(1), \
    PRIMARY KEY (id), \
    UNIQUE KEY tenant_sku (tenant_id, sku))";

/// A table with an AUTO_INCREMENT key, written by one tenant only: each shard counts on its own, so generated ids
/// are comparable with the plain server's only while one shard holds all the rows.
const EVENTS_DDL: &str = "CREATE TABLE events (\
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
    tenant_id BIGINT UNSIGNED NOT NULL, \
    what VARCHAR(40) NOT NULL, \
    KEY (tenant_id))";

/// The only tenant writing `events`.
const EVENTS_TENANT: u64 = 7;

const SKUS: [&str; 4] = ["apple", "kiwi", "mango", "zebra"];
const NAMES: [Option<&str>; 10] = [
    Some("Zoë"),
    Some("naïve café"),
    Some("東京タワー"),
    Some("🚀 rocket"),
    None,
    Some("plain"),
    Some(""),
    Some("it's \"quoted\""),
    Some("back\\slash"),
    Some("Ünïcödé ñ"),
];
const PRICES: [Option<&str>; 5] = [
    Some("0.000"),
    Some("12345.678"),
    Some("-0.001"),
    None,
    Some("999999999.999"),
];
const CREATED: [Option<&str>; 5] = [
    Some("2024-02-29 23:59:59.123"),
    Some("1970-01-01 00:00:01.000"),
    None,
    Some("2038-01-19 03:14:07.999"),
    Some("9999-12-31 23:59:59.999"),
];
/// Hex of VARBINARY values: NUL, 0xFF, CR, LF, quote, backslash, and the empty string.
const PAYLOADS: [Option<&str>; 5] = [
    Some("00FF10"),
    Some(""),
    None,
    Some("DEADBEEF00"),
    Some("0A0D275C"),
];
const BIGS: [Option<u64>; 5] = [Some(u64::MAX), Some(0), None, Some(1 << 63), Some(42)];

/// 46 small tenant ids and 4 at the edges of BIGINT UNSIGNED.
fn tenants() -> Vec<u64> {
    (1..=46)
        .chain([1 << 32, (1 << 63) - 1, 1 << 63, u64::MAX])
        .collect()
}

/// A SQL string literal (MariaDB's default mode: backslash escapes).
fn text(value: Option<&str>) -> String {
    value.map_or_else(
        || "NULL".to_owned(),
        |s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
    )
}

/// A SQL value, or NULL.
fn or_null(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
}

/// Primary key of row `k` of the tenant at index `i`.
fn id(i: usize, k: usize) -> usize {
    (i + 1) * 100 + k
}

/// SKU of row `k` of the tenant at index `i`.
fn sku(i: usize, k: usize) -> String {
    format!("{}-{k}", SKUS[(i + k) % SKUS.len()])
}

/// One multi-row INSERT per tenant: 1 to 4 rows cycling through every value above.
fn inserts() -> Vec<String> {
    let mut statements = Vec::new();
    for (i, tenant) in tenants().into_iter().enumerate() {
        let rows: Vec<String> = (0..1 + i % 4)
            .map(|k| {
                let qty = match (i + 2 * k) % 5 {
                    0 => None,
                    n => Some(n),
                };
                format!(
                    "({}, {tenant}, '{}', {}, {}, {}, {}, {}, {}, {})",
                    id(i, k),
                    sku(i, k),
                    text(NAMES[(3 * i + k) % NAMES.len()]),
                    or_null(qty),
                    or_null(PRICES[(i + k) % PRICES.len()]),
                    text(CREATED[(2 * i + k) % CREATED.len()]),
                    or_null(PAYLOADS[(i + 3 * k) % PAYLOADS.len()].map(|hex| format!("X'{hex}'"))),
                    or_null(BIGS[(i + k) % BIGS.len()]),
                    or_null([Some(0), Some(1), None][(i + k) % 3]),
                )
            })
            .collect();
        statements.push(format!(
            "INSERT INTO items (id, tenant_id, sku, name, qty, price, created, payload, big, flag) VALUES {}",
            rows.join(", ")
        ));
    }
    statements
}

/// Updates, deletes, REPLACE, upserts and INSERT IGNORE, spread over the tenants.
fn changes() -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in tenants().into_iter().enumerate() {
        let (first_id, first_sku) = (id(i, 0), sku(i, 0));
        let rules: [(bool, String); 13] = [
            (
                i % 2 == 0,
                format!(
                    "UPDATE items SET qty = COALESCE(qty, 0) + 10, name = CONCAT(COALESCE(name, ''), ' ✓') WHERE tenant_id = {t} AND sku LIKE 'm%'"
                ),
            ),
            (
                i % 3 == 0,
                format!("UPDATE items SET flag = flag WHERE tenant_id = {t}"),
            ),
            (
                i % 5 == 1,
                format!("DELETE FROM items WHERE tenant_id = {t} AND qty IS NULL"),
            ),
            (
                i % 4 == 2,
                format!(
                    "REPLACE INTO items (id, tenant_id, sku, name, qty, price) VALUES ({first_id}, {t}, '{first_sku}', 'replaced', 7, 1.5)"
                ),
            ),
            (
                i % 4 == 3,
                format!(
                    "REPLACE INTO items (id, tenant_id, sku, name) VALUES ({}, {t}, 'fresh-50', 'new via replace')",
                    id(i, 50)
                ),
            ),
            (
                i % 6 == 4,
                format!(
                    "INSERT INTO items (id, tenant_id, sku, qty) VALUES ({}, {t}, '{first_sku}', 5) ON DUPLICATE KEY UPDATE qty = COALESCE(qty, 0) + VALUES(qty), price = 2.5",
                    id(i, 60)
                ),
            ),
            (
                i % 6 == 5,
                format!(
                    "INSERT INTO items (id, tenant_id, sku, qty) VALUES ({}, {t}, 'upsert-new', 5) ON DUPLICATE KEY UPDATE qty = qty + 1",
                    id(i, 61)
                ),
            ),
            (
                i % 7 == 0,
                format!(
                    "INSERT INTO items (id, tenant_id, sku) VALUES ({first_id}, {t}, 'x') ON DUPLICATE KEY UPDATE sku = sku"
                ),
            ),
            (
                i % 8 == 3,
                format!(
                    "INSERT IGNORE INTO items (id, tenant_id, sku) VALUES ({}, {t}, '{first_sku}')",
                    id(i, 70)
                ),
            ),
            (
                i % 9 == 0,
                format!(
                    "UPDATE items SET price = price * 2 WHERE tenant_id = {t} ORDER BY id DESC LIMIT 1"
                ),
            ),
            (
                i % 10 == 7,
                format!("DELETE FROM items WHERE tenant_id = {t} ORDER BY id LIMIT 1"),
            ),
            (i == 12, format!("DELETE FROM items WHERE tenant_id = {t}")),
            (
                true,
                format!("UPDATE items SET big = big - 1 WHERE {t} = tenant_id AND big > 0"),
            ),
        ];
        out.extend(
            rules
                .into_iter()
                .filter(|(applies, _)| *applies)
                .map(|(_, sql)| sql),
        );
    }
    let e = EVENTS_TENANT;
    out.extend([
        format!("INSERT INTO events (tenant_id, what) VALUES ({e}, 'first')"),
        format!("INSERT INTO events (tenant_id, what) VALUES ({e}, 'a'), ({e}, 'b'), ({e}, 'c')"),
        format!("INSERT INTO events (id, tenant_id, what) VALUES (100, {e}, 'explicit')"),
        format!("INSERT INTO events (tenant_id, what) VALUES ({e}, 'after explicit')"),
        format!("UPDATE events SET id = LAST_INSERT_ID(id + 1000) WHERE tenant_id = {e} AND what = 'b'"),
        format!("INSERT INTO events (id, tenant_id, what) VALUES (1, {e}, 'dup') ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), what = 'upserted'"),
    ]);
    out
}

/// How a client talks: mysql_async (with or without CLIENT_FOUND_ROWS) or the raw client.
enum Client {
    Driver(mysql_async::Conn),
    Raw(RawConn),
}

impl Client {
    async fn run(&mut self, sql: &str) -> Outcome {
        match self {
            Client::Driver(conn) => outcome::via_mysql_async(conn, sql).await,
            Client::Raw(conn) => outcome::via_raw(conn, sql).await,
        }
    }
}

/// The same kind of client, once through the proxy and once on the plain server.
struct Pair {
    label: &'static str,
    proxy: Client,
    reference: Client,
}

impl Pair {
    /// Runs `sql` on both sides, asserts the outcomes are equal (rows sorted when `ordered` is false), and returns
    /// the proxy's. Messages naming a shard database (`app_003`) are read as naming the keyspace (`app`).
    async fn compare(&mut self, sql: &str, ordered: bool) -> Outcome {
        let mut proxied = normalize_shard_names(self.proxy.run(sql).await);
        let mut direct = self.reference.run(sql).await;
        if !ordered {
            (proxied, direct) = (proxied.sorted(), direct.sorted());
        }
        assert_eq!(
            proxied, direct,
            "[{}] `{sql}`: through the proxy (left) vs an unsharded server (right)",
            self.label
        );
        proxied
    }
}

/// Replaces shard database names (`app_000` … `app_999`) in an error message with the keyspace name.
fn normalize_shard_names(outcome: Outcome) -> Outcome {
    (0..8).fold(outcome, |o, i| {
        o.with_message_replaced(&format!("app_{i:03}"), "app")
    })
}

/// A cluster, a plain server with database `app`, and client pairs: mysql_async, mysql_async with
/// CLIENT_FOUND_ROWS, raw.
struct Setup {
    cluster: Cluster,
    reference: MariaDb,
    pairs: Vec<Pair>,
}

/// Starts both sides, creates the tables through the proxy (DDL fan-out) and directly on the plain server, and
/// checks that every shard got exactly the plain server's table.
async fn setup() -> Setup {
    let (cluster, reference) = tokio::join!(Cluster::start(2, 8), MariaDb::start());
    reference.exec("CREATE DATABASE app").await;
    let driver = |opts: mysql_async::Opts, found_rows: bool| async move {
        let opts = OptsBuilder::from_opts(opts).client_found_rows(found_rows);
        Client::Driver(mysql_async::Conn::new(opts).await.expect("cannot connect"))
    };
    let mut pairs = Vec::new();
    for (label, found_rows) in [("mysql_async", false), ("mysql_async+found_rows", true)] {
        pairs.push(Pair {
            label,
            proxy: driver(cluster.proxy_opts(), found_rows).await,
            reference: driver(reference.opts(Some("app")), found_rows).await,
        });
    }
    let raw_proxy = RawConn::login(cluster.proxy_port(), "app", "app", Some("app")).await;
    let raw_reference = RawConn::login(reference.port(), "root", "", Some("app")).await;
    pairs.push(Pair {
        label: "raw",
        proxy: Client::Raw(raw_proxy.expect("raw login to the proxy")),
        reference: Client::Raw(raw_reference.expect("raw login to the plain server")),
    });
    for ddl in [ITEMS_DDL, EVENTS_DDL] {
        let created = pairs[0].compare(ddl, true).await;
        assert!(
            matches!(created, Outcome::Done { .. }),
            "{ddl}: {created:?}"
        );
    }
    for table in ["items", "events"] {
        let show = format!("SHOW CREATE TABLE {table}");
        let expected: Vec<(String, String)> = reference.query(Some("app"), &show).await;
        for shard in cluster.shards() {
            let got: Vec<(String, String)> = cluster.query_shard(shard, &show).await;
            assert_eq!(
                got, expected,
                "{table} on shard {} ({})",
                shard.name, shard.database
            );
        }
    }
    Setup {
        cluster,
        reference,
        pairs,
    }
}

impl Setup {
    /// Applies `statements` on both sides, taking turns between the client pairs, comparing every outcome.
    async fn apply(&mut self, statements: &[String]) {
        for (n, sql) in statements.iter().enumerate() {
            let pair = n % self.pairs.len();
            self.pairs[pair].compare(sql, true).await;
        }
    }

    /// Asserts that the shards together hold exactly the plain server's rows of `table` (by primary key `id`), and
    /// that each row is on the shard its tenant routes to.
    async fn assert_same_state(&self, table: &str) {
        let all = format!("SELECT * FROM {table} ORDER BY id");
        let mut reference = self.reference.conn_db(Some("app")).await;
        let expected = outcome::via_mysql_async(&mut reference, &all).await;
        let mut union = Vec::new();
        for (index, shard) in self.cluster.shards().iter().enumerate() {
            let mut conn = self
                .cluster
                .backend_of(shard)
                .conn_db(Some(&shard.database))
                .await;
            let rows = outcome::via_mysql_async(&mut conn, &all).await;
            for row in rows.rows(&all) {
                let tenant = cell_u64(&row[1]);
                assert_eq!(
                    self.cluster.shard_index_for(table, tenant),
                    index,
                    "{table}: a row of tenant {tenant} is on shard {}",
                    shard.name
                );
                union.push(row.clone());
            }
        }
        union.sort_by_key(|row| cell_u64(&row[0]));
        assert_eq!(
            union,
            expected.rows(&all),
            "{table}: the shards together vs the unsharded server"
        );
    }
}

/// A non-NULL integer cell.
fn cell_u64(cell: &Option<Vec<u8>>) -> u64 {
    let bytes = cell.as_deref().expect("a NULL where an id was expected");
    String::from_utf8_lossy(bytes)
        .parse()
        .expect("an id cell is not an integer")
}

#[tokio::test]
async fn writes_through_the_proxy_report_what_an_unsharded_server_reports() {
    bounded(async {
        let mut setup = setup().await;
        setup.apply(&inserts()).await;
        setup.apply(&changes()).await;
        setup.assert_same_state("items").await;
        setup.assert_same_state("events").await;
    })
    .await;
}

/// SELECT shapes for one tenant, and whether their ORDER BY fixes the row order.
fn selects(t: u64) -> Vec<(String, bool)> {
    let where_ = format!("WHERE tenant_id = {t}");
    [
        (format!("SELECT * FROM items {where_} ORDER BY id"), true),
        (format!("SELECT * FROM items {where_}"), false),
        (format!("SELECT id, name, price FROM items {where_} ORDER BY price DESC, id LIMIT 2"), true),
        (format!("SELECT id FROM items {where_} ORDER BY id LIMIT 1, 2"), true),
        (format!("SELECT sku, COUNT(*), SUM(qty), AVG(price), MIN(created), MAX(big) FROM items {where_} GROUP BY sku ORDER BY sku"), true),
        (format!("SELECT COUNT(*), COUNT(qty), SUM(price), MAX(name), GROUP_CONCAT(name ORDER BY id SEPARATOR '|') FROM items {where_}"), true),
        (format!("SELECT flag, COUNT(*) AS n FROM items {where_} GROUP BY flag HAVING n > 0"), false),
        (format!("SELECT id, qty FROM items {where_} AND qty IN (1, 2, 3) ORDER BY id"), true),
        (format!("SELECT id, name FROM items {where_} AND (name LIKE '%é%' OR name LIKE '_lain') ORDER BY id"), true),
        (format!("SELECT id, qty * 2 + 1 AS expr, CONCAT(sku, '-', COALESCE(name, 'none')) AS label, HEX(payload), price IS NULL, big DIV 3, -qty FROM items {where_} ORDER BY id"), true),
        (format!("SELECT name, CHAR_LENGTH(name), LENGTH(name), UPPER(name), LEFT(name, 2) FROM items {where_} ORDER BY id"), true),
        (format!("SELECT id, payload, created + INTERVAL 1 DAY, DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s.%f') FROM items {where_} ORDER BY id"), true),
        (format!("SELECT DISTINCT flag FROM items {where_} ORDER BY flag"), true),
        (format!("SELECT i.id, i.big FROM items AS i WHERE i.tenant_id = {t} AND (i.qty > 1 OR i.qty IS NULL) ORDER BY i.big IS NULL, i.big, i.id"), true),
        (format!("SELECT sku, qty FROM items WHERE {t} = tenant_id AND sku BETWEEN 'b' AND 'n' ORDER BY sku"), true),
        (format!("SELECT id FROM items {where_} AND id = -1"), true),
        (format!("SELECT COUNT(*) FROM items {where_} HAVING COUNT(*) > 2"), true),
    ]
    .into()
}

#[tokio::test]
async fn single_tenant_selects_through_the_proxy_match_an_unsharded_server() {
    bounded(async {
        let mut setup = setup().await;
        setup.apply(&inserts()).await;
        setup.apply(&changes()).await;
        let mut non_empty = 0;
        for tenant in tenants() {
            for (sql, ordered) in selects(tenant) {
                // mysql_async (DEPRECATE_EOF) and the raw client (classic EOF); the found-rows pair reads the same.
                for pair in [0, 2] {
                    let got = setup.pairs[pair].compare(&sql, ordered).await;
                    non_empty += usize::from(!got.rows(&sql).is_empty());
                }
            }
        }
        assert!(
            non_empty > 1000,
            "too few SELECTs returned rows ({non_empty}): the data did not load"
        );
    })
    .await;
}

#[tokio::test]
async fn errors_raised_by_mariadb_reach_the_client_unchanged() {
    bounded(async {
        let mut setup = setup().await;
        setup.apply(&inserts()).await;
        let sql_mode = "SELECT @@SESSION.sql_mode";
        let mode = setup.pairs[0].compare(sql_mode, true).await;
        let mode = mode.rows(sql_mode)[0][0].clone().unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&mode).contains("STRICT_TRANS_TABLES"),
            "strict mode is off: {mode:?}"
        );
        // Tenant 3 is at index 2: rows 200..=202, SKUs from sku(2, k).
        let (t, taken_id, taken_sku) = (3, id(2, 0), sku(2, 1));
        let failing = [
            (format!("INSERT INTO items (id, tenant_id, sku) VALUES (99999, {t}, '{taken_sku}')"), 1062),
            (format!("INSERT INTO items (id, tenant_id, sku) VALUES ({taken_id}, {t}, 'fresh')"), 1062),
            (format!("SELECT nosuch FROM items WHERE tenant_id = {t}"), 1054),
            (format!("UPDATE items SET qty = 1 WHERE tenant_id = {t} AND nosuch = 2"), 1054),
            (format!("INSERT INTO items (id, tenant_id, sku, name) VALUES (99998, {t}, 'long', '{}')", "x".repeat(41)), 1406),
            (format!("INSERT INTO items (id, tenant_id, sku, name) VALUES (99998, {t}, 'long', '{}')", "é".repeat(41)), 1406),
            (format!("INSERT INTO items (id, tenant_id, sku) VALUES (99997, {t}, NULL)"), 1048),
            (format!("INSERT INTO items (id, tenant_id, sku, big) VALUES (99996, {t}, 'neg', -1)"), 1264),
            (format!("INSERT INTO items (id, tenant_id, sku, qty) VALUES (99995, {t}, 'nan', 'abc')"), 1366),
            (format!("SELECT id, (SELECT 1 UNION SELECT 2) AS two FROM items WHERE tenant_id = {t}"), 1242),
            (format!("SELECT * FROM nosuch WHERE tenant_id = {t}"), 1146),
        ];
        for (sql, code) in &failing {
            for pair in 0..setup.pairs.len() {
                let got = setup.pairs[pair].compare(sql, true).await;
                assert_eq!(got.code(sql), *code, "[{}] {sql}", setup.pairs[pair].label);
            }
        }
        // Every session is still usable, and nothing was written.
        for pair in 0..setup.pairs.len() {
            setup.pairs[pair].compare(&format!("SELECT * FROM items WHERE tenant_id = {t} ORDER BY id"), true).await;
        }
        setup.assert_same_state("items").await;
    })
    .await;
}

#[tokio::test]
async fn statements_spanning_tenants_answer_as_an_unsharded_server() {
    bounded(async {
        let mut setup = setup().await;
        setup.apply(&inserts()).await;
        let (a, b) = setup.cluster.tenants_on_two_shards("items", 3);
        // Reads scatter to the shards they need (or all) and are merged; writes go to each tenant's shard.
        let reads = [
            (format!("SELECT id FROM items WHERE tenant_id IN ({a}, {b}) ORDER BY id"), true),
            (format!("SELECT id FROM items WHERE tenant_id = {a} OR tenant_id = {b}"), false),
            (format!("SELECT id FROM items WHERE tenant_id = {a} OR 1 = 1"), false),
            (format!("SELECT id FROM items WHERE NOT (tenant_id <> {a})"), false),
            ("SELECT COUNT(*) FROM items".to_owned(), true),
        ];
        for (sql, ordered) in &reads {
            for pair in &mut setup.pairs {
                pair.compare(sql, *ordered).await;
            }
        }
        let writes = [
            format!("UPDATE items SET qty = 0 WHERE tenant_id IN ({a}, {b})"),
            format!("DELETE FROM items WHERE tenant_id = {a} OR tenant_id = {b}"),
            format!("INSERT INTO items (id, tenant_id, sku) VALUES (99990, {a}, 'two'), (99991, {b}, 'tenants')"),
        ];
        // One pair writes; the state of both sides is compared after.
        let pair = &mut setup.pairs[0];
        for sql in &writes {
            let proxied = pair.proxy.run(sql).await;
            let direct = pair.reference.run(sql).await;
            let affected = |o: &Outcome| match o {
                Outcome::Done { affected_rows, .. } => *affected_rows,
                other => panic!("`{sql}`: {other:?}"),
            };
            assert_eq!(affected(&proxied), affected(&direct), "`{sql}`: affected rows");
        }
        setup.assert_same_state("items").await;
    })
    .await;
}

#[tokio::test]
async fn statements_that_cannot_be_run_correctly_across_tenants_are_refused_with_1235_and_change_nothing()
 {
    bounded(async {
        let mut setup = setup().await;
        setup.apply(&inserts()).await;
        let (a, b) = setup.cluster.tenants_on_two_shards("items", 3);
        // Valid SQL (the plain server answers it) that shardgate cannot run correctly on shards.
        let reads = [
            format!("SELECT x.id FROM items x JOIN items y ON x.id = y.id WHERE x.tenant_id = {a}"),
            format!("SELECT id FROM items WHERE tenant_id = {a} AND id IN (SELECT id FROM items WHERE tenant_id = {b})"),
            format!("SELECT id FROM items WHERE tenant_id = {a} XOR 1"),
        ];
        let writes = [
            format!("UPDATE items SET tenant_id = {b} WHERE tenant_id = {a}"),
            // Copying rows across tenants (the SELECT reads tenant a, the rows would be tenant b's).
            format!("INSERT INTO items (id, tenant_id, sku) SELECT id + 50000, {b}, sku FROM items WHERE tenant_id = {a}"),
            // Every shard: refused unless allow_scatter_writes is set.
            "DELETE FROM items".to_owned(),
        ];
        for (sql, on_reference) in reads.iter().map(|s| (s, true)).chain(writes.iter().map(|s| (s, false))) {
            for pair in &mut setup.pairs {
                let got = pair.proxy.run(sql).await;
                assert!(
                    matches!(&got, Outcome::Failed { code: 1235, state, .. } if state == "42000"),
                    "[{}] `{sql}` must be refused with 1235, got {got:?}",
                    pair.label
                );
                if on_reference {
                    let direct = pair.reference.run(sql).await;
                    assert!(matches!(direct, Outcome::Rows { .. }), "`{sql}` on the plain server: {direct:?}");
                }
            }
        }
        setup.assert_same_state("items").await;
    })
    .await;
}
