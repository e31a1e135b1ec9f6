import json
import time

import pytest

from clio_lab.cli import main


def test_help_explains_each_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--model", "--embedder", "--embed-on", "--method", "--k", "--cache-dir", "--no-cache",
                   "--on-error", "--api-base", "--auditor"):
        assert option in out


def test_run_writes_results_and_a_warm_rerun_is_free(tmp_path, fake_llm, capsys):
    from conftest import DEMO

    args = ["run", str(DEMO), "--out", str(tmp_path / "out"), "--model", "fake/m", "--limit", "30",
            "--cache-dir", str(tmp_path / "cache"), "--k", "4", "--quiet", "--embed-on", "summary",
            "--min-conversations", "0", "--min-users", "0"]
    start = time.perf_counter()
    assert main(args) == 0
    wall = time.perf_counter() - start
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["conversations"] == 30 and first["llm_calls"] >= 30 + 4 and first["clusters"] == 4  # facets + names
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["config"]["embed_on"] == "summary"
    # every step's time is recorded, and together they fit inside the run's own wall-clock time
    seconds = stats["seconds"]
    assert {"facets", "embed", "cluster", "naming", "hierarchy", "audit", "release", "projection"} <= set(seconds)
    assert all(v > 0 for v in seconds.values()) and sum(seconds.values()) <= wall
    assert first["clusters_per_level"] == [4, 3]
    assert (tmp_path / "out" / "tree.json").exists() and (tmp_path / "out" / "level_1_clusters.csv").exists()
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out.splitlines()[0])
    assert second["llm_calls"] == 0 and second["embedding_calls"] == 0 and second["cache_hits"] >= 31
    assert main([*args, "--levels", "3,2", "--hierarchy", "keywords", "--out", str(tmp_path / "kw")]) == 0
    third = json.loads(capsys.readouterr().out.splitlines()[0])
    import clio_lab

    run = clio_lab.load_run(tmp_path / "kw")
    parents = [n for n in run.hierarchy.nodes.values() if n.level > 0]
    assert {n.method for n in parents} == {"keywords"}
    # only the auditor calls the model: the 3 + 2 new keyword-named parents (the 4 base clusters are cached), less
    # any that repeats its one child's name and description (it is released as that child, not rated again)
    nodes = run.hierarchy.nodes
    repeats = [n for n in parents if len(n.children) == 1
               and (n.name, n.description) == (nodes[n.children[0]].name, nodes[n.children[0]].description)]
    assert third["clusters_per_level"] == [4, 3, 2] and len(repeats) == 1 and third["llm_calls"] == 5 - 1
    # the rules audit with no model call: the same new parents cost nothing with --auditor rules
    assert main([*args, "--levels", "3,2", "--hierarchy", "keywords", "--auditor", "rules",
                 "--out", str(tmp_path / "rules")]) == 0
    fourth = json.loads(capsys.readouterr().out.splitlines()[0])
    assert fourth["llm_calls"] == 0 and clio_lab.load_run(tmp_path / "rules").privacy()["auditor"]["by"] == "rules"


def test_bad_levels_exit_2_before_any_model_call(tmp_path, fake_llm, capsys):
    from conftest import DEMO

    for levels in ("3,x", "3,4", "0"):
        assert main(["run", str(DEMO), "--out", str(tmp_path / "o"), "--model", "fake/m", "--limit", "10",
                     "--levels", levels, "--quiet"]) == 2
        assert "--levels" in capsys.readouterr().err
    assert fake_llm.calls == 0


def test_bad_input_exits_2_with_the_place(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "ok"}]}\n{"id": "b", "messages": 3}\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl: line 2: field 'messages'" in err
