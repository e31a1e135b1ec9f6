"""Model calls through the provider's batch API (clio_lab.llm.batches), against a local server that implements
OpenAI's /v1/files and /v1/batches endpoints (tests/fake_openai.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply

import clio_lab
from clio_lab import LLM
from clio_lab.cache import Cache
from clio_lab.engine import resolve_engine
from clio_lab.llm.batches import BatchAPIEngine, batch_provider

DEMO = Path(__file__).parent.parent / "datasets" / "clio_demo.jsonl"


def _plan(body: dict, n: int) -> Reply:
    """Answers that follow the conversation; one in five names a person (re-asked, then kept redacted); one in
    seven is a bare "ok" the first time it is asked (too short: re-asked), a full answer the second time."""
    prompt = "".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    said = re.findall(r"(?:User|user): (.+)", prompt)
    words = re.findall(r"[A-Za-z]+", said[-1] if said else "things")
    if len(words) % 7 == 3 and not body.get("seed"):
        return Reply(content="ok")
    named = " for Maria Lopez" if len(words) % 5 == 0 else ""
    return Reply(content=f"The user asked for help with {' '.join(words[:6]).lower()}{named} today.")


def _llm(server: FakeOpenAI) -> LLM:
    return LLM(model="openai/gpt-4o-mini", api_base=server.url, api_key="sk-test", max_retries=1, timeout=10.0)


def _facets(server, cache, engine=None):
    convs = clio_lab.load_conversations(DEMO, limit=60)
    return clio_lab.extract_facets(convs, llm=_llm(server), cache=cache, examples="fixed", progress=False,
                                   engine=engine)


def test_batches_give_the_live_answers_in_rounds_and_fill_the_cache(tmp_path):
    import litellm

    with FakeOpenAI(_plan) as server:
        live = _facets(server, Cache(tmp_path / "live"))
        sent_live = len(server.requests)
        cache = Cache(tmp_path / "batch")
        batched = _facets(server, cache, BatchAPIEngine(poll_s=0.01))
        sent_batched = len(server.requests) - sent_live
        again = _facets(server, cache)  # live, from the cache the batches filled
        sent_again = len(server.requests) - sent_live - sent_batched
        lines = list(server.batch_lines)

    assert batched.values == live.values == again.values
    assert batched.pii == live.pii and live.pii["request"]["redacted"] > 0
    assert not batched.failures and sent_batched == sent_live and sent_again == 0
    # round 1: every conversation; round 2: the 14 answers that failed validation or named someone; round 3: the
    # 5 whose second answer named someone after a bare "ok" (a named answer that came back word for word is kept
    # redacted after round 2: a third ask of the same prompt would buy the same answer)
    assert lines == [60, 14, 5] and sum(lines) == sent_batched
    assert batched.stats.calls == live.stats.calls and batched.stats.retries == live.stats.retries
    info = litellm.get_model_info("gpt-4o-mini")
    assert batched.stats.cost_known and batched.stats.cost_usd == pytest.approx(
        batched.stats.prompt_tokens * info["input_cost_per_token_batches"]
        + batched.stats.completion_tokens * info["output_cost_per_token_batches"])
    assert live.stats.cost_known and batched.stats.cost_usd < live.stats.cost_usd  # batch prices are lower


def test_a_failed_batch_fails_its_calls_and_caches_nothing(tmp_path):
    cache = Cache(tmp_path / "c")
    with FakeOpenAI(_plan, batch_status="failed") as server:
        res = _facets(server, cache, BatchAPIEngine(poll_s=0.01))
    assert len(res.failures) == 60 and all(v is None for v in res.values["request"])
    assert all("batch_1 ended failed" in f["reason"] for f in res.failures)
    with FakeOpenAI(_plan) as server:  # a later live run asks every one of them
        again = _facets(server, cache)
        assert not again.failures and again.stats.cache_hits == 0


def test_lines_answered_with_an_error_are_failed_calls(tmp_path):
    def plan(body: dict, n: int) -> Reply:
        return Reply(status=500) if n % 4 == 0 else _plan(body, n)

    with FakeOpenAI(plan) as server:
        res = _facets(server, Cache(tmp_path / "c"), BatchAPIEngine(poll_s=0.01))
    failed = [f for f in res.failures if "status 500" in f["reason"]]
    assert failed and len(failed) == len(res.failures)
    assert "fake error 500" in failed[0]["reason"] and "line" in failed[0]["reason"]


def test_a_batch_past_its_wait_is_cancelled_and_its_calls_failed(tmp_path):
    with FakeOpenAI(_plan, batch_polls=10**6) as server:
        res = _facets(server, Cache(tmp_path / "c"), BatchAPIEngine(poll_s=0.01, max_wait_s=0.2))
        assert server.batches["batch_1"]["status"] == "cancelled"
    assert len(res.failures) == 60 and "still in_progress" in res.failures[0]["reason"]


def test_max_requests_splits_a_round_into_batches_sent_together(tmp_path):
    with FakeOpenAI(_plan) as server:
        res = _facets(server, Cache(tmp_path / "c"), BatchAPIEngine(poll_s=0.01, max_requests=25))
        assert server.batch_lines[:3] == [25, 25, 10]
    assert not res.failures


def test_providers_without_a_batch_api_are_refused_before_any_work(tmp_path, capsys):
    from clio_lab.cli import main

    assert batch_provider("openai/gpt-4o-mini") == ("gpt-4o-mini", "openai")
    with pytest.raises(ValueError, match="batch API"):
        batch_provider("clio_local/gemma-3-270m")
    assert isinstance(resolve_engine("batch"), BatchAPIEngine)
    assert main(["run", str(DEMO), "--out", str(tmp_path / "o"), "--limit", "10", "--engine", "batch"]) == 2
    assert "--engine: batch API" in capsys.readouterr().err
