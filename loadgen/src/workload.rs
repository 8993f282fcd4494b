//! What loadgen sends: the table it prepares, and operations (a statement, or a small transaction) for tenants
//! picked by [`Picker`]. Knows nothing of timing: callers say when an operation is due.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::tenants::Picker;

/// The operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Point selects by tenant and id.
    Point,
    /// 60% point selects, 10% range reads, 15% inserts, 15% updates.
    Mixed,
    /// BEGIN; point select; update; COMMIT on one tenant.
    Txn,
}

impl Mix {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Point => "point",
            Mix::Mixed => "mixed",
            Mix::Txn => "txn",
        }
    }
}

/// What to send for one scheduled operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// One statement.
    One(String),
    /// Statements to run between BEGIN and COMMIT.
    Transaction(Vec<String>),
}

/// One operation: a single latency sample, one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The tenant every statement of the operation names.
    pub tenant: u64,
    /// What to send.
    pub body: Body,
}

/// Creates `loadgen_items` through the target (DDL fans out through shardgate) and fills it.
pub async fn prepare(url: &str, tenants: u64, rows_per_tenant: u64) -> anyhow::Result<()> {
    let pool = mysql_async::Pool::new(url);
    let mut conn = pool.get_conn().await?;
    conn.query_drop("DROP TABLE IF EXISTS loadgen_items")
        .await?;
    conn.query_drop(
        "CREATE TABLE loadgen_items (tenant_id BIGINT NOT NULL, id BIGINT NOT NULL, v INT NOT NULL, \
         note VARCHAR(64) NOT NULL, PRIMARY KEY (tenant_id, id))",
    )
    .await?;
    for tenant in 1..=tenants {
        let values: Vec<String> = (1..=rows_per_tenant)
            .map(|id| format!("({tenant}, {id}, {id}, 'row {id}')"))
            .collect();
        conn.query_drop(format!(
            "INSERT INTO loadgen_items (tenant_id, id, v, note) VALUES {}",
            values.join(",")
        ))
        .await?;
    }
    drop(conn);
    pool.disconnect().await?;
    Ok(())
}

/// A deterministic per-connection operation source.
pub struct Generator {
    /// xorshift64* state.
    rng: u64,
    /// Tenant shares, shared by all connections.
    picker: Arc<Picker>,
    /// Rows per tenant: ids are drawn from `1..=rows`.
    rows: u64,
    /// The mix.
    mix: Mix,
    /// Next id to insert; connections start far apart so inserts never collide, and each run (by its start
    /// second) starts elsewhere again, so a second run against the same rows inserts no duplicate.
    next_id: u64,
}

/// Where this run's insert ids start: 2^40 ids per second of the clock, so runs started in different seconds never
/// share an id (2^24 inserts for each of up to 65,536 connections fit below the next second's; ids stay far below
/// the BIGINT limit).
fn run_base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (secs % 100_000) << 40
    })
}

impl Generator {
    /// The source of connection `worker`.
    pub fn new(picker: Arc<Picker>, mix: Mix, rows_per_tenant: u64, worker: u64) -> Self {
        Generator {
            rng: 0x9e37_79b9_7f4a_7c15 ^ (worker + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            picker,
            rows: rows_per_tenant.max(1),
            mix,
            next_id: 1_000_000 + run_base() + worker * (1 << 24),
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast, deterministic, good enough to pick tenants and ids.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The tenant of an operation due `at` into the round, without building the operation.
    pub fn tenant(&mut self, at: Duration) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.picker.pick(u, at)
    }

    /// The next operation, due `at` into the round.
    pub fn next(&mut self, at: Duration) -> Op {
        let tenant = self.tenant(at);
        let id = self.next_u64() % self.rows + 1;
        let pick = self.next_u64() % 100;
        let point = || {
            format!("SELECT v, note FROM loadgen_items WHERE tenant_id = {tenant} AND id = {id}")
        };
        let update = || {
            format!("UPDATE loadgen_items SET v = v + 1 WHERE tenant_id = {tenant} AND id = {id}")
        };
        let body = match (self.mix, pick) {
            (Mix::Point, _) | (Mix::Mixed, 0..60) => Body::One(point()),
            (Mix::Mixed, 60..70) => Body::One(format!(
                "SELECT id, v FROM loadgen_items WHERE tenant_id = {tenant} AND id BETWEEN 1 AND 5"
            )),
            (Mix::Mixed, 70..85) => {
                self.next_id += 1;
                Body::One(format!(
                    "INSERT INTO loadgen_items (tenant_id, id, v, note) VALUES ({tenant}, {}, 1, 'new')",
                    self.next_id
                ))
            }
            (Mix::Mixed, _) => Body::One(update()),
            (Mix::Txn, _) => Body::Transaction(vec![
                format!("SELECT v FROM loadgen_items WHERE tenant_id = {tenant} AND id = {id}"),
                update(),
            ]),
        };
        Op { tenant, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(mix: Mix) -> Generator {
        Generator::new(Arc::new(Picker::new(50, 1.0, None)), mix, 5, 0)
    }

    fn statements(op: &Op) -> Vec<&str> {
        match &op.body {
            Body::One(s) => vec![s.as_str()],
            Body::Transaction(v) => v.iter().map(String::as_str).collect(),
        }
    }

    #[test]
    fn every_statement_names_its_operations_tenant() {
        for mix in [Mix::Point, Mix::Mixed, Mix::Txn] {
            let mut g = generator(mix);
            for _ in 0..500 {
                let op = g.next(Duration::ZERO);
                assert!((1..=50).contains(&op.tenant));
                let key = format!("tenant_id = {}", op.tenant);
                let values = format!("VALUES ({},", op.tenant);
                for s in statements(&op) {
                    assert!(s.contains(&key) || s.contains(&values), "{s}");
                }
            }
        }
    }

    #[test]
    fn txn_mix_reads_then_updates_one_row_inside_a_transaction() {
        let op = generator(Mix::Txn).next(Duration::ZERO);
        let Body::Transaction(stmts) = &op.body else {
            panic!("not a transaction: {op:?}");
        };
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0].starts_with("SELECT"));
        assert!(stmts[1].starts_with("UPDATE"));
    }

    #[test]
    fn point_mix_sends_single_point_selects() {
        let mut g = generator(Mix::Point);
        for _ in 0..100 {
            assert!(
                matches!(g.next(Duration::ZERO).body, Body::One(s) if s.starts_with("SELECT v, note"))
            );
        }
    }

    #[test]
    fn each_connection_replays_its_own_sequence() {
        let run = |worker: u64| -> Vec<Op> {
            let mut g = Generator::new(Arc::new(Picker::new(50, 1.0, None)), Mix::Mixed, 5, worker);
            (0..20).map(|_| g.next(Duration::ZERO)).collect()
        };
        assert_eq!(run(0), run(0));
        assert_ne!(run(0), run(1));
    }
}
