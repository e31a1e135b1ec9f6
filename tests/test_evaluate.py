import pytest

from clio_lab.evaluate import cluster_accuracy, cluster_scores


def test_perfect_and_permuted_labels_score_one():
    truth = ["a", "a", "b", "b", "c", "c"]
    assert cluster_scores(truth, [2, 2, 0, 0, 1, 1]) == pytest.approx({"acc": 1, "nmi": 1, "ari": 1, "v_measure": 1})


def test_accuracy_uses_one_to_one_matching():
    # Two classes merged into one cluster: at most one of them can be matched.
    assert cluster_accuracy(["a", "a", "b", "b"], [0, 0, 0, 0]) == 0.5
    assert cluster_accuracy(["a", "a", "a", "b"], [0, 1, 1, 1]) == 0.5
