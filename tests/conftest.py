import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("CLIO_LAB_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "datasets" / "clio_demo.jsonl"


@pytest.fixture(autouse=True)
def _private_default_cache(tmp_path, monkeypatch):
    """No test touches the user's real cache folder."""
    monkeypatch.setenv("CLIO_LAB_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def fake_llm():
    from fakes import register_fake

    return register_fake()


@pytest.fixture
def fake_embedder():
    from fakes import FakeEmbedder

    return FakeEmbedder()


@pytest.fixture
def demo_convs():
    import clio_lab

    return clio_lab.load_conversations(DEMO, limit=40)


# `make test` sets CLIO_LAB_NO_SKIPS=1: there a skipped test (a missing browser, extra or package) is a failure
# that says what is missing, so a green run means every test ran.
NO_SKIPS = os.environ.get("CLIO_LAB_NO_SKIPS") == "1"


def _no_skip(report) -> None:
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CLIO_LAB_NO_SKIPS=1 (make test runs the whole suite): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _no_skip(outcome.get_result())
