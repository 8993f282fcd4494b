//! loadgen: a multi-tenant load generator for shardgate, and for MariaDB directly, to compare the two.
//!
//! Closed loop: `--connections` clients each run statements back to back for `--seconds`; tenants are drawn from
//! a Zipf distribution so a few tenants are hot, as in real multi-tenant traffic. Reports throughput, latency
//! percentiles and errors by MySQL code.

mod report;
mod workload;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mysql_async::prelude::Queryable;

/// Command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(name = "loadgen", about = "Multi-tenant MySQL load generator")]
pub struct Args {
    /// Target URL, e.g. mysql://app:app@127.0.0.1:15306/app (repeat to compare targets, run alternately).
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seconds per round and target.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rounds; targets alternate within each round, the starting target rotating.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Number of tenants.
    #[arg(long, default_value_t = 1000)]
    pub tenants: u64,
    /// Zipf exponent of tenant popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Rows per tenant created by --prepare.
    #[arg(long, default_value_t = 10)]
    pub rows_per_tenant: u64,
    /// Workload mix: point (point selects only) or mixed (reads, ranges, inserts, updates).
    #[arg(long, default_value = "point")]
    pub mix: workload::Mix,
    /// Create and fill the table `loadgen_items` through the first target before running.
    #[arg(long)]
    pub prepare: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.prepare {
        workload::prepare(&args).await.context("preparing data")?;
    }
    let mut results: Vec<report::TargetResult> = args
        .url
        .iter()
        .map(|u| report::TargetResult::new(u.clone()))
        .collect();
    for round in 0..args.rounds {
        for k in 0..args.url.len() {
            let idx = (round + k) % args.url.len();
            let r = run_round(&args, &args.url[idx]).await?;
            if !args.json {
                eprintln!(
                    "round {} {}: {}",
                    round + 1,
                    redact(&args.url[idx]),
                    r.summary()
                );
            }
            results[idx].rounds.push(r);
        }
    }
    if args.json {
        println!("{}", report::to_json(&results));
    } else {
        print!("{}", report::to_table(&results));
    }
    Ok(())
}

async fn run_round(args: &Args, url: &str) -> anyhow::Result<report::Round> {
    let pool = mysql_async::Pool::new(url);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let pool = pool.clone();
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get_conn().await?;
            conn.query_drop("SELECT 1").await?;
            let mut source = workload::Generator::new(&args, worker as u64);
            let mut round = report::Round::default();
            let started = Instant::now();
            while Instant::now() < deadline {
                let stmt = source.next_statement();
                let t0 = Instant::now();
                let r = conn.query_drop(stmt).await;
                round.record(t0.elapsed(), r.err().as_ref());
            }
            round.elapsed = started.elapsed();
            drop(conn);
            anyhow::Ok(round)
        }));
    }
    let mut total = report::Round::default();
    for t in tasks {
        total.merge(t.await??);
    }
    pool.disconnect().await?;
    Ok(total)
}

/// The URL without its password, for printing.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
