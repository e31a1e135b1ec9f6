"""Charts of a run and of validation figures, and their offline export."""

import altair as alt
import numpy as np
import pandas as pd
import pytest

import clio_lab
from clio_lab import LLM, charts
from clio_lab.evaluate import reconstruction_accuracy
from clio_lab.release import WITHHELD_NAME


@pytest.fixture
def small_run(tmp_path, fake_llm, fake_embedder, demo_convs):
    convs = [c.model_copy(update={"user_id": f"u{i}"}) for i, c in enumerate(demo_convs)]
    return clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                 cache=tmp_path / "c", k=12, min_conversations=4, min_users=4, progress=False)


def _data(chart) -> pd.DataFrame:
    return pd.DataFrame(chart.to_dict()["datasets"][next(iter(chart.to_dict()["datasets"]))])


def test_run_charts_hold_the_runs_counts_and_hide_withheld_members(small_run):
    frame = small_run.to_frame()
    withheld = int(frame["withheld"].sum())
    assert withheld > 0
    sizes = _data(charts.cluster_sizes(small_run, top=50))
    assert sizes["conversations"].sum() == len(frame)
    assert sizes.set_index("cluster").loc[WITHHELD_NAME, "conversations"] == withheld
    breakdown = _data(charts.facet_breakdown(small_run, "meta_language", level=0))
    assert WITHHELD_NAME not in set(breakdown["cluster"])
    assert breakdown["conversations"].sum() == len(frame) - withheld
    points = _data(charts.conversation_map(small_run, colour="meta_language"))
    assert len(points) == len(frame) - withheld
    assert len(_data(charts.conversation_map(small_run, max_points=10))) == 10
    with pytest.raises(KeyError, match="no facet 'mood'"):
        charts.facet_breakdown(small_run, "mood")


def test_the_labelled_map_draws_released_clusters_coloured_by_category_and_named(small_run, tmp_path):
    frame = small_run.to_frame()
    points, labels = charts.map_data(small_run)
    assert len(points) == int((frame["level_0"] >= -1).sum()) < len(frame)  # withheld members are not drawn
    released = {n.name for n in small_run.hierarchy.level(0) if n.index >= 0}
    assert {c.rsplit(" (", 1)[0] for c in labels["cluster"]} == released and labels["size"].sum() == len(points)
    top = frame[f"level_{small_run.hierarchy.n_levels - 1}_name"]
    assert set(labels["category"]) <= set(top)
    assert labels.groupby("category")["colour"].nunique().max() == 1  # one colour per top-level category
    assert labels["colour"].nunique() == labels["category"].nunique()
    member = frame[frame["level_0"] >= 0].iloc[0]
    (row,) = labels[labels["cluster"].str.startswith(member["level_0_name"])].itertuples()
    same = frame[frame["level_0"] == member["level_0"]]
    assert (row.x, row.y) == pytest.approx((same["x"].median(), same["y"].median()))
    layered = charts.labelled_map(small_run).to_dict()
    assert [layer["mark"]["type"] for layer in layered["layer"]] == ["circle", "rule", "text"]
    # the axes span the dots, not zero (a scale from zero left most of an exported map empty)
    for spec in (layered["layer"][0], charts.conversation_map(small_run).to_dict()):
        assert spec["encoding"]["x"]["scale"]["zero"] is False and spec["encoding"]["y"]["scale"]["zero"] is False
    pytest.importorskip("datamapplot")
    written = charts.save_datamap(small_run, tmp_path / "map", formats=("png", "svg"))
    assert [p.suffix for p in written] == [".png", ".svg"] and written[0].read_bytes()[:4] == b"\x89PNG"
    import re

    texts = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", written[1].read_text()))  # wrapped over lines
    assert all(word in texts for name in labels["cluster"] for word in name.split()[:3])


def test_names_on_the_map_are_placed_clear_of_each_other():
    """Twelve clusters whose middles nearly coincide: each name gets a place of its own, the largest keeps its
    place above its middle, and a name moved further than a line gets a leader line ending at its edge."""
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"cluster": [f"Cluster name number {i} about something" for i in range(12)],
                           "x": 5 + rng.normal(0, 0.01, 12), "y": 5 + rng.normal(0, 0.01, 12),
                           "size": np.arange(12, 0, -1)})
    out = charts.place_labels(labels, (0, 10), (0, 10), 700, 540)
    sx, sy = 70, 54
    w = np.minimum(charts.LABEL_LIMIT, charts.LABEL_CHAR * labels["cluster"].str.len()).to_numpy()
    h = charts.LABEL_FONT + 3
    boxes = [((x * sx) - wi / 2, ((10 - y) * sy) - h / 2, (x * sx) + wi / 2, ((10 - y) * sy) + h / 2)
             for x, y, wi in zip(out["label_x"], out["label_y"], w, strict=True)]
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            assert min(a[2], b[2]) - max(a[0], b[0]) <= 1 or min(a[3], b[3]) - max(a[1], b[1]) <= 1  # 1 px: a graze
    first = out.iloc[0]
    assert first["label_x"] == pytest.approx(first["x"]) and (first["label_y"] - first["y"]) * sy == pytest.approx(6)
    assert not first["moved"] and out["moved"].sum() >= 8
    far = out[out["moved"]].iloc[0]  # the leader stops at the name's edge, nearer the middle than its centre
    assert abs(far["lead_y"] - far["y"]) < abs(far["label_y"] - far["y"]) or \
        abs(far["lead_x"] - far["x"]) < abs(far["label_x"] - far["x"])


def test_a_map_with_more_clusters_than_it_can_name_names_the_categories(small_run, tmp_path):
    """datamapplot's label placement grows fast with the number of labels (minutes for a large run's 600), so
    above max_labels the printed map names the top-level categories, and the report says so."""
    pytest.importorskip("datamapplot")
    import re

    points, labels = charts.map_data(small_run)
    assert charts.map_label_column(labels, max_labels=len(labels)) == "cluster"
    assert charts.map_label_column(labels, max_labels=len(labels) - 1) == "category"
    written = charts.save_datamap(small_run, tmp_path / "map", formats=("svg",), max_labels=1)
    texts = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", written[0].read_text()))
    assert all(word in texts for name in set(labels["category"]) for word in name.split()[:2])
    assert not any(name.split()[0] in texts for name in set(labels["cluster"]) - set(labels["category"])
                   if name.split()[0] not in " ".join(labels["category"]))


def test_a_large_map_is_drawn_without_the_glow_and_the_report_says_so(small_run, monkeypatch):
    """Scoring the glow's KDE grows with the points: above GLOW_MAX_POINTS the map is drawn without it."""
    pytest.importorskip("datamapplot")
    from clio_lab.report import _map

    seen = []
    real = charts.add_glow
    monkeypatch.setattr(charts, "add_glow", lambda *a, **kw: seen.append(len(a[1])) or real(*a, **kw))
    assert _map(small_run)["glow"] is True
    monkeypatch.setattr(charts, "GLOW_MAX_POINTS", 5)
    drawn = _map(small_run)
    assert drawn["glow"] is False and len(seen) == 1


def test_the_glow_lies_under_each_category_and_inside_the_frame(small_run, monkeypatch):
    """The glow is clio_lab's (datamapplot's own keeps its patches upsampled 12 times: 5.5 GB for a 20,000-point
    map): one set of bands per category colour, none for unclustered points, under the points, and framed with
    them, since datamapplot sets the labels around what is on the axes when it is called."""
    pytest.importorskip("datamapplot")
    import datamapplot
    from matplotlib.contour import ContourSet

    kwargs = []
    real = datamapplot.create_plot
    monkeypatch.setattr(datamapplot, "create_plot", lambda *a, **kw: kwargs.append(kw) or real(*a, **kw))
    points, labels = charts.map_data(small_run)
    fig = charts.datamap_figure(points, labels)
    ax = fig.axes[0]
    assert kwargs[0]["add_glow"] is False and kwargs[0]["ax"] is ax
    bands = [c for c in ax.get_children() if isinstance(c, ContourSet)]
    colours = set(points["colour"].dropna())
    assert len(bands) == len(colours) > 1
    assert all(c.get_zorder() < 1 for c in bands)  # datamapplot's points are drawn at zorder 1
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for c in bands:
        (bx0, by0), (bx1, by1) = c.get_datalim(ax.transData).get_points()
        assert x0 <= bx0 and bx1 <= x1 and y0 <= by0 and by1 <= y1
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_validation_charts_and_export_to_png_svg_pdf(tmp_path):
    scores = pd.DataFrame({"k": [5, 5, 10, 10], "seed": [0, 1, 0, 1], "embedding": ["raw"] * 4,
                           "acc": [0.5, 0.6, 0.7, 0.8], "nmi": [0.4, 0.4, 0.6, 0.6], "ari": [0.2, 0.3, 0.4, 0.5]})
    chart = charts.scores_chart(scores, "k", colour="embedding")
    means = _data(chart)
    assert means[(means["k"] == 10) & (means["metric"] == "ACC")]["score"].iloc[0] == pytest.approx(0.75)
    recovery = reconstruction_accuracy(["a", "a", "b", "b"], [0, 0, 1, 0], groups=["en", "fr", "en", "fr"])
    rec = charts.recovery_chart(recovery)
    leaks = {"conversations": 200, "conversations_with_planted": 50,
             "facet_answers": {"conversations_with_a_surviving_value": 3, "conversations_answered": 150},
             "released_cluster_texts": {"texts_with_a_value": 0, "texts": 40}}
    leak = charts.leak_chart(leaks)
    shares = _data(leak).set_index(["stage", "source"])["share"]
    assert shares[("raw conversations", "this run")] == 0.25 and shares[("facet answers", "this run")] == 0.02
    assert shares[("released cluster texts", "this run")] == 0 and shares[("facet answers", "paper")] == 0.015
    for name, c in (("scores", chart), ("recovery", rec), ("leak", leak)):
        paths = charts.save_chart(c, tmp_path / "figs" / name)
        assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in paths[1].read_bytes()[:400]
        assert paths[2].read_bytes()[:5] == b"%PDF-"
    html = charts.save_chart(rec, tmp_path / "rec", formats=("html",))[0].read_text()
    assert "cdn.jsdelivr" not in html and "vega" in html  # Vega inside the file: opens offline
    with pytest.raises(ValueError, match="unknown format"):
        charts.save_chart(rec, tmp_path / "x", formats=("gif",))


def test_offline_renderer_is_not_the_cdn_one():
    before = alt.renderers.active
    try:
        assert charts.enable_offline(interactive=False) == "svg" and alt.renderers.active == "svg"
    finally:
        alt.renderers.enable(before)


def test_a_run_with_every_cluster_withheld_gets_a_report_that_says_there_is_no_map(tmp_path, fake_llm,
                                                                                    fake_embedder, demo_convs):
    res = clio_lab.run_pipeline(demo_convs[:20], llm=LLM(model="fake/m", prompt_style="completion"),
                                embedder=fake_embedder, cache=tmp_path / "c", k=3, min_conversations=1000,
                                progress=False)
    assert charts.map_data(res)[1].empty
    with pytest.raises(ValueError, match="every cluster of this run was withheld"):
        charts.datamap(res)
    out = res.save(tmp_path / "run")
    assert "No map: no cluster was released" in (out / "report.html").read_text()


def test_datamapplot_is_imported_without_compiling_edge_bundling():
    """charts.import_datamapplot: datashader's edge bundling (compiled eagerly at import, 6-8 s) is not imported
    with datamapplot, nothing is left standing in for it, and datamapplot's hammer_bundle, if ever called,
    calls the real one. In a new interpreter, where nothing has imported datamapplot yet."""
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("datamapplot")
    script = textwrap.dedent("""
        import importlib, sys, types
        from clio_lab.charts import import_datamapplot
        dm = import_datamapplot()
        assert "datashader.bundling" not in sys.modules and callable(dm.create_plot)
        from datamapplot import edge_bundling
        asked = []
        importlib.import_module = lambda name: asked.append(name) or types.SimpleNamespace(
            hammer_bundle=lambda *a, **k: ("bundled", a, k))
        assert edge_bundling.hammer_bundle(1, 2, k=3) == ("bundled", (1, 2), {"k": 3})
        assert asked == ["datashader.bundling"]
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
