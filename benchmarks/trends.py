"""Do `clio_lab.trends` shares follow a planted shift? Measured on a synthetic corpus whose dates are redrawn.

    .venv/bin/python benchmarks/trends.py [--n 3000] [--seed 3] [--embedder minilm|hashing]

``generate_corpus(n, varied=True)`` spreads conversations evenly over 12 months; here each conversation's month
is redrawn so that one topic's share rises from 2% to 20% over the year, one falls from 20% to 2%, and the
rest share what is left evenly. The pipeline then runs with no model call at all (embedding the text, k-means,
keyword names and tree, no audit: nothing here depends on the LLM), and `trends(run, level=..., freq="M")` is
compared with the truth at every level of the tree: each true topic is followed through the cluster that holds
most of its conversations, whose shown monthly share is set against the topic's true monthly share (the
planted weights give the true shares only roughly, since topics differ in size: they are counted, not assumed).
Reported per level: the cells the thresholds hid, the two planted topics' shares in January and December and
their correlations, the mean correlation over every topic, and how pure the followed clusters are.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import numpy as np
import pandas as pd

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.embeddings import HashingEmbedder  # noqa: E402
from clio_lab.synthetic import generate_corpus  # noqa: E402


def redate(records: list[dict], rising: str, falling: str, seed: int) -> None:
    """Redraw each record's month: ``rising``'s share goes 2% -> 20% over 12 months, ``falling``'s 20% -> 2%."""
    rng = random.Random(seed)
    topics = sorted({r["metadata"]["topic"] for r in records})
    others = len(topics) - 2
    weights = {}
    for m in range(12):
        up, down = 0.02 + 0.18 * m / 11, 0.20 - 0.18 * m / 11
        weights[m] = {t: up if t == rising else down if t == falling else (1 - up - down) / others for t in topics}
    # P(month | topic) is proportional to P(topic | month) when months are equally large
    for r in records:
        t = r["metadata"]["topic"]
        w = [weights[m][t] for m in range(12)]
        m = rng.choices(range(12), weights=w)[0]
        r["created_at"] = f"2026-{m + 1:02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    args = ap.parse_args()

    records = generate_corpus(args.n, seed=args.seed, varied=True)
    topics = sorted({r["metadata"]["topic"] for r in records})
    rng = random.Random(args.seed)
    rising, falling = rng.sample(topics, 2)
    redate(records, rising, falling, args.seed)
    convs = clio_lab.load_conversations(records)
    embedder = HashingEmbedder() if args.embedder == "hashing" else None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        run = clio_lab.run_pipeline(convs, facets=(), embed_on="text", embedder=embedder, naming="keywords",
                                    hierarchy="keywords", audit=False, projection=False, cache=cache, progress=False)
    seconds = time.perf_counter() - start
    truth = pd.Series([r["metadata"]["topic"] for r in records], index=[r["id"] for r in records])
    frame = run.to_frame().set_index("id")
    topic_of = truth.reindex(frame.index)
    month = pd.to_datetime(pd.Series([r["created_at"] for r in records]), utc=True).dt.month.to_numpy()
    true_share = pd.crosstab(month, truth.to_numpy(), normalize="index")  # months x topics
    print(f"{len(convs):,} conversations, {len(topics)} topics, embedder {args.embedder}, default k and levels; "
          f"pipeline {seconds:.1f} s (no model call); rising {rising!r}, falling {falling!r}")
    print("\n| level | clusters | cells hidden | rising topic: true Jan -> Dec / its cluster's shown share | r | "
          "falling topic: true / shown | r | every topic: mean r | its cluster's purity |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lvl in range(run.hierarchy.n_levels):
        groups = frame[f"level_{lvl}"]
        df = clio_lab.trends(run, level=lvl, freq="M")
        hidden = int((~df["shown"]).sum())
        shown = df[df["shown"]].pivot_table(index=df["period"].dt.month, columns="group", values="share",
                                            aggfunc="sum").reindex(true_share.index)
        row, rs, purities = {}, [], []
        for t in topics:
            members = groups[topic_of == t]
            home = members.value_counts().index[0]  # the cluster holding most of the topic's conversations
            purities.append(float((topic_of[groups == home] == t).mean()))
            seen = shown[home].fillna(0.0).to_numpy() if home in shown else np.zeros(len(true_share))
            tr = true_share[t].to_numpy()
            r = float(np.corrcoef(tr, seen)[0, 1]) if seen.std() > 0 else float("nan")
            rs.append(r)
            row[t] = (tr, seen, r)
        cells = []
        for t in (rising, falling):
            tr, seen, r = row[t]
            cells += [f"{tr[0]:.1%} -> {tr[-1]:.1%} / {seen[0]:.1%} -> {seen[-1]:.1%}", f"{r:.2f}"]
        print(f"| {lvl} | {int(groups.nunique())} | {hidden} of {len(df)} | " + " | ".join(cells) +
              f" | {np.nanmean(rs):.2f} ({int(np.isnan(rs).sum())} nan) | {np.mean(purities):.0%} |")
    print("\nr: correlation over the 12 months between a topic's true share and the shown share of the cluster that "
          "holds most of it (hidden cells count as 0; nan where nothing of it is shown); purity: the share of that "
          "cluster's conversations that are the topic.")


if __name__ == "__main__":
    main()
