"""The preflight estimate against the tokens of a real run (issue 17, item 4: within 20%).

    .venv/bin/python benchmarks/estimate.py [--n 60] [--pilot 20]

Starts the bundled Gemma 3 270M behind llama-cpp-python's OpenAI-compatible server on 127.0.0.1
(``python -m clio_lab.llm.serve``), estimates a hosted-path run of the first ``--n`` conversations of the
bundled corpus (``clio_lab.estimate``), then runs it (``run_pipeline`` with a cold cache: facets, contrastive
naming, the paper's hierarchy steps a-f, the privacy audit) and prints, per step, the calls and tokens
estimated against those the server reported. Two token counts are estimated: LiteLLM's counter (what a user
gets for a model it does not know: tiktoken's cl100k), and the served model's own tokenizer (what LiteLLM
uses for the models it knows). The cost is priced as if the tokens were gpt-4o-mini's.

The estimate counts first asks; a re-ask (an answer that failed validation, asked again) is counted only at
the rate measured on answers the cache holds. So the run's tokens are split into first asks and re-asks, and
a second estimate is made after a pilot run of the first ``--pilot`` conversations, whose cached answers give
the model's re-ask rate for the rest; it is compared with all the tokens the full run then sends.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

import clio_lab  # noqa: E402
from clio_lab import LLM, run_pipeline  # noqa: E402
from clio_lab.estimate import estimate, price  # noqa: E402
from clio_lab.llm.local import DEFAULT_LOCAL_MODEL, model_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clio_lab.llm.serve", "--host", "127.0.0.1", "--port", str(port),
                             "--model_alias", "gemma", "--n_ctx", "8192"], stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/models", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the server did not start in 120 s")


def gemma_counter():
    from llama_cpp import Llama

    vocab = Llama(model_path=model_path(DEFAULT_LOCAL_MODEL), vocab_only=True, verbose=False)

    def count(llm: LLM, prompt) -> int:
        text = "".join(m["content"] for m in llm.messages(prompt))
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    return count


class Recording(LLM):
    """The same calls, with the server's token counts kept per step and per first ask / re-ask."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.log: list[tuple[str, bool, int, int]] = []

    async def acall(self, prompt, *, max_tokens=64, seed=0, step=""):
        text, usage = await super().acall(prompt, max_tokens=max_tokens, seed=seed, step=step)
        self.log.append((step, seed == 0, usage["prompt_tokens"], usage["completion_tokens"]))
        return text, usage


GROUP = {"facet": "facets", "name_clusters": "naming", "privacy_audit": "privacy audit"}


def group(step: str) -> str:
    head = step.split(":", 1)[0]
    return "hierarchy" if head.startswith("hierarchy") else GROUP.get(head, head)


def by_group(est) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in est.steps:
        g = "facets" if s.step.startswith("facet:") else "hierarchy" if s.step.startswith("hierarchy") else s.step
        row = out.setdefault(g, [0, 0, 0])
        row[0] += s.to_send
        row[1] += s.prompt_tokens
        row[2] += s.completion_tokens
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--pilot", type=int, default=20)
    args = ap.parse_args()
    convs = clio_lab.load_conversations(ROOT / "datasets" / "clio_demo.jsonl", limit=args.n)
    tmp = Path(tempfile.mkdtemp())
    proc, url = start_server(tmp / "server.log")
    try:
        llm = Recording(model="text-completion-openai/gemma", api_base=url, api_key="none", max_concurrency=2)
        common = dict(llm=llm, cache=tmp / "cache")
        t = time.perf_counter()
        cold = estimate(convs, **common)
        t_est = time.perf_counter() - t
        own = gemma_counter()
        cold_own = estimate(convs, **common, count_tokens=own)
        run_pipeline(convs[: args.pilot], **common, projection=False, progress=False)  # the pilot
        llm.log.clear()
        warm_own = estimate(convs, **common, count_tokens=own)
        t = time.perf_counter()
        run_pipeline(convs, **common, projection=False, progress=False)
        t_run = time.perf_counter() - t
        log = list(llm.log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the cold estimates are for the whole run from nothing; the full run after the pilot sends only the facet
    # asks the pilot did not make, so the cold comparison uses a cold run's figures: the pilot's facet asks are
    # added back from the warm run's per-ask mean
    actual: dict[str, dict[str, float]] = {}
    for step, first, p, c in log:
        a = actual.setdefault(group(step), dict(calls=0, reasks=0, p1=0, c1=0, p=0, c=0))
        a["calls" if first else "reasks"] += 1
        a["p"] += p
        a["c"] += c
        if first:
            a["p1"] += p
            a["c1"] += c
    f = actual["facets"]
    scale = len(convs) / max(1, f["calls"])  # the warm run asked the facets of the non-pilot conversations only
    cold_like = {g: dict(a) for g, a in actual.items()}
    for key in ("calls", "reasks", "p1", "c1", "p", "c"):
        cold_like["facets"][key] = f[key] * scale

    print(f"{len(convs)} conversations of the bundled corpus, text-completion-openai/gemma (Gemma 3 270M) on "
          f"llama_cpp.server, pilot of {args.pilot}; estimate {t_est:.1f} s, full run {t_run:.0f} s\n")
    e_cold, e_own, e_warm = by_group(cold), by_group(cold_own), by_group(warm_own)
    head = (f"{'step':<14} {'est calls':>9} {'run 1st+re':>10} {'est cl100k':>10} {'est own':>8} {'run 1st ask':>11} "
            f"{'run all':>8} {'warm est':>9} {'warm run':>9} {'est compl':>9} {'run 1st':>8}")
    print("cold estimate against a cold run (facets scaled to all conversations); warm: after the pilot")
    print(head)
    tot = dict(d=0, o=0, r1=0, r=0, w=0, wr=0, ce=0, cr1=0)
    for g in ("facets", "naming", "hierarchy", "privacy audit"):
        if g not in actual:
            continue
        a, w = cold_like[g], actual[g]
        asks = f"{a['calls']:.0f}+{a['reasks']:.0f}"
        print(f"{g:<14} {e_own[g][0]:>9} {asks:>10} {e_cold[g][1]:>10,} "
              f"{e_own[g][1]:>8,} {a['p1']:>11,.0f} {a['p']:>8,.0f} {e_warm[g][1]:>9,} {w['p']:>9,.0f} "
              f"{e_own[g][2]:>9,} {a['c1']:>8,.0f}")
        tot["d"] += e_cold[g][1] + e_own[g][2]
        tot["o"] += e_own[g][1] + e_own[g][2]
        tot["r1"] += a["p1"] + a["c1"]
        tot["r"] += a["p"] + a["c"]
        tot["w"] += e_warm[g][1] + e_warm[g][2]
        tot["wr"] += w["p"] + w["c"]
        tot["ce"] += e_own[g][2]
        tot["cr1"] += a["c1"]
    print(f"\nall tokens, cold estimate / cold run's first asks: {tot['o'] / tot['r1']:.3f} (the model's own tokenizer), "
          f"{tot['d'] / tot['r1']:.3f} (LiteLLM's default counter, cl100k)")
    print(f"all tokens, cold estimate / cold run with its re-asks: {tot['o'] / tot['r']:.3f}")
    print(f"all tokens, estimate after the pilot / the run after the pilot (re-asks included): {tot['w'] / tot['wr']:.3f}")
    mini = LLM(model="openai/gpt-4o-mini")
    cost_est = price(mini, int(tot["o"] - tot["ce"]), int(tot["ce"]))
    cost_run = price(mini, int(tot["r1"] - tot["cr1"]), int(tot["cr1"]))
    print(f"priced as gpt-4o-mini, cold: estimate ${cost_est:.5f} against ${cost_run:.5f} for the first asks' "
          f"tokens ({cost_est / cost_run:.3f})")
    for s in warm_own.steps:
        if s.note:
            print(f"  warm {s.step}: {s.note}")


if __name__ == "__main__":
    main()
