"""The local model's facet step on the bundled corpus, cold cache, with re-asks right after their first attempt
(before 2026-12-07) and behind the first attempts (today), interleaved in one process.

    .venv/bin/python benchmarks/local_calls.py [--rounds 2] [--limit 200]

The in-process model answers one call at a time; the facet step sorts its tasks so that neighbours share worked
examples, whose KV cache llama.cpp reuses. A re-ask (other worked examples) asked at once breaks that order twice:
its own prompt shares only the fixed examples, and so does the next task's. Prints per round the seconds, calls,
re-asks, failures and a hash of the answers (the same answers either way), and the best of each setting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.facets import extract_facets  # noqa: E402
from clio_lab.llm import runner  # noqa: E402
from clio_lab.llm.local import load_llama  # noqa: E402
from clio_lab.llm.native import cpu_summary  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "datasets" / "clio_demo.jsonl"


def facet_step(convs, embedder, reasks_last: bool) -> dict:
    runner.LOCAL_REASKS_LAST = reasks_last
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        res = extract_facets(convs, llm=clio_lab.LLM(), cache=cache, progress=False, embedder=embedder)
        seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "calls": res.stats.calls, "re-asks": res.stats.retries,
            "failed": len(res.failures),
            "answers": hashlib.sha256(json.dumps(res.values).encode()).hexdigest()[:12]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    convs = list(clio_lab.load_conversations(DEMO, limit=args.limit))
    embedder = clio_lab.get_embedder(None)
    clio_lab.embed([c.messages[0].content for c in convs], embedder, cache=None)  # loaded before the clocks
    load_llama()
    print(f"{len(convs)} conversations; {cpu_summary()}, {os.cpu_count()} cores, {platform.python_version()}")
    print("| round | re-asks | seconds | calls | re-asks made | failed | answers |\n|---|---|---|---|---|---|---|")
    best: dict[str, float] = {}
    for r in range(1, args.rounds + 1):
        for label, last in (("at once (before)", False), ("after the first attempts", True)):
            out = facet_step(convs, embedder, last)
            best[label] = min(best.get(label, float("inf")), out["seconds"])
            print(f"| {r} | {label} | {out['seconds']} | {out['calls']} | {out['re-asks']} | {out['failed']} | "
                  f"{out['answers']} |", flush=True)
    before, after = best["at once (before)"], best["after the first attempts"]
    print(f"\nbest: {before} s before, {after} s after: {before / after:.2f}x")


if __name__ == "__main__":
    main()
