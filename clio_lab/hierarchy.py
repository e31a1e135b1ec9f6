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

Level sizes shrink geometrically from the base to ``top`` (default: about sqrt of the base count), or are given
per level (``levels=[40, 10, 4]``, bottom up). ``method="keywords"`` builds the same shape of tree with no
model at all: parents by k-means on the clusters' conversation centroids, named by c-TF-IDF keywords.

Invariants (checked by :meth:`Hierarchy.check`): every conversation sits in exactly one base cluster; every
node below the top has exactly one parent one level up; a parent's size is the sum of its children's.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, resolve_cache
from .clustering import NOISE
from .llm.client import LLM, CallStats, LLMTask, ParseError, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts
from .naming import (
    MAX_NAME_WORDS,
    UNCLUSTERED,
    ClusterLabel,
    ClusterLabels,
    described_name_task,
    keyword_labels,
)

STEP_VERSION = 3  # 2-3: children's names (keyword labels, then all) are refused as proposals
NEIGHBOURHOOD_SIZE = 40  # clusters per neighbourhood in step b (the paper's figure)
SNAP_CUTOFF = 0.6        # difflib ratio an answer needs to count as naming a candidate in step e


@dataclass
class Node:
    """One cluster at one level. Ids are ``"<level>.<index>"``; index -1 is the unclustered group."""

    id: str
    level: int
    index: int
    name: str
    description: str
    size: int
    method: str
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


def node_id(level: int, index: int) -> str:
    return f"{level}.{index}"


@dataclass
class Hierarchy:
    """A tree of named clusters: level 0 holds the base clusters, the last level the top categories."""

    nodes: dict[str, Node]
    base_labels: np.ndarray
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    config: dict[str, Any] = field(default_factory=dict)
    pii: dict[str, int] = field(default_factory=dict)  # parent names re-asked / redacted for personal details

    @property
    def n_levels(self) -> int:
        return 1 + max(n.level for n in self.nodes.values()) if self.nodes else 0

    def level(self, i: int) -> list[Node]:
        """The nodes of level ``i`` (negative counts from the top), largest first, unclustered last."""
        i = i % self.n_levels
        return sorted((n for n in self.nodes.values() if n.level == i), key=lambda n: (n.index < 0, n.index))

    @property
    def top(self) -> list[Node]:
        return self.level(-1)

    def labels_at(self, level: int) -> np.ndarray:
        """Each conversation's cluster index at ``level``."""
        level = level % self.n_levels
        up: dict[int, int] = {}
        for node in self.level(0):
            n = node
            while n.level < level:
                n = self.nodes[n.parent]  # type: ignore[index]
            up[node.index] = n.index
        return np.array([up[int(c)] for c in self.base_labels], dtype=int)

    def path(self, i: int) -> list[Node]:
        """Conversation ``i``'s nodes from its base cluster to the top."""
        n = self.nodes[node_id(0, int(self.base_labels[i]))]
        out = [n]
        while n.parent is not None:
            n = self.nodes[n.parent]
            out.append(n)
        return out

    def to_frame(self):
        """One row per node: level, id, index, name, description, size, parent, children count, method."""
        import pandas as pd

        rows = [{**{k: v for k, v in asdict(n).items() if k not in ("children",)}, "n_children": len(n.children)}
                for lvl in range(self.n_levels) for n in self.level(lvl)]
        df = pd.DataFrame(rows)
        df["keywords"] = df["keywords"].map(lambda k: ", ".join(k))
        return df

    def to_tree(self) -> dict[str, Any]:
        """The tree as nested dicts (JSON-ready), under a root that holds the top level."""

        def node(n: Node) -> dict[str, Any]:
            return {"id": n.id, "level": n.level, "name": n.name, "description": n.description, "size": n.size,
                    "method": n.method, "children": [node(self.nodes[c]) for c in self._sorted(n.children)]}

        top = self.top
        return {"id": "root", "level": self.n_levels, "name": "All conversations", "description": "",
                "size": sum(n.size for n in top), "method": "root", "children": [node(n) for n in top]}

    def _sorted(self, ids: Sequence[str]) -> list[str]:
        return sorted(ids, key=lambda i: (self.nodes[i].index < 0, -self.nodes[i].size, self.nodes[i].index))

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], base_labels: Sequence[int], **kw: Any) -> Hierarchy:
        """Rebuild from :meth:`to_frame`-style rows (a saved run)."""
        nodes = {}
        for r in records:
            kws = r.get("keywords") or []
            if isinstance(kws, str):
                kws = [k for k in kws.split(", ") if k]
            parent = r.get("parent")
            nodes[r["id"]] = Node(r["id"], int(r["level"]), int(r["index"]), r["name"], r["description"],
                                  int(r["size"]), r["method"], parent if isinstance(parent, str) else None, [],
                                  list(kws))
        for n in nodes.values():
            if n.parent is not None:
                nodes[n.parent].children.append(n.id)
        return cls(nodes, np.asarray(base_labels, dtype=int), **kw)

    def check(self) -> None:
        """Raise ``AssertionError`` naming the node if an invariant of the tree is broken."""
        top = self.n_levels - 1
        base = {n.index for n in self.level(0)}
        missing = set(self.base_labels.tolist()) - base
        assert not missing, f"conversations in base clusters that have no node: {sorted(missing)}"
        counts = {c: int((self.base_labels == c).sum()) for c in base}
        for n in self.nodes.values():
            if n.level == 0:
                assert n.size == counts[n.index], f"{n.id}: size {n.size} but {counts[n.index]} conversations"
                assert not n.children, f"{n.id}: a base cluster has children"
            else:
                assert n.children, f"{n.id}: a parent with no children"
                total = sum(self.nodes[c].size for c in n.children)
                assert n.size == total, f"{n.id}: size {n.size} but its children hold {total}"
            if n.level < top:
                assert n.parent is not None, f"{n.id}: no parent below the top level"
                p = self.nodes[n.parent]
                assert p.level == n.level + 1, f"{n.id}: parent {p.id} is not one level up"
                assert n.id in p.children, f"{n.id}: not among its parent's children"
            else:
                assert n.parent is None, f"{n.id}: a top-level node with a parent"
            for c in n.children:
                assert self.nodes[c].parent == n.id, f"{c}: listed under {n.id} but its parent is another"
            assert n.name.strip(), f"{n.id}: empty name"


def level_sizes(n_base: int, *, top: int | None = None, shrink: float = 5.0) -> list[int]:
    """Geometric level sizes above ``n_base`` base clusters, bottom up, ending at ``top``.

    ``top`` defaults to about sqrt(n_base) (at least 2); the number of levels is the fewest for which no level
    shrinks by more than ``shrink`` times, and level l holds n_base * (top / n_base) ** (l / L) clusters
    (the paper's rule). Three or fewer base clusters get no parent level.

    Example:
        >>> level_sizes(14), level_sizes(316), level_sizes(3)
        ([4], [75, 18], [])
    """
    if n_base <= 3:
        return []
    top = top if top is not None else max(2, round(math.sqrt(n_base)))
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


# ----------------------------------------------------------------------------------------------- parsing
def parse_categories(raw: str, *, low: int, high: int, banned: Sequence[str] = ()) -> list[str]:
    """Parse ``- name`` lines; keep at most ``high`` distinct names of 1 to 10 words; need at least ``low``."""
    banned_l = {b.lower().rstrip(".") for b in banned}
    names: dict[str, str] = {}
    for line in ("-" + raw).splitlines():
        line = line.strip()
        if not line.startswith("-"):
            continue
        name = line.lstrip("-*• ").strip().strip('"').rstrip(".").strip()
        if (not re.search(r"[^\W\d_]{3}", name) or len(name.split()) > MAX_NAME_WORDS
                or name.lower() in banned_l):
            continue
        names.setdefault(name.lower(), name)
    out = list(names.values())[:high]
    if len(out) < low:
        raise ParseError(f"needed at least {low} usable category names, got {out!r} from {raw[:160]!r}")
    return out


def snap(answer: str, candidates: Sequence[str]) -> int:
    """Index of the candidate an answer names: exact, containment, then the closest by difflib ratio
    (at least :data:`SNAP_CUTOFF`); :class:`ParseError` when none is close."""
    a = " ".join(answer.strip().split("\n", 1)[0].lstrip("-* ").strip().strip('"').rstrip(".").lower().split())
    lows = [" ".join(c.lower().rstrip(".").split()) for c in candidates]
    if a in lows:
        return lows.index(a)
    contained = [i for i, c in enumerate(lows) if a and (c in a or a in c) and len(a) >= 8]
    if len(contained) == 1:
        return contained[0]
    ratios = [difflib.SequenceMatcher(None, a, c).ratio() for c in lows]
    best = int(np.argmax(ratios))
    if ratios[best] < SNAP_CUTOFF:
        raise ParseError(f"answer {answer[:80]!r} names none of the candidates")
    return best


# ----------------------------------------------------------------------------------------------- building
def _desc(n: Node | ClusterLabel) -> str:
    return f"{n.name}: {n.description}"


def _normed(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _kmeans(V: np.ndarray, k: int, random_state: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(V)))
    if k == 1:
        return np.zeros(len(V), dtype=int)
    return KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(V)


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


def _attach(nodes: dict[str, Node], level: int, groups: list[list[Node]], named: list[dict[str, Any]]) -> list[Node]:
    """Make level ``level`` from child groups and their names; indices by size, largest first."""
    order = sorted(range(len(groups)), key=lambda g: (-sum(c.size for c in groups[g]), g))
    parents = []
    for index, g in enumerate(order):
        p = Node(node_id(level, index), level, index, size=sum(c.size for c in groups[g]),
                 children=[c.id for c in groups[g]], **named[g])
        for c in groups[g]:
            c.parent = p.id
        nodes[p.id] = p
        parents.append(p)
    return parents


def _carry_noise(nodes: dict[str, Node], level: int) -> None:
    below = nodes.get(node_id(level - 1, NOISE))
    if below is not None:
        n = Node(node_id(level, NOISE), level, NOISE, below.name, below.description, below.size, "fixed",
                 children=[below.id])
        below.parent = n.id
        nodes[n.id] = n


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
        top: the top level's size for the geometric default.
        embedder: embeds names and descriptions (steps a, d and the step-e fallback); default the bundled one.
        summaries, X: per-conversation summaries and embeddings; needed by ``method="keywords"``. Without
            them ``method="extractive"`` groups and names parents from the base clusters' names alone.
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` or ``False``: parent names and descriptions
            with personal details are re-asked, then kept redacted.

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
        build_levels(tree, sizes, summaries, np.asarray(X, dtype=np.float32), embedder=model,
                     cache=store, detector=resolve_detector(pii))
    elif method == "llm":
        model = resolve_llm(llm)
        lib = resolve_prompts(prompts)
        from .pii import resolve_detector

        builder = _LLMBuilder(tree, model, get_embedder(embedder), lib, store, random_state, progress,
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
    Xn = _normed(X)
    for lvl, target in enumerate(sizes, 1):
        children = [n for n in tree.level(lvl - 1) if n.index != NOISE]
        if not children:  # everything unclustered: only the unclustered group climbs
            _carry_noise(tree.nodes, lvl)
            continue
        conv = tree.labels_at(lvl - 1)
        cent = _normed(np.stack([Xn[conv == c.index].mean(axis=0) for c in children]))
        groups_of = _kmeans(cent, target, random_state)
        groups = [[c for c, g in zip(children, groups_of, strict=True) if g == k] for k in sorted(set(groups_of))]
        parent_of_child = {c.index: k for k, grp in enumerate(groups) for c in grp}
        conv_parent = np.array([parent_of_child.get(int(c), NOISE) for c in conv])
        kw = keyword_labels(summaries, Xn, conv_parent)
        named = [{"name": kw[k].name, "description": kw[k].description, "method": "keywords",
                  "keywords": kw[k].keywords} for k in range(len(groups))]
        _attach(tree.nodes, lvl, groups, named)
        _carry_noise(tree.nodes, lvl)


class _LLMBuilder:
    """Steps a to f for one level at a time, every model call cached and every fallback recorded."""

    def __init__(self, tree: Hierarchy, llm: LLM, embedder: Any, lib: PromptLibrary, store: Any,
                 random_state: int, progress: bool, detector: Any = None) -> None:
        self.detector = detector
        self.tree, self.llm, self.embedder, self.lib, self.store = tree, llm, embedder, lib, store
        self.random_state, self.progress = random_state, progress
        self.n_nearby = 3 if llm.is_local else 10
        # the local model's context (4,096 tokens) takes names only in the proposal prompt
        self.with_descriptions = not llm.is_local
        self.ex_propose = lib.examples("hierarchy_propose", required=("clusters", "low", "high", "categories"))
        self.ex_assign = lib.examples("hierarchy_assign", required=("categories", "name", "description", "answer"))
        self.ex_rename = lib.examples("hierarchy_rename", required=("children", "description", "name"))
        self.origin: dict[str, str] = {}  # candidate name -> how it was written, when not proposed by the LLM

    def _embed(self, texts: list[str]) -> np.ndarray:
        from .embeddings import embed

        return _normed(embed(texts, self.embedder, cache=self.store, progress=False))

    def _run(self, tasks: list[LLMTask], desc: str):
        outcomes, stats = self.llm.run(tasks, cache=self.store, desc=desc, progress=self.progress)
        self.tree.stats.add(stats)
        return outcomes

    def _fail(self, step: str, item: str, outcome: Any, fallback: str) -> None:
        self.tree.failures.append({"id": item, "step": f"hierarchy_{step}", "reason": outcome.error,
                                   "raw": outcome.raw, "fallback": fallback})

    def level(self, lvl: int, target: int) -> None:
        children = [n for n in self.tree.level(lvl - 1) if n.index != NOISE]
        if not children:
            _carry_noise(self.tree.nodes, lvl)
            return
        target = max(1, min(target, len(children) - 1))  # an earlier level may have come out smaller
        V = self._embed([_desc(c) for c in children])                      # a.
        nb = _kmeans(V, math.ceil(len(children) / NEIGHBOURHOOD_SIZE), self.random_state)  # b.
        candidates = self._propose(lvl, target, children, V, nb)            # c.
        candidates, C = self._dedupe(candidates, target)                    # d.
        choice = self._assign(lvl, children, V, candidates, C)              # e.
        groups = [[c for c, k in zip(children, choice, strict=True) if k == j] for j in range(len(candidates))]
        kept = [j for j, g in enumerate(groups) if g]
        named = self._rename(lvl, [candidates[j] for j in kept], [groups[j] for j in kept], C[kept])  # f.
        _attach(self.tree.nodes, lvl, [groups[j] for j in kept], named)
        _carry_noise(self.tree.nodes, lvl)

    # c. -----------------------------------------------------------------------------------------------
    def _propose(self, lvl: int, target: int, children: list[Node], V: np.ndarray, nb: np.ndarray) -> list[str]:
        tasks, fallback = [], {}
        # a worked example's category, or a child's own name (a parent must be broader; a keyword label was
        # not written by the model at all), is no proposal
        banned = [c for ex in self.ex_propose for c in ex["categories"]] + [c.name for c in children]
        for h in sorted(set(nb.tolist())):
            inside = np.flatnonzero(nb == h)
            want = max(1, round(target * len(inside) / len(children)))
            low, high = max(1, math.ceil(0.5 * want)), max(1, min(len(inside), math.ceil(1.5 * want)))
            centre = V[inside].mean(axis=0)
            outside = np.flatnonzero(nb != h)
            near = outside[np.argsort(-(V[outside] @ centre))][: self.n_nearby]
            show = _desc if self.with_descriptions else (lambda n: n.name)
            prompt = self.lib.render(
                "hierarchy_propose.j2", prefill="Categories:\n-", prefill_joiner="\n", examples=self.ex_propose,
                clusters=[show(children[i]) for i in inside], nearby=[show(children[i]) for i in near],
                low=low, high=high, stop=("\n\n", "\nClusters:", "\nNumber of", "\nNearby"))
            tasks.append(LLMTask(
                item_id=f"{lvl}:{h}", prompt=prompt, max_tokens=24 * high + 16,
                parse=lambda raw, lo=low, hi=high, b=banned: self._clean_proposals(
                    parse_categories(raw, low=lo, high=hi, banned=b), lo),
                key_parts={"step": "hierarchy_propose", "version": STEP_VERSION,
                           **({"pii": self.detector.get_params()} if self.detector is not None else {})}))
            # fallback: the names of the clusters nearest the centres of `want` groups in this neighbourhood
            sub = _kmeans(V[inside], want, self.random_state)
            central = []
            for g in sorted(set(sub.tolist())):
                members = inside[sub == g]
                child = children[members[np.argmax(V[members] @ V[members].mean(axis=0))]]
                central.append(child.name)
                self.origin.setdefault(child.name, child.method)
            fallback[f"{lvl}:{h}"] = central
        out: list[str] = []
        for o in self._run(tasks, f"hierarchy level {lvl}: propose"):
            if o.ok:
                out.extend(o.value)
            else:
                self._fail("propose", o.item_id, o, "names of central clusters")
                out.extend(fallback[o.item_id])
        return out

    def _clean_proposals(self, names: list[str], low: int) -> list[str]:
        """Drop proposed names with personal details (they could become parent names)."""
        if self.detector is None:
            return names
        kept = [n for n in names if not self.detector.has_pii(n)]
        if len(kept) < low:
            raise ParseError(f"personal details in the proposed categories: {len(names) - len(kept)} dropped")
        return kept

    # d. -----------------------------------------------------------------------------------------------
    def _dedupe(self, candidates: list[str], target: int) -> tuple[list[str], np.ndarray]:
        unique = list({c.lower(): c for c in reversed(candidates)}.values())[::-1]
        C = self._embed(unique)
        if len(unique) <= target:
            return unique, C
        from sklearn.cluster import AgglomerativeClustering

        groups = AgglomerativeClustering(n_clusters=target, metric="cosine", linkage="average").fit_predict(C)
        keep = []
        for g in sorted(set(groups.tolist())):
            idx = np.flatnonzero(groups == g)
            keep.append(int(idx[np.argmax(C[idx] @ C[idx].mean(axis=0))]))
        keep.sort()
        return [unique[i] for i in keep], C[keep]

    # e. -----------------------------------------------------------------------------------------------
    def _assign(self, lvl: int, children: list[Node], V: np.ndarray, candidates: list[str],
                C: np.ndarray) -> list[int]:
        if len(candidates) == 1:
            return [0] * len(children)
        tasks = [self._assign_task(child, candidates) for child in children]
        nearest = np.argmax(V @ C.T, axis=1)
        choice = {c.id: int(nearest[i]) for i, c in enumerate(children)}
        for o in self._run(tasks, f"hierarchy level {lvl}: assign"):
            if o.ok:
                choice[o.item_id] = candidates.index(o.value)
            else:
                self._fail("assign", o.item_id, o, "nearest candidate by embedding")
        return [choice[c.id] for c in children]

    def _assign_task(self, child: Node, candidates: list[str]) -> LLMTask:
        """Step e for one cluster. The candidates are shown in a seeded random order; a re-ask shows them
        in another order (the local model answers the same prompt the same way at temperature 0)."""
        shown: list[str] = []

        def render(attempt: int):
            order = list(candidates)
            random.Random(f"{self.random_state}:{child.id}:{attempt}").shuffle(order)
            shown[:] = order
            return self.lib.render("hierarchy_assign.j2", prefill="Best category:", examples=self.ex_assign,
                                   categories=order, cluster_name=child.name,
                                   cluster_description=child.description, stop=("\n",))

        def parse(raw: str) -> str:
            if raw.strip().lower().rstrip(".") == child.name.lower() and child.name not in candidates:
                raise ParseError("repeated the cluster's own name")
            return shown[snap(raw, shown)]

        return LLMTask(item_id=child.id, prompt=render(0), parse=parse, max_tokens=32,
                       retry_prompt=lambda attempt, error: render(attempt + 1),
                       key_parts={"step": "hierarchy_assign", "version": STEP_VERSION})

    # f. -----------------------------------------------------------------------------------------------
    def _rename(self, lvl: int, proposed: list[str], groups: list[list[Node]], C: np.ndarray) -> list[dict]:
        n_show = 12 if self.llm.is_local else 40
        tasks = []
        for j, (name, grp) in enumerate(zip(proposed, groups, strict=True)):
            others = [k for k in np.argsort(-(C @ C[j])) if k != j]
            nearby = [_desc(c) for k in others[:2] for c in sorted(groups[k], key=lambda n: -n.size)][: self.n_nearby]
            kids = [_desc(c) for c in sorted(grp, key=lambda n: -n.size)][:n_show]
            tasks.append(described_name_task(
                f"{lvl}:{j}:{name}",
                lambda shown, prefill, kids=kids, nearby=nearby: self.lib.render(
                    "hierarchy_rename.j2", prefill=prefill, prefill_joiner="\n", examples=shown, children=kids,
                    nearby=nearby, stop=("\n\n", "\nClusters in")),
                self.ex_rename, "hierarchy_rename", STEP_VERSION, detector=self.detector))
        named = []
        outcomes = self._run(tasks, f"hierarchy level {lvl}: rename")
        from .pii import pii_counts

        for k, v in pii_counts(outcomes, self.detector is not None).items():
            self.tree.pii[k] = self.tree.pii.get(k, 0) + v
        for o, name, grp in zip(outcomes, proposed, groups, strict=True):
            if o.ok:
                named.append({"name": o.value["name"], "description": o.value["description"], "method": "llm"})
            else:
                self._fail("rename", o.item_id, o, "the proposed name")
                kids = "; ".join(c.name for c in sorted(grp, key=lambda n: -n.size)[:3])
                origin = self.origin.get(name)
                # honest about where the kept name came from: an LLM proposal, or a child's (keyword) label
                method = "llm (proposed name)" if origin is None else \
                    "keywords (llm failed)" if origin.startswith("keywords") else f"{origin} (a child's name)"
                named.append({"name": name, "description": f"Clusters such as: {kids}.", "method": method})
        return named
