"""Clustering quality on Banking77 (test split, 77 intents) beside the published figures.

    .venv/bin/python benchmarks/banking77.py [--seeds 5] [--llm-per-intent 10]

Prints ACC / NMI / ARI (x100, mean over seeds) for:
  - raw utterances embedded with the bundled all-MiniLM-L6-v2, then k-means (k = 77), on all 3,080;
  - HDBSCAN on the same embeddings with clio_lab's defaults (a 5-D UMAP reduction first; 5 seeds), and on the
    raw 384-d embeddings with the old default, for contrast (noise counted as its own group, as it is shown);
  - the local LLM's request facet embedded, then k-means, on a per-intent subsample (the local model runs at
    about one utterance a second on 2 cores), beside raw text and "both" on the same subsample.
The data is ../shared/datasets/banking77/test.csv; its SOURCE.md has the published figures. Nothing here is
tuned to these labels: every setting is clio_lab's default.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.evaluate import cluster_scores  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77" / "test.csv"
PUBLISHED = {  # from SOURCE.md beside the data (ACC, NMI, ARI)
    "k-means on all-MiniLM-L6-v2 (5 seeds)": (60.3, 78.6, 48.4),
    "k-means on all-mpnet-base-v2": (64.3, 81.3, 54.1),
    "IDAS (LLM summaries, then k-means)": (67.3, 82.9, 57.5),
    "ClusterLLM": (71.2, 85.2, None),
}


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def kmeans_scores(X: np.ndarray, truth: list[str], k: int, seeds: int) -> dict[str, float]:
    runs = [cluster_scores(truth, clio_lab.cluster(X, k=k, random_state=s, cache=None).labels) for s in range(seeds)]
    return {m: round(100 * float(np.mean([r[m] for r in runs])), 1) for m in ("acc", "nmi", "ari")}


def subsample(truth: list[str], per_intent: int) -> list[int]:
    seen: dict[str, int] = {}
    keep = []
    for i, label in enumerate(truth):
        if seen.get(label, 0) < per_intent:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--llm-per-intent", type=int, default=10, help="0 skips the local-LLM rows")
    ap.add_argument("--cache-dir", default=None, help="cache for the LLM facets (default: the user's cache)")
    args = ap.parse_args()
    texts, truth = load(args.data)
    k = len(set(truth))
    rows = []
    X = clio_lab.embed(texts, cache=None)
    rows.append({"what": f"raw utterances, k-means k={k}", "n": len(texts), **kmeans_scores(X, truth, k, args.seeds)})
    hd = [clio_lab.cluster(X, method="hdbscan", random_state=s, cache=None) for s in range(args.seeds)]
    scores = [cluster_scores(truth, h.labels) for h in hd]
    rows.append({"what": f"raw utterances, HDBSCAN defaults (5-D UMAP; mean {np.mean([h.n_clusters for h in hd]):.0f} "
                         f"clusters, {np.mean([h.n_noise for h in hd]) / len(texts):.0%} unclustered, counted as "
                         "one group)",
                 "n": len(texts), **{m: round(100 * float(np.mean([r[m] for r in scores])), 1)
                                      for m in ("acc", "nmi", "ari")}})
    raw = clio_lab.cluster(X, method="hdbscan", cache=None, reduce_dims=None, min_cluster_size=max(5, len(X) // 100))
    rows.append({"what": f"raw utterances, HDBSCAN on raw 384-d, min_cluster_size n/100, min_samples 5 ("
                         f"{raw.n_clusters} clusters, {raw.n_noise} unclustered)", "n": len(texts),
                 **{m: round(100 * v, 1) for m, v in cluster_scores(truth, raw.labels).items() if m != "v_measure"}})
    if args.llm_per_intent:
        idx = subsample(truth, args.llm_per_intent)
        sub_texts, sub_truth = [texts[i] for i in idx], [truth[i] for i in idx]
        convs = [clio_lab.Conversation(id=str(i), messages=[clio_lab.Message(role="user", content=texts[i])])
                 for i in idx]
        start = time.perf_counter()
        facets = clio_lab.extract_facets(convs, cache=args.cache_dir or "default", progress=False)
        seconds = time.perf_counter() - start
        summaries = facets.values["request"]
        failed = sum(s is None for s in summaries)
        summary_texts = [s or t for s, t in zip(summaries, sub_texts, strict=True)]  # failed: fall back to text
        for name, items in (("raw utterances", sub_texts), ("local-LLM request summaries", summary_texts),
                            ("summary + utterance", [f"{s}\n{t}" for s, t in zip(summary_texts, sub_texts, strict=True)])):
            rows.append({"what": f"{name}, k-means k={k}", "n": len(idx),
                         **kmeans_scores(clio_lab.embed(items, cache=None), sub_truth, k, args.seeds)})
        rows[-2]["note"] = f"{failed} summaries failed validation (their utterance used); facets took {seconds:.0f} s"
    for row in rows:
        print(json.dumps(row))
    for name, (acc, nmi, ari) in PUBLISHED.items():
        print(json.dumps({"published": name, "acc": acc, "nmi": nmi, "ari": ari}))


if __name__ == "__main__":
    main()
