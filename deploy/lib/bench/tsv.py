"""What the benchmark report scripts share: reading the run's metadata, results and log files, and writing figures
and log lines into the markdown."""

import argparse
import sys
from collections import Counter


def number(text):
    """A float, or None for "-" and anything else that is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def read_meta(path):
    """The key-tab-value lines of a metadata file, as a dict (a value keeps any further tabs)."""
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def report_parser(description):
    """The command line of a report script that reads a runs folder: --meta, --results, --runs and --output."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--output", required=True)
    return parser


def read_rows(path, fields, script):
    """The tab-separated lines of a results file, each as a dict of `fields` (strings); exits naming `script` at a
    line that has another number of columns, or when there is none (the benchmark measured nothing)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != len(fields):
                sys.exit(f"{script}: malformed results line: {line!r}")
            rows.append(dict(zip(fields, cols)))
    if not rows:
        sys.exit(f"{script}: no results in {path}")
    return rows


def read_lines(path):
    """The non-blank lines of a file, or none when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


def fmt(value, digits=0):
    """A number with thousands separators and `digits` decimals, or "-" for None."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def latency(value):
    """Milliseconds with enough digits to read a sub-millisecond latency."""
    if value is None:
        return "-"
    return fmt(value, 2 if value < 10 else 1 if value < 100 else 0)


def error_text(errors, timeouts=0):
    """Failed statements by MySQL error code (0: the client's or the connection's own) and unanswered ones."""
    parts = [f"ERR {code}: {n:,}" if code else f"client/IO: {n:,}" for code, n in sorted(errors.items())]
    if timeouts:
        parts.append(f"unanswered: {timeouts:,}")
    return ", ".join(parts) if parts else "0"


def strip_volatile(line):
    """The log line without its timestamp (first word) and numeric field values, so that repeats group."""
    words = line.split()[1:]
    return " ".join(w.split("=")[0] + "=N" if "=" in w and w.split("=", 1)[1].isdigit() else w for w in words)


def log_lines_text(label, lines):
    """Markdown list lines: how many log lines a run (named by `label`) left, and its three most frequent shapes."""
    out = [f"- {label}: {len(lines):,} line(s); most frequent:"]
    for line, n in Counter(strip_volatile(line) for line in lines).most_common(3):
        out.append(f"  - {n:,} x `{line[:300]}`")
    return out


# A section one benchmark keeps inside another's report (docs/benchmarks.md holds the resharding summary that
# deploy/bench-reshard.sh writes; deploy/bench.sh rewrites the rest of the file and keeps the section).
SECTION_BEGIN = "<!-- section:{name} begin -->"
SECTION_END = "<!-- section:{name} end -->"


def read_section(path, name):
    """The marked section `name` of the file at `path`, markers included; empty when the file or section is absent."""
    begin, end = SECTION_BEGIN.format(name=name), SECTION_END.format(name=name)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return ""
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        return ""
    return text[start:stop + len(end)]


def write_section(path, name, body):
    """Replaces the marked section `name` of the file at `path` with `body` (appended when absent)."""
    begin, end = SECTION_BEGIN.format(name=name), SECTION_END.format(name=name)
    section = f"{begin}\n{body.rstrip()}\n{end}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = ""
    old = read_section(path, name)
    if old:
        text = text.replace(old, section)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
