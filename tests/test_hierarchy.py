import numpy as np
import pytest

from clio_lab import LLM
from clio_lab.hierarchy import Hierarchy, build_hierarchy, level_sizes, snap
from clio_lab.llm import ParseError
from clio_lab.naming import UNCLUSTERED, ClusterLabel
from clio_lab.tree import TreeError

DOMAINS = {
    "Coding": ["Fix python errors", "Write javascript functions", "Write sql queries", "Debug java programs"],
    "Cooking": ["Bake bread at home", "Cook pasta dinners", "Bake birthday cakes", "Cook vegetable soups"],
    "Travel": ["Plan beach trips", "Plan city trips", "Book cheap flights", "Plan hiking trips"],
}


def _base(noise: bool = False):
    """12 named base clusters in three domains, 3 to 6 conversations each (plus 2 unclustered)."""
    names, labels, summaries, domain_of = {}, [], [], {}
    c = 0
    for domain, items in DOMAINS.items():
        for item in items:
            names[c] = ClusterLabel(c, item, f"{domain} help: the users asked to {item.lower()}.", "llm", 0)
            n = 3 + c % 4
            labels += [c] * n
            summaries += [f"{item.lower()} please, {domain.lower()}"] * n
            domain_of[c] = domain
            c += 1
    if noise:
        names[-1] = ClusterLabel(-1, UNCLUSTERED, "Not clustered.", "fixed", 2)
        labels += [-1, -1]
        summaries += ["something else", "another thing"]
    labels = np.array(labels)
    for k, v in names.items():
        v.size = int((labels == k).sum())
    return labels, names, summaries, domain_of


def _llm():
    return LLM(model="fake/m", prompt_style="completion")


def test_level_sizes_are_geometric_and_given_levels_are_checked(fake_llm, fake_embedder):
    assert level_sizes(14) == [6]  # about 1.5 sqrt on top
    assert level_sizes(316) == [92, 27]
    assert level_sizes(1000, top=10) == [100, 10] or len(level_sizes(1000, top=10)) == 3
    assert level_sizes(3) == []
    sizes = level_sizes(500, top=5)
    assert sizes[-1] == 5 and all(a > b for a, b in zip(sizes, sizes[1:], strict=False))
    ratios = [a / b for a, b in zip([500, *sizes], sizes, strict=False)]
    assert max(ratios) / min(ratios) < 1.3  # geometric
    labels, names, *_ = _base()
    with pytest.raises(ValueError, match=r"levels\[1\] = 5"):
        build_hierarchy(labels, names, levels=[4, 5], llm=_llm(), embedder=fake_embedder, cache=None)


def test_llm_tree_follows_steps_a_to_f_and_keeps_its_invariants(tmp_path, fake_llm, fake_embedder):
    labels, names, _, domain_of = _base()
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=tmp_path,
                           progress=False)
    tree.check()
    assert tree.n_levels == 2 and not tree.failures
    top = tree.top
    assert len(top) == 3 and all(n.method == "llm" for n in top)
    for parent in top:  # each parent holds one domain: assignment followed meaning, not list order
        domains = {domain_of[tree.nodes[c].index] for c in parent.children}
        assert len(domains) == 1, (parent.name, domains)
        assert domains.pop().lower() in parent.name.lower() or parent.description
    assert sum(n.size for n in top) == len(labels)
    # step e showed the candidates in more than one order (shuffled per cluster)
    orders = {tuple(line for line in p.rsplit("Categories:\n", 1)[1].split("Cluster:")[0].splitlines() if line)
              for p in fake_llm.prompts if "Best category" in p}
    assert len(orders) > 1
    # steps c and f saw the clusters' names; a re-run is answered from the cache
    assert any("Number of categories: 2 to 5" in p for p in fake_llm.prompts)  # 0.5x to 1.5x of 3
    fake_llm.reset()
    again = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=tmp_path,
                            progress=False)
    assert fake_llm.calls == 0 and [n.name for n in again.top] == [n.name for n in top]


def test_each_conversation_has_one_path_and_sizes_add_up_over_several_levels(fake_llm, fake_embedder):
    labels, names, _, _ = _base(noise=True)
    tree = build_hierarchy(labels, names, levels=[6, 3, 2], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    tree.check()
    assert tree.n_levels == 4
    for lvl in range(tree.n_levels):
        at = tree.labels_at(lvl)
        assert len(at) == len(labels)
        sizes = {n.index: n.size for n in tree.level(lvl)}
        assert {k: int((at == k).sum()) for k in set(at.tolist())} == sizes
        # the unclustered group is carried up as its own, visible node
        assert sizes[-1] == 2 and tree.nodes[f"{lvl}.-1"].name == UNCLUSTERED
    path = tree.path(0)
    assert [n.level for n in path] == [0, 1, 2, 3] and path[-1].parent is None
    assert all(n.method.startswith("llm") or n.index == -1 for n in tree.nodes.values() if n.level > 0)


def test_neighbourhoods_each_propose_with_outside_context(monkeypatch, fake_llm, fake_embedder):
    import clio_lab.hierarchy_llm as h

    monkeypatch.setattr(h, "NEIGHBOURHOOD_SIZE", 4)
    labels, names, _, _ = _base()
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    tree.check()
    proposals = [p.rsplit("\nClusters:\n", 1)[1] for p in fake_llm.prompts if "Number of categories" in p]
    assert len(proposals) == 3  # 12 clusters, about 4 per neighbourhood; context: up to 10 from outside
    for p in proposals:
        listed = p.split("Nearby clusters outside the list:")[0]
        nearby = p.split("Nearby clusters outside the list:")[1].split("Number of")[0]
        assert nearby.count("\n- ") == 8 and not {x for x in nearby.splitlines() if x} & set(listed.splitlines())


def test_model_failures_fall_back_without_breaking_the_tree(fake_llm, fake_embedder):
    labels, names, _, _ = _base()
    fake_llm.garbage_first = 10_000
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    tree.check()
    steps = {f["step"] for f in tree.failures}
    assert steps == {"hierarchy_propose", "hierarchy_assign", "hierarchy_rename"}
    base_names = {v.name for v in names.values()}
    for n in tree.top:  # parents keep an LLM-written name (a base cluster's), and say so
        assert n.method == "llm (a child's name)" and n.name in base_names
    for c in names.values():  # a child's keyword label kept as a parent name is marked as keywords
        c.method = "keywords (llm failed)"
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    assert {n.method for n in tree.top} == {"keywords (llm failed)"}


def test_keyword_tree_needs_no_model(fake_llm):
    labels, names, summaries, domain_of = _base(noise=True)
    X = np.zeros((len(labels), 3), dtype=np.float32)
    for i, c in enumerate(labels):
        X[i, ["Coding", "Cooking", "Travel"].index(domain_of[c]) if c >= 0 else 0] = 1.0
    X += 0.01
    tree = build_hierarchy(labels, names, method="keywords", levels=[3], summaries=summaries, X=X)
    tree.check()
    assert fake_llm.calls == 0
    tops = {n.name for n in tree.top if n.index >= 0}
    assert len(tops) == 3 and all(n.method == "keywords" and n.keywords for n in tree.top if n.index >= 0)
    assert any("coding" in t for t in tops) and any("travel" in t for t in tops)
    with pytest.raises(ValueError, match="summaries"):
        build_hierarchy(labels, names, method="keywords")


def test_snap_finds_the_candidate_meant():
    cands = ["Write and fix code", "Cook meals at home", "Plan trips"]
    assert snap(" Cook meals at home\n", cands) == 1
    assert snap("- write and fix code.", cands) == 0
    assert snap("Plan trip", cands) == 2
    assert snap("The best is: Plan trips for holidays", cands) == 2
    with pytest.raises(ParseError):
        snap("Gardening", cands)


def test_tree_round_trips_through_records_and_check_catches_damage(fake_llm, fake_embedder):
    labels, names, _, _ = _base(noise=True)
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    again = Hierarchy.from_records(tree.to_frame().to_dict("records"), labels)
    again.check()
    assert again.to_tree() == tree.to_tree()
    assert tree.to_tree()["size"] == len(labels)
    again.top[0].size += 1
    with pytest.raises(TreeError, match="size"):
        again.check()


def test_all_noise_still_gives_a_valid_tree(fake_llm, fake_embedder):
    names = {-1: ClusterLabel(-1, UNCLUSTERED, "Not clustered.", "fixed", 3)}
    for method in ("llm", "keywords"):
        tree = build_hierarchy([-1, -1, -1], names, method=method, llm=_llm(), embedder=fake_embedder,
                               summaries=["a", "b", "c"], X=np.eye(3, dtype=np.float32), cache=None, progress=False)
        tree.check()
        assert [n.id for n in tree.top] == ["0.-1"] and tree.top[0].size == 3


def test_a_proposal_that_repeats_a_keyword_label_is_not_an_llm_name(fake_llm, fake_embedder, monkeypatch):
    labels, names, _, _ = _base()
    for c in names.values():
        c.method = "keywords (llm failed)"
    fake = fake_llm._answer
    # the model copies the children's (keyword) names as its categories
    monkeypatch.setattr(fake_llm, "_answer", lambda p, step: "\n- Fix python errors\n- Plan beach trips\n"
                        if step == "hierarchy_propose" else fake(p, step))
    tree = build_hierarchy(labels, names, levels=[3], llm=_llm(), embedder=fake_embedder, cache=None,
                           progress=False)
    tree.check()
    assert any(f["step"] == "hierarchy_propose" and "usable" in f["reason"] for f in tree.failures)
    assert all(n.method != "llm (proposed name)" for n in tree.top)


def test_a_category_that_only_echoes_its_one_cluster_is_shown_once():
    from clio_lab.tree import fold_echoes

    def n(id_, name, size, *kids):
        return {"id": id_, "name": name, "size": size, "children": list(kids)}

    tree = [n("2.0", "Fix CSS", 9, n("1.0", "Fix CSS", 9, n("0.0", "Fix CSS", 9))),  # echoes all the way down
            n("1.1", "Travel", 7, n("0.1", "Plan a trip", 7)),  # a name of its own: kept
            n("1.2", "Money", 8, n("0.2", "Save money", 5), n("0.3", "Money", 3)),  # two children: kept
            n("1.-2", "Other (withheld)", 4, n("0.-2", "Other (withheld)", 4))]
    folded = fold_echoes(tree)
    assert [(x["id"], x["name"], len(x["children"])) for x in folded] == [
        ("0.0", "Fix CSS", 0), ("1.1", "Travel", 1), ("1.2", "Money", 2), ("0.-2", "Other (withheld)", 0)]
    assert tree[0]["children"][0]["id"] == "1.0"  # the input is left as it was
