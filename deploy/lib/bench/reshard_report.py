#!/usr/bin/env python3
"""Renders deploy/bench-reshard.sh's results as docs/benchmarks-reshard.md.

Input (written by deploy/bench-reshard.sh into its state folder):
  --meta     key<TAB>value lines: machine, versions, settings, the command lines
  --results  one line per round: round from to status controller_rc controller_wall_s loadgen_status
             load_started_unix controller_started_unix load_seconds rows_on_target rows_on_source proxy_log_lines
             loadavg
  --runs     the runs folder: round-N.workflow.json (the controller's record, `--json`), round-N.controller.err (its
             progress lines, each prefixed with the Unix time it came; a line ends each phase), round-N.loadgen.json
             (loadgen --json) and .err, round-N.metrics-before and -after (the proxy's /metrics around the round),
             round-N.proxy-log (what shardgate logged other than INFO), round-N.command (the controller's command)
Output: --output (markdown, overwritten).

Standard library only: the benchmark must not depend on what pip has installed.
"""

import json
import math
import os
import re
import statistics
from collections import Counter

import tsv
from tsv import error_text, fmt, latency, log_lines_text, number, read_lines, read_meta

FIELDS = ["round", "from", "to", "status", "controller_rc", "wall_s", "loadgen_status", "load_started",
          "controller_started", "load_seconds", "rows_on_target", "rows_on_source", "proxy_log_lines", "loadavg"]
HOLD = "shardgate_reshard_hold_seconds"
HELD = "shardgate_reshard_held_statements_total"
HOLD_TIMEOUTS = "shardgate_reshard_hold_timeouts_total"
REFUSED = "shardgate_reshard_refused_total"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
LE = re.compile(r'le="([^"]+)"')


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_metrics(path):
    """The unlabelled counters and the hold histogram's cumulative buckets ({le: count}) of one scrape."""
    counters, buckets = {}, {}
    for line in read_lines(path):
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", number(m.group(3))
        if value is None:
            continue
        if name == HOLD + "_bucket":
            le = LE.search(labels)
            if le:
                buckets[math.inf if le.group(1) == "+Inf" else float(le.group(1))] = value
        elif not labels:
            counters[name] = value
    return counters, buckets


def quantile(q, bucket_deltas):
    """The q-quantile of a histogram given as cumulative {upper bound: count}, interpolated linearly inside its
    bucket (from the bucket below's bound, 0 for the first) as Prometheus' histogram_quantile does; in the +Inf
    bucket, the last finite bound. None without observations."""
    bounds = sorted(bucket_deltas)
    if not bounds:
        return None
    total = bucket_deltas[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = bucket_deltas[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = bound, count
    return lower


PROGRESS = re.compile(r"^(\d+(?:\.\d+)?) \[[^\]]*\] ([a-z_]+): (.*)$")


def phase_times(lines, started):
    """Seconds the controller spent in each phase, from its stamped progress lines: a phase ends with its last
    line, and starts where the phase before it ended (create at the controller's start)."""
    ends = {}
    for line in lines:
        m = PROGRESS.match(line)
        if m:
            ends[m.group(2)] = float(m.group(1))
    out = {}
    if started is None:
        return out
    previous = started
    for phase in ("create", "dual_write", "backfill", "verify", "cutover", "cleanup"):
        if phase in ends:
            out[phase] = ends[phase] - previous
            previous = ends[phase]
    if "cutover" in ends:
        out["cutover_after"] = ends["cutover"] - started
    return out


def unstamped(lines):
    """Progress lines without their time stamps."""
    return [PROGRESS.sub(r"[\2] \3", line) if PROGRESS.match(line) else line for line in lines]


def read_round(r, runs_dir):
    """Round `r` (its results line, as read_rows gives it) with its numbers and what its files in runs_dir say."""
    r["round"] = int(r["round"])
    for key in ("wall_s", "load_started", "controller_started", "load_seconds", "rows_on_target", "rows_on_source",
                "proxy_log_lines", "loadavg"):
        r[key] = number(r[key])
    base = os.path.join(runs_dir, f"round-{r['round']}")
    wf = read_json(base + ".workflow.json")
    lg = read_json(base + ".loadgen.json")
    r["workflow"], r["loadgen"] = wf, (lg["targets"][0] if lg and lg.get("targets") else None)
    r["proxy_log"] = read_lines(base + ".proxy-log")
    stamped = read_lines(base + ".controller.err")
    r["controller_err"] = unstamped(stamped)
    r["phases"] = phase_times(stamped, r["controller_started"])
    r["loadgen_err"] = read_lines(base + ".loadgen.err")
    r["command"] = " ".join(read_lines(base + ".command"))
    # The controller's record.
    r["copy_rate"] = r["rows_copied"] = r["held_ms"] = r["drained"] = r["passes"] = r["mismatched"] = None
    r["cutover_at"], r["aborted"], r["phase"] = None, 0, None
    if wf:
        r["phase"] = wf.get("phase")
        r["copy_rate"] = wf.get("copy_rate")
        r["rows_copied"] = sum(t.get("rows_copied", 0) for t in wf.get("tables", []))
        cutovers = wf.get("cutovers", [])
        switched = [c for c in cutovers if c.get("outcome") == "switched"]
        r["aborted"] = sum(1 for c in cutovers if c.get("outcome") == "aborted")
        if switched:
            r["held_ms"], r["drained"], r["cutover_at"] = (switched[-1].get("held_ms"),
                                                           switched[-1].get("changes_drained"), switched[-1].get("at"))
        verify = wf.get("verify", {})
        r["passes"], r["mismatched"] = verify.get("passes"), verify.get("chunks_mismatched")
    # The proxy's counters and hold histogram over the round.
    before_c, before_b = read_metrics(base + ".metrics-before")
    after_c, after_b = read_metrics(base + ".metrics-after")
    delta = lambda name: (after_c[name] - before_c.get(name, 0)) if name in after_c else None  # noqa: E731
    r["held"], r["hold_timeouts"], r["refused"] = delta(HELD), delta(HOLD_TIMEOUTS), delta(REFUSED)
    buckets = {le: n - before_b.get(le, 0) for le, n in after_b.items()}
    r["hold_p50_ms"] = ms(quantile(0.5, buckets))
    r["hold_p99_ms"] = ms(quantile(0.99, buckets))
    r["hold_observed"] = buckets.get(math.inf)
    # When the cutover ended, from the controller's start, and whether the load still ran then.
    r["cutover_after_s"] = r["phases"].get("cutover_after")
    r["load_covered"] = None
    if None not in (r["cutover_after_s"], r["controller_started"], r["load_started"], r["load_seconds"]):
        r["load_covered"] = r["controller_started"] + r["cutover_after_s"] <= r["load_started"] + r["load_seconds"]
    if r["status"] == "ok" and (wf is None or r["loadgen"] is None):
        r["status"] = "no-report"
    return r


def ms(seconds):
    return None if seconds is None else seconds * 1000


def read_results(path, runs_dir):
    return [read_round(r, runs_dir) for r in tsv.read_rows(path, FIELDS, "reshard_report.py")]


def lat(r, cls, key):
    """A loadgen latency in ms: overall (cls None) or of a class."""
    lg = r["loadgen"]
    if lg is None:
        return None
    src = lg if cls is None else lg.get("classes", {}).get(cls)
    return src[key] / 1000 if src and src.get(key) is not None else None


def spike_errors(r):
    """The moving tenant's errors by code (from loadgen's one round)."""
    lg = r["loadgen"]
    if not lg or not lg.get("rounds"):
        return Counter()
    return Counter({int(c): n for c, n in lg["rounds"][0]["classes"]["spike"].get("errors_by_code", {}).items()})


def errors(r):
    lg = r["loadgen"]
    return Counter({int(c): n for c, n in lg["errors_by_code"].items()}) if lg else Counter()


def spread(values, show):
    """Median (min–max) of the values that exist."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    med = show(statistics.median(values))
    return med if min(values) == max(values) else f"{med} ({show(min(values))}–{show(max(values))})"


def summary_table(rounds):
    """Medians of the controller's figures over the successful rounds, and of the proxy's and loadgen's over those
    whose load still ran at the cutover (in the others nothing was there to hold)."""
    ok = [r for r in rounds if r["status"] == "ok"]
    loaded = [r for r in ok if r["load_covered"]]
    rows = [
        ("backfill rows/s (controller's `copy_rate`)", ok, lambda r: r["copy_rate"], fmt),
        ("rows copied", ok, lambda r: r["rows_copied"], fmt),
        ("cutover `held_ms` (hold published to lifted)", ok, lambda r: r["held_ms"], fmt),
        ("statements held (proxy)", loaded, lambda r: r["held"], fmt),
        ("held delay p50 ms (bucket-interpolated)", loaded, lambda r: r["hold_p50_ms"], latency),
        ("held delay p99 ms (bucket-interpolated)", loaded, lambda r: r["hold_p99_ms"], latency),
        ("moving tenant p99 ms (loadgen)", loaded, lambda r: lat(r, "spike", "p99_us"), latency),
        ("moving tenant max ms (loadgen)", loaded, lambda r: lat(r, "spike", "max_us"), latency),
        ("all tenants p99 ms (loadgen)", loaded, lambda r: lat(r, None, "p99_us"), latency),
        ("cutover ended after s (from the controller's start)", ok, lambda r: r["cutover_after_s"],
         lambda v: fmt(v, 1)),
        ("controller wall time s", ok, lambda r: r["wall_s"], lambda v: fmt(v, 1)),
    ]
    if len(ok) > 1:
        head = f"Medians over the {len(ok)} successful rounds of {len(rounds)}, min–max in brackets"
    else:
        head = f"{len(ok)} successful round(s) of {len(rounds)}"
    if len(loaded) < len(ok):
        head += (f"; statements held, held delay and latency over the {len(loaded)} round(s) whose load still ran "
                 "at the cutover")
    lines = [head + ".", "", "| measure | value |", "|---|---:|"]
    lines += [f"| {name} | {spread([get(r) for r in rs], show)} |" for name, rs, get, show in rows]
    return "\n".join(lines)


def rounds_table(rounds):
    lines = [
        "| round | from → to | status | backfill rows/s | rows copied | verify passes | chunks mismatched "
        "| held_ms | changes drained | held stmts | held p50 ms | held p99 ms | hold timeouts | controller s "
        "| load avg |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        lines.append(
            f"| {r['round']} | `{r['from']}` → `{r['to']}` | {r['status']} | {fmt(r['copy_rate'])} "
            f"| {fmt(r['rows_copied'])} | {fmt(r['passes'])} | {fmt(r['mismatched'])} | {fmt(r['held_ms'])} "
            f"| {fmt(r['drained'])} | {fmt(r['held'])} | {latency(r['hold_p50_ms'])} | {latency(r['hold_p99_ms'])} "
            f"| {fmt(r['hold_timeouts'])} | {fmt(r['wall_s'], 1)} | {fmt(r['loadavg'], 1)} |")
    return "\n".join(lines)


def phases_table(rounds):
    lines = ["| round | create + dual_write s | backfill s | verify s | cutover s | cleanup s "
             "| cutover ended after s |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rounds:
        p = r["phases"]
        early = p["create"] + p["dual_write"] if "create" in p and "dual_write" in p else None
        lines.append(f"| {r['round']} | {fmt(early, 1)} | {fmt(p.get('backfill'), 1)} | {fmt(p.get('verify'), 1)} "
                     f"| {fmt(p.get('cutover'), 2)} | {fmt(p.get('cleanup'), 1)} | {fmt(p.get('cutover_after'), 1)} |")
    return "\n".join(lines)


def load_table(rounds):
    lines = [
        "| round | qps | p50 ms | p99 ms | max ms | errors | moving tenant qps | its p50 ms | its p99 ms "
        "| its max ms | its errors | load ran through the cutover |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rounds:
        lg = r["loadgen"]
        spike = lg["classes"].get("spike") if lg else None
        covered = {True: "yes", False: "no: the cutover came after the load ended", None: "-"}[r["load_covered"]]
        lines.append(
            f"| {r['round']} | {fmt(lg['qps']) if lg else '-'} | {latency(lat(r, None, 'p50_us'))} "
            f"| {latency(lat(r, None, 'p99_us'))} | {latency(lat(r, None, 'max_us'))} "
            f"| {error_text(errors(r), lg['timeouts']) if lg else '-'} | {fmt(spike['qps']) if spike else '-'} "
            f"| {latency(lat(r, 'spike', 'p50_us'))} | {latency(lat(r, 'spike', 'p99_us'))} "
            f"| {latency(lat(r, 'spike', 'max_us'))} "
            f"| {error_text(spike_errors(r), spike['timeouts']) if spike else '-'} | {covered} |")
    return "\n".join(lines)


def checks_text(rounds, meta):
    """Where the tenant's rows ended up, aborted cutovers, refusals, and what went wrong."""
    out = []
    for r in rounds:
        notes = []
        if r["rows_on_source"] is not None and r["rows_on_target"] is not None:
            notes.append(f"afterwards {fmt(r['rows_on_target'])} rows of the tenant on `{r['to']}` and "
                         f"{fmt(r['rows_on_source'])} on `{r['from']}`")
        if r["phase"] and r["phase"] != "complete":
            notes.append(f"the workflow ended in phase `{r['phase']}`")
        if r["aborted"]:
            notes.append(f"{r['aborted']} cutover attempt(s) aborted first")
        if r["refused"]:
            notes.append(f"{fmt(r['refused'])} statement(s) refused while the source kept moved rows")
        wf = r["workflow"]
        if wf and wf.get("last_error"):
            notes.append(f"last error: `{wf['last_error'][:300]}`")
        if r["status"] != "ok":
            said = (r["controller_err"] or r["loadgen_err"] or ["no output"])[-1]
            notes.append(f"failed ({r['status']}): `{said[:300]}`")
        out.append(f"- Round {r['round']}: " + "; ".join(notes) + ".")
    out.append(f"- Expected after each complete move: {fmt(number(meta.get('tenant_rows', '-')))} rows of the "
               "tenant (plus those "
               "loadgen inserted for it during the round) on the target, none on the source.")
    return "\n".join(out)


def proxy_log_text(rounds):
    out = []
    for r in rounds:
        if r["proxy_log"]:
            out += log_lines_text(f"Round {r['round']}", r["proxy_log"])
    return "\n".join(out) if out else "Nothing above INFO during the rounds."


def share_text(meta):
    """The moving tenant's share of the traffic: loadgen multiplies its normal share (1 / tenants) by the factor."""
    factor, tenants = number(meta.get("spike_factor", "-")), number(meta.get("tenants", "-"))
    if not factor or not tenants:
        return "?"
    return f"{min(1.0, factor / tenants):.0%}"


def render(meta, rounds):
    elapsed = int(meta.get("elapsed_seconds", "0") or 0)
    hold_bound = 2000
    extra = meta.get("reshard_extra_args", "")
    match = re.search(r"--hold-ms[= ](\d+)", extra)
    if match:
        hold_bound = int(match.group(1))
    nproc = meta.get("nproc", "?")
    failed = [r for r in rounds if r["status"] != "ok"]
    out = [
        "# Benchmarks: online resharding",
        "",
        f"Written by `deploy/bench-reshard.sh` on {meta.get('date', '?')}; every run of it overwrites this file.",
        "",
        f"Command (it ran for {elapsed // 60} min {elapsed % 60} s after the build):",
        "",
        "```sh",
        meta.get("command", "deploy/bench-reshard.sh"),
        "```",
        "",
        f"One tenant ({meta.get('tenant', '?')}, {fmt(number(meta.get('tenant_rows', '-')))} rows of "
        f"`loadgen_items`) moved with `shardctl reshard move-tenant` between two of {meta.get('shards', '?')} shards "
        f"on one mariadbd, {meta.get('rounds', '?')} time(s), while loadgen sent mixed traffic through shardgate "
        f"({fmt(number(meta.get('rate', '-')))} statements/s, open loop). Odd rounds move the tenant from its home "
        "shard "
        f"{meta.get('home_shard', '?')} to {meta.get('away_shard', '?')}, even rounds back, so every round moves the "
        "same rows: backfill (chunked copy under source row locks, captured changes applied), verify (chunk "
        "checksums), cutover (statements for the tenant held in the proxy, source fenced, changes drained, "
        "ownership flipped) and cleanup (the moved rows deleted from the source).",
        "",
        "## Summary",
        "",
        summary_table(rounds),
        "",
        "## How to read this",
        "",
        "*Backfill rows/s* is the controller's `copy_rate`: rows it copied divided by the time its backfill phase "
        "took, applying the changes captured meanwhile included. During the cutover the proxy *holds* every "
        "statement for the moving tenant: it waits in the proxy (polling every 2 ms for the topology version that "
        "ends the hold) instead of reaching a shard, then runs on the new owner. *held_ms* is how long the hold "
        "was published, from the controller's side (publish the hold, wait for every proxy, fence the source, "
        "drain the last captured changes, publish the flip); the cutover gives up and releases the statements to "
        f"the source if it cannot finish within its bound, `--hold-ms` ({hold_bound:,} ms"
        + (", the default" if hold_bound == 2000 else "") + "). *Statements held* and the *held delay* come from "
        "the proxy's `/metrics`, scraped before and after each round: the increase of "
        "`shardgate_reshard_held_statements_total`, and p50/p99 of the increase of the histogram "
        "`shardgate_reshard_hold_seconds` (the delay each held statement saw), bucket-interpolated: linear within "
        "the bucket the quantile falls in (buckets 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1 s, 2.5 s ...), so "
        "they are estimates whose error is up to the width of that bucket; with a handful of held statements per "
        "round, p99 is in effect the slowest one, placed inside its bucket (so it can read above *held_ms*). "
        "Statements that arrive during the hold wait only for what is left of it, so the held delay is mostly "
        "shorter than *held_ms*. The moving tenant's latency is "
        "loadgen's *spike* class: it gets "
        f"{meta.get('spike_factor', '?')} times an ordinary tenant's share of the traffic for the whole run "
        f"({share_text(meta)} of all statements), so that a cutover of tens of milliseconds holds some of its "
        "statements and they show in its p99 and max; latency is measured from each statement's intended send "
        "time (open loop), so queueing behind a held statement counts. Latency covers the whole run, not only the "
        "cutover: the backfill and verify load the same cores, so every tenant's p99 rises with them; what the "
        "cutover itself costs a statement is the held delay. The client, the proxy, MariaDB and the "
        f"controller share the machine's {nproc} cores: the backfill competes with the load for CPU, and its "
        "rate is that of this machine, not of a server of its own.",
        "",
        "## Each round",
        "",
        rounds_table(rounds),
        "",
        "*held p50/p99*: bucket-interpolated from the proxy's histogram; *hold timeouts*: held statements released "
        "by the proxy's own `hold_max_ms` rather than by the workflow (expected 0); *controller s*: the "
        "move-tenant command's wall time, create to cleanup; *load avg*: the machine's 1-minute load average at the "
        "round's end, this benchmark's own processes included: well above the "
        f"{meta.get('nproc', '?')} cores, other work competed and slowed the copy (the controller also backs off "
        "after a chunk slower than 250 ms, for as long again).",
        "",
        "### Where the controller's time went",
        "",
        "Seconds per phase, from the time stamps of the controller's progress lines (each phase ends with one); "
        "*cutover ended after s* counts from the controller's start.",
        "",
        phases_table(rounds),
        "",
        "### The load during each round",
        "",
        f"loadgen ran {meta.get('load_seconds', '?')} s per round; the move started {meta.get('lead_seconds', '?')} "
        "s into it. Latency in ms, from intended send time; *errors* by MySQL error code (none are expected), "
        "*unanswered*: statements still without an answer 2 s after the run's end.",
        "",
        load_table(rounds),
        "",
        "### Checks",
        "",
        checks_text(rounds, meta),
        "",
    ]
    if failed:
        out += ["Failed rounds are left out of the summary's medians.", ""]
    out += [
        "## What shardgate logged",
        "",
        proxy_log_text(rounds),
        "",
        "## Machine and settings",
        "",
        f"- Machine: {nproc} CPUs ({meta.get('cpu_model', '?')}), {meta.get('ram', '?')} RAM, "
        f"Linux {meta.get('kernel', '?')}; mariadbd, shardgate, loadgen and the controller share it.",
        f"- {meta.get('mariadbd', '?')}, flags: `{meta.get('mariadbd_flags', '?')}`.",
        f"- shardgate {meta.get('shardgate', '?')}: {meta.get('shards', '?')} shards on that one server "
        f"(`shardctl topology generate --shards {meta.get('shards', '?')}`), {meta.get('workers', '?')} workers, "
        "default pool and hold settings.",
        f"- Data: `loadgen --prepare` through shardgate ({meta.get('tenants', '?')} tenants x "
        f"{meta.get('rows_per_tenant', '?')} rows), then {fmt(number(meta.get('rows', '-')))} more rows of tenant "
        f"{meta.get('tenant', '?')} (ids from {meta.get('first_extra_id', '?')}) in INSERTs of "
        f"{fmt(number(meta.get('insert_batch', '-')))} rows through shardgate ({meta.get('insert_seconds', '?')} s). "
        "Before each round the rows loadgen inserted in earlier rounds (ids from 1,000,000) are deleted on the "
        "shards: loadgen numbers its inserts the same way in every run.",
        f"- Load, per round: `{meta.get('loadgen_command', '?')}`.",
        f"- Move, per round: `{meta.get('move_command', '?')}`.",
        f"- Ports: {meta.get('ports', '?')}; loopback only.",
        "",
    ]
    return "\n".join(out)


def main():
    parser = tsv.report_parser(__doc__)
    parser.add_argument("--summary-output", help="also keep the summary in this file's `reshard` section")
    args = parser.parse_args()
    meta = read_meta(args.meta)
    rounds = read_results(args.results, args.runs)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render(meta, rounds))
    if args.summary_output:
        body = (
            "## Online resharding\n\n"
            f"`deploy/bench-reshard.sh` ({meta.get('date', '?')}): one tenant of "
            f"{fmt(statistics.median([r['rows_copied'] for r in rounds if r['status'] == 'ok'] or [0]))} rows moved "
            "between two shards under load, with `shardctl reshard move-tenant --stop-after complete`; details, "
            "every round and how to read it in [benchmarks-reshard.md](benchmarks-reshard.md).\n\n"
            + summary_table(rounds)
        )
        tsv.write_section(args.summary_output, "reshard", body)


if __name__ == "__main__":
    main()
