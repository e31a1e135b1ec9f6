"""The Explorer: the cluster tree, the conversation map and a details panel, linked both ways in Python.

``clio_lab.explore(run)`` opens one on a live result or a saved run folder. Only what a run releases is
shown: members of withheld clusters are not drawn, a withheld cluster has no node (its conversations count
in an "Other (withheld)" node, greyed), and the conversation text appears on hover only when the run opted in
(``show_raw=True`` when it ran) and the call asks for it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from ..results import Run
from ..tree import Status, fold_echoes
from .components import ClusterMap, ClusterTree

# per-conversation columns that are not facets to colour by
_NOT_FACETS = {"id", "cluster", "x", "y", "embedded_from", "user_id", "text", "truncated", "created_at"}
MAX_CATEGORIES_FOR_BARS = 8


def _load(run: Run | str | Path) -> Run:
    if isinstance(run, str | Path):
        from ..runs import load_run

        return load_run(run)
    return run


class Explorer(W.VBox):
    """Tree, map and details of one run, linked: selecting a node highlights its conversations on the map and
    fills the details; lassoing points on the map shows their breakdown by cluster; the colour menu colours
    the map by the clusters of any level or by any facet.

    Args:
        run: a :class:`~clio_lab.pipeline.PipelineResult`, a :class:`~clio_lab.runs.SavedRun` or a run folder.
        show_raw: show each conversation's own text on hover. Only allowed when the run was made with
            ``show_raw=True`` (public or synthetic data); otherwise hovering shows the request summary.
        color_by: the initial colouring: ``"level_<i>"`` or a facet column (default: the top level).
        height: the map's height in pixels.
        trend_freq: the period of the selected cluster's trend in the details (``"D"``, ``"W"``, ``"M"``, ``"Q"``,
            ``"Y"``; shown when the conversations have ``created_at``), thresholds held per period as in
            :func:`clio_lab.trends`.
    """

    def __init__(self, run: Run | str | Path, *, show_raw: bool = False, color_by: str | None = None, height: int = 520,
                 trend_freq: str = "M"):
        run = _load(run)
        self.trend_freq = trend_freq
        self._trends: dict[int, Any] = {}
        frame = run.to_frame()
        clusters = run.clusters_frame()
        if run.hierarchy is None or not {"x", "y"} <= set(frame.columns):
            raise ValueError("the run has no hierarchy or no map; run it with hierarchy and projection on")
        if show_raw and "text" not in frame.columns:
            raise ValueError("this run did not opt in to raw text: run it with show_raw=True (or --allow-raw) "
                             "to show conversation text, and only for public or synthetic data")
        self.run = run
        shown = ~frame["withheld"].to_numpy(dtype=bool)  # members of withheld clusters are not drawn
        self.frame = frame[shown].reset_index(drop=True)
        self.clusters = clusters.set_index("id", drop=False)
        self.n_levels = int(clusters["level"].max()) + 1
        self.n_withheld = int((~shown).sum())
        hover_col = "text" if show_raw else ("request" if "request" in frame.columns else None)
        hover = (self.frame[hover_col].fillna("").map(str).tolist() if hover_col
                 else [""] * len(self.frame))

        self.tree = ClusterTree(tree=self._tree_nodes(fold_echoes(run.hierarchy.to_tree()["children"])))
        n = len(self.frame)
        self.map = ClusterMap(height=height, point_size=7 if n < 2_000 else 4 if n < 50_000 else 2)
        self.map.set_points(self.frame[["x", "y"]].to_numpy(), labels=hover)
        self.color_options = [(f"clusters, level {i}" + (" (top)" if i == self.n_levels - 1 else " (base)" if i == 0
                                                          else ""), f"level_{i}") for i in range(self.n_levels)]
        self.color_options += [(f"facet: {c}", c) for c in self.frame.columns
                               if c not in _NOT_FACETS and not c.startswith("level_") and self._colourable(c)]
        default = color_by or f"level_{self.n_levels - 1}"
        if default not in [v for _, v in self.color_options]:
            raise ValueError(f"color_by must be one of {[v for _, v in self.color_options]}, not {default!r}")
        self.color = W.Dropdown(options=self.color_options, value=default, description="Colour by",
                                layout=W.Layout(width="340px"))
        # the tree and the details keep their widths and the map takes what is left; where the notebook is too
        # narrow for all three (JupyterLab with its side bar open), the details move below instead of being cut
        self.details = W.HTML(layout=W.Layout(width="320px", flex="none", max_height=f"{height + 80}px",
                                              overflow="auto"))
        self.details.add_class("clio-details")
        self.tree.layout = W.Layout(width="300px", flex="none")
        self.map.layout = W.Layout(flex="1 1 360px", min_width="300px")

        self.color.observe(lambda change: self._recolour(change["new"]), names="value")
        self.tree.observe(lambda change: self._on_node(change["new"]), names="selected")
        self.map.observe(lambda change: self._on_points(change["new"]), names="selection")
        self._recolour(default)
        self._show_overview()
        note = (f"{len(self.frame):,} conversations shown"
                + (f"; {self.n_withheld:,} in withheld clusters are not drawn" if self.n_withheld else "")
                + ("; hover shows conversation text (the run opted in)" if show_raw else
                   "; hover shows the request summary"))
        super().__init__([W.HBox([self.color, W.HTML(f"<span style='color:#777'>{html.escape(note)}</span>")]),
                          W.HBox([self.tree, self.map, self.details], layout=W.Layout(flex_flow="row wrap"))])

    # ----------------------------------------------------------------------------------------- helpers
    def _tree_nodes(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": n["id"], "name": n["name"], "size": int(n["size"]), "description": n["description"],
                 "withheld": n["status"] != Status.SHOWN,
                 "children": self._tree_nodes(n.get("children") or [])} for n in nodes]

    def _colourable(self, column: str) -> bool:
        col = self.frame[column]
        if col.map(lambda v: isinstance(v, list | dict | np.ndarray)).any():
            return False
        n = col.nunique(dropna=True)
        if col.dtype.kind in "if":
            return n >= 1
        # text: a few repeated values (a language, a topic), not one free-text answer per conversation
        return 1 <= n <= min(40, max(2, len(col) // 2))

    def members(self, node_id: str) -> np.ndarray:
        """Indices of the map's points that belong to node ``node_id``."""
        row = self.clusters.loc[node_id]
        return np.flatnonzero(self.frame[f"level_{int(row['level'])}"].to_numpy() == int(row["index"]))

    def _recolour(self, column: str) -> None:
        if column.startswith("level_"):
            values = self.frame[f"{column}_name"].tolist()
            title = dict((v, k) for k, v in self.color_options)[column]
        else:
            values, title = self.frame[column].tolist(), column
        self.map.color_by(values, title=title)

    def _on_node(self, node_id: str) -> None:
        if not node_id:
            self.map.highlight = []
            self._show_overview()
            return
        idx = self.members(node_id)
        self.map.highlight = idx.tolist()
        self._show_node(node_id, idx)

    def _on_points(self, picked: list[int]) -> None:
        if not picked:
            if not self.tree.selected:
                self._show_overview()
            return
        sub = self.frame.iloc[picked]
        self.details.value = (f"<h4>{len(picked)} selected conversations</h4>"
                              + self._bars(sub[f"level_{self.n_levels - 1}_name"], "top-level category")
                              + self._bars(sub["level_0_name"], "base cluster") + self._facet_bars(sub))

    # ----------------------------------------------------------------------------------------- details
    def _bars(self, values, title: str) -> str:
        import pandas as pd

        # a binned number is categorical; a missing value counts as "none"
        counts = pd.Series(["none" if pd.isna(v) else str(v) for v in values]).value_counts()
        total = int(counts.sum()) or 1
        rows = "".join(
            f"<div style='display:flex;gap:6px;align-items:center;font-size:12px'>"
            f"<span style='flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap'>{html.escape(k)}</span>"
            f"<span style='display:inline-block;height:8px;width:{int(90 * v / total)}px;background:#4c78a8'></span>"
            f"<span style='width:3em;text-align:right;color:#666'>{v}</span></div>"
            for k, v in counts.head(MAX_CATEGORIES_FOR_BARS).items())
        more = len(counts) - MAX_CATEGORIES_FOR_BARS
        rows += f"<div style='color:#888;font-size:11px'>and {more} more</div>" if more > 0 else ""
        return f"<div style='margin:6px 0'><b style='font-size:12px'>{html.escape(title)}</b>{rows}</div>"

    def _facet_bars(self, sub) -> str:
        import pandas as pd

        out = []
        for c in [v for _, v in self.color_options if not v.startswith("level_")]:
            col = sub[c]
            if col.dtype.kind in "if" and col.nunique(dropna=True) > MAX_CATEGORIES_FOR_BARS:
                # numbers: five ranges over the whole run, so that two selections compare
                edges = np.unique(np.quantile(self.frame[c].dropna().astype(float), np.linspace(0, 1, 6)))
                col = pd.cut(col.astype(float), edges, include_lowest=True).map(
                    lambda iv: f"{iv.left:.4g} – {iv.right:.4g}" if iv == iv else None)
            out.append(self._bars(col, c))
        return "".join(out)

    def _show_node(self, node_id: str, idx: np.ndarray) -> None:
        row = self.clusters.loc[node_id]
        e = html.escape
        score = row.get("privacy_score")
        privacy = ("withheld: only the count is shown" if row["status"] == Status.WITHHELD else
                   "name withheld by the privacy auditor" if row["status"] == Status.NAME_WITHHELD else
                   f"released; privacy auditor score {int(score)}/5" if score == score and score is not None else
                   "released (not audited)")
        users = row.get("n_users")
        summaries = list(row["central_summaries"])[:4] if row["status"] == Status.SHOWN else []
        sub = self.frame.iloc[idx]
        self.details.value = (
            f"<h4 style='margin:4px 0'>{e(str(row['name']))}</h4>"
            f"<div style='color:#666;font-size:12px'>level {int(row['level'])} · {int(row['size'])} conversations"
            + (f" · {int(users)} users" if users == users and users is not None else "")
            + f" · named by {e(str(row['method']))}</div>"
            + ("<div style='font-size:12px;color:#a05a00'>Mixed: fewer than half of these conversations lie nearer "
               "this name than any other cluster's name; the description says what else they asked.</div>"
               if "mixed" in str(row["method"]) else "")
            + f"<p style='font-size:13px'>{e(str(row['description']))}</p>"
            f"<div style='font-size:12px'><b>Privacy:</b> {e(privacy)}</div>"
            + (("<div style='font-size:12px;margin-top:6px'><b>Summaries near the centre</b><ul style='margin:2px 0;"
                "padding-left:18px'>" + "".join(f"<li>{e(str(s))}</li>" for s in summaries) + "</ul></div>")
               if summaries else "")
            + self._trend(row)
            + (self._facet_bars(sub) if len(sub) else ""))

    def _trend(self, row) -> str:
        """The cluster's conversations per period (clio_lab.trends: a period below the thresholds shows
        "< 10"), for a released cluster of a run whose conversations have dates."""
        if row["status"] != Status.SHOWN or "created_at" not in self.frame or self.frame["created_at"].isna().all():
            return ""
        from ..trends import FREQ_WORDS, trends

        level = int(row["level"])
        if level not in self._trends:
            self._trends[level] = trends(self.run, level=level, freq=self.trend_freq)
        df = self._trends[level]
        mine = df[df["group"] == int(row["index"])]
        if mine.empty:
            return ""
        fmt = {"D": "%Y-%m-%d", "W": "%Y-%m-%d", "M": "%Y-%m", "Q": "%Y-%m", "Y": "%Y"}[df.attrs["freq"]]
        top = max(float(mine["share"].max()), 1e-9) if mine["shown"].any() else 1.0
        rows = "".join(
            f"<div style='display:flex;gap:6px;align-items:center;font-size:12px'>"
            f"<span style='width:6em;color:#666'>{p.strftime(fmt)}</span>"
            + (f"<span style='display:inline-block;height:8px;width:{int(90 * r['share'] / top)}px;"
               f"background:#4c78a8'></span>" if r["shown"] else "")
            + f"<span style='color:#666'>{html.escape(r['display'])}"
            + (f" ({r['share']:.0%})" if r["shown"] else "") + "</span></div>"
            for p, (_, r) in zip(mine["period"], mine.iterrows(), strict=True))
        return (f"<div style='margin:6px 0'><b style='font-size:12px'>Conversations per "
                f"{FREQ_WORDS[df.attrs['freq']]} (share of the period)</b>{rows}</div>")

    def _show_overview(self) -> None:
        withheld = (self.run.privacy().get("withheld") or {}).get("conversations")
        self.details.value = (
            f"<h4 style='margin:4px 0'>{len(self.frame):,} conversations</h4>"
            "<p style='font-size:12px;color:#555'>Click a cluster in the tree to highlight its conversations; "
            "shift + drag on the map to lasso some and see their breakdown.</p>"
            + (f"<div style='font-size:12px'>{int(withheld)} conversations are in withheld clusters.</div>"
               if withheld else "")
            + self._bars(self.frame[f"level_{self.n_levels - 1}_name"], "top-level categories"))


def explore(run: Run | str | Path, *, show_raw: bool = False, color_by: str | None = None, height: int = 520) -> Explorer:
    """Open the linked tree, map and details on a run (a result, a saved run or a run folder).

    Example:
        >>> clio_lab.explore("runs/demo")  # doctest: +SKIP
    """
    return Explorer(run, show_raw=show_raw, color_by=color_by, height=height)
