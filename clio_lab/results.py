"""What a run produced, and the tables made from it: the contract between the pipeline and every view.

:class:`PipelineResult` is a plain record of each stage's output (``run_pipeline`` fills it). The tables a
reader sees are built by the functions here: :func:`conversations_frame` (one row per conversation),
:func:`clusters_frame` (one row per cluster per level), :func:`run_stats` and :func:`privacy_report`.
:func:`clio_lab.runs.save_run` writes them; :func:`clio_lab.runs.load_run` reads them back as a
:class:`~clio_lab.runs.SavedRun`. Both satisfy :class:`Run`, which is what the charts, the report and the
explorer take.

Nothing here decides what is shown: the released tree (:func:`clio_lab.release.release_tree`) has decided, and the
tables follow it (members of withheld clusters keep no model-written answer; a withheld node no summaries).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .clustering import Clustering
from .facets import FacetResults, user_text
from .llm.client import CallStats
from .naming import ClusterLabels, central_texts
from .records import Conversation, LoadReport
from .tree import Hierarchy, Status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .auditor import Audit
    from .pii import PIIDetector


@runtime_checkable
class Run(Protocol):
    """A run as the views read it: a live :class:`PipelineResult` or a saved one (``load_run``)."""

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def coords(self) -> np.ndarray | None: ...

    @property
    def hierarchy(self) -> Hierarchy | None: ...

    @property
    def failures(self) -> list[dict[str, Any]]: ...

    def to_frame(self) -> pd.DataFrame: ...

    def clusters_frame(self) -> pd.DataFrame: ...

    def stats(self) -> dict[str, Any]: ...

    def privacy(self) -> dict[str, Any]: ...

    def __len__(self) -> int: ...


@dataclass
class PipelineResult:
    """Everything a run produced. ``to_frame()`` gives one row per conversation; ``save(dir)`` writes it."""

    conversations: list[Conversation]
    facets: FacetResults
    embeddings: np.ndarray
    embedded_from: list[str]
    clustering: Clustering
    config: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    llm_stats: dict[str, CallStats] = field(default_factory=dict)
    embedding_calls: int = 0
    embedding_cache_hits: int = 0
    load_report: LoadReport | None = None
    names: ClusterLabels | None = None
    hierarchy: Hierarchy | None = None  # the released tree: what every view and export shows
    coords: np.ndarray | None = None
    input_redaction: dict[str, Any] | None = None
    thresholds: dict[str, Any] | None = None
    full_hierarchy: Hierarchy | None = field(default=None, repr=False)  # before release; never exported
    pii_detector: PIIDetector | None = field(default=None, repr=False)
    audit: Audit | None = None
    raw_pii: dict[str, Any] | None = None  # personal details found in the raw conversations (counts only)
    released_pii: dict[str, Any] | None = None  # a last check of the released cluster names and descriptions
    screening: Any = None  # the screener's answers (clio_lab.screening.Screening) when the run had one

    @property
    def user_ids(self) -> list[str | None]:
        return [c.user_id for c in self.conversations]

    def __len__(self) -> int:
        return len(self.conversations)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed item, safe to export (see :func:`exportable_failures`)."""
        return exportable_failures(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per conversation (see :func:`conversations_frame`)."""
        return conversations_frame(self)

    def clusters_frame(self, n_examples: int = 3) -> pd.DataFrame:
        """One row per cluster per level (see :func:`clusters_frame`)."""
        return clusters_frame(self, n_examples)

    def privacy(self) -> dict[str, Any]:
        """The run's privacy report (see :func:`privacy_report`)."""
        return privacy_report(self)

    def stats(self) -> dict[str, Any]:
        """Counts, costs and timings (see :func:`run_stats`)."""
        return run_stats(self)

    def save(self, out_dir):
        """Write the run to ``out_dir`` (see :func:`clio_lab.runs.save_run`); read it back with
        :func:`clio_lab.load_run`."""
        from .runs import save_run

        return save_run(self, out_dir)


def failure_records(result: PipelineResult) -> list[dict[str, Any]]:
    """Every failed item; naming and audit failures of withheld clusters say only that."""
    tree = result.hierarchy
    released = {n.index for n in tree.level(0)} if tree else None
    released_ids = set(tree.nodes) if tree else set()
    out = []
    for f in ((list(result.screening.failures) if result.screening else []) + list(result.facets.failures) + (list(result.names.failures) if result.names else [])
              + (list(tree.failures) if tree else []) + (list(result.audit.failures) if result.audit else [])):
        if f["step"] == "naming" and released is not None and int(f["id"]) not in released:
            f = {"id": None, "step": "naming", "reason": "(a withheld cluster)"}
        elif f["step"] == "privacy_audit" and f["id"] not in released_ids:  # the auditor fails closed
            f = {"id": None, "step": "privacy_audit", "reason": "no valid rating (the cluster was withheld)"}
        out.append(f)
    return out


def exportable_failures(result: PipelineResult) -> list[dict[str, Any]]:
    """:func:`failure_records` with raw model answers redacted when a PII detector is available (the counts in
    :func:`run_stats` need no redaction and do not pay for it)."""
    if result.pii_detector is None:
        return failure_records(result)
    return [{**f, "raw": result.pii_detector.redact(f["raw"]).text} if f.get("raw") else f
            for f in failure_records(result)]


def conversations_frame(result: PipelineResult) -> pd.DataFrame:
    """One row per conversation: id, facet answers, computed facets, what was embedded, its base cluster
    (``cluster``), whether that cluster is withheld (``withheld``), its cluster at every level (``level_0`` is
    the base cluster; ``level_{i}_name`` its name) and the map position. Conversations in withheld clusters keep
    no model-written answers here. The user's own text (column ``text``) is there only when the run opted in
    with ``show_raw=True``."""
    df = result.facets.to_frame()
    df["embedded_from"] = result.embedded_from
    if any(result.user_ids):
        df["user_id"] = result.user_ids
    if any(c.created_at for c in result.conversations):
        import pandas as pd

        df["created_at"] = pd.to_datetime([c.created_at for c in result.conversations], utc=True)
    tree = result.hierarchy
    df["cluster"] = tree.base_labels if tree is not None else result.clustering.labels
    withheld = tree.withheld_members() if tree is not None else np.zeros(len(df), dtype=bool)
    df["withheld"] = withheld
    if result.config.get("show_raw"):  # the user opted in to raw text (public or synthetic data)
        df["text"] = [user_text(c) for c in result.conversations]
    if withheld.any():  # members of withheld clusters count, and show nothing else
        for name in [*result.facets.values, *(["text"] if "text" in df else [])]:
            df[name] = df[name].astype(object)
            df.loc[withheld, name] = None
    if result.coords is not None:
        df["x"], df["y"] = result.coords[:, 0], result.coords[:, 1]
    if tree is not None:
        for lvl in range(tree.n_levels):
            at = tree.labels_at(lvl)
            names = {n.index: n.name for n in tree.level(lvl)}
            df[f"level_{lvl}"] = at
            df[f"level_{lvl}_name"] = [names[i] for i in at]
    return df


def clusters_frame(result: PipelineResult, n_examples: int = 3) -> pd.DataFrame:
    """One row per cluster per level: level, id, name, description, size, distinct users, parent, how it was
    named (``method``), what is shown of it (``status``), and the (distinct) summaries nearest its centre."""
    tree = result.hierarchy
    if tree is None:  # never built here: a tree made now would not have been through the release stage
        raise ValueError("this result has no released tree (PipelineResult.hierarchy is None); run_pipeline "
                         "always makes one, or build one and pass it through clio_lab.release_tree")
    summaries = result.facets.values.get("request") or [None] * len(result.conversations)
    users = np.array([u or "" for u in result.user_ids], dtype=object)
    has_users = any(result.user_ids)
    df = tree.to_frame()  # level, id, name, description, size, parent, method, status, keywords, n_children
    n_users, central = [], []
    for lvl in range(tree.n_levels):
        at = tree.labels_at(lvl)
        for node in tree.level(lvl):  # the frame's row order
            idx = np.flatnonzero(at == node.index)
            n_users.append(len({u for u in users[idx] if u}) if has_users else None)
            # a withheld cluster: only its size may be shown
            central.append(central_texts(idx, result.embeddings, summaries, n_examples) if node.shows_text
                           else [])
    df["n_users"] = n_users
    df["central_summaries"] = central
    scores = result.audit.scores if result.audit else {}
    df["privacy_score"] = [scores[i].score if i in scores else None for i in df["id"]]
    df["privacy_reason"] = [scores[i].reason if i in scores and s == Status.SHOWN else None
                            for i, s in zip(df["id"], df["status"], strict=True)]
    return df


def _stage(*counts: dict[str, int]) -> dict[str, Any]:
    """Counts of :func:`clio_lab.pii.pii_counts` added up (several facets; names and parents)."""
    checked, flagged, redacted = (sum(c.get(k, 0) for c in counts) for k in ("checked", "reasked_for_pii", "redacted"))
    return {"checked": checked, "with_pii_when_written": flagged,
            "share_when_written": round(flagged / checked, 4) if checked else None, "kept_redacted": redacted}


def privacy_report(result: PipelineResult) -> dict[str, Any]:
    """The run's privacy report (``privacy.json``): per stage, how many items held detected personal details;
    the thresholds; what was withheld and why (counts only); the auditor's scores."""
    from .auditor import RULE_MIN_USERS
    config = result.config
    detector = config.get("pii_check")
    thr = result.thresholds or {}
    show_raw = bool(config.get("show_raw"))
    return {
        "detector": {k: detector.get(k) for k in ("model", "presidio", "entities", "threshold")} if detector
        else None,
        "raw_text": {"shown": show_raw,
                     "note": "conversation text is in the exports (show_raw=True)" if show_raw
                     else "no conversation text in any export, view or report"},
        "stages": {
            "raw_conversations": result.raw_pii,
            "model_input_redacted": result.input_redaction,
            "facet_answers": _stage(*result.facets.pii.values()),
            "cluster_texts": _stage(result.names.pii if result.names else {},
                                    result.hierarchy.pii if result.hierarchy else {}),
            "released_cluster_texts": result.released_pii,
        },
        "thresholds": {k: thr.get(k) for k in ("min_conversations", "min_users", "user_ids_present")},
        "withheld": {"clusters_per_level": thr.get("withheld_clusters_per_level"),
                     "names_only_per_level": thr.get("names_withheld_per_level"),
                     "by_reason": thr.get("withheld_by_reason"),
                     "conversations": thr.get("withheld_conversations_at_base")},
        "auditor": {"ran": True, "by": result.audit.by, "model": config["llm"]["model"] if result.audit.by == "model"
                    else f"rules: the PII detector, and every name-like word written by at least "
                         f"{config['thresholds'].get('min_users') or RULE_MIN_USERS} users",
                    **(thr.get("audit") or {})}
        if result.audit else {"ran": False, "why": config.get("audit_off_reason")},
    }


def run_stats(result: PipelineResult) -> dict[str, Any]:
    """Counts, costs and timings (``stats.json``)."""
    failures = failure_records(result)
    llm_total = CallStats()
    for s in result.llm_stats.values():
        llm_total.add(s)
    sizes = result.clustering.sizes()
    tree = result.hierarchy
    return {
        "conversations": len(result.conversations),
        "llm_calls": llm_total.calls,
        "llm_cache_hits": llm_total.cache_hits,
        "embedding_calls": result.embedding_calls,
        "embedding_cache_hits": result.embedding_cache_hits,
        "cache_hits": llm_total.cache_hits + result.embedding_cache_hits,
        "failed_items": len(failures),
        "failures_by_step": dict(Counter(f["step"] for f in failures)),
        "tokens": {"prompt": llm_total.prompt_tokens, "completion": llm_total.completion_tokens},
        "cost_usd": round(llm_total.cost_usd, 6) if llm_total.cost_known else None,
        "llm_by_step": {k: v.as_dict() for k, v in result.llm_stats.items()},
        "seconds": {k: round(v, 3) for k, v in result.timings.items()},
        "clusters": result.clustering.n_clusters,
        "unclustered": result.clustering.n_noise,
        "largest_cluster": max(sizes.values()) if sizes else 0,
        "clusters_per_level": ([sum(1 for n in tree.level(lvl) if n.index >= 0) for lvl in range(tree.n_levels)]
                               if tree else None),
        "named_by": dict(Counter(n.method for n in tree.nodes.values() if n.shows_text)) if tree else None,
        "nodes_by_status": dict(Counter(n.status.value for n in tree.nodes.values())) if tree else None,
        "truncated_conversations": sum(1 for c in result.facets.computed if c.get("truncated")),
        "facet_answers_from_last_ask": {k: len(v) for k, v in (result.facets.last_asked or {}).items()},
        "input_redaction": result.input_redaction,
        "thresholds": result.thresholds,
        "pii_in_model_texts": {"checked_with": (result.config.get("pii_check") or {}).get("model"),
                               "facets": result.facets.pii, "names": result.names.pii if result.names else {},
                               "hierarchy": tree.pii if tree else {}},
        "load": result.load_report.summary() if result.load_report else None,
        "config": result.config,
    }
