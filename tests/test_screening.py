"""The screener (clio_lab/screening.py): yes/no per conversation, cached, failures recorded and never taken for
an answer, and the pipeline and CLI keeping only the conversations answered yes."""

import json

import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.cli import main
from clio_lab.records import Conversation, Message
from clio_lab.screening import NothingScreenedIn, parse_yes_no, screen


def conv(i, text):
    return Conversation(id=f"c{i}", messages=[Message(role="user", content=text)])


CONVS = [conv(0, "My garden hose leaks at the tap"), conv(1, "Write a poem about the sea"),
         conv(2, "How deep should I plant garden bulbs?"), conv(3, "unanswerable text")]
FAKE = dict(model="fake/m", prompt_style="completion")


def test_parse_yes_no():
    assert parse_yes_no(" Yes.") == "yes" and parse_yes_no("no, it is not") == "no"
    with pytest.raises(clio_lab.llm.ParseError):
        parse_yes_no(" Perhaps")


def test_answers_are_cached_and_a_failure_stays_a_failure(fake_llm, tmp_path):
    s = screen(CONVS, "Is this conversation about a garden?", llm=LLM(**FAKE), cache=tmp_path, progress=False)
    assert s.answers == ["yes", "no", "yes", None] and s.counts() == {"yes": 2, "no": 1, "failed": 1}
    assert [c.id for c in s.select(CONVS)] == ["c0", "c2"]
    assert s.failures[0]["id"] == "c3" and s.failures[0]["step"] == "screen" and s.failures[0]["reason"]
    again = screen(CONVS, "Is this conversation about a garden?", llm=LLM(**FAKE), cache=tmp_path, progress=False)
    assert again.answers == s.answers and again.stats.calls == 0  # answered from the cache, the failure too
    other = screen(CONVS, "Is this conversation about a poem?", llm=LLM(**FAKE), cache=tmp_path, progress=False)
    assert other.answers[:3] == ["no", "yes", "no"] and other.stats.calls > 0  # another question, other keys
    with pytest.raises(ValueError, match="same order"):
        s.select(CONVS[::-1])
    with pytest.raises(ValueError, match="question is empty"):
        screen(CONVS, "  ", llm=LLM(**FAKE), cache=None)


def test_the_embedding_method_answers_by_similarity_with_no_model_call(fake_embedder, tmp_path):
    q = "Is this conversation about a garden?"
    s = screen(CONVS, q, method="embedding", embedder=fake_embedder, threshold=0.2, cache=tmp_path)
    sims = clio_lab.embed([c.messages[0].content for c in CONVS], fake_embedder, cache=None) @ \
        clio_lab.embed([q], fake_embedder, cache=None)[0]
    assert s.answers == ["yes" if v >= 0.2 else "no" for v in sims] and s.stats.calls == 0
    assert s.similarity == pytest.approx(sims.tolist(), abs=1e-6) and s.as_dict()["threshold"] == 0.2
    # with the local model, "auto" takes the embedding (its own answers measured near chance)
    auto = screen(CONVS, q, llm=LLM(), embedder=fake_embedder, threshold=0.2, cache=tmp_path)
    assert auto.method == "embedding" and auto.answers == s.answers
    with pytest.raises(ValueError, match="method="):
        screen(CONVS, q, method="vibes", cache=None)


def test_the_pipeline_clusters_only_what_the_screener_kept(fake_llm, fake_embedder, demo_convs, tmp_path):
    question = "Is this conversation about work?"
    res = clio_lab.run_pipeline(demo_convs, llm=LLM(**FAKE), embedder=fake_embedder, cache=tmp_path, k=3,
                                screen=question, min_conversations=None, min_users=None, progress=False)
    s = res.screening
    assert 0 < len(res) == s.counts()["yes"] < len(demo_convs)
    assert {c.id for c in res.conversations} == {c.id for c, k in zip(demo_convs, s.keep, strict=True) if k}
    assert res.config["screen"] == {"question": question, "counts": s.counts(), "method": "llm"}
    assert res.llm_stats["screen"].calls + res.llm_stats["screen"].cache_hits == len(demo_convs)
    with pytest.raises(NothingScreenedIn, match="nothing is left"):
        clio_lab.run_pipeline(demo_convs, llm=LLM(**FAKE), embedder=fake_embedder, cache=tmp_path, k=3,
                              screen="Is this conversation about zzzz?", progress=False)


def test_the_screen_option_of_the_command(fake_llm, tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"id": str(i), "messages": [{"role": "user", "content": t}]})
                              for i, t in enumerate(["water the garden", "bake bread"] * 3)), encoding="utf-8")
    args = [str(path), "--model", "fake/m", "--embedder", "hashing", "--no-projection", "--quiet", "--naming",
            "keywords", "--min-conversations", "0", "--min-users", "0", "--cache-dir", str(tmp_path / "cache")]
    assert main(["run", *args, "--out", str(tmp_path / "none"), "--screen", "Is this conversation about zzzz?"]) == 2
    assert "nothing is left to cluster" in capsys.readouterr().err
    assert main(["run", *args, "--k", "1", "--out", str(tmp_path / "run"), "--screen",
                 "Is this conversation about a garden?"]) == 0
    run = clio_lab.load_run(tmp_path / "run")
    assert len(run) == 3 and run.config["screen"]["counts"] == {"yes": 3, "no": 3, "failed": 0}
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "screened by" in report and "yes 3, no 3, failed 0" in report
