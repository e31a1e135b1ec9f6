import json

import pytest

from clio_lab.cli import main


def test_help_explains_each_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--model", "--embedder", "--embed-on", "--method", "--k", "--cache-dir", "--no-cache",
                   "--on-error", "--api-base"):
        assert option in out


def test_run_writes_results_and_a_warm_rerun_is_free(tmp_path, fake_llm, capsys):
    from conftest import DEMO

    args = ["run", str(DEMO), "--out", str(tmp_path / "out"), "--model", "fake/m", "--limit", "30",
            "--cache-dir", str(tmp_path / "cache"), "--k", "4", "--quiet", "--embed-on", "summary"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["conversations"] == 30 and first["llm_calls"] >= 30 + 4 and first["clusters"] == 4  # facets + names
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["config"]["embed_on"] == "summary" and stats["seconds"]["facets"] >= 0
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out.splitlines()[0])
    assert second["llm_calls"] == 0 and second["embedding_calls"] == 0 and second["cache_hits"] >= 31


def test_bad_input_exits_2_with_the_place(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "ok"}]}\n{"id": "b", "messages": 3}\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl: line 2: field 'messages'" in err
