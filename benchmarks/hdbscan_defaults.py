"""How HDBSCAN's defaults were chosen: a sweep on the bundled corpus (development set) and Banking77 (held out).

    .venv/bin/python benchmarks/hdbscan_defaults.py [--skip-banking77]

For each data set, the conversations' (utterances') text is embedded with the bundled all-MiniLM-L6-v2, then
HDBSCAN runs on the raw 384-d embeddings and on a 5-D UMAP reduction (n_neighbors 15, min_dist 0, cosine),
over min_cluster_size x min_samples x selection method. Prints clusters, the unclustered share, NMI and ARI
(x100) against the known labels (sub-categories for the bundled corpus, intents for Banking77); noise counts
as one group, as it is shown to users. k-means with the default k is printed first for reference.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import numpy as np  # noqa: E402

import clio_lab  # noqa: E402
from clio_lab.clustering import default_min_cluster_size  # noqa: E402
from clio_lab.evaluate import cluster_scores  # noqa: E402
from clio_lab.facets import user_text  # noqa: E402
from clio_lab.projection import umap_reduce  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BANKING77 = ROOT.parent / "shared" / "datasets" / "banking77" / "test.csv"


def sweep(name: str, X: np.ndarray, truth: list[str]) -> None:
    import hdbscan

    n = len(X)
    km = clio_lab.cluster(X, cache=None)
    s = cluster_scores(truth, km.labels)
    print(f"{name}: n={n}; k-means default k={km.n_clusters}: NMI {100 * s['nmi']:.1f} ARI {100 * s['ari']:.1f}")
    spaces = {"raw 384-d": X.astype(np.float64), "5-D UMAP": umap_reduce(X, n_components=5).astype(np.float64)}
    default = default_min_cluster_size(n)
    for space, Z in spaces.items():
        for mcs in sorted({5, 10, default, max(5, n // 100)}):
            for ms in (None, 5):
                for sel in ("eom", "leaf"):
                    lab = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms,
                                          cluster_selection_method=sel).fit_predict(Z)
                    s = cluster_scores(truth, lab)
                    mark = "  <- default" if (space, mcs, ms, sel) == ("5-D UMAP", default, 5, "eom") else ""
                    print(f"  {space:9} min_cluster_size={mcs:<3} min_samples={ms!s:4} {sel:4}: "
                          f"{lab.max() + 1:4} clusters, {(lab == -1).mean():4.0%} unclustered, "
                          f"NMI {100 * s['nmi']:5.1f} ARI {100 * s['ari']:5.1f}{mark}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-banking77", action="store_true")
    args = ap.parse_args()
    convs = clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl")
    X = clio_lab.embed([user_text(c) for c in convs], cache=None)
    sweep("bundled corpus (development)", X, [c.metadata["subtopic"] for c in convs])
    if not args.skip_banking77 and BANKING77.is_file():
        import csv

        with BANKING77.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        X = clio_lab.embed([r["text"] for r in rows], cache=None)
        sweep("Banking77 test (held out)", X, [r["category"] for r in rows])
    print(f"\ndefault min_cluster_size = max(5, round(sqrt(n) / 4)); e.g. n=100,000 -> "
          f"{max(5, round(math.sqrt(100_000) / 4))}")


if __name__ == "__main__":
    main()
