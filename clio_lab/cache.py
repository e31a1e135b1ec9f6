"""The cache every step shares: per item for LLM calls, per step for array results.

A key is the SHA-256 of canonical JSON naming everything that changes the answer (step, step version,
prompt template text, model, parameters, a content hash of the inputs). Secrets never go in: callers pass
only parameters, and :func:`make_key` refuses names that look like credentials.

Values are stored as JSON text or as raw ``.npy`` bytes, never as pickles: loading a pickle runs code, so
:class:`SafeDisk` refuses to read one even if something else wrote it into the folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import diskcache
import numpy as np

DEFAULT_DIR_ENV = "CLIO_LAB_CACHE"
ARRAY_FILE_BYTES = 1 << 24  # arrays from 16 MB up go to and from the cache through a file, not a bytes value
_SECRET_NAMES = {"api_key", "apikey", "secret", "token", "password", "authorization", "access_token", "api_token",
                 "auth_token", "bearer"}
_SECRET_SUFFIXES = ("_api_key", "_secret", "_password", "_access_token")


class SafeDisk(diskcache.Disk):
    """A diskcache Disk that never unpickles."""

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise ValueError("clio_lab cache refuses to load a pickled value (possible tampering)")
        return super().fetch(mode, filename, value, read)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not read and not isinstance(value, bytes | str | int | float):
            raise TypeError(f"clio_lab cache stores only JSON text or bytes, not {type(value).__name__}")
        return super().store(value, read, key=key)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray_sha256__": hash_array(obj)}
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj) if isinstance(obj, set | frozenset) else list(obj)
    if hasattr(obj, "get_params"):
        return {"class": type(obj).__qualname__, "params": obj.get_params()}
    raise TypeError(f"cannot put {type(obj).__name__} in a cache key")


def _check_no_secrets(obj: Any, path: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = str(k).lower()
            if (name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)) and v not in (None, "", 0):
                raise ValueError(f"cache key part {path}{k!r} looks like a secret; leave it out of the key")
            _check_no_secrets(v, f"{path}{k}.")


def make_key(**parts: Any) -> str:
    """Hash the parts that determine an answer into a cache key.

    Example:
        >>> make_key(step="embed", model="m", texts=["a"]) == make_key(texts=["a"], model="m", step="embed")
        True
    """
    _check_no_secrets(parts)
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def hash_texts(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def hash_array(arr: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes, read in place (``tobytes()`` would copy a million
    embeddings, 1.5 GB, for every step that keys on them)."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(str((arr.dtype.str, arr.shape)).encode())
    try:
        h.update(arr.reshape(-1).view(np.uint8))  # the same bytes as tobytes(), without the copy
    except (TypeError, ValueError):  # object arrays have no bytes of their own to view
        h.update(arr.tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get(DEFAULT_DIR_ENV) or Path.home() / ".cache" / "clio_lab")


class Cache:
    """A folder of cached step results.

    Args:
        directory: where to keep it; created private to the user (mode 700).

    Example:
        >>> import tempfile
        >>> c = Cache(tempfile.mkdtemp())
        >>> c.set("k", {"a": 1}); c.get("k")
        {'a': 1}
    """

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._dc = diskcache.Cache(str(self.directory), disk=SafeDisk, size_limit=2**36,
                                   eviction_policy="none")

    def __repr__(self) -> str:
        return f"Cache({str(self.directory)!r})"

    def get(self, key: str) -> Any | None:
        raw = self._dc.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self._dc.set(key, canonical_json(value))

    def get_array(self, key: str) -> np.ndarray | None:
        raw = self._dc.get("npy:" + key, read=True)  # a large value comes as its open file: read once, in place
        if raw is None:
            return None
        if isinstance(raw, bytes):
            return np.load(io.BytesIO(raw), allow_pickle=False)
        with raw:
            return np.load(raw, allow_pickle=False)

    def set_array(self, key: str, arr: np.ndarray) -> None:
        arr = np.asarray(arr)
        if arr.nbytes < ARRAY_FILE_BYTES:
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            self._dc.set("npy:" + key, buf.getvalue())
            return
        # written to a file beside the cache and streamed in: the .npy bytes of a million embeddings never sit in
        # memory beside the array (twice over, as a BytesIO and its value: 3 GB at 1,000,000 rows)
        with tempfile.TemporaryFile(dir=self.directory, buffering=0) as f:  # unbuffered: np.save writes it in place
            np.save(f, arr, allow_pickle=False)
            f.seek(0)
            self._dc.set("npy:" + key, f, read=True)

    def __contains__(self, key: str) -> bool:
        return key in self._dc or ("npy:" + key) in self._dc

    def __bool__(self) -> bool:  # an empty cache is still a cache (``if cache:`` must not turn it off)
        return True

    def __len__(self) -> int:
        return len(self._dc)

    def clear(self) -> None:
        self._dc.clear()

    def close(self) -> None:
        self._dc.close()


class MemoryCache:
    """A :class:`Cache` held in memory, for one batch of work on a cluster's worker (:mod:`clio_lab.engine`): the
    same values (JSON round-tripped, as on disk), gone with the process; what it holds goes back to the run's own
    cache."""

    def __init__(self) -> None:
        self._d: dict[str, Any] = {}
        self.directory = None

    def get(self, key: str) -> Any | None:
        raw = self._d.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self._d[key] = canonical_json(value)

    def get_array(self, key: str) -> np.ndarray | None:
        arr = self._d.get("npy:" + key)
        return None if arr is None else arr.copy()

    def set_array(self, key: str, arr: np.ndarray) -> None:
        self._d["npy:" + key] = np.array(arr)

    def __contains__(self, key: str) -> bool:
        return key in self._d or ("npy:" + key) in self._d

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._d)


CacheLike = Cache | MemoryCache | str | Path | None


def resolve_cache(cache: CacheLike | str) -> Cache | None:
    """``"default"`` → the user's cache folder; a path → a cache there; ``None`` → caching off."""
    if cache is None:
        return None
    if isinstance(cache, Cache | MemoryCache):
        return cache
    if cache == "default":
        return _default_cache()
    return Cache(cache)


_DEFAULT: dict[str, Cache] = {}


def _default_cache() -> Cache:
    path = str(default_cache_dir())
    if path not in _DEFAULT:
        _DEFAULT[path] = Cache(path)
    return _DEFAULT[path]
