"""Privacy auditor against hand labels: does it withhold the cluster texts that identify someone?

    .venv/bin/python benchmarks/auditor_agreement.py [--model clio_local/gemma-3-270m] [--min-score 3]

``benchmarks/data/audit_labels.jsonl`` holds 30 cluster names and descriptions labelled by hand on the paper's
1-5 scale (none of them is one of the prompt's worked examples): 16 harmless (4-5), 14 that name a person,
contact details, an address, an id or a small organisation (1-2). Caveat: the labelled texts and the prompt's
examples were written by the same hand, in the same style, which flatters the auditor. A second set,
``audit_demo_clusters.jsonl``, holds the 17 names and descriptions the local model wrote for the bundled
corpus in one `make demo` run (keyword fallbacks included), all read and labelled harmless (5): there, every
withheld cluster is a false alarm that costs the analyst a cluster. A cluster should be withheld when its
label is below ``--min-score``; the auditor withholds it when its score is below, or it cannot rate it
(it fails closed). A third set, ``audit_heldout_names.jsonl``, was never looked at while the auditor's prompt
and examples were written: the 167 names and descriptions that the extractive method gives the held-out
clusters of `naming_quality.py --split test` (89 of synthetic seed 202, 78 of Banking77's test.csv; the cached
local-model facets of 2026-12-07), all read and labelled harmless (5); some name large brands (Apple Pay,
American Express, Visa), none a person or a small group. There every withheld text is a false alarm, and the
texts withheld are printed. Prints agreement (the paper: 98% on 1,237 examples), the confusion counts, each
label's scores, and time per cluster. Runs with no cache, so every figure is a fresh model call.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from clio_lab import LLM
from clio_lab.auditor import audit_clusters
from clio_lab.hierarchy import Hierarchy, Node

DATA = Path(__file__).resolve().parent / "data"
SETS = ("audit_labels.jsonl", "audit_demo_clusters.jsonl", "audit_heldout_names.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="LiteLLM model name (default: the local model)")
    ap.add_argument("--min-score", type=int, default=3)
    ap.add_argument("--sets", default=",".join(SETS), help="files of benchmarks/data, comma-separated")
    args = ap.parse_args()
    for name in args.sets.split(","):
        evaluate(name, args)


def evaluate(set_name: str, args: argparse.Namespace) -> None:
    path = DATA / set_name
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    nodes = {f"0.{i}": Node(f"0.{i}", 0, i, it["name"], it["description"], 1, "llm") for i, it in enumerate(items)}
    tree = Hierarchy(nodes, np.arange(len(items)))
    llm = LLM(model=args.model) if args.model else LLM()
    start = time.perf_counter()
    audit = audit_clusters(tree, llm=llm, cache=None, min_score=args.min_score, progress=False)
    seconds = time.perf_counter() - start
    withheld = audit.withheld()
    tp = fp = tn = fn = 0
    by_label: dict[int, list[str]] = {}
    for i, it in enumerate(items):
        s = audit.scores[f"0.{i}"]
        should, did = it["label"] < args.min_score, f"0.{i}" in withheld
        tp += should and did
        fn += should and not did
        fp += did and not should
        tn += not should and not did
        by_label.setdefault(it["label"], []).append(str(s.score) if s.score else "failed")
    n = len(items)
    print(f"\n{set_name}: model {llm.model}, min score {args.min_score}, {n} labelled cluster texts, "
          f"{seconds / n:.2f} s per cluster")
    print(f"agreement: {100 * (tp + tn) / n:.1f}% (paper: 98%)")
    print(f"identifying texts withheld: {tp}/{tp + fn}; harmless texts withheld: {fp}/{fp + tn}; "
          f"failed to rate: {sum(1 for s in audit.scores.values() if s.status == 'failed')}")
    for label in sorted(by_label):
        print(f"  label {label}: scores {', '.join(by_label[label])}")
    for i, it in enumerate(items):
        if it["label"] >= args.min_score and f"0.{i}" in withheld:
            s = audit.scores[f"0.{i}"]
            print(f"  false alarm ({s.score if s.score else 'failed'}): {it['name']!r}; reason: {s.reason!r}")
    print("histogram:", audit.histogram())


if __name__ == "__main__":
    main()
