"""The facet step at scale, against an instant OpenAI-compatible server, beside the raw client; and the
pipeline's array steps, saving and loading at scale.

    .venv/bin/python benchmarks/scale.py [--n 20000] [--concurrency 64] [--repeats 1] [--named 10]
    .venv/bin/python benchmarks/scale.py --pipeline 1000000 [--keep runs/scale_1m]
    .venv/bin/python benchmarks/scale.py --end-to-end 100000 [--embedder hashing|all-MiniLM-L6-v2] [--engine ray] [--no-raw]

Starts ``benchmarks/instant_server.py`` on 127.0.0.1 in its own process, makes ``--n`` synthetic
conversations (``generate_corpus``), and sends the same facet requests three ways, in one run:

- raw: the ``openai`` package's ``AsyncOpenAI`` client, the same messages, the same concurrency, nothing else
  (the denominator of the ratios);
- clio_lab, PII check off: ``extract_facets(..., pii=False)`` (LiteLLM, parsing, caching);
- clio_lab, PII check on: ``extract_facets`` with the default detector (every answer checked; one with
  personal details re-asked, then kept redacted), the answers of concurrent calls checked in batches as they
  arrive (``clio_lab.llm.runner.BatchedCheck``);
- the same with batches of one answer (``runner.CHECK_BATCH = 1``): the check one answer at a time;
- with ``--ray W``: the same PII-checked step on a Ray cluster started here with ``W`` workers
  (:class:`clio_lab.engine.RayEngine`: each worker a process with its own client and detector; the cluster's
  start is before the clock, its workers' start is timed).

The instant server names a person in ``--named`` percent of its answers (10 by default), so the PII check re-asks those (a real model's
summaries hold far fewer: BENCHMARKS.md, leak rate), and the detector is loaded before the clocks start.

Each clio_lab run uses an empty cache and the hashing embedder for the worked-example choice (the embedding
step is measured elsewhere). Prints conversations/s of each, the ratios to raw, the PII counts, and the
process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CLIO_LAB_PROGRESS", "0")

from estimate import free_port  # noqa: E402  (benchmarks/estimate.py, beside this script)

import clio_lab  # noqa: E402
from clio_lab.cache import Cache  # noqa: E402
from clio_lab.embeddings import HashingEmbedder  # noqa: E402
from clio_lab.facets import extract_facets, facet_tasks, resolve_specs  # noqa: E402
from clio_lab.llm import LLM, runner  # noqa: E402
from clio_lab.pii import PIIDetector  # noqa: E402
from clio_lab.synthetic import generate_corpus  # noqa: E402

HERE = Path(__file__).resolve().parent
LITELLM_ALONE = "LiteLLM alone (acompletion, same requests)"


def start_server(named_percent: int = 10) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "instant_server.py"), str(port), str(named_percent)])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the instant server did not start")


async def send_all(messages: list[list[dict]], concurrency: int, send) -> float:
    """Seconds to send every message through ``send`` (a coroutine function returning the answer text) with
    ``concurrency`` in flight; every answer must be text."""
    sem = asyncio.Semaphore(concurrency)

    async def one(m: list[dict]) -> str:
        async with sem:
            return await send(m)

    start = time.perf_counter()
    answers = await asyncio.gather(*(one(m) for m in messages))
    seconds = time.perf_counter() - start
    assert all(answers)
    return seconds


async def raw_client(messages: list[list[dict]], url: str, concurrency: int, max_tokens: int, model: str) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="not-needed", max_retries=0)

    async def send(m: list[dict]) -> str:
        r = await client.chat.completions.create(model=model, messages=m, max_tokens=max_tokens, temperature=0.0)
        return r.choices[0].message.content

    try:
        return await send_all(messages, concurrency, send)
    finally:
        await client.close()


async def litellm_alone(model: LLM, messages: list[list[dict]], concurrency: int, max_tokens: int) -> float:
    """The same requests through ``litellm.acompletion`` with the arguments ``LLM.acall`` sends, and nothing of
    clio_lab's around it (no prompts to build, no parsing, checks, retries or cache): what LiteLLM itself costs
    beside the raw client."""
    import litellm

    async def send(m: list[dict]) -> str:
        r = await litellm.acompletion(model=model.model, messages=m, max_tokens=max_tokens,
                                      temperature=model.effective_temperature, api_base=model.api_base,
                                      api_key=model.api_key, timeout=model.timeout, num_retries=0, max_retries=0)
        return r.choices[0].message.content

    return await send_all(messages, concurrency, send)


class BatchClock:
    """When each batch of a Ray engine's answers comes back: how long until the first (the workers' start, spaCy
    loaded in each, the first batch), and the rate after it (the steady state a long run approaches)."""

    def __init__(self, engine):
        self.marks: list[tuple[float, int]] = []
        answer = engine.answer

        def timed(llm, tasks):
            for out in answer(llm, tasks):
                self.marks.append((time.perf_counter(), len(out[0])))
                yield out

        engine.answer = timed

    def start(self) -> None:
        self.marks, self.t0 = [], time.perf_counter()

    def rate(self) -> float:
        """Conversations per second after the first batch came back (0 with fewer than two batches)."""
        if len(self.marks) < 2:
            return 0.0
        return sum(k for _, k in self.marks[1:]) / (self.marks[-1][0] - self.marks[0][0])

    def line(self) -> str:
        if len(self.marks) < 2:
            return "too few batches to tell a steady rate"
        (first, _), (last, _) = self.marks[0], self.marks[-1]
        return (f"{len(self.marks)} batches; the first back after {first - self.t0:.1f} s, then "
                f"{sum(k for _, k in self.marks[1:]):,} conversations in {last - first:.1f} s: {self.rate():,.0f}/s")


def pipeline_without_model(n: int, out_dir: Path) -> None:
    """``run_pipeline`` end to end with no model call (the text embedded with the hashing embedder in 384
    dimensions, k-means at the default k, keyword names and tree, thresholds, no audit, the map), then
    ``save_run`` and ``load_run``: the array steps, the run folder and reading it back at scale, apart from the
    LLM layer."""
    memory = MemoryByStep()
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        path = corpus_file(n, Path(folder))
        gen_s = time.perf_counter() - t
        memory.phase("load_conversations (JSONL)")
        t = time.perf_counter()
        convs = clio_lab.load_conversations(path)
        load_s = time.perf_counter() - t
    memory.phase("after loading")
    with tempfile.TemporaryDirectory() as cache:
        memory.phase("run_pipeline, between steps")
        t = time.perf_counter()
        # 384 dimensions, as the bundled MiniLM's: the array steps see what a real run gives them
        run = clio_lab.run_pipeline(convs, facets=(), embed_on="text", embedder=HashingEmbedder(n_features=384),
                                    naming="keywords",
                                    hierarchy="keywords", audit=False, pii=False, cache=cache, progress=False)
        run_s = time.perf_counter() - t
        memory.phase("save_run")
        t = time.perf_counter()
        run.save(out_dir)
        save_s = time.perf_counter() - t
    del run, convs
    memory.phase("load_run")
    t = time.perf_counter()
    back = clio_lab.load_run(out_dir)
    top = back.hierarchy.top
    read_s = time.perf_counter() - t
    size = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file()) / 1e6
    print(f"\n### run_pipeline with no model call, {n:,} conversations")
    print(f"generate {gen_s:.1f} s, load_conversations {load_s:.1f} s, run_pipeline {run_s:.1f} s, save {save_s:.1f} s "
          f"({size:,.0f} MB), load_run {read_s:.1f} s ({len(top)} top clusters); peak memory {peak_mb():,.0f} MB")
    print("| step | seconds |\n|---|---|")
    for step, sec in (back.stats().get("seconds") or {}).items():
        print(f"| {step} | {sec:.1f} |")
    print(memory.table())


def end_to_end(n: int, embedder: str, concurrency: int, model_name: str, named: int, engine: str | None,
               raw: bool = True) -> None:
    """``run_pipeline`` on ``n`` synthetic conversations against the instant server, every privacy layer on
    (each answer checked for personal details, the raw scan, the aggregation thresholds, the auditor), names
    and tree extractive; then ``save_run``, and ``load_run`` in a process of its own. Beside it, the same
    facet requests sent by the raw ``AsyncOpenAI`` client (the ratio's denominator), unless ``raw`` is false:
    then only clio_lab's run, and the process's peak memory is the run's alone (the raw leg renders every
    prompt at once)."""
    memory = MemoryByStep()
    with tempfile.TemporaryDirectory() as folder:
        path = corpus_file(n, Path(folder))
        memory.phase("load_conversations (JSONL)")
        t = time.perf_counter()
        convs = clio_lab.load_conversations(path)
    print(f"{len(convs):,} synthetic conversations loaded in {time.perf_counter() - t:.1f} s; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    memory.phase("raw client")
    proc, url = start_server(named)
    try:
        model = LLM(model_name, api_base=url, api_key="not-needed", max_concurrency=concurrency)
        emb = HashingEmbedder(n_features=384) if embedder == "hashing" else embedder
        raw_s = None
        if raw:
            _, planned = facet_tasks(convs, resolve_specs(["request"]), llm=model, cache=None,
                                     embedder=HashingEmbedder())
            messages = [model.messages(task.prompt) for task in planned[0]]
            raw_s = asyncio.run(raw_client(messages, url, concurrency, planned[0][0].max_tokens,
                                           model_name.split("/", 1)[-1]))
            del planned, messages
        memory.phase("after the raw client")
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            memory.phase("run_pipeline, between steps")
            t = time.perf_counter()
            run = clio_lab.run_pipeline(convs, llm=model, embedder=emb, naming="extractive", hierarchy="extractive",
                                        pii=True, audit=True, cache=cache, progress=False, engine=engine)
            run_s = time.perf_counter() - t
            stats = run.stats()
            memory.phase("save_run")
            t = time.perf_counter()
            run.save(Path(out) / "run")
            save_s = time.perf_counter() - t
            memory.phase("after save_run")
            run_peak = peak_mb()
            del run, convs
            # read back in a process of its own, as a user opens a saved run (a new kernel, the explorer): its
            # memory is its own, not added to the run's
            read_s, top, read_mb = load_in_child(Path(out) / "run")
    finally:
        proc.terminate()
        proc.wait(10)
    facet_s = stats["seconds"]["facets"]
    print(f"\n### run_pipeline end to end, {n:,} conversations, embedder {embedder}, every privacy layer on")
    print(f"run_pipeline {run_s:.1f} s ({n / run_s:,.0f} conversations/s), save_run {save_s:.1f} s; peak memory of "
          f"the run and its save {run_peak:,.0f} MB (of this process, to the end: {peak_mb():,.0f} MB)")
    print(f"load_run in its own process {read_s:.1f} s ({top} top clusters), that process's peak {read_mb:,.0f} MB")
    if raw_s is not None:
        print(f"facet step {facet_s:.1f} s ({n / facet_s:,.0f}/s) against the raw client's {raw_s:.1f} s "
              f"({n / raw_s:,.0f}/s): ratio {raw_s / facet_s:.2f}")
    else:
        print(f"facet step {facet_s:.1f} s ({n / facet_s:,.0f}/s); the raw client was not run (--no-raw)")
    print(f"clusters {stats.get('clusters')}, per level {stats.get('clusters_per_level')}, llm calls "
          f"{stats.get('llm_calls')}, failed items {stats.get('failed_items')}")
    print("| step | seconds |\n|---|---|")
    for step, sec in (stats.get("seconds") or {}).items():
        print(f"| {step} | {sec:.1f} |")
    print(memory.table())


def load_in_child(folder: Path) -> tuple[float, int, float]:
    """``load_run(folder)`` in a new process: its seconds, the top level's size, and that process's peak MB."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forked parent through exec
    code = ("import json, re, sys, time, clio_lab\n"
            "t = time.perf_counter(); run = clio_lab.load_run(sys.argv[1]); top = len(run.hierarchy.top)\n"
            "s = time.perf_counter() - t\n"
            "kb = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
            "print(json.dumps([s, top, kb / 1024]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], check=True, capture_output=True, text=True)
    seconds, top, mb = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, top, mb


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus_file(n: int, folder: Path) -> Path:
    """Write ``generate_corpus(n, seed=1)`` as JSONL in a child process, so that the measured process holds
    only what ``load_conversations`` reads from the file, as in a user's run (the generator's dicts are not
    this process's memory)."""
    path = folder / f"synthetic_{n}.jsonl"
    code = ("import json, sys; from clio_lab.synthetic import generate_corpus\n"
            "with open(sys.argv[2], 'w', encoding='utf-8') as f:\n"
            "    for r in generate_corpus(int(sys.argv[1]), seed=1): f.write(json.dumps(r) + '\\n')\n")
    subprocess.run([sys.executable, "-c", code, str(n), str(path)], check=True)
    return path


class MemoryByStep:
    """Resident memory sampled every ``every`` seconds in a thread, each sample put under the pipeline step
    running at that moment (``clio_lab.pipeline._timed`` wrapped) or a label set with :meth:`phase`."""

    def __init__(self, every: float = 0.5):
        import threading
        from contextlib import contextmanager

        import clio_lab.pipeline as pipeline

        self.every, self.current, self.peaks = every, "start", {}
        self._stop = threading.Event()
        original = pipeline._timed

        @contextmanager
        def timed(timings, step):
            before, self.current = self.current, step
            try:
                with original(timings, step):
                    yield
            finally:
                self.current = before

        pipeline._timed = timed
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            mb = self.rss_mb()
            self.peaks[self.current] = max(self.peaks.get(self.current, 0.0), mb)

    def phase(self, label: str) -> None:
        self.current = label

    def table(self) -> str:
        self._stop.set()
        self._thread.join()
        rows = "\n".join(f"| {step} | {mb:,.0f} |" for step, mb in self.peaks.items())
        return "| step (in order) | peak resident MB |\n|---|---|\n" + rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the best of each is printed")
    ap.add_argument("--model", default="openai/gpt-4o-mini", help="the LiteLLM name sent to the instant server")
    ap.add_argument("--named", type=int, default=10, help="percent of the server's answers that name a person")
    ap.add_argument("--distinct", action="store_true",
                    help="make every conversation's text unique (the generator repeats some exactly; clio_lab asks "
                         "a repeated prompt once, the raw client sends every one)")
    ap.add_argument("--ray", type=int, default=0, metavar="WORKERS",
                    help="also run the PII-checked facet step on a local Ray cluster with this many workers")
    ap.add_argument("--pipeline", type=int, default=0, metavar="N",
                    help="instead: the whole pipeline with no model call on N conversations, then save and load_run")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="N",
                    help="instead: run_pipeline end to end on N conversations against the instant server, every "
                         "privacy layer on, then save and load_run")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="with --pipeline: save the run here and keep it (for benchmarks/widget_map.py --run DIR)")
    ap.add_argument("--embedder", default="hashing", help="with --end-to-end: 'hashing' or an embedder name")
    ap.add_argument("--engine", default=None, help="with --end-to-end: 'ray' or a Ray address")
    ap.add_argument("--no-raw", action="store_true",
                    help="with --end-to-end: skip the raw client's leg (its prompts, all rendered at once, would set "
                         "the process's peak memory)")
    args = ap.parse_args()
    if args.end_to_end:
        end_to_end(args.end_to_end, args.embedder, args.concurrency, args.model, args.named, args.engine,
                   raw=not args.no_raw)
        return
    if args.pipeline:
        if args.keep:
            pipeline_without_model(args.pipeline, args.keep)
            return
        with tempfile.TemporaryDirectory() as out:
            pipeline_without_model(args.pipeline, Path(out) / "run")
        return

    t = time.perf_counter()
    records = generate_corpus(args.n, seed=1)
    if args.distinct:  # no conversation repeats another's text, so every prompt is sent
        for i, record in enumerate(records):
            record["messages"][0]["content"] += f" (case {i})"
    convs = clio_lab.load_conversations(records)
    repeated = len(convs) - len({c.content_hash() for c in convs})
    print(f"{len(convs):,} synthetic conversations in {time.perf_counter() - t:.1f} s ({repeated:,} repeat another's "
          f"text exactly); {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    proc, url = start_server(args.named)
    try:
        # a model name in LiteLLM's price table, as in a real hosted run (an unknown name costs LiteLLM a scan
        # of that table on every call: measured 0.4 ms); the instant server answers whatever the name
        model = LLM(args.model, api_base=url, api_key="not-needed", max_concurrency=args.concurrency)
        embedder = HashingEmbedder()
        _, planned = facet_tasks(convs, resolve_specs(["request"]), llm=model, cache=None, embedder=embedder)
        messages = [model.messages(task.prompt) for task in planned[0]]
        max_tokens = planned[0][0].max_tokens
        detector = PIIDetector()
        detector.find("Load the model for Maria Lopez at 12 Main Street.")  # loaded before any clock starts
        best: dict[str, float] = {}
        calls: dict[str, int] = {"raw AsyncOpenAI": len(messages), LITELLM_ALONE: len(messages)}
        pii_counts = {}
        # run with PYTHONPATH at an older checkout (before batched checks) for the "before" figures
        batch = getattr(runner, "CHECK_BATCH", None)
        variants = [("clio_lab, PII check off", False, batch, None)]
        variants += ([("clio_lab, PII check on, in batches", detector, batch, None),
                      ("clio_lab, PII check on, one answer at a time", detector, 1, None)] if batch else
                     [(f"clio_lab at {clio_lab.__file__}, PII check on", detector, None, None)])
        if args.ray:
            from clio_lab.engine import RayEngine

            engine = RayEngine(concurrency=args.ray, batch_size=max(64, args.n // (10 * args.ray)),
                               init_kwargs={"num_cpus": args.ray})
            engine.connect()  # the cluster's start is not the step's
            clock = BatchClock(engine)
            variants.append((f"clio_lab on Ray ({args.ray} workers), PII check on", detector, batch, engine))
        cpu: dict[str, float] = {}
        steady: tuple[str, float] | None = None

        def keep(label: str, seconds: float, cpu_seconds: float) -> None:
            if seconds < best.get(label, float("inf")):
                best[label], cpu[label] = seconds, cpu_seconds

        for _ in range(args.repeats):
            c = time.process_time()
            s = asyncio.run(raw_client(messages, url, args.concurrency, max_tokens, args.model.split("/", 1)[-1]))
            keep("raw AsyncOpenAI", s, time.process_time() - c)
            c = time.process_time()
            s = asyncio.run(litellm_alone(model, messages, args.concurrency, max_tokens))
            keep(LITELLM_ALONE, s, time.process_time() - c)
            for label, pii, size, engine in variants:
                if batch:
                    runner.CHECK_BATCH = size
                if engine is not None:
                    clock.start()
                with tempfile.TemporaryDirectory() as d:
                    c, start = time.process_time(), time.perf_counter()
                    res = extract_facets(convs, ["request"], llm=model, cache=Cache(d), pii=pii, embedder=embedder,
                                         progress=False, engine=engine)
                    s = time.perf_counter() - start
                if batch:
                    runner.CHECK_BATCH = batch
                if engine is not None and s < best.get(label, float("inf")):
                    steady = clock.line(), clock.rate()
                keep(label, s, time.process_time() - c)
                calls[label] = res.stats.calls
                if pii:
                    counts = res.pii.get("request", {})
                    assert not pii_counts or counts == pii_counts, (counts, pii_counts)  # same answers both ways
                    pii_counts = counts
                assert not res.failures, res.failures[:3]
    finally:
        proc.terminate()
        proc.wait(10)
    raw = best["raw AsyncOpenAI"]
    print(f"\n### The request facet, {len(convs):,} conversations, concurrency {args.concurrency}")
    print("| client | seconds | conversations/s | ratio to raw | model calls | calls/s | CPU s of this process |\n"
          "|---|---|---|---|---|---|---|")
    for label, s in best.items():
        print(f"| {label} | {s:.1f} | {len(convs) / s:,.0f} | {raw / s:.2f} | {calls[label]:,} | {calls[label] / s:,.0f} "
              f"| {cpu[label]:.1f} |")
    if steady:
        print(f"\nOn Ray: {steady[0]} ({steady[1] * raw / len(convs):.2f} of the raw client's rate)")
    print(f"\nPII check: {pii_counts}; peak memory of this process {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
