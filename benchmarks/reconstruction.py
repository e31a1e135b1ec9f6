"""Clio's supervised reconstruction accuracy on the bundled synthetic corpus, beside the paper's figure.

    .venv/bin/python benchmarks/reconstruction.py [--data datasets/clio_demo.jsonl] [--seeds 3]
                                                  [--embed-on text summary] [--k K] [--naming keywords]

The corpus carries its ground truth in each record's metadata (topic = 15 top categories, subtopic = 33,
language). For each setting the pipeline runs with clio_lab's defaults (local models; the user cache makes a
second run free) and this prints:

  - reconstruction accuracy (the paper's section 4.1): every base cluster is assigned the known top category
    most of its conversations carry; the share of conversations whose cluster's category is their own;
    overall and per language, beside chance (1 / categories) and the paper's 94% (chance 5%);
  - the same against the 33 sub-categories;
  - unsupervised scores: ACC (Hungarian), NMI and ARI of the base clusters against the sub-categories and of
    the tree's top level against the top categories.

Nothing is tuned to these labels; k is the default round(sqrt(n)).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.evaluate import cluster_scores, reconstruction_accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"accuracy": 0.94, "chance": 0.05, "per_language_min": 0.92}


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "datasets" / "clio_demo.jsonl"))
    ap.add_argument("--seeds", type=int, default=3, help="clustering seeds (facets are computed once)")
    ap.add_argument("--embed-on", nargs="+", default=["text", "summary"], choices=["text", "summary", "both"])
    ap.add_argument("--naming", default="llm", choices=["llm", "keywords"])
    ap.add_argument("--k", type=int, default=None, help="base clusters (default: clio_lab's round(sqrt(n)))")
    args = ap.parse_args()

    convs = clio_lab.load_conversations(args.data)
    meta = [c.metadata for c in convs]
    missing = [i for i, m in enumerate(meta) if not {"topic", "subtopic", "language"} <= set(m)]
    if missing:
        raise SystemExit(f"{args.data}: record {missing[0] + 1} has no topic/subtopic/language metadata; "
                         "this benchmark needs a corpus from clio_lab.synthetic")
    topic = [m["topic"] for m in meta]
    sub = [m["subtopic"] for m in meta]
    lang = [m["language"] for m in meta]
    print(f"corpus: {args.data}: {len(convs)} conversations, {len(set(topic))} top categories, "
          f"{len(set(sub))} sub-categories, languages {sorted(set(lang))}")
    print(f"paper (19,476 conversations, 20 categories): reconstruction {pct(PAPER['accuracy'])}%, "
          f"chance {pct(PAPER['chance'])}%, every language above {pct(PAPER['per_language_min'])}%\n")
    header = (f"{'embed on':8} {'seed':>4} {'k':>3} | {'recon top':>9} {'recon sub':>9} {'chance':>6} | "
              f"{'base~sub ACC':>12} {'NMI':>5} {'ARI':>5} | {'top~top ACC':>11} {'NMI':>5} | {'secs':>6}")
    print(header)
    print("-" * len(header))
    summary = []
    for on in args.embed_on:
        for seed in range(args.seeds):
            t = time.perf_counter()
            res = clio_lab.run_pipeline(convs, embed_on=on, random_state=seed, naming=args.naming, k=args.k,
                                        projection=False, progress=False)
            secs = time.perf_counter() - t
            labels = res.clustering.labels
            rec = reconstruction_accuracy(topic, labels, groups=lang)
            rec_sub = reconstruction_accuracy(sub, labels)
            base = cluster_scores(sub, labels)
            top = cluster_scores(topic, res.hierarchy.labels_at(-1))
            print(f"{on:8} {seed:>4} {res.clustering.n_clusters:>3} | {pct(rec['accuracy']):>9} "
                  f"{pct(rec_sub['accuracy']):>9} {pct(rec['chance']):>6} | {pct(base['acc']):>12} "
                  f"{pct(base['nmi']):>5} {pct(base['ari']):>5} | {pct(top['acc']):>11} {pct(top['nmi']):>5} | "
                  f"{secs:6.1f}")
            summary.append({"embed_on": on, "seed": seed, "reconstruction": rec, "reconstruction_sub": rec_sub,
                            "base_vs_sub": base, "top_vs_top": top, "top_level_size": len(res.hierarchy.top)})
    print("\nreconstruction accuracy by language (top categories):")
    for on in args.embed_on:
        rows = [s for s in summary if s["embed_on"] == on]
        langs = sorted(rows[0]["reconstruction"]["by_group"])
        means = {g: sum(r["reconstruction"]["by_group"][g]["accuracy"] for r in rows) / len(rows) for g in langs}
        n = {g: rows[0]["reconstruction"]["by_group"][g]["n"] for g in langs}
        print(f"  {on:8} " + "  ".join(f"{g} {pct(means[g])}% (n={n[g]})" for g in langs))
    print("\njson:", json.dumps([{k: v for k, v in s.items() if k != "reconstruction"} |
                                 {"recon_top": round(s["reconstruction"]["accuracy"], 4)} for s in summary]))


if __name__ == "__main__":
    main()
