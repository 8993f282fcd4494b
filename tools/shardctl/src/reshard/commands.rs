//! The reshard commands behind the CLI: create a workflow and run it, drive an existing one to a phase, cancel one,
//! show records.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use shardgate_reshard::{Kind, NewShard, Phase, Settings, Workflow, WorkflowStore};
use shardgate_topology::TopologySpec;

use super::{Common, Create, Target, engine, fleet, password, plan};

pub(super) fn new_shards(
    keyspace: &str,
    names: &[String],
    backends: &[String],
    databases: &[String],
) -> anyhow::Result<Vec<NewShard>> {
    if backends.len() != 1 && backends.len() != names.len() {
        bail!("give one --backend for all new shards or one per shard");
    }
    if !databases.is_empty() && databases.len() != names.len() {
        bail!("give one --database per new shard, or none");
    }
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, name)| NewShard {
            name: name.clone(),
            backend: backends
                .get(i)
                .or(backends.first())
                .cloned()
                .unwrap_or_default(),
            database: databases.get(i).cloned().unwrap_or_else(|| {
                let suffix: String = name
                    .chars()
                    .map(|c| if c == '-' { '_' } else { c })
                    .collect();
                format!("{keyspace}_{suffix}")
            }),
        })
        .collect())
}

pub(super) fn load(store: &WorkflowStore, id: &str) -> anyhow::Result<Workflow> {
    store
        .load(id)?
        .with_context(|| format!("no workflow {id:?} in this state dir"))
}

pub(super) async fn start(
    create: Create,
    common: Common,
    kind: impl Fn(&TopologySpec) -> anyhow::Result<Kind>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if create.workflow.len() > 48 {
        bail!("workflow ids are at most 48 characters");
    }
    let store = WorkflowStore::new(&common.state_dir);
    if store.load(&create.workflow)?.is_some() {
        bail!(
            "workflow {} exists: use resume, or another id",
            create.workflow
        );
    }
    let served = fleet::served(&create.admins).await?;
    let kind = kind(&served)?;
    plan::check(&served, &kind)?;
    if let Kind::MoveTenants { tenants, to, .. } = &kind {
        let topology = served.validate()?;
        for t in tenants {
            if plan::tenant_home(&topology, t)? == *to {
                bail!("tenant {t} is on shard {to} already");
            }
        }
    }
    let settings = Settings {
        chunk_rows: create.chunk_rows.max(1),
        rows_per_second: create.rows_per_second,
        hold_ms: create.hold_ms,
        admins: create.admins.clone(),
        user: create.user.clone(),
    };
    let mut wf = Workflow::new(
        &create.workflow,
        &served.keyspace,
        kind,
        settings,
        engine_now(),
    );
    let mut original = served.clone();
    original.moves.clear();
    wf.original_topology = original.to_yaml();
    if let Err(pid) = store.claim(&wf.id)? {
        bail!("controller pid {pid} runs workflow {}", wf.id);
    }
    store.save(&wf)?;
    let stop = common.stop_after.unwrap_or(Phase::Switched);
    finish(
        engine::Controller::new(store, wf, password(), stop)?,
        common.json,
        out,
    )
    .await
}

fn engine_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn finish(
    mut controller: engine::Controller,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let result = controller.run().await;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&controller.wf)?)?;
    } else {
        write!(
            out,
            "{}",
            super::status::render(
                &controller.wf,
                controller.store.is_paused(&controller.wf.id),
                None
            )
        )?;
    }
    result
}

/// Runs the controller of an existing workflow; `stop` overrides where it stops, `enter` is the phase the command
/// starts (refused unless the workflow is ready for it).
pub(super) async fn drive(
    t: Target,
    stop: Option<Phase>,
    enter: Option<Phase>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = WorkflowStore::new(&t.common.state_dir);
    if let Err(pid) = store.claim(&t.workflow)? {
        bail!(
            "controller pid {pid} runs workflow {}: it continues by itself",
            t.workflow
        );
    }
    let mut wf = load(&store, &t.workflow)?;
    match enter {
        Some(Phase::Cutover) => match wf.phase {
            Phase::Verify if wf.verify.clean => {}
            Phase::Reversed | Phase::Cutover => {}
            other => bail!(
                "workflow {} is {}: cutover needs a clean verify first (resume)",
                wf.id,
                other.name()
            ),
        },
        Some(Phase::Reversing) => match wf.phase {
            Phase::Switched => wf.reverse()?,
            Phase::Reversing => {}
            other => bail!(
                "workflow {} is {}: only a switched workflow can be reversed",
                wf.id,
                other.name()
            ),
        },
        Some(Phase::Cleanup) => match wf.phase {
            Phase::Switched => {}
            Phase::Cleanup => {}
            other => bail!(
                "workflow {} is {}: complete follows a cutover",
                wf.id,
                other.name()
            ),
        },
        _ => {}
    }
    let stop = t.common.stop_after.or(stop).unwrap_or(Phase::Switched);
    finish(
        engine::Controller::new(store, wf, password(), stop)?,
        t.common.json,
        out,
    )
    .await
}

pub(super) async fn cancel(t: Target, out: &mut impl Write) -> anyhow::Result<()> {
    let store = WorkflowStore::new(&t.common.state_dir);
    let wf = load(&store, &t.workflow)?;
    if wf.phase.is_final() || wf.phase.target_owns() {
        bail!(
            "workflow {} is {}: nothing to cancel (reverse first if traffic is on the target)",
            wf.id,
            wf.phase.name()
        );
    }
    store.request_cancel(&t.workflow, true)?;
    // A running controller stops at its next chunk.
    for _ in 0..600 {
        if store
            .controller(&t.workflow)
            .is_none_or(|pid| pid == std::process::id())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Err(pid) = store.claim(&t.workflow)? {
        bail!(
            "controller pid {pid} of workflow {} did not stop",
            t.workflow
        );
    }
    let mut wf = load(&store, &t.workflow)?;
    if wf.phase != Phase::Cancelling {
        wf.cancel()?;
    }
    finish(
        engine::Controller::new(store, wf, password(), Phase::Cancelled)?,
        t.common.json,
        out,
    )
    .await
}

pub(super) async fn status(
    dir: &std::path::Path,
    id: Option<&str>,
    json: bool,
    watch: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let store = WorkflowStore::new(dir);
    loop {
        let records = match id {
            Some(id) => vec![load(&store, id)?],
            None => store.list()?,
        };
        if json {
            let text = match id {
                Some(_) => serde_json::to_string_pretty(&records[0])?,
                None => serde_json::to_string_pretty(&records)?,
            };
            writeln!(out, "{text}")?;
        } else {
            if watch {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            if records.is_empty() {
                writeln!(out, "no workflows in {}", dir.display())?;
            }
            for w in &records {
                write!(
                    out,
                    "{}",
                    super::status::render(w, store.is_paused(&w.id), store.controller(&w.id))
                )?;
            }
        }
        out.flush()?;
        if !watch || records.iter().all(|w| w.phase.is_final()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
