"""Names with no writing model: each cluster is named by the facet answer that best tells it apart.

Measured on labelled data (benchmarks/naming_quality.py), the bundled 270M model writes cluster names that
match the true label less often than plain keywords do, and most of its names fail validation anyway. What it
does write well enough is one-line request summaries. So, for the local model, a cluster's name is *chosen*
rather than written: every distinct summary of its members is shortened to a name (``"fix a KeyError in their
Python script when reading a CSV file."`` -> ``"Fix a KeyError in the Python script"``), embedded, and scored by
how much nearer it lies to its own cluster's centre than to the nearest other cluster's (the paper's
contrastive idea, applied to choosing). The best candidate becomes the name; the description is built from the
most central summaries. A name nearer another cluster's centre than its own is never released as a plain
name: the cluster keeps the best candidate marked ``"extractive (not distinctive)"``.

Names come only from facet answers (model-written, privacy-instructed and checked for personal details), never
from the conversations' own text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .embeddings import l2_normalise
from .naming import MAX_NAME_WORDS

STEP_VERSION = 1
# How much the nearest other cluster counts against a candidate (1 = pure contrast); chosen on Banking77's
# train split and synthetic seeds other than the bundled corpus's (benchmarks/naming_quality.py --tune).
CONTRAST_WEIGHT = 1.0
_QUALIFIERS = ("when", "while", "because", "so", "that", "which", "who", "after", "before", "if", "using",
               "with", "for", "in", "on", "about", "from", "by", "to", "and", "or", "as", "into", "at", "of")
_POSSESSIVES = {"their", "his", "her", "my", "your", "our", "its"}


def name_from_answer(answer: str | None, max_words: int = MAX_NAME_WORDS) -> str | None:
    """A facet answer turned into a short imperative name, or ``None`` when nothing usable is left.

    The pre-filled opening is already gone (the answer continues "The user's overall request for the
    assistant is to"), so what remains starts with a verb. The first sentence is kept, possessives are made
    general ("their script" -> "the script"), and an over-long answer is cut before a trailing qualifier.

    Example:
        >>> name_from_answer("fix a KeyError in their Python script when reading a CSV file from an API.")
        'Fix a KeyError in the Python script'
    """
    if not answer:
        return None
    text = re.sub(r"[\u200b-\u200f\u2060\ufeff]", "", answer)  # zero-width characters
    text = re.split(r"(?<=[.!?;])\s", text.strip(), maxsplit=1)[0].strip().rstrip(".!?;:, ")
    # a second clause after a comma is the user going on ("verify the identity, but how do I do that")
    text = re.split(r",\s+(?=(?:but|and|or|so|how|what|which|because|since|as|if)\b)", text, maxsplit=1)[0]
    raw = text.split()
    # "their script" -> "the script" (a name speaks of every member); "their own account" stays as it is
    words = ["the" if w.lower() in _POSSESSIVES and raw[i + 1:i + 2] != ["own"] else w for i, w in enumerate(raw)]
    if len(words) < 2:
        return None
    if len(words) > max_words:
        cut = max((i for i in range(3, max_words + 1) if words[i].lower().strip(",") in _QUALIFIERS
                   or words[i - 1].endswith(",")), default=None)
        if cut is None:  # no place to cut that leaves a phrase ("... less cash than what"): not a name
            return None
        words = words[:cut]
        # a list left dangling ("with museums, food") is cut at its first comma
        comma = next((i for i in range(3, len(words)) if words[i - 1].endswith(",")), None)
        words = words[:comma] if comma else words
    name = " ".join(words).rstrip(",;:")
    return name[0].upper() + name[1:]


def centroids(X: np.ndarray, labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Unit-length centre of each cluster id's rows."""
    return l2_normalise(np.stack([X[labels == c].mean(axis=0) for c in ids]))


def contrast(V: np.ndarray, C: np.ndarray, own: int, weight: float = CONTRAST_WEIGHT) -> np.ndarray:
    """For candidate embeddings ``V``: similarity to centre ``own`` minus ``weight`` times the nearest other."""
    sims = V @ C.T
    if C.shape[0] == 1:
        return sims[:, own]
    others = np.delete(sims, own, axis=1)
    return sims[:, own] - weight * others.max(axis=1)


def rank_candidates(candidates: dict[int, list[str]], C: np.ndarray, order: Sequence[int], embedder: Any,
                    store: Any, weight: float = CONTRAST_WEIGHT) -> dict[int, list[dict[str, Any]]]:
    """For each cluster (its position in ``order`` is its row of ``C``), its candidates best first, each with
    its contrast ``score`` and ``margin`` (own-centre similarity minus the nearest other centre's)."""
    from .embeddings import embed

    flat = sorted({c for names in candidates.values() for c in names})
    if not flat:
        return {}
    V = {t: v for t, v in zip(flat, embed(flat, embedder, cache=store), strict=True)}
    out = {}
    for row, c in enumerate(order):
        names = candidates.get(c) or []
        if not names:
            continue
        M = np.stack([V[n] for n in names])
        scores, margins = contrast(M, C, row, weight), contrast(M, C, row, 1.0)
        out[c] = [{"name": names[i], "score": float(scores[i]), "margin": float(margins[i])}
                  for i in np.argsort(-scores, kind="stable")]
    return out


def choose_names(candidates: dict[int, list[str]], C: np.ndarray, order: Sequence[int], embedder: Any,
                 store: Any, weight: float = CONTRAST_WEIGHT, clean: Any = None) -> dict[int, dict[str, Any]]:
    """For each cluster, the candidate with the best contrast that ``clean`` accepts (no personal details),
    and whether it is distinctive (nearer its own centre than any other)."""
    ranked = rank_candidates(candidates, C, order, embedder, store, weight)
    out = {}
    for c, ranks in ranked.items():
        best = next((r for r in ranks if clean is None or clean(r["name"])), None)
        if best is not None:
            out[c] = {**best, "distinctive": best["margin"] > 0}
    return out


def safe_text(detector: Any = None):
    """What may be shown as a name or in a description: no redaction placeholder left by the facet step's
    check ("<PERSON>"), and, with a detector, nothing it finds (summaries are checked when written, but a
    facet run without the check, or an older cache, may hold a name)."""
    def clean(text: str) -> bool:
        return not re.search(r"<[A-Z_]+>", text) and (detector is None or not detector.has_pii(text))
    return clean


def candidate_names(answers: Sequence[str | None], idx: np.ndarray, X: np.ndarray, centre: np.ndarray,
                    limit: int = 40) -> list[str]:
    """Distinct names from the answers of rows ``idx``, the rows nearest the centre first, at most ``limit``."""
    order = idx[np.argsort(-(X[idx] @ centre))]
    seen: dict[str, None] = {}
    for i in order:
        name = name_from_answer(answers[i])
        if name and name.lower() not in {s.lower() for s in seen}:
            seen[name] = None
            if len(seen) >= limit:
                break
    return list(seen)


def describe(answers: Sequence[str | None], idx: np.ndarray, X: np.ndarray, centre: np.ndarray, n: int = 3,
             clean: Any = None) -> str:
    """A two-sentence, past-tense description from the most central answers that ``clean`` accepts."""
    from .naming import central_texts

    central = [a.strip().rstrip(".") for a in central_texts(idx, X, answers, 4 * n)
               if clean is None or clean(a)][:n]
    if not central:
        return "Conversations whose requests could not be summarised."
    first = f"Users asked the assistant to {central[0]}."
    rest = "; ".join(central[1:])
    return first + (f" Related requests asked it to {rest}." if rest else "")


def extractive_labels(answers: Sequence[str | None], X: np.ndarray, labels: np.ndarray, *, embedder: Any = None,
                      cache: Any = None, fallback: dict[int, Any] | None = None,
                      weight: float = CONTRAST_WEIGHT, detector: Any = None) -> dict[int, Any]:
    """Name every cluster by its most distinctive member answer (see the module's docstring).

    Returns :class:`~clio_lab.naming.ClusterLabel` per cluster id; a cluster with no usable answer keeps its
    keyword label from ``fallback`` (marked ``"keywords (no summaries)"``). With a ``detector``
    (:class:`~clio_lab.pii.PIIDetector`), no candidate or description sentence with personal details is used.
    """
    from dataclasses import replace

    from .clustering import NOISE
    from .naming import keyword_labels

    X = np.asarray(X, dtype=np.float32)
    labels = np.asarray(labels)
    fallback = fallback if fallback is not None else keyword_labels(answers, X, labels)
    ids = [c for c in sorted(set(labels.tolist())) if c != NOISE]
    if not ids:
        return dict(fallback)
    C = centroids(X, labels, ids)
    members = {c: np.flatnonzero(labels == c) for c in ids}
    candidates = {c: candidate_names(answers, members[c], X, C[row]) for row, c in enumerate(ids)}
    clean = safe_text(detector)
    chosen = choose_names(candidates, C, ids, embedder, cache, weight, clean)
    out = dict(fallback)
    for row, c in enumerate(ids):
        pick = chosen.get(c)
        if pick is None:  # no member's request could be summarised: keywords, or say so
            lab = fallback[c]
            name = lab.name if lab.keywords else "Requests that could not be summarised"
            out[c] = replace(lab, name=name, method="keywords (no summaries)")
            continue
        method = "extractive" if pick["distinctive"] else "extractive (not distinctive)"
        out[c] = replace(fallback[c], name=pick["name"],
                         description=describe(answers, members[c], X, C[row], clean=clean), method=method)
    return out


def group_clusters(V: np.ndarray, sizes: np.ndarray, target: int, linkage: str = "ward") -> np.ndarray:
    """Parent group of each cluster centre in ``V``: agglomerative clustering of the centres into ``target``
    groups (Ward on unit vectors, or average linkage on cosine distance)."""
    from sklearn.cluster import AgglomerativeClustering

    if target <= 1 or len(V) <= target:
        return np.zeros(len(V), dtype=int) if target <= 1 else np.arange(len(V))
    if linkage == "ward":
        model = AgglomerativeClustering(n_clusters=target, linkage="ward")
    else:
        model = AgglomerativeClustering(n_clusters=target, metric="cosine", linkage=linkage)
    return model.fit_predict(V)


def group_by_members(X: np.ndarray, labels: np.ndarray, ids: Sequence[int], target: int) -> np.ndarray:
    """Parent group of each cluster: k-means on the conversations themselves into ``target`` groups, each
    cluster going where most of its conversations fall (centres of impure clusters all lie near the middle of
    the space, so grouping the centres puts most of them into one parent)."""
    from sklearn.cluster import KMeans

    idx = np.flatnonzero(np.isin(labels, ids))
    if target <= 1 or len(ids) <= target:
        return np.zeros(len(ids), dtype=int) if target <= 1 else np.arange(len(ids))
    parent = KMeans(n_clusters=target, n_init=3, random_state=0).fit_predict(X[idx])
    out = np.array([np.bincount(parent[labels[idx] == c], minlength=target).argmax() for c in ids])
    _, dense = np.unique(out, return_inverse=True)  # a group no cluster chose leaves no gap
    return dense


def build_levels(tree: Any, sizes: Sequence[int], answers: Sequence[str | None], X: np.ndarray, *,
                 embedder: Any = None, cache: Any = None, linkage: str = "ward",
                 weight: float = CONTRAST_WEIGHT, detector: Any = None) -> None:
    """Add parent levels to ``tree`` (a :class:`~clio_lab.hierarchy.Hierarchy` holding only its base level):
    each level groups the centres of the level below by agglomerative clustering, and each parent is named by
    the member answer that best tells it apart from the other parents of its level (a child's own name only
    when no other candidate is left)."""
    from .clustering import NOISE
    from .tree import attach_parents, carry_unclustered

    X = l2_normalise(np.asarray(X, dtype=np.float32))
    for lvl, target in enumerate(sizes, 1):
        children = [n for n in tree.level(lvl - 1) if n.index != NOISE]
        if not children:
            carry_unclustered(tree.nodes, lvl)
            continue
        conv = tree.labels_at(lvl - 1)
        if linkage == "members":
            groups_of = group_by_members(X, conv, [c.index for c in children], target)
        else:
            V = centroids(X, conv, [c.index for c in children])
            groups_of = group_clusters(V, np.array([c.size for c in children]), target, linkage)
        groups = [[c for c, g in zip(children, groups_of, strict=True) if g == k] for k in sorted(set(groups_of))]
        parent_of = {c.index: k for k, grp in enumerate(groups) for c in grp}
        conv_parent = np.array([parent_of.get(int(c), NOISE) for c in conv])
        ids = list(range(len(groups)))
        C = centroids(X, conv_parent, ids)
        taken = {c.name.lower() for c in children}
        candidates = {}
        for g in ids:
            idx = np.flatnonzero(conv_parent == g)
            names = candidate_names(answers, idx, X, C[g])
            candidates[g] = [n for n in names if n.lower() not in taken] or names
        clean = safe_text(detector)
        chosen = choose_names(candidates, C, ids, embedder, cache, weight, clean)
        named = []
        for g in ids:
            pick = chosen.get(g)
            kids = sorted(groups[g], key=lambda n: -n.size)
            if pick is None:  # no member answer at all: the largest child's name, said so
                named.append({"name": kids[0].name, "description": "Clusters such as: "
                              + "; ".join(k.name for k in kids[:3]) + ".", "method": "extractive (a child's name)"})
                continue
            idx = np.flatnonzero(conv_parent == g)
            listed = "; ".join(k.name for k in kids[:4]) + (f"; and {len(kids) - 4} more" if len(kids) > 4 else "")
            named.append({"name": pick["name"],
                          "description": f"{describe(answers, idx, X, C[g], n=2, clean=clean)} Its clusters: {listed}.",
                          "method": "extractive" if pick["distinctive"] else "extractive (not distinctive)"})
        attach_parents(tree.nodes, lvl, groups, named)
        carry_unclustered(tree.nodes, lvl)
