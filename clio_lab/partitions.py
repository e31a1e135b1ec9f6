"""Partitions: fixed top-level categories, with clusters and a hierarchy built inside each (open-clio's
partitions, the paper's per-facet breakdowns, BERTopic's guided topics).

``run_pipeline(convs, partitions=...)`` takes either

- a **field**: a facet the run extracts (``"language"``), a computed facet (``"turns"``) or a metadata key
  (``"product"``, read as ``meta_product``): each conversation's value is its partition, directly; a missing
  value is a partition of its own ("No <field>");
- **named categories**: ``[{"name": ..., "description": ...}, ...]`` (or ``(name, description)`` pairs, or
  plain names): each conversation goes to the category whose "name: description" embedding lies nearest the
  text the run embeds (:func:`assign_to_categories`; measured in ``benchmarks/partitions.py``).

Inside each partition the conversations are clustered on their own (k-means with k = ``default_k`` of the
partition's size, or the run's ``k`` shared out by size), the base clusters named the run's way, and one level
of parents built above them when every partition has more than three base clusters. The partitions form the top
level of the tree (method ``"partition"``): the thresholds apply to them as to any node, so a partition too small
to show is withheld like a cluster. A field's values come from the data, so the auditor rates them as it rates
cluster names; named categories are the user's own words and are not sent to it. Unclustered conversations (HDBSCAN's noise) form one
"Unclustered" group beside the partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .clustering import NOISE, Clustering, cluster, default_k
from .naming import UNCLUSTERED
from .tree import Hierarchy, Node, node_id

PARTITION_METHOD = "partition"


class PartitionError(ValueError):
    """A partition field or category list that cannot be used; the message names it."""


@dataclass
class Partitioning:
    """Each conversation's partition (an index into ``names``), how it was decided, and the counts."""

    labels: np.ndarray
    names: list[str]
    descriptions: list[str]
    source: str  # "field" or "categories"
    by: str  # the field's name, or "embedding similarity"
    similarity: np.ndarray | None = field(default=None, repr=False)  # to the chosen category (categories only)

    def given_ids(self, tree: Hierarchy) -> set[str]:
        """The top-level node ids whose names the user gave (named categories), which need no audit."""
        return {n.id for n in tree.top if n.method == PARTITION_METHOD} if self.source == "categories" else set()

    def counts(self) -> dict[str, int]:
        return {n: int((self.labels == i).sum()) for i, n in enumerate(self.names)}

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "by": self.by, "names": self.names, "descriptions": self.descriptions,
                "counts": self.counts()}


def _categories(spec: Sequence[Any]) -> tuple[list[str], list[str]]:
    names, descriptions = [], []
    for i, item in enumerate(spec):
        if isinstance(item, str):
            name, desc = item, ""
        elif isinstance(item, dict):
            if "name" not in item:
                raise PartitionError(f"partitions[{i}]: a category needs a 'name' (and may have a 'description')")
            name, desc = item["name"], item.get("description", "")
        elif isinstance(item, tuple | list) and len(item) == 2:
            name, desc = item
        else:
            raise PartitionError(f"partitions[{i}]: give a name, a {{'name', 'description'}} dict or a (name, description) "
                             f"pair, not {item!r}")
        if not str(name).strip():
            raise PartitionError(f"partitions[{i}]: empty category name")
        names.append(str(name).strip())
        descriptions.append(str(desc or "").strip())
    if len(set(names)) != len(names):
        raise PartitionError(f"partitions: category names repeat ({names})")
    if len(names) < 2:
        raise PartitionError("partitions: give at least two categories (one would be the whole corpus)")
    return names, descriptions


def assign_to_categories(X: np.ndarray, names: Sequence[str], descriptions: Sequence[str], *, embedder: Any = None,
                         cache: Any = "default") -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``X`` (embedded by ``embedder``) to the category whose "name: description" embedding is
    nearest (cosine); returns the category index and the similarity per row."""
    from .embeddings import embed

    texts = [f"{n}: {d}" if d else n for n, d in zip(names, descriptions, strict=True)]
    C = embed(texts, embedder, cache=cache)
    sims = np.asarray(X, dtype=np.float32) @ C.T
    best = sims.argmax(axis=1)
    return best.astype(int), sims[np.arange(len(X)), best]


def partition(conversations: Sequence[Any], spec: str | Sequence[Any], *, facet_values: dict[str, list[Any]],
              computed: list[dict[str, Any]], X: np.ndarray, embedder: Any = None, cache: Any = "default") -> Partitioning:
    """Decide each conversation's partition (see the module's docstring)."""
    if isinstance(spec, str):
        key = spec
        if key in facet_values:
            values = list(facet_values[key])
        elif computed and (key in computed[0] or f"meta_{key}" in computed[0] or
                           any(key in c or f"meta_{key}" in c for c in computed)):
            values = [c.get(key, c.get(f"meta_{key}")) for c in computed]
        else:
            known = sorted(set(facet_values) | {k.removeprefix("meta_") for c in computed[:50] for k in c})
            raise PartitionError(f"partitions={key!r}: no facet, computed facet or metadata field of that name "
                             f"(this run has: {', '.join(known)})")
        missing = f"No {key}"
        text = [missing if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                else str(v) for v in values]
        names = sorted(set(text) - {missing}, key=lambda n: (-text.count(n), n)) + ([missing] if missing in text else [])
        index = {n: i for i, n in enumerate(names)}
        descriptions = [f"Conversations with no {key}." if n == missing else f"Conversations whose {key} is {n}."
                        for n in names]
        return Partitioning(np.array([index[t] for t in text], dtype=int), names, descriptions, "field", key)
    names, descriptions = _categories(spec)
    labels, sims = assign_to_categories(X, names, descriptions, embedder=embedder, cache=cache)
    return Partitioning(labels, names, descriptions, "categories", "embedding similarity", sims)


def cluster_within(X: np.ndarray, parts: Partitioning, *, method: Any = "kmeans", k: int | None = None,
                   random_state: int = 0, cache: Any = "default") -> Clustering:
    """Base clusters inside each partition, numbered across the run (partition 0's first): no cluster spans two
    partitions. ``k``: the run's total, shared out by partition size (at least one each); default: each
    partition's ``default_k``."""
    labels = np.full(len(X), NOISE, dtype=np.int64)
    sizes = np.bincount(parts.labels, minlength=len(parts.names))
    offset = 0
    for p, n in enumerate(sizes):
        if n == 0:
            continue
        idx = np.flatnonzero(parts.labels == p)
        k_p = default_k(int(n)) if k is None else max(1, round(int(k) * n / len(X)))
        k_p = min(k_p, int(n))
        local = cluster(X[idx], method=method, k=k_p, random_state=random_state, cache=cache).labels
        kept = local != NOISE
        labels[idx[kept]] = local[kept] + offset
        offset += int(local.max()) + 1 if kept.any() else 0
    from .clustering import _centroids

    name = method if isinstance(method, str) else type(method).__name__
    return Clustering(labels=labels, method=name, params={"method": name, "k": k, "random_state": random_state,
                                                           "partitions": parts.by},
                      centroids=_centroids(np.asarray(X, np.float32), labels))


def build_partitioned(parts: Partitioning, labels: np.ndarray, names: Any, *, method: str,
                      summaries: Sequence[str | None], X: np.ndarray, requests: Sequence[str | None] | None = None,
                      users: Sequence[Any] | None = None, **build: Any) -> Hierarchy:
    """The tree: each partition's base clusters, one level of parents inside each partition when every partition
    has more than three base clusters, and the partitions on top."""
    from .hierarchy import build_hierarchy, level_sizes

    label_map = names.labels if hasattr(names, "labels") else dict(names)
    members = {p: np.flatnonzero((parts.labels == p) & (labels != NOISE)) for p in range(len(parts.names))}
    members = {p: idx for p, idx in members.items() if len(idx)}
    n_base = {p: len(np.unique(labels[idx])) for p, idx in members.items()}
    middle = bool(members) and all(n > 3 for n in n_base.values())
    top_level = 2 if middle else 1
    from .llm.client import CallStats

    nodes: dict[str, Node] = {}
    failures: list[dict[str, Any]] = []
    stats, pii = CallStats(), {}
    offset = 0
    for p, idx in members.items():
        # a partition's own tree: its base clusters (ids are the run's) and, with ``middle``, one level of parents
        sub = build_hierarchy(labels[idx], {c: label_map[c] for c in np.unique(labels[idx]) if c in label_map},
                              method=method, levels=[level_sizes(n_base[p])[-1]] if middle else [],
                              summaries=[summaries[i] for i in idx], X=X[idx],
                              requests=[requests[i] for i in idx] if requests is not None else None,
                              users=[users[i] for i in idx] if users is not None else None, **build)
        failures += sub.failures
        stats.add(sub.stats)
        for key, v in sub.pii.items():
            pii[key] = pii.get(key, 0) + v
        remap = {}
        for n in sub.level(1) if middle else []:
            remap[n.id] = node_id(1, n.index + offset)
        part = Node(node_id(top_level, p), top_level, p, parts.names[p], parts.descriptions[p], len(idx),
                    PARTITION_METHOD)
        for n in sub.nodes.values():
            if n.index == NOISE:
                continue
            copy = Node(remap.get(n.id, n.id), n.level, n.index + (offset if n.level == 1 else 0), n.name,
                        n.description, n.size, n.method, None, [], list(n.keywords))
            if n.level == top_level - 1:
                copy.parent = part.id
                part.children.append(copy.id)
            else:
                copy.parent = remap[n.parent]
            nodes[copy.id] = copy
        for n in nodes.values():
            if n.parent in remap.values() and n.id not in nodes[n.parent].children:
                nodes[n.parent].children.append(n.id)
        nodes[part.id] = part
        offset += len(sub.level(1)) if middle else 0
    if (labels == NOISE).any():  # one "Unclustered" group beside the partitions
        for lvl in range(top_level + 1):
            nodes[node_id(lvl, NOISE)] = Node(node_id(lvl, NOISE), lvl, NOISE, UNCLUSTERED, "",
                                              int((labels == NOISE).sum()), "fixed",
                                              node_id(lvl + 1, NOISE) if lvl < top_level else None,
                                              [node_id(lvl - 1, NOISE)] if lvl else [])
    tree = Hierarchy(nodes, np.asarray(labels, dtype=int), failures=failures, stats=stats, pii=pii,
                     config={"method": method, "levels": ([sum(1 for n in nodes.values() if n.level == 1
                                                               and n.index != NOISE)] if middle else [])
                             + [len(members)], "partitions": parts.by})
    tree.check()
    return tree
