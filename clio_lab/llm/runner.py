"""The task runner: a list of :class:`LLMTask` answered from the cache or the model.

:func:`run_tasks` answers each task with bounded async concurrency, retries transient errors with backoff
(tenacity; a server's ``Retry-After`` honoured), parses and validates each answer with a repair-and-retry
path, writes each success to the cache the moment it arrives (so an interrupted run loses only the calls in
flight) and records every failure with its reason and kind. :meth:`LLM.run <clio_lab.llm.LLM.run>` calls it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..cache import Cache
from .errors import BadResponse, ParseError, reason_for, retry_after, transient_errors
from .prompts import Prompt

if TYPE_CHECKING:  # pragma: no cover
    from .client import LLM

BACKOFF_S = 1.0  # the first wait between retries when the server names none; doubles each retry
MAX_RETRY_WAIT_S = 60.0  # a longer Retry-After is a recorded failure, not a silent minutes-long stall
CHARS_PER_TOKEN_LIMIT = 16  # an answer longer than max_tokens x this cannot have honoured max_tokens
CHECK_BATCH = 256  # the most answers one batched check reads at once (benchmarks/scale.py: 1 for one at a time)
# On the in-process model a re-ask waits behind the first attempts (benchmarks/local_calls.py: False for before)
LOCAL_REASKS_LAST = True
# ... and the waiting calls are asked in their prompts' order ("prompt"), or as they came ("arrival": before)
LOCAL_CALL_ORDER = "prompt"


@dataclass
class LLMTask:
    """One item for the model.

    Args:
        item_id: the id the answer belongs to (a conversation id, a cluster id).
        prompt: the rendered prompt.
        parse: turns raw answer text into a value or raises :class:`ParseError`.
        key_parts: everything besides model and prompt that changes the answer (step, version, inputs).
            Its ``step`` (and ``facet``) also go with the call (:attr:`step`), so that an in-process provider
            (a test's fake model) can tell the steps apart without reading the prompt.
        retry_prompt: optional; given the failed attempt number and error, returns the prompt for the next
            attempt (e.g. other worked examples). By default the same prompt is re-asked with another seed.
        check: optional; a check of the parsed values that is cheaper per value in batches (the PII check of
            facet answers): called with a list of values, it returns for each the value to keep or the
            :class:`ParseError` to treat as that attempt's (re-asked like a parse error). Tasks that share one
            ``check`` object have their answers checked together, in a worker thread, as they arrive.
    """

    item_id: str
    prompt: Prompt
    parse: Callable[[str], Any]
    key_parts: dict[str, Any]
    retry_prompt: Callable[[int, ParseError], Prompt | None] | None = None
    max_tokens: int = 64
    check: Callable[[list[Any]], list[Any]] | None = None

    @property
    def step(self) -> str:
        """The step asking, with the facet for facet calls (``"facet:request"``, ``"name_clusters"``)."""
        return ":".join(str(self.key_parts[k]) for k in ("step", "facet") if k in self.key_parts)


@dataclass
class LLMOutcome:
    item_id: str
    ok: bool
    value: Any = None
    raw: str | None = None
    error: str | None = None
    attempts: int = 0
    cached: bool = False
    note: str | None = None                  # set when the kept value is a fallback (e.g. redacted)
    attempt_errors: list[str] = field(default_factory=list)  # why earlier attempts were re-asked
    attempt_kinds: list[str] = field(default_factory=list)   # their ParseError kinds, in the same order
    note_kind: str | None = None             # the kind of the error whose fallback was kept


@dataclass
class CallStats:
    """Counts for one step: real model calls, cache hits, failures, tokens and cost."""

    calls: int = 0
    cache_hits: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    seconds: float = 0.0

    def add(self, other: CallStats) -> None:
        for name in ("calls", "cache_hits", "failed", "retries", "prompt_tokens", "completion_tokens",
                     "cost_usd", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_known = self.cost_known and other.cost_known

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _backoff(state: RetryCallState) -> float:
    """The server's ``Retry-After`` when it gave one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome is not None else None
    asked = retry_after(exc) if exc is not None else None
    if asked is not None:
        return asked
    return min(MAX_RETRY_WAIT_S, BACKOFF_S * 2 ** (state.attempt_number - 1)) * (0.75 + random.random() / 2)


async def call_with_retries(llm: LLM, prompt: Prompt, max_tokens: int, seed: int, stats: CallStats,
                            step: str = "") -> tuple[str, dict[str, Any]]:
    """One answer, retrying transient errors ``llm.max_retries`` times; every request counts in ``stats``."""
    transient = transient_errors()

    def worth_retrying(exc: BaseException) -> bool:
        asked = retry_after(exc)
        return isinstance(exc, transient) and (asked is None or asked <= MAX_RETRY_WAIT_S)

    def count_retry(state: RetryCallState) -> None:
        stats.retries += 1

    try:
        async for attempt in AsyncRetrying(stop=stop_after_attempt(llm.max_retries + 1), wait=_backoff,
                                           retry=retry_if_exception(worth_retrying), before_sleep=count_retry,
                                           sleep=asyncio.sleep, reraise=True):
            with attempt:
                stats.calls += 1  # every request the server sees (no other layer retries)
                return await llm.acall(prompt, max_tokens=max_tokens, seed=seed, step=step)
    except transient as exc:
        asked = retry_after(exc)
        if asked is not None and asked > MAX_RETRY_WAIT_S:
            raise BadResponse(f"{reason_for(exc, llm.timeout)}; the server asked to wait {asked:.0f} s "
                              f"(Retry-After), longer than the {MAX_RETRY_WAIT_S:.0f} s clio_lab waits: "
                              "run again later (answers so far are cached)") from None
        raise
    raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying either returns or raises


def check_values(check_many: Callable[[list[Any]], list[Any]], values: list[Any]) -> list[Any]:
    """``check_many(values)``: for each value the value to keep or its :class:`ParseError`, one per value."""
    results = check_many(values)
    if len(results) != len(values):
        raise RuntimeError(f"the check returned {len(results)} results for {len(values)} values")
    return results


class BatchedCheck:
    """Checks the values of concurrent tasks together: each :meth:`check` waits while the values that
    arrived with it (up to ``max_batch``) go through ``check_many`` in one call in a worker thread, so the
    event loop goes on sending requests meanwhile. One batch runs at a time; what arrives during it forms the
    next, so the batches grow with the rate at which answers come in."""

    def __init__(self, check_many: Callable[[list[Any]], list[Any]], max_batch: int | None = None):
        self.check_many = check_many
        self.max_batch = max_batch or CHECK_BATCH
        self._queue: list[tuple[Any, asyncio.Future]] = []
        self._draining = False

    async def check(self, value: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((value, future))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        result = await future
        if isinstance(result, ParseError):
            raise result
        return result

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # the answers that are ready now join this batch
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                try:
                    results = await asyncio.to_thread(check_values, self.check_many, [v for v, _ in batch])
                except Exception as exc:  # noqa: BLE001 - every waiting task gets the error, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False


def strip_prefill(text: str, prefill: str) -> str:
    """Chat models sometimes repeat the pre-filled opening; keep only what follows it."""
    t = text.strip().strip('"').strip()
    if prefill and t.lower().startswith(prefill.lower()):
        return t[len(prefill):].lstrip()
    return text


async def answer_task(llm: LLM, task: LLMTask, cache: Cache | None, key: str, stats: CallStats,
                      sem: asyncio.Semaphore | PromptOrderGate,
                      checks: dict[int, BatchedCheck] | None = None) -> LLMOutcome:
    """One task: call, parse, check, re-ask on a :class:`ParseError` (at most ``llm.parse_retries`` times, and not
    once the same prompt got the same answer twice: :func:`next_prompt`), cache the result. The task holds one of
    ``sem``'s call slots from its first call to its last, except while it waits for its batch of checks
    (``checks``: one :class:`BatchedCheck` per ``task.check``), so that other calls go on meanwhile, and, on the
    in-process model, before a re-ask (which then waits behind the first attempts); a checked answer is cached
    the moment its batch is read."""
    checks = checks if checks is not None else {}
    if task.check is not None and id(task.check) not in checks:
        checks[id(task.check)] = BatchedCheck(task.check)
    slot = _Slot(sem)
    await slot.take(task.prompt)
    try:
        return await _answer_task(llm, task, cache, key, stats, slot, checks)
    finally:
        slot.give()


class PromptOrderGate:
    """The in-process model's one call slot, handed to the waiting call whose prompt comes first: first attempts
    before re-asks (a re-ask waits behind the first attempts), each in the order of their prompts' text. llama.cpp
    reuses the KV cache of the prefix a prompt shares with the prompt before it, and prompts in text order share
    the longest prefixes (the facet step's worked examples; the privacy audit's prompts share too little for the
    order to matter: benchmarks/local_calls.py). Whatever the order, each prompt gets the same answer. With ``order="arrival"`` the waiting calls are served as they came (before)."""

    def __init__(self, order: str = "prompt"):
        if order not in ("prompt", "arrival"):
            raise ValueError(f"order must be 'prompt' or 'arrival', not {order!r}")
        self.order, self.free = order, 1
        self._waiting: list[tuple[tuple[int, str, str], int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def acquire(self, prompt: Prompt | None = None, reask: bool = False) -> None:
        if self.free and not self._waiting:
            self.free -= 1
            return
        # the prompt's own strings, not a copy: a window of 50,000 waiting prompts holds no second set of them
        text = (prompt.body, prompt.prefill) if prompt is not None and self.order == "prompt" else ("", "")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, ((int(reask), *text), next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted, then cancelled before it ran: pass the slot on
                self.release()
            raise

    def release(self) -> None:
        while self._waiting:
            fut = heapq.heappop(self._waiting)[2]
            if not fut.done():  # a cancelled waiter is skipped
                fut.set_result(None)
                return
        self.free += 1


class _Slot:
    """One task's hold on a call slot (an :class:`asyncio.Semaphore`, or the in-process model's
    :class:`PromptOrderGate`), given back and taken again around a wait."""

    def __init__(self, sem: asyncio.Semaphore | PromptOrderGate):
        self.sem, self.held = sem, False

    async def take(self, prompt: Prompt | None = None, reask: bool = False) -> None:
        if isinstance(self.sem, PromptOrderGate):
            await self.sem.acquire(prompt, reask)
        else:
            await self.sem.acquire()
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.sem.release()


async def _answer_task(llm: LLM, task: LLMTask, cache: Cache | None, key: str, stats: CallStats,
                       slot: _Slot, checks: dict[int, BatchedCheck]) -> LLMOutcome:
    prompt: Prompt | None = task.prompt
    raw, error, tries = None, None, 0
    seen: list[str] = []
    kinds: list[str] = []
    asked: set[tuple[str, str]] = set()
    for attempt in range(llm.parse_retries + 1):
        if prompt is None:  # no re-ask is worth a call (next_prompt)
            break
        tries = attempt + 1
        if not slot.held:
            await slot.take(prompt, reask=attempt > 0)
        try:
            raw, usage = await call_with_retries(llm, prompt, task.max_tokens, attempt, stats, task.step)
        except Exception as exc:  # noqa: BLE001 - any provider error becomes a recorded failure
            return LLMOutcome(task.item_id, False, raw=raw, attempts=attempt + 1,
                              error=f"call failed: {reason_for(exc, llm.timeout)}")
        count_usage(stats, usage)
        raw, value = read_answer(task, prompt, raw)
        if task.check is not None and not isinstance(value, ParseError):
            slot.give()  # the call slot is free while the batch is read (a re-ask takes one again)
            try:
                value = await checks[id(task.check)].check(value)
            except ParseError as exc:
                value = exc
        if isinstance(value, ParseError):
            error = value
            prompt = next_prompt(llm, task, attempt, error, prompt, seen, kinds, stats, raw, asked)
            if prompt is not None and llm.is_local and LOCAL_REASKS_LAST:
                # the in-process model answers one call at a time, its waiting calls in their prompts' order
                # (PromptOrderGate), so that neighbours share the KV cache of their worked examples: a re-ask
                # waits behind the first attempts instead of breaking that order twice (benchmarks/local_calls.py:
                # the bundled corpus's facet step in 205-206 s against 232-245 s on 2 cores, the same answers)
                slot.give()
                await asyncio.sleep(0)  # tasks not yet started join the queue first
            continue
        entry = {"value": value, "raw": raw, "attempt_errors": seen, "attempt_kinds": kinds}
        if cache is not None:
            cache.set(key, entry)
        return outcome_of(task, entry, attempt + 1)
    entry = settled(task, error, raw, seen, kinds)
    if cache is not None:
        cache.set(key, entry)
    return outcome_of(task, entry, tries)


def count_usage(stats: CallStats, usage: dict[str, Any]) -> None:
    """Add one answer's tokens and cost to ``stats``."""
    stats.prompt_tokens += usage["prompt_tokens"]
    stats.completion_tokens += usage["completion_tokens"]
    if usage["cost"] is None:
        stats.cost_known = False
    else:
        stats.cost_usd += usage["cost"]


def read_answer(task: LLMTask, prompt: Prompt, raw: str) -> tuple[str, Any]:
    """The raw answer as kept (cut when longer than ``max_tokens`` allows) and its parsed value, or the
    :class:`ParseError` that the answer gets re-asked for (before any batched check)."""
    limit = max(400, task.max_tokens * CHARS_PER_TOKEN_LIMIT)
    if len(raw) > limit:  # a server that ignores max_tokens: never kept as an answer
        size, raw = len(raw), raw[:limit] + " [... cut by clio_lab]"
        return raw, ParseError(f"the answer has {size:,} characters, more than max_tokens={task.max_tokens} "
                               "allows (the server ignored max_tokens)", kind="too_long")
    try:
        return raw, task.parse(strip_prefill(raw, prompt.prefill))
    except ParseError as exc:
        return raw, exc


def next_prompt(llm: LLM, task: LLMTask, attempt: int, error: ParseError, prompt: Prompt, seen: list[str],
                kinds: list[str], stats: CallStats, raw: str | None, asked: set[tuple[str, str]]) -> Prompt | None:
    """Record a failed attempt; the prompt of the re-ask (the same one, asked with another seed, unless the
    task gives another), or ``None`` for no re-ask: the attempts are spent, or this prompt already got this very
    answer in an earlier attempt (``asked``: the prompts and answers of the failed attempts so far). A model that
    gives the same answer to the same prompt twice, whatever the seed (greedy sampling; a server that ignores the
    seed), gives it a third time too: that call would be paid for nothing."""
    seen.append(str(error)[:200])
    kinds.append(error.kind)
    said = (prompt.as_transcript(), raw or "")
    if attempt >= llm.parse_retries or said in asked:
        return None
    asked.add(said)
    stats.retries += 1
    nxt = task.retry_prompt(attempt, error) if task.retry_prompt else None
    return nxt or prompt


def settled(task: LLMTask, error: ParseError | None, raw: str | None, seen: list[str],
            kinds: list[str]) -> dict[str, Any]:
    """The cache entry of a task whose every attempt failed: its fallback where the error carries one (e.g. an
    answer still holding personal details, kept redacted, with a note), else a failure. A failure is cached as
    one (never as a success) so that a warm re-run does not pay for the same refusal again; an LLM with
    ``retry_failed=True`` re-asks it."""
    if error is not None and getattr(error, "fallback", None) is not None:
        return {"value": error.fallback, "raw": raw, "note": str(error)[:200], "note_kind": error.kind,
                "attempt_errors": seen, "attempt_kinds": kinds}
    return {"failed": f"invalid answer: {error}", "raw": raw, "attempt_errors": seen, "attempt_kinds": kinds}


def outcome_of(task: LLMTask, entry: dict[str, Any], attempts: int) -> LLMOutcome:
    """The outcome of a task answered now, from its cache entry."""
    return dataclasses.replace(_from_cache(task, entry), cached=False, attempts=attempts)


def _from_cache(task: LLMTask, hit: dict[str, Any]) -> LLMOutcome:
    ok = "failed" not in hit
    return LLMOutcome(task.item_id, ok, value=hit.get("value"), raw=hit.get("raw"), cached=True,
                      error=None if ok else hit["failed"], note=hit.get("note"), note_kind=hit.get("note_kind"),
                      attempt_errors=list(hit.get("attempt_errors") or []),
                      attempt_kinds=list(hit.get("attempt_kinds") or []))


def plan_tasks(llm: LLM, tasks: list[LLMTask], cache: Cache | None) -> tuple[
        dict[int, dict[str, Any]], list[tuple[int, LLMTask, str]], list[tuple[int, LLMTask, int]]]:
    """What answering ``tasks`` takes: the cache entries that answer some (by position; a cached failure
    does not count when ``llm.retry_failed``), the tasks to ask (position, task, key), and the repeats (position,
    task, position of the task to ask with the same key: the same prompt, a repeated conversation, asked once
    and answered as from the cache, as a re-run would answer it). :func:`clio_lab.estimate.estimate` counts
    with the same plan."""
    hits: dict[int, dict[str, Any]] = {}
    pending: list[tuple[int, LLMTask, str]] = []
    repeats: list[tuple[int, LLMTask, int]] = []
    asked: dict[str, int] = {}
    for i, task in enumerate(tasks):
        key = llm.task_key(task)
        if key in asked:
            repeats.append((i, task, asked[key]))
            continue
        hit = cache.get(key) if cache is not None else None
        if hit is not None and not ("failed" in hit and llm.retry_failed):
            hits[i] = hit
        else:
            asked[key] = i
            pending.append((i, task, key))
    return hits, pending, repeats


async def run_tasks(llm: LLM, tasks: list[LLMTask], *, cache: Cache | None = None, desc: str = "llm",
                    progress: bool = True, engine: Any = None) -> tuple[list[LLMOutcome], CallStats]:
    """Answer every task (cache first); outcomes come back in the order of ``tasks``. With an ``engine``
    (:class:`clio_lab.engine.RayEngine`) the tasks the cache lacks are answered on a cluster, and each batch's
    answers are cached here as it comes back."""
    stats = CallStats()
    start = time.perf_counter()
    outcomes: list[LLMOutcome | None] = [None] * len(tasks)
    hits, pending, repeats = plan_tasks(llm, tasks, cache)
    for i, hit in hits.items():
        stats.cache_hits += 1
        outcomes[i] = _from_cache(tasks[i], hit)
    try:
        await _answer_pending(llm, pending, cache, outcomes, stats, progress, desc, engine)
    finally:
        for i, task, first in repeats:
            if outcomes[first] is not None:
                outcomes[i] = dataclasses.replace(outcomes[first], item_id=task.item_id, cached=True)
                stats.cache_hits += 1
    stats.failed = sum(1 for o in outcomes if o is not None and not o.ok)
    stats.seconds = time.perf_counter() - start
    return [o for o in outcomes if o is not None], stats


async def _answer_pending(llm: LLM, pending: list[tuple[int, LLMTask, str]], cache: Cache | None,
                          outcomes: list[LLMOutcome | None], stats: CallStats, progress: bool, desc: str,
                          engine: Any) -> None:
    """Answer the tasks the cache lacks, into ``outcomes``: on the ``engine``, or here with at most
    ``llm.max_concurrency`` calls in flight."""
    if engine is not None and pending:
        await asyncio.to_thread(_answer_on, engine, llm, pending, cache, outcomes, stats, progress, desc)
        pending = []
    if llm.is_local and pending:
        # load (and on a new machine, probe) the in-process model here, so that a model that cannot run
        # raises LocalModelError to the caller instead of failing every item one by one
        from .local import load_llama

        load_llama(llm.model)
    sem = PromptOrderGate(LOCAL_CALL_ORDER) if llm.is_local else asyncio.Semaphore(max(1, llm.max_concurrency))
    bar = _progress(len(pending), desc) if progress and pending else None

    checks = {id(t.check): BatchedCheck(t.check) for _, t, _ in pending if t.check is not None}

    async def run_one(i: int, task: LLMTask, key: str) -> None:
        outcomes[i] = await answer_task(llm, task, cache, key, stats, sem, checks)
        if bar is not None:
            bar.update(1)

    try:
        await asyncio.gather(*(run_one(i, t, k) for i, t, k in pending))
    finally:
        if bar is not None:
            bar.close()


def _answer_on(engine: Any, llm: LLM, pending: list[tuple[int, LLMTask, str]], cache: Cache | None,
               outcomes: list[LLMOutcome | None], stats: CallStats, progress: bool, desc: str) -> None:
    """The pending tasks answered by ``engine``, each batch's entries cached under this run's keys as it comes
    back (a call that failed there is recorded as failed here, and not cached, as in a run here)."""
    bar = _progress(len(pending), f"{desc} (cluster)") if progress else None
    try:
        for positions, entries, batch_stats in engine.answer(llm, [t for _, t, _ in pending]):
            stats.add(batch_stats)
            for pos, entry in zip(positions, entries, strict=True):
                i, task, key = pending[pos]
                if "call_failed" in entry:
                    outcomes[i] = LLMOutcome(task.item_id, False, error=entry["call_failed"])
                    continue
                if cache is not None:
                    cache.set(key, entry)
                tries = len(entry.get("attempt_errors") or []) + (0 if "failed" in entry or "note" in entry else 1)
                outcomes[i] = outcome_of(task, entry, tries)
            if bar is not None:
                bar.update(len(entries))
    finally:
        if bar is not None:
            bar.close()
    missing = [task.item_id for i, task, _ in pending if outcomes[i] is None]
    if missing:
        raise RuntimeError(f"the engine returned no answer for {len(missing)} of {len(pending)} tasks "
                           f"(first: {missing[0]!r})")


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=os.environ.get("CLIO_LAB_PROGRESS") == "0")


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from synchronous code (a script, a Jupyter cell, a Ray worker's batch).

    The calls a thread makes share one event loop: LiteLLM keeps its HTTP clients per event loop and closes
    none when a loop ends, so a new loop per call (``asyncio.run``) left every call's connections open: 64 file
    descriptors per call at concurrency 64, and the 16th batch of a worker failed with "Too many open files"
    under a limit of 1,024. On one loop the clients, and their connections, are reused.

    In a thread with no running loop (a script, a Ray worker) the loop is that thread's own
    (``asyncio.Runner``: Ctrl-C cancels the call as ``asyncio.run`` did). Where a loop already runs (Jupyter),
    the call goes to one loop in a daemon thread of its own, and Ctrl-C while waiting cancels it; a second such
    call while that loop is busy, or one made from a coroutine on it, gets a loop of its own. As ``asyncio.run``
    did, what a call started and left running is cancelled when it ends.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_runner().run(_own_tasks(coro))
    shared = _SHARED.acquire()
    if shared is None:
        return _run_on_new_loop(coro)
    loop, finished = shared
    try:
        future = asyncio.run_coroutine_threadsafe(_own_tasks(coro, finished), loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise
    finally:
        finished.wait(10)  # the call's tasks cancelled and awaited (after Ctrl-C, a second one ends the wait)
        _SHARED.release()


_local = threading.local()


def _thread_runner() -> asyncio.Runner:
    """This thread's ``asyncio.Runner`` (made again in a forked child, which must not use its parent's loop)."""
    runner = getattr(_local, "runner", None)
    if runner is None or _local.pid != os.getpid():
        runner = _local.runner = asyncio.Runner()
        _local.pid = os.getpid()
    return runner


async def _own_tasks(coro: Coroutine[Any, Any, Any], finished: threading.Event | None = None) -> Any:
    """``coro``, then what it left running on the loop cancelled (``asyncio.run``'s clean-up: a failed gather
    leaves its other tasks running), then ``finished`` set."""
    try:
        return await coro
    finally:
        me = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        for task in left:
            task.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)
        if finished is not None:
            finished.set()


class _SharedLoop:
    """The process's event loop for :func:`run_sync`, in a daemon thread, used by one call at a time (made
    again in a forked child, whose copy of the thread does not run)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def acquire(self) -> tuple[asyncio.AbstractEventLoop, threading.Event] | None:
        if threading.current_thread() is self._thread or not self._busy.acquire(blocking=False):
            return None
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="clio_lab-event-loop",
                                                daemon=True)
                self._thread.start()
                self._pid = os.getpid()
            return self._loop, threading.Event()

    def release(self) -> None:
        self._busy.release()


_SHARED = _SharedLoop()


def _run_on_new_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(coro)`` in a helper thread (this thread already runs an event loop)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
