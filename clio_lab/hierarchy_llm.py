"""The paper's hierarchy steps a to f with a model (Clio, section 3.4): :func:`clio_lab.build_hierarchy` with
``method="llm"`` runs :class:`LLMBuilder` once per level. See :mod:`clio_lab.hierarchy` for the steps.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .clustering import NOISE, kmeans_groups
from .embeddings import l2_normalise
from .llm.client import LLM, LLMTask, ParseError, PersonalDetailsInAnswer
from .llm.prompts import PromptLibrary
from .naming import MAX_NAME_WORDS, ClusterLabel, described_name_task
from .tree import Hierarchy, Node, attach_parents, carry_unclustered

STEP_VERSION = 3  # 2-3: children's names (keyword labels, then all) are refused as proposals
NEIGHBOURHOOD_SIZE = 40  # clusters per neighbourhood in step b (the paper's figure)
SNAP_CUTOFF = 0.6        # difflib ratio an answer needs to count as naming a candidate in step e


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


def _desc(n: Node | ClusterLabel) -> str:
    return f"{n.name}: {n.description}"


class LLMBuilder:
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

        return l2_normalise(embed(texts, self.embedder, cache=self.store, progress=False))

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
            carry_unclustered(self.tree.nodes, lvl)
            return
        target = max(1, min(target, len(children) - 1))  # an earlier level may have come out smaller
        V = self._embed([_desc(c) for c in children])                      # a.
        nb = kmeans_groups(V, math.ceil(len(children) / NEIGHBOURHOOD_SIZE), self.random_state)  # b.
        candidates = self._propose(lvl, target, children, V, nb)            # c.
        candidates, C = self._dedupe(candidates, target)                    # d.
        choice = self._assign(lvl, children, V, candidates, C)              # e.
        groups = [[c for c, k in zip(children, choice, strict=True) if k == j] for j in range(len(candidates))]
        kept = [j for j, g in enumerate(groups) if g]
        named = self._rename(lvl, [candidates[j] for j in kept], [groups[j] for j in kept], C[kept])  # f.
        attach_parents(self.tree.nodes, lvl, [groups[j] for j in kept], named)
        carry_unclustered(self.tree.nodes, lvl)

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
            sub = kmeans_groups(V[inside], want, self.random_state)
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
            raise PersonalDetailsInAnswer(f"personal details in the proposed categories: {len(names) - len(kept)} "
                                          "dropped")
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
