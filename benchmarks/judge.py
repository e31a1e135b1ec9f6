"""The LLM judge on a real run: its checks on the run's tree beside their controls, and on the same tree with
the items shuffled across clusters (a tree known to be wrong). A judge worth reading scores the real tree
well above both.

    .venv/bin/python benchmarks/judge.py [--model clio_local/gemma-3-270m] [--items 40]

Runs the demo pipeline first (cached after `make demo`).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="LiteLLM model name for the judge (default: the local model)")
    ap.add_argument("--items", type=int, default=40)
    args = ap.parse_args()
    convs = clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl")
    result = clio_lab.run_pipeline(convs, progress=False)
    texts = list(result.facets.values["request"])
    shuffled = random.Random(0).sample(texts, len(texts))
    for name, items in (("the run's tree", texts), ("items shuffled across clusters", shuffled)):
        start = time.perf_counter()
        report = clio_lab.judge_hierarchy(result.hierarchy, items, n_items=args.items, llm=args.model,
                                          progress=False)
        print(f"\n{name}: {report.stats.calls} calls, {time.perf_counter() - start:.0f} s")
        print(report.summary().to_string(index=False))


if __name__ == "__main__":
    main()
