"""Trends over time: each cluster's (or facet value's) share of the conversations per day, week or month.

The paper shows how usage shifts between periods; a period is a smaller crowd than the whole corpus, so the
run's aggregation thresholds hold per period and per cell: a cluster with fewer than ``min_conversations``
conversations (or ``min_users`` distinct users) in a period shows ``"< 10"``, not its count or share. When a
period hides exactly one cell, the period's total and the other cells would give it away (total minus the
shown cells), so the smallest shown cell is hidden with it (complementary suppression, the usual rule of
statistical disclosure control). Withheld clusters keep their release-step name ("Other (withheld)").

    >>> df = clio_lab.trends(run, level=-1, freq="M")  # doctest: +SKIP
    >>> clio_lab.charts.trend_chart(df)                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .release import WITHHELD_NAME

# pandas' period aliases a user may give, by the names people use
FREQS = {"D": "D", "day": "D", "W": "W", "week": "W", "M": "M", "month": "M", "Q": "Q", "quarter": "Q",
         "Y": "Y", "year": "Y"}
WITHHELD_GROUP = -2  # the group of every withheld cluster's conversations (-1 is the unclustered group)
FREQ_WORDS = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
HIDDEN_COUNT = "below the thresholds"
HIDDEN_USERS = "too few users"
HIDDEN_COMPLEMENT = "hidden so that another hidden cell cannot be worked out"


def trends(run: Any, *, level: int = -1, facet: str | None = None, freq: str = "M",
           min_conversations: int | None = None, min_users: int | None = None) -> pd.DataFrame:
    """Conversations per period and cluster of ``level`` (or per value of ``facet``), thresholds applied.

    Args:
        run: a :class:`~clio_lab.pipeline.PipelineResult` or a saved run (:func:`clio_lab.load_run`); its
            conversations need ``created_at``.
        level: the tree level (0 = base clusters, -1 = the top level).
        facet: a column of ``run.to_frame()`` (a facet such as ``"language"``) to count instead of clusters.
        freq: ``"D"``, ``"W"``, ``"M"``, ``"Q"`` or ``"Y"`` (or ``"day"``, ``"week"``, ...).
        min_conversations, min_users: per-cell thresholds; by default the run's own.

    Returns:
        One row per period and group: ``period`` (its start), ``group`` (cluster index or facet value),
        ``name``, ``conversations`` and ``users`` (``<NA>`` where hidden), ``share`` of the period's
        conversations (NaN where hidden), ``shown``, ``display`` (the count, or ``"< 10"``), ``hidden_why``
        and ``period_total``. ``df.attrs["undated"]`` counts conversations with no ``created_at``.
    """
    if freq not in FREQS:
        raise ValueError(f"freq={freq!r}: use one of {sorted(set(FREQS))}")
    frame = run.to_frame()
    if "created_at" not in frame or frame["created_at"].isna().all():
        raise ValueError("trends need each conversation's created_at, and no conversation of this run has one "
                         "(load_conversations reads it from the 'created_at' field or column)")
    thresholds = (run.privacy().get("thresholds") or {})
    min_c = int(min_conversations if min_conversations is not None else thresholds.get("min_conversations") or 1)
    min_u = int(min_users if min_users is not None else thresholds.get("min_users") or 1)
    when = pd.to_datetime(frame["created_at"], utc=True)
    dated = when.notna().to_numpy()
    if facet is not None:
        if facet not in frame:
            raise KeyError(f"facet {facet!r} is not a column of the run's conversations; it has "
                           f"{sorted(c for c in frame.columns if not c.startswith('level_'))}")
        values = frame[facet]
        withheld = frame["withheld"].to_numpy() if "withheld" in frame else np.zeros(len(frame), dtype=bool)
        group = np.array([WITHHELD_NAME if w else ("none" if pd.isna(v) else str(v))
                          for v, w in zip(values, withheld, strict=True)], dtype=object)
        name = group
    else:
        tree = run.hierarchy
        if tree is None:
            raise ValueError("this run has no tree; trends by cluster need one (or give facet=...)")
        lvl = level % tree.n_levels
        name = frame[f"level_{lvl}_name"].to_numpy()
        # withheld clusters are one pool in a period, as in the tree's "Other (withheld)" node
        group = np.where(name == WITHHELD_NAME, WITHHELD_GROUP, frame[f"level_{lvl}"].to_numpy())
    users = frame["user_id"].to_numpy() if "user_id" in frame and frame["user_id"].notna().any() else None
    period = when[dated].dt.tz_localize(None).dt.to_period(FREQS[freq]).dt.start_time
    cells = pd.DataFrame({"period": period.to_numpy(), "group": group[dated], "name": name[dated]})
    if users is not None:
        cells["user"] = users[dated]
    agg = {"conversations": ("name", "size")}
    if users is not None:
        agg["users"] = ("user", "nunique")
    out = cells.groupby(["period", "group", "name"], sort=True).agg(**agg).reset_index()
    if users is None:
        out["users"] = pd.NA
    out["period_total"] = out.groupby("period")["conversations"].transform("sum")
    out["hidden_why"] = None
    out.loc[out["conversations"] < min_c, "hidden_why"] = HIDDEN_COUNT
    if users is not None:
        out.loc[out["hidden_why"].isna() & (out["users"] < min_u), "hidden_why"] = HIDDEN_USERS
    for _, rows in out.groupby("period"):
        hidden = rows["hidden_why"].notna()
        if hidden.sum() == 1 and (~hidden).any():
            out.loc[rows.loc[~hidden, "conversations"].idxmin(), "hidden_why"] = HIDDEN_COMPLEMENT
    out["shown"] = out["hidden_why"].isna()
    out["share"] = (out["conversations"] / out["period_total"]).where(out["shown"])
    out["display"] = [str(c) if s else (f"< {min_c}" if why == HIDDEN_COUNT else "hidden")
                      for c, s, why in zip(out["conversations"], out["shown"], out["hidden_why"], strict=True)]
    out["conversations"] = out["conversations"].astype("Int64").where(out["shown"])
    out["users"] = pd.array(out["users"], dtype="Int64")
    out["users"] = out["users"].where(out["shown"])
    # a period whose every cell is hidden shows no total either
    any_shown = out.groupby("period")["shown"].transform("any")
    out["period_total"] = out["period_total"].astype("Int64").where(any_shown)
    out = out[["period", "group", "name", "conversations", "users", "share", "shown", "display", "hidden_why",
               "period_total"]]
    out.attrs.update({"undated": int((~dated).sum()), "freq": FREQS[freq], "min_conversations": min_c,
                      "min_users": min_u, "by": facet or f"level {lvl}"})
    return out
