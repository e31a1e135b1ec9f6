import pickle

import numpy as np
import pytest

from clio_lab.cache import Cache, make_key, resolve_cache


def test_key_is_canonical_and_names_every_part():
    assert make_key(step="s", params={"a": 1, "b": 2}) == make_key(params={"b": 2, "a": 1}, step="s")
    assert make_key(step="s", params={"a": 1}) != make_key(step="s", params={"a": 2})
    assert make_key(step="s", version=1) != make_key(step="s", version=2)


def test_key_refuses_secrets():
    with pytest.raises(ValueError, match="secret"):
        make_key(step="s", llm={"model": "m", "api_key": "sk-123"})
    make_key(step="s", llm={"model": "m", "api_key": None, "max_tokens": 10})  # names alike are fine


def test_json_and_array_round_trip(tmp_path):
    cache = Cache(tmp_path / "c")
    cache.set("k", {"value": "answer", "n": [1, 2]})
    assert cache.get("k") == {"value": "answer", "n": [1, 2]}
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.set_array("a", arr)
    back = cache.get_array("a")
    assert back.dtype == np.float32 and np.array_equal(back, arr)
    assert cache.get("missing") is None and cache.get_array("missing") is None
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700


def test_refuses_to_unpickle_a_planted_value(tmp_path):
    cache = Cache(tmp_path / "c")
    payload = pickle.dumps(object())
    cache._dc.set("evil", payload)  # stored as bytes: comes back as the same bytes, never unpickled
    assert cache._dc.get("evil") == payload
    import diskcache

    plain = diskcache.Cache(str(tmp_path / "c"))  # another writer that pickles
    plain.set("planted", {"a": object.__name__})
    with pytest.raises(ValueError, match="refuses to load a pickled value"):
        cache._dc.get("planted")


def test_resolve_cache_none_turns_caching_off(tmp_path):
    assert resolve_cache(None) is None
    assert resolve_cache(tmp_path / "x").directory == tmp_path / "x"


def test_a_large_array_goes_through_a_file_and_old_bytes_entries_still_load(tmp_path, monkeypatch):
    import io

    import clio_lab.cache as cache_mod

    monkeypatch.setattr(cache_mod, "ARRAY_FILE_BYTES", 1024)  # the file path without a 16 MB array
    cache = Cache(tmp_path / "c")
    big = np.random.default_rng(0).random((500, 8)).astype(np.float32)  # 16 KB
    cache.set_array("big", big)
    back = cache.get_array("big")
    assert back.dtype == np.float32 and np.array_equal(back, big)
    assert back.flags.writeable  # an array of its own, not a view of a file the cache may drop
    stored = cache._dc.get("npy:big", read=True)
    assert not isinstance(stored, bytes)  # diskcache holds it as a file (streamed in, read from its handle)
    stored.close()
    # the value is a file of the cache's own; the temporary .npy beside it is gone
    assert [p.name for p in (tmp_path / "c").iterdir() if p.is_file() and not p.name.startswith("cache.db")] == []
    buf = io.BytesIO()
    np.save(buf, big)
    cache._dc.set("npy:old", buf.getvalue())  # how every array was stored before (bytes; a file when large)
    assert np.array_equal(cache.get_array("old"), big)
    small = np.arange(4)
    cache.set_array("small", small)  # below the size: bytes in the database, as before
    assert np.array_equal(cache.get_array("small"), small)


def test_hash_array_hashes_the_same_bytes_as_before_without_copying_them():
    import hashlib

    from clio_lab.cache import hash_array

    def by_copy(arr):  # the hash every cached key was made with
        arr = np.ascontiguousarray(arr)
        h = hashlib.sha256(str((arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
        return h.hexdigest()

    rng = np.random.default_rng(1)
    for arr in (rng.random((50, 7)).astype(np.float32), np.arange(10), np.array(2.5), np.zeros((0, 3)),
                np.array(["ab", "c"]), np.asfortranarray(rng.random((4, 3))), rng.random((6, 6))[:, ::2],
                np.array([True, False]), np.array([{"a": 1}], dtype=object)):
        assert hash_array(arr) == by_copy(arr), arr
    assert hash_array(np.ones(3)) != hash_array(np.ones((3, 1)))  # the shape is part of it


def test_a_large_array_is_cached_and_hashed_without_a_second_copy_in_memory(tmp_path):
    import tracemalloc

    from clio_lab.cache import ARRAY_FILE_BYTES, hash_array

    cache = Cache(tmp_path / "c")
    X = np.random.default_rng(2).random((160_000, 64)).astype(np.float32)  # 41 MB
    assert X.nbytes > ARRAY_FILE_BYTES

    def peak_of(fn):
        tracemalloc.start()
        try:
            out = fn()
            return out, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    _, written = peak_of(lambda: cache.set_array("X", X))
    back, read = peak_of(lambda: cache.get_array("X"))
    _, hashed = peak_of(lambda: hash_array(X))
    assert np.array_equal(back, X)
    # as bytes, writing held the .npy twice over (2x the array) and reading held the bytes beside the array (2x);
    # streamed, what is held is diskcache's copying buffer (4 MB chunks), whatever the array's size
    assert written < 0.3 * X.nbytes, written
    assert read < 1.1 * X.nbytes, read
    assert hashed < 0.01 * X.nbytes, hashed
