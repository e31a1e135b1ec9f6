"""The privacy auditor: parsing, scoring through the real LLM path (fake provider), gating, failing closed."""

import json
import re

import numpy as np
import pytest

from clio_lab import LLM
from clio_lab.auditor import audit_clusters, parse_audit
from clio_lab.hierarchy import Hierarchy, Node, Status
from clio_lab.llm.client import ParseError
from clio_lab.release import MASKED_DESCRIPTION, MASKED_NAME, WITHHELD_NAME, apply_thresholds

LLM_FAKE = LLM(model="fake/m", prompt_style="completion")


def test_parse_audit_reads_rating_then_reason_on_one_or_two_lines():
    assert parse_audit(" 5\nReason: A general topic with nothing identifying.") == {
        "score": 5, "reason": "A general topic with nothing identifying."}
    assert parse_audit("Rating: **2** Reason: It names one clinic and its staff.")["score"] == 2  # chat models
    for bad in ("5", "Reason: A general topic shared by many.", "7\nReason: It is fine really.", "15 people",
                ""):
        with pytest.raises(ParseError):
            parse_audit(bad)


def _tree():
    """Two top nodes. Base: a harmless cluster, one naming a person's e-mail (rated 1), one naming a clinic
    (rated 2), and one more harmless; top B's own name holds an address (rated 1)."""
    nodes = {
        "0.0": Node("0.0", 0, 0, "Plan weekly family meals", "The users asked for meal plans.", 4, "llm", "1.0"),
        "0.1": Node("0.1", 0, 1, "Write to dana.whitfield@example.com", "The user wrote to Dana.", 3, "llm", "1.0"),
        "0.2": Node("0.2", 0, 2, "Email the staff of Brightwater Clinic", "Staff notes.", 2, "llm", "1.0"),
        "0.3": Node("0.3", 0, 3, "Fix Python loops", "The users asked about loops.", 5, "llm", "1.1"),
        "1.0": Node("1.0", 1, 0, "Everyday writing and planning", "Plans and letters.", 9, "llm", None,
                    ["0.0", "0.1", "0.2"]),
        "1.1": Node("1.1", 1, 1, "Help for the user at 157 Rue des Lilas", "Code help.", 5, "llm", None, ["0.3"]),
    }
    base = np.array([0] * 4 + [1] * 3 + [2] * 2 + [3] * 5)
    tree = Hierarchy(nodes, base)
    tree.check()
    return tree


def test_low_scores_withhold_base_clusters_and_the_names_of_categories(tmp_path, fake_llm, fake_embedder):
    tree = _tree()
    audit = audit_clusters(tree, llm=LLM_FAKE, cache=tmp_path, embedder=fake_embedder, progress=False)
    assert {k: s.score for k, s in audit.scores.items()} == {"0.0": 5, "0.1": 1, "0.2": 2, "0.3": 5, "1.0": 5,
                                                             "1.1": 1}
    assert all(s.reason and s.status == "rated" for s in audit.scores.values())
    assert audit.histogram() == {"1": 2, "2": 1, "3": 0, "4": 0, "5": 3, "failed": 0}
    assert audit.withheld() == {"0.1": "auditor", "0.2": "auditor", "1.1": "auditor"}
    gated, report = apply_thresholds(tree, None, min_conversations=1, min_users=1, audit=audit)
    gated.check()
    names = {n.name for n in gated.nodes.values()}
    # base clusters rated 1 and 2 are withheld; top B's own text failed, so it keeps its place and size under
    # a neutral name, and its harmless child (audited on its own) stays
    assert names == {"Plan weekly family meals", "Everyday writing and planning", WITHHELD_NAME,
                     MASKED_NAME, "Fix Python loops"}
    assert gated.nodes["1.1"].size == 5 and gated.nodes["1.1"].description == MASKED_DESCRIPTION
    assert gated.nodes["1.1"].status is Status.NAME_WITHHELD and not gated.nodes["1.1"].keywords
    assert gated.nodes["1.1"].method == tree.nodes["1.1"].method  # how it was named is kept apart from its status
    assert report.reasons == {"auditor": 2, "auditor (name only)": 1}
    assert report.names_withheld == {1: 1} and report.withheld_conversations == 3 + 2
    assert sum(n.size for n in gated.top) == 14  # nobody lost
    # the paper's check: no released text rated below the minimum
    assert report.audit["histogram_released"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 3, "failed": 0}
    assert "157 Rue" not in json.dumps(gated.to_tree())
    # the paper's minimum is 3; a looser minimum of 2 releases the clinic
    loose = audit_clusters(tree, llm=LLM_FAKE, cache=tmp_path, min_score=2, embedder=fake_embedder,
                           progress=False)
    assert loose.stats.calls == 0 and set(loose.withheld()) == {"0.1", "1.1"}  # answered from the cache


def test_an_audit_that_fails_withholds_the_cluster_and_is_recorded(tmp_path, fake_llm, fake_embedder):
    tree = _tree()
    fake_llm.garbage_first = 100
    audit = audit_clusters(tree, nodes=["0.0", "1.0"], llm=LLM_FAKE, cache=tmp_path, embedder=fake_embedder, progress=False)
    assert {s.status for s in audit.scores.values()} == {"failed"} and len(audit.failures) == 2
    assert audit.histogram() == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "failed": 2}
    gated, report = apply_thresholds(tree, None, min_conversations=1, min_users=1, audit=audit)
    assert report.reasons == {"auditor failed": 1, "auditor failed (name only)": 1}
    names = {n.name for n in gated.nodes.values()}
    assert "Plan weekly family meals" not in names and "Everyday writing and planning" not in names
    fake_llm.reset()  # a failure is never cached as a success: with retry_failed the model is asked again
    again = audit_clusters(tree, nodes=["0.0"], llm=LLM(model="fake/m", prompt_style="completion", retry_failed=True),
                           cache=tmp_path, embedder=fake_embedder, progress=False)
    assert fake_llm.calls == 1 and again.scores["0.0"].score == 5


def test_fixed_names_are_not_sent_to_the_model(tmp_path, fake_llm, fake_embedder):
    nodes = {"0.-1": Node("0.-1", 0, -1, "Unclustered conversations", "Not clustered.", 2, "fixed"),
             "0.0": Node("0.0", 0, 0, "Fix Python loops", "Loops.", 3, "llm")}
    tree = Hierarchy(nodes, np.array([-1, -1, 0, 0, 0]))
    audit = audit_clusters(tree, llm=LLM_FAKE, cache=None, embedder=fake_embedder, progress=False)
    assert fake_llm.calls == 1 and audit.scores["0.-1"].status == "not audited"
    assert audit.histogram() == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1, "failed": 0}
    with pytest.raises(ValueError, match="min_score"):
        audit_clusters(tree, llm=LLM_FAKE, cache=None, min_score=6, embedder=fake_embedder, progress=False)


def test_the_auditor_shows_the_worked_examples_nearest_each_cluster_nearest_last(fake_llm):
    from clio_lab.llm.prompts import PromptLibrary

    audit_clusters(_tree(), nodes=["0.1", "0.3"], llm=LLM_FAKE, cache=None, n_examples=4, progress=False)
    pool = PromptLibrary().examples("privacy_audit", required=("name",))
    shown = [re.findall(r"^Group name: (.+)$", p, flags=re.M)[:-1] for p in fake_llm.prompts]
    # the third prompt confirms the low rating of the first cluster: the same examples, in another order
    assert [len(s) for s in shown] == [4, 4, 4] and shown[0] != shown[1]
    assert sorted(shown[2]) == sorted(shown[0]) and shown[2] != shown[0]
    assert all(name in {e["name"] for e in pool} for s in shown for name in s)
    # for the cluster naming Dana's e-mail address, the nearest example (shown last) is one rated 1
    score = {e["name"]: e["score"] for e in pool}
    assert score[shown[0][-1]] == 1 and score[shown[1][-1]] == 5


def test_a_low_rating_stands_only_when_a_second_ask_confirms_it(tmp_path, fake_llm, fake_embedder):
    tree = _tree()
    fake_llm.low_audit_first = 1  # a false alarm on the first harmless cluster; the second ask rates it 5
    audit = audit_clusters(tree, nodes=["0.0", "0.1"], llm=LLM_FAKE, cache=None, embedder=fake_embedder,
                           progress=False)
    assert audit.scores["0.0"].asks == [2, 5] and audit.scores["0.0"].score == 5
    assert audit.scores["0.1"].asks == [1, 1] and audit.withheld() == {"0.1": "auditor"}
    assert fake_llm.calls == 4 and audit.stats.calls == 4
    fake_llm.reset()
    fake_llm.low_audit_first = 1
    strict = audit_clusters(tree, nodes=["0.0"], llm=LLM_FAKE, cache=None, embedder=fake_embedder, confirm=False,
                            progress=False)
    assert strict.scores["0.0"].asks == [2] and strict.withheld() == {"0.0": "auditor"}


def test_a_category_that_is_one_cluster_is_released_as_that_cluster(tmp_path, fake_llm, fake_embedder):
    """A parent holding one cluster and all of its conversations shows that cluster again: when the auditor
    withholds the cluster, the parent is withheld with it, whatever its own rating."""
    nodes = {
        "0.0": Node("0.0", 0, 0, "Plan weekly family meals", "Meal plans.", 4, "extractive", "1.0"),
        "0.1": Node("0.1", 0, 1, "Write to dana.whitfield@example.com", "Letters.", 3, "extractive", "1.1"),
        "1.0": Node("1.0", 1, 0, "Plan weekly family meals", "Meal plans.", 4, "extractive", None, ["0.0"]),
        "1.1": Node("1.1", 1, 1, "Letters to friends", "Letters.", 3, "extractive", None, ["0.1"]),
    }
    tree = Hierarchy(nodes, np.array([0] * 4 + [1] * 3))
    tree.check()
    audit = audit_clusters(tree, llm=LLM_FAKE, cache=tmp_path, embedder=fake_embedder, progress=False)
    assert audit.scores["0.1"].score == 1 and audit.scores["1.1"].score == 5  # the parent's own text passes
    gated, report = apply_thresholds(tree, None, min_conversations=1, min_users=1, audit=audit)
    gated.check()
    names = {n.name for n in gated.nodes.values()}
    assert "Letters to friends" not in names and "Plan weekly family meals" in names
    assert report.reasons == {"auditor": 2} and report.withheld_conversations == 3
    assert sum(n.size for n in gated.top) == 7  # nobody lost


def test_a_category_under_its_one_clusters_name_is_shown_when_the_cluster_is(tmp_path, fake_llm, fake_embedder):
    """The same text is not rated twice: a category repeating its one cluster's name and description is not
    sent to the auditor, and is shown because the cluster is."""
    from clio_lab.release import audit_candidates

    nodes = {
        "0.0": Node("0.0", 0, 0, "Plan weekly family meals", "Meal plans.", 4, "extractive", "1.0"),
        "0.1": Node("0.1", 0, 1, "Fix Python loops", "Loops.", 3, "extractive", "1.0"),
        "0.2": Node("0.2", 0, 2, "Bake sourdough bread", "Bread.", 5, "extractive", "1.1"),
        "1.0": Node("1.0", 1, 0, "Everyday help", "Meals and loops.", 7, "extractive", None, ["0.0", "0.1"]),
        "1.1": Node("1.1", 1, 1, "Bake sourdough bread", "Bread.", 5, "extractive (its one cluster's name)", None,
                    ["0.2"]),
    }
    tree = Hierarchy(nodes, np.array([0] * 4 + [1] * 3 + [2] * 5))
    tree.check()
    assert audit_candidates(tree, None, min_conversations=1, min_users=1) == ["0.0", "0.1", "0.2", "1.0"]
    audit = audit_clusters(tree, nodes=["0.0", "0.1", "0.2", "1.0"], llm=LLM_FAKE, cache=tmp_path,
                           embedder=fake_embedder, progress=False)
    gated, report = apply_thresholds(tree, None, min_conversations=1, min_users=1, audit=audit)
    assert gated.nodes["1.1"].status is Status.SHOWN and gated.nodes["1.1"].name == "Bake sourdough bread"
    assert report.reasons == {}
