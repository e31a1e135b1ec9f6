"""How many nodes the extractive tree's top level should hold: each rule's top level against the known top categories.

    .venv/bin/python benchmarks/tree_top.py [--split dev|test]

The base clusters are the pipeline's (the space ``run_pipeline`` makes with the local model from the users' text,
the default k). The parents are cuts of one Ward dendrogram of the base centres (clio_lab/extractive.py), either
of their plain centres (before 2026-12-06) or of their centres measured from the middle of the space
(``centred_centroids``, today's). The rules differ in how many nodes the top level keeps:

- ``geometric``: about 1.5 sqrt(k) nodes (the paper-style default, ``level_sizes``);
- ``gated`` (today's extractive default with centred centres, ``clio_lab.extractive.top_size``): the dendrogram
  cut where it stops joining related clusters (cosine of two centres more than ``GATE_Z`` standard deviations
  above the mean of all pairs), at least the geometric size and at most ``TOP_MAX``;
- ``no grouping``: the base clusters themselves (what a top level gains over them, if anything).

Per rule: the top level's nodes, NMI and ARI against the known top categories (15 on every set), and the largest
node's share of the conversations. The split is naming_quality.py's: ``dev`` (five 200-conversation synthetic
corpora, seeds 101-109, and 2,000 synthetic conversations, seeds 101 and 103) is where GATE_Z and TOP_MAX were
chosen; ``test`` (the bundled corpus and synthetic seed 202 at 2,000) is what BENCHMARKS.md reports. No LLM is
called: the grouping uses the users' text only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import clio_lab  # noqa: E402
from clio_lab.embed_input import embed_conversations  # noqa: E402
from clio_lab.extractive import TOP_MAX, centred_centroids, centroids, gated_size, top_size  # noqa: E402
from clio_lab.hierarchy import level_sizes  # noqa: E402


def sets(split: str) -> dict[str, dict]:
    from naming_quality import LOADERS

    from clio_lab.synthetic import generate_corpus

    if split == "test":
        return {"bundled corpus (200)": LOADERS["demo"]("test", 200),
                "synthetic seed 202 (2,000)": LOADERS["synthetic"]("test", 2000)}
    out = {}
    for seed in (101, 103, 105, 107, 109):
        convs = list(clio_lab.load_conversations(generate_corpus(200, seed=seed)))
        out[f"synthetic seed {seed} (200)"] = {"convs": convs, "top": [c.metadata["topic"] for c in convs]}
    out["synthetic seeds 101+103 (2,000)"] = LOADERS["synthetic"]("dev", 2000)
    return out


def main() -> None:
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--cache-dir", default=None, help="default: clio_lab's cache folder")
    args = ap.parse_args()
    cache = clio_lab.Cache(args.cache_dir) if args.cache_dir else "default"
    embedder = clio_lab.get_embedder(None)
    print(f"split {args.split}; TOP_MAX {TOP_MAX}")
    print("| set (k) | rule | top nodes | NMI | ARI | largest node |")
    print("|---|---|---|---|---|---|")
    for name, data in sets(args.split).items():
        convs = data["convs"]
        X = embed_conversations(convs, [None] * len(convs), embedder, embed_on="text", cache=cache).X
        labels = clio_lab.cluster(X, cache=cache).labels
        ids = sorted(int(c) for c in set(labels.tolist()) if c >= 0)
        top = np.array(data["top"])
        keep = labels >= 0
        row_of = {c: i for i, c in enumerate(ids)}
        least = level_sizes(len(ids))[-1]
        for centres in ("plain", "centred"):
            C = centroids(X, labels, ids) if centres == "plain" else centred_centroids(X, labels, ids)
            Z = linkage(C, method="ward")
            rules = {"geometric": least, "gated": gated_size(C, least) if centres == "plain" else
                     top_size(X, labels, ids, least=least)}
            if centres == "centred":
                rules["no grouping"] = len(ids)
            for rule, n in rules.items():
                groups = fcluster(Z, n, criterion="maxclust") if n < len(ids) else np.arange(len(ids))
                L = np.array([groups[row_of[int(c)]] for c in labels[keep]])
                nmi = 100 * normalized_mutual_info_score(top[keep], L)
                ari = 100 * adjusted_rand_score(top[keep], L)
                largest = 100 * np.bincount(L).max() / len(L)
                tag = rule if rule == "no grouping" else f"{rule}, {centres} centres"
                print(f"| {name} ({len(ids)}) | {tag} | {len(set(L.tolist()))} | {nmi:.1f} | {ari:.1f} | "
                      f"{largest:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
