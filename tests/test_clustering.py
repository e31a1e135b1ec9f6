import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clio_lab import cluster, default_k
from clio_lab.clustering import NOISE, default_min_cluster_size


@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=300, centers=6, cluster_std=0.6, n_features=8, random_state=3)
    return X.astype(np.float32), y


def test_kmeans_recovers_blobs_and_is_deterministic(blobs):
    X, y = blobs
    a = cluster(X, k=6, random_state=1, cache=None)
    b = cluster(X, k=6, random_state=1, cache=None)
    assert adjusted_rand_score(y, a.labels) > 0.95
    assert np.array_equal(a.labels, b.labels)
    assert a.n_clusters == 6 and a.centroids.shape == (6, 8)
    sizes = list(a.sizes().values())
    assert sizes == sorted(sizes, reverse=True)  # ids ordered largest first


def test_default_k_rule():
    assert default_k(200) == 17 and default_k(300) == 25 and default_k(10_000) == 200 and default_k(1) == 1
    assert default_k(3) == 2 and default_k(1_000_000) == 2000  # 2 sqrt(n), at most n / 12, at least sqrt(n)


def test_hdbscan_keeps_noise_visible(blobs):
    X, y = blobs
    rng = np.random.default_rng(0)
    noisy = np.vstack([X, rng.uniform(X.min() * 3, X.max() * 3, size=(30, X.shape[1])).astype(np.float32)])
    raw = cluster(noisy, method="hdbscan", cache=None, min_cluster_size=10, reduce_dims=None)
    assert raw.n_noise > 0 and NOISE in raw.sizes()
    assert adjusted_rand_score(y, raw.labels[:300]) > 0.8
    # the default: a 5-D UMAP reduction first, min_cluster_size from n; deterministic under random_state
    a = cluster(noisy, method="hdbscan", cache=None, random_state=2)
    b = cluster(noisy, method="hdbscan", cache=None, random_state=2)
    assert np.array_equal(a.labels, b.labels) and adjusted_rand_score(y, a.labels[:300]) > 0.8
    assert default_min_cluster_size(330) == 5 and default_min_cluster_size(100_000) == 79


def test_large_inputs_use_minibatch_kmeans(monkeypatch):
    import sklearn.cluster

    used = []
    real = sklearn.cluster.MiniBatchKMeans
    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", lambda **kw: used.append(kw) or real(**kw))
    X, y = make_blobs(n_samples=60_000, centers=8, cluster_std=0.5, n_features=16, random_state=0)
    a = cluster(X.astype(np.float32), k=8, random_state=0, cache=None)
    assert used and used[0]["n_clusters"] == 8
    assert adjusted_rand_score(y, a.labels) > 0.95 and a.n_clusters == 8
    b = cluster(X.astype(np.float32), k=8, random_state=0, cache=None)
    assert np.array_equal(a.labels, b.labels)


def test_any_sklearn_style_clusterer(blobs):
    from sklearn.cluster import AgglomerativeClustering

    X, y = blobs
    res = cluster(X, method=AgglomerativeClustering(n_clusters=6), cache=None)
    assert res.method == "AgglomerativeClustering" and adjusted_rand_score(y, res.labels) > 0.95


def test_bad_k_is_a_clear_error(blobs):
    with pytest.raises(ValueError, match="k=500"):
        cluster(blobs[0], k=500, cache=None)


def test_cached_result_is_reused(tmp_path, blobs, monkeypatch):
    X, _ = blobs
    first = cluster(X, k=6, cache=tmp_path)
    import clio_lab.clustering as mod

    monkeypatch.setattr(mod, "_fit", lambda *a, **k: pytest.fail("should come from the cache"))
    assert np.array_equal(cluster(X, k=6, cache=tmp_path).labels, first.labels)
