import numpy as np

from clio_lab.hierarchy import Hierarchy, Node
from clio_lab.privacy import WITHHELD_NAME, apply_thresholds


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
