"""clio_lab.extend: new conversations go into a run's clusters without re-clustering or renaming; sizes, users and
thresholds are recounted, a cluster that now passes them is released only after the auditor rates it, and the
extended run saves and loads like any run."""

import numpy as np
import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.extend import assign
from clio_lab.runs import load_run
from clio_lab.tree import Status

FAKE = LLM(model="fake/m", prompt_style="completion")


def test_assign_takes_the_nearest_centroid_and_leaves_outliers_unclustered():
    rng = np.random.default_rng(0)
    centres = np.eye(3, dtype=np.float32)
    X = np.concatenate([c + 0.05 * rng.standard_normal((30, 3)) for c in centres]).astype(np.float32)
    labels = np.repeat([0, 1, 2], 30)
    new = np.array([[1.0, 0.01, 0.0], [0.0, 0.01, 1.0], [-1.0, -1.0, -1.0]], dtype=np.float32)
    got = assign(new, X, labels)
    assert got.labels.tolist() == [0, 2, -1] and got.nearest[2] in (0, 1, 2) and got.n_unclustered == 1
    assert assign(new, X, labels, max_distance=None).labels[2] == got.nearest[2]  # no radius: every item assigned
    per = assign(new, X, labels, max_distance="per-cluster")
    assert per.labels.tolist() == [0, 2, -1] and len(set(per.radius.values())) == 3
    assert len(set(got.radius.values())) == 1  # the default: one pooled radius
    with pytest.raises(ValueError, match="dimensions"):
        assign(np.zeros((1, 5)), X, labels)
    with pytest.raises(ValueError, match="max_distance"):
        assign(new, X, labels, max_distance="far")
    with pytest.raises(ValueError, match="no clusters"):
        assign(new, X, np.full(len(X), -1))


@pytest.fixture
def split_run(tmp_path, fake_llm, fake_embedder):
    convs = clio_lab.load_conversations("datasets/clio_demo.jsonl")
    convs = [c.model_copy(update={"user_id": f"u{i % 37}"}) for i, c in enumerate(convs)]
    res = clio_lab.run_pipeline(convs[:120], llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", k=12,
                                progress=False)
    return res, convs, tmp_path


def _extend(run, new, tmp_path, fake_embedder, **kw):
    return clio_lab.extend(run, new, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", progress=False, **kw)


def test_extend_adds_conversations_without_renaming_and_saves_like_a_run(split_run, fake_embedder):
    res, convs, tmp_path = split_run
    more = _extend(res, convs[120:], tmp_path, fake_embedder)
    frame = more.to_frame()
    assert len(more) == 200 and frame["extension"].tolist() == [0] * 120 + [1] * 80
    more.hierarchy.check()  # every conversation in one leaf, sizes that add up
    # the run's shown clusters keep their names and members; nothing was re-clustered
    before = {n.id: n.name for n in res.hierarchy.nodes.values() if n.shows_text}
    after = {n.id: n.name for n in more.hierarchy.nodes.values()}
    assert all(after[nid] == name for nid, name in before.items())
    shown_old = ~res.to_frame()["withheld"].to_numpy()
    assert (frame["cluster"].to_numpy()[:120][shown_old] == res.to_frame()["cluster"].to_numpy()[shown_old]).all()
    assert np.array_equal(more.base_labels[:120], res.clustering.labels)
    rec = more.config["extended"][-1]
    assert rec["conversations"] == 80 and rec["assigned"] + rec["unclustered"] == 80
    assert (more.base_labels[120:] == -1).sum() == rec["unclustered"]
    assert more.stats()["conversations"] == 200 and frame[["x", "y"]].notna().all().all()
    # withheld members keep no answer; the released ones keep theirs
    assert frame.loc[frame["withheld"], "request"].isna().all()
    assert frame.loc[~frame["withheld"] & (frame["cluster"] >= 0), "request"].notna().all()
    # saved and read back whole, then extended again from the folder
    run = load_run(more.save(tmp_path / "extended"))
    assert run.hierarchy.to_tree() == more.hierarchy.to_tree() and len(run) == 200
    assert np.array_equal(run.base_labels, more.base_labels)
    assert (tmp_path / "extended" / "report.html").is_file()
    again = _extend(run, [c.model_copy(update={"id": f"again-{c.id}"}) for c in convs[:10]], tmp_path,
                    fake_embedder)
    assert len(again) == 210 and len(again.config["extended"]) == 2 and again.to_frame()["extension"].max() == 2


def test_a_saved_run_extends_like_the_live_one(split_run, fake_embedder):
    res, convs, tmp_path = split_run
    live = _extend(res, convs[120:], tmp_path, fake_embedder)
    saved = _extend(load_run(res.save(tmp_path / "run")), convs[120:], tmp_path, fake_embedder)
    assert np.array_equal(live.base_labels, saved.base_labels)
    assert np.array_equal(live.hierarchy.base_labels, saved.hierarchy.base_labels)


def _grow_withheld(res, convs):
    """New conversations (new ids, new users) copying the members of the run's withheld base clusters."""
    withheld = [c for c in np.unique(res.clustering.labels)
                if (res.hierarchy.base_labels[res.clustering.labels == c] <= -2).all()]
    assert withheld, "the fixture run should withhold a small cluster"
    members = [i for i in range(len(res)) if res.clustering.labels[i] in withheld]
    return [convs[i].model_copy(update={"id": f"copy{j}-{convs[i].id}", "user_id": f"new{j}-{i}"})
            for j in range(2) for i in members], withheld


def test_a_cluster_that_now_passes_the_thresholds_is_released_after_the_audit(split_run, fake_embedder):
    res, convs, tmp_path = split_run
    new, withheld = _grow_withheld(res, convs)
    more = _extend(res, new, tmp_path, fake_embedder, max_distance=None)
    rec = more.config["extended"][-1]
    released = {int(r["id"].split(".")[1]) for r in rec["released"]}
    assert released and released <= set(withheld)
    for c in released:
        node = more.hierarchy.nodes[f"0.{c}"]
        assert node.status is Status.SHOWN and node.size == int((more.base_labels == c).sum()) >= 10
        assert more.clusters_frame().set_index("id").at[node.id, "privacy_score"] == 5  # the auditor rated it
    assert more.privacy()["extended"]["released"] == len(released)


def test_a_cluster_the_auditor_rates_low_stays_withheld(split_run, fake_llm, fake_embedder):
    res, convs, tmp_path = split_run
    new, _ = _grow_withheld(res, convs)
    fake_llm.low_audit_first = 100  # every rating low, confirmed
    more = _extend(res, new, tmp_path / "other", fake_embedder, max_distance=None)
    rec = more.config["extended"][-1]
    assert rec["released"] == [] and rec["still_withheld"].get("auditor", 0) >= 1
    assert {n.id for n in more.hierarchy.nodes.values() if n.shows_text} == \
        {n.id for n in res.hierarchy.nodes.values() if n.shows_text}


def test_extend_refuses_what_would_mix_two_runs(split_run, fake_embedder, tmp_path):
    res, convs, tmp_path = split_run
    with pytest.raises(ValueError, match="already in the run"):
        _extend(res, convs[:3], tmp_path, fake_embedder)
    from fakes import FakeEmbedder

    with pytest.raises(ValueError, match="same embedder"):
        clio_lab.extend(res, convs[120:], llm=FAKE, embedder=FakeEmbedder(dim=32), cache=None, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        clio_lab.extend(res, convs[120:], llm=LLM(model="fake/other", prompt_style="completion"),
                        embedder=fake_embedder, cache=None, progress=False)
    out = res.save(tmp_path / "old")
    (out / "base_labels.npy").unlink()
    with pytest.raises(ValueError, match="base_labels.npy"):
        _extend(load_run(out), convs[120:], tmp_path, fake_embedder)


def test_the_cli_extends_a_saved_run_into_a_new_folder(tmp_path, fake_llm, capsys):
    import json

    from conftest import DEMO

    from clio_lab.cli import main

    lines = DEMO.read_text(encoding="utf-8").splitlines()
    (tmp_path / "new.jsonl").write_text("\n".join(lines[30:50]) + "\n", encoding="utf-8")
    cache = str(tmp_path / "cache")
    assert main(["run", str(DEMO), "--out", str(tmp_path / "run"), "--model", "fake/m", "--limit", "30",
                 "--cache-dir", cache, "--k", "4", "--quiet", "--min-conversations", "0", "--min-users", "0"]) == 0
    capsys.readouterr()
    args = ["extend", str(tmp_path / "run"), str(tmp_path / "new.jsonl"), "--cache-dir", cache, "--quiet"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2  # never over the run it extends
    assert "new folder" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "more"), "--max-distance", "far"]) == 2
    assert main([*args, "--out", str(tmp_path / "more")]) == 0
    out = capsys.readouterr().out
    first = json.loads(out.splitlines()[0])
    assert first["conversations"] == 20 and first["assigned"] + first["unclustered"] == 20
    assert "into the run's clusters" in out
    run = load_run(tmp_path / "more")
    assert len(run) == 50 and run.config["extended"][0]["conversations"] == 20
    assert len(load_run(tmp_path / "run")) == 30  # the run itself is untouched


def test_the_report_of_an_extended_run_says_what_was_added(split_run, fake_embedder):
    from clio_lab.report import render_report

    res, convs, tmp_path = split_run
    more = _extend(res, convs[120:], tmp_path, fake_embedder)
    html = render_report(more)
    rec = more.config["extended"][0]
    assert f"80 conversations added {rec['at']}: {rec['assigned']} into the run&#39;s clusters" in html or \
        f"80 conversations added {rec['at']}: {rec['assigned']} into the run's clusters" in html


def test_a_run_audited_by_the_rules_audits_its_newly_passing_clusters_by_the_rules(tmp_path, fake_llm, fake_embedder):
    convs = clio_lab.load_conversations("datasets/clio_demo.jsonl")
    convs = [c.model_copy(update={"user_id": f"u{i % 37}"}) for i, c in enumerate(convs)]
    res = clio_lab.run_pipeline(convs[:120], llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", k=12,
                                audit="rules", progress=False)
    assert res.config["auditor"] == "rules"
    new, withheld = _grow_withheld(res, convs)
    more = _extend(res, new, tmp_path, fake_embedder, max_distance=None)
    rec = more.config["extended"][-1]
    assert rec["released"] or rec["still_withheld"]
    audit_calls = more.stats()["llm_by_step"].get("extend: privacy_audit", {"calls": 0})["calls"]
    assert audit_calls == 0  # no model call rated them
    for r in rec["released"]:
        assert more.clusters_frame().set_index("id").at[r["id"], "privacy_score"] == 5
