//! `shardctl reshard`: moves tenants and splits or merges shards online (DESIGN.md, "Resharding"; ADR 21).
//!
//! The commands create a workflow record (in `--state-dir`) and run its controller ([`engine`]); `status`, `pause`,
//! `resume`, `cutover`, `reverse`, `complete` and `cancel` act on a record. A record is all a controller needs to
//! resume after being killed.

mod commands;
pub mod engine;
pub mod fleet;
pub mod plan;
pub mod rows;
pub mod status;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use shardgate_reshard::{Kind, NewShard, Phase, WorkflowStore};
use shardgate_topology::TopologySpec;

pub use crate::topology::pin::tenant_of;

/// Options every command that runs a controller takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Folder of workflow records.
    #[arg(long, default_value = "reshard")]
    pub state_dir: PathBuf,
    /// Stop once this phase is done: verify, switched (default: traffic on the target, source copy kept), complete.
    #[arg(long, value_parser = parse_phase)]
    pub stop_after: Option<Phase>,
    /// Print the record as JSON at the end.
    #[arg(long)]
    pub json: bool,
}

/// Options fixed when a workflow is created.
#[derive(Debug, Clone, clap::Args)]
pub struct Create {
    /// The workflow's id (letters, digits, '-', '_'; at most 48 characters).
    #[arg(long)]
    pub workflow: String,
    /// A proxy's admin endpoint (repeat for every proxy serving the keyspace).
    #[arg(long = "admin", required = true)]
    pub admins: Vec<String>,
    /// User the controller connects to the backends as; the password comes from SHARDCTL_PASSWORD.
    #[arg(long, default_value = "root")]
    pub user: String,
    /// Rows per copy chunk (and per verify chunk).
    #[arg(long, default_value_t = 1000)]
    pub chunk_rows: u64,
    /// Copy limit in rows per second (0: none; the copy also backs off when a chunk is slow).
    #[arg(long, default_value_t = 0)]
    pub rows_per_second: u64,
    /// Longest the cutover may hold statements before it gives up and releases them to the source.
    #[arg(long, default_value_t = shardgate_topology::DEFAULT_HOLD_MS)]
    pub hold_ms: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReshardCommand {
    /// Move tenants to another shard: an existing one, or a new dedicated shard of their own.
    MoveTenant {
        #[command(flatten)]
        create: Create,
        /// A tenant to move (repeat for several on the same shard).
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// The shard to move them to: an existing one, or the name of a dedicated shard to create (give
        /// `--backend`).
        #[arg(long)]
        to: String,
        /// Create `--to` as a dedicated shard (a shard of its own for these tenants) on this backend.
        #[arg(long)]
        backend: Option<String>,
        /// The dedicated shard's database (default `<keyspace>_<name>`).
        #[arg(long)]
        database: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Split a shard's key range onto new shards.
    Split {
        #[command(flatten)]
        create: Create,
        /// The shard to split.
        #[arg(long)]
        shard: String,
        /// The new shards' names, comma-separated (`40-60,60-80`).
        #[arg(long, value_delimiter = ',', required = true)]
        into: Vec<String>,
        /// Backend of each new shard (one for all, or one per shard).
        #[arg(long = "backend", required = true)]
        backends: Vec<String>,
        /// Database of each new shard (default `<keyspace>_<name>`, '-' as '_').
        #[arg(long = "database")]
        databases: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Merge adjacent shards onto one new shard.
    Merge {
        #[command(flatten)]
        create: Create,
        /// The shards to merge, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        shards: Vec<String>,
        /// The new shard's name.
        #[arg(long)]
        into: String,
        #[arg(long = "backend")]
        backend: String,
        #[arg(long = "database")]
        database: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Show workflows: progress, rates, ETA, lag, verify findings, cutovers.
    Status {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value = "reshard")]
        state_dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Redraw every second until the workflow ends.
        #[arg(long)]
        watch: bool,
    },
    /// Stop copying where it is (the controller keeps its place).
    Pause(Target),
    /// Continue a paused, stopped or killed workflow.
    Resume(Target),
    /// Hold, fence, flip: send traffic to the target (after verify).
    Cutover(Target),
    /// After a cutover, send traffic back to the source.
    Reverse(Target),
    /// After a cutover, delete the moved rows from the source and remove the workflow's machinery.
    Complete(Target),
    /// Give up before the cutover: drop the target copy; the source is left as it was.
    Cancel(Target),
}

#[derive(Debug, clap::Args)]
pub struct Target {
    #[arg(long)]
    pub workflow: String,
    #[command(flatten)]
    pub common: Common,
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == text)
        .ok_or_else(|| format!("unknown phase {text:?}"))
}

fn password() -> String {
    std::env::var("SHARDCTL_PASSWORD").unwrap_or_default()
}

/// Runs a reshard command.
pub fn run(command: ReshardCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run_async(command, out))
}

use commands::{cancel, drive, load, new_shards, start, status};

async fn run_async(command: ReshardCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        ReshardCommand::MoveTenant {
            create,
            tenants,
            to,
            backend,
            database,
            common,
        } => {
            let kind = |served: &TopologySpec| {
                let exists = served.shards.iter().any(|s| s.name == to);
                let new_shard = match (&backend, exists) {
                    (Some(_), true) => {
                        bail!("shard {to} exists: leave out --backend to move the tenants onto it")
                    }
                    (Some(backend), false) => Some(NewShard {
                        name: to.clone(),
                        backend: backend.clone(),
                        database: database
                            .clone()
                            .unwrap_or_else(|| format!("{}_{to}", served.keyspace)),
                    }),
                    (None, _) => None,
                };
                Ok(Kind::MoveTenants {
                    tenants: tenants.clone(),
                    to: to.clone(),
                    new_shard,
                })
            };
            start(create, common, kind, out).await
        }
        ReshardCommand::Split {
            create,
            shard,
            into,
            backends,
            databases,
            common,
        } => {
            start(
                create,
                common,
                |served: &TopologySpec| {
                    Ok(Kind::Split {
                        shard: shard.clone(),
                        into: new_shards(&served.keyspace, &into, &backends, &databases)?,
                    })
                },
                out,
            )
            .await
        }
        ReshardCommand::Merge {
            create,
            shards,
            into,
            backend,
            database,
            common,
        } => {
            let databases: Vec<String> = database.into_iter().collect();
            start(
                create,
                common,
                |served: &TopologySpec| {
                    let into = new_shards(
                        &served.keyspace,
                        std::slice::from_ref(&into),
                        std::slice::from_ref(&backend),
                        &databases,
                    )?;
                    Ok(Kind::Merge {
                        shards: shards.clone(),
                        into: into.into_iter().next().context("the new shard")?,
                    })
                },
                out,
            )
            .await
        }
        ReshardCommand::Status {
            workflow,
            state_dir,
            json,
            watch,
        } => status(&state_dir, workflow.as_deref(), json, watch, out).await,
        ReshardCommand::Pause(t) => {
            let store = WorkflowStore::new(&t.common.state_dir);
            load(&store, &t.workflow)?;
            store.set_paused(&t.workflow, true)?;
            writeln!(
                out,
                "workflow {} paused: the controller stops at its next chunk",
                t.workflow
            )?;
            Ok(())
        }
        ReshardCommand::Resume(t) => {
            WorkflowStore::new(&t.common.state_dir).set_paused(&t.workflow, false)?;
            drive(t, None, None, out).await
        }
        ReshardCommand::Cutover(t) => {
            drive(t, Some(Phase::Switched), Some(Phase::Cutover), out).await
        }
        ReshardCommand::Reverse(t) => {
            drive(t, Some(Phase::Reversed), Some(Phase::Reversing), out).await
        }
        ReshardCommand::Complete(t) => {
            drive(t, Some(Phase::Complete), Some(Phase::Cleanup), out).await
        }
        ReshardCommand::Cancel(t) => cancel(t, out).await,
    }
}
