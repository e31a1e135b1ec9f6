"""Step 1: facet extraction, one cached model call per conversation and facet.

Clio's prompt shape (worked examples, the conversation, the question, a pre-filled answer opening) is kept in
``prompts/facet.j2``. With the small local base model, worked examples are chosen per conversation as the
nearest ones by embedding, and an answer that repeats a worked example's answer for an unrelated
conversation is caught and re-asked with other examples: a measured failure mode of that model (see
../shared/ENVIRONMENT.md). What still fails is asked once more without worked examples, and that answer is kept
only where it lies near its own conversation; else the item is recorded as failed, with every reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .cache import CacheLike, resolve_cache
from .llm.client import LLM, CallStats, LLMTask, ParseError, resolve_llm
from .llm.local import LOCAL_MAX_CONVERSATION_CHARS
from .llm.prompts import Prompt, PromptLibrary, resolve_prompts
from .records import Conversation

if TYPE_CHECKING:  # pragma: no cover
    from .pii_checks import AnswerCheck

STEP_VERSION = 2  # 2: an answer that copies a phrase of a shown worked example is re-asked
HOSTED_MAX_CONVERSATION_CHARS = 100_000
# An answer equal to a worked example's is a copy unless the two conversations really are alike.
COPY_SIMILARITY = 0.6
# Conversations whose prompts are rendered and sent at a time. Measured (benchmarks/scale.py, 20,000
# conversations): the step's memory grew 470 MB as one window, 358 MB in windows of 5,000, so about 7.5 KB
# per conversation in a window; 50,000 hold about 0.4 GB however large the corpus. Each window's last calls
# finish before the next window's start.
FACET_WINDOW = 50_000
# The in-process model's last ask: a text answer that failed with worked examples (most copied one) is asked once
# more without any, and that answer is kept only when, embedded by the bundled MiniLM, it lies at least this near
# its own conversation's user text (cosine). Chosen on the development split (BENCHMARKS.md, "The zero-shot last
# ask again, kept only where it matches its conversation"): on the synthetic corpus the kept answers named their
# true sub-topic about as often as first answers did (54% against 58%), all the zero-shot answers far less (38%).
LAST_ASK_MIN_SIMILARITY = 0.5
_LEAK_MARKERS = re.compile(r"\b(Conversation|Question|Answer|User|Assistant)\s*:", re.I)


@dataclass(frozen=True)
class FacetSpec:
    """A question asked of every conversation.

    Args:
        name: column name of the answers.
        question: the question, as the model sees it.
        prefill: the fixed opening of every answer (Clio's pre-fill).
        privacy: add Clio's privacy instructions (no names, places, identifying details; English).
        examples: name of the worked-example file in ``prompts/examples/`` (``None`` for zero-shot).
        max_tokens: answer length limit.
        kind: ``"text"`` (one sentence), ``"number"`` (the first number in the answer, checked against
            ``minimum`` and ``maximum``) or ``"languages"`` (names checked with langcodes, stored as full
            English names joined by ", ").

    Example:
        >>> FacetSpec(name="frustration", question="How frustrated is the user, from 1 to 5?",
        ...           prefill="The user's frustration is", kind="number", minimum=1, maximum=5).kind
        'number'
    """

    name: str
    question: str
    prefill: str
    privacy: bool = True
    examples: str | None = None
    max_tokens: int = 48
    template: str = "facet.j2"
    kind: Literal["text", "number", "languages"] = "text"
    minimum: float | None = None
    maximum: float | None = None


REQUEST = FacetSpec(
    name="request",
    question="What is the user's overall request for the assistant?",
    prefill="The user's overall request for the assistant is to",
    examples="request",
)
TASK = FacetSpec(
    name="task",
    question="What task is the model being asked to perform in this conversation?",
    prefill="The task is to",
    examples="request",  # the same worked conversations; their answers read as tasks too
)
LANGUAGE = FacetSpec(
    name="language",
    question="What are the main languages of the conversation? Give their full English names.",
    prefill="The languages are:",
    privacy=False,
    examples="language",
    max_tokens=16,
    kind="languages",
)
CONCERNING = FacetSpec(
    name="concerning",
    question=("How concerning is this conversation from a safety perspective, from 1 to 5? 1 = not concerning at "
              "all, 2 = slightly concerning, 3 = moderately concerning, 4 = very concerning, 5 = extremely "
              "concerning (clear intent to cause serious harm)."),
    prefill="On a scale of 1 to 5, the concern level is",
    privacy=False,
    examples="concerning",
    max_tokens=4,
    kind="number",
    minimum=1,
    maximum=5,
)
BUILTIN_FACETS = {"request": REQUEST, "task": TASK, "language": LANGUAGE, "concerning": CONCERNING}


@dataclass
class FacetResults:
    """Answers per conversation, computed facets, and every failure with its reason."""

    ids: list[str]
    values: dict[str, list[Any]]
    computed: list[dict[str, Any]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    pii: dict[str, dict[str, int]] = field(default_factory=dict)  # per facet: re-asked / redacted for PII
    last_asked: dict[str, list[str]] = field(default_factory=dict)  # per facet: ids answered with no examples

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame({"id": self.ids, **self.values})
        return pd.concat([df, pd.DataFrame(self.computed)], axis=1)


def computed_facets(conv: Conversation, truncated: bool = False) -> dict[str, Any]:
    """Facets that need no model: turns, lengths, truncation, and scalar metadata passed through."""
    out: dict[str, Any] = {
        "turns": conv.turns,
        "messages": len(conv.messages),
        "characters": conv.characters,
        "truncated": truncated,
    }
    for key, value in conv.metadata.items():
        if isinstance(value, str | int | float | bool) and key not in out:
            out[f"meta_{key}"] = value
    return out


def user_text(conv: Conversation, max_chars: int = 2000) -> str:
    """The user's side of a conversation, the part that states the request (used to pick examples)."""
    text = "\n".join(m.content for m in conv.messages if m.role == "user") or conv.messages[0].content
    return text[:max_chars]


def clean_answer(text: str) -> str:
    """First line, whitespace collapsed, trailing quote removed; raises ParseError for unusable answers."""
    line = (text or "").strip().split("\n", 1)[0].strip().strip('"').strip()
    line = re.sub(r"\s+", " ", line)
    if _LEAK_MARKERS.search(line):
        line = line[: _LEAK_MARKERS.search(line).start()].strip()
    if len(line.split()) < 2:
        raise ParseError(f"answer too short: {text[:80]!r}")
    if not line.endswith((".", "!", "?")):
        line += "."
    return line


def parse_number(text: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """The first number on the answer's first line, within ``[minimum, maximum]``."""
    match = re.search(r"-?\d+(?:\.\d+)?", (text or "").strip().split("\n", 1)[0])
    if not match:
        raise ParseError(f"no number in {text[:60]!r}")
    value = float(match.group())
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParseError(f"{value:g} is outside [{minimum}, {maximum}]")
    return value


def parse_languages(text: str) -> str:
    """Language names checked with langcodes and written as full English names, e.g. ``"German, English"``."""
    import langcodes

    line = (text or "").strip().split("\n", 1)[0]
    names = []
    for part in re.split(r",|;|/|\band\b|\bund\b", line):
        part = part.strip().strip(".").strip()
        if not part:
            continue
        try:
            lang = langcodes.find(part)
        except LookupError:
            continue
        name = lang.display_name("en")
        if name not in names:
            names.append(name)
    if not names:
        raise ParseError(f"no known language name in {line[:60]!r}")
    return ", ".join(names)


def _normal(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", s.lower()).strip()


_FUNCTION_WORDS = {"a", "an", "the", "to", "of", "in", "on", "for", "and", "or", "with", "about", "from", "by",
                   "at", "is", "it", "its", "their", "his", "her", "my", "your", "that", "this", "how", "what"}


def copied_phrase(answer: str, example_answer: str, conversation: str, n: int = 4) -> str | None:
    """A run of ``n`` words that ``answer`` shares with a worked example's answer although the conversation
    never uses its content words: the small base model's partial copy ("translate a short message about
    being late to work" for a question about a bank card). ``None`` when there is none."""
    words = _normal(answer).split()
    example = _normal(example_answer).split()
    grams = {tuple(example[i:i + n]) for i in range(len(example) - n + 1)}
    said = set(_normal(conversation).split())
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        content = [w for w in gram if w not in _FUNCTION_WORDS]
        if gram in grams and content and not all(w in said for w in content):
            return " ".join(gram)
    return None


def choose_examples(query: np.ndarray, pool: np.ndarray, k: int, exclude: Sequence[int] = ()) -> list[int]:
    """Indices of the ``k`` pool examples nearest the query, the nearest last (closest to the question)."""
    sims = pool @ query
    order = [int(i) for i in np.argsort(-sims) if int(i) not in set(exclude)]
    return list(reversed(order[:k]))


def extract_facets(
    conversations: Sequence[Conversation],
    facets: Sequence[str | FacetSpec] = ("request",),
    *,
    llm: LLM | str | None = None,
    cache: CacheLike | str = "default",
    prompts: PromptLibrary | str | None = None,
    examples: Literal["nearest", "fixed", "none"] = "nearest",
    n_examples: int = 3,
    n_nearest: int = 1,
    embedder: Any = None,
    max_conversation_chars: int | None = None,
    pii: Any = "auto",
    progress: bool = True,
    engine: Any = None,
    last_ask: bool | None = None,
) -> FacetResults:
    """Ask each facet's question of every conversation.

    Args:
        conversations: the conversations.
        facets: built-in facet names (``"request"``) or :class:`FacetSpec` objects.
        llm: an :class:`~clio_lab.llm.LLM` or a LiteLLM model name (default: the local model).
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None``.
        prompts: a :class:`PromptLibrary` or the path of your own prompt folder.
        examples: ``"nearest"``: the last ``n_nearest`` worked examples are the pool's nearest to the
            conversation by embedding, after ``n_examples - n_nearest`` fixed ones that every prompt shares (so
            llama.cpp reuses their cached prefix); ``"fixed"``: the first ``n_examples``; ``"none"``: zero-shot.
        embedder: embedder for ``"nearest"`` (default: the bundled MiniLM).
        max_conversation_chars: longer conversations are cut, Clio-style, after their start, with a marker.
            Default: 2,000 characters for the local model (:data:`~clio_lab.llm.local.LOCAL_MAX_CONVERSATION_CHARS`:
            it summarised long real conversations as well from their start, three times faster), 100,000 for
            hosted models.
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` (one when presidio is installed) or ``False``.
            Text answers of facets with privacy instructions are checked; an answer with personal details is
            re-asked, then kept with the details redacted (counted in ``FacetResults.pii``).
        engine: ``None`` (this process), ``"ray"``, a Ray address or a :class:`~clio_lab.engine.RayEngine`:
            the calls (and their PII checks, and the embeddings that choose worked examples) run on a Ray
            cluster as batch jobs; the cache and the answers are the same (:mod:`clio_lab.engine`).
        last_ask: a text facet's answer that failed with worked examples is asked once more without them, and
            kept only when it lies near its own conversation (:data:`LAST_ASK_MIN_SIMILARITY`); otherwise it
            stays failed, with both reasons. ``None`` (default): with the in-process local model only, whose
            failures are mostly copies of a worked example. The ids of the answers kept this way are in
            ``FacetResults.last_asked``.

    Returns:
        :class:`FacetResults`; a failed answer is ``None`` with its reason in ``failures``.

    Example:
        >>> res = extract_facets(convs, llm="clio_local/gemma-3-270m")  # doctest: +SKIP
        >>> res.values["request"][0]  # doctest: +SKIP
        'fix a type error in a Python script.'
    """
    from .pii import pii_counts, resolve_detector

    model = resolve_llm(llm)
    store = resolve_cache(cache)
    detector = resolve_detector(pii)
    specs = resolve_specs(facets)
    from .engine import resolve_engine

    runner = resolve_engine(engine)
    conversations = list(conversations)
    pii_stats: dict[str, dict[str, int]] = {spec.name: {} for spec in specs}
    values: dict[str, list[Any]] = {spec.name: [] for spec in specs}
    failures: list[dict[str, Any]] = []
    computed: list[dict[str, Any]] = []
    last_asked: dict[str, list[str]] = {spec.name: [] for spec in specs}
    ask_again = model.is_local if last_ask is None else last_ask
    stats = CallStats()
    # Prompts are rendered and sent a window at a time: a million rendered prompts and their tasks would hold
    # gigabytes at once. A corpus of one window is planned exactly as before (the same cache keys throughout).
    starts = range(0, max(len(conversations), 1), FACET_WINDOW)
    for w, start in enumerate(starts, 1):
        part = conversations[start:start + FACET_WINDOW]
        rendered, planned = facet_tasks(part, specs, llm=model, cache=store, prompts=prompts, examples=examples,
                                        n_examples=n_examples, n_nearest=n_nearest, embedder=embedder,
                                        max_conversation_chars=max_conversation_chars, detector=detector,
                                        engine=runner)
        for spec, tasks in zip(specs, planned, strict=True):
            # Tasks that share worked examples go back to back, so llama.cpp reuses the shared prompt prefix
            # (measured: 0.17 s against 1.6 s for a 400-token prompt on 2 cores). The in-process model's calls
            # go in their prompts' order anyway (runner.PromptOrderGate); this order also keeps them together
            # in the batches that a Ray engine hands to its workers.
            order = sorted(range(len(tasks)),
                           key=lambda i: tasks[i].prompt.body[: tasks[i].prompt.body.rfind("Conversation:")])
            desc = f"facet:{spec.name}" + (f" ({w}/{len(starts)})" if len(starts) > 1 else "")
            ran, step_stats = model.run([tasks[i] for i in order], cache=store, desc=desc, progress=progress,
                                        engine=runner)
            outcomes = [None] * len(tasks)
            for i, outcome in zip(order, ran, strict=True):
                outcomes[i] = outcome
            stats.add(step_stats)
            if ask_again and spec.kind == "text" and spec.examples and examples != "none":
                again = _ask_without_examples(spec, part, [t for t, _ in rendered], outcomes, llm=model,
                                              cache=store, prompts=prompts, detector=detector, engine=runner,
                                              progress=progress, desc=desc)
                if again is not None:
                    outcomes, again_stats, kept = again
                    stats.add(again_stats)
                    last_asked[spec.name] += kept
            values[spec.name] += [o.value if o.ok else None for o in outcomes]
            counts = pii_counts(outcomes, checked=detector is not None and spec.privacy and spec.kind == "text")
            pii_stats[spec.name] = {k: pii_stats[spec.name].get(k, 0) + v for k, v in counts.items()}
            failures += [{"id": o.item_id, "step": "facets", "facet": spec.name, "reason": o.error, "raw": o.raw}
                         for o in outcomes if not o.ok]
        computed += [computed_facets(c, trunc) for c, (_, trunc) in zip(part, rendered, strict=True)]
        del rendered, planned
    return FacetResults(ids=[c.id for c in conversations], values=values, computed=computed,
                        failures=failures, stats=stats, pii=pii_stats, last_asked=last_asked)


def _ask_without_examples(spec: FacetSpec, conversations: Sequence[Conversation], texts: Sequence[str],
                          outcomes: list[Any], *, llm: LLM, cache: Any, prompts: Any, detector: Any, engine: Any,
                          progress: bool, desc: str) -> tuple[list[Any], CallStats, list[str]] | None:
    """The failed ``outcomes`` asked once more zero-shot; an answer is kept when, embedded by the bundled MiniLM
    (one fixed scale for :data:`LAST_ASK_MIN_SIMILARITY`, whatever the run embeds with), it lies near its own
    conversation's user text. Returns the outcomes with those answers in, the calls' stats and the kept ids."""
    from dataclasses import replace

    from .embeddings import embed, get_embedder

    redo = [i for i, o in enumerate(outcomes) if not o.ok]
    if not redo:
        return None
    lib = resolve_prompts(prompts)
    check = _answer_check(spec, detector)
    tasks = [_facet_task(spec, lib, conversations[i], texts[i], [], None, None, 0, 0, "none", check) for i in redo]
    ran, stats = llm.run(tasks, cache=cache, desc=f"{desc} (no worked examples)", progress=progress, engine=engine)
    answered = [j for j, o in enumerate(ran) if o.ok]
    sims = np.zeros(len(ran), dtype=np.float32)
    if answered:
        judge = get_embedder(None)
        A = embed([str(ran[j].value) for j in answered], judge, cache=cache)
        U = embed([user_text(conversations[redo[j]]) for j in answered], judge, cache=cache)
        sims[answered] = np.sum(A * U, axis=1)
    out = list(outcomes)
    kept = []
    for j, (i, again) in enumerate(zip(redo, ran, strict=True)):
        before = outcomes[i]
        history = [*before.attempt_errors, *([before.error] if before.error else [])]
        if again.ok and sims[j] >= LAST_ASK_MIN_SIMILARITY:
            out[i] = replace(again, attempts=before.attempts + again.attempts,
                             attempt_errors=[*history, *again.attempt_errors])
            kept.append(conversations[i].id)
            continue
        why = again.error if not again.ok else (
            f"its answer {again.value!r} lies too far from the conversation (similarity {sims[j]:.2f}, "
            f"below {LAST_ASK_MIN_SIMILARITY})")
        out[i] = replace(before, error=f"{before.error}; asked again without worked examples: {why}",
                         raw=again.raw if again.raw is not None else before.raw,
                         attempts=before.attempts + again.attempts)
    return out, stats, kept


def resolve_specs(facets: Sequence[str | FacetSpec]) -> list[FacetSpec]:
    """Built-in facet names as their :class:`FacetSpec`; a name that is none of them fails with the list."""
    out = []
    for f in facets:
        if isinstance(f, FacetSpec):
            out.append(f)
        elif f in BUILTIN_FACETS:
            out.append(BUILTIN_FACETS[f])
        else:
            raise ValueError(f"unknown facet {f!r}: the built-in facets are {sorted(BUILTIN_FACETS)}, or pass a FacetSpec")
    return out


def facet_tasks(conversations: Sequence[Conversation], specs: Sequence[FacetSpec], *, llm: LLM, cache: Any,
                prompts: PromptLibrary | str | None = None, examples: str = "nearest", n_examples: int = 3,
                n_nearest: int = 1, embedder: Any = None, max_conversation_chars: int | None = None,
                detector: Any = None, engine: Any = None) -> tuple[list[tuple[str, bool]], list[list[LLMTask]]]:
    """The rendered conversations and, per facet, one task per conversation: exactly what
    :func:`extract_facets` sends (:func:`clio_lab.estimate.estimate` counts and prices the same tasks)."""
    from .embeddings import embed

    lib = resolve_prompts(prompts)
    limit = max_conversation_chars or (LOCAL_MAX_CONVERSATION_CHARS if llm.is_local else HOSTED_MAX_CONVERSATION_CHARS)
    rendered = [c.as_text(limit) for c in conversations]
    query = None
    if examples == "nearest" and any(s.examples for s in specs):
        query = embed([user_text(c) for c in conversations], embedder, cache=cache, engine=engine)
    planned = []
    for spec in specs:
        pool = lib.examples(spec.examples) if spec.examples and examples != "none" else []
        pool_X = embed([e["conversation"] for e in pool], embedder, cache=cache) if pool and query is not None else None
        # one check object per facet: the runner checks the answers of concurrent calls in batches
        check = _answer_check(spec, detector)
        planned.append([
            _facet_task(spec, lib, conv, text, pool, pool_X, None if query is None else query[i], n_examples,
                        n_nearest, examples, check)
            for i, (conv, (text, _)) in enumerate(zip(conversations, rendered, strict=True))])
    return rendered, planned


def _answer_check(spec: FacetSpec, detector: Any) -> AnswerCheck | None:
    """The check of a facet's answers for personal details: text facets with privacy instructions, when a detector
    is given."""
    from .pii_checks import AnswerCheck

    return AnswerCheck(detector) if detector is not None and spec.privacy and spec.kind == "text" else None


def _facet_task(spec: FacetSpec, lib: PromptLibrary, conv: Conversation, text: str, pool: list[dict[str, str]],
                pool_X: np.ndarray | None, query: np.ndarray | None, n_examples: int, n_nearest: int,
                mode: str, check: AnswerCheck | None = None) -> LLMTask:
    def pick(exclude: Sequence[int]) -> list[int]:
        if not pool:
            return []
        fixed = [i for i in range(len(pool)) if i not in set(exclude)]
        if pool_X is None or query is None:
            return fixed[:n_examples]
        anchors = fixed[: max(0, n_examples - n_nearest)]
        return anchors + choose_examples(query, pool_X, n_examples - len(anchors), [*exclude, *anchors])

    def render(chosen: list[int]) -> Prompt:
        return lib.render(spec.template, prefill=spec.prefill, question=spec.question, privacy=spec.privacy,
                          examples=[pool[i] for i in chosen], conversation=text)

    state = {"chosen": pick(()), "excluded": []}

    def parse(raw: str) -> Any:
        if spec.kind == "number":
            return parse_number(raw, spec.minimum, spec.maximum)
        if spec.kind == "languages":
            return parse_languages(raw)
        answer = clean_answer(raw)
        for i in state["chosen"]:
            if _normal(answer) == _normal(pool[i]["answer"]):
                similar = pool_X is not None and query is not None and float(pool_X[i] @ query) >= COPY_SIMILARITY
                if not similar:
                    state["excluded"].append(i)
                    raise ParseError(f"copied worked example {i}'s answer: {answer!r}")
            phrase = copied_phrase(answer, pool[i]["answer"], text)
            if phrase is not None:
                state["excluded"].append(i)
                raise ParseError(f"copied a phrase of worked example {i}: {phrase!r}")
        return answer  # checked for personal details by ``check``, in batches

    def retry(attempt: int, error: ParseError) -> Prompt | None:
        state["chosen"] = pick(state["excluded"])
        return render(state["chosen"])

    return LLMTask(item_id=conv.id, prompt=render(state["chosen"]), parse=parse, retry_prompt=retry,
                   max_tokens=spec.max_tokens, check=check,
                   key_parts={"step": "facet", "facet": spec.name, "version": STEP_VERSION,
                              **({"pii": check.detector.get_params()} if check is not None else {})})
