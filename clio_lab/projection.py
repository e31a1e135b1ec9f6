"""Step 6: a 2-D map of every conversation (Clio: UMAP, n_neighbors 15, min_dist 0, cosine).

UMAP is fitted on at most ``fit_sample`` points and the rest are placed with ``transform``: a fit on millions
of points does not finish on a small machine (../shared/ENVIRONMENT.md). Inputs too small for UMAP's
neighbour graph are projected with PCA instead. The result is cached per step like every array step.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, hash_array, make_key, resolve_cache

STEP_VERSION = 2  # 2: UMAP fitted on distinct rows, repeats placed on their twins
MIN_UMAP_POINTS = 50
# umap-learn's numba kernels kept compiled on disk (cache_umap_kernels; False: compiled anew in every process)
CACHE_UMAP_KERNELS = True
_kernels_cached = False


def cache_umap_kernels() -> int:
    """Turn numba's on-disk cache on for umap-learn's compiled functions; how many.

    umap-learn compiles its numba kernels the first time a process fits a map, and unlike pynndescent it does
    not declare them ``cache=True``, so every new process pays again: 12-16 s for a 200-point map on 2 cores,
    most of a small run's map step and of each notebook's first map (``benchmarks/new_process.py``). With
    numba's cache on (``Dispatcher.enable_caching``, before a kernel's first compile) the compiled code is kept
    beside umap's own files (numba's usual place; ``NUMBA_CACHE_DIR`` moves it) and read back by later
    processes: the same code, so the same map. Numba keys that cache on the function's source file and the CPU,
    and compiles again when either changes. Where it cannot keep a cache, or its internals differ from what
    this expects, the kernels are compiled in memory as before."""
    global _kernels_cached
    if _kernels_cached or not CACHE_UMAP_KERNELS:
        return 0
    _kernels_cached = True
    import sys

    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - another numba layout
        return 0
    n = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "umap" or name.startswith("umap.")):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, CPUDispatcher) and isinstance(getattr(obj, "_cache", None), NullCache):
                try:
                    obj.enable_caching()
                    n += 1
                except Exception:  # noqa: BLE001 - no cache folder numba can write: compiled in memory
                    continue
    return n


def compile_kernels(n: int = 200, dim: int = 384) -> float:
    """Fit one small map of random unit vectors, so that pynndescent's and umap's numba kernels are compiled into
    numba's disk cache; the seconds it took. ``make setup`` runs it: else
    the first run after an install compiles them inside its map step (about 45 s on 2 cores; BENCHMARKS.md,
    "What a new process pays for its first map"). Later processes read them back."""
    import time

    from .embeddings import l2_normalise

    start = time.perf_counter()
    umap_reduce(l2_normalise(np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)))
    return time.perf_counter() - start


def _library(method: str) -> str:
    """The library (and release) that computes the map: its version changes the coordinates."""
    from importlib.metadata import version

    return f"umap-learn {version('umap-learn')}" if method == "umap" else f"numpy {np.__version__}"


def _pca(X: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    if len(X) < 3:
        return np.zeros((len(X), 2), dtype=np.float32)
    out = PCA(n_components=2, random_state=0).fit_transform(X)
    return out.astype(np.float32)


def umap_reduce(X: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.0, metric: str = "cosine",
                random_state: int = 0, fit_sample: int = 20_000, n_components: int = 2) -> np.ndarray:
    """UMAP to ``n_components`` dimensions, fitted on at most ``fit_sample`` rows, the rest transformed."""
    try:
        import umap
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("UMAP needs `pip install 'clio-lab[cluster]'` (umap-learn)") from exc
    cache_umap_kernels()
    reducer = umap.UMAP(n_components=n_components, n_neighbors=min(n_neighbors, len(X) - 1), min_dist=min_dist, metric=metric,
                        random_state=random_state)
    with warnings.catch_warnings():
        # umap warns that a fixed random_state forces n_jobs=1 on every fit; reproducibility is the point here
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return _fit_umap(reducer, X, random_state, fit_sample, n_components)


def _fit_distinct(reducer: Any, X: np.ndarray) -> np.ndarray:
    """UMAP fitted on the distinct rows of ``X``; each row's coordinates (a repeat on its twin's).

    Exact repeats (the same conversation sent by many users) tie in UMAP's neighbour search, and the map then
    depends on thread timing: a 1,000,000-conversation run's 20,000-point sample held 7,238 distinct rows, and
    two fits of it gave different maps; two fits of its distinct rows gave the same one."""
    distinct, inverse = np.unique(X, axis=0, return_inverse=True)
    if len(distinct) < MIN_UMAP_POINTS:  # too few for a neighbour graph of their own
        return reducer.fit_transform(X).astype(np.float32)
    reducer.n_neighbors = min(reducer.n_neighbors, len(distinct) - 1)
    return reducer.fit_transform(distinct).astype(np.float32)[inverse.reshape(-1)]


def _fit_umap(reducer: Any, X: np.ndarray, random_state: int, fit_sample: int, n_components: int) -> np.ndarray:
    if len(X) <= fit_sample:
        return _fit_distinct(reducer, X)
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(X), size=fit_sample, replace=False))
    out = np.empty((len(X), n_components), dtype=np.float32)
    out[sample] = _fit_distinct(reducer, X[sample])
    rest = np.setdiff1d(np.arange(len(X)), sample)
    for start in range(0, len(rest), 50_000):  # bounded memory for the transform's neighbour search
        chunk = rest[start:start + 50_000]
        out[chunk] = reducer.transform(X[chunk])
    return out


def project(
    X: np.ndarray,
    *,
    method: Literal["auto", "umap", "pca"] = "auto",
    n_neighbors: int = 15,
    min_dist: float = 0.0,
    metric: str = "cosine",
    random_state: int = 0,
    fit_sample: int = 20_000,
    cache: CacheLike | str = "default",
) -> np.ndarray:
    """Project embeddings to 2-D for the map.

    Args:
        X: ``(n, d)`` embeddings.
        method: ``"umap"``, ``"pca"``, or ``"auto"`` (UMAP from 50 points up, PCA below).
        n_neighbors, min_dist, metric: UMAP settings (the paper's are the defaults).
        fit_sample: UMAP is fitted on at most this many points; the rest are transformed.

    Returns:
        ``(n, 2)`` float32 coordinates.

    Example:
        >>> project(np.random.default_rng(0).normal(size=(10, 5)), cache=None).shape
        (10, 2)
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"project() needs an (n, d) array, got shape {X.shape}")
    chosen = ("umap" if len(X) >= MIN_UMAP_POINTS else "pca") if method == "auto" else method
    if chosen not in ("umap", "pca"):
        raise ValueError(f"method must be 'auto', 'umap' or 'pca', not {method!r}")
    store = resolve_cache(cache)
    params = {"method": chosen, "n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric,
              "random_state": random_state, "fit_sample": fit_sample}
    # another umap-learn release can place the points elsewhere: its version is part of the key
    key = make_key(step="project", version=STEP_VERSION, X=hash_array(X), library=_library(chosen), **params)
    if store is not None:
        hit = store.get_array(key)
        if hit is not None:
            return hit
    out = _pca(X) if chosen == "pca" else umap_reduce(X, n_neighbors, min_dist, metric,
                                                                     random_state, fit_sample)
    if store is not None:
        store.set_array(key, out)
    return out
