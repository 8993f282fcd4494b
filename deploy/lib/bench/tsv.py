"""What the benchmark report scripts share: reading the run's metadata file and the numbers of its results."""


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
