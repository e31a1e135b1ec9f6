"""Partitions (clio_lab/partitions.py): fixed top-level categories from a field or from named categories,
clusters and parents built inside each, the partitions on top of the tree, gated like any node."""

import numpy as np
import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.partitions import Partitioning, assign_to_categories, build_partitioned, partition
from clio_lab.runs import load_run
from clio_lab.tree import Status

FAKE = LLM(model="fake/m", prompt_style="completion")


@pytest.fixture
def demo200():
    convs = clio_lab.load_conversations("datasets/clio_demo.jsonl")
    return [c.model_copy(update={"user_id": f"u{i % 41}"}) for i, c in enumerate(convs)]


def _run(convs, tmp_path, fake_embedder, **kw):
    return clio_lab.run_pipeline(convs, llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c", progress=False, **kw)


def test_a_metadata_field_partitions_the_tree(demo200, tmp_path, fake_llm, fake_embedder):
    res = _run(demo200, tmp_path, fake_embedder, partitions="language")
    counts = res.config["partitions"]["counts"]
    truth = {}
    for c in demo200:
        truth[c.metadata["language"]] = truth.get(c.metadata["language"], 0) + 1
    assert counts == truth and res.config["partitions"]["source"] == "field"
    full = res.full_hierarchy
    assert [n.name for n in full.top] == list(counts) and all(n.method == "partition" for n in full.top)
    assert {n.name: n.size for n in full.top} == counts
    assert full.top[0].description == "Conversations whose language is English."
    assert full.top[0].id in res.audit.scores  # a field's values come from the data: audited like any name
    # no base cluster spans two partitions: every conversation's top node is its own language
    top_of = full.labels_at(-1)
    names = {n.index: n.name for n in full.top}
    assert all(names[t] == c.metadata["language"] for t, c in zip(top_of, demo200, strict=True))
    # a partition below the thresholds is withheld like any cluster (9 Portuguese conversations < 10)
    shown_top = {n.name for n in res.hierarchy.top if n.status is Status.SHOWN}
    assert "Portuguese" not in shown_top and {"English", "German"} <= shown_top
    run = load_run(res.save(tmp_path / "run"))
    assert run.config["partitions"]["counts"] == counts
    assert [n.name for n in run.hierarchy.top] == [n.name for n in res.hierarchy.top]


def test_named_categories_go_by_embedding_similarity(demo200, tmp_path, fake_llm, fake_embedder):
    cats = [{"name": "Code", "description": "python code error program bug function"},
            ("Food", "recipe cook dinner bread meal"), "Money"]
    res = _run(demo200, tmp_path, fake_embedder, partitions=cats)
    p = res.config["partitions"]
    assert p["names"] == ["Code", "Food", "Money"] and sum(p["counts"].values()) == 200
    assert p["descriptions"][2] == "" and p["by"] == "embedding similarity"
    # the user's own category names are not sent to the auditor; the clusters under them are
    tops = {n.id for n in res.full_hierarchy.top}
    assert not tops & set(res.audit.scores) and any(nid.startswith("0.") for nid in res.audit.scores)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)

    class TwoWords:
        def get_params(self):
            return {"kind": "two-words"}

        def encode(self, texts):
            return np.array([[1.0, 0.0] if "alpha" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    got, sims = assign_to_categories(X, ["alpha", "beta"], ["", ""], embedder=TwoWords(), cache=None)
    assert got.tolist() == [0, 1, 0] and np.allclose(sims, [1.0, 1.0, 0.7])


def test_bad_partitions_fail_before_any_model_call(demo200, tmp_path, fake_llm, fake_embedder):
    with pytest.raises(ValueError, match=r"partitions\[1\]"):
        _run(demo200, tmp_path, fake_embedder, partitions=["A", {"description": "no name"}])
    with pytest.raises(ValueError, match="at least two"):
        _run(demo200, tmp_path, fake_embedder, partitions=["Only"])
    with pytest.raises(ValueError, match="levels"):
        _run(demo200, tmp_path, fake_embedder, partitions="language", levels=[3])
    assert fake_llm.calls == 0
    with pytest.raises(ValueError, match="no facet, computed facet or metadata field"):
        _run(demo200[:30], tmp_path, fake_embedder, partitions="planet")


def test_a_missing_value_is_a_partition_of_its_own(demo200, fake_embedder):
    convs = [c.model_copy(update={"metadata": {} if i % 4 == 0 else {"team": "blue" if i % 2 else "red"}})
             for i, c in enumerate(demo200[:40])]
    from clio_lab.facets import computed_facets

    parts = partition(convs, "team", facet_values={}, computed=[computed_facets(c) for c in convs],
                      X=np.zeros((40, 2)))
    assert parts.names == ["blue", "red", "No team"] and parts.counts() == {"blue": 20, "red": 10, "No team": 10}


def test_unclustered_conversations_sit_beside_the_partitions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    parts = Partitioning(np.repeat([0, 1], 30), ["A", "B"], ["", ""], "field", "team")
    labels = np.concatenate([np.repeat([0, 1, -1], 10), np.repeat([2, 3, -1], 10)])
    summaries = [f"ask about thing {i % 7}" for i in range(60)]
    tree = build_partitioned(parts, labels, {}, method="keywords", summaries=summaries, X=X)
    tree.check()
    assert [(n.name, n.size) for n in tree.top] == [("A", 20), ("B", 20), ("Unclustered conversations", 20)]
    assert {n.parent for n in tree.level(0) if n.index >= 0} == {"1.0", "1.1"}


def test_the_cli_takes_a_field_or_a_file_of_categories(tmp_path, fake_llm, capsys):
    import json

    from conftest import DEMO

    from clio_lab.cli import main

    base = ["run", str(DEMO), "--model", "fake/m", "--limit", "40", "--cache-dir", str(tmp_path / "c"), "--quiet",
            "--min-conversations", "0", "--min-users", "0"]
    assert main([*base, "--out", str(tmp_path / "lang"), "--partitions", "language"]) == 0
    run = load_run(tmp_path / "lang")
    assert {n.method for n in run.hierarchy.top} == {"partition"} and run.config["partitions"]["by"] == "language"
    (tmp_path / "cats.json").write_text(json.dumps([{"name": "Code", "description": "programs"}, {"name": "Life"}]))
    assert main([*base, "--out", str(tmp_path / "cats"), "--partitions", str(tmp_path / "cats.json")]) == 0
    assert [n.name for n in load_run(tmp_path / "cats").hierarchy.top] != []
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("{not json")
    assert main([*base, "--out", str(tmp_path / "bad"), "--partitions", str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err
    (tmp_path / "one.json").write_text(json.dumps(["Only"]))
    assert main([*base, "--out", str(tmp_path / "one"), "--partitions", str(tmp_path / "one.json")]) == 2
    assert "at least two" in capsys.readouterr().err


def test_a_partitioned_run_extends(demo200, tmp_path, fake_llm, fake_embedder):
    res = _run(demo200[:150], tmp_path, fake_embedder, partitions="language")
    more = clio_lab.extend(res, demo200[150:], llm=FAKE, embedder=fake_embedder, cache=tmp_path / "c",
                           progress=False)
    more.hierarchy.check()
    assert len(more) == 200 and more.config["partitions"] == res.config["partitions"]
    assert {n.name for n in more.hierarchy.top} >= {n.name for n in res.hierarchy.top if n.shows_text}
