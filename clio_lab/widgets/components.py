"""The two anywidget components. They know nothing of models or runs: a tree of named, sized nodes, and points
with colour codes and hover texts. :mod:`clio_lab.widgets.explorer` feeds them from a run.

The JavaScript is bundled from ``js/src`` (``make js``) into ES modules committed under ``static/``: nothing
is fetched from the internet when a widget is shown, and installing the package needs no node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

STATIC = Path(__file__).resolve().parent / "static"

# Tableau 10, then 10 lighter companions (Vega's tableau20 order), then grey for the rest
CATEGORICAL = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
               "#9d755d", "#bab0ac", "#9ecae9", "#ffbf79", "#ff9d98", "#88d27a", "#83bcb6", "#f2cf5b",
               "#d6a5c9", "#fcbfd2", "#d8b5a5", "#79706e"]
OTHER_COLOUR = "#c8c8c8"
SEQUENTIAL = ["#f7fbff", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]


class ClusterTree(anywidget.AnyWidget):
    """A collapsible tree of clusters with a search box.

    ``tree``: a list of top nodes, each ``{"id", "name", "size", "description", "children": [...]}`` (plus
    optional ``"withheld": True`` to grey a node out). ``selected``: the selected node's id (``""`` for none);
    clicking a node sets it, and setting it from Python selects the node and opens its ancestors. ``query``:
    the search text (nodes whose name or description contains it, with their ancestors).
    """

    _esm = STATIC / "cluster_tree.js"
    _css = STATIC / "widgets.css"
    tree = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)

    def node_ids(self) -> list[str]:
        out: list[str] = []

        def walk(nodes: list[dict[str, Any]]) -> None:
            for n in nodes:
                out.append(n["id"])
                walk(n.get("children") or [])

        walk(self.tree)
        return out

    @traitlets.validate("selected")
    def _check_selected(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value and value not in self.node_ids():
            raise traitlets.TraitError(f"no node {value!r} in the tree")
        return value


def normalise(xy: np.ndarray) -> np.ndarray:
    """Points scaled into [-1, 1] on both axes with one factor (shapes keep their aspect), centred."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), not {xy.shape}")
    if not len(xy):
        return xy.astype(np.float32)
    if not np.isfinite(xy).all():
        raise ValueError("points must be finite (no NaN or infinity)")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    half = float((hi - lo).max()) / 2 or 1.0
    return ((xy - (lo + hi) / 2) / (half * 1.05)).astype(np.float32)


def encode_colours(values: Sequence[Any], *, max_categories: int = len(CATEGORICAL),
                   bins: int = len(SEQUENTIAL)) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """Colour codes per point, the palette and the legend for ``values``.

    Numbers with more than ``bins`` distinct values are binned into quantiles on a sequential palette; other
    values are categories, the most frequent first, the rest pooled as "other"; missing values are "none".
    """
    import pandas as pd

    s = pd.Series(list(values), dtype=object)
    missing = s.isna()
    numeric = pd.to_numeric(s[~missing], errors="coerce")
    if len(numeric) and numeric.notna().all() and numeric.nunique() > bins:
        edges = np.unique(np.quantile(numeric.astype(float), np.linspace(0, 1, bins + 1)))
        idx = np.clip(np.searchsorted(edges, numeric.astype(float), side="right") - 1, 0, len(edges) - 2)
        labels = [f"{edges[i]:.3g} – {edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        codes = np.full(len(s), len(labels), dtype=np.uint16)
        codes[np.flatnonzero(~missing.to_numpy())] = idx
        palette = [SEQUENTIAL[round(i * (len(SEQUENTIAL) - 1) / max(len(labels) - 1, 1))] for i in range(len(labels))]
    else:
        text = s[~missing].map(str)
        order = list(text.value_counts().index)
        if order and all(_is_number(v) for v in order):
            order = sorted(order, key=float)
        kept = order[:max_categories] if len(order) <= max_categories else order[: max_categories - 1]
        labels = list(kept) + (["other"] if len(order) > len(kept) else [])
        lookup = {v: i for i, v in enumerate(kept)}
        codes = np.full(len(s), len(labels), dtype=np.uint16)
        codes[np.flatnonzero(~missing.to_numpy())] = [lookup.get(v, len(kept)) for v in text]
        palette = [CATEGORICAL[i % len(CATEGORICAL)] for i in range(len(kept))] + \
            ([OTHER_COLOUR] if len(order) > len(kept) else [])
    if missing.any():
        labels.append("none")
        palette.append("#eeeeee")
    else:
        codes = np.minimum(codes, len(labels) - 1)
    counts = np.bincount(codes, minlength=len(labels))
    legend = [{"label": lab, "color": palette[i], "count": int(counts[i])} for i, lab in enumerate(labels)]
    return codes.astype(np.uint16), palette, legend


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


class ClusterMap(anywidget.AnyWidget):
    """Every point of a 2-D projection, drawn with WebGL (regl-scatterplot), coloured by a code per point.

    Points and codes travel as binary buffers (float32 / uint16), not JSON lists. ``labels``: the text shown
    when hovering a point. ``highlight``: indices selected from Python (the rest fade); ``selection``: the
    indices the user clicked or lassoed (shift + drag). Use :meth:`set_points` and :meth:`color_by`.

    Example:
        >>> m = ClusterMap.from_points(np.random.default_rng(0).normal(size=(100, 2)), ["a", "b"] * 50)
        >>> [item["label"] for item in m.legend]
        ['a', 'b']
    """

    _esm = STATIC / "cluster_map.js"
    _css = STATIC / "widgets.css"
    xy = traitlets.Bytes(b"").tag(sync=True)
    codes = traitlets.Bytes(b"").tag(sync=True)
    palette = traitlets.List(traitlets.Unicode()).tag(sync=True)
    legend = traitlets.List(traitlets.Dict()).tag(sync=True)
    legend_title = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    highlight = traitlets.List(traitlets.Int()).tag(sync=True)
    selection = traitlets.List(traitlets.Int()).tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)
    point_size = traitlets.Int(4).tag(sync=True)

    @classmethod
    def from_points(cls, xy: np.ndarray, values: Sequence[Any] | None = None, *, labels: Sequence[str] | None = None,
                    title: str = "", **kwargs: Any) -> ClusterMap:
        m = cls(**kwargs)
        m.set_points(xy, labels=labels)
        m.color_by([None] * len(m) if values is None else values, title=title)
        return m

    def __len__(self) -> int:
        return len(self.xy) // 8

    def points(self) -> np.ndarray:
        """The (normalised) points as an (n, 2) float32 array."""
        return np.frombuffer(self.xy, dtype=np.float32).reshape(-1, 2)

    def set_points(self, xy: np.ndarray, *, labels: Sequence[str] | None = None) -> None:
        pts = normalise(xy)
        if labels is not None and len(labels) != len(pts):
            raise ValueError(f"labels ({len(labels)}) must align with the points ({len(pts)})")
        with self.hold_sync():
            self.selection = []
            self.highlight = []
            self.xy = pts.tobytes()
            self.labels = ["" if v is None else str(v) for v in labels] if labels is not None else []
            self.codes = np.zeros(len(pts), dtype=np.uint16).tobytes()

    def color_by(self, values: Sequence[Any], *, title: str = "") -> None:
        """Colour the points by ``values`` (one per point): categories or binned numbers, with a legend."""
        if len(values) != len(self):
            raise ValueError(f"values ({len(values)}) must align with the points ({len(self)})")
        codes, palette, legend = encode_colours(values)
        with self.hold_sync():
            self.palette = palette
            self.legend = legend
            self.legend_title = title
            self.codes = codes.tobytes()

    def colour_codes(self) -> np.ndarray:
        return np.frombuffer(self.codes, dtype=np.uint16)

    @traitlets.validate("highlight", "selection")
    def _check_indices(self, proposal: dict[str, Any]) -> list[int]:
        n = len(self)
        bad = [i for i in proposal["value"] if not 0 <= i < n]
        if bad:
            raise traitlets.TraitError(f"point indices out of range 0..{n - 1}: {bad[:5]}")
        return list(proposal["value"])
