"""The rule auditor against the 270M model auditor, on held-out clusters, harmless and made identifying.

    .venv/bin/python benchmarks/audit_rules.py [--sets synthetic,banking77] [--auditors rules,model] [--cache-dir DIR]
    .venv/bin/python benchmarks/audit_rules.py --scale 100000

Both data sets are ``naming_quality.py --split test`` (synthetic seed 202, 2,000 conversations; Banking77's
test.csv, 20 per intent): nothing of the rule auditor (``clio_lab.auditor.rule_audit``) was shaped on them.
Their conversations get the local model's request facet (cached), are embedded and clustered as the pipeline
does, and get the extractive names and tree (the local default). Then:

- **harmless**: every node of that tree (base clusters and parents), its own conversations. The corpora hold
  no person's detail a released name should show (the synthetic one plants some in 30% of conversations; every
  withheld text is printed, to be read);
- **identifying**: every base cluster again, with one planted detail: a person, a company, a street address,
  an e-mail address, a phone number, a family or a small club, drawn by Faker (seed 4107; en_US, de_DE,
  fr_FR, es_ES) and written into one member conversation ("This is for <detail>."), and into the cluster's text
  in one of three styles: mid-sentence in the name ("... for Maria Kowalczyk"), at the start of the
  description ("Maria Kowalczyk asked ..."), and lower-cased in the name ("... for maria kowalczyk"). Each
  kind meets each style (7 kinds, 3 styles).

With ``--scale N`` (no model, no cache): the rules' time and memory on N synthetic conversations (varied,
seed 7), embedded by the hashing embedder, clustered by the pipeline's default k, named and grouped by the
extractive method with each conversation's first user message standing in for its summary; every node of the
tree audited. Prints the seconds, the words looked up, and the process's resident memory before and at its
highest during the audit (sampled every 0.1 s).

Prints, per auditor and set: harmless texts withheld, identifying texts withheld (by kind and by style), and
seconds; every harmless text withheld and every identifying text let through. The rules run on the
conversations and summaries; the model sees the name and description only (as in a run), with no cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("naming_quality", HERE / "naming_quality.py")
nq = importlib.util.module_from_spec(spec)
sys.modules["naming_quality"] = nq
spec.loader.exec_module(nq)

import clio_lab  # noqa: E402
from clio_lab import LLM  # noqa: E402
from clio_lab.auditor import WordSupport, audit_clusters, rule_audit  # noqa: E402
from clio_lab.tree import Hierarchy, Node  # noqa: E402

KINDS = ("person", "company", "street address", "e-mail", "phone", "family", "club")
STYLES = ("mid-sentence in the name", "start of the description", "lower-cased in the name")
LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES")
CLUBS = ("Rowing", "Chess", "Cycling", "Choir", "Running", "Book", "Tennis")


def detail(kind: str, c: int) -> str:
    from faker import Faker

    fake = Faker(LOCALES[c % len(LOCALES)])
    fake.seed_instance(4107 + c)
    return {"person": fake.name, "company": fake.company, "street address": fake.street_address,
            "e-mail": fake.email, "phone": fake.phone_number,
            "family": lambda: f"the {fake.last_name()} family",
            "club": lambda: f"the {fake.city()} {CLUBS[c % len(CLUBS)]} Club"}[kind]()


def conversation_texts(convs, summaries) -> list[str]:
    return ["\n".join(m.content for m in c.messages) + "\n" + (s or "") for c, s in zip(convs, summaries, strict=True)]


def build(name: str, data: dict, cache) -> dict:
    convs = data["convs"]
    facets = clio_lab.extract_facets(convs, llm=LLM(), cache=cache, progress=False, pii=False, last_ask=True)
    summaries = facets.values["request"]
    space, _ = nq.embedding_space(convs, summaries, "pipeline", None, "text", cache)
    users = [c.user_id for c in convs]
    labels = clio_lab.cluster(space.X, cache=cache).labels
    labs = clio_lab.label_clusters(summaries, space.X, labels, method="extractive", embedder=space.embedder,
                                   cache=cache, progress=False, requests=space.requests, users=users).labels
    tree = clio_lab.build_hierarchy(labels, labs, method="extractive", embedder=space.embedder, summaries=summaries,
                                    X=space.X, cache=cache, progress=False, requests=space.requests, users=users)
    return {"convs": convs, "summaries": summaries, "users": users, "tree": tree}


def identifying(built: dict) -> tuple[Hierarchy, list[str], list[dict]]:
    """The base clusters with one planted detail each: a tree of their texts, the conversations' texts with the
    detail written into one member, and what was planted where."""
    tree, convs = built["tree"], built["convs"]
    texts = conversation_texts(convs, built["summaries"])
    nodes, planted = {}, []
    for node in tree.level(0):
        if not node.shows_model_text:
            continue
        c = node.index
        kind, style = KINDS[c % len(KINDS)], STYLES[c % len(STYLES)]
        value = detail(kind, c)
        members = np.flatnonzero(tree.base_labels == c)
        i = int(random.Random(4107 + c).choice(list(members)))
        first = convs[i].messages[0].content
        texts[i] = texts[i].replace(first, f"{first} This is for {value}.", 1)
        name, description = node.name, node.description
        if style == STYLES[0]:
            name = f"{name} for {value}"
        elif style == STYLES[1]:
            description = f"{value[0].upper()}{value[1:]} asked the assistant for this. {description}"
        else:
            name = f"{name} for {value.lower()}"
        nodes[node.id] = Node(node.id, 0, c, name, description, node.size, "llm")
        planted.append({"id": node.id, "kind": kind, "style": style, "name": name, "description": description})
    return Hierarchy(nodes, tree.base_labels), texts, planted


def why(tree: Hierarchy, node: Node, texts: list[str], users: list[str]) -> str:
    """The words that the rules found too rare, with how many users wrote each (public data: printed)."""
    members = np.flatnonzero(tree.labels_at(node.level) == node.index)
    found = WordSupport(texts, users, 5).rare_words(f"{node.name}. {node.description}", members)
    return "rare: " + ", ".join(f"{w} ({n})" for w, n in found)


def run_auditor(auditor: str, tree: Hierarchy, texts: list[str], users: list[str]):
    t = time.perf_counter()
    nodes = [n.id for n in tree.nodes.values() if n.shows_model_text]
    if auditor == "rules":
        audit = rule_audit(tree, texts, users, nodes=nodes)
    else:
        audit = audit_clusters(tree, nodes=nodes, llm=LLM(), cache=None, progress=False)
    return audit, time.perf_counter() - t, nodes


def scale(n: int) -> None:
    import threading

    import psutil

    from clio_lab.synthetic import generate_corpus

    t = time.perf_counter()
    records = generate_corpus(n, seed=7, varied=True)
    for i, r in enumerate(records):
        r["id"] = f"s{i}"
    convs = list(clio_lab.load_conversations(records))
    firsts = [next((m.content for m in c.messages if m.role == "user"), None) for c in convs]
    users = [c.user_id for c in convs]
    emb = clio_lab.get_embedder("hashing")
    texts = [c.as_text()[0] for c in convs]
    X = clio_lab.embed(texts, emb, cache=None)
    labels = clio_lab.cluster(X, cache=None).labels
    names = clio_lab.label_clusters(firsts, X, labels, method="extractive", embedder=emb, cache=None,
                                    progress=False, requests=firsts, users=users)
    tree = clio_lab.build_hierarchy(labels, names, method="extractive", embedder=emb, summaries=firsts, X=X,
                                    cache=None, progress=False, requests=firsts, users=users)
    from clio_lab.pii import PIIDetector

    detector = PIIDetector()
    detector.find_many(["warm up Maria at 12 Elm Road"])  # spaCy loaded before the clock
    print(f"{n:,} conversations, {len(tree.nodes):,} nodes ({sum(1 for v in tree.nodes.values() if v.level == 0)} "
          f"base), built in {time.perf_counter() - t:.0f} s", flush=True)
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    looked = Counter()
    original = WordSupport.writers

    def counted(self, word, among):
        looked["corpus" if len(among) == len(self.texts) else "cluster"] += 1
        return original(self, word, among)

    WordSupport.writers = counted
    t = time.perf_counter()
    audit = rule_audit(tree, texts, users, detector=detector)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    WordSupport.writers = original
    scores = Counter(str(s.score) for s in audit.scores.values())
    print(f"rule_audit: {seconds:.1f} s for {len(audit.scores):,} nodes; words counted over the corpus "
          f"{looked['corpus']:,}, over a cluster {looked['cluster']:,}; scores {dict(sorted(scores.items()))}; "
          f"resident memory {before / 1e6:,.0f} MB before, {peak[0] / 1e6:,.0f} MB at most "
          f"(+{(peak[0] - before) / 1e6:,.0f} MB)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="synthetic,banking77")
    ap.add_argument("--split", choices=["dev", "test"], default="test",
                    help="dev: synthetic seeds 101 and 103, Banking77's train.csv (for shaping the rules)")
    ap.add_argument("--auditors", default="rules,model")
    ap.add_argument("--synthetic-n", type=int, default=2000)
    ap.add_argument("--cache-dir", default=None, help="for the facets and embeddings (default: clio_lab's cache)")
    ap.add_argument("--scale", type=int, default=None, help="time the rules alone on this many synthetic "
                    "conversations (no model)")
    args = ap.parse_args()
    if args.scale:
        return scale(args.scale)
    cache = clio_lab.Cache(args.cache_dir) if args.cache_dir else "default"
    sizes = {"synthetic": args.synthetic_n, "banking77": 20}
    rows = []
    for name in args.sets.split(","):
        built = build(name, nq.LOADERS[name](args.split, sizes[name]), cache)
        harmless_tree = built["tree"]
        texts = conversation_texts(built["convs"], built["summaries"])
        id_tree, id_texts, planted = identifying(built)
        for auditor in args.auditors.split(","):
            audit, s_h, nodes = run_auditor(auditor, harmless_tree, texts, built["users"])
            withheld = audit.withheld()
            print(f"\n{name} / {auditor}: harmless texts withheld {sum(n in withheld for n in nodes)} of {len(nodes)} "
                  f"(base {sum(n in withheld for n in nodes if n.startswith('0.'))} of "
                  f"{sum(n.startswith('0.') for n in nodes)}), {s_h:.1f} s", flush=True)
            for nid in nodes:
                if nid in withheld:
                    node, sc = harmless_tree.nodes[nid], audit.scores[nid]
                    print(f"  harmless withheld ({sc.score}): {node.name!r} / {node.description[:160]!r}; "
                          f"{sc.reason}; {why(harmless_tree, node, texts, built['users'])}", flush=True)
            id_audit, s_i, id_nodes = run_auditor(auditor, id_tree, id_texts, built["users"])
            caught = id_audit.withheld()
            by_kind, by_style = Counter(), Counter()
            for p in planted:
                by_kind[p["kind"], p["id"] in caught] += 1
                by_style[p["style"], p["id"] in caught] += 1
                if p["id"] not in caught:
                    sc = id_audit.scores[p["id"]]
                    print(f"  identifying let through ({sc.score}, {p['kind']}, {p['style']}): {p['name']!r} / "
                          f"{p['description'][:120]!r}", flush=True)
            n_caught = sum(p["id"] in caught for p in planted)
            print(f"{name} / {auditor}: identifying texts withheld {n_caught} of {len(planted)}, {s_i:.1f} s", flush=True)
            print("  by kind: " + "; ".join(f"{k} {by_kind[k, True]}/{by_kind[k, True] + by_kind[k, False]}"
                                            for k in KINDS), flush=True)
            print("  by style: " + "; ".join(f"{s} {by_style[s, True]}/{by_style[s, True] + by_style[s, False]}"
                                             for s in STYLES), flush=True)
            rows.append((name, auditor, sum(n in withheld for n in nodes), len(nodes), n_caught, len(planted),
                         (s_h + s_i) / (len(nodes) + len(planted))))
    print("\n| set | auditor | harmless texts withheld | identifying texts withheld | seconds per text |")
    print("|---|---|---|---|---|")
    for name, auditor, fh, nh, ci, ni, spt in rows:
        print(f"| {name} | {auditor} | {fh}/{nh} ({100 * fh / nh:.0f}%) | {ci}/{ni} ({100 * ci / ni:.0f}%) "
              f"| {spt:.3f} |")


if __name__ == "__main__":
    main()
