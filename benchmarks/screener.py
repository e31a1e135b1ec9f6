"""The screener against Banking77's intents: how often the model's yes/no answer is right.

    .venv/bin/python benchmarks/screener.py [--intents 6] [--positives 20] [--negatives 40] [--model ...]

For each of ``--intents`` intents (chosen by a fixed seed from Banking77's 77), the question "Is this
conversation about <intent, with spaces>?" is asked of ``--positives`` queries of that intent and
``--negatives`` queries of other intents, all from test.csv (../shared/datasets/banking77). Reported per
intent and overall: recall (yes on the intent's own queries), the false-yes rate on the others, accuracy and
balanced accuracy (the mean of recall and the true-no rate; 50% is chance, as is answering always "No").

Beside the model, the method with no model (``screen(method="embedding")``): the cosine similarity of the
question's embedding to the conversation's (bundled MiniLM), "yes" above a threshold. Twice: with a
threshold fitted to each question on train.csv (the same intent, other queries: a ceiling a user without
labels cannot reach), and with the library's one threshold for every question (DEFAULT_THRESHOLD), chosen
on train.csv over ``--calibration-intents`` intents that are not measured here. Figures are on test.csv. The screener's worked examples (prompts/examples/screen.jsonl) are about
other topics than banking, so no question here was shown to the model with its answer.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np

import clio_lab
from clio_lab.records import Conversation, Message
from clio_lab.screening import DEFAULT_THRESHOLD, screen

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"


def load(name: str) -> tuple[list[str], list[str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def sample(texts, labels, intent, n_pos, n_neg, rng):
    pos = [t for t, lab in zip(texts, labels, strict=True) if lab == intent]
    neg = [t for t, lab in zip(texts, labels, strict=True) if lab != intent]
    return rng.sample(pos, min(n_pos, len(pos))), rng.sample(neg, n_neg)


def question(intent: str) -> str:
    return f"Is this conversation about {intent.replace('_', ' ')}?"


def scores(yes: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    rec = float(yes[truth].mean()) if truth.any() else float("nan")
    tnr = float((~yes[~truth]).mean()) if (~truth).any() else float("nan")
    return {"recall": rec, "false_yes": 1 - tnr, "accuracy": float((yes == truth).mean()),
            "balanced": (rec + tnr) / 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intents", type=int, default=6)
    ap.add_argument("--positives", type=int, default=20)
    ap.add_argument("--negatives", type=int, default=40)
    ap.add_argument("--model", default=None, help="LiteLLM model name (default: the embedded local model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration-intents", type=int, default=12)
    ap.add_argument("--no-llm", action="store_true", help="only the embedding methods")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    test_t, test_l = load("test.csv")
    train_t, train_l = load("train.csv")
    intents = rng.sample(sorted(set(test_l)), args.intents)
    # one threshold for every question (what clio_lab.screening uses when none is given): the best pooled
    # balanced accuracy on train.csv over --calibration-intents intents that are not among those measured
    others = rng.sample(sorted(set(test_l) - set(intents)), args.calibration_intents)
    emb0 = clio_lab.get_embedder(None)
    cal_sims, cal_truth = [], []
    for intent in others:
        tp, tn = sample(train_t, train_l, intent, args.positives, args.negatives, rng)
        Q = clio_lab.embed([question(intent)], emb0, cache=None)[0]
        cal_sims.append(clio_lab.embed(tp + tn, emb0, cache=None) @ Q)
        cal_truth.append(np.array([True] * len(tp) + [False] * len(tn)))
    cal_sims, cal_truth = np.concatenate(cal_sims), np.concatenate(cal_truth)
    fixed = float(max(np.round(np.unique(cal_sims), 2), key=lambda t: scores(cal_sims >= t, cal_truth)["balanced"]))
    print(f"one threshold, chosen on train.csv over {args.calibration_intents} other intents: {fixed:.2f} "
          f"(clio_lab.screening.DEFAULT_THRESHOLD is {DEFAULT_THRESHOLD})")
    llm = clio_lab.LLM(**({"model": args.model} if args.model else {}))
    emb = clio_lab.get_embedder(None)
    rows, all_llm, all_emb, all_fix, all_truth, failed, seconds = [], [], [], [], [], 0, 0.0
    for intent in intents:
        q = question(intent)
        # the embedding method's threshold: the best balanced accuracy on train.csv's queries
        tp, tn = sample(train_t, train_l, intent, args.positives, args.negatives, rng)
        Q = clio_lab.embed([q], emb, cache=None)[0]
        sims = clio_lab.embed(tp + tn, emb, cache=None) @ Q
        truth_tr = np.array([True] * len(tp) + [False] * len(tn))
        threshold = max(np.unique(sims), key=lambda t: scores(sims >= t, truth_tr)["balanced"])
        pos, neg = sample(test_t, test_l, intent, args.positives, args.negatives, rng)
        texts = pos + neg
        truth = np.array([True] * len(pos) + [False] * len(neg))
        convs = [Conversation(id=f"{intent}-{i}", messages=[Message(role="user", content=t)])
                 for i, t in enumerate(texts)]
        start = time.perf_counter()
        s = screen(convs, q, llm=llm, method="llm", cache=None, progress=False) if not args.no_llm else None
        seconds += time.perf_counter() - start
        if s is not None:
            failed += sum(a is None for a in s.answers)
        yes_llm = s.keep if s is not None else np.zeros(len(texts), dtype=bool)
        yes_emb = (clio_lab.embed(texts, emb, cache=None) @ Q) >= threshold
        # the library's own embedding screener, with its one threshold
        yes_fix = screen(convs, q, method="embedding", cache=None, progress=False).keep
        rows.append((intent, scores(yes_llm, truth), scores(yes_emb, truth), scores(yes_fix, truth),
                     s.counts() if s is not None else {"yes": 0, "no": 0, "failed": 0}))
        all_llm.append(yes_llm)
        all_emb.append(yes_emb)
        all_fix.append(yes_fix)
        all_truth.append(truth)
    print(f"Banking77 test.csv: {args.intents} intents x ({args.positives} of the intent + {args.negatives} others); "
          f"model {llm.model}; {failed} answers failed (counted as not yes); {seconds:.0f} s of model calls")
    print("| intent | method | recall | false yes | accuracy | balanced accuracy | model's answers yes/no/failed |")
    print("|---|---|---|---|---|---|---|")
    for intent, m, e, f, counts in rows:
        print(f"| {intent} | local model | {m['recall']:.0%} | {m['false_yes']:.0%} | {m['accuracy']:.0%} | "
              f"{m['balanced']:.0%} | {counts['yes']}/{counts['no']}/{counts['failed']} |")
        print(f"| | embedding, threshold fitted to this question | {e['recall']:.0%} | {e['false_yes']:.0%} | "
              f"{e['accuracy']:.0%} | {e['balanced']:.0%} | |")
        print(f"| | embedding, one threshold (the default) | {f['recall']:.0%} | {f['false_yes']:.0%} | "
              f"{f['accuracy']:.0%} | {f['balanced']:.0%} | |")
    truth = np.concatenate(all_truth)
    for label, yes in (("local model", np.concatenate(all_llm)),
                       ("embedding, threshold fitted to each question", np.concatenate(all_emb)),
                       ("embedding, one threshold (the default)", np.concatenate(all_fix)),
                       ("always no", np.zeros_like(truth))):
        m = scores(yes, truth)
        print(f"| **all** | {label} | {m['recall']:.0%} | {m['false_yes']:.0%} | {m['accuracy']:.0%} | "
              f"{m['balanced']:.0%} | |")


if __name__ == "__main__":
    main()
