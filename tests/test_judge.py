"""LLM-judge checks of a hierarchy, through the real LLM path (a fake provider that judges by shared words)."""

import numpy as np
import pytest

from clio_lab import LLM
from clio_lab.hierarchy import Hierarchy, Node
from clio_lab.judge import judge_hierarchy, parse_yes_no
from clio_lab.llm.client import ParseError

LLM_FAKE = LLM(model="fake/m", prompt_style="completion")
TOPICS = {
    "recipes": ("Cook dinner recipes", "Recipes for curry, lasagna and bread."),
    "python": ("Debug Python scripts", "Fixing crashes and exceptions in Python scripts."),
    "travel": ("Plan travel itineraries", "Travel plans with museums and hikes."),
    "taxes": ("Report taxes and deductions", "Declaring income and deductions on taxes."),
}
ITEMS = {
    "recipes": ["The user wants recipes for a vegetarian curry.", "Asks for bread recipes from scratch.",
                "Wants a lasagna recipes list for dinner."],
    "python": ["The user's Python script crashes reading a file.", "Exceptions when parsing JSON in Python.",
               "A script crashes with a KeyError."],
    "travel": ["Plan travel to Lisbon with museums.", "A weekend itinerary with hikes and food.",
               "Travel plans for a family with museums."],
    "taxes": ["How to report freelance income on taxes.", "Which deductions apply to a home office.",
              "Declaring rental income on taxes."],
}


def _tree(swap: bool = False):
    """Four base clusters under two categories; ``swap`` gives each cluster the next cluster's members (a bad
    clustering with the same names)."""
    keys = list(TOPICS)
    nodes = {f"0.{i}": Node(f"0.{i}", 0, i, *TOPICS[k], 3, "llm", f"1.{i // 2}") for i, k in enumerate(keys)}
    nodes["1.0"] = Node("1.0", 1, 0, "Cooking and programming", "Recipes, dinner and Python scripts.", 6, "llm",
                        None, ["0.0", "0.1"])
    nodes["1.1"] = Node("1.1", 1, 1, "Travel and taxes", "Travel plans, museums, income and taxes.", 6, "llm", None,
                        ["0.2", "0.3"])
    texts = [t for k in keys for t in ITEMS[k]]
    labels = np.repeat(np.arange(4), 3)
    if swap:
        labels = (labels + 1) % 4
    return Hierarchy(nodes, labels), texts


def test_parse_yes_no_reads_the_first_word():
    assert parse_yes_no(" Yes\n") and not parse_yes_no("**No**, it is about cooking")
    assert parse_yes_no("Different") and not parse_yes_no(" same kind")
    with pytest.raises(ParseError):
        parse_yes_no("Maybe")


def test_a_good_tree_beats_its_controls_and_a_scrambled_one(tmp_path, fake_llm, fake_embedder):
    tree, texts = _tree()
    tree.check()
    report = judge_hierarchy(tree, texts, n_items=12, n_candidates=3, llm=LLM_FAKE, cache=tmp_path,
                             embedder=fake_embedder, progress=False)
    s = report.summary().set_index("check")
    assert set(s.index) == {"fit", "best", "exclusive", "distinct", "placement"}
    assert s.loc["fit", "n"] == 12 and s.loc["fit", "control_n"] == 12 and s["failed"].sum() == 0
    assert s.loc["fit", "rate"] > 0.9 > 0.2 > s.loc["fit", "control_rate"]
    assert s.loc["best", "rate"] > 0.9 and s.loc["best", "chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert s.loc["exclusive", "rate"] > 0.9
    assert s.loc["distinct", "rate"] == 1.0 and s.loc["distinct", "control_rate"] == 0.0
    assert s.loc["placement", "rate"] == 1.0 and s.loc["placement", "n"] == 4
    frame = report.to_frame()
    assert len(frame) == 12 * 4 + 2 * s.loc["distinct", "n"] + 8

    bad, texts = _tree(swap=True)
    worse = judge_hierarchy(bad, texts, n_items=12, n_candidates=3, llm=LLM_FAKE, cache=tmp_path,
                            embedder=fake_embedder, progress=False).summary().set_index("check")
    assert worse.loc["fit", "rate"] < 0.3 and worse.loc["best", "rate"] < 0.3

    again = judge_hierarchy(tree, texts=_tree()[1], n_items=12, n_candidates=3, llm=LLM_FAKE, cache=tmp_path,
                            embedder=fake_embedder, progress=False)
    assert again.stats.calls == 0 and again.asks == report.asks  # cached


def test_unreadable_answers_are_counted_as_failed_not_as_verdicts(tmp_path, fake_llm, fake_embedder):
    fake_llm.garbage_first = 10_000
    tree, texts = _tree()
    report = judge_hierarchy(tree, texts, n_items=4, llm=LLM(model="fake/m", prompt_style="completion",
                                                             max_parse_retries=0),
                             cache=tmp_path, embedder=fake_embedder, progress=False)
    s = report.summary()
    assert s["rate"].isna().all() and (s["failed"] > 0).all()
    assert report.to_frame()["error"].notna().all()


def test_bad_arguments_are_refused(fake_embedder):
    tree, texts = _tree()
    with pytest.raises(ValueError, match="align"):
        judge_hierarchy(tree, texts[:-1], llm=LLM_FAKE, embedder=fake_embedder)
    with pytest.raises(ValueError, match="level"):
        judge_hierarchy(tree, texts, level=5, llm=LLM_FAKE, embedder=fake_embedder)
