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
