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
