#!/usr/bin/env python3
"""Renders deploy/bench.sh's results as docs/benchmarks.md and a hand-drawn SVG bar chart.

Input (written by deploy/bench.sh into its state folder):
  --meta          key<TAB>value lines: machine, versions, settings, the command lines
  --results       one line per measured run: workload threads round target status qps tps queries avg_ms p95_ms
                  errors reconnects proxy_cpu_us_per_stmt proxy_rss_kib mariadbd_cpu_us_per_stmt
                  server_stmts_per_stmt host_busy_pct server_conns ("-" where a value does not apply or is missing)
  --failures-dir  WORKLOAD.txt: what sysbench and shardgate said when a run through shardgate failed
Output: --output (markdown, overwritten) and one chart per workload, SVG-PREFIX-WORKLOAD.svg (--svg-prefix),
linked from the markdown by file name.

Standard library only: the benchmark must not depend on what pip has installed.
"""

import argparse
import os
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

import tsv
from tsv import number

TARGETS = ["direct", "haproxy", "shardgate"]
PROXIES = {"haproxy", "shardgate"}
COLOURS = {"direct": "#4e79a7", "haproxy": "#f28e2b", "shardgate": "#59a14f"}
FIELDS = ["workload", "threads", "round", "target", "status", "qps", "tps", "queries", "avg_ms", "p95_ms",
          "errors", "reconnects", "cpu_us", "rss_kib", "db_cpu_us", "server_stmts", "host_busy", "server_conns"]
NUMERIC_FROM = FIELDS.index("qps")
# Workloads in bench.sh's order: title, whether an event is a transaction.
WORKLOADS = {
    "point-select": ("Point select, text protocol", False),
    "point-select-ps": ("Point select, prepared statements", False),
    "read-only": ("oltp_read_only: transactions with point and range selects", True),
    "read-only-no-ranges": ("oltp_read_only --range_selects=off: transactions of point selects", True),
}


def read_meta(path):
    meta = tsv.read_meta(path)
    open_now, _, most = meta.get("server_connections", "?").partition("\t")
    meta["server_connections_open"], meta["server_connections_max"] = open_now, most or "?"
    return meta


def read_results(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != len(FIELDS):
                sys.exit(f"report.py: malformed results line: {line!r}")
            run = dict(zip(FIELDS, cols))
            run["threads"] = int(run["threads"])
            run["round"] = int(run["round"])
            for key in FIELDS[NUMERIC_FROM:]:
                run[key] = number(run[key])
            runs.append(run)
    return runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs):
    """Per (workload, threads, target): medians over the successful rounds, and the ratio to direct in the same
    round."""
    by_key = defaultdict(list)
    for run in runs:
        by_key[(run["workload"], run["threads"], run["target"])].append(run)
    direct_qps = {(r["workload"], r["threads"], r["round"]): r["qps"] for r in runs
                  if r["target"] == "direct" and r["status"] == "ok"}
    summary = {}
    for (workload, threads, target), group in by_key.items():
        ok = [r for r in group if r["status"] == "ok" and r["qps"] is not None]
        qps = [r["qps"] for r in ok]
        ratios = [r["qps"] / direct_qps[(workload, threads, r["round"])] for r in ok
                  if direct_qps.get((workload, threads, r["round"]))]
        rss = [r["rss_kib"] for r in ok if r["rss_kib"] is not None]
        summary[(workload, threads, target)] = {
            "runs": len(group),
            "failed": len(group) - len(ok),
            "qps": median(qps),
            "qps_min": min(qps) if qps else None,
            "qps_max": max(qps) if qps else None,
            "tps": median([r["tps"] for r in ok]),
            "ratio": median(ratios),
            "ratio_min": min(ratios) if ratios else None,
            "ratio_max": max(ratios) if ratios else None,
            "avg_ms": median([r["avg_ms"] for r in ok]),
            "p95_ms": median([r["p95_ms"] for r in ok]),
            "cpu_us": median([r["cpu_us"] for r in ok]),
            "rss_mib": max(rss) / 1024 if rss else None,
            "db_cpu_us": median([r["db_cpu_us"] for r in ok]),
            "server_stmts": median([r["server_stmts"] for r in ok]),
            "host_busy": median([r["host_busy"] for r in ok]),
            "server_conns": max([r["server_conns"] for r in ok if r["server_conns"] is not None] or [None]),
            "errors": sum(r["errors"] or 0 for r in ok),
        }
    return summary


def fmt(value, digits=0, unit=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def thread_counts(runs, workload):
    return sorted({r["threads"] for r in runs if r["workload"] == workload})


def workloads_present(runs):
    present = {r["workload"] for r in runs}
    return [w for w in WORKLOADS if w in present]


def targets_present(runs, workload):
    present = {r["target"] for r in runs if r["workload"] == workload}
    return [t for t in TARGETS if t in present]


def plural(n, word):
    return f"{n} {word}{'s' if n != 1 else ''}"


def run_notes(s, rounds):
    """"2 of 3 runs failed, 1 skipped" style note on a target's runs at one thread count, or ""."""
    notes = []
    if s["failed"]:
        notes.append(f"{s['failed']} of {s['runs']} runs failed")
    if rounds and s["runs"] < rounds:
        notes.append(f"{rounds - s['runs']} skipped")
    return ", ".join(notes)


def results_table(summary, workload, threads, targets, rounds):
    transactional = WORKLOADS[workload][1]
    latency = "avg latency per transaction ms median" if transactional else "avg latency ms median"
    tps_head = " tps median |" if transactional else ""
    tps_align = "---:|" if transactional else ""
    lines = [
        f"| target | qps median (min–max) |{tps_head} ratio to direct median (min–max) | {latency} "
        "| p95 ms median | proxy CPU µs/stmt median | proxy RSS MiB | mariadbd CPU µs/stmt median "
        "| server stmts per stmt | host CPU busy % | backend conns | errors |",
        f"|---|---:|{tps_align}---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in targets:
        s = summary.get((workload, threads, target))
        if s is None:
            continue
        qps = f"{fmt(s['qps'])} ({fmt(s['qps_min'])}–{fmt(s['qps_max'])})" if s["qps"] is not None else "—"
        if target == "direct":
            ratio = "1.00" if s["qps"] is not None else "—"
        elif s["ratio"] is None:
            ratio = "—"
        else:
            ratio = f"{fmt(s['ratio'], 2)} ({fmt(s['ratio_min'], 2)}–{fmt(s['ratio_max'], 2)})"
        note = run_notes(s, rounds)
        if s["runs"] == s["failed"]:
            errors = note
        else:
            errors = fmt(s["errors"]) + (f", {note}" if note else "")
        proxy = target in PROXIES
        tps = f" {fmt(s['tps'], 1)} |" if transactional else ""
        lines.append(
            f"| {target} | {qps} |{tps} {ratio} | {fmt(s['avg_ms'], 3)} | {fmt(s['p95_ms'], 2)} "
            f"| {fmt(s['cpu_us'], 1) if proxy else '—'} | {fmt(s['rss_mib'], 1) if proxy else '—'} "
            f"| {fmt(s['db_cpu_us'], 1)} | {fmt(s['server_stmts'], 2)} | {fmt(s['host_busy'])} "
            f"| {fmt(s['server_conns']) if target == 'shardgate' else '—'} | {errors} |"
        )
    return lines


def added_latency(summary, workload, threads, targets):
    direct = summary.get((workload, threads, "direct"), {}).get("avg_ms")
    parts = []
    for target in targets:
        proxy = summary.get((workload, threads, target), {}).get("avg_ms")
        if target in PROXIES and proxy is not None and direct is not None:
            parts.append(f"{target} **{(proxy - direct) * 1000:+,.0f} µs**")
    if not parts:
        return []
    event = "transaction" if WORKLOADS[workload][1] else "statement"
    return [
        f"Added latency per {event} at {plural(threads, 'thread')} (median avg latency through the proxy "
        f"minus direct's, {direct * 1000:,.0f} µs): " + ", ".join(parts) + ".",
        "",
    ]


def headline_table(summary, runs, rounds):
    lines = [
        "| workload | threads | direct qps median | haproxy ratio median (min–max) "
        "| shardgate ratio median (min–max) | haproxy CPU µs/stmt | shardgate CPU µs/stmt "
        "| shardgate server stmts per stmt | shardgate runs failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for workload in workloads_present(runs):
        for threads in thread_counts(runs, workload):
            row = [f"`{workload}`", str(threads), fmt(summary.get((workload, threads, "direct"), {}).get("qps"))]
            cpu = []
            for target in ("haproxy", "shardgate"):
                s = summary.get((workload, threads, target))
                if s is None or s["ratio"] is None:
                    row.append("—")
                else:
                    row.append(f"**{fmt(s['ratio'], 2)}** ({fmt(s['ratio_min'], 2)}–{fmt(s['ratio_max'], 2)})")
                cpu.append(fmt(s["cpu_us"], 1) if s else "—")
            row += cpu
            sg = summary.get((workload, threads, "shardgate"))
            row.append(fmt(sg["server_stmts"], 2) if sg else "—")
            row.append((run_notes(sg, rounds) or "0") if sg else "no runs")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def raw_table(runs):
    lines = [
        "| workload | threads | round | order | target | status | qps | tps | avg ms | p95 ms | errors "
        "| proxy CPU µs/stmt | proxy RSS MiB | mariadbd CPU µs/stmt | server stmts per stmt | host busy % |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = defaultdict(int)
    for run in runs:
        key = (run["workload"], run["threads"], run["round"])
        order[key] += 1
        rss = run["rss_kib"] / 1024 if run["rss_kib"] is not None else None
        lines.append(
            f"| {run['workload']} | {run['threads']} | {run['round']} | {order[key]} | {run['target']} "
            f"| {run['status']} | {fmt(run['qps'])} | {fmt(run['tps'], 1)} | {fmt(run['avg_ms'], 3)} "
            f"| {fmt(run['p95_ms'], 2)} | {fmt(run['errors'])} | {fmt(run['cpu_us'], 1)} | {fmt(rss, 1)} "
            f"| {fmt(run['db_cpu_us'], 1)} | {fmt(run['server_stmts'], 2)} | {fmt(run['host_busy'])} |"
        )
    return lines


def nice_ceiling(value):
    """The smallest 1/2/2.5/5 × 10^k at or above value (the chart's top)."""
    if value <= 0:
        return 1.0
    scale = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def render_svg(summary, runs, meta, workload):
    """Grouped bars: median qps per target for each thread count of one workload, with min–max whiskers."""
    threads_list = thread_counts(runs, workload)
    targets = targets_present(runs, workload)
    width, height = 760, 400
    left, right, top, bottom = 80, 20, 50, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([s["qps_max"] for k, s in summary.items() if k[0] == workload and s["qps_max"] is not None]
               or [1])
    y_max = nice_ceiling(peak * 1.05)

    def y(value):
        return top + plot_h * (1 - value / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        f"sysbench {escape(workload)}: queries/s (median of {escape(meta.get('rounds', '?'))} round(s), "
        f"whiskers min–max)</text>",
    ]
    for i in range(6):
        value = y_max * i / 5
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    out.append(f'<text x="18" y="{top + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {top + plot_h / 2})">queries per second</text>')
    group_w = plot_w / max(len(threads_list), 1)
    bar_w = group_w * 0.8 / max(len(targets), 1)
    for g, threads in enumerate(threads_list):
        gx = left + g * group_w + group_w * 0.1
        for b, target in enumerate(targets):
            s = summary.get((workload, threads, target))
            x = gx + b * bar_w
            cx = x + bar_w * 0.45
            if s and s["qps"] is None:
                out.append(f'<text x="{cx:.1f}" y="{top + plot_h - 5}" text-anchor="middle" font-size="11" '
                           f'fill="#c00">failed</text>')
            if not s or s["qps"] is None:
                continue
            out.append(f'<rect x="{x:.1f}" y="{y(s["qps"]):.1f}" width="{bar_w * 0.9:.1f}" '
                       f'height="{top + plot_h - y(s["qps"]):.1f}" fill="{COLOURS[target]}"/>')
            out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(s["qps_min"]):.1f}" '
                       f'y2="{y(s["qps_max"]):.1f}" stroke="black"/>')
            for edge in (s["qps_min"], s["qps_max"]):
                out.append(f'<line x1="{cx - 4:.1f}" x2="{cx + 4:.1f}" y1="{y(edge):.1f}" y2="{y(edge):.1f}" '
                           f'stroke="black"/>')
            out.append(f'<text x="{cx:.1f}" y="{y(s["qps_max"]) - 5:.1f}" text-anchor="middle" '
                       f'font-size="11">{s["qps"]:,.0f}</text>')
        out.append(f'<text x="{gx + group_w * 0.4:.1f}" y="{top + plot_h + 20}" text-anchor="middle">'
                   f'{threads} thread{"s" if threads != 1 else ""}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')
    lx = left
    for target in targets:
        out.append(f'<rect x="{lx}" y="{height - 28}" width="14" height="14" fill="{COLOURS[target]}"/>')
        out.append(f'<text x="{lx + 20}" y="{height - 16}">{target}</text>')
        lx += 120
    out.append("</svg>")
    return "\n".join(out) + "\n"


def svg_file(prefix, workload):
    return f"{prefix}-{workload}.svg"


def workload_text(workload, meta, summary, runs):
    """What one event of the workload is, and what shardgate does with it (with the measured fan-out)."""
    shards = meta.get("shards", "?")
    threads_list = thread_counts(runs, workload)
    stmts = [summary[(workload, t, "shardgate")]["server_stmts"] for t in threads_list
             if (workload, t, "shardgate") in summary and summary[(workload, t, "shardgate")]["server_stmts"]]
    measured = f"{min(stmts):.2f}–{max(stmts):.2f}" if stmts else "—"
    if workload == "point-select":
        return [
            "One event is one `SELECT c FROM sbtest1 WHERE id=N`, sent as text (`COM_QUERY`, "
            "`--db-ps-mode=disable`). shardgate parses it, hashes `id` and sends it to the one shard that holds "
            "the row.",
        ]
    if workload == "point-select-ps":
        return [
            "The same statement as a server-side prepared statement, sysbench's default (`--db-ps-mode=auto`): "
            "each connection prepares `SELECT c FROM sbtest1 WHERE id=?` once (`COM_STMT_PREPARE`), then every "
            "event is one `COM_STMT_EXECUTE` with the id bound. shardgate analyses the statement once at "
            "prepare, routes each execute by the bound `id`, and prepares the statement on a backend connection "
            "the first time that connection runs it.",
        ]
    if workload == "read-only":
        per_tx = 10 + 6 * int(shards) if shards.isdigit() else "?"
        per_stmt = f"{per_tx / 16:.1f}" if shards.isdigit() else "?"
        # Expected number of distinct shards 100 hashed ids land on.
        spread = f"{int(shards) * (1 - (1 - 1 / int(shards)) ** 100):.0f}" if shards.isdigit() else "?"
        return [
            "sysbench's defaults: one event is one transaction of 16 prepared statements — `BEGIN`, 10 point "
            "selects, 4 range selects over 100 consecutive ids (`SELECT c … WHERE id BETWEEN ? AND ?`, "
            "`SELECT SUM(k) … BETWEEN`, `… BETWEEN … ORDER BY c`, `SELECT DISTINCT c … BETWEEN … ORDER BY c`), "
            "`COMMIT`.",
            "",
            f"sbtest1 is sharded by a hash of `id`, so the 100 ids of a range are spread over about {spread} of "
            f"the {shards} shards, and which ones cannot be told from the range: shardgate runs each range "
            f"select on every one of the {shards} shards (`scatter_fanout` 32 at a time) and merges the replies "
            "(sorting, `SUM`, "
            "`DISTINCT`). Inside a transaction each shard a statement touches joins the transaction: shardgate "
            "sends it `BEGIN`, keeps one of its connections until the end, and sends it `COMMIT` (ADR 11). So a "
            f"transaction that is 16 statements for MariaDB directly is 10 + 4 × {shards} + {shards} `BEGIN` + "
            f"{shards} `COMMIT` = {per_tx} statements through shardgate ({per_stmt} per client statement; "
            f"measured *server stmts per stmt*: {measured}), and it holds a backend connection on every shard "
            "until it commits. The far lower throughput through shardgate below is that fan-out, not the "
            "proxy's per-statement overhead; the variant without range selects measures the rest on its own.",
        ]
    if workload == "read-only-no-ranges":
        return [
            "`--range_selects=off`: one event is one transaction of 12 prepared statements — `BEGIN`, 10 point "
            "selects, `COMMIT`. Every statement goes to one shard; the transaction joins each distinct shard its "
            "10 ids fall on (about 10 of " + shards + "), and shardgate sends `BEGIN` and `COMMIT` to each of "
            "them, so MariaDB runs about 10 + 2 × 10 statements where direct runs 12 (measured *server stmts "
            f"per stmt*: {measured}). This is the transaction and point-select path without scatter.",
        ]
    return []


def pool_explanation(workload, meta, runs):
    """Why "no backend connection free for shard" appears when transactions run through shardgate."""
    shards, pool, workers = meta.get("shards", "?"), meta.get("pool_max_size", "?"), meta.get("workers", "?")
    if workload == "read-only":
        touched = (f"each transaction's range selects touch all {shards} shards, after its point selects have "
                   "already taken connections on a few shards in random order")
    else:
        touched = ("each transaction's 10 point selects take connections on about 10 shards, one after "
                   "another, in random order")
    busy = [r["host_busy"] for r in runs if r["workload"] == workload and r["target"] == "shardgate"
            and r["status"] != "ok" and r["host_busy"] is not None]
    stall = ""
    if busy:
        stall = (f" During the failed run the host CPU was {', '.join(f'{b:.0f} %' for b in busy)} busy "
                 "(compare the successful runs): the sessions were waiting, not working.")
    return [
        f"The pool limit is per shard: `max_size` {pool}, split between {workers} workers. A transaction keeps "
        f"a connection on every shard it has touched until it commits (ADR 11), and here {touched}. With more "
        "concurrent transactions than connections per shard, sessions can hold some shards while waiting for "
        "others that other sessions hold, until `acquire_timeout_ms` (5 s) fails the statement (that is our "
        "reading of the error: the message does not say who holds the connections)." + stall,
        "",
    ]


def disturbed_rounds(runs, workload, threads):
    """A note on 1-thread runs during which the host was far busier than this benchmark alone makes it."""
    if threads != 1:
        return []
    # Scatter runs (many server statements per client statement) keep several shards busy at once: not counted.
    busy = [r for r in runs if r["workload"] == workload and r["threads"] == 1 and r["host_busy"] is not None
            and r["host_busy"] > 75 and (r["server_stmts"] or 0) < 10]
    if not busy:
        return []
    listed = ", ".join(f"round {r['round']} {r['target']} {r['host_busy']:.0f} %" for r in busy)
    return [
        "At 1 thread this benchmark alone keeps the host CPU about 35–60 % busy (scatter excepted); these runs "
        "saw far more, "
        f"so other work shared the machine during them and their figures (and ratios) are disturbed: {listed}.",
        "",
    ]


def render_markdown(meta, runs, summary, failures, prefix_name):
    shards = meta.get("shards", "?")
    rounds = int(meta["rounds"]) if meta.get("rounds", "").isdigit() else 0
    workers = meta.get("workers", "?")
    pool = meta.get("pool_max_size", "?")
    elapsed = meta.get("elapsed_seconds", "")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `deploy/bench.sh` on {meta.get('date', '?')}; every run of it overwrites this file and its "
        f"charts `{prefix_name}-WORKLOAD.svg`.",
        "",
        "Command" + (f" (it ran for {int(elapsed) // 60} min {int(elapsed) % 60} s after the build)"
                     if elapsed.isdigit() else "") + ":",
        "",
        "```sh",
        meta.get("command", "deploy/bench.sh"),
        "```",
        "",
        f"sysbench against one MariaDB directly, through HAProxy and through shardgate ({shards} shards), in the "
        "same run, rounds alternating, for four workloads: point select as text and as prepared statements, "
        "`oltp_read_only` with its default range selects (which shardgate must scatter to every shard), and "
        "`oltp_read_only --range_selects=off`.",
        "",
        "## Summary",
        "",
        "*ratio* = the target's queries per second divided by direct's in the same round (median over rounds, "
        "min–max in brackets); *CPU µs/stmt* = the proxy process's CPU time per client statement (median).",
        "",
    ]
    lines += headline_table(summary, runs, rounds)
    lines += [
        "",
        "## Setup",
        "",
        "### Machine and versions",
        "",
        f"- CPU: {meta.get('nproc', '?')} × {meta.get('cpu_model', '?')}; RAM {meta.get('ram', '?')}; "
        f"Linux {meta.get('kernel', '?')}",
        f"- {meta.get('mariadbd', '?')}",
        f"- {meta.get('sysbench', '?')}",
        f"- {meta.get('haproxy', '?')}",
        f"- shardgate {meta.get('shardgate', '?')}",
        "",
        "### Servers and data",
        "",
        f"One `mariadbd` (fresh datadir; `--no-defaults {meta.get('mariadbd_flags', '')}`) holds both the "
        f"unsharded reference database `sbtest` and the {shards} shard databases `bench_000`.. of a "
        f"{shards}-shard topology (`shardctl topology generate --shards {shards}`, `sbtest1` sharded by `id`), "
        "so direct and proxied runs hit the same server and the same buffer pool. shardgate runs with "
        f"{workers} workers and pool `max_size` {pool} per shard (split between the workers); `scatter_fanout` "
        "is its default, 32.",
        "",
        f"The data ({meta.get('table_size', '?')} rows) was prepared through shardgate, in "
        f"{meta.get('prepare_seconds', '?')} s:",
        "",
        "```sh",
        meta.get("prepare_command", ""),
        "```",
        "",
        "shardgate fanned the `CREATE TABLE` and `CREATE INDEX` out to every shard and split each multi-row "
        "`INSERT` by shard. `--auto_inc=off` is needed for that: with sysbench's default (`--auto_inc=on`) "
        "`id` is `AUTO_INCREMENT` and the `INSERT`s leave it out, so the proxy has no `id` to route a row by "
        "(and each shard would number its rows from 1 on its own); with `off`, `id` is a plain `INTEGER` and "
        "sysbench writes 1..N itself. The reference `sbtest.sbtest1` was then copied from the shards on the "
        "server (`CREATE TABLE … LIKE`, `INSERT … SELECT`; sysbench's prepare data is random even with "
        "`--rand-seed`, so a second prepare would not match). Checked before measuring: the shards hold ids "
        f"1..{meta.get('table_size', 'N')} once each ({meta.get('shard_rows', '?')} rows per shard), and every "
        "id is found by a point select through shardgate, i.e. on the shard it routes to.",
        "",
        "| target | address | DB | user | what |",
        "|---|---|---|---|---|",
        "| direct | 127.0.0.1, mariadbd | `sbtest` | root | the server itself |",
        "| haproxy | 127.0.0.1, haproxy | `sbtest` | root | TCP mode, `nbthread 1`: the cost of any extra hop |",
        f"| shardgate | 127.0.0.1, shardgate | `bench` | app | parses, routes to 1 of {shards} shards (or "
        "scatters to all), pools backend connections |",
        "",
        f"Ports: {meta.get('ports', '?')}. Per workload, each target first gets an unrecorded "
        f"{meta.get('warmup_seconds', '?')} s warm-up at the largest thread count; then per thread count "
        f"{plural(rounds, 'round')} of {meta.get('seconds', '?')} s per target; within a round the targets run "
        "one after another and the first target rotates from round to round. A target that fails a run at a "
        "thread count sits out that thread count's later rounds (*skipped*). After the rounds mariadbd had "
        f"{meta['server_connections_open']} client connections open (shardgate's pooled backend connections) "
        f"and had seen at most {meta['server_connections_max']} at once.",
        "",
        "### How to read this",
        "",
        f"The machine has {meta.get('nproc', '?')} cores, shared by sysbench, the proxy and MariaDB (and, while "
        "this ran, possibly by other work such as builds and tests), so absolute numbers are noisy; compare "
        "targets within one run. *ratio to direct* is the median over rounds of the target's qps divided by "
        "direct's in the same round. At 1 thread the client waits for each reply, so the proxy adds its "
        "latency: see *added latency*. At 4 and more threads the cores are saturated, and every CPU "
        "microsecond the proxy spends on a statement is taken from sysbench and MariaDB: the throughput "
        "ratio then mostly measures the proxy's CPU per statement (*proxy CPU µs/stmt* = the proxy process's "
        "utime+stime over the run divided by the client statements it served, `BEGIN` and `COMMIT` included, "
        "at clock-tick resolution). haproxy is the floor for any proxy that relays bytes; the gap between "
        "haproxy and shardgate is what parsing, routing, pooling and fan-out cost. *qps* counts every "
        "statement sysbench sent; for the transaction workloads *tps* counts transactions and latency is per "
        "transaction. *proxy RSS* is the largest VmRSS read after a run at that thread count. Three more "
        "columns help explain a ratio: *mariadbd CPU µs/stmt* (the server's own CPU per client statement; it "
        "rises if a proxy makes it do more work), *server stmts per stmt* (the server's `Questions` counter "
        "over the run divided by the client's statements: 1.00 means the proxy adds no statements of its own; "
        "scatter and per-shard `BEGIN`/`COMMIT` raise it) and *host CPU busy %* (all cores, from /proc/stat, "
        "including work outside this benchmark; below ~95 % the run was not CPU-bound, so the ratio reflects "
        "latency rather than CPU). *backend conns* is the number of connections open on mariadbd after "
        "shardgate's runs at that thread count (its pools; the largest count seen): every one is a mariadbd "
        "thread.",
        "",
    ]
    for workload in workloads_present(runs):
        title, _ = WORKLOADS[workload]
        targets = targets_present(runs, workload)
        threads_list = thread_counts(runs, workload)
        svg = os.path.basename(svg_file(prefix_name, workload))
        lines += [f"## {title} (`{workload}`)", ""]
        lines += workload_text(workload, meta, summary, runs)
        lines += ["", "Each measured run (PORT, USER, PASSWORD and DB per target above):", "", "```sh",
                  meta.get(f"sysbench_command.{workload}", ""), "```", ""]
        failure = failures.get(workload, "").strip()
        if failure:
            lines += [
                "### Failed through shardgate",
                "",
                "sysbench stopped with an error through shardgate (shardgate kept running); what it and "
                "shardgate said:",
                "",
                "```text",
                failure,
                "```",
                "",
            ]
            if "no backend connection free" in failure:
                lines += pool_explanation(workload, meta, runs)
        lines += [f"![{workload}: queries per second per target and thread count]({svg})", ""]
        for threads in threads_list:
            lines += [f"### {workload}, {plural(threads, 'thread')}", ""]
            lines += results_table(summary, workload, threads, targets, rounds)
            lines.append("")
            if threads == threads_list[0]:
                lines += added_latency(summary, workload, threads, targets)
            lines += disturbed_rounds(runs, workload, threads)
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- {r['workload']}, {r['target']}, {plural(r['threads'], 'thread')}, round {r['round']}: "
                  f"{r['status']}" for r in failed]
        lines.append("")
    lines += ["<details><summary>Every run, in the order it ran</summary>", ""]
    lines += raw_table(runs)
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--failures-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--svg-prefix", required=True, help="charts go to SVG_PREFIX-WORKLOAD.svg")
    args = parser.parse_args()
    meta = read_meta(args.meta)
    runs = read_results(args.results)
    if not runs:
        sys.exit("report.py: no runs in " + args.results)
    failures = {}
    for workload in WORKLOADS:
        path = os.path.join(args.failures_dir, workload + ".txt")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                failures[workload] = f.read()
    summary = summarise(runs)
    for workload in workloads_present(runs):
        with open(svg_file(args.svg_prefix, workload), "w", encoding="utf-8") as f:
            f.write(render_svg(summary, runs, meta, workload))
    # The resharding summary deploy/bench-reshard.sh keeps in this file survives the rewrite.
    kept = tsv.read_section(args.output, "reshard")
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render_markdown(meta, runs, summary, failures, os.path.basename(args.svg_prefix)))
        if kept:
            f.write("\n" + kept + "\n")


if __name__ == "__main__":
    main()
