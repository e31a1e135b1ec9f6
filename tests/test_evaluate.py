import pytest

from clio_lab.evaluate import cluster_accuracy, cluster_scores


def test_perfect_and_permuted_labels_score_one():
    truth = ["a", "a", "b", "b", "c", "c"]
    assert cluster_scores(truth, [2, 2, 0, 0, 1, 1]) == pytest.approx({"acc": 1, "nmi": 1, "ari": 1, "v_measure": 1})


def test_accuracy_uses_one_to_one_matching():
    # Two classes merged into one cluster: at most one of them can be matched.
    assert cluster_accuracy(["a", "a", "b", "b"], [0, 0, 0, 0]) == 0.5
    assert cluster_accuracy(["a", "a", "a", "b"], [0, 1, 1, 1]) == 0.5


def test_reconstruction_accuracy_assigns_each_cluster_its_majority_category():
    from clio_lab.evaluate import reconstruction_accuracy

    truth = ["code"] * 4 + ["food"] * 4 + ["trip"] * 2
    labels = [0, 0, 1, 1, 2, 2, 2, 0, 3, -1]  # cluster 0 is mostly code; one trip item unclustered
    langs = ["en", "de"] * 5
    r = reconstruction_accuracy(truth, labels, groups=langs)
    # correct: items 0,1,2,3 (clusters 0,1 = code), 4,5,6 (cluster 2 = food), 8 (cluster 3 = trip)
    assert r["accuracy"] == 0.8 and r["clusters"] == 4
    assert abs(r["chance"] - 1 / 3) < 1e-9 and r["majority_class"] == 0.4
    assert r["by_group"] == {"en": {"accuracy": 1.0, "n": 5}, "de": {"accuracy": 0.6, "n": 5}}  # 7 and 9 wrong
    # finer clusters than categories are not penalised: that is what "assigned" means in the paper
    assert reconstruction_accuracy(truth, list(range(10)))["accuracy"] == 1.0
