"""One call path for every step: a model name goes to LiteLLM.

:class:`LLM` holds the model name and call settings (scikit-learn style: ``get_params()`` feeds cache keys,
the API key never does) and makes one call (:meth:`LLM.acall`). :meth:`LLM.run` hands a list of
:class:`LLMTask` to the task runner (:mod:`clio_lab.llm.runner`: cache, concurrency, retries, validation);
what can go wrong is typed in :mod:`clio_lab.llm.errors`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from ..cache import make_key
from .errors import BadResponse, MissingNameLine, ParseError, PersonalDetailsInAnswer, reason_for
from .local import DEFAULT_LOCAL_MODEL, PROVIDER
from .prompts import Prompt
from .runner import CallStats, LLMOutcome, LLMTask, run_sync, run_tasks

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list at import

COMPLETION_PREFIXES = (PROVIDER + "/", "text-completion-openai/", "text-completion-codestral/")

__all__ = ["LLM", "BadResponse", "CallStats", "LLMOutcome", "LLMTask", "MissingNameLine", "ParseError",
           "PersonalDetailsInAnswer", "reason_for", "resolve_llm", "run_sync"]


def _step_metadata(model: str, step: str) -> dict[str, Any]:
    """The step goes with the call only to providers registered in-process (the local model, a test's fake):
    LiteLLM may forward ``metadata`` to a hosted API, which can refuse it."""
    import litellm

    provider = model.split("/", 1)[0]
    if step and any(m.get("provider") == provider for m in litellm.custom_provider_map):
        return {"metadata": {"clio_lab_step": step}}
    return {}


def _cost(response: Any) -> float | None:
    """The call's cost in USD: LiteLLM prices every response as it returns it (``_hidden_params``), so it is read
    from there rather than priced again (a second ``completion_cost`` took a tenth of the facet step's time
    against an instant server); ``None`` for a model missing from the price table."""
    import litellm

    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else getattr(hidden, "response_cost", None)
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:  # noqa: BLE001 - LiteLLM raises many kinds for models missing from its price table
            return None
    return float(cost)


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
        if self.model.startswith("text-completion-openai/"):
            # LiteLLM's aiohttp transport leaves one client session open per text-completion call ("Unclosed
            # client session" printed by every call of a run; measured 15 for 15 calls, 0 with httpx)
            litellm.disable_aiohttp_transport = True
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
    def messages(self, prompt: Prompt) -> list[dict[str, str]]:
        """The messages sent for ``prompt``: one user message holding the transcript for completion-style
        (base) models, the chat turns otherwise."""
        if self.style == "completion":
            return [{"role": "user", "content": prompt.as_transcript()}]
        return prompt.as_messages(self.model)

    def request(self, prompt: Prompt, *, max_tokens: int = 64, seed: int = 0) -> dict[str, Any]:
        """What one call asks, apart from model and transport: the messages, sampling and limits (also each line
        of a provider batch file, :mod:`clio_lab.llm.batches`)."""
        body: dict[str, Any] = dict(messages=self.messages(prompt), temperature=self.effective_temperature,
                                    max_tokens=max_tokens, **self.extra)
        if prompt.stop and (self.style == "completion" or not self.model.startswith("anthropic/")):
            body["stop"] = list(prompt.stop)
        if seed:
            body["seed"] = seed
        return body

    async def acall(self, prompt: Prompt, *, max_tokens: int = 64, seed: int = 0,
                    step: str = "") -> tuple[str, dict[str, Any]]:
        """One model call; returns the answer text (after the pre-fill) and usage. ``step`` names the
        pipeline step asking (given to in-process providers only)."""
        import litellm

        # clio_lab owns retries (one layer, each request counted): LiteLLM's and the OpenAI client's are off
        kwargs: dict[str, Any] = dict(model=self.model, timeout=self.timeout, num_retries=0, max_retries=0,
                                      **_step_metadata(self.model, step),
                                      **self.request(prompt, max_tokens=max_tokens, seed=seed))
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
        return text, {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                      "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
                      "cost": 0.0 if self.is_local else _cost(response)}

    def task_key(self, task: LLMTask) -> str:
        return make_key(llm=self.get_params(), template=task.prompt.template_sha256,
                        prompt=task.prompt.as_transcript(), max_tokens=task.max_tokens, **task.key_parts)

    async def arun(self, tasks: list[LLMTask], *, cache: Any = None, desc: str = "llm",
                   progress: bool = True, engine: Any = None) -> tuple[list[LLMOutcome], CallStats]:
        """Answer every task (cache first); outcomes come back in the order of ``tasks``
        (:func:`clio_lab.llm.runner.run_tasks`; ``engine``: a :class:`~clio_lab.engine.RayEngine` answers
        them on a cluster)."""
        return await run_tasks(self, tasks, cache=cache, desc=desc, progress=progress, engine=engine)

    def run(self, tasks: list[LLMTask], **kwargs: Any) -> tuple[list[LLMOutcome], CallStats]:
        """Synchronous :meth:`arun` that also works inside Jupyter's running event loop."""
        return run_sync(self.arun(tasks, **kwargs))


def resolve_llm(llm: LLM | str | None) -> LLM:
    """An :class:`LLM` as given, one for a LiteLLM model name, or the bundled local model for ``None``."""
    if isinstance(llm, LLM):
        return llm
    return LLM(model=llm) if llm else LLM()
