//! What loadgen sends: statements for tenants drawn from a Zipf distribution.

use mysql_async::prelude::Queryable;

use crate::Args;

/// The statement mix.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mix {
    /// Point selects by tenant and id.
    Point,
    /// 60% point selects, 10% range reads, 15% inserts, 15% updates.
    Mixed,
}

/// Creates `loadgen_items` through the target (DDL fans out through shardgate) and fills it.
pub async fn prepare(args: &Args) -> anyhow::Result<()> {
    let url = args
        .url
        .first()
        .ok_or_else(|| anyhow::anyhow!("no target"))?;
    let pool = mysql_async::Pool::new(url.as_str());
    let mut conn = pool.get_conn().await?;
    conn.query_drop("DROP TABLE IF EXISTS loadgen_items")
        .await?;
    conn.query_drop(
        "CREATE TABLE loadgen_items (tenant_id BIGINT NOT NULL, id BIGINT NOT NULL, v INT NOT NULL, \
         note VARCHAR(64) NOT NULL, PRIMARY KEY (tenant_id, id))",
    )
    .await?;
    for tenant in 1..=args.tenants {
        let values: Vec<String> = (1..=args.rows_per_tenant)
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

/// A deterministic per-worker statement source.
pub struct Generator {
    rng: u64,
    cdf: Vec<f64>,
    rows: u64,
    mix: Mix,
    next_id: u64,
}

impl Generator {
    pub fn new(args: &Args, worker: u64) -> Self {
        let n = args.tenants.max(1);
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(args.zipf)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights.iter().map(|w| {
            acc += w / total;
            acc
        });
        Generator {
            rng: 0x9e37_79b9_7f4a_7c15 ^ (worker + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            cdf: cdf.collect(),
            rows: args.rows_per_tenant.max(1),
            mix: args.mix,
            next_id: 1_000_000 + worker * 1_000_000_000,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast, deterministic, good enough to pick tenants and ids.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn tenant(&mut self) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u) as u64 + 1
    }

    /// The next statement text.
    pub fn next_statement(&mut self) -> String {
        let tenant = self.tenant();
        let id = self.next_u64() % self.rows + 1;
        let pick = self.next_u64() % 100;
        match (self.mix, pick) {
            (Mix::Point, _) | (Mix::Mixed, 0..60) => {
                format!(
                    "SELECT v, note FROM loadgen_items WHERE tenant_id = {tenant} AND id = {id}"
                )
            }
            (Mix::Mixed, 60..70) => {
                format!(
                    "SELECT id, v FROM loadgen_items WHERE tenant_id = {tenant} AND id BETWEEN 1 AND 5"
                )
            }
            (Mix::Mixed, 70..85) => {
                self.next_id += 1;
                format!(
                    "INSERT INTO loadgen_items (tenant_id, id, v, note) VALUES ({tenant}, {}, 1, 'new')",
                    self.next_id
                )
            }
            (Mix::Mixed, _) => format!(
                "UPDATE loadgen_items SET v = v + 1 WHERE tenant_id = {tenant} AND id = {id}"
            ),
        }
    }
}
