"""Extend on Banking77: fit on one half, extend with the other, and compare with clustering the whole set.

    .venv/bin/python benchmarks/extend.py [--seeds 5] [--k 77]

Per seed, the 3,080 test utterances are split in two random halves. "fit" clusters half A (k-means, clio_lab's
``cluster``); :func:`clio_lab.extend.assign` puts half B into those clusters (nearest centroid, with the default
pooled radius, with one radius per cluster and with none); "whole" clusters all 3,080 at once with the same seed. Half B's
assignments are compared with the whole set's clustering of the same utterances (ARI, NMI between the two
partitions, unclustered items counted as one group), and both with the 77 true intents (ACC/NMI). Beside them: the
whole set clustered with another seed, against the first (how much two clusterings of the same data agree at all;
the ceiling for any extend). The embeddings are what ``run_pipeline`` clusters with the local model
(``embed_on="text"``: the utterance, bundled all-MiniLM-L6-v2). The default radius was chosen on
Banking77's train split (not this test split). "off-topic unclustered": the share of the bundled demo corpus
(200 conversations on other topics than banking) that the same assignment sends to "Unclustered".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from banking77 import DATA, load  # noqa: E402

import clio_lab  # noqa: E402
from clio_lab.evaluate import cluster_scores  # noqa: E402
from clio_lab.extend import assign  # noqa: E402
from clio_lab.facets import user_text  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "datasets" / "clio_demo.jsonl"


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"ari": 100 * adjusted_rand_score(a, b), "nmi": 100 * normalized_mutual_info_score(a, b)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--k", type=int, default=77)
    args = ap.parse_args()
    texts, truth = load(DATA)
    truth = np.array(truth)
    t0 = time.perf_counter()
    X = clio_lab.embed(texts, cache="default")
    print(f"{len(texts)} utterances embedded in {time.perf_counter() - t0:.1f} s (cached after the first run)")
    radii = {"default (0.99 of all fitted, pooled)": {}, "0.99 of each cluster's members": {"max_distance": "per-cluster"},
             "none": {"max_distance": None}}
    off_topic = [user_text(c) for c in clio_lab.load_conversations(DEMO)]
    X_off = clio_lab.embed(off_topic, cache="default")
    rows: dict[str, list[dict[str, float]]] = {}
    secs = {"cluster the whole set": [], "cluster half A": [], "assign half B": []}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        A, B = np.sort(order[: len(texts) // 2]), np.sort(order[len(texts) // 2:])
        t = time.perf_counter()
        whole = clio_lab.cluster(X, k=args.k, random_state=seed, cache=None).labels
        secs["cluster the whole set"].append(time.perf_counter() - t)
        other = clio_lab.cluster(X, k=args.k, random_state=seed + 100, cache=None).labels
        t = time.perf_counter()
        fit = clio_lab.cluster(X[A], k=args.k, random_state=seed, cache=None).labels
        secs["cluster half A"].append(time.perf_counter() - t)
        for name, kwargs in radii.items():
            t = time.perf_counter()
            got = assign(X[B], X[A], fit, **kwargs)
            off = assign(X_off, X[A], fit, **kwargs).n_unclustered / len(X_off)
            if name.startswith("default"):
                secs["assign half B"].append(time.perf_counter() - t)
            truth_scores = cluster_scores(truth[B], got.labels)
            rows.setdefault(f"extend, radius {name}", []).append(
                {**agreement(whole[B], got.labels), "acc": 100 * truth_scores["acc"],
                 "nmi_truth": 100 * truth_scores["nmi"], "unclustered": 100 * got.n_unclustered / len(B),
                 "off": 100 * off})
        truth_whole = cluster_scores(truth[B], whole[B])
        rows.setdefault("whole set, another seed (the ceiling)", []).append(
            {**agreement(whole[B], other[B]), "acc": 100 * cluster_scores(truth[B], other[B])["acc"],
             "nmi_truth": 100 * cluster_scores(truth[B], other[B])["nmi"], "unclustered": 0.0, "off": float("nan")})
        rows.setdefault("whole set (the reference)", []).append(
            {"ari": 100.0, "nmi": 100.0, "acc": 100 * truth_whole["acc"], "nmi_truth": 100 * truth_whole["nmi"],
             "unclustered": 0.0, "off": float("nan")})
    print(f"\nBanking77 test, {len(texts)} utterances, k = {args.k}, {args.seeds} seeds (mean), half B = "
          f"{len(texts) - len(texts) // 2} utterances\n")
    print("| half B clustered by | agreement with the whole set: ARI | NMI | vs true intents: ACC | NMI "
          "| unclustered | off-topic unclustered |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in rows.items():
        m = {key: float(np.mean([r[key] for r in rs])) for key in rs[0]}
        off = "" if np.isnan(m["off"]) else f"{m['off']:.1f}%"
        print(f"| {name} | {m['ari']:.1f} | {m['nmi']:.1f} | {m['acc']:.1f} | {m['nmi_truth']:.1f} | "
              f"{m['unclustered']:.1f}% | {off} |")
    print()
    for name, s in secs.items():
        print(f"{name}: {1000 * np.mean(s):.0f} ms")


if __name__ == "__main__":
    main()
