"""Prompt templates: Jinja files in ``prompts/``, rendered with strict undefined variables.

One template serves both kinds of model. :meth:`Prompt.as_transcript` gives a completion transcript ending in
the pre-filled answer opening (what a base model such as the bundled Gemma 3 270M needs);
:meth:`Prompt.as_messages` gives chat messages, with the pre-fill as an assistant turn where the provider
supports it and otherwise as an instruction to begin with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

# Chat providers that accept a final assistant turn as the start of the answer.
PREFILL_PROVIDERS = ("anthropic/", "bedrock/anthropic", "vertex_ai/claude", "clio_local/")


def default_prompt_dir() -> Path:
    """The packaged prompts (``clio_lab/_prompts`` in a wheel, ``prompts/`` in a checkout)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_prompts", here.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("clio_lab's prompts folder is missing from this installation")


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the body, the answer opening, and the identity of the template that made it."""

    body: str
    prefill: str = ""
    template_name: str = ""
    template_sha256: str = ""
    stop: tuple[str, ...] = ("\n",)
    prefill_joiner: str = " "  # what stands between the body and the pre-fill in a transcript

    def as_transcript(self) -> str:
        return self.body.rstrip() + (self.prefill_joiner + self.prefill if self.prefill else "")

    def as_messages(self, model: str) -> list[dict[str, str]]:
        if not self.prefill:
            return [{"role": "user", "content": self.body}]
        if model.startswith(PREFILL_PROVIDERS):
            return [{"role": "user", "content": self.body}, {"role": "assistant", "content": self.prefill}]
        instruction = f'\n\nReply with one line that begins exactly with: "{self.prefill}"'
        return [{"role": "user", "content": self.body + instruction}]


@dataclass
class PromptLibrary:
    """Loads templates by name from a folder (the packaged one by default, or the user's own).

    Example:
        >>> lib = PromptLibrary()
        >>> p = lib.render("facet.j2", prefill="The task is to", question="What is the task?",
        ...                privacy=True, examples=[], conversation="User: hi")
        >>> p.as_transcript().endswith("Answer: The task is to")
        True
    """

    folder: Path | str | None = None
    _env: jinja2.Environment = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder) if self.folder is not None else default_prompt_dir()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"prompt folder {self.folder} does not exist")
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.folder)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its templates' text, so that a worker on another machine (:mod:`clio_lab.engine`), where
        this folder may not exist, renders the same prompts."""
        folder = Path(self.folder)
        return {"folder": str(folder), "sources": {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                                                   for p in sorted(folder.rglob("*.j2"))}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.folder = Path(state["folder"])
        self._sources = state["sources"]
        self._env = jinja2.Environment(loader=jinja2.DictLoader(self._sources), undefined=jinja2.StrictUndefined,
                                       keep_trailing_newline=True, autoescape=False)

    def source(self, name: str) -> str:
        sources = getattr(self, "_sources", None)
        if sources is not None and name in sources:
            return sources[name]
        return (Path(self.folder) / name).read_text(encoding="utf-8")

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.source(name).encode("utf-8")).hexdigest()

    def render(self, name: str, *, prefill: str = "", stop: tuple[str, ...] = ("\n",), prefill_joiner: str = " ",
               **variables: Any) -> Prompt:
        try:
            body = self._env.get_template(name).render(prefill=prefill, **variables)
        except jinja2.UndefinedError as exc:
            raise ValueError(f"prompt {Path(self.folder) / name}: {exc.message}") from None
        return Prompt(body=body, prefill=prefill, template_name=name, template_sha256=self.sha256(name), stop=stop,
                      prefill_joiner=prefill_joiner)

    def examples(self, name: str, required: tuple[str, ...] = ("conversation", "answer")) -> list[dict[str, Any]]:
        """Worked examples stored as JSON lines beside the templates (``examples/<name>.jsonl``); each must
        carry the ``required`` fields, non-empty."""
        path = Path(self.folder) / "examples" / f"{name}.jsonl"
        out = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno}: invalid JSON: {exc.msg}") from None
            for key in required:
                if not ex.get(key) or (isinstance(ex[key], str) and not ex[key].strip()):
                    raise ValueError(f"{path}: line {lineno}: field '{key}' missing or empty")
            out.append(ex)
        return out


def resolve_prompts(prompts: PromptLibrary | str | Path | None) -> PromptLibrary:
    """A :class:`PromptLibrary` as given, or one for a folder of templates (``None``: the packaged prompts)."""
    return prompts if isinstance(prompts, PromptLibrary) else PromptLibrary(prompts)
