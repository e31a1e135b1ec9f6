"""The main job: every step in order, one result object holding each stage's output and its costs.

Each step is the plain cached function from its own module; ``run_pipeline`` only wires them together and
keeps the books (timings, model and embedding calls, cache hits, tokens, failures).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .auditor import DEFAULT_MIN_SCORE, Audit, audit_clusters
from .cache import CacheLike, resolve_cache
from .clustering import Clustering, cluster
from .embeddings import COUNTER, embed, get_embedder
from .facets import FacetResults, extract_facets, user_text
from .hierarchy import Hierarchy, build_hierarchy, check_levels
from .llm.client import LLM, CallStats, resolve_llm
from .naming import ClusterLabels, central_texts, label_clusters, resolve_method
from .privacy import (
    DEFAULT_MIN_CONVERSATIONS,
    DEFAULT_MIN_USERS,
    apply_thresholds,
    is_withheld,
    shows_model_text,
    threshold_reasons,
)
from .projection import project
from .records import Conversation, LoadReport

EmbedOn = Literal["auto", "summary", "text", "both"]


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
    hierarchy: Hierarchy | None = None
    coords: np.ndarray | None = None
    input_redaction: dict[str, Any] | None = None
    thresholds: dict[str, Any] | None = None
    full_hierarchy: Hierarchy | None = field(default=None, repr=False)  # before thresholds; never exported
    pii_detector: Any = field(default=None, repr=False)
    audit: Audit | None = None
    raw_pii: dict[str, Any] | None = None  # personal details found in the raw conversations (counts only)
    released_pii: dict[str, Any] | None = None  # a last check of the released cluster names and descriptions

    def _failure_records(self) -> list[dict[str, Any]]:
        """Every failed item; naming failures of withheld clusters say only that."""
        released = {n.index for n in self.hierarchy.level(0)} if self.hierarchy else None
        out = []
        released_ids = set(self.hierarchy.nodes) if self.hierarchy else set()
        for f in (list(self.facets.failures) + (list(self.names.failures) if self.names else [])
                  + (list(self.hierarchy.failures) if self.hierarchy else [])
                  + (list(self.audit.failures) if self.audit else [])):
            if f["step"] == "naming" and released is not None and int(f["id"]) not in released:
                f = {"id": None, "step": "naming", "reason": "(a withheld cluster)"}
            elif f["step"] == "privacy_audit" and f["id"] not in released_ids:  # the auditor fails closed
                f = {"id": None, "step": "privacy_audit", "reason": "no valid rating (the cluster was withheld)"}
            out.append(f)
        return out

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed item, safe to export: raw model answers are redacted when a PII detector is available
        (the counts in :meth:`stats` need no redaction and do not pay for it)."""
        if self.pii_detector is None:
            return self._failure_records()
        return [{**f, "raw": self.pii_detector.redact(f["raw"]).text} if f.get("raw") else f
                for f in self._failure_records()]

    @property
    def user_ids(self) -> list[str | None]:
        return [c.user_id for c in self.conversations]

    def to_frame(self):
        """One row per conversation: id, facet answers, computed facets, what was embedded, its cluster at
        every level (``level_0`` is the base cluster; ``level_{i}_name`` its name) and the map position.
        Conversations in withheld clusters keep no model-written answers here. The user's own text (column
        ``text``) is there only when the run opted in with ``show_raw=True``."""
        df = self.facets.to_frame()
        df["embedded_from"] = self.embedded_from
        if any(self.user_ids):
            df["user_id"] = self.user_ids
        df["cluster"] = self.hierarchy.base_labels if self.hierarchy is not None else self.clustering.labels
        withheld = df["cluster"].to_numpy() <= -2  # members of withheld clusters count, and show nothing else
        if self.config.get("show_raw"):  # the user opted in to raw text (public or synthetic data)
            df["text"] = [user_text(c) for c in self.conversations]
        if withheld.any():
            for name in [*self.facets.values, *(["text"] if "text" in df else [])]:
                df[name] = df[name].astype(object)
                df.loc[withheld, name] = None
        if self.coords is not None:
            df["x"], df["y"] = self.coords[:, 0], self.coords[:, 1]
        if self.hierarchy is not None:
            for lvl in range(self.hierarchy.n_levels):
                at = self.hierarchy.labels_at(lvl)
                names = {n.index: n.name for n in self.hierarchy.level(lvl)}
                df[f"level_{lvl}"] = at
                df[f"level_{lvl}_name"] = [names[i] for i in at]
        return df

    def clusters_frame(self, n_examples: int = 3):
        """One row per cluster per level: level, id, name, description, size, distinct users, parent,
        how it was named, and the (distinct) summaries nearest its centre."""
        tree = self.hierarchy or build_hierarchy(self.clustering.labels, self.names.labels if self.names else {},
                                                 levels=[], cache=None)
        summaries = self.facets.values.get("request") or [None] * len(self.conversations)
        users = np.array([u or "" for u in self.user_ids], dtype=object)
        has_users = any(self.user_ids)
        df = tree.to_frame()  # level, id, name, description, size, parent, method, keywords, n_children
        n_users, central = [], []
        for lvl in range(tree.n_levels):
            at = tree.labels_at(lvl)
            for node in tree.level(lvl):  # the frame's row order
                idx = np.flatnonzero(at == node.index)
                n_users.append(len({u for u in users[idx] if u}) if has_users else None)
                # a withheld cluster: only its size may be shown
                central.append([] if is_withheld(node.method) else
                               central_texts(idx, self.embeddings, summaries, n_examples))
        df["n_users"] = n_users
        df["central_summaries"] = central
        scores = self.audit.scores if self.audit else {}
        df["privacy_score"] = [scores[i].score if i in scores else None for i in df["id"]]
        df["privacy_reason"] = [scores[i].reason if i in scores and not is_withheld(m) else None
                                for i, m in zip(df["id"], df["method"], strict=True)]
        return df

    def privacy(self) -> dict[str, Any]:
        """The run's privacy report (``privacy.json``): per stage, how many items held detected personal
        details; the thresholds; what was withheld and why (counts only); the auditor's scores."""
        detector = self.config.get("pii_check")

        def stage(*counts: dict[str, int]) -> dict[str, Any]:
            """Counts of pii_counts() added up (several facets; names and parents)."""
            checked, flagged, redacted = (sum(c.get(k, 0) for c in counts)
                                          for k in ("checked", "reasked_for_pii", "redacted"))
            return {"checked": checked, "with_pii_when_written": flagged,
                    "share_when_written": round(flagged / checked, 4) if checked else None,
                    "kept_redacted": redacted}

        thr = self.thresholds or {}
        return {
            "detector": {k: detector.get(k) for k in ("model", "presidio", "entities", "threshold")} if detector
            else None,
            "raw_text": {"shown": bool(self.config.get("show_raw")),
                         "note": "conversation text is in the exports (show_raw=True)" if self.config.get("show_raw")
                         else "no conversation text in any export, view or report"},
            "stages": {
                "raw_conversations": self.raw_pii,
                "model_input_redacted": self.input_redaction,
                "facet_answers": stage(*self.facets.pii.values()),
                "cluster_texts": stage(self.names.pii if self.names else {},
                                       self.hierarchy.pii if self.hierarchy else {}),
                "released_cluster_texts": self.released_pii,
            },
            "thresholds": {k: thr.get(k) for k in ("min_conversations", "min_users", "user_ids_present")},
            "withheld": {"clusters_per_level": thr.get("withheld_clusters_per_level"),
                         "names_only_per_level": thr.get("names_withheld_per_level"),
                         "by_reason": thr.get("withheld_by_reason"),
                         "conversations": thr.get("withheld_conversations_at_base")},
            "auditor": {"ran": True, "model": self.config["llm"]["model"], **(thr.get("audit") or {})}
            if self.audit else {"ran": False, "why": self.config.get("audit_off_reason")},
        }

    def stats(self) -> dict[str, Any]:
        failures = self._failure_records()
        llm_total = CallStats()
        for s in self.llm_stats.values():
            llm_total.add(s)
        sizes = self.clustering.sizes()
        return {
            "conversations": len(self.conversations),
            "llm_calls": llm_total.calls,
            "llm_cache_hits": llm_total.cache_hits,
            "embedding_calls": self.embedding_calls,
            "embedding_cache_hits": self.embedding_cache_hits,
            "cache_hits": llm_total.cache_hits + self.embedding_cache_hits,
            "failed_items": len(failures),
            "failures_by_step": _count(f["step"] for f in failures),
            "tokens": {"prompt": llm_total.prompt_tokens, "completion": llm_total.completion_tokens},
            "cost_usd": round(llm_total.cost_usd, 6) if llm_total.cost_known else None,
            "llm_by_step": {k: v.as_dict() for k, v in self.llm_stats.items()},
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "clusters": self.clustering.n_clusters,
            "unclustered": self.clustering.n_noise,
            "largest_cluster": max(sizes.values()) if sizes else 0,
            "clusters_per_level": ([sum(1 for n in self.hierarchy.level(lvl) if n.index >= 0)
                                    for lvl in range(self.hierarchy.n_levels)] if self.hierarchy else None),
            "named_by": _count(n.method for n in self.hierarchy.nodes.values()) if self.hierarchy else None,
            "truncated_conversations": sum(1 for c in self.facets.computed if c.get("truncated")),
            "input_redaction": self.input_redaction,
            "thresholds": self.thresholds,
            "pii_in_model_texts": {"checked_with": (self.config.get("pii_check") or {}).get("model"),
                                   "facets": self.facets.pii, "names": self.names.pii if self.names else {},
                                   "hierarchy": self.hierarchy.pii if self.hierarchy else {}},
            "load": self.load_report.summary() if self.load_report else None,
            "config": self.config,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write the run to ``out_dir`` (see :func:`clio_lab.runs.save_run`); read it back with
        :func:`clio_lab.load_run`."""
        from .runs import save_run

        return save_run(self, out_dir)


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def _runtime_info(model: LLM) -> dict[str, Any] | None:
    """The in-process model's build and CPU features (which code paths llama.cpp takes here)."""
    if not model.is_local:
        return None
    from .llm.local import runtime_info

    return runtime_info(model.model)


def resolve_embed_on(embed_on: EmbedOn, llm: LLM) -> str:
    """What gets embedded and clustered. ``auto``: the conversation's own text with the local base model
    (its summaries cost 15 NMI points on Banking77, measured), the request summary with hosted models."""
    if embed_on == "auto":
        return "text" if llm.is_local else "summary"
    if embed_on not in ("summary", "text", "both"):
        raise ValueError(f"embed_on must be 'auto', 'summary', 'text' or 'both', not {embed_on!r}")
    return embed_on


def texts_to_embed(conversations: Sequence[Conversation], summaries: Sequence[str | None],
                   embed_on: str) -> tuple[list[str], list[str]]:
    """The text embedded per conversation and where it came from (a failed summary falls back to the
    conversation's user text and says so)."""
    texts, sources = [], []
    for conv, summary in zip(conversations, summaries, strict=True):
        if embed_on == "text" or (embed_on in ("summary", "both") and not summary):
            texts.append(user_text(conv))
            sources.append("text" if embed_on == "text" else "text (summary failed)")
        elif embed_on == "summary":
            texts.append(summary)
            sources.append("summary")
        else:
            texts.append(f"{summary}\n{user_text(conv)}")
            sources.append("both")
    return texts, sources


def run_pipeline(
    conversations: Sequence[Conversation] | str | Path,
    *,
    llm: LLM | str | None = None,
    embedder: Any = None,
    embed_on: EmbedOn = "auto",
    method: str | Any = "kmeans",
    k: int | None = None,
    random_state: int = 0,
    cache: CacheLike | str = "default",
    facets: Sequence[Any] = ("request",),
    examples: Literal["nearest", "fixed", "none"] = "nearest",
    prompts: Any = None,
    naming: Literal["auto", "llm", "extractive", "keywords"] | None = "auto",
    hierarchy: Literal["llm", "extractive", "keywords"] | None | bool = True,
    levels: Sequence[int] | None = None,
    top: int | None = None,
    projection: bool = True,
    pii: Any = "auto",
    redact_input: bool = False,
    min_conversations: int | None = DEFAULT_MIN_CONVERSATIONS,
    min_users: int | None = DEFAULT_MIN_USERS,
    audit: bool | Literal["auto"] = "auto",
    min_audit_score: int = DEFAULT_MIN_SCORE,
    show_raw: bool = False,
    progress: bool = True,
) -> PipelineResult:
    """Run facets → embeddings → clustering → naming → hierarchy → projection on a corpus.

    Args:
        conversations: loaded conversations, or a path for :func:`~clio_lab.load_conversations`.
        llm: an :class:`~clio_lab.llm.LLM` or LiteLLM model name (default: the local model).
        embedder: embedder object or name (default: bundled all-MiniLM-L6-v2).
        embed_on: what is embedded and clustered: ``"summary"``, ``"text"``, ``"both"``, or ``"auto"``.
        method, k, random_state: passed to :func:`~clio_lab.cluster`.
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None`` (off).
        facets, examples: passed to :func:`~clio_lab.extract_facets`.
        prompts: your own prompt folder (default: the packaged ``prompts/``).
        naming: ``"llm"`` has the model write each name contrastively (keyword fallback; the paper's way),
            ``"extractive"`` names each cluster by the member summary that best tells it apart (no writing
            model: :mod:`clio_lab.extractive`), ``"keywords"`` by c-TF-IDF words, ``None`` skips naming (and
            the hierarchy). ``"auto"`` (default): ``"extractive"`` with the local model, whose written names
            measured worse than keywords, ``"llm"`` with hosted models.
        hierarchy: ``True`` (the same method as ``naming``), ``"llm"``, ``"extractive"``, ``"keywords"``, or
            ``None``/``False`` for base clusters only. ``levels`` / ``top``: see :func:`~clio_lab.build_hierarchy`.
        projection: compute the 2-D map of every conversation (UMAP; PCA for tiny inputs).
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` (one when presidio is installed), ``True`` or
            ``False``: every text the model writes (facet answers, cluster and parent names and descriptions)
            is checked; one with personal details is re-asked once, then kept redacted, and counted.
        min_conversations, min_users: aggregation thresholds (:func:`~clio_lab.privacy.apply_thresholds`): a
            cluster with fewer conversations or distinct users is withheld from every view and export, its
            conversations counted in an "Other (withheld)" node. ``None`` turns a threshold off.
        redact_input: redact personal details in every conversation before any model sees them (and before
            the text is embedded); counted in ``stats()["input_redaction"]``. Needs presidio.
        audit, min_audit_score: the privacy auditor (:func:`~clio_lab.auditor.audit_clusters`) rates every
            cluster that passes the thresholds on the paper's 1-5 scale and withholds those below
            ``min_audit_score`` (default 3) or that it cannot rate. ``"auto"``: on whenever clusters are named.
        show_raw: put each conversation's own text in the exports (``text`` column) — only for public or
            synthetic data; recorded in the run and its privacy report. Off by default.

    Example:
        >>> result = run_pipeline("datasets/clio_demo.jsonl")  # doctest: +SKIP
        >>> result.stats()["llm_calls"]  # doctest: +SKIP
        0
    """
    from .loaders import load_conversations

    if isinstance(conversations, str | Path):
        conversations = load_conversations(conversations)
    report = getattr(conversations, "report", None)
    conversations = list(conversations)
    if not conversations:
        where = f"{report.source}: " if report is not None else ""
        why = f" ({'; '.join(report.notes)})" if report is not None and report.notes else ""
        raise ValueError(f"{where}run_pipeline needs at least one conversation{why}")
    if levels is not None:  # fail before any model call, not after
        check_levels(levels, n_base=10**12)
    if audit not in (True, False, "auto"):
        raise ValueError(f"audit must be True, False or 'auto', not {audit!r}")
    from .pii import resolve_detector

    model = resolve_llm(llm)
    naming = resolve_method(naming, model)
    emb = get_embedder(embedder)
    store = resolve_cache(cache)
    on = resolve_embed_on(embed_on, model)
    detector = resolve_detector(pii)
    timings: dict[str, float] = {}
    input_redaction = None
    if redact_input:
        from .pii import PIIDetector, redact_conversations

        t = time.perf_counter()
        conversations, input_redaction = redact_conversations(conversations, detector or PIIDetector(), cache=store)
        timings["redact_input"] = time.perf_counter() - t
    calls0, hits0 = COUNTER.calls, COUNTER.cache_hits

    t = time.perf_counter()
    fac = extract_facets(conversations, facets, llm=model, cache=store, embedder=emb, examples=examples,
                         prompts=prompts, pii=detector or False, progress=progress)
    timings["facets"] = time.perf_counter() - t

    summaries = fac.values.get("request", [None] * len(conversations))
    t = time.perf_counter()
    texts, sources = texts_to_embed(conversations, summaries, on)
    X = embed(texts, emb, cache=store, progress=progress)
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    clustering = cluster(X, method=method, k=k, random_state=random_state, cache=store)
    timings["cluster"] = time.perf_counter() - t

    names = None
    if naming:
        t = time.perf_counter()
        names = label_clusters(summaries, X, clustering.labels,
                               method=naming, llm=model, cache=store, prompts=prompts, random_state=random_state,
                               embedder=emb, pii=detector or False, progress=progress)
        timings["naming"] = time.perf_counter() - t

    tree_method = (naming if hierarchy is True else hierarchy or None) if naming else None
    t = time.perf_counter()
    tree = build_hierarchy(clustering.labels, names.labels if names else {}, method=tree_method or "keywords",
                           levels=levels if tree_method else [], top=top, llm=model, embedder=emb,
                           summaries=summaries, X=X, cache=store, prompts=prompts, random_state=random_state,
                           pii=detector or False, progress=progress)
    timings["hierarchy"] = time.perf_counter() - t

    full_tree = tree
    users = [c.user_id for c in conversations]
    gate = dict(min_conversations=min_conversations or 1, min_users=min_users or 1)
    audited = None
    audit_off = None if (audit is True or (audit == "auto" and naming)) else \
        ("turned off (audit=False)" if audit is False else "no cluster names in this run")
    if audit_off is None:  # only clusters that pass the thresholds are shown, so only they are audited
        t = time.perf_counter()
        below = threshold_reasons(full_tree, users, **gate)
        audited = audit_clusters(full_tree, nodes=[nid for nid in full_tree.nodes if nid not in below],
                                 min_score=min_audit_score, llm=model, cache=store, prompts=prompts,
                                 random_state=random_state, embedder=emb, progress=progress)
        timings["audit"] = time.perf_counter() - t
    tree, thr = apply_thresholds(full_tree, users, **gate, audit=audited)
    raw_pii = released_pii = None
    if detector is not None:
        from .pii import scan_conversations

        t = time.perf_counter()
        raw_pii = ({**input_redaction, "checked": len(conversations), "sampled": False,
                    "with_pii": input_redaction["conversations_with_pii"]} if input_redaction else
                   scan_conversations(conversations, detector, cache=store, random_state=random_state))
        texts = [t for n in tree.nodes.values() if shows_model_text(n.method)
                 for t in (n.name, n.description)]
        released_pii = {"checked": len(texts), "with_pii": sum(detector.has_pii(t) for t in texts)}
        timings["privacy_check"] = time.perf_counter() - t

    coords = None
    if projection:
        t = time.perf_counter()
        coords = project(X, random_state=random_state, cache=store)
        timings["projection"] = time.perf_counter() - t

    config = {"llm": model.get_params(), "embedder": emb.get_params(), "embed_on": on, "method": clustering.method,
              "k": clustering.params.get("k"), "random_state": random_state, "examples": examples,
              "facets": [f if isinstance(f, str) else f.name for f in facets], "naming": naming,
              "hierarchy": tree_method, "levels": tree.config.get("levels"), "projection": projection,
              "pii_check": detector.get_params() if detector is not None else None, "redact_input": redact_input,
              "thresholds": {"min_conversations": min_conversations, "min_users": min_users},
              "audit": audited is not None, "min_audit_score": min_audit_score, "audit_off_reason": audit_off,
              "show_raw": bool(show_raw), "cache": str(store.directory) if store is not None else None,
              "llm_runtime": _runtime_info(model)}
    llm_stats = {"facets": fac.stats}
    if names:
        llm_stats["naming"] = names.stats
    if tree_method == "llm":
        llm_stats["hierarchy"] = tree.stats
    if audited is not None:
        llm_stats["privacy_audit"] = audited.stats
    return PipelineResult(conversations=conversations, facets=fac, embeddings=X, embedded_from=sources,
                          clustering=clustering, config=config, timings=timings, llm_stats=llm_stats,
                          embedding_calls=COUNTER.calls - calls0, embedding_cache_hits=COUNTER.cache_hits - hits0,
                          load_report=report, names=names, hierarchy=tree, coords=coords,
                          input_redaction=input_redaction, thresholds=thr.as_dict(), full_hierarchy=full_tree,
                          pii_detector=detector, audit=audited, raw_pii=raw_pii, released_pii=released_pii)
