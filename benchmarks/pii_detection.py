"""PII detection on the bundled corpus: recall of the planted personal details by kind, false alarms on the
conversations with nothing planted, and speed.

    .venv/bin/python benchmarks/pii_detection.py [--data datasets/clio_demo.jsonl]
    .venv/bin/python benchmarks/pii_detection.py --synthetic 400   # a varied corpus: other countries' formats

The corpus marks each planted value with its span (metadata.pii: start, end, kind, message). A planted value
counts as found when a finding overlaps its span. A conversation with nothing planted counts as a false alarm
when anything in it is flagged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import clio_lab
from clio_lab.evaluate import detection_recall
from clio_lab.pii import PIIDetector

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "datasets" / "clio_demo.jsonl"))
    ap.add_argument("--synthetic", type=int, default=0,
                    help="instead of --data, generate this many conversations with varied=True (seed 7)")
    args = ap.parse_args()
    if args.synthetic:
        from clio_lab.synthetic import generate_corpus

        args.data = f"generate_corpus({args.synthetic}, seed=7, varied=True)"
        convs = clio_lab.load_conversations(generate_corpus(args.synthetic, seed=7, varied=True))
    else:
        convs = clio_lab.load_conversations(args.data)
    detector = PIIDetector()
    detector.find("warm up the spaCy model")
    r = detection_recall(convs, detector)
    print(f"{args.data}: {len(convs)} conversations, {r['messages']} messages, detector {detector.get_params()}")
    print("| planted kind | found |\n|---|---|")
    for kind, v in r["by_kind"].items():
        print(f"| {kind} | {v['found']}/{v['planted']} ({100 * v['found'] / v['planted']:.0f}%) |")
    print(f"\nfalse alarms: {r['false_alarms']} of {r['clean']} conversations with nothing planted "
          f"({100 * r['false_alarms'] / max(r['clean'], 1):.1f}%)")
    print(f"speed: {r['messages'] / r['seconds']:.0f} messages/s ({r['seconds']:.1f} s)")

if __name__ == "__main__":
    main()
