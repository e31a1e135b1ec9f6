import numpy as np
import pytest
from sklearn.datasets import make_blobs

from clio_lab.projection import project


def _blobs(n=300):
    X, y = make_blobs(n_samples=n, centers=4, n_features=16, cluster_std=0.5, random_state=1)
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def _separation(P, y):
    """Mean distance between class centres over mean spread inside classes: > 1 when classes stay apart."""
    centres = np.stack([P[y == c].mean(axis=0) for c in np.unique(y)])
    between = np.mean([np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]])
    within = np.mean([np.linalg.norm(P[y == c] - centres[c], axis=1).mean() for c in np.unique(y)])
    return between / within


def test_tiny_inputs_use_pca_and_keep_structure():
    X, y = _blobs(40)
    P = project(X, cache=None)
    assert P.shape == (40, 2) and P.dtype == np.float32
    assert _separation(P, y) > 2


def test_cached_and_bad_method(tmp_path):
    X, _ = _blobs(30)
    a = project(X, cache=tmp_path)
    assert np.array_equal(a, project(X, cache=tmp_path))
    with pytest.raises(ValueError, match="method"):
        project(X, method="tsne", cache=None)


@pytest.mark.slow
def test_umap_fit_on_a_sample_then_transform_keeps_clusters_apart():
    X, y = _blobs(600)
    full = project(X, method="umap", cache=None)
    sampled = project(X, method="umap", fit_sample=200, cache=None)
    assert full.shape == sampled.shape == (600, 2)
    assert np.isfinite(sampled).all()
    assert _separation(full, y) > 3 and _separation(sampled, y) > 3
