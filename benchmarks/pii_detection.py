"""PII detection on the bundled corpus: recall of the planted personal details by kind, false alarms on the
conversations with nothing planted, and speed.

    .venv/bin/python benchmarks/pii_detection.py [--data datasets/clio_demo.jsonl]

The corpus marks each planted value with its span (metadata.pii: start, end, kind, message). A planted value
counts as found when a finding overlaps its span. A conversation with nothing planted counts as a false alarm
when anything in it is flagged.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import clio_lab
from clio_lab.pii import PIIDetector

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "datasets" / "clio_demo.jsonl"))
    args = ap.parse_args()
    convs = clio_lab.load_conversations(args.data)
    detector = PIIDetector()
    detector.find("warm up the spaCy model")
    hits: dict[str, list[bool]] = {}
    clean = alarms = texts = 0
    start = time.perf_counter()
    for conv in convs:
        flagged = False
        for i, message in enumerate(conv.messages):
            found = detector.find(message.content)
            texts += 1
            flagged = flagged or bool(found)
            for span in conv.metadata.get("pii", []):
                if span.get("message", 0) == i:
                    hits.setdefault(span["kind"], []).append(
                        any(f.start < span["end"] and f.end > span["start"] for f in found))
        if not conv.metadata.get("pii"):
            clean += 1
            alarms += flagged
    seconds = time.perf_counter() - start
    print(f"{args.data}: {len(convs)} conversations, {texts} messages, detector {detector.get_params()}")
    print("| planted kind | found |\n|---|---|")
    for kind, v in sorted(hits.items()):
        print(f"| {kind} | {sum(v)}/{len(v)} ({100 * sum(v) / len(v):.0f}%) |")
    print(f"\nfalse alarms: {alarms} of {clean} conversations with nothing planted ({100 * alarms / max(clean, 1):.1f}%)")
    print(f"speed: {texts / seconds:.0f} messages/s ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
