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
