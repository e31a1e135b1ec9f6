"""Saved runs (clio_lab/runs.py): what save_run writes comes back whole from load_run, a saved run is used
exactly like a live one, old run folders still load, and a broken folder is named in the error."""

import json

import numpy as np
import pandas as pd
import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.results import Run
from clio_lab.runs import RUN_FORMAT, load_run
from clio_lab.tree import Status


@pytest.fixture
def live_and_saved(tmp_path, fake_llm, fake_embedder, demo_convs):
    convs = [c.model_copy(update={"user_id": f"u{i}"}) for i, c in enumerate(demo_convs)]
    res = clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                cache=tmp_path / "c", k=10, min_conversations=4, min_users=4, progress=False)
    out = res.save(tmp_path / "run")
    return res, load_run(out), out


def test_a_saved_run_comes_back_whole(live_and_saved):
    res, run, out = live_and_saved
    assert isinstance(res, Run) and isinstance(run, Run)  # charts, the report and the explorer take either
    pd.testing.assert_frame_equal(run.to_frame(), res.to_frame(), check_dtype=False)
    live_clusters = res.clusters_frame()
    pd.testing.assert_frame_equal(run.clusters_frame().drop(columns="central_summaries"),
                                  live_clusters.drop(columns="central_summaries"), check_dtype=False)
    assert run.clusters_frame()["central_summaries"].tolist() == live_clusters["central_summaries"].tolist()
    assert run.hierarchy.to_tree() == res.hierarchy.to_tree()
    assert {n.id: n.status for n in run.hierarchy.nodes.values()} == \
        {n.id: n.status for n in res.hierarchy.nodes.values()}
    assert json.loads(json.dumps(res.stats(), default=str)) == run.stats()
    assert json.loads(json.dumps(res.privacy(), default=str)) == run.privacy()
    assert np.array_equal(run.embeddings, res.embeddings) and np.allclose(run.coords, res.coords)
    assert run.config == json.loads(json.dumps(res.config, default=str)) and len(run) == len(res)
    assert run.failures == json.loads(json.dumps(res.failures, default=str))
    meta = json.loads((out / "run.json").read_text())
    assert meta["format"] == RUN_FORMAT and set(meta["files"]) == {p.name for p in out.iterdir()} - {"run.json"}


def test_withheld_clusters_have_a_status_in_a_saved_run(live_and_saved):
    res, run, _ = live_and_saved
    clusters = run.clusters_frame()
    pooled = clusters[clusters["status"] == Status.WITHHELD.value]
    assert len(pooled) and (pooled["name"] == "Other (withheld)").all()
    assert pooled["central_summaries"].map(len).eq(0).all()
    frame = run.to_frame()
    pooled_base = set(pooled.loc[pooled["level"] == 0, "index"])
    assert frame["withheld"].sum() == res.thresholds["withheld_conversations_at_base"] > 0
    assert set(frame.loc[frame["withheld"], "cluster"]) == pooled_base  # exactly the pools' members


def test_a_run_saved_before_nodes_had_a_status_loads_with_the_same_statuses(live_and_saved):
    res, run, out = live_and_saved
    clusters = pd.read_parquet(out / "clusters.parquet")
    # the old encoding: the status in `method`, withheld members known only by a base index <= -2
    old = clusters.assign(method=np.where(clusters["status"] == "withheld", "withheld",
                                          np.where(clusters["status"] == "name withheld", "withheld name",
                                                   clusters["method"])))
    old.drop(columns="status").to_parquet(out / "clusters.parquet", index=False)
    pd.read_parquet(out / "conversations.parquet").drop(columns="withheld").to_parquet(
        out / "conversations.parquet", index=False)
    legacy = load_run(out)
    assert {n.id: n.status for n in legacy.hierarchy.nodes.values()} == \
        {n.id: n.status for n in run.hierarchy.nodes.values()}
    assert legacy.to_frame()["withheld"].tolist() == run.to_frame()["withheld"].tolist()
    assert set(legacy.clusters_frame()["method"]) == set(run.clusters_frame()["method"])


def test_a_broken_run_folder_is_named_in_the_error(live_and_saved, tmp_path):
    _, _, out = live_and_saved
    with pytest.raises(FileNotFoundError, match="run.json is missing"):
        load_run(tmp_path / "nothing-here")
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ValueError, match=r"run.json: run format 99; this clio_lab reads format 1"):
        load_run(out)
    (out / "run.json").write_text(json.dumps(meta))
    (out / "clusters.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"clusters.parquet is missing"):
        load_run(out)


def test_charts_report_and_explorer_take_a_saved_run_as_they_take_a_live_one(live_and_saved):
    from clio_lab import charts
    from clio_lab.report import render_report
    from clio_lab.widgets import Explorer

    res, run, _ = live_and_saved
    assert charts.cluster_sizes(run).to_dict()["datasets"] == charts.cluster_sizes(res).to_dict()["datasets"]
    assert render_report(run) == render_report(res)
    live, saved = Explorer(res), Explorer(run)
    assert saved.tree.tree == live.tree.tree and len(saved.map) == len(live.map)
