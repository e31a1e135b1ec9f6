"""The Ray engine (clio_lab.engine) on a real local Ray cluster: a head node and a worker node started by the
test (``ray start`` on 127.0.0.1), the model an OpenAI-compatible server in this process. A run there gives the
results of a run here and fills the same cache; a worker killed mid-step costs nothing."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_openai import FakeOpenAI, Reply

import clio_lab
from clio_lab import LLM
from clio_lab.cache import Cache
from clio_lab.embeddings import HashingEmbedder
from clio_lab.engine import RayEngine, resolve_engine

# Token authentication on, with a token of the test's own (not the user's ~/.ray/auth_token), for the nodes and
# for this process, the driver: set before Ray is imported, which reads its settings once.
os.environ.update({"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)})
ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install 'clio-lab[distributed]'`")

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_cpus(n: int, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if ray.cluster_resources().get("CPU", 0) >= n and len([x for x in ray.nodes() if x["Alive"]]) >= 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"the local Ray cluster did not reach {n} CPUs: {ray.cluster_resources()}")


@pytest.fixture(scope="module")
def cluster():
    """``ray start --head`` and one ``ray start --address`` worker node, 1 CPU each, both on 127.0.0.1; this
    process connects as the driver. ``--block`` keeps each node's processes under one process to stop."""
    env = dict(os.environ)
    port, client_port = _free_port(), _free_port()  # Ray Client's port, outside Ray's worker ports (10002-19999)
    temp = tempfile.mkdtemp(prefix="clioray")  # short: Ray's socket paths must fit in 107 characters
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000",
              "--disable-usage-stats", "--block"]
    head = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                             f"--ray-client-server-port={client_port}",
                             f"--temp-dir={temp}", *common], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:  # the head's GCS answers before a worker node may join
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert head.poll() is None, "ray start --head exited"
                assert time.monotonic() < end, "the Ray head did not open its port"
                time.sleep(0.5)
        nodes.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        engine = RayEngine(address=address, batch_size=8)
        engine.connect()
        _wait_for_cpus(2)
        engine.client_address = f"ray://127.0.0.1:{client_port}"
        yield engine
    finally:
        ray.shutdown()
        for p in reversed(nodes):
            p.send_signal(signal.SIGTERM)
        for p in reversed(nodes):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


NAMES = ("Maria Lopez", "John Carter")


def _plan(delay: float = 0.0):
    """Answers that follow the conversation (deterministic), one in five naming a person (so the PII check
    re-asks and then keeps the answer redacted), the auditor's answer for the audit."""
    def plan(body: dict, n: int) -> Reply:
        prompt = "".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
        if "privacy reviewer" in prompt:
            return Reply(content=" 5\nReason: A general topic with nothing identifying.", delay=delay)
        said = re.findall(r"(?:User|user): (.+)", prompt)
        words = re.findall(r"[A-Za-z]+", said[-1] if said else "things")
        named = f" for {NAMES[len(words) % 2]}" if len(words) % 5 == 0 else ""
        return Reply(content=f"The user asked for help with {' '.join(words[:6]).lower()}{named} today.",
                     delay=delay)
    return plan


def _llm(server: FakeOpenAI, **kw) -> LLM:
    return LLM(model="openai/fake-model", api_base=server.url, api_key="sk-test", max_retries=2, timeout=20.0, **kw)


def test_resolve_engine():
    assert resolve_engine(None) is None and resolve_engine("local") is None
    assert resolve_engine("ray://head:10001").address == "ray://head:10001"
    assert resolve_engine("10.0.0.5:6379").address == "10.0.0.5:6379"
    with pytest.raises(ValueError, match="engine must be"):
        resolve_engine("spark")


@pytest.mark.timeout(600)
def test_run_on_the_cluster_matches_a_run_here_and_fills_the_same_cache(cluster, tmp_path):
    convs = clio_lab.load_conversations(Path(__file__).parent.parent / "datasets" / "clio_demo.jsonl", limit=80)
    with FakeOpenAI(_plan()) as server:
        kw = dict(llm=_llm(server), embedder=HashingEmbedder(n_features=256), embed_on="summary", k=6,
                  naming="extractive", hierarchy="extractive", redact_input=True, min_conversations=2, min_users=1,
                  projection=False, progress=False)
        here = clio_lab.run_pipeline(convs, cache=Cache(tmp_path / "here"), **kw)
        sent_here = len(server.requests)
        there = clio_lab.run_pipeline(convs, cache=Cache(tmp_path / "there"), engine=cluster, **kw)
        sent_there = len(server.requests) - sent_here
        # the cluster's answers were cached here under a local run's keys: a run here with that cache sends nothing
        again = clio_lab.run_pipeline(convs, cache=Cache(tmp_path / "there"), **kw)
        sent_again = len(server.requests) - sent_here - sent_there

    assert here.facets.values == there.facets.values == again.facets.values
    assert here.facets.pii == there.facets.pii and here.facets.pii["request"]["redacted"] > 0
    assert not here.facets.failures and not there.facets.failures
    assert here.input_redaction == there.input_redaction and here.input_redaction["conversations_with_pii"] > 0
    np.testing.assert_array_equal(here.embeddings, there.embeddings)
    np.testing.assert_array_equal(here.clustering.labels, there.clustering.labels)
    assert here.names.labels == there.names.labels
    assert there.llm_stats["facets"].calls == here.llm_stats["facets"].calls == sent_there - (
        there.llm_stats["privacy_audit"].calls)
    assert sent_here == sent_there and sent_again == 0 and again.llm_stats["facets"].calls == 0
    assert there.config["engine"]["address"] == cluster.address and here.config["engine"] is None


def _answer_worker_pids() -> set[int]:
    import psutil

    found = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        if "_AnswerWorker" in " ".join(p.info["cmdline"] or []):
            found.add(p.info["pid"])
    return found


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_step_loses_nothing(cluster, tmp_path):
    from clio_lab.synthetic import generate_corpus, write_jsonl

    convs = clio_lab.load_conversations(write_jsonl(generate_corpus(240, seed=3), tmp_path / "c.jsonl"))
    killed: list[int] = []

    with FakeOpenAI(_plan(delay=0.05)) as server:
        def kill_one_when_busy() -> None:
            end = time.monotonic() + 300
            while time.monotonic() < end and not killed:
                pids = _answer_worker_pids()
                if pids and len(server.requests) >= 60:
                    pid = min(pids)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_when_busy, daemon=True)
        killer.start()
        engine = RayEngine(address=cluster.address, batch_size=8)
        there = clio_lab.extract_facets(convs, llm=_llm(server, max_concurrency=2), cache=Cache(tmp_path / "there"),
                                        examples="fixed", engine=engine, progress=False)
        killer.join(5)
        sent_there = len(server.requests)
        here = clio_lab.extract_facets(convs, llm=_llm(server), cache=Cache(tmp_path / "here"), examples="fixed",
                                       progress=False)
        sent_here = len(server.requests) - sent_there

    assert killed, "no answer worker was found to kill"
    assert not there.failures and all(v is not None for v in there.values["request"])
    assert there.values == here.values and there.pii == here.pii
    # the killed batch was asked again from the start; its first calls are not in the run's counts
    assert there.stats.calls == here.stats.calls
    assert sent_there >= sent_here  # (more where the killed batch had calls answered before it died)


def test_cli_engine_option_is_checked_before_any_work(tmp_path, capsys):
    from clio_lab.cli import main

    demo = Path(__file__).parent.parent / "datasets" / "clio_demo.jsonl"
    assert main(["run", str(demo), "--out", str(tmp_path / "o"), "--limit", "10", "--engine", "spark"]) == 2
    assert "--engine: engine must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(300)
def test_ray_client_address_from_another_process(cluster, tmp_path):
    """A ray:// address (Ray Client, as from a laptop outside the cluster), in a process of its own (one process
    holds one Ray connection): the jobs run as tasks on the cluster and give the answers of a run here."""
    script = tmp_path / "client.py"
    script.write_text(f"""
import json, re, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fake_openai import FakeOpenAI, Reply
import clio_lab
from clio_lab import LLM
from clio_lab.cache import Cache
from clio_lab.engine import RayEngine

def plan(body, n):
    said = re.findall(r"(?:User|user): (.+)", body["messages"][-1]["content"])
    return Reply(content="The user asked for help with " + " ".join(said[-1].split()[:5]).lower() + " today.")

convs = clio_lab.load_conversations({str(Path(__file__).parent.parent / "datasets" / "clio_demo.jsonl")!r}, limit=30)
with FakeOpenAI(plan) as server:
    llm = LLM(model="openai/fake-model", api_base=server.url, api_key="sk-test", timeout=20.0)
    here = clio_lab.extract_facets(convs, llm=llm, cache=None, examples="fixed", pii=False, progress=False)
    there = clio_lab.extract_facets(convs, llm=llm, cache=Cache({str(tmp_path / "c")!r}), examples="fixed", pii=False,
                                    progress=False, engine=RayEngine({cluster.client_address!r}, batch_size=8))
print(json.dumps({{"same": here.values == there.values, "failures": len(there.failures),
                  "client": __import__("ray").util.client.ray.is_connected()}}))
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"same": True, "failures": 0, "client": True}
