import numpy as np
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


def test_leak_rates_count_planted_values_per_stage_and_the_pii_check_removes_them(tmp_path, fake_llm, fake_embedder):
    import clio_lab
    from clio_lab import LLM
    from clio_lab.evaluate import leak_rates, survives

    assert survives("id_number", "558-21-2318", "id 558212318") and not survives("email", "a.b@x.org", "a letter")
    email = "dana.whitfield@example.com"  # the address the fake model plants in its answers
    convs = [clio_lab.Conversation(id=str(i), user_id=f"u{i}", messages=[clio_lab.Message(
        role="user", content=f"please fix my python loop number {i}, mail {email}")],
        metadata={"pii": [{"kind": "email", "value": email}]}) for i in range(12)]
    kw = dict(llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder, k=2, audit=False,
              min_conversations=None, min_users=None, naming="keywords", progress=False)
    fake_llm.leak_first = 100
    leaky = leak_rates(convs, clio_lab.run_pipeline(convs, cache=tmp_path / "a", pii=False, **kw))
    assert leaky["raw"] == {"found": 12, "share": 1.0}
    assert leaky["facet_answers"]["surviving"] == 12 and leaky["facet_answers"]["share"] == 1.0
    assert leaky["released_cluster_texts"]["surviving"] == 1  # the same address in the central summaries
    assert leaky["conversations"] == leaky["conversations_with_planted"] == 12
    assert leaky["facet_answers"]["conversations_with_a_surviving_value"] == 12
    assert leaky["facet_answers"]["conversations_answered"] == 12
    released = leaky["released_cluster_texts"]
    assert 0 < released["texts_with_a_value"] < released["texts"]  # the central summaries, not the keyword names
    fake_llm.reset()
    fake_llm.leak_first = 100
    checked = leak_rates(convs, clio_lab.run_pipeline(convs, cache=tmp_path / "b", pii=True, **kw))
    assert checked["facet_answers"]["surviving"] == 0 and checked["released_cluster_texts"]["surviving"] == 0
    assert checked["released_cluster_texts"]["texts_with_a_value"] == 0


def test_scores_by_level_score_every_level_of_a_tree():
    import numpy as np

    from clio_lab.evaluate import scores_by_level
    from clio_lab.hierarchy import Hierarchy, Node

    nodes = {"0.0": Node("0.0", 0, 0, "a1", "", 2, "llm", "1.0"), "0.1": Node("0.1", 0, 1, "a2", "", 2, "llm", "1.0"),
             "0.2": Node("0.2", 0, 2, "b", "", 2, "llm", "1.1"),
             "1.0": Node("1.0", 1, 0, "A", "", 4, "llm", None, ["0.0", "0.1"]),
             "1.1": Node("1.1", 1, 1, "B", "", 2, "llm", None, ["0.2"])}
    tree = Hierarchy(nodes, np.array([0, 0, 1, 1, 2, 2]))
    df = scores_by_level(tree, ["a", "a", "a", "a", "b", "b"])
    assert df["clusters"].tolist() == [3, 2] and df["level"].tolist() == [0, 1]
    assert df.loc[1, "acc"] == 1.0 and df.loc[1, "nmi"] == 1.0 and df.loc[0, "acc"] < 1.0
    with pytest.raises(ValueError, match="align"):
        scores_by_level(tree, ["a"])


def test_compare_settings_scores_every_embedding_setting_and_seed():
    from sklearn.datasets import make_blobs

    from clio_lab.evaluate import compare_settings

    X, y = make_blobs(n_samples=150, centers=3, cluster_std=0.5, random_state=0)
    noise = np.random.default_rng(0).normal(size=X.shape)
    frame = compare_settings({"blobs": X, "noise": noise}, y,
                             [{"method": "kmeans", "k": 3}, {"method": "kmeans", "k": 6},
                              {"method": "hdbscan", "min_cluster_size": 10, "reduce_dims": None}],
                             seeds=(0, 1), cache=None)
    assert len(frame) == 2 * 3 * 2
    assert {"embedding", "method", "k", "min_cluster_size", "seed", "clusters", "noise", "acc", "nmi"} <= set(frame)
    best = frame[(frame["embedding"] == "blobs") & (frame["k"] == 3)]
    assert (best["acc"] == 1.0).all() and (best["clusters"] == 3).all()
    assert frame[frame["embedding"] == "noise"]["nmi"].max() < 0.2
    with pytest.raises(ValueError, match="rows"):
        compare_settings({"short": X[:10]}, y, [{"method": "kmeans", "k": 3}], cache=None)


def test_map_quality_tells_a_faithful_map_from_a_shuffled_one():
    from sklearn.datasets import make_blobs

    from clio_lab.evaluate import map_quality

    plane, y = make_blobs(n_samples=300, centers=4, n_features=2, random_state=1)
    X = np.hstack([plane, 0.1 * np.random.default_rng(1).normal(size=(300, 8))])  # the map keeps the plane
    good = plane
    bad = np.random.default_rng(0).permutation(good)
    q_good, q_bad = map_quality(X, good, y), map_quality(X, bad, y)
    assert q_good["trustworthiness"] > 0.85 > 0.6 > q_bad["trustworthiness"]
    assert q_good["knn_agreement_2d"] > 0.9 > 0.4 > q_bad["knn_agreement_2d"]
    assert q_good["knn_agreement_full"] == q_bad["knn_agreement_full"] > 0.9


def test_a_trade_word_of_a_planted_employer_is_no_leak_but_its_name_is():
    from clio_lab.evaluate import planted_parts, survives

    # found by notebook 04: "Crescent Dental Clinic" counted as leaked into "a dental appointment"
    assert planted_parts("employer", "Crescent Dental Clinic") == ["Crescent"]
    assert not survives("employer", "Crescent Dental Clinic", "diagnose a problem with a dental appointment.")
    assert survives("employer", "Crescent Dental Clinic", "a complaint about Crescent's billing")
    assert survives("employer", "Northwind Logistics", "works at northwind")
