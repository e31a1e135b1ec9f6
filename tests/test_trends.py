"""Trends over time (clio_lab/trends.py): counts per period that add up, thresholds held per period and cell,
no hidden cell that the others give away, the same table from a saved run, and clear errors."""

from types import SimpleNamespace

import pandas as pd
import pytest

import clio_lab
from clio_lab import LLM
from clio_lab.cli import main
from clio_lab.runs import load_run
from clio_lab.trends import HIDDEN_COMPLEMENT, HIDDEN_COUNT, HIDDEN_USERS, trends


class TableRun:
    """Just what trends() reads of a run: a conversations frame, thresholds and a one-level tree."""

    def __init__(self, rows, min_conversations=10, min_users=1):
        self.frame = pd.DataFrame(rows, columns=["created_at", "level_0", "level_0_name", "user_id"])
        self.frame["withheld"] = False
        self.hierarchy = SimpleNamespace(n_levels=1)
        self.thresholds = {"min_conversations": min_conversations, "min_users": min_users}

    def to_frame(self):
        return self.frame

    def privacy(self):
        return {"thresholds": self.thresholds}


def rows(month, cluster, n, users=None):
    return [(f"2026-{month:02d}-03T10:00:00Z", cluster, f"cluster {cluster}", f"u{cluster}-{i % (users or n)}")
            for i in range(n)]


def test_a_cell_below_the_threshold_and_the_one_that_would_reveal_it_are_hidden():
    run = TableRun(rows(1, 0, 20) + rows(1, 1, 15) + rows(1, 2, 3) + rows(2, 0, 20) + rows(2, 1, 12))
    df = trends(run, level=0, freq="M").set_index(["period", "group"])
    jan, feb = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-01")
    assert df.loc[(jan, 0), "conversations"] == 20 and df.loc[(jan, 0), "display"] == "20"
    assert df.loc[(jan, 2), "hidden_why"] == HIDDEN_COUNT and df.loc[(jan, 2), "display"] == "< 10"
    # 38 in January minus the 20 shown would give the 3 away: the smallest shown cell goes too
    assert df.loc[(jan, 1), "hidden_why"] == HIDDEN_COMPLEMENT and pd.isna(df.loc[(jan, 1), "conversations"])
    assert pd.isna(df.loc[(jan, 2), "share"]) and df.loc[(jan, 0), "share"] == pytest.approx(20 / 38)
    assert df.loc[feb, "shown"].all() and df.loc[feb, "share"].sum() == pytest.approx(1.0)


def test_too_few_users_hides_a_cell_with_enough_conversations():
    run = TableRun(rows(3, 0, 30) + rows(3, 1, 30, users=2) + rows(3, 2, 25), min_users=5)
    df = trends(run, level=0).set_index("group")
    assert df.loc[1, "hidden_why"] == HIDDEN_USERS and df.loc[1, "display"] == "hidden"
    assert df.loc[2, "hidden_why"] == HIDDEN_COMPLEMENT and df.loc[0, "shown"]


def test_a_period_with_every_cell_hidden_shows_no_total():
    run = TableRun(rows(1, 0, 4) + rows(1, 1, 3) + rows(2, 0, 40))
    df = trends(run, level=0)
    jan = df[df["period"] == pd.Timestamp("2026-01-01")]
    assert not jan["shown"].any() and jan["period_total"].isna().all()
    assert df.attrs["undated"] == 0 and df.attrs["min_conversations"] == 10


def test_undated_conversations_are_counted_not_dropped_silently():
    run = TableRun(rows(1, 0, 20) + [(None, 0, "cluster 0", "x")] * 3)
    assert trends(run, level=0).attrs["undated"] == 3


@pytest.fixture
def dated_run(tmp_path, fake_llm, fake_embedder, demo_convs):
    convs = [c.model_copy(update={"user_id": f"u{i % 40}"}) for i, c in enumerate(demo_convs)]
    assert all(c.created_at for c in convs)
    res = clio_lab.run_pipeline(convs, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                cache=tmp_path / "c", k=10, min_conversations=4, min_users=3, progress=False)
    return res, res.save(tmp_path / "run")


def test_trends_of_a_real_run_add_up_and_hold_the_thresholds(dated_run):
    res, out = dated_run
    frame = res.to_frame()
    top = res.hierarchy.n_levels - 1
    df = clio_lab.trends(res, freq="Q")
    assert df.attrs["by"] == f"level {top}" and set(df.columns) >= {"period", "name", "share", "display"}
    truth = (frame.assign(period=frame["created_at"].dt.tz_localize(None).dt.to_period("Q").dt.start_time)
             .groupby(["period", f"level_{top}"]).size())
    shown = df[df["shown"]]
    assert len(shown) > 0
    for _, r in shown.iterrows():
        assert r["conversations"] == truth[(r["period"], r["group"])] >= 4 and r["users"] >= 3
    for _, period in df.groupby("period"):  # one hidden cell beside shown ones would be given away
        assert (~period["shown"]).sum() != 1 or not period["shown"].any()
    # a period's total is given where the period shows a cell, and it is all of that period's conversations
    totals = df.groupby("period")["period_total"].first()
    per_period = truth.groupby(level="period").sum()
    shows = df.groupby("period")["shown"].any()
    assert shows.any() and totals[shows].notna().all() and totals[~shows].isna().all()
    assert all(totals[p] == per_period[p] for p in totals[shows].index)
    # a saved run gives the same table
    pd.testing.assert_frame_equal(clio_lab.trends(load_run(out), freq="Q"), df, check_dtype=False)
    by_lang = clio_lab.trends(res, facet="meta_language", freq="Y")
    assert by_lang.attrs["by"] == "meta_language" and by_lang["period_total"].iloc[0] == len(frame)


def test_trend_chart_draws_shares_with_gaps_for_hidden_cells(dated_run, tmp_path):
    from clio_lab.charts import trend_chart

    df = clio_lab.trends(dated_run[0], level=0, freq="Q")
    spec = trend_chart(df).to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert spec["mark"]["type"] == "line" and values
    assert all(v["share"] is None or 0 < v["share"] <= 1 for v in values)
    # every cell below the thresholds: a chart that says so, and saves (an empty line chart has no size)
    hidden = df.assign(shown=False, share=None)
    chart = trend_chart(hidden)
    assert chart.to_dict()["mark"]["type"] == "text" and "cells hidden" in str(chart.to_dict())
    paths = clio_lab.charts.save_chart(chart, tmp_path / "trend")
    assert all(p.stat().st_size > 500 for p in paths)


def test_clear_errors(dated_run, fake_llm, fake_embedder, demo_convs, tmp_path):
    res, _ = dated_run
    with pytest.raises(ValueError, match="freq="):
        clio_lab.trends(res, freq="fortnight")
    with pytest.raises(KeyError, match="facet 'mood'"):
        clio_lab.trends(res, facet="mood")
    undated = [c.model_copy(update={"created_at": None}) for c in demo_convs[:40]]
    plain = clio_lab.run_pipeline(undated, llm=LLM(model="fake/m", prompt_style="completion"), embedder=fake_embedder,
                                  cache=tmp_path / "c2", k=4, progress=False)
    with pytest.raises(ValueError, match="created_at"):
        clio_lab.trends(plain)


def test_the_trends_command(dated_run, capsys, tmp_path):
    _, out = dated_run
    assert main(["trends", str(out), "--freq", "Q", "--level", "0", "--csv", str(tmp_path / "t.csv")]) == 0
    printed = capsys.readouterr().out
    assert "2026-01-01" in printed and "conversations per quarter and level 0" in printed
    assert len(pd.read_csv(tmp_path / "t.csv")) > 0
    assert main(["trends", str(tmp_path)]) == 2
    assert "not a clio_lab run folder" in capsys.readouterr().err
