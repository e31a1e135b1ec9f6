"""Release: the one place where it is decided what a run may show (Clio's privacy gating, section 3.5).

:func:`release_tree` takes the full tree, the conversations' user ids, the privacy auditor's ratings and the
thresholds, and returns the released tree (every view and export is made from it), what was withheld and why
(counts only), and a last personal-details check of the released texts. ``run_pipeline`` calls it once.

A cluster is withheld when it holds fewer than ``min_conversations`` conversations or ``min_users`` distinct
users (:func:`threshold_reasons`), or when it is a base cluster the auditor rated below its minimum or could
not rate. Withheld clusters are removed, and their conversations are counted in one "Other (withheld)" node
under the nearest parent that passes (or at the top level). Only counts survive: no name, description, keyword
or summary of a withheld cluster is kept. A higher-level category whose own text fails the audit keeps its
place and size but not its text (status ``name withheld``). A category holding exactly one cluster and all of
its conversations is that cluster, and is released (or withheld, or masked) as the cluster is. Thresholds are
monotone (a child never holds more conversations or users than its parent), so a withheld cluster's
descendants are withheld with it. The released tree keeps the tree's invariants (each conversation in one leaf,
one parent per node, sizes that add up). Each node's decision is its :class:`~clio_lab.tree.Status`.

Defaults: 10 conversations and 5 distinct users. When the data has no user ids, every conversation counts as
its own user (the distinct-user rule then adds nothing) and the privacy report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .auditor import DEFAULT_MIN_SCORE, Audit
from .tree import Hierarchy, Node, Status, node_id

if TYPE_CHECKING:  # pragma: no cover
    from .pii import PIIDetector

DEFAULT_MIN_CONVERSATIONS = 10
DEFAULT_MIN_USERS = 5
WITHHELD_NAME = "Other (withheld)"
WITHHELD_DESCRIPTION = "Conversations in clusters below the privacy thresholds; only their number is shown."
MASKED_NAME = "Category name withheld"
MASKED_DESCRIPTION = ("The privacy auditor withheld this category's name and description; the clusters under it "
                      "passed the thresholds and were audited on their own.")
MASKED_METHOD = "withheld name"  # how runs saved before nodes had a status marked a masked category


@dataclass(frozen=True)
class PrivacyOptions:
    """Every privacy setting of a run, in one place (``run_pipeline(privacy=PrivacyOptions(...))``).

    Attributes:
        min_conversations, min_users: the aggregation thresholds; ``None`` turns one off.
        audit: the privacy auditor: ``"auto"`` (on whenever clusters are named), ``True`` (on), ``False``,
            ``"rules"`` or ``"model"``. On, it is :func:`~clio_lab.auditor.rule_audit` (no model) with the local
            model and the model (:func:`~clio_lab.auditor.audit_clusters`) with a hosted one; ``"rules"`` or
            ``"model"`` picks one.
        min_audit_score: base clusters the auditor rates below this (1-5) are withheld.
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` (one when presidio is installed), ``True`` or
            ``False``: every text the model writes is checked, re-asked once, then kept redacted.
        redact_input: redact personal details in every conversation before any model sees it.
        show_raw: put each conversation's own text in the exports (public or synthetic data only).
    """

    min_conversations: int | None = DEFAULT_MIN_CONVERSATIONS
    min_users: int | None = DEFAULT_MIN_USERS
    audit: bool | Literal["auto", "rules", "model"] = "auto"
    min_audit_score: int = DEFAULT_MIN_SCORE
    pii: Any = "auto"
    redact_input: bool = False
    show_raw: bool = False

    def __post_init__(self) -> None:
        if self.audit not in (True, False, "auto", "rules", "model"):
            raise ValueError(f"audit must be True, False, 'auto', 'rules' or 'model', not {self.audit!r}")
        if not 1 <= int(self.min_audit_score) <= 5:
            raise ValueError(f"min_audit_score must be between 1 and 5, not {self.min_audit_score!r}")

    @property
    def gate(self) -> dict[str, int]:
        """The thresholds as :func:`apply_thresholds` takes them (an off threshold is 1)."""
        return {"min_conversations": self.min_conversations or 1, "min_users": self.min_users or 1}


def is_withheld(node: Node | str) -> bool:
    """A node whose own text is not shown: an "Other (withheld)" node or a category whose name was withheld.
    (A ``method`` string is read the way runs saved before nodes had a status wrote it.)"""
    if isinstance(node, Node):
        return node.status is not Status.SHOWN
    return str(node).startswith("withheld")


def shows_model_text(node: Node | str) -> bool:
    """A node whose name and description a model wrote and the run shows: not the fixed "unclustered" group,
    not withheld. These are the texts the auditor rates, the privacy check scans and the judge asks about."""
    if isinstance(node, Node):
        return node.shows_model_text
    return node != "fixed" and not is_withheld(node)


@dataclass
class ThresholdReport:
    min_conversations: int
    min_users: int
    user_ids_present: bool
    withheld_clusters: dict[int, int] = field(default_factory=dict)  # per level
    withheld_conversations: int = 0  # conversations whose base cluster is withheld
    # clusters withheld for "conversations", "users", "both", "auditor" or "auditor failed"
    reasons: dict[str, int] = field(default_factory=dict)
    audit: dict[str, Any] | None = None  # the auditor's minimum and score histograms, when it ran
    names_withheld: dict[int, int] = field(default_factory=dict)  # per level: categories shown without their text

    def as_dict(self) -> dict[str, Any]:
        return {"min_conversations": self.min_conversations, "min_users": self.min_users,
                "user_ids_present": self.user_ids_present,
                "withheld_clusters_per_level": {str(k): v for k, v in sorted(self.withheld_clusters.items())},
                "withheld_conversations_at_base": self.withheld_conversations, "withheld_by_reason": self.reasons,
                "names_withheld_per_level": {str(k): v for k, v in sorted(self.names_withheld.items())},
                "audit": self.audit}


def threshold_reasons(tree: Hierarchy, user_ids: Sequence[str | None] | None = None, *,
                      min_conversations: int = DEFAULT_MIN_CONVERSATIONS,
                      min_users: int = DEFAULT_MIN_USERS) -> dict[str, str]:
    """Why each cluster below the thresholds is withheld: ``"conversations"``, ``"users"`` or ``"both"``
    (clusters that pass are absent). Without user ids each conversation counts as its own user."""
    n = len(tree.base_labels)
    users = list(user_ids) if user_ids is not None else [None] * n
    if len(users) != n:
        raise ValueError(f"user_ids ({len(users)}) must align with the tree's conversations ({n})")
    present = any(u for u in users)
    users_arr = np.array([u if (u and present) else f"__conversation_{i}" for i, u in enumerate(users)], dtype=object)
    out: dict[str, str] = {}
    for lvl in range(tree.n_levels):
        at = tree.labels_at(lvl)
        for node in tree.level(lvl):
            members = at == node.index
            few_conv = int(members.sum()) < min_conversations
            few_users = len(set(users_arr[members].tolist())) < min_users
            if few_conv or few_users:
                out[node.id] = "both" if few_conv and few_users else "conversations" if few_conv else "users"
    return out


def apply_thresholds(tree: Hierarchy, user_ids: Sequence[str | None] | None = None, *,
                     min_conversations: int = DEFAULT_MIN_CONVERSATIONS,
                     min_users: int = DEFAULT_MIN_USERS,
                     audit: Audit | None = None) -> tuple[Hierarchy, ThresholdReport]:
    """The gated tree and what was withheld (counts only).

    With an ``audit`` (:func:`~clio_lab.auditor.audit_clusters` or :func:`~clio_lab.auditor.rule_audit` of the
    same tree), base clusters the auditor rated below its minimum, or could not rate, are withheld as well (reasons ``"auditor"``, ``"auditor
    failed"``). A higher-level category that fails the audit keeps its place and size but loses its name and
    description (:data:`MASKED_NAME`; reasons ``"auditor (name only)"``): its text failed, not its members,
    and the clusters under it passed the thresholds and were audited on their own. A cluster below the
    thresholds counts under its threshold reason.

    Example:
        >>> gated, report = apply_thresholds(result.hierarchy, result.user_ids)  # doctest: +SKIP
        >>> report.withheld_conversations  # doctest: +SKIP
        23
    """
    below = threshold_reasons(tree, user_ids, min_conversations=min_conversations, min_users=min_users)
    base = np.asarray(tree.base_labels)
    report = ThresholdReport(min_conversations, min_users, user_ids is not None and any(u for u in user_ids))
    # Only thresholds and the auditor's verdict on base clusters remove a node. Thresholds are monotone and a
    # category failing the audit only loses its text, so a withheld node's descendants are all withheld too.
    passes: dict[str, bool] = {}
    masked: set[str] = set()
    by_audit = audit.withheld() if audit is not None else {}
    failed: dict[str, str] = {}
    for nid, node in sorted(tree.nodes.items(), key=lambda item: item[1].level):  # children decided first
        reason = below.get(nid) or by_audit.get(nid)
        only = _only_child(tree, node)
        if only is not None and (only in failed or only in masked or _same_text(node, tree.nodes[only])):
            # a category holding one cluster and all of its conversations, under that cluster's name, is that
            # cluster: it is released as the cluster is (its own rating of the same text is not asked again).
            # One under a name of its own is withheld with a withheld cluster (it would describe its members).
            reason = failed.get(only)
            if reason is None and only in masked:
                masked.add(nid)
                report.names_withheld[node.level] = report.names_withheld.get(node.level, 0) + 1
                report.reasons["auditor (name only)"] = report.reasons.get("auditor (name only)", 0) + 1
        elif reason is not None and node.level > 0 and nid not in below:
            # a category's text failed the audit, not its members: its name is withheld, the clusters
            # under it (audited on their own) stay
            masked.add(nid)
            report.names_withheld[node.level] = report.names_withheld.get(node.level, 0) + 1
            report.reasons[f"{reason} (name only)"] = report.reasons.get(f"{reason} (name only)", 0) + 1
            reason = None
        passes[nid] = reason is None
        if reason is not None:
            failed[nid] = reason
            report.withheld_clusters[node.level] = report.withheld_clusters.get(node.level, 0) + 1
            report.reasons[reason] = report.reasons.get(reason, 0) + 1
    if audit is not None:
        released = [nid for nid, ok in passes.items() if ok and nid not in masked]  # texts shown
        report.audit = {"min_score": audit.min_score, "histogram": audit.histogram(),
                        "histogram_released": audit.histogram(released)}

    nodes: dict[str, Node] = {}
    # released nodes, copied; their children lists are rebuilt below
    for nid, node in tree.nodes.items():
        if passes[nid] and nid in masked:
            nodes[nid] = Node(node.id, node.level, node.index, MASKED_NAME, MASKED_DESCRIPTION, node.size,
                              node.method, node.parent, [], [], Status.NAME_WITHHELD)
        elif passes[nid]:
            nodes[nid] = Node(node.id, node.level, node.index, node.name, node.description, node.size, node.method,
                              node.parent, [], list(node.keywords))
    # each passing parent (or the top) collects its withheld children into one chain of "Other (withheld)" nodes
    # down to the base level, so every conversation still has a leaf and a path
    chains: dict[str | None, dict[int, Node]] = {}
    next_index = {lvl: -2 for lvl in range(tree.n_levels)}

    def chain_node(owner: str | None, level: int) -> Node:
        chain = chains.setdefault(owner, {})
        if level not in chain:
            idx = next_index[level]
            next_index[level] -= 1
            chain[level] = Node(node_id(level, idx), level, idx, WITHHELD_NAME, WITHHELD_DESCRIPTION, 0, "fixed",
                                status=Status.WITHHELD)
            nodes[chain[level].id] = chain[level]
        return chain[level]

    new_base = base.copy()
    for nid, node in tree.nodes.items():
        if passes[nid]:
            continue
        parent = tree.nodes[node.parent] if node.parent else None
        if parent is not None and not passes[parent.id]:
            continue  # counted with its withheld parent's chain
        owner = parent.id if parent is not None else None
        for lvl in range(node.level, 0, -1):
            chain_node(owner, lvl)
        leaf = chain_node(owner, 0)
        # every base cluster under this withheld node goes to the chain's base node
        for base_node in tree.level(0):
            n = base_node
            while n.level < node.level:
                n = tree.nodes[n.parent]  # type: ignore[index]
            if n.id == node.id:
                new_base[base == base_node.index] = leaf.index
    for owner, chain in chains.items():
        levels = sorted(chain)
        for lower, upper in zip(levels, levels[1:], strict=False):
            chain[lower].parent = chain[upper].id
        chain[levels[-1]].parent = owner
    for node in nodes.values():
        if node.parent is not None:
            nodes[node.parent].children.append(node.id)
    # sizes bottom up from the new base labels
    for lvl in range(tree.n_levels):
        for node in nodes.values():
            if node.level == lvl:
                node.size = int((new_base == node.index).sum()) if lvl == 0 else \
                    sum(nodes[c].size for c in node.children)
    gated = Hierarchy(nodes, new_base, failures=tree.failures, stats=tree.stats, pii=tree.pii)
    report.withheld_conversations = int(gated.withheld_members().sum())
    gated.config = {**tree.config, "thresholds": report.as_dict()}
    gated.check()
    return gated, report


def _only_child(tree: Hierarchy, node: Node) -> str | None:
    """The id of ``node``'s one child when it has exactly one and the same conversations (else None)."""
    if node.level == 0 or len(node.children) != 1:
        return None
    child = tree.nodes[node.children[0]]
    return child.id if child.size == node.size else None


def _same_text(node: Node, child: Node) -> bool:
    return (node.name, node.description) == (child.name, child.description)


@dataclass
class Release:
    """What a run may show: the released tree, what was withheld and why, and the last check of its texts."""

    tree: Hierarchy
    report: ThresholdReport
    released_pii: dict[str, int] | None = None  # released names and descriptions still holding personal details


def audit_candidates(tree: Hierarchy, user_ids: Sequence[str | None] | None = None, *,
                     min_conversations: int = DEFAULT_MIN_CONVERSATIONS,
                     min_users: int = DEFAULT_MIN_USERS) -> list[str]:
    """The node ids the auditor should rate: only clusters that pass the thresholds can be shown, and a category
    that repeats its one cluster's name and description is released as that cluster (:func:`apply_thresholds`)."""
    below = threshold_reasons(tree, user_ids, min_conversations=min_conversations, min_users=min_users)

    def repeats_its_child(node: Node) -> bool:
        only = _only_child(tree, node)
        return only is not None and _same_text(node, tree.nodes[only])

    return [nid for nid, node in tree.nodes.items() if nid not in below and not repeats_its_child(node)]


def release_tree(tree: Hierarchy, user_ids: Sequence[str | None] | None = None, *, audit: Audit | None = None,
            min_conversations: int = DEFAULT_MIN_CONVERSATIONS, min_users: int = DEFAULT_MIN_USERS,
            detector: PIIDetector | None = None) -> Release:
    """Decide what of ``tree`` is shown: thresholds, then the auditor's ratings (see the module's docstring),
    then, with a ``detector``, a count of the released names and descriptions that still hold personal details.

    Example:
        >>> shown = release_tree(full_tree, user_ids, audit=audit_clusters(full_tree))  # doctest: +SKIP
        >>> shown.report.withheld_conversations  # doctest: +SKIP
        23
    """
    gated, report = apply_thresholds(tree, user_ids, min_conversations=min_conversations, min_users=min_users,
                                     audit=audit)
    released_pii = None
    if detector is not None:
        texts = [t for n in gated.nodes.values() if n.shows_model_text for t in (n.name, n.description)]
        released_pii = {"checked": len(texts), "with_pii": sum(detector.has_pii(t) for t in texts)}
    return Release(gated, report, released_pii)
