"""Saved runs: one folder per run, readable without clio_lab (Parquet, CSV, JSON) and back whole with
:func:`load_run`.

Layout written by :func:`save_run` (and ``PipelineResult.save``, ``clio-lab run --out``)::

    run.json                 format version, clio_lab version, when, the run's configuration, the files
    conversations.parquet    one row per conversation: facets, computed facets, user id, map x/y, cluster per level
    clusters.parquet         one row per cluster per level: name, description, size, users, parent, summaries
    combined.csv             conversations.parquet as CSV (each conversation with its cluster names at every level)
    level_{i}_clusters.csv   the clusters of level i (0 = base clusters)
    tree.json                the hierarchy as nested nodes under a root
    embeddings.npy           the embeddings that were clustered (float32)
    base_labels.npy          each conversation's base cluster before release (what clio_lab.extend assigns new
                             conversations by; withheld clusters' members are pooled in every other file)
    failures.jsonl           every failed item, with its step and reason
    stats.json               counts, timings, tokens, cost, configuration
    privacy.json             the privacy report: personal details found per stage, thresholds, what was withheld
                             and why (counts only), the auditor's score histogram, whether raw text is shown
    load_report.json         what loading skipped and why (when loaded from a file)
    report.html              the offline report

Raw conversation text is not written unless the run opted in (``show_raw=True`` / ``--allow-raw``, recorded in
run.json and privacy.json): facet answers are the model's privacy-instructed summaries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import PipelineResult
from .tree import LEGACY_STATUS, Hierarchy, Status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

RUN_FORMAT = 1


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")


def save_run(result: PipelineResult | SavedRun, out_dir: str | Path) -> Path:
    """Write every output of a run (live, read back, or extended) into ``out_dir`` (created if missing); returns
    the folder."""
    from . import __version__
    from .report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = result.to_frame()
    clusters = result.clusters_frame()
    tree = result.hierarchy
    frame.to_parquet(out / "conversations.parquet", index=False)
    clusters.to_parquet(out / "clusters.parquet", index=False)
    frame.to_csv(out / "combined.csv", index=False)
    flat = clusters.assign(central_summaries=clusters["central_summaries"].map(" | ".join))
    for lvl in sorted(clusters["level"].unique()):
        flat[flat["level"] == lvl].to_csv(out / f"level_{lvl}_clusters.csv", index=False)
    if tree is not None:
        (out / "tree.json").write_text(json.dumps(tree.to_tree(), indent=1, ensure_ascii=False), encoding="utf-8")
    np.save(out / "embeddings.npy", np.asarray(result.embeddings, dtype=np.float32))
    base_labels = result.clustering.labels if isinstance(result, PipelineResult) else result.base_labels
    if base_labels is not None:
        np.save(out / "base_labels.npy", np.asarray(base_labels, dtype=np.int64))
    _jsonl(out / "failures.jsonl", result.failures)
    if result.load_report is not None:
        report = result.load_report
        (out / "load_report.json").write_text(json.dumps(report, indent=2, default=str) if isinstance(report, dict)
                                              else report.model_dump_json(indent=2), encoding="utf-8")
    stats = result.stats()
    (out / "stats.json").write_text(json.dumps(stats, indent=2, default=str), encoding="utf-8")
    privacy = result.privacy()
    (out / "privacy.json").write_text(json.dumps(privacy, indent=2, default=str), encoding="utf-8")
    write_report(result, out / "report.html", clusters=clusters, stats=stats, privacy=privacy)
    files = sorted(p.name for p in out.iterdir() if p.name != "run.json")
    meta = {"format": RUN_FORMAT, "clio_lab_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": result.config, "files": files}
    (out / "run.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return out


@dataclass
class SavedRun:
    """A run read back from its folder (or made by :func:`clio_lab.extend`, ``path`` None until saved); a
    :class:`~clio_lab.results.Run`, like a live result."""

    path: Path | None
    meta: dict[str, Any]
    frame: pd.DataFrame
    clusters: pd.DataFrame
    hierarchy: Hierarchy
    embeddings: np.ndarray | None
    failures: list[dict[str, Any]] = field(default_factory=list)
    load_report: dict[str, Any] | None = None
    _stats: dict[str, Any] = field(default_factory=dict)
    _privacy: dict[str, Any] = field(default_factory=dict)
    base_labels: np.ndarray | None = None  # base clusters before release (base_labels.npy)

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config", {})

    @property
    def coords(self) -> np.ndarray | None:
        if {"x", "y"} <= set(self.frame.columns):
            return self.frame[["x", "y"]].to_numpy(dtype=np.float32)
        return None

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def clusters_frame(self) -> pd.DataFrame:
        return self.clusters.copy()

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def privacy(self) -> dict[str, Any]:
        return dict(self._privacy)

    def __len__(self) -> int:
        return len(self.frame)

    def save(self, out_dir: str | Path) -> Path:
        """Write the run to ``out_dir`` (see :func:`save_run`)."""
        self.path = save_run(self, out_dir)
        return self.path


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder written by :func:`save_run` (or ``clio-lab run --out``).

    Example:
        >>> run = clio_lab.load_run("runs/demo")  # doctest: +SKIP
        >>> run.hierarchy.top[0].name  # doctest: +SKIP
    """
    import pandas as pd

    folder = Path(path)
    meta_path = folder / "run.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a clio_lab run folder: {meta_path.name} is missing")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != RUN_FORMAT:
        raise ValueError(f"{meta_path}: run format {meta.get('format')!r}; this clio_lab reads format {RUN_FORMAT}")
    for name in ("conversations.parquet", "clusters.parquet"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing from the run folder")
    frame = pd.read_parquet(folder / "conversations.parquet")
    clusters = pd.read_parquet(folder / "clusters.parquet")
    clusters["central_summaries"] = clusters["central_summaries"].map(lambda v: [str(s) for s in v])
    _read_legacy_status(frame, clusters)
    records = clusters.drop(columns=["central_summaries", "n_users", "n_children", "privacy_score", "privacy_reason"],
                            errors="ignore")
    tree = Hierarchy.from_records(records.to_dict("records"), frame["cluster"].to_numpy())
    tree.check()
    emb_path = folder / "embeddings.npy"
    embeddings = np.load(emb_path, allow_pickle=False) if emb_path.is_file() else None
    failures = [json.loads(line) for line in (folder / "failures.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()] if (folder / "failures.jsonl").is_file() else []

    def read_json(name: str) -> dict[str, Any]:
        return json.loads((folder / name).read_text(encoding="utf-8")) if (folder / name).is_file() else {}

    labels_path = folder / "base_labels.npy"
    base_labels = np.load(labels_path, allow_pickle=False) if labels_path.is_file() else None
    return SavedRun(folder, meta, frame, clusters, tree, embeddings, failures, read_json("load_report.json") or None,
                    read_json("stats.json"), read_json("privacy.json"), base_labels=base_labels)


def _read_legacy_status(frame: pd.DataFrame, clusters: pd.DataFrame) -> None:
    """Runs saved before nodes had a status said "withheld" in ``method`` and marked withheld members by a base
    cluster index of -2 or below; give them the ``status`` and ``withheld`` columns of today's runs."""
    if "status" not in clusters:
        clusters["status"] = clusters["method"].map(lambda m: LEGACY_STATUS.get(m, Status.SHOWN.value))
        clusters.loc[clusters["method"] == "withheld", "method"] = "fixed"
    if "withheld" not in frame:
        frame["withheld"] = frame["cluster"].to_numpy() <= -2
