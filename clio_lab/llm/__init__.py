"""The LLM layer: one LiteLLM call path for every step, prompts from templates, a local default model."""

from .client import LLM, CallStats, LLMOutcome, LLMTask, ParseError, resolve_llm, run_sync
from .local import DEFAULT_LOCAL_MODEL
from .prompts import Prompt, PromptLibrary, resolve_prompts

__all__ = ["LLM", "CallStats", "LLMOutcome", "LLMTask", "ParseError", "Prompt", "PromptLibrary",
           "DEFAULT_LOCAL_MODEL", "resolve_llm", "resolve_prompts", "run_sync"]
