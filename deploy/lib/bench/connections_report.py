#!/usr/bin/env python3
"""Renders deploy/bench-connections.sh's results as docs/benchmarks-connections.md.

Input (written by deploy/bench-connections.sh into its state folder):
  --meta     key<TAB>value lines: machine, versions, settings, the command line
  --results  one line per measured run: connections round target status wall_s backend_conns conns_peak
             conns_before proxy_rss_peak_kib proxy_fds_peak mariadbd_rss_peak_kib loadgen_rss_peak_kib
             proxy_log_lines other_cpu_pct ("-" where a value does not apply or is missing)
  --runs     the runs folder: cN-ROUND-TARGET.json (loadgen --json), .err (loadgen's stderr), .proxy-log (what
             shardgate logged during the run other than INFO)
Output: --output (markdown, overwritten).

Standard library only: the benchmark must not depend on what pip has installed.
"""

import json
import os
import statistics
from collections import Counter, defaultdict

from tsv import error_text, fmt, latency, log_lines_text, number, read_lines, read_meta, read_rows, report_parser

TARGETS = ["direct", "shardgate"]
FIELDS = ["connections", "round", "target", "status", "wall_s", "backend_conns", "conns_peak", "conns_before",
          "rss_kib", "fds", "db_rss_kib", "loadgen_rss_kib", "proxy_log_lines", "other_cpu"]
NUMERIC_FROM = FIELDS.index("wall_s")


def last_error_line(path):
    """loadgen's last non-empty stderr line (anyhow prints the cause chain last), or a placeholder."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def read_results(path, runs_dir):
    runs = read_rows(path, FIELDS, "connections_report.py")
    for run in runs:
        run["connections"] = int(run["connections"])
        run["round"] = int(run["round"])
        for key in FIELDS[NUMERIC_FROM:]:
            run[key] = number(run[key])
        base = os.path.join(runs_dir, f"c{run['connections']}-{run['round']}-{run['target']}")
        run["loadgen"] = None
        try:
            with open(base + ".json", encoding="utf-8") as j:
                run["loadgen"] = json.load(j)["targets"][0]
        except (OSError, ValueError, KeyError, IndexError):
            pass
        run["error"] = None if run["status"] == "ok" else last_error_line(base + ".err")
        if run["status"] == "ok" and run["loadgen"] is None:
            run["status"], run["error"] = "no-report", "loadgen exited 0 without a JSON report"
        run["proxy_log"] = read_lines(base + ".proxy-log")
    return runs


def stat(run, key):
    """A loadgen figure of a successful run: qps, p50/p99 in ms, errors, timeouts."""
    lg = run["loadgen"]
    if lg is None:
        return None
    if key in ("p50_ms", "p99_ms"):
        return lg[key.replace("_ms", "_us")] / 1000
    return lg[key]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs):
    """Per (connections, target): medians over the rounds that produced a report, the ratio of qps to direct's in
    the same round, errors by code and timeouts added up over rounds, and the failures."""
    by_key = defaultdict(list)
    for r in runs:
        by_key[(r["connections"], r["target"])].append(r)
    direct_qps = {(r["connections"], r["round"]): stat(r, "qps") for r in runs if r["target"] == "direct"}
    summary = {}
    for key, rs in by_key.items():
        ok = [r for r in rs if r["loadgen"] is not None]
        ratios = []
        for r in ok:
            d = direct_qps.get((r["connections"], r["round"]))
            if r["target"] != "direct" and d:
                ratios.append(stat(r, "qps") / d)
        errors = Counter()
        for r in ok:
            errors.update({int(code): n for code, n in r["loadgen"]["errors_by_code"].items()})
        summary[key] = {
            "rounds": len(rs),
            "ok": len(ok),
            "failed": [r for r in rs if r["loadgen"] is None],
            "qps": median([stat(r, "qps") for r in ok]),
            "p50_ms": median([stat(r, "p50_ms") for r in ok]),
            "p99_ms": median([stat(r, "p99_ms") for r in ok]),
            "backend": median([r["backend_conns"] for r in rs]),
            "rss_mib": median([r["rss_kib"] / 1024 if r["rss_kib"] is not None else None for r in rs]),
            "ratio": median(ratios),
            "errors": errors,
            "timeouts": sum(stat(r, "timeouts") for r in ok),
        }
    return summary


def results_table(summary, counts, rounds):
    lines = [
        f"Medians over {rounds} rounds; errors added up over them." if rounds > 1 else "One round.",
        "",
        "| connections | target | qps | p50 ms | p99 ms | backend conns peak | proxy RSS MiB | qps vs direct "
        "| errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for count in counts:
        for target in TARGETS:
            s = summary.get((count, target))
            if s is None:
                continue
            if s["ok"] == 0:
                why = "; ".join(sorted({r["error"] for r in s["failed"]}))
                lines.append(f"| {count:,} | {target} | could not run: {why} | | | {fmt(s['backend'])} "
                             f"| {fmt(s['rss_mib'], 1)} | | |")
                continue
            note = f" ({s['ok']} of {s['rounds']} rounds ran)" if s["failed"] else ""
            ratio = f"{s['ratio']:.2f}" if s["ratio"] is not None else ("1" if target == "direct" else "-")
            lines.append(
                f"| {count:,} | {target} | {fmt(s['qps'])}{note} | {latency(s['p50_ms'])} | {latency(s['p99_ms'])} "
                f"| {fmt(s['backend'])} | {fmt(s['rss_mib'], 1)} | {ratio} | {error_text(s['errors'], s['timeouts'])} |")
    return "\n".join(lines)


def raw_table(runs):
    lines = [
        "| connections | round | target | status | qps | p50 ms | p99 ms | max ms | errors | backend conns peak "
        "| server conns before | proxy RSS MiB | proxy fds peak | mariadbd RSS MiB | loadgen RSS MiB "
        "| wall s | proxy log lines | other CPU % |",
        "|---:|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    mib = lambda kib: fmt(kib / 1024, 1) if kib is not None else "-"  # noqa: E731
    for r in runs:
        lg = r["loadgen"]
        errors = error_text(Counter({int(c): n for c, n in lg["errors_by_code"].items()}), lg["timeouts"]) \
            if lg else "-"
        lines.append(
            f"| {r['connections']:,} | {r['round']} | {r['target']} | {r['status']} | {fmt(stat(r, 'qps'))} "
            f"| {latency(stat(r, 'p50_ms'))} | {latency(stat(r, 'p99_ms'))} "
            f"| {latency(lg['max_us'] / 1000 if lg else None)} | {errors} | {fmt(r['backend_conns'])} "
            f"| {fmt(r['conns_before'])} | {mib(r['rss_kib'])} | {fmt(r['fds'])} | {mib(r['db_rss_kib'])} "
            f"| {mib(r['loadgen_rss_kib'])} | {fmt(r['wall_s'], 1)} | {fmt(r['proxy_log_lines'])} "
            f"| {fmt(r['other_cpu'])} |")
    return "\n".join(lines)


def proxy_log_text(runs):
    """What shardgate logged besides INFO, per run that logged anything: the count and the most frequent lines
    (timestamps and connection ids left out so that repeats group)."""
    out = []
    for r in runs:
        if r["proxy_log"]:
            out += log_lines_text(f"{r['connections']:,} connections, round {r['round']}", r["proxy_log"])
    return "\n".join(out) if out else "None: shardgate logged nothing above INFO during the measured runs."


def render(meta, runs):
    counts = sorted({r["connections"] for r in runs})
    rounds = int(meta.get("rounds", "1"))
    summary = summarise(runs)
    elapsed = int(meta.get("elapsed_seconds", "0"))
    pool = int(meta.get("pool_max_size", "0"))
    shards = int(meta.get("shards", "0"))
    direct_failed = [c for c in counts if summary.get((c, "direct"), {}).get("ok", 1) == 0]
    out = [
        "# Benchmarks: client connections",
        "",
        f"Written by `deploy/bench-connections.sh` on {meta.get('date', '?')}; every run of it overwrites this file.",
        "",
        f"Command (it ran for {elapsed // 60} min {elapsed % 60} s after the build):",
        "",
        "```sh",
        meta.get("command", "deploy/bench-connections.sh"),
        "```",
        "",
        "Point selects (`SELECT v, note FROM loadgen_items WHERE tenant_id = ? AND id = ?`, text protocol, "
        f"{meta.get('tenants', '?')} tenants drawn uniformly) from {counts[0]:,} to {counts[-1]:,} client "
        "connections in a closed loop "
        "(each connection sends its next statement when the last is answered), through shardgate over "
        f"{shards} shards and directly against the same mariadbd, in the same run, targets alternating. loadgen "
        "opens every connection before it measures, so they are all held at once. shardgate's pool has "
        f"`max_size: {pool}` per shard: the server sees at most {shards} x {pool} = {shards * pool} connections "
        "from it, however many clients it serves.",
        "",
        "## Results",
        "",
        results_table(summary, counts, rounds),
        "",
        "- *qps*: successful statements per second; *p50*, *p99*: their latency as loadgen saw it, sending to "
        "answer; in a closed loop, latency grows with the connections once the server is saturated "
        "(connections = qps x mean latency).",
        "- *backend conns peak*: the peak of the server's own `Threads_connected`, sampled every "
        f"{meta.get('sample_ms', '?')} ms during the run by one client kept open for it, minus that client; for "
        "direct also minus what was connected before the run (shardgate's idle pooled connections). For shardgate "
        "it counts every pooled connection open during the run, also those opened by earlier runs.",
        "- *proxy RSS*: the peak of shardgate's sampled VmRSS during the run (its VmHWM at the end of the whole "
        f"benchmark: {fmt(number(meta.get('proxy_hwm_kib', '-')) / 1024 if number(meta.get('proxy_hwm_kib', '-')) else None, 1)} MiB).",
        "- *qps vs direct*: shardgate's qps divided by direct's in the same round"
        + (" (median over rounds)." if rounds > 1 else "."),
        "- With one connection, qps is bound by round trips: each statement wakes the next process in turn "
        "(loadgen, shardgate, mariadbd), so it moves with how idle the machine's cores are (a busy core answers a "
        "wake-up faster than an idle one); compare it within a round (*qps vs direct*) rather than across runs.",
        "- *errors*: failed statements by MySQL error code (ERR 1040: no backend connection free within "
        "`pool.acquire_timeout_ms`), and statements still unanswered 2 s after the end of the run.",
    ]
    if direct_failed:
        out.append(f"- Direct at {', '.join(f'{c:,}' for c in direct_failed)} connections could not run: see the "
                   "row for what loadgen said.")
    out += [
        "",
        "## Every run",
        "",
        "*wall s*: from loadgen's start to its exit, opening and closing every connection included. *proxy fds "
        "peak*: shardgate's open file descriptors (clients, backends, its own files). *proxy log lines*: lines "
        "shardgate logged above INFO during the run. *other CPU %*: the share of the machine's CPU time (all "
        "cores) that processes other than mariadbd, shardgate, loadgen and the sampling used during the run "
        "(interrupt time, where loopback packets are processed, left out); "
        "above a few percent, something else competed with the benchmark and its figures are low.",
        "",
        raw_table(runs),
        "",
        "## What shardgate logged",
        "",
        proxy_log_text(runs),
        "",
        "## Machine and settings",
        "",
        f"- Machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu_model', '?')}), {meta.get('ram', '?')} RAM, "
        f"Linux {meta.get('kernel', '?')}; mariadbd, shardgate and loadgen share it, so their CPU time competes.",
        f"- {meta.get('mariadbd', '?')}, flags: `{meta.get('mariadbd_flags', '?')}` "
        f"({meta.get('server_limits', '?')}; Max_used_connections at the end: {meta.get('max_used_connections', '?')}).",
        f"- shardgate {meta.get('shardgate', '?')}: {shards} shards on that one server, `pool.max_size: {pool}`, "
        f"{meta.get('workers', '?')} workers, extra configuration: "
        + (f"`{meta['proxy_extra_config']}`." if meta.get("proxy_extra_config") else "none."),
        f"- loadgen, per run: `{meta.get('loadgen_command', '?')}`; URLs carry `prefer_socket=false` so that direct "
        "connections stay on TCP as the proxy's do.",
        f"- Open-files limit (`ulimit -n`) of mariadbd's, shardgate's and loadgen's shell: {meta.get('fd_limit', '?')}.",
        f"- {meta.get('rounds', '?')} round(s) of {meta.get('seconds', '?')} s per connection count and target, "
        "after one unrecorded 2-second warm-up per target at 100 connections.",
        "",
    ]
    return "\n".join(out)


def main():
    args = report_parser(__doc__).parse_args()
    meta = read_meta(args.meta)
    runs = read_results(args.results, args.runs)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render(meta, runs))


if __name__ == "__main__":
    main()
