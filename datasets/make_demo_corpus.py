"""Regenerate the bundled demo corpus: `python datasets/make_demo_corpus.py` (deterministic, seed 0)."""

from pathlib import Path

from clio_lab.synthetic import generate_corpus, write_jsonl

if __name__ == "__main__":
    out = write_jsonl(generate_corpus(200, seed=0), Path(__file__).with_name("clio_demo.jsonl"))
    print(f"wrote {out}")
