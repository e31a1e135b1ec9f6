import pytest

import clio_lab
from clio_lab import LLM, FacetSpec
from clio_lab.facets import choose_examples, clean_answer, computed_facets, parse_languages, parse_number
from clio_lab.llm import ParseError

FAKE = LLM(model="fake/m", prompt_style="completion")


def test_builtin_facets_answer_in_their_own_form(tmp_path, fake_llm, fake_embedder, demo_convs):
    res = clio_lab.extract_facets(demo_convs[:6], ("request", "task", "language", "concerning"), llm=FAKE,
                                  cache=tmp_path, embedder=fake_embedder, progress=False)
    assert not res.failures
    assert res.values["language"] == ["English"] * 6 and res.values["concerning"] == [2.0] * 6
    assert all(v.endswith(".") for v in res.values["request"] + res.values["task"])
    prompts = fake_llm.prompts
    assert sum(p.rstrip().endswith("The task is to") for p in prompts) == 6
    assert any("5 = extremely concerning" in p for p in prompts)
    frame = res.to_frame()
    assert list(frame.columns[:5]) == ["id", "request", "task", "language", "concerning"] and "turns" in frame


def test_user_defined_numeric_facet_without_privacy_instructions(fake_llm, fake_embedder, demo_convs):
    spec = FacetSpec(name="score", question="How many steps? Answer with a number.", prefill="The number is",
                     privacy=False, kind="number", minimum=0, maximum=10)
    fake_llm.reset()
    res = clio_lab.extract_facets(demo_convs[:2], [spec], llm=FAKE, cache=None, embedder=fake_embedder,
                                  progress=False)
    assert "without any names" not in fake_llm.prompts[0]  # privacy instructions off
    assert res.values["score"] == [None, None] and len(res.failures) == 2  # the fake answers with words
    assert all("no number" in f["reason"] for f in res.failures)


def test_parsers():
    assert parse_number(" 4.", 1, 5) == 4.0
    with pytest.raises(ParseError):
        parse_number(" 9", 1, 5)
    with pytest.raises(ParseError):
        parse_number(" none", 1, 5)
    assert parse_languages(" German, English.") == "German, English"
    assert parse_languages("Spanish and French") == "Spanish, French"
    with pytest.raises(ParseError):
        parse_languages(" the user wants help")
    assert clean_answer(" fix a bug in a loop\nConversation: x") == "fix a bug in a loop."
    with pytest.raises(ParseError):
        clean_answer(" x")


def test_nearest_examples_put_the_most_similar_last():
    import numpy as np

    pool = np.eye(4, dtype=np.float32)
    query = np.array([0.1, 0.9, 0.5, 0.0], dtype=np.float32)
    assert choose_examples(query, pool, 2) == [2, 1]
    assert choose_examples(query, pool, 2, exclude=[1]) == [0, 2]


def test_computed_facets_pass_scalar_metadata_through(demo_convs):
    out = computed_facets(demo_convs[0], truncated=True)
    assert out["turns"] >= 1 and out["truncated"] is True and out["meta_topic"] == demo_convs[0].metadata["topic"]
    assert "meta_pii" not in out  # lists stay out of the table


def test_plain_texts_work_as_one_message_conversations(fake_llm, fake_embedder):
    import pandas as pd

    convs = clio_lab.load_conversations(pd.DataFrame({"id": ["1", "2"], "text": ["I lost my card", "top up failed"]}))
    res = clio_lab.extract_facets(convs, llm=FAKE, cache=None, embedder=fake_embedder, progress=False)
    assert res.values["request"] == ["help with i lost my card.", "help with top up failed."]


def test_a_corpus_larger_than_a_window_gets_the_same_answers_failures_and_counts(tmp_path, fake_llm, fake_embedder,
                                                                               demo_convs, monkeypatch):
    """Prompts are rendered and sent a window of conversations at a time (a million rendered at once would hold
    gigabytes): the answers, their order, the failures and the PII counts are those of one window."""
    from clio_lab import facets
    from clio_lab.pii import PIIDetector

    spec = FacetSpec(name="score", question="How many steps? Answer with a number.", prefill="The number is",
                     privacy=False, kind="number", minimum=0, maximum=10)
    detector = PIIDetector()

    def run(window):
        monkeypatch.setattr(facets, "FACET_WINDOW", window)
        fake_llm.reset()
        fake_llm.leak_first = 10**6  # every answer names someone's e-mail: re-asked, then kept redacted
        res = clio_lab.extract_facets(demo_convs, ["request", spec], llm=FAKE, cache=None, embedder=fake_embedder,
                                      pii=detector, progress=False)
        return res, fake_llm.calls

    whole, calls = run(1000)
    windowed, windowed_calls = run(7)  # 40 conversations: 6 windows, the last of 5
    assert windowed.values == whole.values and windowed.ids == whole.ids == [c.id for c in demo_convs]
    assert windowed.computed == whole.computed and windowed.failures == whole.failures
    assert len(whole.failures) >= len(demo_convs)  # every score fails (the fake answers with words)
    assert windowed.pii == whole.pii and whole.pii["request"]["checked"] == len(demo_convs)
    assert whole.pii["request"]["reasked_for_pii"] == whole.pii["request"]["redacted"] == len(demo_convs)
    assert windowed_calls == calls and windowed.stats.calls == whole.stats.calls


def test_a_failed_answer_is_asked_once_more_without_worked_examples_and_kept_only_near_its_conversation(
        tmp_path, fake_llm, fake_embedder, demo_convs, monkeypatch):
    from clio_lab import facets

    convs = [c for c in demo_convs if c.metadata["language"] == "English"][:4]
    once = LLM(model="fake/m", prompt_style="completion", max_parse_retries=1)

    def run(last_ask, cache):
        fake_llm.reset()
        fake_llm.garbage_first = 2 * len(convs)  # the first ask and the re-ask of every conversation fail
        return clio_lab.extract_facets(convs, llm=once, cache=cache, embedder=fake_embedder, progress=False,
                                       last_ask=last_ask)

    off = run(None, tmp_path / "off")  # default: only the in-process local model asks again
    assert off.values["request"] == [None] * 4 and len(off.failures) == 4 and fake_llm.calls == 8
    assert off.last_asked == {"request": []}

    on = run(True, tmp_path / "on")
    assert fake_llm.calls == 12 and not on.failures
    assert on.last_asked == {"request": [c.id for c in convs]}
    assert all(p.count("Conversation:") == 1 for p in fake_llm.prompts[8:])  # no worked example shown
    assert all(v.startswith("help with ") for v in on.values["request"])

    # an answer that does not lie near its conversation stays failed, with both reasons; nothing is lost
    monkeypatch.setattr(facets, "LAST_ASK_MIN_SIMILARITY", 1.01)
    far = run(True, tmp_path / "far")
    assert far.values["request"] == [None] * 4 and far.last_asked == {"request": []}
    assert [f["id"] for f in far.failures] == [c.id for c in convs]
    assert all("answer too short" in f["reason"] and "asked again without worked examples" in f["reason"]
               and "lies too far from the conversation" in f["reason"] for f in far.failures)


def test_the_local_model_reads_the_start_of_a_long_conversation_and_a_hosted_model_all_of_it(fake_llm):
    from clio_lab.facets import HOSTED_MAX_CONVERSATION_CHARS, facet_tasks, resolve_specs
    from clio_lab.llm.local import LOCAL_MAX_CONVERSATION_CHARS
    from clio_lab.records import Conversation, Message

    opening = "Help me plan a vegetable garden for a small balcony. "
    later = " ".join(f"Follow-up question {i} about soil, pots and watering." for i in range(400))
    long = Conversation(id="long", messages=[Message(role="user", content=opening * 10),
                                             Message(role="assistant", content="Here is a plan. " * 50),
                                             Message(role="user", content=later)])
    assert LOCAL_MAX_CONVERSATION_CHARS < len(long.as_text()[0]) < HOSTED_MAX_CONVERSATION_CHARS
    for llm, whole in ((LLM(), False), (FAKE, True)):
        rendered, planned = facet_tasks([long], resolve_specs(["request"]), llm=llm, cache=None, examples="none")
        text, truncated = rendered[0]
        assert truncated is not whole and text.startswith("User: " + opening)
        assert ("Follow-up question 399" in text) is whole
        assert len(text) <= (len(long.as_text()[0]) if whole else LOCAL_MAX_CONVERSATION_CHARS)
        assert text in planned[0][0].prompt.as_transcript()  # what the model is shown
    res = clio_lab.extract_facets([long], ("request",), llm=FAKE, cache=None, examples="none", progress=False)
    assert res.computed[0]["truncated"] is False and not res.failures
