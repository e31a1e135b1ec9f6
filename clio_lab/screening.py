"""The screener: a yes/no question asked of every conversation, keeping those answered "Yes" (the paper's
pre-filter, e.g. "Is this conversation about an election?").

Each answer is cached per conversation, model, question and prompt, so a second run with the same question
costs nothing, and a failed answer (neither yes nor no after the retries) is recorded as failed, kept out of
the screened corpus and counted, never taken for a "No". The bundled 270M model's answers measured near
chance on Banking77 (``benchmarks/screener.py``), so with it the default answers by embedding similarity
instead: "yes" when the question's embedding lies near the conversation's, with no model call.

    >>> s = screen(convs, "Is this conversation about a card payment?")  # doctest: +SKIP
    >>> s.counts()                                                        # doctest: +SKIP
    {'yes': 31, 'no': 164, 'failed': 5}
    >>> kept = s.select(convs)                                            # doctest: +SKIP
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cache import CacheLike, resolve_cache
from .engine import resolve_engine
from .llm.client import LLM, CallStats, LLMTask, ParseError, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts
from .records import Conversation

STEP_VERSION = 1
# "yes" when the cosine similarity of the question's embedding to the conversation's reaches this (bundled
# MiniLM): chosen on Banking77's train.csv over intents that benchmarks/screener.py does not measure
DEFAULT_THRESHOLD = 0.35
MAX_SCREEN_CHARS = 1500  # the start of a conversation, where the user says what they want; fits the local context
_ANSWER = re.compile(r"^\W*(yes|no)\b", re.I)


class NothingScreenedIn(ValueError):
    """The screener answered no conversation "Yes": there is nothing left to cluster."""


def parse_yes_no(raw: str) -> str:
    """``"yes"`` or ``"no"`` from the first word of an answer.

    Example:
        >>> parse_yes_no(" Yes, the user asks about a payment.")
        'yes'
    """
    match = _ANSWER.match(raw or "")
    if not match:
        raise ParseError(f"neither yes nor no at the start of {(raw or '').strip()[:80]!r}", kind="format")
    return match.group(1).lower()


@dataclass
class Screening:
    """Per conversation: ``"yes"``, ``"no"`` or ``None`` (failed, reason in ``failures``)."""

    question: str
    ids: list[str]
    answers: list[str | None]
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    method: str = "llm"
    threshold: float | None = None         # the embedding method's
    similarity: list[float] | None = None  # the embedding method's score per conversation

    @property
    def keep(self) -> np.ndarray:
        """A mask of the conversations answered "yes"."""
        return np.array([a == "yes" for a in self.answers], dtype=bool)

    def counts(self) -> dict[str, int]:
        return {"yes": self.answers.count("yes"), "no": self.answers.count("no"),
                "failed": sum(a is None for a in self.answers)}

    def select(self, conversations: Sequence[Conversation]) -> list[Conversation]:
        """The conversations answered "yes" (``conversations`` must be those that were screened)."""
        if [c.id for c in conversations] != self.ids:
            raise ValueError("select() needs the conversations that were screened, in the same order")
        return [c for c, k in zip(conversations, self.keep, strict=True) if k]

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "counts": self.counts(), "method": self.method,
                **({"threshold": self.threshold} if self.threshold is not None else {})}


def _task(conv: Conversation, question: str, lib: PromptLibrary, examples: list[dict[str, Any]]) -> LLMTask:
    text, _ = conv.as_text(MAX_SCREEN_CHARS)

    def render(seed: int):
        shown = list(examples)
        if seed:  # a re-ask shows the worked examples in another order
            random.Random(f"{conv.id}:{seed}").shuffle(shown)
        return lib.render("screen.j2", examples=shown, conversation=text, question=question)

    return LLMTask(item_id=conv.id, prompt=render(0), parse=parse_yes_no, max_tokens=4,
                   retry_prompt=lambda attempt, error: render(attempt + 1),
                   key_parts={"step": "screen", "version": STEP_VERSION, "question": question})


def screen(conversations: Sequence[Conversation], question: str, *, llm: LLM | str | None = None,
           method: str = "auto", threshold: float = DEFAULT_THRESHOLD, embedder: Any = None,
           cache: CacheLike | str = "default", prompts: PromptLibrary | str | None = None,
           progress: bool = True, engine: Any = None) -> Screening:
    """Ask ``question`` (a yes/no question, e.g. "Is this conversation about ...?") of every conversation.

    ``method``: ``"llm"`` asks the model (the paper's way); ``"embedding"`` answers "yes" when the cosine
    similarity of the question's embedding to the user's text reaches ``threshold`` (no model call);
    ``"auto"`` (default) takes ``"embedding"`` with the bundled local model, whose answers measured near chance
    (61% balanced accuracy against 86% for the embedding, ``benchmarks/screener.py``), and ``"llm"`` with a
    hosted one. ``engine``: the model's questions asked on a Ray cluster (:mod:`clio_lab.engine`).

    Returns a :class:`Screening`: the answers, their counts, the failures (recorded, never cached as an
    answer) and the call statistics.
    """
    question = " ".join(str(question or "").split())
    if not question:
        raise ValueError("screen: the question is empty; ask e.g. 'Is this conversation about a card payment?'")
    if method not in ("auto", "llm", "embedding"):
        raise ValueError(f"screen: method={method!r}; use 'auto', 'llm' or 'embedding'")
    model = resolve_llm(llm)
    if method == "embedding" or (method == "auto" and model.is_local):
        return _by_embedding(conversations, question, threshold, embedder, cache)
    lib = resolve_prompts(prompts)
    examples = lib.examples("screen", required=("conversation", "question", "answer"))
    tasks = [_task(c, question, lib, examples) for c in conversations]
    outcomes, stats = model.run(tasks, cache=resolve_cache(cache), desc="screen", progress=progress,
                                engine=resolve_engine(engine))
    by_id = {o.item_id: o for o in outcomes}
    answers, failures = [], []
    for c in conversations:
        o = by_id[c.id]
        answers.append(o.value if o.ok else None)
        if not o.ok:
            failures.append({"id": c.id, "step": "screen", "reason": o.error, "raw": o.raw})
    return Screening(question=question, ids=[c.id for c in conversations], answers=answers, failures=failures,
                     stats=stats, method="llm")


def _by_embedding(conversations: Sequence[Conversation], question: str, threshold: float, embedder: Any,
                  cache: CacheLike | str) -> Screening:
    from .embeddings import embed, get_embedder
    from .facets import user_text

    emb = get_embedder(embedder)
    store = resolve_cache(cache)
    q = embed([question], emb, cache=store)[0]
    sims = embed([user_text(c) for c in conversations], emb, cache=store) @ q if conversations else np.zeros(0)
    return Screening(question=question, ids=[c.id for c in conversations],
                     answers=["yes" if s >= threshold else "no" for s in sims], method="embedding",
                     threshold=float(threshold), similarity=[float(s) for s in sims])
