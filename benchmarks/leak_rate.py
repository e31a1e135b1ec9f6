"""Leak rate: how many planted personal details survive into facet answers and into released cluster texts.

    .venv/bin/python benchmarks/leak_rate.py [--data datasets/clio_demo.jsonl] [--model NAME] [--cache DIR]
        [--auditor auto|rules|model]

The bundled corpus plants names, e-mail addresses, phone numbers, street addresses, id numbers and
employers in some conversations, each with its span and value (metadata.pii). The whole pipeline runs twice on
the local model with every privacy layer on (facet privacy instructions, the PII check of every model-written
text, thresholds 10 conversations / 5 users, the auditor: ``--auditor``, by default the rules with the local model): once as is and once with ``redact_input=True``
(presidio redacts the conversations before any model sees them).

A planted value *survives* into a text when the text contains it, ignoring case; or its digits (6 or more)
appear as one run in the text's digits (phones, ids); or, for names, addresses and employers, a distinctive
part of it appears as a word (a surname, a street name, a company word): see ``clio_lab.evaluate.survives``
and ``leak_rates``, which the validation notebook uses too. Measured in

- facet answers: each conversation's own answers (every text facet), share of planted values that survive,
  and share of conversations holding a planted value in their answers (the paper: ~10% of raw conversations
  hold private information, ~1.5% after summaries);
- released cluster texts: names, descriptions and the central summaries shown for every released cluster
  at every level, against every planted value of the corpus (target: 0).

Runs through the default cache (set ``--cache``), so a second run costs little.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import clio_lab
from clio_lab.evaluate import leak_rates

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "datasets" / "clio_demo.jsonl"))
    ap.add_argument("--model", default=None, help="LiteLLM model name (default: the local model)")
    ap.add_argument("--cache", default="default")
    ap.add_argument("--auditor", choices=["auto", "rules", "model"], default="auto")
    args = ap.parse_args()
    convs = clio_lab.load_conversations(args.data)
    llm = clio_lab.LLM(model=args.model) if args.model else clio_lab.LLM()
    rows = []
    for redact in (False, True):
        start = time.perf_counter()
        result = clio_lab.run_pipeline(convs, llm=llm, cache=args.cache, redact_input=redact, progress=False,
                                       audit=args.auditor)
        m = leak_rates(convs, result)
        m["privacy"] = result.privacy()
        m["released"] = sum(1 for n in result.hierarchy.level(0) if n.index > -2)
        m["seconds"] = time.perf_counter() - start
        rows.append((redact, m))
    first = rows[0][1]
    print(f"{args.data}: {len(convs)} conversations, model {llm.model}, auditor {rows[0][1]['privacy']['auditor']['by']}; control: the matcher finds "
          f"{first['raw']['found']}/{first['planted']} planted values in the raw conversations")
    print("| pre-LLM redaction | planted values surviving in facet answers (of those in answered conversations) "
          "| conversations with a surviving value | planted values in released cluster texts | base clusters "
          "released | seconds |")
    print("|---|---|---|---|---|---|")
    for redact, m in rows:
        f, c = m["facet_answers"], m["released_cluster_texts"]
        print(f"| {'on' if redact else 'off'} | {f['surviving']}/{f['values']} ({100 * (f['share'] or 0):.1f}%) "
              f"| {f['conversations_with_a_surviving_value']}/{len(convs)} ({m['conversations_with_planted']} hold "
              f"planted values) | {c['surviving']} in {c['texts']} texts | {m['released']} | {m['seconds']:.0f} |")
    for redact, m in rows:
        kinds = ", ".join(f"{k} {v['surviving']}/{v['values']}" for k, v in m["facet_answers"]["by_kind"].items())
        stages = m["privacy"]["stages"]
        print(f"\nredaction {'on' if redact else 'off'}: surviving by kind: {kinds}")
        print(f"  detector, raw conversations: {stages['raw_conversations']['with_pii']}/"
              f"{stages['raw_conversations']['checked']}; facet answers flagged when written: "
              f"{stages['facet_answers']['with_pii_when_written']}/{stages['facet_answers']['checked']}; released "
              f"cluster texts flagged: {stages['released_cluster_texts']['with_pii']}/"
              f"{stages['released_cluster_texts']['checked']}")
        print(f"  withheld: {m['privacy']['withheld']}; auditor: {m['privacy']['auditor'].get('histogram')}")
        if m["released_cluster_texts"]["kinds"]:
            print(f"  kinds surviving into released cluster texts: {m['released_cluster_texts']['kinds']}")


if __name__ == "__main__":
    main()
