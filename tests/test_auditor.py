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


# --- the rule auditor ------------------------------------------------------------------------------------------

def test_name_like_words_are_capitalised_mid_sentence_numbers_or_rare_words():
    from clio_lab.auditor import _zipf, name_like_words

    text = ("Users asked the assistant to email Maria about the 4pm call with 2 people. Related requests asked it "
            "to book a table; I'm told “Translate this into Italian”. Typical requests: “Call 5551234”.")
    # not "Users", "Related" (sentence starts), "I'm", "4pm", "2" (under three digits), "Italian" (a language)
    assert name_like_words(text) == ["Maria", "5551234"]
    assert name_like_words("Call them on Friday, in German, about the PDF and the API") == []
    assert "kowalczyk" in name_like_words("write to kowalczyk about the rent", _zipf())
    assert name_like_words("write to the landlord about the rent", _zipf()) == []


def _rule_tree():
    """Five base clusters of 10 conversations (users u0..u49, each conversation its own user), two parents."""
    nodes = {
        "0.0": Node("0.0", 0, 0, "Fix Python loops", "Users asked about Python loops.", 10, "extractive", "1.0"),
        "0.1": Node("0.1", 0, 1, "Email the staff of Brightwater Clinic", "Staff notes.", 10, "extractive", "1.0"),
        "0.2": Node("0.2", 0, 2, "Plan a trip to the United States", "Users planned trips.", 10, "extractive", "1.1"),
        "0.3": Node("0.3", 0, 3, "Plan a party for the kowalczyk family", "Parties.", 10, "extractive", "1.1"),
        "0.4": Node("0.4", 0, 4, "Write to dana.whitfield@example.com", "Letters.", 10, "extractive", "1.1"),
        "1.0": Node("1.0", 1, 0, "Programming and Python", "Code help.", 20, "extractive", None, ["0.0", "0.1"]),
        "1.1": Node("1.1", 1, 1, "Trips and parties", "Plans.", 30, "extractive", None, ["0.2", "0.3", "0.4"]),
    }
    tree = Hierarchy(nodes, np.repeat(np.arange(5), 10))
    tree.check()
    texts = ["How do I fix this Python loop?"] * 10  # ten users wrote "Python"
    texts += ["Write a note to the staff."] * 9 + ["Write a note to the staff of Brightwater Clinic."]  # one did
    # one user of cluster 2 wrote "United States", and seven users elsewhere in the corpus did
    texts += ["Plan a trip to the United States."] + ["Plan a trip to Paris."] * 9
    texts += ["Plan a birthday party."] * 9 + ["Plan a party for the Kowalczyk family."]
    texts += ["Write a letter."] * 10
    texts = [t + (" I live in the United States." if i in {1, 2, 3, 31, 32, 33, 34} else "")
             for i, t in enumerate(texts)]
    return tree, texts, [f"u{i}" for i in range(50)]


def test_the_rules_withhold_details_too_few_users_wrote_and_never_repeat_them():
    from clio_lab.auditor import rule_audit

    tree, texts, users = _rule_tree()
    audit = rule_audit(tree, texts, users, detector=_EmailDetector())
    assert audit.by == "rules" and audit.stats.calls == 0 and audit.failures == []
    scores = {k: s.score for k, s in audit.scores.items()}
    # "Python" was written by 10 users of its cluster; "United States" by 8 users of the corpus (a common
    # proper noun, not one person's detail); "Brightwater" and the surname by one user each; the e-mail is the
    # detector's
    assert scores == {"0.0": 5, "0.1": 2, "0.2": 5, "0.3": 2, "0.4": 1, "1.0": 5, "1.1": 5}
    assert audit.withheld() == {"0.1": "auditor", "0.3": "auditor", "0.4": "auditor"}
    for s in audit.scores.values():
        assert not re.search(r"brightwater|kowalczyk|whitfield", s.reason, re.I)
    # a user id shared by the ten who wrote "Python" makes them one user: below the five needed
    one_user = ["same"] * 10 + users[10:]
    assert rule_audit(tree, texts, one_user, nodes=["0.0"], detector=False).scores["0.0"].score == 2
    # the thresholds' own numbers: with min_users=1 the one user who wrote "Brightwater" suffices
    assert rule_audit(tree, texts, users, nodes=["0.1"], min_users=1, detector=False).scores["0.1"].score == 5
    with pytest.raises(ValueError, match="one text and one user id per conversation"):
        rule_audit(tree, texts[:10], users, detector=False)


class _Counted(list):
    """A list of texts that counts how often it is read through."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


def test_the_rules_read_the_corpus_once_and_count_whole_words_only():
    """Every word the rules look up is found in one pass over the texts (a million-conversation corpus is not
    read once per word), and counted as a whole word between non-alphanumeric characters: "e-mail" only where
    it is written ("mail" also in "e-mail"), "020 7946 0018" where the number is written out so, "Ann" not in
    "Annual"."""
    from clio_lab.auditor import WordSupport, rule_audit

    tree, texts, users = _rule_tree()
    counted = _Counted(texts)
    _Counted.passes = 0
    audit = rule_audit(tree, counted, users, detector=False)
    assert _Counted.passes == 1
    assert {k: s.score for k, s in audit.scores.items()} == \
        {k: s.score for k, s in rule_audit(tree, texts, users, detector=False).scores.items()}
    corpus = ["Send the e-mail", "my mail", "Call 020 7946 0018 now", "call 020 7946 0019", "020-7946-0018",
              "Annual report", "ann_x", "Ann said", "ANN!", None, ""]
    support = WordSupport(corpus, [f"u{i}" for i in range(len(corpus))], min_users=100)
    everyone = support.everyone
    assert support.writers("e-mail", everyone) == 1 and support.writers("mail", everyone) == 2
    assert support.writers("020 7946 0018", everyone) == 1 and support.writers("7946", everyone) == 3
    assert support.writers("Ann", everyone) == 3  # "ann_x": "_" ends a word, as in _writes
    assert support.writers("Ann", [0, 5, 6]) == 1 and support.writers("annual", everyone) == 1


def test_the_local_model_gets_the_rules_and_a_hosted_model_the_model_auditor():
    from clio_lab.auditor import resolve_auditor

    assert resolve_auditor("auto", LLM()) == "rules"
    assert resolve_auditor(True, None) == "rules"
    assert resolve_auditor("auto", LLM_FAKE) == "model"
    assert resolve_auditor("model", LLM()) == "model" and resolve_auditor("rules", LLM_FAKE) == "rules"


def test_the_audit_runs_when_asked_for_or_when_auto_and_clusters_are_named():
    from clio_lab.auditor import audit_off_reason

    for audit in (True, "rules", "model"):
        assert audit_off_reason(audit, None) is None and audit_off_reason(audit, "keywords") is None
    assert audit_off_reason("auto", "extractive") is None
    assert audit_off_reason("auto", None) == "no cluster names in this run"
    assert audit_off_reason(False, "llm") == "turned off (audit=False)"


def test_a_run_audited_by_the_rules_makes_no_audit_call_and_says_so(tmp_path, fake_llm, fake_embedder, demo_convs):
    import json

    import clio_lab

    res = clio_lab.run_pipeline(demo_convs, llm=LLM_FAKE, embedder=fake_embedder, cache=tmp_path / "c", k=4,
                                min_conversations=None, min_users=1, audit="rules", progress=False)
    calls = fake_llm.calls
    assert "privacy_audit" not in res.stats()["llm_by_step"] or res.stats()["llm_by_step"]["privacy_audit"]["calls"] == 0
    assert res.config["auditor"] == "rules"
    privacy = res.privacy()
    assert privacy["auditor"]["by"] == "rules" and privacy["auditor"]["model"].startswith("rules: the PII detector")
    assert sum(privacy["auditor"]["histogram"].values()) == 4 + 3
    assert set(res.clusters_frame()["privacy_score"].dropna()) <= {1, 2, 5}
    out = res.save(tmp_path / "run")
    assert "Privacy auditor (rules: the PII detector" in (out / "report.html").read_text()
    assert json.loads((out / "privacy.json").read_text())["auditor"]["by"] == "rules"
    assert clio_lab.load_run(out).privacy() == privacy
    model = clio_lab.run_pipeline(demo_convs, llm=LLM_FAKE, embedder=fake_embedder, cache=tmp_path / "c", k=4,
                                  min_conversations=None, min_users=1, progress=False)
    assert fake_llm.calls > calls and model.config["auditor"] == "model"  # a hosted model: the model rates


class _EmailDetector:
    """Finds anything with an @ (a stand-in for presidio, which the rules take as given)."""

    def find_many(self, texts):
        from clio_lab.pii import PIIFinding

        return [[PIIFinding("EMAIL_ADDRESS", t.index("@"), t.index("@") + 1, 1.0)] if "@" in t else [] for t in texts]
