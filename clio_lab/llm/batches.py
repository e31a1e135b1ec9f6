"""Model calls through a provider's batch API (OpenAI-style ``/v1/files`` and ``/v1/batches``), through LiteLLM.

Providers answer a batch within a window (24 hours) at about half the price of the same calls one by one, which
is what a large hosted run wants. ``engine=BatchAPIEngine()`` (or ``"batch"``; ``clio-lab run --engine batch``)
sends the model calls of every per-item step (the facets, the screener) as batch files; the steps with few
calls stay live. The answers go through the same validation, PII checks and re-asks as live calls, in rounds:
every task's first ask in one batch, the answers that fail validation re-asked in the next, up to
``LLM.max_parse_retries`` re-asks. Each round's settled answers are cached under the same keys as live calls,
so a run interrupted between rounds starts again from there, and a cached answer is never asked again.

A line the provider answers with an error is recorded as a failed call (never cached); a batch that fails,
expires or is cancelled makes every call in it a failed call, with the batch's id and status in the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ParseError
from .runner import CallStats, check_values, count_usage, next_prompt, read_answer, settled

# LiteLLM's batch and file functions take these providers (litellm.batches.main.create_batch)
PROVIDERS = ("openai", "azure", "vertex_ai", "bedrock", "hosted_vllm", "litellm_proxy", "mistral", "xai")
DONE = ("completed", "failed", "expired", "cancelled")


class BatchError(RuntimeError):
    """A batch could not be sent or read back."""


def batch_provider(model: str) -> tuple[str, str]:
    """The model's id at its provider and the provider, for a model whose provider has a batch API through
    LiteLLM; a clear error otherwise."""
    import litellm

    try:
        model_id, provider, _, _ = litellm.get_llm_provider(model)
    except Exception as exc:  # noqa: BLE001 - LiteLLM raises several kinds for an unknown name
        raise ValueError(f"batch API: LiteLLM does not know the provider of {model!r}: {exc}") from None
    if provider not in PROVIDERS:
        raise ValueError(f"batch API: {model!r} is a {provider} model; LiteLLM's batch API covers "
                         f"{', '.join(PROVIDERS)} (run without --engine batch to call it live)")
    return model_id, provider


@dataclass
class BatchAPIEngine:
    """Send the model calls of the per-item steps as provider batches.

    Args:
        poll_s: seconds between looks at a batch's status.
        max_requests: calls per batch file (OpenAI's limit is 50,000); more make several batches, sent together.
        max_wait_s: how long to wait for a round's batches; past it they are cancelled and their calls
            recorded as failed.
        completion_window: the provider's window (OpenAI accepts ``"24h"``).
    """

    poll_s: float = 30.0
    max_requests: int = 50_000
    max_wait_s: float = 26 * 3600.0
    completion_window: str = "24h"

    def check(self, llm: Any) -> None:
        """Fail before any work when ``llm``'s provider has no batch API through LiteLLM."""
        batch_provider(llm.model)

    def get_params(self) -> dict[str, Any]:
        return {"engine": "batch_api", "poll_s": self.poll_s, "max_requests": self.max_requests,
                "completion_window": self.completion_window}

    def answer(self, llm: Any, tasks: Sequence[Any]) -> Iterator[tuple[list[int], list[dict[str, Any]], CallStats]]:
        """Answer ``tasks`` in rounds of batches; after each round, ``(positions, cache entries, CallStats)`` of
        the tasks settled in it (as :meth:`clio_lab.engine.RayEngine.answer`)."""
        model_id, provider = batch_provider(llm.model)
        n = len(tasks)
        prompts = [t.prompt for t in tasks]
        raws: list[str | None] = [None] * n
        seen: list[list[str]] = [[] for _ in range(n)]
        kinds: list[list[str]] = [[] for _ in range(n)]
        asked: list[set[tuple[str, str]]] = [set() for _ in range(n)]
        active = list(range(n))
        for attempt in range(llm.parse_retries + 1):
            if not active:
                return
            stats = CallStats()
            answers = self._send(llm, model_id, provider, [(i, prompts[i], tasks[i].max_tokens) for i in active],
                                 attempt, stats)
            done: dict[int, dict[str, Any]] = {}
            values: dict[int, Any] = {}
            for i in active:
                got = answers[i]  # _send answers every item: its (raw, usage), or why its call failed
                if isinstance(got, str):
                    done[i] = {"call_failed": got}
                    continue
                raw, usage = got
                count_usage(stats, usage)
                raws[i], values[i] = read_answer(tasks[i], prompts[i], raw)
            _check_in_batches(tasks, values)
            nxt = []
            for i, value in values.items():
                if not isinstance(value, ParseError):
                    done[i] = {"value": value, "raw": raws[i], "attempt_errors": seen[i], "attempt_kinds": kinds[i]}
                    continue
                again = next_prompt(llm, tasks[i], attempt, value, prompts[i], seen[i], kinds[i], stats, raws[i],
                                    asked[i])
                if again is not None:
                    prompts[i] = again
                    nxt.append(i)
                else:
                    done[i] = settled(tasks[i], value, raws[i], seen[i], kinds[i])
            order = sorted(done)
            yield order, [done[i] for i in order], stats
            active = nxt

    # ------------------------------------------------------------------------------------------ one round
    def _send(self, llm: Any, model_id: str, provider: str, items: list[tuple[int, Any, int]], seed: int,
              stats: CallStats) -> dict[int, tuple[str, dict[str, Any]] | str]:
        """One round: the items as batch files (``max_requests`` each), all sent, then waited for; each item's
        ``(raw answer, usage)``, or the reason its call failed."""
        import litellm

        auth = {k: v for k, v in (("api_base", llm.api_base), ("api_key", llm.api_key)) if v}
        sent = []
        for start in range(0, len(items), max(1, int(self.max_requests))):
            chunk = items[start:start + max(1, int(self.max_requests))]
            lines = [json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": model_id, **llm.request(prompt, max_tokens=max_tokens, seed=seed)}})
                     for i, prompt, max_tokens in chunk]
            try:
                upload = litellm.create_file(file=("clio_lab_batch.jsonl", ("\n".join(lines) + "\n").encode()),
                                             purpose="batch", custom_llm_provider=provider, **auth)
                batch = litellm.create_batch(completion_window=self.completion_window,
                                             endpoint="/v1/chat/completions", input_file_id=upload.id,
                                             custom_llm_provider=provider, metadata={"sent_by": "clio_lab"}, **auth)
            except Exception as exc:  # noqa: BLE001 - any provider error: this chunk's calls failed
                reason = f"call failed: the batch could not be sent: {type(exc).__name__}: {str(exc)[:300]}"
                sent.append((chunk, None, reason))
                continue
            stats.calls += len(chunk)
            sent.append((chunk, batch.id, None))
        out: dict[int, tuple[str, dict[str, Any]] | str] = {}
        for chunk, batch_id, reason in sent:
            if batch_id is None:
                out.update({i: reason for i, _, _ in chunk})
                continue
            out.update(self._collect(litellm, provider, auth, batch_id, [i for i, _, _ in chunk], model_id))
        return out

    def _collect(self, litellm: Any, provider: str, auth: dict[str, str], batch_id: str, ids: list[int],
                 model_id: str) -> dict[int, tuple[str, dict[str, Any]] | str]:
        """Wait for one batch and read its output: each id's answer, or why it has none."""
        deadline = time.monotonic() + self.max_wait_s
        while True:
            batch = litellm.retrieve_batch(batch_id=batch_id, custom_llm_provider=provider, **auth)
            if batch.status in DONE:
                break
            if time.monotonic() > deadline:
                try:
                    litellm.cancel_batch(batch_id=batch_id, custom_llm_provider=provider, **auth)
                except Exception:  # noqa: BLE001 - cancelling is a courtesy; the calls are failed either way
                    pass
                return {i: f"call failed: batch {batch_id} still {batch.status} after {self.max_wait_s:.0f} s"
                        for i in ids}
            time.sleep(self.poll_s)
        out: dict[int, tuple[str, dict[str, Any]] | str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = litellm.file_content(file_id=file_id, custom_llm_provider=provider, **auth)
            for lineno, line in enumerate(content.content.decode("utf-8").splitlines(), 1):
                if line.strip():
                    i, got = _read_line(line, f"batch {batch_id}, file {file_id}, line {lineno}", model_id, provider)
                    if i is not None:
                        out[i] = got
        for i in ids:
            if i not in out:
                out[i] = f"call failed: batch {batch_id} ended {batch.status} with no answer for this call"
        return out


def _read_line(line: str, where: str, model_id: str, provider: str) -> tuple[int | None, Any]:
    """One line of a batch's output or error file: its item and ``(raw answer, usage)``, or why it failed."""
    try:
        rec = json.loads(line)
        i = int(rec["custom_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchError(f"{where}: not a batch output line ({exc}): {line[:200]!r}") from None
    response = rec.get("response") or {}
    if rec.get("error") or response.get("status_code") != 200:
        error = rec.get("error") or (response.get("body") or {}).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        return i, f"call failed: status {response.get('status_code')}: {message or 'no message'} ({where})"
    body = response.get("body") or {}
    try:
        raw = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return i, f"call failed: an answer with no choices ({where})"
    usage = body.get("usage") or {}
    return i, (raw or "", {"prompt_tokens": usage.get("prompt_tokens", 0) or 0,
                           "completion_tokens": usage.get("completion_tokens", 0) or 0,
                           "cost": _batch_cost(usage, model_id, provider)})


def _batch_cost(usage: dict[str, Any], model_id: str, provider: str) -> float | None:
    """The line's cost at the provider's batch prices (LiteLLM's table), or ``None`` where it has none."""
    try:
        from litellm.cost_calculator import batch_cost_calculator
        from litellm.types.utils import Usage

        prompt_cost, completion_cost = batch_cost_calculator(
            Usage(prompt_tokens=usage.get("prompt_tokens", 0) or 0,
                  completion_tokens=usage.get("completion_tokens", 0) or 0,
                  total_tokens=usage.get("total_tokens", 0) or 0), model=model_id, custom_llm_provider=provider)
        return float(prompt_cost + completion_cost)
    except Exception:  # noqa: BLE001 - a model missing from the price table: cost unknown
        return None


def _check_in_batches(tasks: Sequence[Any], values: dict[int, Any]) -> None:
    """Run each task's batched check (the PII check of facet answers) over the round's parsed values, one call
    per check object, as the live runner does; a value that fails becomes its :class:`ParseError`."""
    groups: dict[int, list[int]] = {}
    for i, value in values.items():
        if tasks[i].check is not None and not isinstance(value, ParseError):
            groups.setdefault(id(tasks[i].check), []).append(i)
    for idxs in groups.values():
        results = check_values(tasks[idxs[0]].check, [values[i] for i in idxs])
        for i, result in zip(idxs, results, strict=True):
            values[i] = result
