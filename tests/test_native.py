"""The crash probe (clio_lab/llm/native.py): a native crash of the local model becomes a clear Python error in
the parent, whose process (a Jupyter kernel, the CLI) lives on; verdicts are kept per build and CPU."""

import sys
import warnings

import pytest

from clio_lab.llm import local, native

CRASH = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]  # a segmentation fault, on purpose
ANSWER = [sys.executable, "-c", "import json; print(json.dumps({'system_info': 'CPU : FAKE = 1'}))"]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return str(path)


@pytest.fixture
def probes(monkeypatch):
    """Replace the probe's child with a scripted one; records which settings were probed."""
    seen = []

    def use(behaviour):
        def command(model_path, extra_buffers):
            seen.append(extra_buffers)
            return behaviour(extra_buffers)
        monkeypatch.setattr(native, "probe_command", command)
        return seen
    return use


def test_a_crashing_probe_becomes_an_error_that_names_cause_and_fix(model_file, probes):
    seen = probes(lambda extra: CRASH)
    with pytest.raises(native.LocalModelError) as err:
        native.checked_settings(model_file)
    message = str(err.value)
    assert "crashed with SIGSEGV" in message and "weight repacking off" in message
    assert "GGML_NATIVE=OFF" in message and "hosted model" in message  # the fix
    assert native.cpu_summary() in message  # the CPU it happened on
    assert seen == [False]  # repacking is off unless asked for
    with pytest.raises(native.LocalModelError):  # the verdict is kept: no second child
        native.checked_settings(model_file)
    assert seen == [False]


def test_a_crash_with_repacking_falls_back_to_running_without_it(model_file, probes, monkeypatch):
    monkeypatch.setenv(native.EXTRA_BUFFERS_ENV, "1")
    seen = probes(lambda extra: CRASH if extra else ANSWER)
    with pytest.warns(UserWarning, match="runs without it"):
        settings = native.checked_settings(model_file)
    assert settings["extra_buffers"] is False and settings["probe"]["ok"]
    assert [v["outcome"] for v in settings["tried"]] == ["crashed with SIGSEGV"]
    assert seen == [True, False]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = native.checked_settings(model_file)
    assert again["probe"]["cached"] and seen == [True, False]


def test_a_new_build_is_probed_afresh(model_file, probes, monkeypatch):
    seen = probes(lambda extra: ANSWER)
    native.checked_settings(model_file)
    native.checked_settings(model_file)
    assert seen == [False]
    monkeypatch.setattr(native, "build_fingerprint", lambda: {"llama_cpp_python": "9.9", "libraries_sha256": "x"})
    native.checked_settings(model_file)
    assert seen == [False, False]


def test_a_hung_probe_is_killed_and_reported(model_file, monkeypatch):
    monkeypatch.setattr(native, "probe_command", lambda *a: [sys.executable, "-c", "import time; time.sleep(60)"])
    verdict = native.run_probe(model_file, False, timeout=1)
    assert not verdict["ok"] and "no answer within 1 s" in verdict["outcome"]


def test_the_pipeline_and_the_cli_stop_with_the_error_not_a_dead_process(model_file, probes, monkeypatch, tmp_path,
                                                                        capsys, demo_convs):
    import clio_lab
    from clio_lab import cli

    probes(lambda extra: CRASH)
    monkeypatch.setattr(local, "_models", {})
    monkeypatch.setattr(local, "model_path", lambda name: model_file)
    with pytest.raises(native.LocalModelError, match="crashed with SIGSEGV"):
        clio_lab.run_pipeline(demo_convs[:5], embedder="hashing", cache=tmp_path / "c", progress=False)
    demo = tmp_path / "demo.jsonl"
    demo.write_text("".join(c.model_dump_json() + "\n" for c in demo_convs[:5]))
    assert cli.main(["run", str(demo), "--out", str(tmp_path / "out"), "--quiet", "--embedder", "hashing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clio-lab: the embedded model") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_server_wrapper_stops_with_one_line_when_the_probe_crashes(model_file, probes, capsys):
    pytest.importorskip("llama_cpp.server")
    from clio_lab.llm import serve

    probes(lambda extra: CRASH)
    assert serve.main(["--model", model_file, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clio-lab serve: the embedded model") and "crashed with SIGSEGV" in err
    assert serve.main(["--model", model_file + ".missing"]) == 2
    assert "No such file" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_probe_answers_with_repacking_off():
    verdict = native.run_probe(local.model_path(local.DEFAULT_LOCAL_MODEL), False)
    assert verdict["ok"], verdict
    assert "CPU :" in verdict["system_info"]
