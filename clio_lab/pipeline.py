"""The main job: every step in order, one result object holding each stage's output and its costs.

Each step is the plain cached function from its own module; ``run_pipeline`` only wires them together and
keeps the books (timings, model and embedding calls, cache hits, tokens, failures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, resolve_cache
from .clustering import Clustering, cluster
from .embeddings import COUNTER, embed, get_embedder
from .facets import FacetResults, extract_facets, user_text
from .llm.client import LLM, CallStats
from .naming import ClusterLabels, label_clusters
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

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.facets.failures) + (list(self.names.failures) if self.names else [])

    def to_frame(self):
        """One row per conversation: id, facet answers, computed facets, what was embedded, cluster."""
        df = self.facets.to_frame()
        df["embedded_from"] = self.embedded_from
        df["cluster"] = self.clustering.labels
        if any(c.user_id for c in self.conversations):
            df["user_id"] = [c.user_id for c in self.conversations]
        return df

    def clusters_frame(self, n_examples: int = 3):
        """One row per base cluster: size and the summaries nearest its centroid."""
        import pandas as pd

        rows = []
        summaries = self.facets.values.get("request") or [None] * len(self.conversations)
        labels = self.clustering.labels
        for cid in sorted(set(labels.tolist())):
            idx = np.flatnonzero(labels == cid)
            centre = self.embeddings[idx].mean(axis=0)
            order = idx[np.argsort(-(self.embeddings[idx] @ centre))]
            central = [summaries[i] for i in order if summaries[i]][:n_examples]
            label = self.names[int(cid)] if self.names else None
            rows.append({"cluster": int(cid), "size": int(len(idx)),
                         "label": "unclustered" if cid == -1 else f"cluster {cid}",
                         "name": label.name if label else None,
                         "description": label.description if label else None,
                         "named_by": label.method if label else None,
                         "central_summaries": central})
        return pd.DataFrame(rows)

    def stats(self) -> dict[str, Any]:
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
            "failed_items": len(self.failures),
            "failures_by_step": _count(f["step"] for f in self.failures),
            "tokens": {"prompt": llm_total.prompt_tokens, "completion": llm_total.completion_tokens},
            "cost_usd": round(llm_total.cost_usd, 6) if llm_total.cost_known else None,
            "llm_by_step": {k: v.as_dict() for k, v in self.llm_stats.items()},
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "clusters": self.clustering.n_clusters,
            "unclustered": self.clustering.n_noise,
            "largest_cluster": max(sizes.values()) if sizes else 0,
            "truncated_conversations": sum(1 for c in self.facets.computed if c.get("truncated")),
            "load": self.load_report.summary() if self.load_report else None,
            "config": self.config,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``conversations.parquet``, ``clusters.csv``, ``failures.jsonl``, ``stats.json`` and
        ``report.html`` into ``out_dir``."""
        from .report import write_report

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(out / "conversations.parquet", index=False)
        clusters = self.clusters_frame()
        clusters.assign(central_summaries=clusters["central_summaries"].map(" | ".join)).to_csv(
            out / "clusters.csv", index=False)
        with (out / "failures.jsonl").open("w", encoding="utf-8") as fh:
            for f in self.failures:
                fh.write(json.dumps(f, ensure_ascii=False) + "\n")
        if self.load_report is not None:
            (out / "load_report.json").write_text(self.load_report.model_dump_json(indent=2), encoding="utf-8")
        (out / "stats.json").write_text(json.dumps(self.stats(), indent=2, default=str), encoding="utf-8")
        write_report(self, out / "report.html", clusters=clusters)
        return out


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


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
    naming: Literal["llm", "keywords"] | None = "llm",
    progress: bool = True,
) -> PipelineResult:
    """Run facets → embeddings → clustering → cluster naming on a corpus.

    Args:
        conversations: loaded conversations, or a path for :func:`~clio_lab.load_conversations`.
        llm: an :class:`~clio_lab.llm.LLM` or LiteLLM model name (default: the local model).
        embedder: embedder object or name (default: bundled all-MiniLM-L6-v2).
        embed_on: what is embedded and clustered: ``"summary"``, ``"text"``, ``"both"``, or ``"auto"``.
        method, k, random_state: passed to :func:`~clio_lab.cluster`.
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None`` (off).
        facets, examples: passed to :func:`~clio_lab.extract_facets`.
        prompts: your own prompt folder (default: the packaged ``prompts/``).
        naming: ``"llm"`` names clusters contrastively (keyword fallback), ``"keywords"`` with no model,
            ``None`` skips naming.

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
        raise ValueError("run_pipeline needs at least one conversation")
    model = llm if isinstance(llm, LLM) else LLM(model=llm) if llm else LLM()
    emb = get_embedder(embedder)
    store = resolve_cache(cache)
    on = resolve_embed_on(embed_on, model)
    timings: dict[str, float] = {}
    calls0, hits0 = COUNTER.calls, COUNTER.cache_hits

    t = time.perf_counter()
    fac = extract_facets(conversations, facets, llm=model, cache=store, embedder=emb, examples=examples,
                         prompts=prompts, progress=progress)
    timings["facets"] = time.perf_counter() - t

    t = time.perf_counter()
    texts, sources = texts_to_embed(conversations, fac.values.get("request", [None] * len(conversations)), on)
    X = embed(texts, emb, cache=store, progress=progress)
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    clustering = cluster(X, method=method, k=k, random_state=random_state, cache=store)
    timings["cluster"] = time.perf_counter() - t

    names = None
    if naming:
        t = time.perf_counter()
        names = label_clusters(fac.values.get("request", [None] * len(conversations)), X, clustering.labels,
                               method=naming, llm=model, cache=store, prompts=prompts, random_state=random_state,
                               embedder=emb, progress=progress)
        timings["naming"] = time.perf_counter() - t

    config = {"llm": model.get_params(), "embedder": emb.get_params(), "embed_on": on, "method": clustering.method,
              "k": clustering.params.get("k"), "random_state": random_state, "examples": examples,
              "facets": [f if isinstance(f, str) else f.name for f in facets], "naming": naming,
              "cache": str(store.directory) if store else None}
    return PipelineResult(conversations=conversations, facets=fac, embeddings=X, embedded_from=sources,
                          clustering=clustering, config=config, timings=timings,
                          llm_stats={"facets": fac.stats, **({"naming": names.stats} if names else {})},
                          embedding_calls=COUNTER.calls - calls0, embedding_cache_hits=COUNTER.cache_hits - hits0,
                          load_report=report, names=names)
