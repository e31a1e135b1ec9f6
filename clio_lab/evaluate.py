"""Metrics against ground truth: clustering accuracy (Hungarian matching), NMI, ARI and V-measure.

Used by the benchmarks and the validation notebooks; scores are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
