"""Extractive names and trees (clio_lab/extractive.py): chosen from what several members wrote, never written."""

import numpy as np
import pytest

import clio_lab
from clio_lab.extractive import (
    MIXED_SUPPORT,
    contrast,
    extractive_labels,
    member_candidates,
    name_from_answer,
    name_support,
    name_variants,
)


def test_an_answer_becomes_a_short_imperative_name():
    assert name_from_answer("fix a KeyError in their Python script when reading a CSV file.") == \
        "Fix a KeyError in the Python script"  # 12 words: cut before the last qualifier that fits
    assert name_from_answer("center a div with CSS.") == "Center a div with CSS"
    assert name_from_answer("plan a three-day trip with museums, food and a day hike near the coast in spring.") \
        == "Plan a three-day trip with museums"
    assert name_from_answer("write a poem. Then also make it rhyme.") == "Write a poem"
    assert name_from_answer(None) is None and name_from_answer("help.") is None
    assert name_from_answer("compare " + " ".join(f"w{i}" for i in range(20)) + ".") is None  # no place to cut
    assert name_from_answer("verify the identity, but how do I do that.") == "Verify the identity"
    # never cut before "of": it opens a noun's complement ("Write a poem in the style" says nothing)
    assert name_from_answer("write a poem in the style of the famous American writer Edgar Allan Poe.") == \
        "Write a poem"
    assert "Write a blog post about the benefits" not in name_variants(
        "Write a blog post about the benefits of remote work")


def _corpus():
    from fakes import FakeEmbedder

    topics = {0: ["fix a python error in a loop", "debug a python import error", "fix a python type error",
                  "bake bread for a python party"],  # an off-topic answer inside: must not become the name
              1: ["bake sourdough bread at home", "make bread dough rise", "bake a bread loaf"],
              2: ["plan a trip to the coast", "plan a weekend trip", "plan a family trip abroad"]}
    answers, labels = [], []
    for c, items in topics.items():
        answers += items
        labels += [c] * len(items)
    emb = FakeEmbedder()
    return answers, emb.encode(answers), np.array(labels), emb


def test_each_cluster_is_named_by_its_most_distinctive_answer():
    answers, X, labels, emb = _corpus()
    names = extractive_labels(answers, X, labels, embedder=emb, cache=None)
    assert "python" in names[0].name.lower() and "bread" not in names[0].name.lower()
    assert "bread" in names[1].name.lower() and "trip" in names[2].name.lower()
    assert all(names[c].method == "extractive (summary)" for c in range(3))
    assert names[0].description.startswith("Users asked the assistant to ")
    for c in range(3):  # a summary name leads its description, which then goes on to other requests
        first = names[c].description.removeprefix("Users asked the assistant to ").split(".")[0]
        assert first.lower() == names[c].name.lower(), (names[c].name, names[c].description)
        assert names[c].description.count(names[c].name[1:]) == 1
    # the name is nearer its own cluster's centre than any other's
    V = emb.encode([names[c].name for c in range(3)])
    C = np.stack([X[labels == c].mean(axis=0) for c in range(3)])
    assert (np.argmax(V @ C.T, axis=1) == np.arange(3)).all()


def test_a_name_that_speaks_for_a_minority_of_its_cluster_is_marked_mixed():
    from fakes import FakeEmbedder

    topics = {0: ["fix a python error in a loop", "debug a python import error", "water the garden roses",
                  "plant tomatoes in the garden", "change a car tyre", "check the car oil level"],  # three topics
              1: ["bake sourdough bread at home", "make bread dough rise", "bake a bread loaf"],
              2: ["plan a trip to the coast", "plan a weekend trip", "plan a family trip abroad"]}
    answers = [a for items in topics.values() for a in items]
    labels = np.array([c for c, items in topics.items() for _ in items])
    emb = FakeEmbedder()
    X = emb.encode(answers)
    names = extractive_labels(answers, X, labels, embedder=emb, cache=None)
    assert names[0].method.endswith(", mixed)") and "mixed" not in names[1].method + names[2].method
    support = name_support(X, labels, {c: names[c].name for c in range(3)}, emb)
    assert support[0] < MIXED_SUPPORT <= min(support[1], support[2])


def test_a_cluster_without_a_distinctive_answer_is_marked_and_one_without_answers_keeps_keywords():
    answers, X, labels, emb = _corpus()
    # cluster 2's answers are all about another cluster's topic: the best candidate is marked, not released plain
    answers = answers[:7] + ["fix a python error in a loop"] * 3
    names = extractive_labels(answers, X, labels, embedder=emb, cache=None)
    assert names[2].method == "extractive (summary, not distinctive)"
    answers = answers[:7] + [None] * 3
    names = extractive_labels(answers, X, labels, embedder=emb, cache=None)
    assert names[2].method == "keywords (no summaries)"


def test_contrast_prefers_what_sets_a_cluster_apart():
    C = np.array([[1.0, 0.0], [0.0, 1.0]])
    V = np.array([[0.7, 0.7], [0.9, 0.1]])
    assert np.argmax(contrast(V, C, 0)) == 1


def test_extractive_tree_groups_near_clusters_and_names_parents_from_answers(fake_embedder):
    from fakes import FakeEmbedder

    emb = FakeEmbedder()
    groups = {0: ["fix a python loop error", "debug python code"], 1: ["fix a python import error", "python debug"],
              2: ["bake sourdough bread", "bake bread loaf"], 3: ["make bread dough", "bread baking help"]}
    answers, labels = [], []
    for c, items in groups.items():
        answers += items * 3
        labels += [c] * (2 * 3)
    labels = np.array(labels)
    X = emb.encode(answers)
    names = clio_lab.label_clusters(answers, X, labels, method="extractive", embedder=emb, cache=None)
    tree = clio_lab.build_hierarchy(labels, names, method="extractive", levels=[2], summaries=answers, X=X,
                                    embedder=emb, cache=None)
    parents = tree.top
    assert len(parents) == 2
    kids = {p.name: {tree.nodes[c].index for c in p.children} for p in parents}
    assert sorted(kids.values(), key=min) == [{0, 1}, {2, 3}]
    for p in parents:
        assert p.method.startswith("extractive") and p.description
    # without the conversations' answers, the base names alone group and name the parents
    alone = clio_lab.build_hierarchy(labels, names, method="extractive", levels=[2], embedder=emb, cache=None)
    alone.check()
    kids = [{alone.nodes[c].index for c in p.children} for p in alone.top]
    assert sorted(kids, key=min) == [{0, 1}, {2, 3}]
    base_names = {n.name for n in names.labels.values()}
    assert all(p.name in base_names and p.method.startswith("extractive") for p in alone.top)


def test_label_clusters_refuses_an_unknown_method():
    answers, X, labels, emb = _corpus()
    with pytest.raises(ValueError, match="'auto', 'llm', 'extractive', 'keywords' or None"):
        clio_lab.label_clusters(answers, X, labels, method="magic", cache=None)


def test_auto_chooses_extractive_names_for_the_local_model_and_the_papers_way_for_hosted_ones():
    from clio_lab import LLM
    from clio_lab.naming import resolve_method

    assert resolve_method("auto", LLM()) == "extractive"
    assert resolve_method("auto", "openai/gpt-4o-mini") == "llm"
    assert resolve_method("keywords", LLM()) == "keywords"


def test_the_pipeline_names_and_builds_the_tree_extractively_when_asked(fake_llm, fake_embedder, demo_convs, tmp_path):
    from clio_lab import LLM

    res = clio_lab.run_pipeline(demo_convs, llm=LLM(model="fake/m", prompt_style="completion"), naming="extractive",
                                embedder=fake_embedder, cache=tmp_path, k=5, min_conversations=None, min_users=None,
                                audit=False, progress=False)
    methods = {n.method for n in res.hierarchy.nodes.values() if n.index >= 0}
    assert all(m.startswith("extractive (") for m in methods)
    assert any("not distinctive" not in m for m in methods)
    assert res.config["naming"] == "extractive" and res.config["hierarchy"] == "extractive"
    assert res.stats()["llm_by_step"]["naming"]["calls"] == 0  # chosen, not written


def test_a_summary_with_a_personal_detail_never_becomes_a_name_or_part_of_a_description():
    pytest.importorskip("presidio_analyzer")
    from clio_lab.pii import PIIDetector

    answers, X, labels, emb = _corpus()
    # the most central answer of cluster 1 names a person; another holds a placeholder from the facet check
    answers[4] = "bake sourdough bread with Lukas Vasquez at home"
    answers[5] = "make bread dough rise for <PERSON>"
    names = extractive_labels(answers, X, labels, embedder=emb, cache=None, detector=PIIDetector())
    for lab in names.values():
        assert "Vasquez" not in lab.name + lab.description and "<PERSON>" not in lab.name + lab.description
    assert "bread" in names[1].name.lower()


def test_a_request_becomes_names_of_several_generalities():
    assert name_variants("How do I verify my identity?") == ["How do I verify my identity", "Verify my identity"]
    cut = name_variants("What questions should I expect in an interview for a teacher?")
    assert "What questions should I expect in an interview" in cut  # the 12-word sentence itself is too long
    assert all(2 <= len(v.split()) <= 10 for v in cut)
    assert "Write social media posts" in name_variants("Write social media posts to promote a jewellery brand.")
    assert name_variants("df = pd.read_csv(path)  # 3") == []  # code is not a name


def _requests():
    from fakes import FakeEmbedder

    card = ["My new card has not arrived yet", "When will my new card arrive", "My card has still not arrived",
            "Tell Zebulon my new card has not arrived"]  # a rare word: one user's
    rate = ["What exchange rate do you use", "Why was the exchange rate so bad", "Which exchange rate applies",
            "The exchange rate looks wrong"]
    requests = card + rate
    labels = np.array([0] * 4 + [1] * 4)
    emb = FakeEmbedder()
    return requests, emb.encode(requests), labels, emb


def test_names_come_from_the_users_words_only_when_every_word_was_written_by_several_users():
    requests, X, labels, emb = _requests()
    names = extractive_labels([None] * len(requests), X, labels, embedder=emb, cache=None, requests=requests,
                              users=[f"u{i}" for i in range(len(requests))], min_word_users=3)
    assert names[0].method == "extractive (users' words)" and "card" in names[0].name.lower()
    assert "exchange rate" in names[1].name.lower()
    assert "Zebulon" not in names[0].name + names[0].description
    pool = member_candidates(np.arange(4), X, X[:4].mean(axis=0), [None] * 8, requests, None, min_word_users=3)
    assert pool and all(c.source == "users' words" for c in pool.values())
    assert not any("zebulon" in n.lower() or "tell" in n.lower() for n in pool)
    # the same four requests by one user: no word was written by three users, so no candidate
    assert member_candidates(np.arange(4), X, X[:4].mean(axis=0), [None] * 8, requests, ["u"] * 8,
                             min_word_users=3) == {}


def test_a_label_before_a_colon_and_a_greeting_are_no_part_of_a_name():
    assert name_variants("Quick question: How do I fix a hole in drywall?")[0] == "How do I fix a hole in drywall"
    assert name_variants("Una pregunta: ¿Puedes resolver paso a paso una ecuación?")[0].startswith("¿Puedes")
    assert name_variants("Hello, Give me a recipe for chicken curry.")[0] == "Give me a recipe for chicken curry"
    assert name_variants("Translate this into Spanish: I will be late.") == ["Translate this into Spanish: I will be late"]


def test_names_are_in_the_corpus_main_language_when_a_cluster_offers_one():
    from clio_lab.extractive import in_language

    pool = {"Wann sollte ich Tomaten pflanzen": "x", "Plant tomatoes in spring": "y", "El fin de semana": "z"}
    assert in_language(pool, ["en", "de", "es"]) == {"Plant tomatoes in spring": "y"}
    german_only = {"Wann sollte ich Tomaten pflanzen": "x"}
    assert in_language(german_only, ["en", "de"]) == german_only  # nothing in English: kept as it is


def test_summaries_need_no_word_rule_but_the_users_words_do():
    requests, X, labels, emb = _requests()
    answers = ["report the new card that has not arrived"] + [None] * 7  # one member's summary
    pool = member_candidates(np.arange(4), X, X[:4].mean(axis=0), answers, requests, None, min_word_users=3)
    assert pool["Report the new card that has not arrived"].source == "summary"  # "report": one member's word
    users_words = [n.lower() for n, c in pool.items() if c.source == "users' words"]
    assert users_words and not any("report" in n or "zebulon" in n for n in users_words)


def test_the_top_level_joins_only_related_clusters_and_a_lone_cluster_climbs_under_its_own_name():
    """Two families of three related clusters and six clusters related to nothing: the default top level holds
    the two families and the six alone (8 nodes, not the 5 of the geometric default), and a parent of one
    cluster carries that cluster's name and description."""
    from fakes import FakeEmbedder

    from clio_lab.extractive import top_size
    from clio_lab.hierarchy import level_sizes

    emb = FakeEmbedder(dim=256)
    topics = ["python loop error fix", "python import error fix", "python type error fix",
              "sourdough bread bake loaf", "rye bread bake loaf", "banana bread bake loaf",
              "plan trip abroad", "write poem rhyme", "learn spanish verbs", "file tax return",
              "repair bike tire", "choose running shoes"]
    answers, labels = [], []
    for c, t in enumerate(topics):
        answers += [f"{t} {extra}" for extra in ("now", "today", "please", "quickly", "again")]
        labels += [c] * 5
    labels = np.array(labels)
    X = emb.encode(answers)
    assert level_sizes(12) == [5]
    assert top_size(X, labels, range(12), least=5) == 8
    names = clio_lab.label_clusters(answers, X, labels, method="extractive", embedder=emb, cache=None)
    tree = clio_lab.build_hierarchy(labels, names, method="extractive", summaries=answers, X=X, embedder=emb,
                                    cache=None)
    kids = sorted((sorted(tree.nodes[c].index for c in p.children) for p in tree.top), key=min)
    assert kids == [[0, 1, 2], [3, 4, 5], [6], [7], [8], [9], [10], [11]]
    for p in tree.top:
        if len(p.children) == 1:
            child = tree.nodes[p.children[0]]
            assert (p.name, p.description) == (child.name, child.description)
            assert p.method == "extractive (its one cluster's name)"
    # a top level the user asks for is kept as asked
    asked = clio_lab.build_hierarchy(labels, names, method="extractive", top=3, summaries=answers, X=X,
                                     embedder=emb, cache=None)
    assert len(asked.top) == 3


def _table(vectors: dict[str, list[float]]) -> type:
    """An embedder class that gives each candidate the embedding ``vectors`` holds for it, at unit length."""

    class Table:
        def get_params(self):
            return {"kind": "table"}

        def encode(self, texts):
            V = np.array([Table.vectors[t] for t in texts], dtype=np.float32)
            return V / np.linalg.norm(V, axis=1, keepdims=True)

    Table.vectors = dict(vectors)
    return Table


def test_a_distinctive_candidate_goes_before_a_better_scored_one_that_lies_nearer_another_cluster():
    from clio_lab.extractive import choose_names

    Table = _table({"near both": [0.69, 0.72, 0.0], "near its own": [0.45, 0.40, 0.80], "elsewhere": [0.0, 0.3, 0.9]})
    C = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    V = Table().encode(["near both", "near its own"])
    score = contrast(V, C, 0)
    assert score[0] > score[1] and (V @ C.T)[0, 1] > (V @ C.T)[0, 0]  # the first scores best, yet lies nearer 1
    picks = choose_names({0: ["near both", "near its own"], 1: ["elsewhere"]}, C, [0, 1], Table(), None)
    assert picks[0]["name"] == "near its own" and picks[0]["distinctive"]
    # with no distinctive candidate, the best-scored one is kept and marked
    picks = choose_names({0: ["near both"], 1: ["elsewhere"]}, C, [0, 1], Table(), None)
    assert picks[0]["name"] == "near both" and not picks[0]["distinctive"]
    # the detector's veto still comes first: a distinctive candidate it refuses is never the name
    picks = choose_names({0: ["near both", "near its own"], 1: ["elsewhere"]}, C, [0, 1], Table(), None,
                         clean=lambda name: name != "near its own")
    assert picks[0]["name"] == "near both" and not picks[0]["distinctive"]


def test_a_name_cut_where_it_parts_a_word_from_one_it_needs_goes_after_the_rest_in_english():
    from clio_lab.extractive import Candidate, _shared_run, _variants, choose_names, cut_parts_needed

    # the cuts are recorded where names are made ...
    forms = _variants("Write a React component that shows a navigation bar with links")
    assert forms["Write a React component that shows a navigation bar"] is not None
    text, start, end = forms["Write a React component"]
    assert text[start:end] == "Write a React component" and not cut_parts_needed(text, end, start)
    support = {w: 5 for w in ("write", "a", "react", "component", "that", "shows")}
    part, cut = _shared_run("Write a React component that shows charts", support, 5)
    assert part == "Write a React component that shows" and cut_parts_needed(cut[0], cut[2], cut[1])
    assert cut_parts_needed("My wifi router won't turn on", len("My wifi router won't turn"))  # its particle
    assert not cut_parts_needed("My card was declined at the shop", len("My card was declined"))  # a modifier

    # ... and read when a name is chosen: the parted one, though scored best, goes after a whole one
    Table = _table({"that shows": [0.9, 0.1, 0.1], "component": [0.8, 0.1, 0.3], "other": [0.0, 1.0, 0.0]})
    C = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    pool = {0: {"that shows": Candidate("users' words", whole=False, cut=cut),
                "component": Candidate("users' words", cut=forms["Write a React component"])},
            1: {"other": Candidate("summary")}}
    assert choose_names(pool, C, [0, 1], Table(), None, whole_bonus=0.0)[0]["name"] == "that shows"
    assert choose_names(pool, C, [0, 1], Table(), None, whole_bonus=0.0, check_cuts=True)[0]["name"] == "component"
    # being distinctive still comes first: a parted name that is distinctive beats a whole one that is not
    Table.vectors["component"] = [0.1, 0.9, 0.3]
    assert choose_names(pool, C, [0, 1], Table(), None, whole_bonus=0.0, check_cuts=True)[0]["name"] == "that shows"
