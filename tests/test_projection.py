import numpy as np
import pytest
from sklearn.datasets import make_blobs

from clio_lab import projection
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


def test_the_map_is_cached_under_everything_that_changes_it(tmp_path, monkeypatch):
    X, _ = _blobs(30)
    fits = []
    real = projection._pca
    monkeypatch.setattr(projection, "_pca", lambda A: fits.append(len(A)) or real(A))
    a = project(X, cache=tmp_path)
    assert fits == [30]
    assert np.array_equal(a, project(X, cache=tmp_path)) and fits == [30]  # answered from the cache
    project(X[:29], cache=tmp_path)  # other points: computed
    assert fits == [30, 29]
    # another release of the library that computes the map is another key
    monkeypatch.setattr(projection, "_library", lambda method: "numpy 0.0-other")
    project(X, cache=tmp_path)
    assert fits == [30, 29, 30]
    project(X, cache=None)  # no cache: always computed
    assert fits == [30, 29, 30, 30]


def test_the_umap_key_names_the_umap_learn_release():
    from importlib.metadata import version

    assert projection._library("umap") == f"umap-learn {version('umap-learn')}"


def test_bad_method():
    X, _ = _blobs(30)
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


@pytest.mark.parametrize("fit_sample", [20_000, 150])
def test_umap_is_fitted_on_distinct_rows_and_a_repeat_lands_on_its_twin(monkeypatch, fit_sample):
    """Exact repeats tie in UMAP's neighbour search and made a large map change from run to run (a 1M run's
    sample: 7,238 distinct rows of 20,000): UMAP now sees each distinct row once, and a repeat gets its twin's
    coordinates, whether it is in the fitted sample or transformed."""
    umap = pytest.importorskip("umap")
    X, y = _blobs(120)
    rows = np.r_[np.arange(120), np.arange(60), np.arange(30)]  # 90 repeats of 120 distinct rows
    seen = []
    real = umap.UMAP.fit_transform
    monkeypatch.setattr(umap.UMAP, "fit_transform", lambda self, A, *a, **k: seen.append(len(A)) or real(self, A, *a, **k))
    P = project(X[rows], method="umap", cache=None, fit_sample=fit_sample)
    assert P.shape == (210, 2) and np.isfinite(P).all()
    assert seen == [120 if fit_sample > 210 else len(np.unique(X[rows][np.sort(
        np.random.default_rng(0).choice(210, size=150, replace=False))], axis=0))]
    if fit_sample > 210:  # fitted together: every repeat is placed exactly on its twin
        assert np.array_equal(P[120:180], P[:60]) and np.array_equal(P[180:], P[:30])
    assert _separation(P[:120], y) > 2


_MAP_IN_A_NEW_PROCESS = """
import hashlib, sys
import numpy as np
import umap
from clio_lab import projection
X = np.random.default_rng(0).normal(size=(80, 16)).astype(np.float32)
Y = projection.umap_reduce(X)
kernels = [d for m in list(sys.modules.values()) if m is not None and getattr(m, "__name__", "").startswith("umap")
           for d in vars(m).values() if hasattr(d, "stats") and hasattr(d, "enable_caching")]
print(sum(sum(d.stats.cache_hits.values()) for d in kernels), sum(sum(d.stats.cache_misses.values()) for d in kernels),
      hashlib.sha256(Y.tobytes()).hexdigest())
"""


def _new_process(code: str, numba_dir) -> list[str]:
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(numba_dir)})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_umaps_kernels_are_compiled_once_per_install_and_give_the_same_map(tmp_path):
    """projection.cache_umap_kernels: a first process compiles umap's kernels into numba's disk cache (here a new
    NUMBA_CACHE_DIR), a second reads them back instead of compiling, and both draw the same map."""
    pytest.importorskip("umap")
    (hits1, _, map1), (hits2, _, map2) = (_new_process(_MAP_IN_A_NEW_PROCESS, tmp_path / "numba") for _ in range(2))
    assert int(hits1) == 0 and int(hits2) > 0 and map1 == map2
    assert any("umap" in p.name for p in (tmp_path / "numba").iterdir())


def test_make_setup_compiles_every_kernel_a_small_map_needs(tmp_path):
    """``make setup`` runs projection.compile_kernels (a map of 200 random 384-d points): afterwards a new process
    drawing another map (other size, other width) compiles no more of umap's kernels than a process whose cache
    that very map had filled (a few tiny ones with a signature in their decorator compile at import, uncached)."""
    pytest.importorskip("umap")
    _new_process("from clio_lab.projection import compile_kernels; compile_kernels()", tmp_path / "numba")
    hits, misses, map1 = _new_process(_MAP_IN_A_NEW_PROCESS, tmp_path / "numba")
    _, steady, map2 = _new_process(_MAP_IN_A_NEW_PROCESS, tmp_path / "numba")
    assert int(hits) > 0 and misses == steady and map1 == map2
