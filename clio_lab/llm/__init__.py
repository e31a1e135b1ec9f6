"""The LLM layer: one LiteLLM call path for every step, prompts from templates, a local default model."""

from .client import LLM, CallStats, LLMOutcome, LLMTask, resolve_llm, run_sync
from .errors import BadResponse, MissingNameLine, ParseError, PersonalDetailsInAnswer
from .local import DEFAULT_LOCAL_MODEL
from .prompts import Prompt, PromptLibrary, resolve_prompts

__all__ = ["LLM", "BadResponse", "CallStats", "LLMOutcome", "LLMTask", "MissingNameLine", "ParseError",
           "PersonalDetailsInAnswer", "Prompt", "PromptLibrary",
           "DEFAULT_LOCAL_MODEL", "resolve_llm", "resolve_prompts", "run_sync"]
