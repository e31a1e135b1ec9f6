"""The LLM layer: one LiteLLM call path for every step, prompts from templates, a local default model."""

from .client import LLM, CallStats, LLMOutcome, LLMTask, ParseError, run_sync
from .local import DEFAULT_LOCAL_MODEL
from .prompts import Prompt, PromptLibrary

__all__ = ["LLM", "CallStats", "LLMOutcome", "LLMTask", "ParseError", "Prompt", "PromptLibrary",
           "DEFAULT_LOCAL_MODEL", "run_sync"]
