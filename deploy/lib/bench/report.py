#!/usr/bin/env python3
"""Renders deploy/bench.sh's results as docs/benchmarks.md and a hand-drawn SVG bar chart.

Input (written by deploy/bench.sh into its state folder):
  --meta     key<TAB>value lines: machine, versions, settings, the command line
  --results  one line per measured run: threads round target status qps queries avg_ms p95_ms errors
             reconnects proxy_cpu_us_per_stmt proxy_rss_kib mariadbd_cpu_us_per_stmt server_stmts_per_stmt
             host_busy_pct server_conns ("-" where a value does not apply or is missing)
  --refused  what sysbench printed when its session failed through shardgate (empty when it worked)
Output: --output (markdown, overwritten) and --svg (the chart, linked from the markdown by file name).

Standard library only: the benchmark must not depend on what pip has installed.
"""

import argparse
import os
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

TARGETS = ["direct", "haproxy", "shardgate"]
PROXIES = {"haproxy", "shardgate"}
COLOURS = {"direct": "#4e79a7", "haproxy": "#f28e2b", "shardgate": "#59a14f"}
FIELDS = ["threads", "round", "target", "status", "qps", "queries", "avg_ms", "p95_ms", "errors",
          "reconnects", "cpu_us", "rss_kib", "db_cpu_us", "server_stmts", "host_busy", "server_conns"]


def number(text):
    """A float, or None for "-" and anything else that is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
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
            for key in FIELDS[4:]:
                run[key] = number(run[key])
            runs.append(run)
    return runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs):
    """Per (threads, target): medians over the successful rounds, and the ratio to direct in the same round."""
    by_key = defaultdict(list)
    for run in runs:
        by_key[(run["threads"], run["target"])].append(run)
    direct_qps = {(r["threads"], r["round"]): r["qps"] for r in runs
                  if r["target"] == "direct" and r["status"] == "ok"}
    summary = {}
    for (threads, target), group in by_key.items():
        ok = [r for r in group if r["status"] == "ok" and r["qps"] is not None]
        qps = [r["qps"] for r in ok]
        ratios = [r["qps"] / direct_qps[(threads, r["round"])] for r in ok
                  if direct_qps.get((threads, r["round"]))]
        rss = [r["rss_kib"] for r in ok if r["rss_kib"] is not None]
        summary[(threads, target)] = {
            "runs": len(group),
            "failed": len(group) - len(ok),
            "qps": median(qps),
            "qps_min": min(qps) if qps else None,
            "qps_max": max(qps) if qps else None,
            "ratio": median(ratios),
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


def thread_counts(runs):
    return sorted({r["threads"] for r in runs})


def targets_present(runs):
    present = {r["target"] for r in runs}
    return [t for t in TARGETS if t in present]


def results_table(summary, threads, targets):
    lines = [
        "| target | qps median (min–max) | ratio to direct | avg latency ms median | p95 ms median "
        "| proxy CPU µs/stmt median | proxy RSS MiB | mariadbd CPU µs/stmt median | server stmts per stmt "
        "| host CPU busy % | backend conns | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in targets:
        s = summary.get((threads, target))
        if s is None:
            continue
        qps = f"{fmt(s['qps'])} ({fmt(s['qps_min'])}–{fmt(s['qps_max'])})" if s["qps"] is not None else "—"
        ratio = "1.00" if target == "direct" and s["qps"] is not None else fmt(s["ratio"], 2)
        errors = fmt(s["errors"])
        if s["failed"]:
            errors += f", {s['failed']} of {s['runs']} runs failed"
        proxy = target in PROXIES
        lines.append(
            f"| {target} | {qps} | {ratio} | {fmt(s['avg_ms'], 3)} | {fmt(s['p95_ms'], 2)} "
            f"| {fmt(s['cpu_us'], 1) if proxy else '—'} | {fmt(s['rss_mib'], 1) if proxy else '—'} "
            f"| {fmt(s['db_cpu_us'], 1)} | {fmt(s['server_stmts'], 2)} | {fmt(s['host_busy'])} "
            f"| {fmt(s['server_conns']) if target == 'shardgate' else '—'} | {errors} |"
        )
    return lines


def added_latency(summary, threads, targets):
    direct = summary.get((threads, "direct"), {}).get("avg_ms")
    parts = []
    for target in targets:
        proxy = summary.get((threads, target), {}).get("avg_ms")
        if target in PROXIES and proxy is not None and direct is not None:
            parts.append(f"{target} **{(proxy - direct) * 1000:+,.0f} µs**")
    if not parts:
        return []
    return [
        f"Added latency at {threads} thread{'s' if threads != 1 else ''} (median avg latency through the proxy "
        f"minus direct's, {direct * 1000:,.0f} µs): " + ", ".join(parts) + ".",
        "",
    ]


def raw_table(runs):
    lines = [
        "| threads | round | order | target | status | qps | avg ms | p95 ms | errors | proxy CPU µs/stmt "
        "| proxy RSS MiB | mariadbd CPU µs/stmt | server stmts per stmt | host busy % |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = defaultdict(int)
    for run in runs:
        key = (run["threads"], run["round"])
        order[key] += 1
        rss = run["rss_kib"] / 1024 if run["rss_kib"] is not None else None
        lines.append(
            f"| {run['threads']} | {run['round']} | {order[key]} | {run['target']} | {run['status']} "
            f"| {fmt(run['qps'])} | {fmt(run['avg_ms'], 3)} | {fmt(run['p95_ms'], 2)} | {fmt(run['errors'])} "
            f"| {fmt(run['cpu_us'], 1)} | {fmt(rss, 1)} | {fmt(run['db_cpu_us'], 1)} "
            f"| {fmt(run['server_stmts'], 2)} | {fmt(run['host_busy'])} |"
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


def render_svg(summary, runs, meta):
    """Grouped bars: median qps per target for each thread count, with min–max whiskers."""
    threads_list = thread_counts(runs)
    targets = targets_present(runs)
    width, height = 760, 400
    left, right, top, bottom = 80, 20, 50, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([s["qps_max"] for s in summary.values() if s["qps_max"] is not None] or [1])
    y_max = nice_ceiling(peak * 1.05)

    def y(value):
        return top + plot_h * (1 - value / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        f"sysbench oltp_point_select: queries/s (median of {escape(meta.get('rounds', '?'))} round(s), "
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
            s = summary.get((threads, target))
            if not s or s["qps"] is None:
                continue
            x = gx + b * bar_w
            cx = x + bar_w * 0.45
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


def render_markdown(meta, runs, summary, refused, svg_name):
    threads_list = thread_counts(runs)
    targets = targets_present(runs)
    shards = meta.get("shards", "?")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `deploy/bench.sh` on {meta.get('date', '?')}; every run of it overwrites this file and "
        f"[{svg_name}]({svg_name}).",
        "",
        "## Point select: direct vs haproxy vs shardgate",
        "",
        "Command:",
        "",
        "```sh",
        meta.get("command", "deploy/bench.sh"),
        "```",
        "",
        "Each measured run (PORT, USER, PASSWORD and DB per target below):",
        "",
        "```sh",
        meta.get("sysbench_command", ""),
        "```",
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
        "### Setup",
        "",
        f"One `mariadbd` (fresh datadir; `--no-defaults {meta.get('mariadbd_flags', '')}`) holds both the "
        f"unsharded reference database `sbtest` and the {shards} shard databases `bench_000`.. of a "
        f"{shards}-shard topology, so direct and proxied runs hit the same server and the same buffer pool. "
        f"`sysbench prepare` filled `sbtest.sbtest1` ({meta.get('table_size', '?')} rows) directly; the same "
        "table was created through shardgate (DDL fan-out) and every row copied with one `INSERT` through "
        f"shardgate, sharded by `id`; the shards hold {meta.get('shard_rows', '?')} rows each and together "
        "exactly the reference rows.",
        "",
        "| target | address | DB | user | what |",
        "|---|---|---|---|---|",
        "| direct | 127.0.0.1, mariadbd | `sbtest` | root | the server itself |",
        "| haproxy | 127.0.0.1, haproxy | `sbtest` | root | TCP mode, `nbthread 1`: the cost of any extra hop |",
        f"| shardgate | 127.0.0.1, shardgate | `bench` | app | parses, routes to 1 of {shards} shards, pool "
        f"`max_size` {meta.get('pool_max_size', '?')} per shard |",
        "",
        f"Ports: {meta.get('ports', '?')}. Per thread count, {meta.get('rounds', '?')} round(s) of "
        f"{meta.get('seconds', '?')} s per target; within a round the targets run one after another and the first "
        "target rotates from round to round. Before the rounds, each target gets an unrecorded "
        f"{meta.get('warmup_seconds', '?')} s warm-up at the largest thread count. After the rounds mariadbd "
        f"had {meta['server_connections_open']} client connections open (shardgate's pooled backend "
        f"connections) and had seen at most {meta['server_connections_max']} at once.",
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
        "utime+stime over the run divided by the statements it served, at clock-tick resolution). haproxy is "
        "the floor for any proxy that relays bytes; the gap between haproxy and shardgate is what parsing, "
        "routing and pooling cost. *avg latency* is sysbench's latency sum divided by its events; *proxy RSS* "
        "is the largest VmRSS read after a run at that thread count. Three more columns help explain a ratio: "
        "*mariadbd CPU µs/stmt* (the server's own CPU per client statement; it rises if a proxy makes it do "
        "more work), *server stmts per stmt* (the server's `Questions` counter over the run divided by the "
        "client's statements: 1.00 means the proxy adds no statements of its own) and *host CPU busy %* (all "
        "cores, from /proc/stat, including work outside this benchmark; below ~95 % the run was not "
        "CPU-bound, so the ratio reflects latency rather than CPU). *backend conns* is the number of "
        "connections open on mariadbd after shardgate's runs at that thread count (its pools; the largest "
        "count seen): every one is a mariadbd thread.",
        "",
    ]
    if refused.strip():
        lines += [
            "### Refused by shardgate",
            "",
            "sysbench's session failed through shardgate, so shardgate was left out of the rounds:",
            "",
            "```text",
            refused.rstrip(),
            "```",
            "",
        ]
    lines += [f"![queries per second per target and thread count]({svg_name})", ""]
    for threads in threads_list:
        lines += [f"### {threads} thread{'s' if threads != 1 else ''}", ""]
        lines += results_table(summary, threads, targets)
        lines.append("")
        if threads == threads_list[0]:
            lines += added_latency(summary, threads, targets)
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines += ["### Failed runs", ""]
        lines += [f"- {r['target']}, {r['threads']} threads, round {r['round']}: {r['status']}" for r in failed]
        lines.append("")
    lines += ["<details><summary>Every run, in the order it ran</summary>", ""]
    lines += raw_table(runs)
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--refused", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--svg", required=True)
    args = parser.parse_args()
    meta = read_meta(args.meta)
    runs = read_results(args.results)
    if not runs:
        sys.exit("report.py: no runs in " + args.results)
    with open(args.refused, encoding="utf-8") as f:
        refused = f.read()
    summary = summarise(runs)
    svg_name = os.path.basename(args.svg)
    with open(args.svg, "w", encoding="utf-8") as f:
        f.write(render_svg(summary, runs, meta))
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render_markdown(meta, runs, summary, refused, svg_name))


if __name__ == "__main__":
    main()
