"""Altair charts of a run and of validation figures, and their export to PNG, SVG and PDF, all offline.

Every chart takes plain results (a :class:`~clio_lab.pipeline.PipelineResult` or a saved run, DataFrames or the
dicts that :mod:`clio_lab.evaluate` returns) and returns an ``altair.Chart``; nothing here calls a model.
Withheld clusters appear as the run shows them: pooled as "Other (withheld)", their members not drawn on the map.

Altair's default renderer loads Vega from a CDN, so :func:`enable_offline` switches Jupyter to a renderer that
needs no network (the interactive one with Vega bundled by vl-convert, or static SVG). :func:`save_chart`
writes files with vl-convert, which also works offline. Maps are sampled to ``max_points`` points: a PNG of a
large scatter costs about a second per 1,000 points.

Example:
    >>> chart = cluster_sizes(result)  # doctest: +SKIP
    >>> save_chart(chart, "figures/cluster_sizes")  # doctest: +SKIP
    [PosixPath('figures/cluster_sizes.png'), PosixPath('figures/cluster_sizes.svg'), ...]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from .release import WITHHELD_NAME as WITHHELD_LABEL
from .results import Run

WIDTH = 480
METRIC_NAMES = {"acc": "ACC", "nmi": "NMI", "ari": "ARI", "v_measure": "V-measure"}


def enable_offline(interactive: bool = True) -> str:
    """Render charts in Jupyter with no network: ``"jupyter"`` (interactive; Vega bundled locally by vl-convert,
    needs anywidget) or ``"svg"`` (static, shows anywhere). Returns the renderer's name."""
    if interactive:
        try:
            alt.renderers.enable("jupyter", offline=True)
            return "jupyter"
        except ImportError:  # anywidget missing: static pictures still work
            pass
    alt.renderers.enable("svg")
    return "svg"


def _frames(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    return run.to_frame(), run.clusters_frame()


def _top_level(clusters: pd.DataFrame) -> int:
    return int(clusters["level"].max())


def _names_at(frame: pd.DataFrame, level: int) -> pd.Series:
    """Each conversation's cluster name at ``level`` (withheld clusters already share one name)."""
    return frame[f"level_{level}_name"].astype(str)


def cluster_sizes(run: Run, *, level: int = 0, top: int = 20, title: str | None = None) -> alt.Chart:
    """Horizontal bars: conversations per cluster at ``level`` (largest ``top``; withheld ones pooled)."""
    frame, clusters = _frames(run)
    counts = _names_at(frame, level).value_counts().rename_axis("cluster").reset_index(name="conversations")
    counts = counts.head(top)
    return alt.Chart(counts, title=title or f"Conversations per cluster (level {level})").mark_bar().encode(
        x=alt.X("conversations:Q", title="conversations"),
        y=alt.Y("cluster:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.condition(alt.datum.cluster == WITHHELD_LABEL, alt.value("#bbbbbb"), alt.value("#4c78a8")),
        tooltip=["cluster", "conversations"],
    ).properties(width=WIDTH)


def facet_breakdown(run: Run, facet: str, *, level: int | None = None, top: int = 12,
                    title: str | None = None) -> alt.Chart:
    """Stacked bars: the share of each value of ``facet`` (a column of ``run.to_frame()``, e.g. ``language``)
    within each cluster at ``level`` (default: the top of the tree)."""
    frame, clusters = _frames(run)
    if facet not in frame:
        raise KeyError(f"no facet {facet!r} in this run; columns: {sorted(frame.columns)}")
    level = _top_level(clusters) if level is None else level
    data = pd.DataFrame({"cluster": _names_at(frame, level), facet: frame[facet].astype(str)})
    data = data[~frame["withheld"].to_numpy(dtype=bool)]
    keep = data[facet].value_counts().index[:top]
    data[facet] = data[facet].where(data[facet].isin(keep), "other")
    counts = data.groupby(["cluster", facet]).size().reset_index(name="conversations")
    return alt.Chart(counts, title=title or f"{facet} by cluster (level {level})").mark_bar().encode(
        x=alt.X("conversations:Q", stack="normalize", title="share of conversations", axis=alt.Axis(format="%")),
        y=alt.Y("cluster:N", title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.Color(f"{facet}:N", title=facet),
        tooltip=["cluster", facet, "conversations"],
    ).properties(width=WIDTH)


def trend_chart(trends: pd.DataFrame, *, top: int = 8, title: str | None = None) -> alt.Chart:
    """Lines: each group's share of the conversations per period, from :func:`clio_lab.trends` (the ``top``
    largest groups; hidden cells, below the thresholds in their period, are gaps in their line, not zeros)."""
    shown = trends[trends["shown"]]
    keep = shown.groupby("name")["share"].sum().sort_values(ascending=False).index[:top]
    data = trends[trends["name"].isin(keep)][["period", "name", "share", "display"]].copy()
    by = trends.attrs.get("by", "cluster")
    from .trends import FREQ_WORDS

    freq = FREQ_WORDS.get(trends.attrs.get("freq"), "period")
    title = title or f"Share of conversations per {freq} ({by})"
    if shown.empty:  # every cell below the thresholds: say so (an empty line chart has no size to save)
        note = pd.DataFrame({"text": [f"No {freq} has a group with enough conversations and users to show "
                                      f"(the privacy thresholds); {len(trends)} cells hidden."]})
        return alt.Chart(note, title=title).mark_text(align="left", x=0, fontSize=13, color="#555").encode(
            text="text:N").properties(width=WIDTH, height=40)
    return alt.Chart(data, title=title).mark_line(point=True).encode(
        x=alt.X("period:T", title=None),
        y=alt.Y("share:Q", title="share of the period's conversations", axis=alt.Axis(format="%")),
        color=alt.Color("name:N", title=None, legend=alt.Legend(labelLimit=320, orient="bottom", columns=2)),
        tooltip=[alt.Tooltip("period:T"), "name", alt.Tooltip("display:N", title="conversations"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=WIDTH)


# The map's axes span the dots, not zero: UMAP's coordinates are arbitrary, and a scale from zero left most of
# an exported map empty when they all lay far from it.
MAP_SCALE = alt.Scale(zero=False)


def conversation_map(run: Run, *, colour: str | None = None, max_points: int = 3000, random_state: int = 0,
                     title: str | None = None) -> alt.Chart:
    """The 2-D map of conversations, one dot each (members of withheld clusters are not drawn), coloured by a
    column of ``run.to_frame()`` (default: the top-level cluster name). Sampled to ``max_points``."""
    frame, clusters = _frames(run)
    top = _top_level(clusters)
    colour = colour or f"level_{top}_name"
    shown = frame[~frame["withheld"].to_numpy(dtype=bool)]
    data = pd.DataFrame({"x": shown["x"], "y": shown["y"], colour: shown[colour].astype(str),
                         "request": shown.get("request", pd.Series(index=shown.index, dtype=object))})
    data["request"] = data["request"].fillna("")  # a failed summary; NaN is not valid JSON for the widget
    if len(data) > max_points:
        data = data.sample(max_points, random_state=random_state)
    return alt.Chart(data, title=title or "Map of conversations").mark_circle(size=30, opacity=0.75).encode(
        x=alt.X("x:Q", axis=None, scale=MAP_SCALE), y=alt.Y("y:Q", axis=None, scale=MAP_SCALE),
        color=alt.Color(f"{colour}:N", title=colour.replace("_", " "), legend=alt.Legend(labelLimit=260)),
        tooltip=[colour, "request"],
    ).properties(width=WIDTH, height=WIDTH)


def scores_chart(frame: pd.DataFrame, x: str, *, metrics: Sequence[str] = ("acc", "nmi", "ari"),
                 colour: str | None = None, title: str | None = None) -> alt.Chart:
    """Lines of clustering scores (mean over seeds, as :func:`clio_lab.evaluate.compare_settings` returns them)
    against parameter ``x``, one panel per metric, coloured by ``colour`` (e.g. ``embedding``)."""
    keys = [x] + ([colour] if colour else [])
    data = frame.groupby(keys, dropna=False)[list(metrics)].mean().reset_index()
    data = data.melt(id_vars=keys, value_vars=list(metrics), var_name="metric", value_name="score")
    data["metric"] = data["metric"].map(lambda m: METRIC_NAMES.get(m, m))
    base = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q" if pd.api.types.is_numeric_dtype(data[x]) else f"{x}:N", title=x.replace("_", " ")),
        y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1]), title=None),
        tooltip=[*keys, "metric", alt.Tooltip("score:Q", format=".3f")],
        **({"color": alt.Color(f"{colour}:N", title=colour)} if colour else {}),
    ).properties(width=200, height=180)
    return base.facet(column=alt.Column("metric:N", title=None), title=title or f"Scores against {x}")


def recovery_chart(recovery: Mapping[str, Any], *, paper: float | None = 0.94, title: str | None = None) -> alt.Chart:
    """Reconstruction accuracy per group (``reconstruction_accuracy(...)["by_group"]``) as bars, with the overall
    figure, chance, and the paper's figure (94% on its synthetic set) as rules."""
    rows = [{"group": g, "accuracy": v["accuracy"], "n": v["n"]} for g, v in recovery["by_group"].items()]
    rows.insert(0, {"group": "all", "accuracy": recovery["accuracy"], "n": sum(r["n"] for r in rows)})
    data = pd.DataFrame(rows)
    data["label"] = [f"{a:.0%} (n={n})" for a, n in zip(data["accuracy"], data["n"], strict=True)]
    y = alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="accuracy")
    x = alt.X("group:N", sort=None, title=None, axis=alt.Axis(labelAngle=0))
    text = alt.Chart(data).mark_text(dy=-6).encode(x=x, y=y, text="label:N")
    bars = alt.Chart(data).mark_bar().encode(
        x=x, y=y,
        color=alt.condition(alt.datum.group == "all", alt.value("#f58518"), alt.value("#4c78a8")),
        tooltip=["group", alt.Tooltip("accuracy:Q", format=".1%"), "n"])
    refs = [{"reference": "chance", "value": recovery["chance"]}]
    if paper is not None:
        refs.append({"reference": "paper (synthetic, 94%)", "value": paper})
    rules = alt.Chart(pd.DataFrame(refs)).mark_rule(strokeDash=[4, 3]).encode(
        y=alt.Y("value:Q", title="accuracy"),
        color=alt.Color("reference:N", scale=alt.Scale(range=["#999999", "#e45756"])))
    return (bars + text + rules).properties(width=WIDTH, title=title or "Reconstruction accuracy by language")


def leak_chart(leaks: Mapping[str, Any], *, paper: Mapping[str, float] | None = None,
               title: str | None = None) -> alt.Chart:
    """Share of conversations with a personal detail at each stage, from ``evaluate.leak_rates``: raw
    conversations with a planted one, conversations whose facet answers still carry one, and released cluster
    texts (names, descriptions, central summaries) that carry one; beside the paper's shares (raw about 10%,
    after summarising about 1.5%, released clusters 0%) unless ``paper={}``."""
    facet, released = leaks["facet_answers"], leaks["released_cluster_texts"]
    rows = [
        {"stage": "raw conversations", "share": leaks["conversations_with_planted"] / max(1, leaks["conversations"])},
        {"stage": "facet answers", "share": facet["conversations_with_a_surviving_value"]
         / max(1, facet["conversations_answered"])},
        {"stage": "released cluster texts", "share": released["texts_with_a_value"] / max(1, released["texts"])},
    ]
    for r in rows:
        r["source"] = "this run"
    paper = {"raw conversations": 0.10, "facet answers": 0.015, "released cluster texts": 0.0} \
        if paper is None else paper
    rows += [{"stage": k, "share": v, "source": "paper"} for k, v in paper.items()]
    data = pd.DataFrame(rows)
    data["label"] = data["share"].map(lambda v: f"{v:.1%}")
    base = alt.Chart(data).encode(
        x=alt.X("share:Q", axis=alt.Axis(format="%"), title="share with a personal detail"),
        y=alt.Y("source:N", title=None, sort=["this run", "paper"]))
    bars = base.mark_bar().encode(
        color=alt.Color("source:N", scale=alt.Scale(domain=["this run", "paper"], range=["#4c78a8", "#bbbbbb"])),
        tooltip=["stage", "source", alt.Tooltip("share:Q", format=".1%")])
    text = base.mark_text(align="left", dx=4).encode(text="label:N")
    return (bars + text).properties(width=WIDTH - 120, height=50).facet(
        row=alt.Row("stage:N", sort=[r["stage"] for r in rows[:3]], title=None,
                    header=alt.Header(labelAngle=0, labelAlign="left")),
        title=title or "Personal details at each stage")


UNCLUSTERED_LABEL = "Unclustered"
# colours for top-level categories (Tableau 10, then Tableau 20's light tones); more categories repeat them
CATEGORY_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                    "#9c755f", "#bab0ac", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94")


def category_colours(sizes: Mapping[str, int]) -> dict[str, str]:
    """One colour per top-level category, largest first (ties by name), so the map and the size chart agree."""
    order = sorted(sizes, key=lambda c: (-sizes[c], str(c)))
    return {c: CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i, c in enumerate(order)}


def map_data(run: Run, *, max_points: int | None = None, random_state: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a labelled map of a run draws: ``(points, labels)``.

    ``points``: one row per conversation of a released base cluster (members of withheld clusters are not
    drawn; unclustered ones are, as ``"Unclustered"``), with ``x``, ``y``, ``cluster`` (its base cluster's name,
    numbered where names repeat), ``category`` (its top-level category) and ``colour``; sampled to ``max_points``.
    ``labels``: one row per released base cluster: ``cluster``, ``category``, ``colour``, ``size`` and the
    median ``x``, ``y`` of all its members (before sampling), where its name goes.
    """
    frame, clusters = _frames(run)
    if "x" not in frame:
        raise ValueError("this run has no map (it was run with projection=False)")
    top = _top_level(clusters)
    shown = frame[~frame["withheld"].to_numpy(dtype=bool)]
    names = shown["level_0_name"].astype(str)
    repeats = shown.groupby("level_0_name")["level_0"].transform("nunique")
    number = shown.groupby("level_0_name")["level_0"].rank(method="dense").astype(int)
    cluster = [f"{n} ({k})" if r > 1 else n for n, r, k in zip(names, repeats, number, strict=True)]
    points = pd.DataFrame({"x": shown["x"].to_numpy(), "y": shown["y"].to_numpy(), "cluster": cluster,
                           "category": shown[f"level_{top}_name"].astype(str).to_numpy(),
                           "base": shown["level_0"].to_numpy()})
    points.loc[points["base"] == -1, ["cluster", "category"]] = UNCLUSTERED_LABEL
    palette = category_colours(points.loc[points["base"] >= 0, "category"].value_counts().to_dict())
    palette[UNCLUSTERED_LABEL] = "#cccccc"
    points["colour"] = points["category"].map(palette)
    labels = (points[points["base"] >= 0].groupby("cluster")
              .agg(category=("category", "first"), colour=("colour", "first"), size=("x", "size"),
                   x=("x", "median"), y=("y", "median")).reset_index().sort_values("size", ascending=False))
    if max_points is not None and len(points) > max_points:
        points = points.sample(max_points, random_state=random_state)
    return points.drop(columns="base").reset_index(drop=True), labels.reset_index(drop=True)


# The labelled map's names: font size, width limit and the width of one character (bold sans at 11 px averages
# about 6.6 px; an estimate, for keeping names apart, that errs wide)
LABEL_FONT, LABEL_LIMIT, LABEL_CHAR = 11, 180, 7.0


def place_labels(labels: pd.DataFrame, x_domain: Sequence[float], y_domain: Sequence[float], width: float,
                 height: float, *, font_size: float = LABEL_FONT, limit: float = LABEL_LIMIT,
                 char_width: float = LABEL_CHAR) -> pd.DataFrame:
    """Where each name of :func:`map_data`'s ``labels`` goes on a ``width`` x ``height`` pixel map over
    ``x_domain`` x ``y_domain``, clear of the names placed before it (largest cluster first, as ``labels`` is
    sorted): just above its cluster's middle when that is free, else the nearest free place one or more lines
    above or below, or beside it. A name with no free place within six lines keeps the place where it overlaps
    the fewest pixels. Returns ``labels`` with ``label_x``, ``label_y`` (the name's centre, data units),
    ``moved`` (further than the next line: worth a leader line) and ``lead_x``, ``lead_y`` (where that line
    meets the name)."""
    (x0, x1), (y0, y1) = x_domain, y_domain
    sx, sy = width / ((x1 - x0) or 1.0), height / ((y1 - y0) or 1.0)
    line = font_size + 3
    placed: list[tuple[float, float, float, float]] = []
    out_x, out_y, moved, lead_x, lead_y = [], [], [], [], []
    for name, x, y in zip(labels["cluster"].astype(str), labels["x"], labels["y"], strict=True):
        w, h = min(limit, char_width * len(name)), line
        ax, ay = (x - x0) * sx, (y1 - y) * sy  # the anchor in pixels, y downwards
        offsets = [(0.0, -6.0)]
        for k in range(1, 7):
            offsets += [(0.0, -6.0 - k * line), (0.0, -6.0 + k * line)]
        offsets += [(side * (w / 2 + 6), dy) for dy in (-6.0, -6.0 - line, -6.0 + line) for side in (1, -1)]
        best, best_cost = offsets[0], None
        for dx, dy in offsets:
            cx, cy = ax + dx, ay + dy  # the name's centre
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            outside = max(0.0, -box[0]) + max(0.0, box[2] - width) + max(0.0, -box[1]) + max(0.0, box[3] - height)
            # pixels shared with names already placed (a pixel's graze between lines is no overlap)
            cost = outside * h + sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0]) - 1) *
                                     max(0.0, min(box[3], b[3]) - max(box[1], b[1]) - 1) for b in placed)
            if best_cost is None or cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        dx, dy = best
        cx, cy = ax + dx, ay + dy
        placed.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        out_x.append(x0 + cx / sx)
        out_y.append(y1 - cy / sy)
        far = abs(dx) > 0 or abs(dy + 6.0) > line  # further than the next line: a leader line says whose name
        # the leader ends at the name's edge nearest the cluster's middle, not across the name
        ex = cx if dx == 0 else cx - np.sign(dx) * w / 2
        ey = cy if dx != 0 else cy - np.sign(dy) * h / 2
        moved.append(far)
        lead_x.append(x0 + ex / sx)
        lead_y.append(y1 - ey / sy)
    return labels.assign(label_x=out_x, label_y=out_y, moved=moved, lead_x=lead_x, lead_y=lead_y)


def _padded(values: pd.Series, pad: float = 0.04) -> list[float]:
    lo, hi = float(values.min()), float(values.max())
    span = (hi - lo) or 1.0
    return [lo - pad * span, hi + pad * span]


def labelled_map(run: Run, *, max_points: int = 3000, random_state: int = 0, title: str | None = None) -> alt.Chart:
    """The map of conversations as in the paper's figures, interactive: one dot per conversation coloured by
    its top-level category, each released base cluster's name at the middle of its members (moved clear of
    larger clusters' names where they would overlap, with a thin line back to its middle: :func:`place_labels`);
    withheld clusters are not drawn. Sampled to ``max_points`` dots (names are placed from all members)."""
    points, labels = map_data(run, max_points=max_points, random_state=random_state)
    width, height = WIDTH + 220, WIDTH + 60
    x_domain, y_domain = _padded(points["x"]), _padded(points["y"])
    labels = place_labels(labels, x_domain, y_domain, width, height)
    colour = alt.Color("category:N", title="top-level category", legend=alt.Legend(labelLimit=260),
                       scale=alt.Scale(domain=list(dict.fromkeys(labels["category"])) +
                                       ([UNCLUSTERED_LABEL] if (points["category"] == UNCLUSTERED_LABEL).any() else []),
                                       range=list(dict.fromkeys(labels["colour"])) + ["#cccccc"]))
    xs = alt.Scale(zero=False, nice=False, domain=x_domain)
    ys = alt.Scale(zero=False, nice=False, domain=y_domain)
    dots = alt.Chart(points).mark_circle(size=24, opacity=0.6).encode(
        x=alt.X("x:Q", axis=None, scale=xs), y=alt.Y("y:Q", axis=None, scale=ys), color=colour,
        tooltip=["cluster", "category"])
    leaders = alt.Chart(labels[labels["moved"]]).mark_rule(color="#555555", strokeWidth=0.7, opacity=0.7).encode(
        x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys), x2="lead_x:Q", y2="lead_y:Q")
    names = alt.Chart(labels).mark_text(fontSize=LABEL_FONT, fontWeight="bold", limit=LABEL_LIMIT).encode(
        x=alt.X("label_x:Q", scale=xs), y=alt.Y("label_y:Q", scale=ys), text="cluster:N",
        color=alt.value("#222222"), tooltip=["cluster", "category", "size"])
    return alt.layer(dots, leaders, names, title=title or "Map of conversations").properties(width=width,
                                                                                             height=height)


# Above this many released base clusters the printed map names the top-level categories instead: datamapplot
# places its labels clear of each other in a time that grows fast with their number (a 100,000-conversation
# run's 600 names took minutes), and so many names on one page cannot be read.
MAP_MAX_LABELS = 60
# The density glow (a halo per category), drawn here rather than by datamapplot: datamapplot's own glow scores
# each colour's KDE on a patch, then upsamples the patch 12 times before its contour plot, which keeps about
# 80 MB per colour alive in the figure (a 20,000-point map in 16 colours: 5.5 GB peak and 20 s). The same KDE
# and bands on the patch upsampled 2 times look the same at print size (BENCHMARKS.md, "The printed map's glow").
GLOW = {"kernel_bandwidth": 0.25, "approx_patch_size": 32, "upsample": 2, "n_levels": 8, "max_alpha": 0.5}
# Scoring the KDE grows with the points (2.4 s for 20,000): larger maps are drawn without the glow
GLOW_MAX_POINTS = 20_000
DATAMAP_MAX_POINTS = 100_000  # the printed map draws a sample of at most this many points


def draws_glow(n_points: int, max_points: int = DATAMAP_MAX_POINTS) -> bool:
    """Whether the printed map of ``n_points`` points (sampled to ``max_points``) gets the density glow."""
    return min(n_points, max_points) <= GLOW_MAX_POINTS


def map_label_column(labels: pd.DataFrame, max_labels: int = MAP_MAX_LABELS) -> str:
    """What the printed map names: ``"cluster"`` (each released base cluster), or ``"category"`` (its top-level
    category) when there are more than ``max_labels`` clusters."""
    return "cluster" if len(labels) <= max_labels else "category"


def datamap(run: Run, *, max_points: int = DATAMAP_MAX_POINTS, random_state: int = 0, title: str | None = None,
            sub_title: str | None = None, dpi: int = 100, max_labels: int = MAP_MAX_LABELS):
    """The same map drawn for print by datamapplot (labels placed clear of each other, with leader lines):
    a matplotlib figure. System fonts only, so nothing is fetched; needs ``pip install 'clio-lab[notebooks]'``.
    More than ``max_labels`` released base clusters are named by their top-level categories."""
    points, labels = map_data(run)
    return datamap_figure(points, labels, max_points=max_points, random_state=random_state, title=title,
                          sub_title=sub_title, dpi=dpi, max_labels=max_labels)


def datamap_figure(points: pd.DataFrame, labels: pd.DataFrame, *, max_points: int = DATAMAP_MAX_POINTS, random_state: int = 0,
                   title: str | None = None, sub_title: str | None = None, dpi: int = 100,
                   max_labels: int = MAP_MAX_LABELS):
    """:func:`datamap` from :func:`map_data`'s ``(points, labels)``, for a caller that already has them. With more
    than ``max_labels`` clusters the names are those of the top-level categories (:func:`map_label_column`); with
    more than :data:`GLOW_MAX_POINTS` points, no density glow."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    try:
        datamapplot = import_datamapplot()
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the printed map needs datamapplot: pip install 'clio-lab[notebooks]'") from exc
    if labels.empty:
        raise ValueError("no released cluster to draw: every cluster of this run was withheld")
    glow = draws_glow(len(points), max_points)
    if len(points) > max_points:
        points = points.sample(max_points, random_state=random_state)
    by = map_label_column(labels, max_labels)
    colours = dict(zip(labels[by], labels["colour"], strict=True))  # a category's colour is its clusters'
    coords = points[["x", "y"]].to_numpy()
    import matplotlib.pyplot as plt

    # the figure datamapplot makes by default (10 x 10 inches); the glow first, so that datamapplot frames it with the
    # points and sets the labels around both, as it does its own glow
    fig, ax = plt.subplots(figsize=(10, 10), dpi=dpi, constrained_layout=True)
    if glow:
        add_glow(ax, coords, points[by].map(colours).to_numpy())
    datamapplot.create_plot(
        coords, points[by].to_numpy(), noise_label=UNCLUSTERED_LABEL, noise_color="#cccccc",
        label_color_map=colours, title=title, sub_title=sub_title, use_system_fonts=True, add_glow=False,
        font_family="DejaVu Sans", label_font_size=9, dpi=dpi, darkmode=False, ax=ax)
    return fig


def import_datamapplot():
    """``import datamapplot``, without the 6-8 s that its import spends compiling datashader's edge bundling.

    datamapplot imports ``datashader.bundling`` when it is imported, and datashader compiles that module's numba
    kernels eagerly, in every new process (holoviz/datashader#1318; ``benchmarks/new_process.py``: datamapplot
    imported in 10.2-11.9 s against 3.1-3.7 s on 2 cores). Our maps never bundle edges. So, while datamapplot is
    first imported, ``datashader.bundling`` is a stand-in whose ``hammer_bundle`` imports the real module when
    it is called; the stand-in is gone from ``sys.modules`` afterwards, so any later ``import
    datashader.bundling`` gets the real module."""
    import importlib
    import sys
    import types

    name = "datashader.bundling"
    if "datamapplot" in sys.modules or name in sys.modules:
        import datamapplot

        return datamapplot

    def hammer_bundle(*args, **kwargs):
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return importlib.import_module(name).hammer_bundle(*args, **kwargs)

    stand_in = types.ModuleType(name, "clio_lab's stand-in while datamapplot is imported (charts.import_datamapplot)")
    stand_in.hammer_bundle = hammer_bundle
    sys.modules[name] = stand_in
    try:
        import datamapplot
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
    return datamapplot


def add_glow(ax, coords: np.ndarray, colours: Sequence[Any], *, kernel_bandwidth: float = GLOW["kernel_bandwidth"],
             approx_patch_size: int = GLOW["approx_patch_size"], upsample: int = GLOW["upsample"],
             n_levels: int = GLOW["n_levels"], max_alpha: float = GLOW["max_alpha"]) -> None:
    """A density halo under each colour's points (``colours``: a hex colour per point; others, such as the
    unclustered points' missing colour, get none): datamapplot's glow (a Gaussian KDE on a patch around the
    colour's points, drawn as ``n_levels`` bands of rising opacity under the points), with the patch smoothed
    by ``upsample`` (bilinear) instead of datamapplot's fixed 12, so that a map's glow costs megabytes."""
    from scipy.ndimage import zoom
    from sklearn.neighbors import KernelDensity

    colours = np.asarray([c if isinstance(c, str) else "" for c in colours])
    alphas = [f"{a:02X}" for a in np.linspace(0, max_alpha * 255, n_levels).astype(np.uint8)]
    for colour in sorted(set(colours) - {""}):
        xy = coords[colours == colour]
        (xmin, ymin), (xmax, ymax) = xy.min(0) - 8 * kernel_bandwidth, xy.max(0) + 8 * kernel_bandwidth
        width, height = xmax - xmin, ymax - ymin
        size = min(max(max(width, height) * approx_patch_size / 6.0, approx_patch_size), 384)
        xs, ys = np.linspace(xmin, xmax, int(size * width / height)), np.linspace(ymax, ymin, int(size))
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        kde = KernelDensity(bandwidth=kernel_bandwidth, kernel="gaussian", atol=1e-8, rtol=1e-4).fit(xy)
        log_density = kde.score_samples(grid).reshape(len(ys), len(xs))
        density = np.exp(zoom(log_density, upsample, order=1)) if upsample > 1 else np.exp(log_density)
        ax.contourf(density, levels=n_levels, colors=[colour + a for a in alphas], extent=(xmin, xmax, ymin, ymax),
                    extend="max", origin="upper", antialiased=True, zorder=0)


def save_datamap(run: Run, path: str | Path, *, formats: Sequence[str] = ("png", "svg", "pdf"),
                 **kwargs: Any) -> list[Path]:
    """Write :func:`datamap` as ``path.<format>`` for each format; returns the paths written."""
    import matplotlib.pyplot as plt

    fig = datamap(run, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        for fmt in formats:
            if fmt not in ("png", "svg", "pdf"):
                raise ValueError(f"unknown format {fmt!r}: use png, svg or pdf")
            with plt.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):  # text stays text (editable)
                fig.savefig(path.with_suffix(f".{fmt}"), bbox_inches="tight")
            out.append(path.with_suffix(f".{fmt}"))
    finally:
        plt.close(fig)
    return out


def save_chart(chart: alt.TopLevelMixin, path: str | Path, *, formats: Sequence[str] = ("png", "svg", "pdf"),
               scale: float = 2.0) -> list[Path]:
    """Write ``chart`` as ``path.<format>`` for each format with vl-convert (offline; PNG at ``scale`` times
    the chart's size for print). Returns the paths written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        if fmt not in ("png", "svg", "pdf", "html", "json"):
            raise ValueError(f"unknown format {fmt!r}: use png, svg, pdf, html or json")
        target = path.with_suffix(f".{fmt}")
        kwargs = {"scale_factor": scale} if fmt == "png" else {}
        if fmt == "html":
            kwargs = {"inline": True}  # Vega inside the file: it opens offline
        chart.save(str(target), **kwargs)
        out.append(target)
    return out
