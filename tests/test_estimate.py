"""The preflight estimate (issue 17, item 4): calls, tokens and cost before any call, checked against a run."""

from __future__ import annotations

import pytest
from conftest import DEMO

import clio_lab
from clio_lab import LLM, run_pipeline
from clio_lab.estimate import CostAboveLimit, estimate, price

FAKE = LLM(model="fake/m", prompt_style="completion")


def quarter_chars(llm, prompt) -> int:
    """The fake model's own count: a quarter of the characters it is sent (tests/fakes.py)."""
    return len("".join(m["content"] for m in llm.messages(prompt))) // 4


def test_estimate_matches_the_calls_and_prompt_tokens_of_a_run(tmp_path, fake_llm, fake_embedder):
    convs = clio_lab.load_conversations(DEMO, limit=120)
    est = estimate(convs, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", count_tokens=quarter_chars)
    assert fake_llm.calls == 0  # nothing was sent
    by_step = {s.step: s for s in est.steps}
    assert by_step["facet:request"].calls == 120 and by_step["facet:request"].cached == 0
    res = run_pipeline(convs, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", projection=False,
                       progress=False)
    stats = res.llm_stats
    assert by_step["naming"].calls == res.clustering.params["k"]
    # every call the run made on a first attempt was foreseen, step by step (re-asks are not estimated)
    first = {"facets": stats["facets"].calls - stats["facets"].retries,
             "naming": stats["naming"].calls - stats["naming"].retries}
    assert by_step["facet:request"].calls == first["facets"]
    assert by_step["naming"].calls == first["naming"]
    hier_calls = sum(s.calls for s in est.steps if s.step.startswith("hierarchy"))
    renames = sum(s.calls for s in est.steps if s.step.endswith("rename"))
    # at most: a proposed parent that no cluster chose is not renamed
    assert 0 <= hier_calls - (stats["hierarchy"].calls - stats["hierarchy"].retries) < renames
    audited = stats["privacy_audit"].calls - stats["privacy_audit"].retries
    # only clusters that pass the thresholds are rated: the estimate expects as many as exponential sizes pass
    print("audited", audited, "expected", by_step["privacy audit"].calls, "prompt", est.prompt_tokens,
          sum(s.prompt_tokens for s in stats.values()))
    assert abs(audited - by_step["privacy audit"].calls) <= max(2, 0.3 * audited)
    actual = sum(s.prompt_tokens for s in stats.values())
    assert abs(est.prompt_tokens - actual) / actual < 0.2, (est.prompt_tokens, actual)
    # the facet prompts are the run's own: their tokens agree exactly (no re-asks among them)
    if stats["facets"].retries == 0:
        assert by_step["facet:request"].prompt_tokens == stats["facets"].prompt_tokens

    again = estimate(convs, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", count_tokens=quarter_chars)
    facet = {s.step: s for s in again.steps}["facet:request"]
    assert facet.cached == 120 and facet.prompt_tokens == 0  # the cache already holds every answer
    assert "facet:request" in again.table() and "cached" in again.table()


def test_cost_comes_from_litellms_price_table():
    assert price(LLM(), 10_000, 500) == 0.0  # the in-process local model
    cost = price(LLM(model="openai/gpt-4o-mini"), 1_000_000, 0)
    assert cost is not None and 0.01 < cost < 10
    assert price(LLM(model="openai/no-such-model-here"), 1000, 10) is None


def test_sampled_counts_scale_to_the_whole_corpus(tmp_path, fake_llm, fake_embedder, demo_convs):
    whole = estimate(demo_convs, llm=FAKE, embedder=fake_embedder, cache=None, count_tokens=quarter_chars,
                     naming=None)
    part = estimate(demo_convs, llm=FAKE, embedder=fake_embedder, cache=None, count_tokens=quarter_chars,
                    naming=None, sample=10)
    a, b = whole.steps[0].prompt_tokens, part.steps[0].prompt_tokens
    assert a != b and abs(a - b) / a < 0.25
    assert "sampled" in part.steps[0].note


def test_max_cost_stops_a_run_before_any_call(tmp_path, fake_llm, fake_embedder, demo_convs):
    # the fake model is not in LiteLLM's price table: the cost is unknown, and an unknown cost is above any limit
    with pytest.raises(CostAboveLimit, match="unknown") as err:
        run_pipeline(demo_convs, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", max_cost=1.0,
                     progress=False)
    assert fake_llm.calls == 0 and err.value.estimate.calls > 0
    res = run_pipeline(demo_convs[:20], llm=LLM(), embedder=fake_embedder, cache=tmp_path / "c", max_cost=0.0,
                       naming="keywords", facets=(), projection=False, progress=False)  # the local model costs 0
    assert res.clustering.labels.shape == (20,)


def test_cli_estimate_prints_the_table_and_run_refuses_above_max_cost(tmp_path, fake_llm, capsys):
    from clio_lab.cli import main

    corpus = str(DEMO)
    assert main(["estimate", corpus, "--model", "openai/gpt-4o-mini", "--limit", "30", "--cache-dir",
                 str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "Estimate for openai/gpt-4o-mini on 30 conversations" in out and "facet:request" in out
    assert "total (to send)" in out
    code = main(["run", corpus, "--model", "openai/gpt-4o-mini", "--limit", "30", "--max-cost", "0.000001",
                 "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "c"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and "above --max-cost" in captured.err
    assert not (tmp_path / "run").exists()
