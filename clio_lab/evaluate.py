"""Metrics against ground truth: clustering accuracy (Hungarian matching), NMI, ARI and V-measure.

Used by the benchmarks and the validation notebooks; scores are fractions in [0, 1]. The LLM-judge checks of a
hierarchy live in :mod:`clio_lab.judge` and are re-exported here as :func:`judge_hierarchy`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .judge import JudgeReport, judge_hierarchy  # noqa: F401  (part of the evaluation API)
from .tree import Status


def cluster_accuracy(truth: Sequence[Any], labels: Sequence[Any]) -> float:
    """Best one-to-one matching of clusters to classes (Hungarian), as in the clustering literature.

    Example:
        >>> cluster_accuracy(["a", "a", "b", "b"], [1, 1, 0, 0])
        1.0
    """
    from scipy.optimize import linear_sum_assignment

    t_ids, t = np.unique(np.asarray(truth), return_inverse=True)
    l_ids, lab = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.zeros((len(l_ids), len(t_ids)), dtype=np.int64)
    np.add.at(counts, (lab, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(t))


def cluster_scores(truth: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """ACC, NMI, ARI and V-measure of ``labels`` against ``truth``."""
    from sklearn import metrics

    return {
        "acc": cluster_accuracy(truth, labels),
        "nmi": float(metrics.normalized_mutual_info_score(truth, labels)),
        "ari": float(metrics.adjusted_rand_score(truth, labels)),
        "v_measure": float(metrics.v_measure_score(truth, labels)),
    }


def scores_by_level(tree: Any, truth: Sequence[Any]) -> Any:
    """ACC, NMI, ARI and V-measure of every level of a hierarchy (a :class:`~clio_lab.hierarchy.Hierarchy`,
    e.g. ``result.hierarchy``) against one ground truth (e.g. the known top categories), plus each level's
    cluster count: where in the tree the known structure is recovered best. Conversations in withheld or
    unclustered nodes keep their node's label (one group each), so nothing is dropped from the score.

    Returns a DataFrame with one row per level (0 = base clusters).

    Example:
        >>> scores_by_level(result.hierarchy, [c.metadata["topic"] for c in convs])  # doctest: +SKIP
    """
    import pandas as pd

    truth = list(truth)
    if len(truth) != len(tree.base_labels):
        raise ValueError(f"truth ({len(truth)}) must align with the tree's conversations ({len(tree.base_labels)})")
    rows = []
    for lvl in range(tree.n_levels):
        labels = tree.labels_at(lvl)
        rows.append({"level": lvl, "clusters": len(set(labels.tolist())), **cluster_scores(truth, labels)})
    return pd.DataFrame(rows)


def compare_settings(embeddings: Mapping[str, np.ndarray], truth: Sequence[Any], settings: Sequence[Mapping[str, Any]],
                     *, seeds: Sequence[int] = (0,), cache: Any = "default") -> Any:
    """Cluster every embedding with every setting and seed, and score each against ``truth``: the sweep behind
    the hyper-parameter notebook.

    Args:
        embeddings: name -> ``(n, d)`` array, all of the same items (e.g. raw text and summaries embedded).
        truth: the known class of each item.
        settings: keyword arguments for :func:`clio_lab.cluster`, e.g. ``{"method": "kmeans", "k": 30}`` or
            ``{"method": "hdbscan", "min_cluster_size": 10, "n_neighbors": 15}``.
        seeds: random states; one row per seed.

    Returns a DataFrame: ``embedding``, every setting's keys, ``seed``, ``clusters``, ``noise`` (share left
    unclustered; counted as one more group in the scores, as the pipeline shows it), ``acc``, ``nmi``,
    ``ari``, ``v_measure`` and ``seconds`` (0 when answered from the cache).

    Example:
        >>> compare_settings({"raw": X}, truth, [{"method": "kmeans", "k": k} for k in (10, 20)])  # doctest: +SKIP
    """
    import time

    import pandas as pd

    from .clustering import cluster

    truth = list(truth)
    rows = []
    for name, X in embeddings.items():
        if len(X) != len(truth):
            raise ValueError(f"embeddings[{name!r}] has {len(X)} rows but truth has {len(truth)}")
        for setting in settings:
            for seed in seeds:
                start = time.perf_counter()
                result = cluster(X, random_state=seed, cache=cache, **dict(setting))
                rows.append({"embedding": name, **setting, "seed": seed, "clusters": result.n_clusters,
                             "noise": round(result.n_noise / len(truth), 4),
                             **cluster_scores(truth, result.labels), "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def map_quality(X: np.ndarray, coords: np.ndarray, truth: Sequence[Any] | None = None, *, n_neighbors: int = 10,
                sample: int = 3000, random_state: int = 0) -> dict[str, float]:
    """How faithful a 2-D map is to the embeddings: ``trustworthiness`` (scikit-learn's: do points that are
    near on the map lie near in the embedding space? 1 is perfect) and, with ``truth``, ``knn_agreement_2d``
    and ``knn_agreement_full``: the share of each point's ``n_neighbors`` nearest neighbours with its own class,
    on the map and in the full space (a map that keeps classes together scores close to the full space).
    Computed on at most ``sample`` points.

    Example:
        >>> map_quality(X, result.coords, topics)  # doctest: +SKIP
        {'trustworthiness': 0.93, 'knn_agreement_2d': 0.71, 'knn_agreement_full': 0.78}
    """
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import NearestNeighbors

    idx = np.arange(len(X))
    if len(X) > sample:
        idx = np.sort(np.random.default_rng(random_state).choice(len(X), size=sample, replace=False))
    Xs, Cs = np.asarray(X)[idx], np.asarray(coords)[idx]
    k = min(n_neighbors, len(idx) - 2)
    out = {"trustworthiness": round(float(trustworthiness(Xs, Cs, n_neighbors=k)), 4)}
    if truth is not None:
        t = np.asarray(list(truth), dtype=object)[idx]
        for name, space in (("knn_agreement_2d", Cs), ("knn_agreement_full", Xs)):
            nn = NearestNeighbors(n_neighbors=k + 1).fit(space).kneighbors(space, return_distance=False)[:, 1:]
            out[name] = round(float((t[nn] == t[:, None]).mean()), 4)
    return out


def reconstruction_accuracy(truth: Sequence[Any], labels: Sequence[Any],
                            groups: Sequence[Any] | None = None) -> dict[str, Any]:
    """Clio's supervised reconstruction accuracy (section 4.1): each base cluster is assigned the known
    category that most of its conversations carry; the score is the share of conversations whose cluster's
    category is their own. Unclustered items (label -1) count as wrong. With ``groups`` (e.g. languages),
    the score is also given per group.

    Returns ``{"accuracy", "chance", "majority_class", "clusters", "by_group"}``; ``chance`` is 1 / the number
    of categories (the paper's "random" figure), ``majority_class`` the share of the most common category.

    Example:
        >>> reconstruction_accuracy(["a", "a", "b", "b"], [0, 0, 0, 1])["accuracy"]
        0.75
    """
    truth = np.asarray(truth, dtype=object)
    labels = np.asarray(labels)
    if len(truth) != len(labels) or len(truth) == 0:
        raise ValueError(f"truth ({len(truth)}) and labels ({len(labels)}) must be non-empty and aligned")
    assigned = {}
    for c in set(labels.tolist()) - {-1}:
        values, counts = np.unique(truth[labels == c].astype(str), return_counts=True)
        assigned[c] = values[np.argmax(counts)]
    correct = np.array([c != -1 and assigned[c] == str(t) for c, t in zip(labels.tolist(), truth, strict=True)])
    values, counts = np.unique(truth.astype(str), return_counts=True)
    out: dict[str, Any] = {"accuracy": float(correct.mean()), "chance": 1.0 / len(values),
                           "majority_class": float(counts.max() / len(truth)), "clusters": len(assigned),
                           "by_group": {}}
    if groups is not None:
        groups = np.asarray(groups, dtype=object).astype(str)
        out["by_group"] = {g: {"accuracy": float(correct[groups == g].mean()), "n": int((groups == g).sum())}
                           for g in sorted(set(groups.tolist()))}
    return out


# ------------------------------------------------------------------------------------------ PII leak rate
# words too common to identify anyone on their own, when a planted address or employer is split into parts
_COMMON_PARTS = {"street", "road", "avenue", "rue", "des", "del", "calle", "rua", "das", "lane", "springfield", "the",
                 "and", "gmbh", "ltd", "inc", "group", "services", "solutions", "systems", "labs", "company",
                 "flat", "apartment", "suite", "unit", "floor", "piso", "étage", "andar", "wohnung",
                 # what a business does, not which one it is: "a dental appointment" names no "Crescent Dental Clinic"
                 "dental", "clinic", "logistics", "analytics", "catering", "robotics", "consulting", "bakery",
                 "hospital", "medical", "health", "pharmacy", "insurance", "bank", "school", "academy", "studio",
                 "partners", "agency", "design", "media", "foods", "motors", "hotel", "restaurant", "software"}


def planted_parts(kind: str, value: str) -> list[str]:
    """Distinctive pieces of a planted personal detail that would point to it on their own: a name's words of
    4+ letters, an address's or employer's uncommon words, an e-mail's local part.

    Example:
        >>> planted_parts("name", "Elena Lindqvist")
        ['Elena', 'Lindqvist']
        >>> planted_parts("address", "Flat 2, 195 Maple Street, Lakeside L2 5DG")
        ['Maple']
        >>> planted_parts("employer", "Crescent Dental Clinic")
        ['Crescent']
    """
    import re

    if kind == "name":
        return [w for w in value.split() if len(w) >= 4]
    if kind in ("address", "employer"):
        # the first comma-separated part with an uncommon word: "Flat 2, 195 Maple Street" -> Maple
        for segment in value.split(","):
            parts = [w for w in re.findall(r"[A-Za-zÀ-ÿ]{4,}", segment) if w.lower() not in _COMMON_PARTS]
            if parts:
                return parts
        return []
    if kind == "email":
        return [value.split("@")[0]]
    return []


def survives(kind: str, value: str, text: str) -> bool:
    """Whether a planted value survives into ``text``: the value itself (any case), its digits (6 or more) as
    one run of the text's digits, or one of its :func:`planted_parts` as a word.

    Example:
        >>> survives("phone", "+1 555 0191 4088", "call 1-555-0191-4088 today")
        True
        >>> survives("name", "James Schulz", "help a user write a letter")
        False
    """
    import re

    low = text.lower()
    if value.lower() in low:
        return True
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 6 and digits in re.sub(r"\D", "", text):
        return True
    return any(re.search(rf"\b{re.escape(p.lower())}\b", low) for p in planted_parts(kind, value))


def detection_recall(conversations: Sequence[Any], detector: Any) -> dict[str, Any]:
    """How well a PII detector (:class:`clio_lab.pii.PIIDetector`) finds the planted details of a synthetic
    corpus: a planted value counts as found when a finding overlaps its span; a conversation with nothing
    planted counts as a false alarm when anything in it is flagged.

    Returns ``{"by_kind": {kind: {"found", "planted"}}, "found", "planted", "false_alarms", "clean",
    "messages", "seconds"}``.

    Example:
        >>> detection_recall(convs, PIIDetector())["by_kind"]["email"]  # doctest: +SKIP
        {'found': 12, 'planted': 12}
    """
    import time

    by_kind: dict[str, list[int]] = {}
    clean = alarms = messages = 0
    start = time.perf_counter()
    for conv in conversations:
        flagged = False
        spans = conv.metadata.get("pii", [])
        for i, message in enumerate(conv.messages):
            found = detector.find(message.content)
            messages += 1
            flagged = flagged or bool(found)
            for span in (s for s in spans if s.get("message", 0) == i):
                counts = by_kind.setdefault(span["kind"], [0, 0])
                counts[0] += any(f.start < span["end"] and f.end > span["start"] for f in found)
                counts[1] += 1
        if not spans:
            clean += 1
            alarms += flagged
    return {"by_kind": {k: {"found": v[0], "planted": v[1]} for k, v in sorted(by_kind.items())},
            "found": sum(v[0] for v in by_kind.values()), "planted": sum(v[1] for v in by_kind.values()),
            "false_alarms": alarms, "clean": clean, "messages": messages,
            "seconds": round(time.perf_counter() - start, 2)}


def leak_rates(conversations: Sequence[Any], result: Any) -> dict[str, Any]:
    """How many planted personal details (``metadata["pii"]``: ``kind`` and ``value`` per span, as the bundled
    and synthetic corpora carry) survive each stage of a run.

    - ``raw``: found in the conversations themselves (a control of the matcher; should be all of them);
    - ``facet_answers``: in each conversation's own answers, every text facet, as written (withheld clusters
      included); counted over the values whose conversation has at least one answer;
    - ``released_cluster_texts``: names, descriptions and central summaries of every cluster the run shows,
      against every planted value of the corpus.

    Example:
        >>> leak_rates(convs, result)["facet_answers"]["share"]  # doctest: +SKIP
        0.0
    """
    answers = {cid: " ".join(v[i] for v in result.facets.values.values() if isinstance(v[i], str))
               for i, cid in enumerate(result.facets.ids)}
    planted = [(c.id, p["kind"], p["value"]) for c in conversations for p in c.metadata.get("pii", [])]
    raw = {c.id: "\n".join(m.content for m in c.messages) for c in conversations}
    by_kind: dict[str, list[int]] = {}
    leaky: set[str] = set()
    answered = [(cid, kind, value) for cid, kind, value in planted if answers.get(cid)]
    for cid, kind, value in answered:
        hit = survives(kind, value, answers[cid])
        counts = by_kind.setdefault(kind, [0, 0])
        counts[0] += hit
        counts[1] += 1
        if hit:
            leaky.add(cid)
    clusters = result.clusters_frame()
    shown = clusters[clusters["status"] == Status.SHOWN]
    texts = [t for _, r in shown.iterrows() for t in (r["name"], r["description"], *r["central_summaries"])]
    blob = "\n".join(texts)
    cluster_leaks = sorted({(kind, value) for _, kind, value in planted if survives(kind, value, blob)})
    leaky_texts = sum(any(survives(kind, value, t) for kind, value in cluster_leaks) for t in texts)

    def share(k: int, n: int) -> float | None:
        return round(k / n, 4) if n else None

    found_raw = sum(survives(kind, value, raw[cid]) for cid, kind, value in planted)
    n_leaks = sum(k for k, _ in by_kind.values())
    return {
        "conversations": len(conversations), "planted": len(planted),
        "conversations_with_planted": len({p[0] for p in planted}),
        "raw": {"found": found_raw, "share": share(found_raw, len(planted))},
        "facet_answers": {"values": len(answered), "surviving": n_leaks, "share": share(n_leaks, len(answered)),
                          "conversations_with_a_surviving_value": len(leaky),
                          "conversations_answered": len([cid for cid in raw if answers.get(cid)]),
                          "by_kind": {k: {"surviving": v[0], "values": v[1]} for k, v in sorted(by_kind.items())}},
        "released_cluster_texts": {"texts": len(texts), "surviving": len(cluster_leaks), "texts_with_a_value": leaky_texts,
                                   "kinds": sorted({k for k, _ in cluster_leaks})},
    }
