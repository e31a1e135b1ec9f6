"""Widgets at the trait level: the data they are sent, validation, and the Explorer's links (no browser)."""

import html
import re

import numpy as np
import pytest

pytest.importorskip("anywidget")

import clio_lab  # noqa: E402
from clio_lab import LLM  # noqa: E402
from clio_lab.release import WITHHELD_NAME  # noqa: E402
from clio_lab.tree import Status  # noqa: E402
from clio_lab.widgets import ClusterMap, ClusterTree, Explorer  # noqa: E402
from clio_lab.widgets.components import STATIC, encode_colours, normalise  # noqa: E402

MARKUP = "<img src=x onerror=alert(1)>"


def test_points_travel_as_float32_bytes_scaled_into_the_unit_square():
    xy = np.array([[0.0, 0.0], [10.0, 2.0], [5.0, 1.0]])
    m = ClusterMap.from_points(xy, ["a", "b", "a"], labels=["one", "two", "three"])
    assert isinstance(m.xy, bytes) and len(m.xy) == 3 * 2 * 4 and len(m) == 3
    pts = m.points()
    assert pts.dtype == np.float32 and np.abs(pts).max() <= 1 and np.allclose(pts[2], [0, 0], atol=1e-6)
    # one scale for both axes: the x range is five times the y range on the map too
    assert np.isclose(np.ptp(pts[:, 0]) / np.ptp(pts[:, 1]), 5)
    assert m.colour_codes().tolist() == [0, 1, 0] and m.labels == ["one", "two", "three"]
    with pytest.raises(ValueError, match="finite"):
        normalise(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="align"):
        m.color_by(["a"])
    with pytest.raises(Exception, match="out of range"):
        m.highlight = [3]


def test_colours_categories_by_frequency_pool_the_rest_and_bin_numbers():
    codes, palette, legend = encode_colours(["b", "a", "b", None])
    assert [i["label"] for i in legend] == ["b", "a", "none"] and codes.tolist() == [0, 1, 0, 2]
    assert [i["count"] for i in legend] == [2, 1, 1] and len(palette) == 3
    many = [f"c{i}" for i in range(30) for _ in range(30 - i)]
    codes, palette, legend = encode_colours(many)
    assert len(legend) == 20 and legend[-1]["label"] == "other" and legend[-1]["count"] == sum(range(1, 12))
    codes, _, legend = encode_colours(list(range(100)))
    assert len(legend) == 8 and legend[0]["label"].startswith("0") and codes.max() == 7
    _, _, legend = encode_colours([3, 1, 2, 1])  # few numbers: categories, in numeric order
    assert [i["label"] for i in legend] == ["1", "2", "3"]


def test_tree_selection_is_checked_against_the_tree():
    t = ClusterTree(tree=[{"id": "1.0", "name": "top", "size": 3, "description": "d",
                           "children": [{"id": "0.0", "name": "leaf", "size": 3, "description": "", "children": []}]}])
    assert t.node_ids() == ["1.0", "0.0"]
    t.selected = "0.0"
    with pytest.raises(Exception, match="no node"):
        t.selected = "9.9"
    t.selected = ""


@pytest.fixture
def small_run(tmp_path, fake_llm, fake_embedder, demo_convs):
    # every conversation's user id made distinct, thresholds 3 conversations / 3 users: small clusters withheld
    convs = [c.model_copy(update={"user_id": f"u{i}"}) for i, c in enumerate(demo_convs)]
    res = clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                cache=tmp_path / "c", k=12, min_conversations=4, min_users=4, progress=False)
    return res


def test_explorer_links_tree_map_and_details_and_shows_only_what_is_released(small_run, tmp_path):
    res = small_run
    assert res.thresholds["withheld_conversations_at_base"] > 0  # the fixture has withheld clusters
    ex = Explorer(res)
    frame = res.to_frame()
    assert len(ex.map) == int((~frame["withheld"]).sum()) == 40 - res.thresholds["withheld_conversations_at_base"]
    names = set()

    def walk(nodes):
        for n in nodes:
            names.add(n["name"])
            walk(n["children"])

    walk(ex.tree.tree)
    released = {n.name for n in res.hierarchy.nodes.values()}
    withheld = {n.name for n in res.full_hierarchy.nodes.values()} - released
    assert names == released and withheld and not names & withheld
    # a node: its conversations highlighted, its details shown
    top = next(n for n in res.hierarchy.top if n.status is Status.SHOWN)
    ex.tree.selected = top.id
    at = ex.frame[f"level_{top.level}"].to_numpy()
    assert sorted(ex.map.highlight) == np.flatnonzero(at == top.index).tolist()
    assert top.name in ex.details.value and "Summaries near the centre" in ex.details.value
    assert "Mixed:" not in ex.details.value
    ex.clusters.loc[top.id, "method"] = "extractive (summary, mixed)"  # a name that speaks for a minority
    ex.tree.selected = ""
    ex.tree.selected = top.id
    assert "Mixed: fewer than half of these conversations" in ex.details.value
    # a withheld pool: its size and status, never a member's summary
    pool = next(n for n in res.hierarchy.nodes.values() if n.status is Status.WITHHELD)
    ex.tree.selected = pool.id
    assert WITHHELD_NAME in ex.details.value and "only the count is shown" in ex.details.value
    assert "Summaries near the centre" not in ex.details.value
    ex.tree.selected = ""
    assert ex.map.highlight == []
    # a lasso on the map: the breakdown of the picked conversations
    ex.map.selection = [0, 1, 2]
    assert "3 selected conversations" in ex.details.value
    # colour by a facet, then by the base clusters
    ex.color.value = "meta_language"
    assert ex.map.legend_title == "meta_language" and {i["label"] for i in ex.map.legend} <= {
        "English", "German", "French", "Spanish", "Portuguese"}
    ex.color.value = "level_0"
    assert len(ex.map.legend) == len([n for n in res.hierarchy.level(0) if n.index > -2])
    # hover texts are the request summaries; no conversation text without the run's opt-in
    assert ex.map.labels == frame.loc[frame["cluster"] > -2, "request"].fillna("").tolist()
    with pytest.raises(ValueError, match="did not opt in"):
        Explorer(res, show_raw=True)
    # the same from the saved folder
    folder = res.save(tmp_path / "run")
    assert len(clio_lab.explore(folder).children) == 2 and len(clio_lab.explore(str(folder)).map) == len(ex.map)


def test_the_details_show_a_released_clusters_trend_with_the_thresholds_per_period(small_run):
    res = small_run
    ex = Explorer(res, trend_freq="Q")
    top = max((n for n in res.hierarchy.top if n.status is Status.SHOWN), key=lambda n: n.size)
    ex.tree.selected = top.id
    assert "Conversations per quarter" in ex.details.value
    table = clio_lab.trends(res, level=top.level, freq="Q")
    mine = table[table["group"] == top.index]
    for _, r in mine.iterrows():  # every period of the cluster, with the count trends() allows
        assert f"{r['period']:%Y-%m}</span>" in ex.details.value and html.escape(r["display"]) in ex.details.value
    assert "created_at" not in [v for _, v in ex.color_options]  # a date is not a colour
    pool = next(n for n in res.hierarchy.nodes.values() if n.status is Status.WITHHELD)
    ex.tree.selected = pool.id
    assert "Conversations per" not in ex.details.value  # a withheld pool shows its size only


def test_markup_in_names_and_summaries_reaches_the_page_only_as_text(small_run):
    res = small_run
    node = res.hierarchy.level(0)[0]
    node.name = MARKUP
    node.description = "<script>alert('x')</script>"
    ex = Explorer(res)
    ex.tree.selected = node.id
    assert MARKUP not in ex.details.value and "&lt;img src=x" in ex.details.value
    assert "<script>" not in ex.details.value
    # the tree trait carries the text as is: the browser test proves cluster_tree.js shows it as text
    assert any(n["name"] == MARKUP for top in ex.tree.tree for n in top["children"])


def test_bundles_are_committed_and_fetch_nothing_at_run_time():
    for name in ("cluster_map.js", "cluster_tree.js", "widgets.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert len(text) > 500
        assert not re.search(r"""(?:import|from)\s*\(?\s*["']https?://""", text)  # no CDN imports
        assert "unpkg.com" not in text and "jsdelivr" not in text and "esm.sh" not in text
    for src in ("cluster_map.js", "cluster_tree.js"):
        js = (STATIC.parents[2] / "js" / "src" / src).read_text(encoding="utf-8")
        assert "innerHTML" not in js  # texts are set with textContent only


def test_every_node_fills_the_details_including_binned_number_facets(tmp_path, fake_llm, fake_embedder, demo_convs):
    """A number facet with gaps (a rating only some conversations carry) is binned into a pandas Categorical;
    filling its gaps raised inside the tree's observer, so the details silently kept the previous text."""
    convs = [c.model_copy(update={"user_id": f"u{i}", "metadata": {**c.metadata, **({"rating": i * 0.37} if i % 2
                                                                                     else {})}})
             for i, c in enumerate(demo_convs)]
    res = clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                cache=tmp_path / "c", k=6, min_conversations=None, min_users=None, progress=False)
    ex = Explorer(res)
    rating = next(c for _, c in ex.color_options if "rating" in c)
    assert ex.frame[rating].isna().any() and ex.frame[rating].nunique() > 8
    for node in res.hierarchy.nodes.values():
        ex.tree.selected = node.id
        assert ex.details.value.startswith(f"<h4 style='margin:4px 0'>{html.escape(node.name)}</h4>"), node.id
        assert "Privacy:" in ex.details.value and rating in ex.details.value
