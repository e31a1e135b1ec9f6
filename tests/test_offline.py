"""Nothing reaches the network at run time: every public module imported and the whole pipeline run on a small
corpus with the embedded models, in a child process whose sockets refuse any non-loopback address (and record
who asked, since libraries often swallow the error and fall back)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from netguard import read_report

HERE = Path(__file__).parent
DEMO = HERE.parent / "datasets" / "clio_demo.jsonl"
# clio_lab must turn these on by itself: a user's environment does not have them
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "LITELLM_LOCAL_MODEL_COST_MAP", "HF_DATASETS_OFFLINE")


def _child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_SWITCHES}
    # a fresh tldextract cache: a suffix list fetched by an earlier run must not hide a fetch
    return {**env, "CLIO_LAB_CACHE": str(tmp_path / "cache"), "TLDEXTRACT_CACHE": str(tmp_path / "tld"),
            "CLIO_LAB_PROGRESS": "0"}


def test_the_guard_records_and_refuses_an_outbound_connection(tmp_path):
    code = "\n".join([
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import netguard; netguard.install()",
        "import urllib.request",
        "def fetch():",
        "    try:",
        "        urllib.request.urlopen('http://example.com', timeout=2)",
        "    except OSError:",
        "        pass",
        "fetch()",
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()",
        "c = socket.create_connection(s.getsockname()); c.close()"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=_child_env(tmp_path))
    attempts = read_report(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert [a["host"] for a in attempts] == ["example.com"], attempts  # loopback allowed, the rest refused
    assert "in fetch" in attempts[0]["caller"], attempts  # names who asked


@pytest.mark.slow
def test_whole_pipeline_and_every_module_make_no_outbound_connection(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(HERE / "offline_job.py"), str(DEMO), str(out), "24"],
                          capture_output=True, text=True, timeout=1200, env=_child_env(tmp_path))
    attempts = read_report(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert attempts == [], attempts
    assert "OK 24 conversations" in proc.stdout
    assert (out / "report.html").stat().st_size > 1000 and (out / "sizes.png").exists()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
