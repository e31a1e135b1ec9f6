"""Step 3: base clustering of the embeddings (k-means, as in the paper, or HDBSCAN).

``cluster(X, method="kmeans", k=None)`` returns a :class:`Clustering` with ``.labels``. The default k
follows the data: ``2 sqrt(n)``, capped so that an average cluster keeps 12 conversations (Clio's aggregation
threshold withholds smaller ones), never below ``sqrt(n)``: see :func:`default_k` (peers use sqrt(n) or n/10).
For more than 50,000 items k-means becomes MiniBatchKMeans.

HDBSCAN's noise points keep the label ``-1``, shown as an explicit "unclustered" group rather than forced into a
cluster. Density in 384 dimensions is nearly flat, so by default the embeddings are first reduced to 5
dimensions with UMAP (n_neighbors 15, min_dist 0, cosine: BERTopic's recipe), and the smallest cluster is a
quarter of the k-means default's mean size, ``max(5, round(sqrt(n) / 4))``, with ``min_samples=5``. These were
chosen on the bundled synthetic corpus; on Banking77, held out, they lift NMI from 16 (raw 384-d, old defaults)
to about 80 (BENCHMARKS.md). ``reduce_dims=None`` clusters the raw embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, hash_array, make_key, resolve_cache

STEP_VERSION = 2  # 2: HDBSCAN on a 5-D UMAP reduction by default
NOISE = -1


def default_k(n: int) -> int:
    """The default number of base clusters for ``n`` items: ``2 sqrt(n)``, but no more than would leave an
    average cluster of 12 conversations (so that most clusters clear the aggregation threshold of 10), and no
    fewer than ``sqrt(n)``; at least 2, at most n.

    Measured on synthetic corpora other than the bundled one (benchmarks/naming_quality.py, dev split), going
    from sqrt(n) to 2 sqrt(n) base clusters raised the recovery of the known sub-topics from 64% to 75% and
    the naming accuracy from 55% to 59% at 1,000 conversations; the tree above needs leaves to group.

    Example:
        >>> default_k(200), default_k(1000), default_k(10_000)
        (17, 63, 200)
    """
    if n < 2:
        return 1
    k = min(2 * math.sqrt(n), max(math.sqrt(n), n / 12))
    return int(min(n, max(2, round(k))))


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's default smallest cluster for ``n`` items: a quarter of sqrt(n), at least 5."""
    return max(5, round(math.sqrt(n) / 4))


@dataclass
class Clustering:
    """The result of :func:`cluster`."""

    labels: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    centroids: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return len(set(self.labels.tolist()) - {NOISE})

    @property
    def n_noise(self) -> int:
        return int((self.labels == NOISE).sum())

    def sizes(self) -> dict[int, int]:
        ids, counts = np.unique(self.labels, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def _centroids(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    ids = sorted(set(labels.tolist()) - {NOISE})
    return np.stack([X[labels == i].mean(axis=0) for i in ids]) if ids else np.zeros((0, X.shape[1]), np.float32)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1, largest first, so that ids are stable and readable."""
    ids, counts = np.unique(labels[labels != NOISE], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(v), NOISE) for v in labels], dtype=np.int64)


def _fit(X: np.ndarray, method: str, k: int | None, random_state: int, params: dict[str, Any]) -> np.ndarray:
    if method == "kmeans":
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if len(X) > 50_000:
            model = MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=3, batch_size=4096, **params)
        else:
            model = KMeans(n_clusters=k, random_state=random_state, n_init=params.pop("n_init", 3), **params)
        return model.fit_predict(X)
    if method == "hdbscan":
        try:
            import hdbscan
        except ImportError as exc:  # pragma: no cover
            raise ImportError("HDBSCAN needs `pip install 'clio-lab[cluster]'`") from exc
        reduce_dims = params.pop("reduce_dims", 5)
        n_neighbors = int(params.pop("n_neighbors", 15))
        if reduce_dims and len(X) >= 50 and X.shape[1] > reduce_dims:
            from .projection import umap_reduce

            X = umap_reduce(X, random_state=random_state, n_components=int(reduce_dims), n_neighbors=n_neighbors)
        defaults = {"min_cluster_size": default_min_cluster_size(len(X)), "min_samples": 5, "metric": "euclidean"}
        return hdbscan.HDBSCAN(**{**defaults, **params}).fit_predict(X.astype(np.float64))
    raise ValueError(f"unknown clustering method {method!r}: use 'kmeans', 'hdbscan' or a clusterer object")


def cluster(
    X: np.ndarray,
    method: Literal["kmeans", "hdbscan"] | Any = "kmeans",
    k: int | None = None,
    random_state: int = 0,
    *,
    cache: CacheLike | str = "default",
    **params: Any,
) -> Clustering:
    """Cluster embeddings.

    Args:
        X: an ``(n, d)`` array (rows L2-normalised, as :func:`~clio_lab.embed` returns them).
        method: ``"kmeans"`` (the paper's choice), ``"hdbscan"``, or any scikit-learn-style object with
            ``fit`` and ``labels_``.
        k: number of clusters for k-means; default :func:`default_k`.
        random_state: seed; the same seed gives the same labels.
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None``.
        **params: passed to the clusterer (e.g. ``min_cluster_size`` for HDBSCAN, or ``reduce_dims=None`` to
            run HDBSCAN on the raw embeddings instead of their 5-D UMAP reduction; ``n_neighbors``, default
            15, is that reduction's UMAP neighbourhood).

    Example:
        >>> from sklearn.datasets import make_blobs
        >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
        >>> cluster(X, k=3, cache=None).n_clusters
        3
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"cluster() needs a non-empty (n, d) array, got shape {X.shape}")
    custom = not isinstance(method, str)
    name = type(method).__name__ if custom else method
    if name == "kmeans":
        k = default_k(len(X)) if k is None else int(k)
        if not 1 <= k <= len(X):
            raise ValueError(f"k={k} must be between 1 and the number of items ({len(X)})")
    key_params = {"method": method.get_params() if custom and hasattr(method, "get_params") else name,
                  "k": k if name == "kmeans" else None, "random_state": random_state, "params": params}
    store = resolve_cache(cache) if not custom or hasattr(method, "get_params") else None
    key = make_key(step="cluster", version=STEP_VERSION, sklearn=_sklearn_version(), X=hash_array(X), **key_params)
    labels = store.get_array(key) if store is not None else None
    if labels is None:
        if custom:
            labels = np.asarray(method.fit(X).labels_)
        else:
            labels = _fit(X, name, k, random_state, dict(params))
        labels = _relabel_by_size(np.asarray(labels))
        if store is not None:
            store.set_array(key, labels)
    return Clustering(labels=labels, method=name, params=key_params, centroids=_centroids(X, labels))


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def kmeans_groups(V: np.ndarray, k: int, random_state: int) -> np.ndarray:
    """k-means labels of the rows of ``V`` (k clipped to 1..len(V)): the hierarchy's grouping of clusters."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(V)))
    if k == 1:
        return np.zeros(len(V), dtype=int)
    return KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(V)
