//! loadgen: a multi-tenant load generator for shardgate, and for MariaDB directly, to compare the two.
//!
//! Closed loop (default): `--connections` clients each run operations back to back for `--seconds`. Open loop
//! (`--rate`): operations are due at fixed intervals and timed from when they were due, so queueing under overload
//! shows in the latency. Tenants are drawn from a Zipf distribution so a few are hot, as in real multi-tenant
//! traffic; one tenant can spike. Reports throughput, latency percentiles (HDR histograms), errors by MySQL code,
//! timeouts and unsent operations, overall and per tenant class, as a table or JSON.
//!
//! Exit codes: 0 when the run completed (statement errors are counted, not fatal); 1 on bad flags, a failed
//! `--prepare` or a target that cannot be connected to; 2 on unparseable flags (clap).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod latency;
mod pacer;
mod progress;
mod report;
mod round;
mod run;
mod schedule;
mod tenants;
mod workload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use report::{Setup, TargetResult};
use tenants::{Classes, Picker, Spike};

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
    /// Open loop: total operations per second across all connections, each timed from when it was due.
    /// Without it, closed loop.
    #[arg(long, value_name = "QPS")]
    pub rate: Option<f64>,
    /// After the deadline, milliseconds operations already sent may take before they count as timed out.
    #[arg(long, default_value_t = 2000)]
    pub grace_ms: u64,
    /// Number of tenants.
    #[arg(long, default_value_t = 1000)]
    pub tenants: u64,
    /// Zipf exponent of tenant popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Rows per tenant created by --prepare.
    #[arg(long, default_value_t = 10)]
    pub rows_per_tenant: u64,
    /// Operation mix. Errors are counted by code; the run goes on.
    #[arg(long, default_value = "point")]
    pub mix: workload::Mix,
    /// A tenant to spike: it gets --spike-factor times its normal share during the spike, and its own class.
    #[arg(long, requires_all = ["spike_factor", "spike_start", "spike_seconds"])]
    pub spike_tenant: Option<u64>,
    /// Multiplier of the spiking tenant's share (its share is capped at all operations).
    #[arg(long, requires = "spike_tenant")]
    pub spike_factor: Option<f64>,
    /// Seconds into each round when the spike starts.
    #[arg(long, requires = "spike_tenant")]
    pub spike_start: Option<f64>,
    /// How many seconds the spike lasts.
    #[arg(long, requires = "spike_tenant")]
    pub spike_seconds: Option<f64>,
    /// Create and fill the table `loadgen_items` through the first target before running.
    #[arg(long)]
    pub prepare: bool,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Every problem with the flags, or none.
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_string());
            }
        };
        check(self.connections >= 1, "--connections must be at least 1");
        check(self.seconds >= 1, "--seconds must be at least 1");
        check(self.rounds >= 1, "--rounds must be at least 1");
        check(self.tenants >= 1, "--tenants must be at least 1");
        check(
            self.zipf.is_finite() && self.zipf >= 0.0,
            "--zipf must be a number >= 0",
        );
        if let Some(rate) = self.rate {
            check(
                rate.is_finite() && rate > 0.0,
                "--rate must be a number > 0",
            );
        }
        if let Some(t) = self.spike_tenant {
            check(
                (1..=self.tenants).contains(&t),
                "--spike-tenant must be within 1..=--tenants",
            );
        }
        if let Some(f) = self.spike_factor {
            check(
                f.is_finite() && f >= 0.0,
                "--spike-factor must be a number >= 0",
            );
        }
        for (v, flag) in [
            (self.spike_start, "--spike-start"),
            (self.spike_seconds, "--spike-seconds"),
        ] {
            if let Some(v) = v {
                check(
                    v.is_finite() && v >= 0.0,
                    &format!("{flag} must be a number of seconds >= 0"),
                );
            }
        }
        problems
    }

    /// The spike, when all its flags are given.
    fn spike(&self) -> Option<Spike> {
        Some(Spike {
            tenant: self.spike_tenant?,
            factor: self.spike_factor?,
            start: Duration::try_from_secs_f64(self.spike_start?).ok()?,
            length: Duration::try_from_secs_f64(self.spike_seconds?).ok()?,
        })
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let problems = args.validate();
    if !problems.is_empty() {
        anyhow::bail!("invalid flags:\n  {}", problems.join("\n  "));
    }
    if args.prepare {
        let url = args.url.first().context("no target")?;
        workload::prepare(url, args.tenants, args.rows_per_tenant)
            .await
            .context("preparing data")?;
    }
    let spike = args.spike();
    let classes = Classes::new(args.tenants, spike.map(|s| s.tenant));
    let plan = run::Plan {
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        grace: Duration::from_millis(args.grace_ms),
        rate: args.rate,
        mix: args.mix,
        rows_per_tenant: args.rows_per_tenant,
        picker: Arc::new(Picker::new(args.tenants, args.zipf, spike)),
        classes,
    };
    let setup = Setup {
        rate: args.rate,
        connections: args.connections,
        seconds: args.seconds,
        rounds: args.rounds,
        grace: plan.grace,
        mix: args.mix,
        tenants: args.tenants,
        zipf: args.zipf,
        hot_tenants: tenants::hot_count(args.tenants),
        spike,
        classes: classes.shown(),
    };
    let mut results: Vec<TargetResult> = args
        .url
        .iter()
        .map(|u| TargetResult::new(u.clone()))
        .collect();
    for round in 0..args.rounds {
        for k in 0..args.url.len() {
            let idx = (round + k) % args.url.len();
            let url = &args.url[idx];
            let label = format!("round {} {}", round + 1, redact(url));
            let r = run::run_round(&plan, url, label.clone()).await?;
            if !args.json {
                eprintln!("{label}: {}", r.summary());
            }
            results[idx].rounds.push(r);
        }
    }
    if args.json {
        println!("{}", report::json::render(&setup, &results));
    } else {
        print!("{}", report::table::render(&setup, &results));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["loadgen", "--url", "mysql://a@h/d"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn spike_flags_come_together_or_not_at_all() {
        assert!(parse(&["--spike-tenant", "3"]).is_err());
        assert!(parse(&["--spike-factor", "3"]).is_err());
        let args = parse(&[
            "--spike-tenant",
            "3",
            "--spike-factor",
            "10",
            "--spike-start",
            "1",
            "--spike-seconds",
            "2",
        ])
        .unwrap();
        let s = args.spike().unwrap();
        assert_eq!(
            (s.tenant, s.start, s.length),
            (3, Duration::from_secs(1), Duration::from_secs(2))
        );
        assert!(parse(&[]).unwrap().spike().is_none());
    }

    #[test]
    fn validation_lists_every_problem() {
        let args = parse(&[
            "--connections",
            "0",
            "--rate",
            "0",
            "--tenants",
            "10",
            "--spike-tenant",
            "11",
            "--spike-factor",
            "2",
            "--spike-start",
            "0",
            "--spike-seconds",
            "1",
        ])
        .unwrap();
        let problems = args.validate();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(parse(&["--rate", "1000"]).unwrap().validate().is_empty());
    }

    #[test]
    fn redact_drops_the_password_only() {
        assert_eq!(
            redact("mysql://app:pw@127.0.0.1:1/db"),
            "mysql://app@127.0.0.1:1/db"
        );
        assert_eq!(redact("mysql://127.0.0.1:1/db"), "mysql://127.0.0.1:1/db");
    }
}
