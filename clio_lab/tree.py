"""The cluster tree: nodes, levels and the tree's invariants, apart from the code that builds it.

A :class:`Hierarchy` holds level 0 (the base clusters) up to the top categories; each :class:`Node` says how it
was named (``method``: "llm", "extractive", "keywords", "fixed" for the unclustered and withheld groups, ...) and,
separately, what may be shown of it (``status``, set only by :func:`clio_lab.release.release_tree`).

Invariants (checked by :meth:`Hierarchy.check`): every conversation sits in exactly one base cluster; every
node below the top has exactly one parent one level up; a parent's size is the sum of its children's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from .clustering import NOISE
from .llm.client import CallStats


class Status(StrEnum):
    """What the release step lets a view show of a node."""

    SHOWN = "shown"                   # name, description, members
    WITHHELD = "withheld"             # an "Other (withheld)" pool: only its size
    NAME_WITHHELD = "name withheld"   # a category whose text failed the audit: its place and size, no text


# how runs saved before ``status`` existed marked withheld nodes (in ``method``)
LEGACY_STATUS = {"withheld": Status.WITHHELD.value, "withheld name": Status.NAME_WITHHELD.value}


class TreeError(ValueError):
    """An invariant of the tree is broken; the message names the node."""


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
    status: Status = Status.SHOWN  # what the release step decided may be shown (``method`` says how it was named)

    @property
    def shows_text(self) -> bool:
        """Its name and description are shown (not withheld, and not the name-withheld mask)."""
        return self.status is Status.SHOWN

    @property
    def shows_model_text(self) -> bool:
        """Its shown name and description were written from the conversations (not the fixed "unclustered"
        group): the texts the auditor rates, the privacy check scans and the judge asks about."""
        return self.status is Status.SHOWN and self.method != "fixed"


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

    def withheld_members(self) -> np.ndarray:
        """Per conversation: is its base cluster an "Other (withheld)" pool of the release?"""
        pooled = [n.index for n in self.level(0) if n.status is Status.WITHHELD]
        return np.isin(self.base_labels, pooled)

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

        rows = [{**{k: v for k, v in asdict(n).items() if k not in ("children",)}, "status": n.status.value,
                 "n_children": len(n.children)} for lvl in range(self.n_levels) for n in self.level(lvl)]
        df = pd.DataFrame(rows)
        df["keywords"] = df["keywords"].map(lambda k: ", ".join(k))
        return df

    def to_tree(self) -> dict[str, Any]:
        """The tree as nested dicts (JSON-ready), under a root that holds the top level."""

        def node(n: Node) -> dict[str, Any]:
            return {"id": n.id, "level": n.level, "name": n.name, "description": n.description, "size": n.size,
                    "method": n.method, "status": n.status.value, "children": [node(self.nodes[c]) for c in self._sorted(n.children)]}

        top = self.top
        return {"id": "root", "level": self.n_levels, "name": "All conversations", "description": "",
                "size": sum(n.size for n in top), "method": "root", "status": Status.SHOWN.value,
                "children": [node(n) for n in top]}

    def _sorted(self, ids: Sequence[str]) -> list[str]:
        return sorted(ids, key=lambda i: (self.nodes[i].index < 0, -self.nodes[i].size, self.nodes[i].index))

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], base_labels: Sequence[int], **kw: Any) -> Hierarchy:
        """Rebuild from :meth:`to_frame`-style rows (a saved run). Rows saved before nodes had a ``status``
        carried it in ``method`` ("withheld", "withheld name") and are read the same way."""
        nodes = {}
        for r in records:
            kws = r.get("keywords") or []
            if isinstance(kws, str):
                kws = [k for k in kws.split(", ") if k]
            parent = r.get("parent")
            method, status = r["method"], r.get("status")
            if not isinstance(status, str):  # saved before nodes had a status
                status = LEGACY_STATUS.get(method, Status.SHOWN.value)
                method = "fixed" if method == "withheld" else method
            nodes[r["id"]] = Node(r["id"], int(r["level"]), int(r["index"]), r["name"], r["description"],
                                  int(r["size"]), method, parent if isinstance(parent, str) else None, [],
                                  list(kws), Status(status))
        for n in nodes.values():
            if n.parent is not None:
                nodes[n.parent].children.append(n.id)
        return cls(nodes, np.asarray(base_labels, dtype=int), **kw)

    def check(self) -> None:
        """Raise :class:`TreeError` naming the node if an invariant of the tree is broken (plain ``if``s, so
        ``python -O`` checks it too)."""
        top = self.n_levels - 1
        base = {n.index for n in self.level(0)}
        missing = set(self.base_labels.tolist()) - base
        if missing:
            raise TreeError(f"conversations in base clusters that have no node: {sorted(missing)}")
        counts = {c: int((self.base_labels == c).sum()) for c in base}
        for n in self.nodes.values():
            problem = next(self._problems(n, top, counts), None)
            if problem is not None:
                raise TreeError(f"{n.id}: {problem}")

    def _problems(self, n: Node, top: int, counts: dict[int, int]):
        if n.level == 0:
            if n.size != counts[n.index]:
                yield f"size {n.size} but {counts[n.index]} conversations"
            if n.children:
                yield "a base cluster has children"
        else:
            total = sum(self.nodes[c].size for c in n.children)
            if not n.children:
                yield "a parent with no children"
            if n.size != total:
                yield f"size {n.size} but its children hold {total}"
        if n.level < top:
            p = self.nodes.get(n.parent) if n.parent is not None else None
            if p is None:
                yield "no parent below the top level"
            elif p.level != n.level + 1:
                yield f"parent {p.id} is not one level up"
            elif n.id not in p.children:
                yield "not among its parent's children"
        elif n.parent is not None:
            yield "a top-level node with a parent"
        for c in n.children:
            if self.nodes[c].parent != n.id:
                yield f"lists {c} as a child, but its parent is another"
        if not n.name.strip():
            yield "empty name"


def attach_parents(nodes: dict[str, Node], level: int, groups: list[list[Node]], named: list[dict[str, Any]]) -> list[Node]:
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


def carry_unclustered(nodes: dict[str, Node], level: int) -> None:
    below = nodes.get(node_id(level - 1, NOISE))
    if below is not None:
        n = Node(node_id(level, NOISE), level, NOISE, below.name, below.description, below.size, "fixed",
                 children=[below.id])
        below.parent = n.id
        nodes[n.id] = n


def fold_echoes(nodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Nested tree dicts (:meth:`Hierarchy.to_tree`'s ``children``, or a view's own) for display, where a node
    that only echoes its one child (the same name and size: a cluster that stands alone at the level above and
    carries its own name there, or an "Other (withheld)" pool above another) is replaced by that child. A reader
    then sees each cluster once, not as a category that opens onto itself. A parent with a name of its own is
    kept."""
    out = []
    for n in nodes:
        kids = fold_echoes(n.get("children") or [])
        if len(kids) == 1 and kids[0]["name"] == n["name"] and kids[0]["size"] == n["size"]:
            out.append(kids[0])
        else:
            out.append({**n, "children": kids})
    return out
