"""Fault injection against a fake OpenAI-compatible server on 127.0.0.1 (issue 18, items 1, 5, 6): every request
the server sees is one counted call, retries live in one layer, a time-out is a deadline, reasons are worded for
a person, an answer that ignores max_tokens is never kept, and model-written markup never runs in report.html."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply

from clio_lab import LLM
from clio_lab.cache import Cache
from clio_lab.llm import runner
from clio_lab.llm.client import LLMTask, ParseError
from clio_lab.llm.prompts import Prompt

SUMMARY = "The user asked for help planning a weekend trip."


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch):
    monkeypatch.setattr(runner, "BACKOFF_S", 0.01)


def _parse(raw: str) -> str:
    text = raw.strip()
    if len(text.split()) < 2:
        raise ParseError(f"answer too short: {text[:40]!r}")
    return text


def _tasks(n: int, max_tokens: int = 64) -> list[LLMTask]:
    return [LLMTask(item_id=f"i{i}", prompt=Prompt(body=f"Summarise conversation {i}."), parse=_parse,
                    key_parts={"step": "fault-test", "i": i}, max_tokens=max_tokens) for i in range(n)]


def _llm(server: FakeOpenAI, **kw) -> LLM:
    return LLM(model="openai/fake-model", api_base=server.url, api_key="sk-test", max_concurrency=4,
               **{"max_retries": 2, "timeout": 10.0, **kw})


def _run(plan, n=1, cache=None, again=False, **kw):
    """Run ``n`` tasks against a server answering by ``plan``: outcomes, stats, requests the server saw,
    seconds; with ``again``, also the same for a second run against the same server (a warm re-run)."""
    with FakeOpenAI(plan) as server:
        start = time.perf_counter()
        out, stats = _llm(server, **kw).run(_tasks(n), cache=cache, progress=False)
        first = out, stats, len(server.requests), time.perf_counter() - start
        if not again:
            return first
        out2, stats2 = _llm(server, **kw).run(_tasks(n), cache=cache, progress=False)
        return first, (out2, stats2, len(server.requests) - first[2])


def _first_fails(k: int, reply: Reply):
    return lambda body, n: reply if n <= k else Reply(content=SUMMARY)


@pytest.mark.parametrize(("name", "plan", "requests"), [
    ("429 without Retry-After", _first_fails(2, Reply(status=429)), 3),
    ("429 with Retry-After: 1", _first_fails(1, Reply(status=429, headers={"Retry-After": "1"})), 2),
    ("500", _first_fails(2, Reply(status=500)), 3),
    ("503", _first_fails(1, Reply(status=503)), 2),
    ("empty choices", _first_fails(2, Reply(choices=[])), 3),
])
def test_transient_faults_are_retried_and_every_request_counted(name, plan, requests):
    out, stats, seen, seconds = _run(plan)
    assert out[0].ok and out[0].value == SUMMARY, (name, out[0])
    assert seen == requests == stats.calls, (name, seen, stats.calls)
    assert stats.retries == requests - 1
    if name == "429 with Retry-After: 1":
        assert seconds >= 0.95  # the server's wait was honoured (asyncio's clock may wake a hair early)


@pytest.mark.parametrize(("name", "plan", "reason"), [
    ("500 always", lambda b, n: Reply(status=500), r"^call failed: server error \(HTTP 500\): fake error 500$"),
    ("429 always", lambda b, n: Reply(status=429),
     r"^call failed: rate limited by the server \(HTTP 429\): fake error 429$"),
    ("no choices", lambda b, n: Reply(choices=[]), r"^call failed: the server's answer had no choices$"),
    ("content is a number", lambda b, n: Reply(content=42),
     r"^call failed: the server's answer is not a valid chat completion$"),
    ("content is a list of numbers", lambda b, n: Reply(content=[1, 2]),
     r"^call failed: the server's answer is not a valid chat completion$"),
    ("choices is no list", lambda b, n: Reply(body=b'{"choices": "x"}'),
     r"^call failed: the server's answer is not a valid chat completion \('choices' that is not a list \(str\)"),
    ("body is no JSON", lambda b, n: Reply(body=b"<html><body>Bad gateway</body></html>"),
     r"^call failed: the server's answer is not JSON \(Expecting value: line 1 column 1 \(char 0\)\)$"),
])
def test_a_fault_that_persists_is_a_failure_in_words_after_max_retries(name, plan, reason, tmp_path):
    cache = Cache(tmp_path)
    (out, stats, seen, _), (_, stats2, seen2) = _run(plan, cache=cache, again=True)
    assert not out[0].ok and re.match(reason, out[0].error), (name, out[0].error)
    assert "Traceback" not in out[0].error and "Exception" not in out[0].error
    assert seen == stats.calls == 3 and stats.failed == 1  # max_retries=2: three requests, all counted
    assert seen2 == stats2.calls == 3 and stats2.cache_hits == 0  # a failed call is never cached: asked again


def test_a_long_retry_after_fails_at_once_and_says_why():
    out, stats, seen, seconds = _run(lambda b, n: Reply(status=429, headers={"Retry-After": "600"}))
    assert not out[0].ok and seconds < 5
    assert "asked to wait 600 s (Retry-After), longer than the 60 s clio_lab waits" in out[0].error
    assert seen == stats.calls == 1


def test_the_timeout_is_a_deadline_per_request_and_the_reason_says_so():
    out, stats, seen, seconds = _run(lambda b, n: Reply(delay=3.0, content=SUMMARY), timeout=1.0, max_retries=1)
    assert not out[0].ok and out[0].error == "call failed: no answer within the 1 s time-out"
    assert seen == stats.calls == 2
    assert seconds < 2 * 1.0 + 1.5  # two requests of at most 1 s each, and a short wait between them


def test_an_answer_that_ignores_max_tokens_is_never_kept(tmp_path):
    huge = "word " * 48_000  # 240,000 characters for max_tokens=64
    cache = Cache(tmp_path)
    (out, stats, seen, _), (out2, stats2, seen2) = _run(lambda b, n: Reply(content=huge), cache=cache, again=True)
    assert not out[0].ok and "240,000 characters, more than max_tokens=64 allows" in out[0].error
    assert len(out[0].raw) < 2000  # what is kept for failures.jsonl is cut
    assert seen == stats.calls == 2  # asked, re-asked once: the same answer again, so no third ask
    assert seen2 == 0 and stats2.cache_hits == 1 and not out2[0].ok  # remembered as a failure, not a success


def test_no_layer_below_retries_on_its_own():
    """LiteLLM's num_retries and the OpenAI client's max_retries are 0: with clio_lab's max_retries=0 one
    item is exactly one request, whatever the fault."""
    for reply in (Reply(status=429), Reply(status=500), Reply(status=502), Reply(choices=[])):
        _, stats, seen, _ = _run(lambda b, n, r=reply: r, max_retries=0)
        assert seen == stats.calls == 1, reply


# ------------------------------------------------------------------------------------------ end to end
PAYLOAD = "</script><img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned2'</script>"


def _answers(body: dict, n: int, faults: dict[int, Reply]) -> Reply:
    if n in faults:
        return faults[n]
    prompt = "".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    if "privacy reviewer" in prompt:  # the auditor
        return Reply(content=" 5\nReason: A general topic with nothing identifying.")
    topic = re.findall(r"(?:User|user): (.+)", prompt)
    words = " ".join(re.findall(r"[A-Za-z]+", topic[-1] if topic else "things")[:6]).lower()
    return Reply(content=f"The user asked for help with {words} {PAYLOAD} today.")


def _pipeline_run(tmp_path, faults: dict[int, Reply]):
    from conftest import DEMO
    from fakes import FakeEmbedder

    import clio_lab

    convs = clio_lab.load_conversations(DEMO, limit=40)
    with FakeOpenAI(lambda b, n: _answers(b, n, faults)) as server:
        llm = LLM(model="openai/fake-model", api_base=server.url, api_key="sk-test", max_retries=2, timeout=10.0)
        result = clio_lab.run_pipeline(convs, llm=llm, embedder=FakeEmbedder(), embed_on="text", k=4,
                                       naming="extractive", hierarchy="extractive", cache=tmp_path / "cache",
                                       min_conversations=2, min_users=1, progress=False)
        out = result.save(tmp_path / "run")
        return out, len(server.requests)


def test_stats_json_counts_every_request_the_server_saw(tmp_path):
    faults = {3: Reply(status=429), 5: Reply(status=500), 7: Reply(choices=[]), 9: Reply(content="word " * 5000),
              11: Reply(status=429, headers={"Retry-After": "0"})}
    out, seen = _pipeline_run(tmp_path, faults)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["llm_calls"] == seen
    by_step = stats["llm_by_step"]
    assert sum(s["calls"] for s in by_step.values()) == seen
    assert by_step["facets"]["retries"] >= 5  # four transient faults and one answer too long
    assert stats["failed_items"] == 0  # every fault here was retried into an answer


def test_markup_a_model_writes_never_runs_in_the_report(tmp_path):
    """A summary with </script><img onerror> lands in the size chart's data, the tree and the names: the
    report is one document, the markup is text (parsed here) and nothing runs in Chromium."""
    out, _ = _pipeline_run(tmp_path, {})
    html_text = (out / "report.html").read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: list[str] = []
            self.attrs: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.attrs.extend(name for name, _ in attrs)

    parser = Tags()
    parser.feed(html_text)
    assert parser.tags.count("html") == 1 and parser.tags.count("body") == 1
    assert parser.tags.count("img") == 1 and 'src="data:image/png;base64,' in html_text  # the map, inline
    assert not any(a.startswith("on") for a in parser.attrs)
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html_text, flags=re.S)
    assert len(scripts) == 3 and not any("pwned" in s and "\\u003c" not in s for s in scripts)
    assert "&lt;/script&gt;&lt;img" in html_text  # the tree shows it as text
    spec = json.loads(re.search(r'<script type="application/json" id="size-chart-spec">(.*?)</script>',
                                html_text, flags=re.S).group(1))
    rows = [row for data in spec["datasets"].values() for row in data]
    assert any(PAYLOAD in str(v) for row in rows for v in row.values())  # JSON.parse gives the text back whole

    playwright = pytest.importorskip("playwright.sync_api")
    from clio_lab.widgets.lab import CHROMIUM, CHROMIUM_ARGS

    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors, requests = [], []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda req: requests.append(req.url))
        page.goto((out / "report.html").as_uri())
        page.wait_for_selector("#size-chart svg, #size-chart canvas", timeout=30_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        if os.environ.get("CLIO_LAB_SCREENSHOTS"):  # for a person to look at
            shutil.copy(tmp_path / "report.png", Path(os.environ["CLIO_LAB_SCREENSHOTS"]) / "report_with_markup.png")
        assert page.title() == "clio_lab report"
        assert page.evaluate("[...document.images].map(i => i.src.slice(0, 22))") == ["data:image/png;base64,"]
        assert page.evaluate("document.querySelector('img.map').naturalWidth") > 300  # the map drew
        assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
        assert page.evaluate("document.querySelectorAll('html, body, head').length") == 3
        assert not errors, errors
        assert all(u.startswith(("file://", "data:")) for u in requests), requests
        browser.close()


def test_clusters_that_share_a_name_get_a_bar_each():
    import pandas as pd

    from clio_lab.release import WITHHELD_NAME
    from clio_lab.report import cluster_size_chart

    clusters = pd.DataFrame({"id": ["a", "b", "c", "w1", "w2", "t"],
                             "name": ["Trips", "Trips", "Code", WITHHELD_NAME, WITHHELD_NAME, "All"],
                             "size": [3, 2, 1, 4, 5, 15], "level": [0, 0, 0, 0, 0, 1],
                             "parent": ["t", "t", "t", "t", "t", None], "central_summaries": [["s"]] * 6,
                             "status": ["shown"] * 3 + ["withheld"] * 2 + ["shown"]})
    (rows,) = cluster_size_chart(clusters).to_dict()["datasets"].values()
    # withheld clusters are one pooled row in grey: neither their own sizes nor their categories are released
    assert [r["name"] for r in rows] == ["Trips (1)", "Trips (2)", "Code", WITHHELD_NAME]
    assert rows[-1]["size"] == 9 and rows[-1]["category"] == WITHHELD_NAME


def test_a_text_completion_run_leaves_no_client_session_open(tmp_path):
    """LiteLLM's aiohttp transport left one session open per text-completion call, and each printed
    "Unclosed client session" on stderr (seen with llama_cpp.server); clio_lab takes the httpx transport."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fake_openai import FakeOpenAI, Reply
from clio_lab import LLM
from clio_lab.llm.client import LLMTask
from clio_lab.llm.prompts import Prompt
body = json.dumps({{"id": "x", "object": "text_completion", "created": 1, "model": "f", "choices": [
    {{"index": 0, "text": "a fine answer", "finish_reason": "stop"}}],
    "usage": {{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}}}).encode()
with FakeOpenAI(lambda b, n: Reply(body=body)) as server:
    llm = LLM(model="text-completion-openai/fake", api_base=server.url, api_key="x")
    for r in range(2):
        tasks = [LLMTask(item_id=str(i), prompt=Prompt(body=f"q{{r}} {{i}}"), parse=str, key_parts={{"step": "t"}})
                 for i in range(5)]
        out, stats = llm.run(tasks, cache=None, progress=False)
        assert all(o.ok for o in out) and stats.calls == 5
print("ok")
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
    assert "Unclosed" not in done.stderr, done.stderr[-1000:]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_runs_one_after_another_reuse_their_connections_instead_of_leaving_them_open():
    """LiteLLM keeps its HTTP clients per event loop and closes none when a loop ends; with a new loop per run
    every run left its connections open (64 file descriptors per run at concurrency 64: a Ray worker's 16th
    batch failed with "Too many open files" under a limit of 1,024). Runs now share one loop."""
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    with FakeOpenAI(lambda body, n: Reply(content="a fine answer"), keep_alive=True) as server:
        llm = LLM(model="openai/fake-model", api_base=server.url, api_key="sk-test", max_concurrency=8)
        llm.run(_tasks(16), cache=None, progress=False)  # the first run opens the connections
        before = open_files()
        for _ in range(5):
            out, stats = llm.run(_tasks(16), cache=None, progress=False)
            assert all(o.ok for o in out) and stats.calls == 16
        assert open_files() - before < 8, (before, open_files())  # before: about 8 more per run
