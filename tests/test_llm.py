import asyncio
import dataclasses

import pytest

from clio_lab.cache import Cache
from clio_lab.llm import LLM, LLMTask, ParseError, PromptLibrary
from clio_lab.llm.prompts import Prompt


def _tasks(n, parse=None):
    def default_parse(text):
        text = text.strip()
        if len(text.split()) < 2:
            raise ParseError(f"too short: {text!r}")
        return text

    return [LLMTask(item_id=f"i{i}", prompt=Prompt(body=f"Conversation:\nUser: topic number {i}\n\nQuestion: q\nAnswer:",
                                                   prefill="The request is to"),
                    parse=parse or default_parse, key_parts={"step": "test", "item": i}) for i in range(n)]


def test_answers_are_cached_and_a_rerun_makes_no_calls(tmp_path, fake_llm):
    llm = LLM(model="fake/m", prompt_style="completion")
    cache = Cache(tmp_path)
    out, stats = llm.run(_tasks(5), cache=cache)
    assert all(o.ok for o in out) and stats.calls == 5 and stats.cache_hits == 0
    assert out[3].value == "help with topic number."
    out2, stats2 = llm.run(_tasks(5), cache=cache)
    assert stats2.calls == 0 and stats2.cache_hits == 5 and [o.value for o in out2] == [o.value for o in out]


def test_rate_limits_are_retried_with_backoff(tmp_path, fake_llm, monkeypatch):
    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    fake_llm.fail_first = 2
    out, stats = LLM(model="fake/m", prompt_style="completion", max_retries=3).run(_tasks(1), cache=None)
    assert out[0].ok and stats.calls == 3 and stats.retries == 2
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 1.2  # exponential


def test_exhausted_retries_become_a_recorded_failure_never_cached(tmp_path, fake_llm, monkeypatch):
    async def no_sleep(s):
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    fake_llm.fail_first = 100
    cache = Cache(tmp_path)
    out, stats = LLM(model="fake/m", prompt_style="completion", max_retries=1).run(_tasks(2), cache=cache)
    assert not any(o.ok for o in out) and stats.failed == 2
    assert "rate limited by the server (HTTP 429)" in out[0].error
    assert len(cache) == 0
    fake_llm.fail_first = 0
    out, stats = LLM(model="fake/m", prompt_style="completion").run(_tasks(2), cache=cache)
    assert all(o.ok for o in out) and stats.calls == 2  # the failures were not cached


def test_invalid_answers_are_re_asked_then_recorded(tmp_path, fake_llm):
    fake_llm.garbage_first = 1
    out, stats = LLM(model="fake/m", prompt_style="completion").run(_tasks(1), cache=None)
    assert out[0].ok and out[0].attempts == 2 and stats.retries == 1
    fake_llm.garbage_first, fake_llm.vary_garbage = 10, True
    out, stats = LLM(model="fake/m", prompt_style="completion", max_parse_retries=2).run(_tasks(1), cache=None)
    assert not out[0].ok and out[0].attempts == 3 and stats.calls == 3 and out[0].raw.startswith("x")
    # The same prompt got the same bad answer twice: a third ask would buy it again, so none is made.
    fake_llm.reset()
    fake_llm.garbage_first = 10
    cache = Cache(tmp_path)
    out, stats = LLM(model="fake/m", prompt_style="completion", max_parse_retries=2).run(_tasks(1), cache=cache)
    assert not out[0].ok and out[0].attempts == 2 and stats.calls == 2 and stats.retries == 1
    assert out[0].raw == "x" and "invalid answer" in out[0].error and len(out[0].attempt_errors) == 2
    # Remembered as a failure, never as a success: a re-run reports it again without paying for it ...
    fake_llm.reset()
    again, stats = LLM(model="fake/m", prompt_style="completion").run(_tasks(1), cache=cache)
    assert not again[0].ok and again[0].cached and again[0].error == out[0].error and fake_llm.calls == 0
    assert stats.failed == 1 and stats.cache_hits == 1
    # ... and retry_failed=True asks again and caches the success.
    fixed, stats = LLM(model="fake/m", prompt_style="completion", retry_failed=True).run(_tasks(1), cache=cache)
    assert fixed[0].ok and stats.calls == 1


def test_a_prompt_repeated_in_one_run_is_asked_once_and_every_item_keeps_its_answer(tmp_path, fake_llm):
    """Repeated conversations give the same task key (the same prompt): the model is asked once and every item
    gets the answer, counted as from the cache (a re-run would answer it so); a failure is every item's."""
    llm = LLM(model="fake/m", prompt_style="completion")
    base = _tasks(3)
    tasks = [*base, *(dataclasses.replace(t, item_id=f"again-{t.item_id}") for t in base[:2])]
    for cache in (None, Cache(tmp_path)):
        fake_llm.reset()
        out, stats = llm.run(tasks, cache=cache)
        assert fake_llm.calls == stats.calls == 3 and stats.cache_hits == 2
        assert [o.item_id for o in out] == ["i0", "i1", "i2", "again-i0", "again-i1"]
        assert [o.value for o in out[3:]] == [o.value for o in out[:2]] and all(o.ok for o in out)
        assert [o.cached for o in out] == [False, False, False, True, True]
    fake_llm.reset()
    fake_llm.garbage_first, fake_llm.vary_garbage = 30, True
    out, stats = llm.run(tasks, cache=None)
    assert fake_llm.calls == 3 * (llm.parse_retries + 1) and stats.failed == 5
    assert out[3].item_id == "again-i0" and not out[3].ok and out[3].error == out[0].error


def test_concurrency_is_bounded(fake_llm):
    fake_llm.delay = 0.05
    LLM(model="fake/m", prompt_style="completion", max_concurrency=3).run(_tasks(12), cache=None)
    assert fake_llm.max_in_flight == 3


def test_the_in_process_model_asks_its_re_asks_after_the_first_attempts(monkeypatch):
    # the in-process model answers one call at a time in the tasks' order, which the facet step sorts so that
    # neighbours share worked examples (llama.cpp reuses their KV cache): a re-ask waits at the back of the
    # queue instead of breaking that order; a hosted model's re-ask follows at once
    import clio_lab.llm.local as local

    monkeypatch.setattr(local, "load_llama", lambda *a, **k: None)
    asked = []

    async def record(self, prompt, *, seed=0, **kwargs):
        asked.append((prompt.body.split("topic number ")[1].split("\n")[0], seed))
        return ("no" if seed == 0 else "help with it."), {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.0}

    monkeypatch.setattr(LLM, "acall", record)
    out, stats = LLM(model="clio_local/gemma-3-270m").run(_tasks(3), cache=None)
    assert all(o.ok for o in out) and stats.retries == 3
    assert asked == [("0", 0), ("1", 0), ("2", 0), ("0", 1), ("1", 1), ("2", 1)]
    asked.clear()
    LLM(model="fake/m", prompt_style="completion", max_concurrency=1).run(_tasks(3), cache=None)
    assert asked == [("0", 0), ("0", 1), ("1", 0), ("1", 1), ("2", 0), ("2", 1)]


def test_the_in_process_model_asks_in_the_order_of_its_prompts(monkeypatch):
    # llama.cpp reuses the KV cache of the prefix a prompt shares with the one before: the in-process model's
    # waiting calls go in their prompts' text order (first attempts, then re-asks), whatever order they came in,
    # and each re-ask keeps its own prompt (here: "again" and the topic)
    import clio_lab.llm.local as local

    monkeypatch.setattr(local, "load_llama", lambda *a, **k: None)
    asked = []

    async def record(self, prompt, *, seed=0, **kwargs):
        asked.append((prompt.body.split("topic number ")[1].split("\n")[0], seed))
        await asyncio.sleep(0.01)  # a real call waits for the model's thread, and the other tasks queue meanwhile
        return ("no" if seed == 0 else "help with it."), {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.0}

    monkeypatch.setattr(LLM, "acall", record)
    tasks = [_tasks(10)[i] for i in (7, 2, 9, 0, 5)]
    for t in tasks:
        t.retry_prompt = lambda attempt, error, t=t: dataclasses.replace(t.prompt, body="Again.\n" + t.prompt.body)
    out, stats = LLM(model="clio_local/gemma-3-270m").run(tasks, cache=None)
    assert [o.item_id for o in out] == ["i7", "i2", "i9", "i0", "i5"] and all(o.ok for o in out)
    # the first call goes at once; the rest wait and are served in text order
    assert asked == [("7", 0), ("0", 0), ("2", 0), ("5", 0), ("9", 0),
                     ("0", 1), ("2", 1), ("5", 1), ("7", 1), ("9", 1)]
    asked.clear()
    monkeypatch.setattr("clio_lab.llm.runner.LOCAL_CALL_ORDER", "arrival")
    LLM(model="clio_local/gemma-3-270m").run(tasks, cache=None)
    assert asked == [("7", 0), ("2", 0), ("9", 0), ("0", 0), ("5", 0),
                     ("7", 1), ("2", 1), ("9", 1), ("0", 1), ("5", 1)]


def test_a_cancelled_call_passes_the_in_process_slot_on():
    from clio_lab.llm.runner import PromptOrderGate

    async def main():
        gate, order = PromptOrderGate(), []
        await gate.acquire(Prompt(body="a"))

        async def waiter(body):
            await gate.acquire(Prompt(body=body))
            order.append(body)
            gate.release()

        tasks = {b: asyncio.create_task(waiter(b)) for b in ("c", "b", "d")}
        await asyncio.sleep(0)
        tasks["b"].cancel()  # waiting: skipped
        gate.release()  # to "c"
        await asyncio.sleep(0)
        await asyncio.gather(tasks["c"], tasks["d"])
        assert order == ["c", "d"] and gate.free == 1
        with pytest.raises(ValueError, match="order must be"):
            PromptOrderGate("random")

    asyncio.run(main())


def test_a_check_reads_the_answers_of_concurrent_calls_in_batches(tmp_path, fake_llm):
    """LLMTask.check: values of tasks in flight together are checked in one call; a ParseError it returns for
    a value re-asks that task only, like a parse error, and the value it keeps is the one cached."""
    seen_batches = []

    def check(values):
        seen_batches.append(list(values))
        first = len(seen_batches) == 1  # the first two answers of the first batch are refused, once
        return [ParseError("not allowed", kind="pii") if first and j < 2 else v.upper() for j, v in enumerate(values)]

    tasks = _tasks(24)
    for t in tasks:
        t.check = check
    fake_llm.delay = 0.01
    cache = Cache(tmp_path)
    out, stats = LLM(model="fake/m", prompt_style="completion", max_concurrency=8).run(tasks, cache=cache)
    assert all(o.ok and o.value == "HELP WITH TOPIC NUMBER." for o in out)
    assert stats.calls == 26 and stats.retries == 2 and sum(len(b) for b in seen_batches) == 26
    assert len(seen_batches) < 26 and max(len(b) for b in seen_batches) > 1  # batched, not one at a time
    reasked = [o for o in out if o.attempt_kinds]
    assert len(reasked) == 2 and all(o.attempt_kinds == ["pii"] and o.attempts == 2 for o in reasked)
    again, stats2 = LLM(model="fake/m", prompt_style="completion").run(tasks, cache=cache)
    assert stats2.calls == 0 and all(o.value == "HELP WITH TOPIC NUMBER." for o in again)


def test_a_check_that_raises_is_not_a_hang_and_caches_nothing(tmp_path, fake_llm):
    def broken(values):
        raise RuntimeError("the checker broke")

    tasks = _tasks(3)
    for t in tasks:
        t.check = broken
    cache = Cache(tmp_path)
    with pytest.raises(RuntimeError, match="the checker broke"):
        LLM(model="fake/m", prompt_style="completion").run(tasks, cache=cache)
    assert len(cache) == 0


def test_changed_model_or_prompt_is_a_miss(tmp_path, fake_llm):
    cache = Cache(tmp_path)
    LLM(model="fake/m", prompt_style="completion").run(_tasks(2), cache=cache)
    _, stats = LLM(model="fake/other", prompt_style="completion").run(_tasks(2), cache=cache)
    assert stats.calls == 2
    changed = _tasks(2)
    changed[0] = LLMTask(item_id="i0", prompt=Prompt(body=changed[0].prompt.body.replace("Question: q", "Question: q2"), prefill="The request is to"),
                         parse=changed[0].parse, key_parts=changed[0].key_parts)
    _, stats = LLM(model="fake/m", prompt_style="completion").run(changed, cache=cache)
    assert stats.calls == 1 and stats.cache_hits == 1


def test_api_key_is_not_in_params_or_key(fake_llm):
    llm = LLM(model="fake/m", api_key="sk-secret-123")
    assert "sk-secret" not in repr(llm) and "sk-secret" not in str(llm.get_params())
    assert llm.task_key(_tasks(1)[0]) == LLM(model="fake/m").task_key(_tasks(1)[0])


def test_prompt_renders_as_transcript_and_chat():
    lib = PromptLibrary()
    p = lib.render("facet.j2", prefill="The task is to", question="What is the task?", privacy=True,
                   examples=[{"conversation": "User: hi", "answer": "greet."}], conversation="User: sum 2+2")
    assert p.as_transcript().endswith("Question: What is the task?\nAnswer: The task is to")
    assert "Answer: The task is to greet." in p.body
    anthropic = p.as_messages("anthropic/claude-3-5-haiku-latest")
    assert anthropic[-1] == {"role": "assistant", "content": "The task is to"}
    openai = p.as_messages("openai/gpt-4o-mini")
    assert len(openai) == 1 and 'begins exactly with: "The task is to"' in openai[0]["content"]


def test_strict_undefined_names_the_template():
    with pytest.raises(ValueError, match="facet.j2.*'question' is undefined"):
        PromptLibrary().render("facet.j2", prefill="x", privacy=True, examples=[], conversation="c")


def test_user_prompt_folder(tmp_path):
    (tmp_path / "facet.j2").write_text("Mine: {{ conversation }}\nAnswer:")
    p = PromptLibrary(tmp_path).render("facet.j2", prefill="It is", conversation="User: x")
    assert p.as_transcript() == "Mine: User: x\nAnswer: It is"


def test_chat_style_strips_a_repeated_prefill(fake_llm):
    from clio_lab.llm.runner import strip_prefill as _strip_prefill

    assert _strip_prefill("The request is to fix a bug.", "The request is to") == "fix a bug."
    assert _strip_prefill(" fix a bug.", "The request is to") == " fix a bug."


def test_what_a_run_leaves_running_is_cancelled_when_it_ends():
    """Runs share one event loop (runner.run_sync); as asyncio.run did, a task a run started and left behind
    (a failed gather leaves its other tasks running) is cancelled when the run ends, not left to call on."""
    from clio_lab.llm.runner import run_sync

    seen = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def leaves_one_behind():
        asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_sync(leaves_one_behind())
    assert seen == ["cancelled"]
    assert run_sync(asyncio.sleep(0, result=7)) == 7  # the loop goes on serving the next run


def test_run_sync_keeps_one_loop_per_thread_and_one_beside_a_running_loop():
    """A thread's calls share its loop (so LiteLLM's clients are reused); a call made where a loop already runs
    (Jupyter; here a coroutine) goes to one shared loop in a thread of its own, the same one each time."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from clio_lab.llm.runner import run_sync

    async def where() -> int:
        await asyncio.sleep(0.01)
        return id(asyncio.get_running_loop())

    async def from_inside() -> int:  # as from a Jupyter cell: a loop runs in the calling thread
        return run_sync(where())

    mine = run_sync(where())
    assert run_sync(where()) == mine
    beside = run_sync(from_inside())
    assert beside != mine and run_sync(from_inside()) == beside
    barrier = threading.Barrier(2)

    def twice(_):
        barrier.wait()
        return run_sync(where()), run_sync(where())

    with ThreadPoolExecutor(2) as pool:
        pairs = list(pool.map(twice, range(2)))
    assert all(a == b for a, b in pairs) and len({a for a, _ in pairs} | {mine}) == 3
