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
