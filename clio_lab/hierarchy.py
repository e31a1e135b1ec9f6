"""Step 5: the cluster hierarchy, built level by level from the base clusters up (Clio, section 3.4).

Per level, the paper's steps a to f:

a. embed every cluster's name and description;
b. group the clusters into neighbourhoods with k-means (about 40 clusters each);
c. for each neighbourhood, with the nearest clusters outside it as context, the LLM proposes between 0.5x and
   1.5x the neighbourhood's share of the level's target number of parent categories;
d. the proposals are de-duplicated across neighbourhoods: exact repeats merged, then, while there are more
   than the target, the names are grouped by embedding (average-linkage, cosine) and each group keeps its most
   central name. (The paper asks the LLM to de-duplicate; grouping by embedding has no failure mode on a small
   model, and every surviving parent is renamed by the LLM in step f anyway.)
e. the LLM places each cluster in one candidate, the candidate list shuffled per cluster against order bias;
   the answer is snapped onto the nearest candidate name (an unusable answer falls back to the nearest
   candidate by embedding, and is counted);
f. each parent that received clusters is renamed by the LLM from the clusters it received, in contrast to the
   clusters of the nearest other parents (two-sentence description and a name).

Level sizes shrink geometrically from the base to ``top`` (default: about 1.5 sqrt of the base count; for the
extractive tree, as many nodes as the base clusters' relatedness calls for, up to 20: see
:func:`clio_lab.extractive.top_size`), or are given per level (``levels=[40, 10, 4]``, bottom up).
``method="keywords"`` builds the same shape of tree with no model at all: parents by k-means on the clusters'
conversation centroids, named by c-TF-IDF keywords.

The tree model itself (nodes, levels, invariants) is :mod:`clio_lab.tree`; the paper's LLM steps are
:mod:`clio_lab.hierarchy_llm`, the extractive builder :mod:`clio_lab.extractive`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, resolve_cache
from .clustering import NOISE, kmeans_groups
from .embeddings import l2_normalise, unit_rows
from .hierarchy_llm import SNAP_CUTOFF, STEP_VERSION, parse_categories, snap  # noqa: F401  (public here since 0.1)
from .llm.client import LLM, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts
from .naming import UNCLUSTERED, ClusterLabel, ClusterLabels, keyword_labels
from .tree import Hierarchy, Node, Status, TreeError, attach_parents, carry_unclustered, node_id  # noqa: F401

# The default top level holds about this many times sqrt(n_base) nodes. sqrt alone gave the bundled corpus's 17
# base clusters a top of 4 whose largest node held half the conversations or more; on the development split
# (five 200-conversation corpora and 2,000 conversations, 15 known categories) 1.5 sqrt raised the top level's
# ARI on all six and shrank its largest node; 2 sqrt raised it further but left parents of two children on
# small runs (BENCHMARKS.md, "Cluster names and trees").
TOP_PER_SQRT = 1.5


def level_sizes(n_base: int, *, top: int | None = None, shrink: float = 5.0) -> list[int]:
    """Geometric level sizes above ``n_base`` base clusters, bottom up, ending at ``top``.

    ``top`` defaults to about 1.5 sqrt(n_base) (at least 2; :data:`TOP_PER_SQRT`); the number of levels is the
    fewest for which no level shrinks by more than ``shrink`` times, and level l holds
    n_base * (top / n_base) ** (l / L) clusters (the paper's rule). Three or fewer base clusters get no parent level.

    Example:
        >>> level_sizes(14), level_sizes(316), level_sizes(3)
        ([6], [92, 27], [])
    """
    if n_base <= 3:
        return []
    top = top if top is not None else max(2, round(TOP_PER_SQRT * math.sqrt(n_base)))
    if not 1 <= top < n_base:
        raise ValueError(f"top must be between 1 and {n_base - 1} (the base has {n_base} clusters), not {top}")
    steps = max(1, math.ceil(math.log(n_base / top) / math.log(shrink) - 1e-9))
    sizes = [max(top, round(n_base * (top / n_base) ** (lvl / steps))) for lvl in range(1, steps + 1)]
    out: list[int] = []
    for s in sizes:
        if not out or s < out[-1]:
            out.append(s)
    return out


def check_levels(levels: Sequence[int], n_base: int) -> list[int]:
    levels = [int(v) for v in levels]
    below = n_base
    for i, v in enumerate(levels, 1):
        if not 1 <= v < below:
            raise ValueError(f"levels[{i - 1}] = {v}: each level must hold fewer clusters than the one below "
                             f"({below}) and at least 1")
        below = v
    return levels


def _base_nodes(labels: np.ndarray, names: Mapping[int, ClusterLabel]) -> dict[str, Node]:
    nodes = {}
    for c in sorted(set(labels.tolist())):
        lab = names.get(int(c))
        size = int((labels == c).sum())
        if lab is None:
            lab = ClusterLabel(int(c), UNCLUSTERED if c == NOISE else f"cluster {c}", "", "none", size)
        nodes[node_id(0, c)] = Node(node_id(0, c), 0, int(c), lab.name, lab.description, size, lab.method,
                                    keywords=list(lab.keywords))
    return nodes


def build_hierarchy(
    labels: Sequence[int] | np.ndarray,
    names: ClusterLabels | Mapping[int, ClusterLabel],
    *,
    method: Literal["auto", "llm", "extractive", "keywords"] = "auto",
    levels: Sequence[int] | None = None,
    top: int | None = None,
    llm: LLM | str | None = None,
    embedder: Any = None,
    summaries: Sequence[str | None] | None = None,
    X: np.ndarray | None = None,
    cache: CacheLike | str = "default",
    prompts: PromptLibrary | str | None = None,
    random_state: int = 0,
    pii: Any = "auto",
    progress: bool = True,
    requests: Sequence[str | None] | None = None,
    users: Sequence[Any] | None = None,
    min_word_users: int | None = None,
) -> Hierarchy:
    """Build the tree above the base clusters.

    Args:
        labels: base cluster id per conversation (``-1`` = unclustered; carried up as its own node).
        names: the base clusters' names (:func:`~clio_lab.label_clusters`).
        method: ``"llm"`` (the paper's steps a to f; every level named by the model), ``"extractive"`` (parents
            by agglomerative clustering of the centres below, named by the member summary that best tells
            them apart: :func:`clio_lab.extractive.build_levels`), ``"keywords"`` (no model), or ``"auto"``:
            extractive with the local model, llm with hosted ones.
        levels: clusters per level above the base, bottom up (e.g. ``[40, 10, 4]``); default geometric, see
            :func:`level_sizes`. A level can end up smaller than asked when candidates receive no clusters.
        top: the top level's size for the geometric default. Default about 1.5 sqrt of the base count; with
            ``method="extractive"`` and ``X``, :func:`clio_lab.extractive.top_size` (parents only where base
            clusters are related: on small corpora most clusters stay on their own at the top).
        embedder: embeds names and descriptions (steps a, d and the step-e fallback); default the bundled one.
        summaries, X: per-conversation summaries and embeddings; needed by ``method="keywords"``. Without
            them ``method="extractive"`` groups and names parents from the base clusters' names alone.
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` or ``False``: parent names and descriptions
            with personal details are re-asked, then kept redacted.
        requests, users, min_word_users: for ``"extractive"``, parents are named like base clusters (see
            :func:`~clio_lab.label_clusters`).

    Example:
        >>> tree = build_hierarchy(clusters.labels, names, levels=[4])  # doctest: +SKIP
        >>> [n.name for n in tree.top]  # doctest: +SKIP
        ['Write and debug code for software projects', ...]
    """
    from .embeddings import get_embedder
    from .naming import resolve_method

    method = resolve_method(method, llm)
    labels = np.asarray(labels, dtype=int)
    label_map = names.labels if isinstance(names, ClusterLabels) else dict(names)
    nodes = _base_nodes(labels, label_map)
    n_base = sum(1 for n in nodes.values() if n.index != NOISE)
    if levels is None and top is None and method == "extractive" and X is not None and n_base > 3:
        from .extractive import top_size  # parents only where the base clusters are related

        top = top_size(X, labels, sorted(n.index for n in nodes.values() if n.index != NOISE),
                       least=level_sizes(n_base)[-1])
    sizes = check_levels(levels, n_base) if levels is not None else level_sizes(n_base, top=top)
    store = resolve_cache(cache)
    config = {"method": method, "levels": sizes, "random_state": random_state}
    tree = Hierarchy(nodes, labels, config=config)
    if method == "keywords":
        if summaries is None or X is None:
            raise ValueError("method='keywords' needs the conversations' summaries and embeddings (summaries=, X=)")
        _build_keywords(tree, sizes, summaries, np.asarray(X, dtype=np.float32), random_state)
    elif method == "extractive":
        from .extractive import build_levels
        from .pii import resolve_detector

        model = get_embedder(embedder)
        if summaries is None or X is None:
            # Without the conversations' own answers, each base cluster's name stands in for its members.
            summaries, X = _names_as_members(labels, label_map, model, store)
        from .extractive import MIN_WORD_USERS

        build_levels(tree, sizes, summaries, np.asarray(X, dtype=np.float32), embedder=model,
                     cache=store, detector=resolve_detector(pii), requests=requests, users=users,
                     min_word_users=min_word_users or MIN_WORD_USERS)
    elif method == "llm":
        model = resolve_llm(llm)
        lib = resolve_prompts(prompts)
        from .hierarchy_llm import LLMBuilder
        from .pii import resolve_detector

        builder = LLMBuilder(tree, model, get_embedder(embedder), lib, store, random_state, progress,
                              resolve_detector(pii))
        for lvl, target in enumerate(sizes, 1):
            builder.level(lvl, target)
        config["llm"] = model.get_params()
    else:
        raise ValueError(f"method must be 'auto', 'llm', 'extractive' or 'keywords', not {method!r}")
    tree.check()
    return tree


def _names_as_members(labels: np.ndarray, label_map: dict[int, Any], embedder: Any,
                      store: Any) -> tuple[list[str | None], np.ndarray]:
    """Per-conversation stand-ins for ``build_hierarchy(method="extractive")`` called without summaries and
    embeddings: every conversation carries its base cluster's name (None when unclustered) and that name's
    embedding, so parents are grouped by their children's names and named from them."""
    from .embeddings import embed

    ids = [int(c) for c in np.unique(labels) if int(c) in label_map]
    names = [label_map[c].name for c in ids]
    V = embed(names, embedder, cache=store) if names else np.zeros((0, 1), dtype=np.float32)
    row = {c: i for i, c in enumerate(ids)}
    summaries = [names[row[int(c)]] if int(c) in row else None for c in labels]
    X = np.zeros((len(labels), V.shape[1]), dtype=np.float32)
    for c, i in row.items():
        X[labels == c] = V[i]
    return summaries, X


def _build_keywords(tree: Hierarchy, sizes: list[int], summaries: Sequence[str | None], X: np.ndarray,
                    random_state: int) -> None:
    Xn = unit_rows(X)
    for lvl, target in enumerate(sizes, 1):
        children = [n for n in tree.level(lvl - 1) if n.index != NOISE]
        if not children:  # everything unclustered: only the unclustered group climbs
            carry_unclustered(tree.nodes, lvl)
            continue
        conv = tree.labels_at(lvl - 1)
        cent = l2_normalise(np.stack([Xn[conv == c.index].mean(axis=0) for c in children]))
        groups_of = kmeans_groups(cent, target, random_state)
        groups = [[c for c, g in zip(children, groups_of, strict=True) if g == k] for k in sorted(set(groups_of))]
        parent_of_child = {c.index: k for k, grp in enumerate(groups) for c in grp}
        conv_parent = np.array([parent_of_child.get(int(c), NOISE) for c in conv])
        kw = keyword_labels(summaries, Xn, conv_parent)
        named = [{"name": kw[k].name, "description": kw[k].description, "method": "keywords",
                  "keywords": kw[k].keywords} for k in range(len(groups))]
        attach_parents(tree.nodes, lvl, groups, named)
        carry_unclustered(tree.nodes, lvl)
