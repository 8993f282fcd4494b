//! `shardctl reshard status`: a workflow record for a terminal (progress bars, rates, ETA, lag) or as JSON, and as
//! Prometheus text for a node exporter's textfile collector.

use std::fmt::Write;

use shardgate_reshard::{Kind, Phase, Workflow};

fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    format!(
        "[{}{}]",
        "#".repeat(filled),
        "-".repeat(width - filled.min(width))
    )
}

fn what(w: &Workflow) -> String {
    match &w.kind {
        Kind::MoveTenants {
            tenants,
            to,
            new_shard,
        } => format!(
            "move tenant {} to {to}{}",
            tenants.join(","),
            if new_shard.is_some() {
                " (a new dedicated shard)"
            } else {
                ""
            }
        ),
        Kind::Split { shard, into } => {
            let names: Vec<&str> = into.iter().map(|s| s.name.as_str()).collect();
            format!("split {shard} into {}", names.join(","))
        }
        Kind::Merge { shards, into } => format!("merge {} into {}", shards.join(","), into.name),
    }
}

/// The record for a terminal.
pub fn render(w: &Workflow, paused: bool, controller: Option<u32>) -> String {
    let mut out = String::new();
    let running = controller.map_or("no controller running".to_string(), |pid| {
        format!("controller pid {pid}")
    });
    let _ = writeln!(
        out,
        "workflow {}: {} — phase {}{} ({running})",
        w.id,
        what(w),
        w.phase.name(),
        if paused { ", PAUSED" } else { "" }
    );
    let _ = writeln!(
        out,
        "  copy rate {:.0} rows/s; captured changes applied {}, lag {}",
        w.copy_rate, w.changes_applied, w.changes_pending
    );
    for t in &w.tables {
        let left = t.rows_estimated.saturating_sub(t.rows_copied);
        let eta = if t.copied {
            "done".to_string()
        } else if w.copy_rate > 0.0 {
            format!("ETA {:.0}s", left as f64 / w.copy_rate)
        } else {
            "ETA ?".to_string()
        };
        let _ = writeln!(
            out,
            "  {:<28} {} {:>5.1}%  {}/{} rows  {eta}{}",
            format!("{}/{}", t.source, t.table),
            bar(t.fraction(), 24),
            t.fraction() * 100.0,
            t.rows_copied,
            t.rows_estimated,
            if t.rows_cleaned > 0 {
                format!("  cleaned {}", t.rows_cleaned)
            } else {
                String::new()
            }
        );
    }
    let v = &w.verify;
    if v.passes > 0 {
        let _ = writeln!(
            out,
            "  verify: {} passes, {} chunks checked, {} differed and were copied again, last pass {} ({} rows)",
            v.passes,
            v.chunks_checked,
            v.chunks_mismatched,
            if v.clean { "clean" } else { "NOT clean" },
            v.rows_compared
        );
        for (table, n) in &v.mismatches_by_table {
            let _ = writeln!(out, "    {table}: {n} chunks differed");
        }
    }
    for c in &w.cutovers {
        let _ = writeln!(
            out,
            "  {} at {}: held {} ms, {} changes drained{}",
            c.outcome,
            c.at,
            c.held_ms,
            c.changes_drained,
            c.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &w.last_error {
        let _ = writeln!(out, "  last error: {e}");
    }
    out
}

/// The record as Prometheus metrics.
pub fn prometheus(w: &Workflow) -> String {
    let mut out = String::new();
    let id = &w.id;
    let _ = writeln!(
        out,
        "# HELP shardctl_reshard_phase 1 for the phase the workflow is in.\n# TYPE shardctl_reshard_phase gauge"
    );
    for p in Phase::ALL {
        let _ = writeln!(
            out,
            "shardctl_reshard_phase{{workflow=\"{id}\",phase=\"{}\"}} {}",
            p.name(),
            u8::from(p == w.phase)
        );
    }
    let copied: u64 = w.tables.iter().map(|t| t.rows_copied).sum();
    let estimated: u64 = w.tables.iter().map(|t| t.rows_estimated).sum();
    let held = w.cutovers.last().map_or(0, |c| c.held_ms);
    for (name, kind, help, value) in [
        (
            "shardctl_reshard_rows_copied",
            "gauge",
            "Rows copied by the backfill.",
            copied as f64,
        ),
        (
            "shardctl_reshard_rows_estimated",
            "gauge",
            "Rows to copy, as estimated when the copy started.",
            estimated as f64,
        ),
        (
            "shardctl_reshard_copy_rows_per_second",
            "gauge",
            "Recent backfill rate.",
            w.copy_rate,
        ),
        (
            "shardctl_reshard_changes_applied",
            "gauge",
            "Captured changes applied to the target.",
            w.changes_applied as f64,
        ),
        (
            "shardctl_reshard_changes_pending",
            "gauge",
            "Captured changes not yet applied (the lag).",
            w.changes_pending as f64,
        ),
        (
            "shardctl_reshard_verify_mismatched_chunks",
            "gauge",
            "Chunks verify found differing, over all passes.",
            w.verify.chunks_mismatched as f64,
        ),
        (
            "shardctl_reshard_cutover_pause_seconds",
            "gauge",
            "How long the last cutover held statements.",
            held as f64 / 1000.0,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{workflow=\"{id}\"}} {value}"
        );
    }
    out
}
