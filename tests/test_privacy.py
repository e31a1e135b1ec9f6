import numpy as np
import pytest

from clio_lab.hierarchy import Hierarchy, Node
from clio_lab.release import WITHHELD_NAME, apply_thresholds


def _tree():
    """Two top nodes; base clusters of 12, 3 (too few), 11 (too few users) and 2 (under a failing parent)."""
    nodes = {
        "0.0": Node("0.0", 0, 0, "big", "d", 12, "llm", "1.0"),
        "0.1": Node("0.1", 0, 1, "tiny secret cluster", "d", 3, "llm", "1.0"),
        "0.2": Node("0.2", 0, 2, "one user's cluster", "d", 11, "llm", "1.1"),
        "0.3": Node("0.3", 0, 3, "another tiny one", "d", 2, "llm", "1.1"),
        "1.0": Node("1.0", 1, 0, "top A", "d", 15, "llm", None, ["0.0", "0.1"]),
        "1.1": Node("1.1", 1, 1, "top B", "d", 13, "llm", None, ["0.2", "0.3"]),
    }
    base = np.array([0] * 12 + [1] * 3 + [2] * 11 + [3] * 2)
    users = [f"u{i}" for i in range(12)] + ["a", "b", "c"] + ["solo"] * 11 + ["x", "y"]
    tree = Hierarchy(nodes, base)
    tree.check()
    return tree, users


def test_clusters_below_thresholds_vanish_and_only_counts_remain():
    tree, users = _tree()
    gated, report = apply_thresholds(tree, users, min_conversations=10, min_users=5)
    gated.check()
    names = {n.name for n in gated.nodes.values()}
    assert "big" in names and "top A" in names
    assert not names & {"tiny secret cluster", "one user's cluster", "another tiny one", "top B"}
    # top A passes and counts its withheld child; top B fails (13 conversations but 3 users) with its children
    a = gated.nodes["1.0"]
    other = [gated.nodes[c] for c in a.children if gated.nodes[c].name == WITHHELD_NAME]
    assert a.size == 15 and len(other) == 1 and other[0].size == 3 and other[0].description and not other[0].keywords
    top_other = [n for n in gated.top if n.name == WITHHELD_NAME]
    assert len(top_other) == 1 and top_other[0].size == 13
    assert sum(n.size for n in gated.top) == 28  # nobody lost, nobody double counted
    assert report.withheld_clusters == {0: 3, 1: 1} and report.withheld_conversations == 16
    assert report.reasons == {"both": 2, "users": 2}  # 0.1 and 0.3: both; 0.2 and top B: too few users
    for i in range(28):  # every conversation has a path from a leaf to the top
        assert len(gated.path(i)) == 2


def test_without_user_ids_each_conversation_counts_as_a_user():
    tree, _ = _tree()
    gated, report = apply_thresholds(tree, None, min_conversations=10, min_users=5)
    assert not report.user_ids_present
    assert {n.name for n in gated.nodes.values() if n.level == 0} == {"big", "one user's cluster", WITHHELD_NAME}


def test_thresholds_of_one_change_nothing():
    tree, users = _tree()
    gated, report = apply_thresholds(tree, users, min_conversations=1, min_users=1)
    assert gated.to_tree() == tree.to_tree() and report.withheld_conversations == 0


def _exported_text(folder) -> str:
    """Everything a run folder holds, as text (Parquet read back through pandas)."""
    import pandas as pd

    parts = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".parquet":
            parts.append(pd.read_parquet(path).to_csv())
        elif path.suffix in (".csv", ".json", ".jsonl", ".html"):
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_every_run_writes_a_privacy_report_and_raw_text_stays_home(tmp_path, fake_llm, fake_embedder, demo_convs):
    import json

    import clio_lab
    from clio_lab import LLM

    kw = dict(llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder, cache=tmp_path / "c",
              k=4, min_conversations=None, min_users=None, progress=False)
    res = clio_lab.run_pipeline(demo_convs, **kw)
    out = res.save(tmp_path / "run")
    privacy = json.loads((out / "privacy.json").read_text())
    planted = sum(bool(c.metadata.get("pii")) for c in demo_convs)
    raw = privacy["stages"]["raw_conversations"]
    assert raw["checked"] == 40 and not raw["sampled"] and raw["with_pii"] == planted > 0
    assert privacy["stages"]["facet_answers"]["checked"] == 40
    assert privacy["stages"]["released_cluster_texts"] == {"checked": 2 * (4 + 3), "with_pii": 0}
    assert privacy["auditor"]["ran"] and sum(privacy["auditor"]["histogram"].values()) == 4 + 3
    assert privacy["raw_text"]["shown"] is False and privacy["thresholds"]["min_conversations"] == 1
    html = (out / "report.html").read_text()
    assert "<h2>Privacy</h2>" in html and "Privacy auditor (fake/m)" in html and "privacy 5/5" in html
    assert clio_lab.load_run(out).privacy() == privacy
    # no user message reaches any file of the run
    exported = _exported_text(out)
    messages = [m.content for c in demo_convs for m in c.messages if m.role == "user" and len(m.content) >= 25]
    assert messages and not [m for m in messages if m in exported]
    # opting in puts each conversation's own text in the exports, and the run says so
    shown = clio_lab.run_pipeline(demo_convs, **kw, show_raw=True).save(tmp_path / "raw")
    assert any(m in _exported_text(shown) for m in messages)
    assert json.loads((shown / "privacy.json").read_text())["raw_text"]["shown"] is True
    assert json.loads((shown / "run.json").read_text())["config"]["show_raw"] is True
    assert "text" in clio_lab.load_run(shown).frame.columns


def test_the_auditor_can_be_turned_off_and_the_report_says_why(tmp_path, fake_llm, fake_embedder, demo_convs):
    import clio_lab
    from clio_lab import LLM

    res = clio_lab.run_pipeline(demo_convs[:20], llm=LLM(model="fake/m", prompt_style="completion"),
                                embedder=fake_embedder, cache=None, k=2, audit=False, min_conversations=None,
                                min_users=None, progress=False)
    assert res.audit is None and "privacy_audit" not in res.llm_stats
    assert res.privacy()["auditor"] == {"ran": False, "why": "turned off (audit=False)"}
    assert res.clusters_frame()["privacy_score"].isna().all()
    with pytest.raises(ValueError, match="audit must be"):
        clio_lab.run_pipeline(demo_convs[:5], llm=LLM(model="fake/m", prompt_style="completion"),
                              embedder=fake_embedder, cache=None, audit="yes", progress=False)


class _Detector:
    """Flags any text with a digit in it."""

    def has_pii(self, text: str) -> bool:
        return any(ch.isdigit() for ch in text)


def test_release_is_the_one_stage_that_decides_what_is_shown():
    from clio_lab.release import Release, audit_candidates, release_tree
    from clio_lab.tree import Status

    tree, users = _tree()
    tree.nodes["0.0"].description = "asks about room 101"
    shown = release_tree(tree, users, min_conversations=10, min_users=5, detector=_Detector())
    assert isinstance(shown, Release)
    gated, report = apply_thresholds(tree, users, min_conversations=10, min_users=5)
    assert shown.tree.to_tree() == gated.to_tree() and shown.report.as_dict() == report.as_dict()
    status = {n.name: n.status for n in shown.tree.nodes.values()}
    assert status["big"] is status["top A"] is Status.SHOWN and status[WITHHELD_NAME] is Status.WITHHELD
    pools = [n for n in shown.tree.nodes.values() if n.status is Status.WITHHELD]
    assert all(n.method == "fixed" and not n.shows_text for n in pools)
    # the last check reads the released names and descriptions only: "big" and "top A", one with a digit
    assert shown.released_pii == {"checked": 4, "with_pii": 1}
    assert release_tree(tree, users, min_conversations=10, min_users=5).released_pii is None
    # only clusters that pass the thresholds are worth an auditor's call
    assert audit_candidates(tree, users, min_conversations=10, min_users=5) == ["0.0", "1.0"]


def test_privacy_options_are_checked_and_given_once(tmp_path, fake_llm, fake_embedder, demo_convs):
    import clio_lab
    from clio_lab import LLM, PrivacyOptions

    with pytest.raises(ValueError, match="audit must be True, False, .auto., .rules. or .model."):
        PrivacyOptions(audit="sometimes")
    with pytest.raises(ValueError, match="min_audit_score must be between 1 and 5"):
        PrivacyOptions(min_audit_score=7)
    assert PrivacyOptions(min_conversations=None, min_users=3).gate == {"min_conversations": 1, "min_users": 3}
    llm = LLM(model="fake/m", prompt_style="completion")
    kw = dict(llm=llm, embedder=fake_embedder, cache=tmp_path / "c", k=6, progress=False, projection=False)
    with pytest.raises(ValueError, match=r"privacy options given twice: as privacy= and as \['min_users'\]"):
        clio_lab.run_pipeline(demo_convs, privacy=PrivacyOptions(), min_users=3, **kw)
    grouped = clio_lab.run_pipeline(demo_convs, privacy=PrivacyOptions(min_conversations=4, min_users=2), **kw)
    flat = clio_lab.run_pipeline(demo_convs, min_conversations=4, min_users=2, **kw)
    assert grouped.hierarchy.to_tree() == flat.hierarchy.to_tree() and grouped.thresholds == flat.thresholds
    assert grouped.config["thresholds"] == {"min_conversations": 4, "min_users": 2}


def test_the_old_privacy_module_still_works_and_says_where_it_went():
    import importlib
    import sys

    import clio_lab.release as release  # the module, not a function of the same name

    sys.modules.pop("clio_lab.privacy", None)
    with pytest.warns(DeprecationWarning, match="clio_lab.privacy is now clio_lab.release"):
        old = importlib.import_module("clio_lab.privacy")
    assert old.apply_thresholds is release.apply_thresholds and old.WITHHELD_NAME == release.WITHHELD_NAME
    assert old.is_withheld("withheld name") and old.is_withheld("withheld") and not old.is_withheld("llm")
