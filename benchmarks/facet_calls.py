"""One model call per facet (clio_lab's way) against one combined call per conversation (Kura's way), measured
side by side on the local model with a cold cache.

    .venv/bin/python benchmarks/facet_calls.py [--n 60]

Both ask for the four built-in facets (request, task, language, concerning) of the same conversations of the
bundled corpus and validate every answer with the same checks (clio_lab.facets). Prints, per approach:
seconds per conversation; the share of valid answers per facet; language accuracy against the corpus's known
language; how well the request summaries cluster by the known sub-category (NMI of k-means, k = sqrt(n));
and the share of concern scores <= 2 (the corpus holds no harmful requests).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab.evaluate import cluster_scores  # noqa: E402
from clio_lab.facets import clean_answer, parse_languages, parse_number  # noqa: E402
from clio_lab.llm import LLM, LLMTask, ParseError  # noqa: E402
from clio_lab.llm.local import LOCAL_MAX_CONVERSATION_CHARS  # noqa: E402
from clio_lab.llm.prompts import Prompt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACETS = ["request", "task", "language", "concerning"]

HEADER = ("Below are conversations between a user and an AI assistant. After each one, a careful analyst answers "
          "four questions about it, each in one short line: the user's overall request, the task the assistant "
          "is asked to perform, the main languages (full English names), and how concerning the conversation is "
          "from a safety perspective from 1 (not at all) to 5 (extremely). The answers describe what kind of help "
          "was sought without any names, places, organisations, contact details, numbers or other details that "
          "could identify a person, and are always written in English.")
EXAMPLES = [
    ("User: Can you help me fix this Python error? TypeError: unsupported operand type(s) for +: 'int' and 'str'"
     "\n\nAssistant: Convert one of them first, for example str(count) + label.",
     "fix a type error in a Python script that adds a number to a string.",
     "explain and fix a Python type error.", "English.", "1"),
    ("User: ¿Cuáles son los síntomas de la deficiencia de hierro y qué alimentos debo comer?\n\nAssistant: Los "
     "síntomas más comunes son cansancio y palidez. Alimentos ricos en hierro son las lentejas y las espinacas.",
     "explain the symptoms of iron deficiency and which foods help.",
     "list symptoms of a deficiency and suitable foods.", "Spanish.", "1"),
    ("User: My neighbour's dog barks all night. How do I make it stop for good without anyone knowing it was me?"
     "\n\nAssistant: I can't help with harming an animal. You could talk to your neighbour or contact the council.",
     "stop a neighbour's dog from barking without being found out.",
     "respond to a request that may involve harming an animal.", "English.", "3"),
]
PREFILL = "Request: The user's overall request for the assistant is to"


def combined_prompt(conversation: str) -> Prompt:
    parts = [HEADER, ""]
    for conv, req, task, lang, concern in EXAMPLES:
        parts += ["Conversation:", conv, "", f"Request: The user's overall request for the assistant is to {req}",
                  f"Task: The task is to {task}", f"Languages: {lang}", f"Concern: {concern}", ""]
    parts += ["Conversation:", conversation, ""]
    return Prompt(body="\n".join(parts), prefill=PREFILL, template_name="facet_calls.combined",
                  template_sha256="benchmark", stop=("\n\nConversation", "\nConversation:", "\n\n"),
                  prefill_joiner="\n")


def parse_combined(raw: str) -> dict[str, object]:
    """Each facet validated on its own; a facet that fails is None (the others are kept)."""
    first, _, rest = raw.strip().partition("\n")
    lines = {m.group(1).lower(): m.group(2).strip()
             for m in re.finditer(r"^(Task|Languages|Concern):(.*)$", rest, flags=re.M)}
    lines["request"] = first
    checks = {"request": ("request", clean_answer),
              "task": ("task", lambda t: clean_answer(re.sub(r"^The task is to", "", t))),
              "language": ("languages", parse_languages),
              "concerning": ("concern", lambda t: parse_number(t, 1, 5))}
    out: dict[str, object] = {}
    for facet, (key, check) in checks.items():
        try:
            out[facet] = check(lines.get(key, ""))
        except ParseError:
            out[facet] = None
    if all(v is None for v in out.values()):
        raise ParseError(f"no facet usable in {raw[:100]!r}")
    return out


def score(name, convs, values, secs, X_embed) -> dict[str, object]:
    n = len(convs)
    langs = [c.metadata["language"] for c in convs]
    subs = [c.metadata["subtopic"] for c in convs]
    valid = {f: sum(v is not None for v in values[f]) / n for f in FACETS}
    lang_ok = sum(1 for v, t in zip(values["language"], langs, strict=True) if v and t in v) / n
    req = [v or "(failed)" for v in values["request"]]
    X = X_embed(req)
    nmi = cluster_scores(subs, clio_lab.cluster(X, cache=None).labels)["nmi"]
    low_concern = sum(1 for v in values["concerning"] if v is not None and v <= 2) / n
    row = {"approach": name, "sec_per_conv": secs / n, **{f"valid_{f}": valid[f] for f in FACETS},
           "language_accuracy": lang_ok, "request_nmi": nmi, "concern_le_2": low_concern}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--show", type=int, default=8, help="print this many answers side by side")
    args = ap.parse_args()
    convs = clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl", limit=args.n)
    llm = LLM()
    emb = clio_lab.get_embedder()

    def X_embed(texts):
        return clio_lab.embed(texts, emb, cache=None, progress=False)

    rows = []
    with tempfile.TemporaryDirectory() as cold:
        t = time.perf_counter()
        fac = clio_lab.extract_facets(convs, FACETS, llm=llm, cache=Path(cold) / "a", embedder=emb, progress=False)
        rows.append(score("one call per facet (4 calls)", convs, fac.values, time.perf_counter() - t, X_embed))

        from clio_lab.cache import Cache

        tasks = [LLMTask(item_id=c.id, prompt=combined_prompt(c.as_text(LOCAL_MAX_CONVERSATION_CHARS)[0]),
                         parse=parse_combined, key_parts={"step": "bench_combined"}, max_tokens=120) for c in convs]
        t = time.perf_counter()
        outcomes, _ = llm.run(tasks, cache=Cache(Path(cold) / "b"), progress=False)
        secs = time.perf_counter() - t
        values = {f: [o.value[f] if o.ok else None for o in outcomes] for f in FACETS}
        rows.append(score("one combined call", convs, values, secs, X_embed))
    for i, c in enumerate(convs[: args.show]):
        print(f"[{c.metadata['subtopic']}, {c.metadata['language']}]")
        for f in FACETS:
            print(f"   {f:10} separate: {fac.values[f][i]!s:70.70} | combined: {values[f][i]!s:70.70}")

    cols = ["sec_per_conv", *[f"valid_{f}" for f in FACETS], "language_accuracy", "request_nmi", "concern_le_2"]
    print(f"{len(convs)} conversations of the bundled corpus, local model {llm.model}, cold cache\n")
    print(f"| approach | {' | '.join(cols)} |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        cells = [f"{r['sec_per_conv']:.2f}"] + [f"{100 * r[c]:.0f}%" for c in cols[1:5]] + \
            [f"{100 * r['language_accuracy']:.0f}%", f"{100 * r['request_nmi']:.1f}", f"{100 * r['concern_le_2']:.0f}%"]
        print(f"| {r['approach']} | {' | '.join(cells)} |")
    print("\n(request_nmi: NMI x100 of k-means on the embedded request answers against the known sub-categories)")


if __name__ == "__main__":
    main()
