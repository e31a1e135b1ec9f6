"""One call path for every step: a model name goes to LiteLLM.

:class:`LLM` holds the model name and call settings (scikit-learn style: ``get_params()`` feeds cache keys,
the API key never does). :meth:`LLM.run` takes a list of :class:`LLMTask`, answers each from the cache or
the model with bounded async concurrency, retries transient errors with backoff, parses and validates each
answer with a repair-and-retry path, writes each success to the cache the moment it arrives (so an
interrupted run loses only the calls in flight) and records every failure with its reason.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..cache import Cache, make_key
from .local import DEFAULT_LOCAL_MODEL, PROVIDER
from .prompts import Prompt

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list at import

COMPLETION_PREFIXES = (PROVIDER + "/", "text-completion-openai/", "text-completion-codestral/")


BACKOFF_S = 1.0  # the first wait between retries when the server names none; doubles each retry
MAX_RETRY_WAIT_S = 60.0  # a longer Retry-After is a recorded failure, not a silent minutes-long stall
CHARS_PER_TOKEN_LIMIT = 16  # an answer longer than max_tokens x this cannot have honoured max_tokens


class BadResponse(RuntimeError):
    """The server answered, but not with a usable completion (no choices, content that is no text); re-asked
    like a server error."""


class ParseError(ValueError):
    """An answer that does not have the required form; the task may be re-asked.

    ``fallback``: a value to keep if this is still the error after the last re-ask (e.g. the answer with its
    personal details redacted); the outcome is then a success with ``note`` set to the error.
    """

    def __init__(self, message: str, fallback: Any = None) -> None:
        super().__init__(message)
        self.fallback = fallback


@dataclass
class LLMTask:
    """One item for the model.

    Args:
        item_id: the id the answer belongs to (a conversation id, a cluster id).
        prompt: the rendered prompt.
        parse: turns raw answer text into a value or raises :class:`ParseError`.
        key_parts: everything besides model and prompt that changes the answer (step, version, inputs).
        retry_prompt: optional; given the failed attempt number and error, returns the prompt for the next
            attempt (e.g. other worked examples). By default the same prompt is re-asked with another seed.
    """

    item_id: str
    prompt: Prompt
    parse: Callable[[str], Any]
    key_parts: dict[str, Any]
    retry_prompt: Callable[[int, ParseError], Prompt | None] | None = None
    max_tokens: int = 64


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


def _transient_errors() -> tuple[type[BaseException], ...]:
    import litellm

    names = ("RateLimitError", "Timeout", "APIConnectionError", "InternalServerError",
             "ServiceUnavailableError", "BadGatewayError")
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n)) + (asyncio.TimeoutError, BadResponse)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds a server asked to wait (``Retry-After``: seconds or an HTTP date), or ``None``."""
    from email.utils import parsedate_to_datetime

    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        value = headers.get("retry-after") if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def reason_for(exc: BaseException, timeout: float | None = None) -> str:
    """A failed call in words for a person: what happened and, where known, the HTTP status."""
    import litellm

    status = getattr(exc, "status_code", None)
    http = f" (HTTP {status})" if isinstance(status, int) else ""
    message = str(exc)
    for prefix in ("litellm.", "OpenAIException - ", "OpenAIException -"):  # LiteLLM's nested class prefixes
        while prefix in message:
            message = message.split(prefix, 1)[1] if prefix != "litellm." else message.replace(prefix, "", 1)
    message = message.split(": ", 1)[1] if re.match(r"^\w+Error: ", message) else message
    message = message.split("Traceback (most recent call last)", 1)[0].strip().splitlines()[0][:240] \
        if message.strip() else ""
    if isinstance(exc, asyncio.TimeoutError | litellm.Timeout):
        return f"no answer within the {timeout:g} s time-out" if timeout else "the call timed out"
    if isinstance(exc, litellm.RateLimitError):
        return f"rate limited by the server{http}: {message}"
    if isinstance(exc, litellm.APIConnectionError):
        return f"could not reach the server: {message}"
    if isinstance(exc, litellm.AuthenticationError):
        return f"the server refused the API key{http}: {message}"
    if isinstance(exc, litellm.BadRequestError):
        return f"the server refused the request{http}: {message}"
    if isinstance(exc, BadResponse):
        return str(exc)
    # LiteLLM reports a body it cannot read as its own "500", although the server said 200
    if message.startswith("Invalid response object") or "LiteLLM: provider returned" in message:
        detail = message.split("provider returned ", 1)[1].split(". Raw keys", 1)[0] \
            if "provider returned " in message else ""
        return "the server's answer is not a valid chat completion" + (f" ({detail})" if detail else "")
    if re.match(r"^(Expecting |Extra data|Unterminated string|Invalid control character)", message):
        return f"the server's answer is not JSON ({message})"
    if status is not None:
        return f"server error{http}: {message}"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _answer_text(response: Any) -> str:
    """The first choice's text; a response without one, or content that is no text, is a BadResponse."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise BadResponse("the server's answer had no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is None:
        return ""
    if isinstance(content, list):  # content parts: keep their text
        parts = [p.get("text") if isinstance(p, dict) else getattr(p, "text", None) for p in content]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)
    if not isinstance(content, str):
        raise BadResponse(f"the answer's content was {type(content).__name__} {str(content)[:40]!r}, not text")
    return content


@dataclass
class LLM:
    """A LiteLLM model and how to call it.

    Args:
        model: any LiteLLM model name (``anthropic/claude-...``, ``openai/gpt-...``, ``ollama/...``,
            ``hosted_vllm/...``) or the embedded ``clio_local/gemma-3-270m`` (the default).
        prompt_style: ``"chat"``, ``"completion"`` (a transcript for base models) or ``"auto"``.
        temperature: sampling temperature (Clio uses about 0.2; the local base model does best at 0).
        max_concurrency: calls in flight at once (the in-process local model always runs one at a time).
        timeout: seconds per request, a deadline (LiteLLM's and the OpenAI client's own retries are off, so one
            item takes at most ``(max_retries + 1) * timeout`` plus the waits between retries).
        max_retries: retries of a call that failed with a rate limit, time-out, server error or an answer
            with no choices; a server's ``Retry-After`` is honoured up to 60 s (longer is a recorded failure).
            Every request is counted in the step's ``calls``.
        max_parse_retries: re-asks of an answer that failed validation; default 1 for the in-process local
            model (each re-ask costs about a second on 2 cores; measured on the demo corpus, a second re-ask
            rescued few answers) and 2 for hosted models.
        api_base: server address for self-hosted models.
        api_key: passed to LiteLLM; never part of a cache key or a saved result.
        retry_failed: re-ask items whose answer failed validation in an earlier run (those failures are
            cached as failures; failed calls such as time-outs are never cached and always re-asked).

    Example:
        >>> LLM().get_params()["model"]
        'clio_local/gemma-3-270m'
    """

    model: str = DEFAULT_LOCAL_MODEL
    prompt_style: str = "auto"
    temperature: float | None = None
    max_concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 4
    max_parse_retries: int | None = None
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    retry_failed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import litellm

        litellm.suppress_debug_info = True  # failures are recorded per item; no banners on stdout
        if self.prompt_style not in ("auto", "chat", "completion"):
            raise ValueError(f"prompt_style must be 'auto', 'chat' or 'completion', not {self.prompt_style!r}")
        if self.model.startswith(PROVIDER + "/"):
            from .local import register

            register()

    @property
    def is_local(self) -> bool:
        return self.model.startswith(PROVIDER + "/")

    @property
    def parse_retries(self) -> int:
        if self.max_parse_retries is not None:
            return self.max_parse_retries
        return 1 if self.is_local else 2

    @property
    def style(self) -> str:
        if self.prompt_style != "auto":
            return self.prompt_style
        return "completion" if self.model.startswith(COMPLETION_PREFIXES) else "chat"

    @property
    def effective_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.is_local else 0.2

    def get_params(self) -> dict[str, Any]:
        """What changes an answer (the key and the concurrency do not)."""
        return {"model": self.model, "style": self.style, "temperature": self.effective_temperature,
                "api_base": self.api_base, "extra": self.extra}

    # ------------------------------------------------------------------------------------------ calls
    async def acall(self, prompt: Prompt, *, max_tokens: int = 64, seed: int = 0) -> tuple[str, dict[str, Any]]:
        """One model call; returns the answer text (after the pre-fill) and usage."""
        import litellm

        if self.style == "completion":
            messages = [{"role": "user", "content": prompt.as_transcript()}]
        else:
            messages = prompt.as_messages(self.model)
        # clio_lab owns retries (one layer, each request counted): LiteLLM's and the OpenAI client's are off
        kwargs: dict[str, Any] = dict(model=self.model, messages=messages, temperature=self.effective_temperature,
                                      max_tokens=max_tokens, timeout=self.timeout, num_retries=0, max_retries=0,
                                      **self.extra)
        if prompt.stop and (self.style == "completion" or not self.model.startswith("anthropic/")):
            kwargs["stop"] = list(prompt.stop)
        if seed:
            kwargs["seed"] = seed
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation (Ctrl-C) that
        # arrives as the call completes, and the run would go on. The time-out is a deadline for the request.
        async with asyncio.timeout(self.timeout):
            response = await litellm.acompletion(**kwargs)
        text = _answer_text(response)
        usage = getattr(response, "usage", None)
        cost: float | None
        try:
            cost = 0.0 if self.is_local else float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - LiteLLM raises many kinds for models missing from its price table
            cost = None
        return text, {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                      "completion_tokens": getattr(usage, "completion_tokens", 0) or 0, "cost": cost}

    async def _call_with_retries(self, prompt: Prompt, max_tokens: int, seed: int,
                                 stats: CallStats) -> tuple[str, dict[str, Any]]:
        transient = _transient_errors()
        for attempt in range(self.max_retries + 1):
            try:
                stats.calls += 1  # every request the server sees (no other layer retries)
                return await self.acall(prompt, max_tokens=max_tokens, seed=seed)
            except transient as exc:
                if attempt == self.max_retries:
                    raise
                asked = _retry_after(exc)
                if asked is not None and asked > MAX_RETRY_WAIT_S:
                    raise BadResponse(f"{reason_for(exc, self.timeout)}; the server asked to wait {asked:.0f} s "
                                      f"(Retry-After), longer than the {MAX_RETRY_WAIT_S:.0f} s clio_lab waits: "
                                      "run again later (answers so far are cached)") from None
                stats.retries += 1
                delay = asked if asked is not None else \
                    min(MAX_RETRY_WAIT_S, BACKOFF_S * 2**attempt) * (0.75 + random.random() / 2)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _one(self, task: LLMTask, cache: Cache | None, key: str, stats: CallStats,
                   sem: asyncio.Semaphore) -> LLMOutcome:
        prompt, raw, error = task.prompt, None, None
        seen: list[str] = []
        async with sem:
            for attempt in range(self.parse_retries + 1):
                try:
                    raw, usage = await self._call_with_retries(prompt, task.max_tokens, attempt, stats)
                except Exception as exc:  # noqa: BLE001 - any provider error becomes a recorded failure
                    return LLMOutcome(task.item_id, False, raw=raw, attempts=attempt + 1,
                                      error=f"call failed: {reason_for(exc, self.timeout)}")
                stats.prompt_tokens += usage["prompt_tokens"]
                stats.completion_tokens += usage["completion_tokens"]
                if usage["cost"] is None:
                    stats.cost_known = False
                else:
                    stats.cost_usd += usage["cost"]
                try:
                    limit = max(400, task.max_tokens * CHARS_PER_TOKEN_LIMIT)
                    if len(raw) > limit:  # a server that ignores max_tokens: never kept as an answer
                        size, raw = len(raw), raw[:limit] + " [... cut by clio_lab]"
                        raise ParseError(f"the answer has {size:,} characters, more than max_tokens={task.max_tokens} "
                                         "allows (the server ignored max_tokens)")
                    value = task.parse(_strip_prefill(raw, prompt.prefill))
                except ParseError as exc:
                    error = exc
                    seen.append(str(exc)[:200])
                    if attempt < self.parse_retries:
                        stats.retries += 1
                        nxt = task.retry_prompt(attempt, exc) if task.retry_prompt else None
                        prompt = nxt or prompt
                    continue
                if cache is not None:
                    cache.set(key, {"value": value, "raw": raw, "attempt_errors": seen})
                return LLMOutcome(task.item_id, True, value=value, raw=raw, attempts=attempt + 1, attempt_errors=seen)
        if error is not None and getattr(error, "fallback", None) is not None:
            # e.g. personal details still in the answer after the re-ask: keep it redacted, and say so
            note = str(error)[:200]
            if cache is not None:
                cache.set(key, {"value": error.fallback, "raw": raw, "note": note, "attempt_errors": seen})
            return LLMOutcome(task.item_id, True, value=error.fallback, raw=raw, attempts=self.parse_retries + 1,
                              note=note, attempt_errors=seen)
        # The model gave no usable answer at these settings. Remember that as a failure (never as a
        # success) so that a warm re-run does not pay for the same refusal again; retry_failed=True re-asks.
        outcome = LLMOutcome(task.item_id, False, raw=raw, attempts=self.parse_retries + 1,
                             error=f"invalid answer: {error}")
        if cache is not None:
            cache.set(key, {"failed": outcome.error, "raw": raw})
        return outcome

    def task_key(self, task: LLMTask) -> str:
        return make_key(llm=self.get_params(), template=task.prompt.template_sha256,
                        prompt=task.prompt.as_transcript(), max_tokens=task.max_tokens, **task.key_parts)

    async def arun(self, tasks: list[LLMTask], *, cache: Cache | None = None, desc: str = "llm",
                   progress: bool = True) -> tuple[list[LLMOutcome], CallStats]:
        """Answer every task (cache first); outcomes come back in the order of ``tasks``."""
        stats = CallStats()
        start = time.perf_counter()
        outcomes: list[LLMOutcome | None] = [None] * len(tasks)
        pending = []
        for i, task in enumerate(tasks):
            key = self.task_key(task)
            hit = cache.get(key) if cache is not None else None
            if hit is not None and "failed" in hit and self.retry_failed:
                hit = None
            if hit is not None:
                stats.cache_hits += 1
                ok = "failed" not in hit
                outcomes[i] = LLMOutcome(task.item_id, ok, value=hit.get("value"), raw=hit.get("raw"), cached=True,
                                         error=None if ok else hit["failed"], note=hit.get("note"),
                                         attempt_errors=list(hit.get("attempt_errors") or []))
            else:
                pending.append((i, task, key))
        if self.is_local and pending:
            # load (and on a new machine, probe) the in-process model here, so that a model that cannot run
            # raises LocalModelError to the caller instead of failing every item one by one
            from .local import load_llama

            load_llama(self.model)
        sem = asyncio.Semaphore(1 if self.is_local else max(1, self.max_concurrency))
        bar = _progress(len(pending), desc) if progress and pending else None

        async def run_one(i: int, task: LLMTask, key: str) -> None:
            outcomes[i] = await self._one(task, cache, key, stats, sem)
            if bar is not None:
                bar.update(1)

        try:
            await asyncio.gather(*(run_one(i, t, k) for i, t, k in pending))
        finally:
            if bar is not None:
                bar.close()
        stats.failed = sum(1 for o in outcomes if o is not None and not o.ok)
        stats.seconds = time.perf_counter() - start
        return [o for o in outcomes if o is not None], stats

    def run(self, tasks: list[LLMTask], **kwargs: Any) -> tuple[list[LLMOutcome], CallStats]:
        """Synchronous :meth:`arun` that also works inside Jupyter's running event loop."""
        return run_sync(self.arun(tasks, **kwargs))


def resolve_llm(llm: LLM | str | None) -> LLM:
    """An :class:`LLM` as given, one for a LiteLLM model name, or the bundled local model for ``None``."""
    if isinstance(llm, LLM):
        return llm
    return LLM(model=llm) if llm else LLM()


def _strip_prefill(text: str, prefill: str) -> str:
    """Chat models sometimes repeat the pre-filled opening; keep only what follows it."""
    t = text.strip().strip('"').strip()
    if prefill and t.lower().startswith(prefill.lower()):
        return t[len(prefill):].lstrip()
    return text


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=os.environ.get("CLIO_LAB_PROGRESS") == "0")


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion, in a helper thread when an event loop is already running (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
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
