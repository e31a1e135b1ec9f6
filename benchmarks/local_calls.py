"""The order of the in-process model's calls, on the bundled corpus with a cold cache: the facet step and the
privacy audit, each setting interleaved with the others in one process.

    .venv/bin/python benchmarks/local_calls.py [--rounds 2] [--limit 200] [--settings arrival,prompt]

The in-process model answers one call at a time, and llama.cpp reuses the KV cache of the prefix that a prompt
shares with the prompt before it. Settings (``clio_lab.llm.runner``):
- ``at-once``: a re-ask is sent right after its failed attempt (before 2026-12-07);
- ``arrival``: a re-ask waits behind the first attempts, and the waiting calls are served as they came (the facet
  step sorts its tasks by their worked examples; the audit does not sort) (2026-12-07);
- ``prompt``: the waiting calls are served in their prompts' text order, first attempts before re-asks (today).

Prints per round and setting the seconds, calls, re-asks, failures and a hash of the answers (the same answers
whatever the order), then the best of each setting. The audit leg rates every named cluster of the tree that the
pipeline builds from the last facet leg's answers (no confirming second ask, so that every setting makes the same
calls).
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
from clio_lab.auditor import audit_clusters  # noqa: E402
from clio_lab.facets import extract_facets  # noqa: E402
from clio_lab.llm import runner  # noqa: E402
from clio_lab.llm.local import load_llama  # noqa: E402
from clio_lab.llm.native import cpu_summary  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "datasets" / "clio_demo.jsonl"
SETTINGS = {"at-once": (False, "arrival"), "arrival": (True, "arrival"), "prompt": (True, "prompt")}


def use(setting: str) -> None:
    runner.LOCAL_REASKS_LAST, runner.LOCAL_CALL_ORDER = SETTINGS[setting]


def digest(values) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def facet_step(convs, embedder, cache: str) -> dict:
    t = time.perf_counter()
    res = extract_facets(convs, llm=clio_lab.LLM(), cache=cache, progress=False, embedder=embedder)
    return {"seconds": round(time.perf_counter() - t, 1), "calls": res.stats.calls, "re-asks": res.stats.retries,
            "failed": len(res.failures), "answers": digest(res.values)}


def audit_step(tree, embedder) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        clio_lab.embed(["warm"], embedder, cache=None)
        t = time.perf_counter()
        audit = audit_clusters(tree, llm=clio_lab.LLM(), cache=cache, embedder=embedder, confirm=False,
                               progress=False)
        seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 1), "calls": audit.stats.calls, "re-asks": audit.stats.retries,
            "failed": len(audit.failures),
            "answers": digest({k: (v.score, v.reason) for k, v in sorted(audit.scores.items())})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--settings", default="arrival,prompt", help=f"comma-separated, of {', '.join(SETTINGS)}")
    args = ap.parse_args()
    settings = args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        ap.error(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
    convs = list(clio_lab.load_conversations(DEMO, limit=args.limit))
    embedder = clio_lab.get_embedder(None)
    clio_lab.embed([c.messages[0].content for c in convs], embedder, cache=None)  # loaded before the clocks
    load_llama()
    print(f"{len(convs)} conversations; {cpu_summary()}, {os.cpu_count()} cores, {platform.python_version()}")
    print("| round | step | setting | seconds | calls | re-asks | failed | answers |\n|---|---|---|---|---|---|---|---|")
    best: dict[tuple[str, str], float] = {}

    def row(r: int, step: str, setting: str, out: dict) -> None:
        best[step, setting] = min(best.get((step, setting), float("inf")), out["seconds"])
        print(f"| {r} | {step} | {setting} | {out['seconds']} | {out['calls']} | {out['re-asks']} | {out['failed']} | "
              f"{out['answers']} |", flush=True)

    with tempfile.TemporaryDirectory() as keep:
        for r in range(1, args.rounds + 1):
            for s in settings:
                use(s)
                # round 1's last leg keeps its cache: the audit leg's tree is built on those facets
                cache = f"{keep}/facets" if r == 1 and s == settings[-1] else tempfile.mkdtemp(dir=keep)
                row(r, "facets", s, facet_step(convs, embedder, cache))
        use("prompt")
        result = clio_lab.run_pipeline(convs, cache=f"{keep}/facets", audit=False, projection=False, progress=False)
        tree = result.full_hierarchy
        print(f"\naudit: {sum(1 for n in tree.nodes.values() if n.shows_model_text)} named clusters\n")
        for r in range(1, args.rounds + 1):
            for s in settings:
                use(s)
                row(r, "audit", s, audit_step(tree, embedder))
    print()
    for step in ("facets", "audit"):
        figures = ", ".join(f"{s} {best[step, s]} s" for s in settings)
        print(f"best, {step}: {figures}; {settings[0]} / {settings[-1]}: "
              f"{best[step, settings[0]] / best[step, settings[-1]]:.2f}x")


if __name__ == "__main__":
    main()
