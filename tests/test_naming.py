import numpy as np
import pytest

from clio_lab import LLM
from clio_lab.llm import ParseError
from clio_lab.naming import UNCLUSTERED, keyword_labels, label_clusters, parse_name, shorten_name


def _data():
    from fakes import FakeEmbedder

    topics = {0: ["fix a python error in a loop", "debug a python import error", "fix a python type error"],
              1: ["bake sourdough bread at home", "make bread dough rise", "bake a bread loaf"],
              2: ["plan a trip to the coast", "plan a weekend trip", "plan a family trip abroad"]}
    summaries, labels = [], []
    for c, items in topics.items():
        summaries += items
        labels += [c] * len(items)
    return summaries, FakeEmbedder().encode(summaries), np.array(labels)


def test_keyword_labeller_names_every_cluster_with_no_model():
    summaries, X, labels = _data()
    names = keyword_labels(summaries, X, labels)
    for c, word in {0: "python", 1: "bread", 2: "trip"}.items():
        assert word in names[c].keywords[:2] and word in names[c].name
    assert all(n.method == "keywords" and n.size == 3 and n.description for n in names.values())


def test_noise_is_an_explicit_unclustered_group():
    summaries, X, labels = _data()
    labels = labels.copy()
    labels[0] = -1
    names = label_clusters(summaries, X, labels, method="keywords")
    assert names[-1].name == UNCLUSTERED and names[-1].size == 1


def test_llm_naming_sees_inside_and_nearest_outside(tmp_path, fake_llm, fake_embedder):
    summaries, X, labels = _data()
    names = label_clusters(summaries, X, labels, llm=LLM(model="fake/m", prompt_style="completion"),
                           cache=tmp_path, n_inside=3, n_outside=2, embedder=fake_embedder, progress=False)
    assert all(names[c].method == "llm" for c in (0, 1, 2)) and not names.failures
    assert "python" in names[0].name.lower() and names[0].description.endswith(".")
    groups = [p.rsplit("Requests in the group:", 1)[1].split("Nearby requests outside the group:")
              for p in fake_llm.prompts]
    inside, outside = next(g for g in groups if "- bake sourdough bread at home" in g[0])
    assert inside.count("\n- ") == 3 and outside.count("\n- ") == 2
    assert "bread" not in outside  # contrast comes from other clusters only
    fake_llm.reset()
    again = label_clusters(summaries, X, labels, llm=LLM(model="fake/m", prompt_style="completion"), cache=tmp_path,
                           n_inside=3, n_outside=2, embedder=fake_embedder, progress=False)
    assert fake_llm.calls == 0 and again[0].name == names[0].name


def test_failed_naming_falls_back_to_keywords_and_is_recorded(fake_llm, fake_embedder):
    summaries, X, labels = _data()
    fake_llm.garbage_first = 100
    names = label_clusters(summaries, X, labels, llm=LLM(model="fake/m", prompt_style="completion"), cache=None,
                           embedder=fake_embedder, progress=False)
    assert all(names[c].method == "keywords (llm failed)" for c in (0, 1, 2))
    assert len(names.failures) == 3 and all(f["step"] == "naming" for f in names.failures)


@pytest.mark.parametrize("raw", ["no name here", "Short.\nName: x", "A long enough description of it.\nName: " + "word " * 11])
def test_parse_name_rejects_bad_answers(raw):
    with pytest.raises(ParseError):
        parse_name(raw)


def test_parse_name_accepts_the_clio_form():
    assert parse_name(" The users asked for help with bread. They baked.\nName: Bake bread at home.") == {
        "name": "Bake bread at home", "description": "The users asked for help with bread. They baked."}


def test_a_name_that_fits_a_neighbour_better_is_rejected(fake_llm, fake_embedder, monkeypatch):
    summaries, X, labels = _data()
    monkeypatch.setattr(fake_llm, "_answer",
                        lambda prompt, step: " The users asked how to bake bread and make dough. They baked loaves.\n"
                                       "Name: Bake bread and dough at home\n")
    names = label_clusters(summaries, X, labels, llm=LLM(model="fake/m", prompt_style="completion"), cache=None,
                           embedder=fake_embedder, progress=False)
    assert names[1].method == "llm" and names[1].name == "Bake bread and dough at home"
    assert names[0].method == names[2].method == "keywords (llm failed)"
    assert all("fits the nearby clusters better" in f["reason"] for f in names.failures)


def test_a_description_without_a_name_is_completed_not_thrown_away(fake_llm, fake_embedder):
    summaries, X, labels = _data()
    fake_llm.drop_name_first = 3  # every first answer stops after its description
    names = label_clusters(summaries, X, labels, llm=LLM(model="fake/m", prompt_style="completion"), cache=None,
                           embedder=fake_embedder, progress=False)
    assert not names.failures and all(names[c].method == "llm" for c in (0, 1, 2))
    assert all(names[c].name == "Repaired name for the group" for c in (0, 1, 2))
    assert "python" in names[0].description.lower()  # the first answer's description was kept
    repairs = [p for p in fake_llm.prompts if p.rstrip().endswith("Name:")]
    assert len(repairs) == 3 and all("Summary: The users asked to" in p[-400:] for p in repairs)


def test_over_long_names_lose_trailing_qualifiers_only():
    assert shorten_name("Plan a short budget city trip with museums and good food") == \
        "Plan a short budget city trip with museums"
    assert shorten_name("Write cover letters, CVs and thank-you notes for jobs in accounting and finance") == \
        "Write cover letters, CVs and thank-you notes for jobs"
    with pytest.raises(ParseError):
        shorten_name("one two three four five six seven eight nine ten eleven")
    value = parse_name("The users asked for trips on a budget.\nName: Plan a short budget city trip with museums "
                       "and good food")
    assert value["name"] == "Plan a short budget city trip with museums"
