"""Known first and last names, for finding names that the NER model misses in the middle of a sentence.

The list comes from the ``names-dataset`` package (first and last names of people in 106 countries, counted
from public profiles; independent of the Faker data the evaluation set is made with). Only names ranked
among the :data:`RANK` most common in at least one country are kept (61,000 first and 72,000 last names):
rarer entries are mostly noise ("Django", "Python"). The package ships its tables as 1 GB of pickles that
take 10 s to read, so the short list is built once per machine in a child process (the parent's memory stays
small) and kept as gzipped JSON under ``~/.cache/clio_lab_names``; loading it takes a fraction of a second.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

RANK = 1000
LIST_VERSION = 1


def _package_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("names_dataset")  # found without importing it (its import needs pycountry)
    return Path(spec.origin).parent if spec and spec.origin else None


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("names-dataset")
    except PackageNotFoundError:
        return None


def list_path() -> Path:
    """Where the short list is kept: beside the user's other caches, not in clio_lab's answer cache (which
    tests and ``make test`` point at a fresh folder each time, so the list would be rebuilt every time)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "clio_lab_names" / f"names-dataset-{_version()}-rank{RANK}-v{LIST_VERSION}.json.gz"


def build(out: Path, source: Path, rank: int = RANK) -> None:
    """Write the short list: names (casefolded) ranked within ``rank`` in some country."""
    import pickle

    lists = {}
    for kind in ("first", "last"):
        # the package's own data files, as it loads them itself (not a user's cache: no code from outside runs)
        with gzip.open(source / "v3" / f"{kind}_names.pkl.gz") as fh:
            table = pickle.load(fh)  # noqa: S301
        lists[kind] = sorted({name.casefold() for name, info in table.items()
                              if info.get("rank") and min(info["rank"].values()) <= rank})
        del table
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(lists, fh)
    os.replace(tmp, out)


@cache
def known_names() -> tuple[frozenset[str], frozenset[str]] | None:
    """(first names, last names), casefolded; ``None`` when ``names-dataset`` is not installed."""
    source = _package_dir()
    if source is None or not (source / "v3").is_dir():
        return None
    path = list_path()
    if not path.exists():
        subprocess.run([sys.executable, "-m", "clio_lab.pii_names", str(path), str(source)], check=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(
                           [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])})
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lists = json.load(fh)
    return frozenset(lists["first"]), frozenset(lists["last"])


def version() -> str | None:
    """What the detector's cache key records: the package's version and the rank cut, or ``None``."""
    v = _version()
    return f"{v}/rank{RANK}/v{LIST_VERSION}" if v and _package_dir() else None


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
