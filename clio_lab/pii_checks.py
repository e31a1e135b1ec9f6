"""Checks that use a :class:`~clio_lab.pii.PIIDetector`: every model-written text (re-asked once when it holds
personal details, then kept redacted), whole conversations redacted before any model sees them, and the raw
corpus scanned for the privacy report. Redactions are cached per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .pii import PIIDetector

PII_ERROR = "personal details in the answer"


def check_answer(detector: PIIDetector | None, **texts: str) -> dict[str, str]:
    """Check model-written texts (a facet answer; a name and a description) for personal details.

    Returns the texts unchanged when clean. Otherwise raises :class:`~clio_lab.llm.ParseError` naming the
    kinds found, so the model is re-asked (``LLM.max_parse_retries`` times at most: once for the local model;
    never again once the same prompt got the same answer twice); its ``fallback`` holds the texts with the
    details redacted, which the LLM layer keeps (marked with a note) if no re-ask is clean.
    """
    if detector is None:
        return texts
    redacted, kinds = {}, set()
    for name, text in texts.items():
        red = detector.redact(text)
        redacted[name] = red.text
        kinds |= {f.entity for f in red.findings}
    if kinds:
        raise _details_found(kinds, redacted)
    return texts


def _details_found(kinds: Iterable[str], fallback: Any) -> Exception:
    """The re-ask error for an answer holding personal details of ``kinds``; ``fallback`` is kept if the re-ask
    is not clean either."""
    from .llm.errors import PersonalDetailsInAnswer

    return PersonalDetailsInAnswer(f"{PII_ERROR}: {', '.join(sorted(kinds))}", fallback=fallback)


def check_text(detector: PIIDetector | None, text: str) -> str:
    """:func:`check_answer` for one text; the fallback is the redacted text itself."""
    from .llm.errors import PersonalDetailsInAnswer

    try:
        return check_answer(detector, text=text)["text"]
    except PersonalDetailsInAnswer as exc:
        raise PersonalDetailsInAnswer(str(exc), fallback=exc.fallback["text"]) from None


class AnswerCheck:
    """:func:`check_text` as a batched task check (:attr:`clio_lab.llm.LLMTask.check`): the answers of
    concurrent calls go through :meth:`PIIDetector.find_many <clio_lab.pii.PIIDetector.find_many>` together
    (spaCy reads them in one pass), with the same result per answer as :func:`check_text`."""

    def __init__(self, detector: PIIDetector):
        self.detector = detector

    def __call__(self, texts: list[str]) -> list[Any]:
        return [_details_found({f.entity for f in red.findings}, red.text) if red.findings else text
                for text, red in zip(texts, self.detector.redact_many(texts), strict=True)]


def resolve_detector(pii: PIIDetector | bool | str | None) -> PIIDetector | None:
    """``"auto"``: a :class:`PIIDetector` when presidio and the spaCy model are installed, else ``None``;
    ``True`` requires them; ``False``/``None``: no checking."""
    from .pii import SPACY_MODEL, PIIDetector  # here, not at the top: clio_lab.pii re-exports this module

    if isinstance(pii, PIIDetector):
        return pii
    if pii in (False, None):
        return None
    if pii not in (True, "auto"):
        raise ValueError(f"pii must be a PIIDetector, True, False or 'auto', not {pii!r}")
    try:
        import presidio_analyzer  # noqa: F401
        import spacy

        if not spacy.util.is_package(SPACY_MODEL):
            raise ImportError(SPACY_MODEL)
    except ImportError:
        if pii is True:
            raise
        return None
    return PIIDetector()


def pii_counts(outcomes: Iterable[Any], checked: bool = True) -> dict[str, int]:
    """How many answers were checked for personal details (``checked``: whether a detector ran), how many were
    re-asked for them, and how many kept only after redaction."""
    from .llm.errors import PersonalDetailsInAnswer

    kind = PersonalDetailsInAnswer.kind
    flagged = redacted = ok = 0
    for o in outcomes:
        ok += bool(getattr(o, "ok", False))
        flagged += kind in (getattr(o, "attempt_kinds", None) or [])
        redacted += getattr(o, "note_kind", None) == kind
    return {"checked": ok if checked else 0, "reasked_for_pii": flagged, "redacted": redacted}


REDACTION_VERSION = 1


def redaction_entries(detector: PIIDetector, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Each text's cache entry: the kinds found, and the redacted text where something was found."""
    return [{"kinds": [f.entity for f in red.findings], "text": red.text if red.changed else None}
            for red in detector.redact_many(list(texts))]


def _redactions(texts: Sequence[str], detector: PIIDetector, cache: Any,
                params: dict[str, Any] | None, engine: Any = None) -> list[tuple[str, list[str]]]:
    """Each message's redacted text and the kinds found in it, cached (with a ``cache``) under its text and the
    detector's settings; the redacted text is stored only when something was found. The messages the cache
    does not hold are read by the detector together (:meth:`PIIDetector.redact_many`: spaCy in batches).
    Shared by the pre-LLM redaction and the raw scan, so a corpus is read by the detector once."""
    from .cache import make_key

    keys = [make_key(step="pii_redact", version=REDACTION_VERSION, detector=params, text=t) if cache is not None
            else None for t in texts]
    hits = [cache.get(k) if k is not None else None for k in keys]
    todo = list(dict.fromkeys(texts[i] for i, h in enumerate(hits) if h is None))  # a repeated text read once
    from .engine import can

    if can(engine, "redact") and todo:  # read on a Ray cluster (clio_lab.engine), cached here
        found = engine.redact(detector, todo)
    else:
        found = redaction_entries(detector, todo)
    done = dict(zip(todo, found, strict=True))
    for i, h in enumerate(hits):
        if h is None:
            hits[i] = done[texts[i]]
            if keys[i] is not None:
                cache.set(keys[i], hits[i])
    return [(h["text"] or t, h["kinds"]) for t, h in zip(texts, hits, strict=True)]


def _by_conversation(conversations: Sequence[Any], detector: PIIDetector, cache: Any,
                     params: dict[str, Any] | None, chunk: int = 500, engine: Any = None):
    """``(conversation, [(redacted text, kinds) per message])``, the messages read a chunk of conversations at
    a time (memory stays flat on a large corpus; with an ``engine``, a chunk of 50,000 at a time, read on the
    cluster)."""
    from .engine import can

    if can(engine, "redact"):
        chunk = max(chunk, 50_000)
    for begin in range(0, len(conversations), chunk):
        part = conversations[begin:begin + chunk]
        flat = _redactions([m.content for c in part for m in c.messages], detector, cache, params, engine)
        pos = 0
        for conv in part:
            yield conv, flat[pos:pos + len(conv.messages)]
            pos += len(conv.messages)


def _tally(kinds_per_conversation: Iterable[list[str]]) -> tuple[int, dict[str, int]]:
    """Conversations with any finding, and findings by kind."""
    flagged, by_kind = 0, {}
    for kinds in kinds_per_conversation:
        flagged += bool(kinds)
        for kind in kinds:
            by_kind[kind] = by_kind.get(kind, 0) + 1
    return flagged, dict(sorted(by_kind.items()))


def redact_conversations(conversations: Sequence[Any], detector: PIIDetector, *,
                         cache: Any = None, engine: Any = None) -> tuple[list[Any], dict[str, Any]]:
    """Copies of the conversations with personal details redacted in every message, before any model sees
    them, and counts: conversations with a finding, findings by kind. Ids, user ids and metadata are kept
    (user ids feed the aggregation thresholds and never reach a model). With a ``cache``, each message's
    redaction is kept under its text and the detector's settings (the detector reads about 65 messages a
    second on 2 cores, so a re-run of a large corpus would otherwise pay for it again). ``engine``: a
    :class:`~clio_lab.engine.RayEngine` reads the messages on a Ray cluster."""
    from .engine import resolve_engine
    from .records import Message

    params = detector.get_params() if cache is not None else None
    out, found = [], []
    for conv, reds in _by_conversation(conversations, detector, cache, params, engine=resolve_engine(engine)):
        found.append([k for _, kinds in reds for k in kinds])
        if found[-1]:
            conv = conv.model_copy(update={"messages": [Message(role=m.role, content=text) if kinds else m
                                                        for m, (text, kinds) in zip(conv.messages, reds, strict=True)]})
        out.append(conv)
    flagged, by_kind = _tally(found)
    return out, {"conversations": len(out), "conversations_with_pii": flagged, "findings_by_kind": by_kind}


def scan_conversations(conversations: Sequence[Any], detector: PIIDetector, *, cache: Any = None,
                       sample: int | None = 1000, random_state: int = 0) -> dict[str, Any]:
    """How many raw conversations hold detected personal details (the privacy report's first stage).

    Every message is checked; findings are cached per message (kinds only, and the redacted text where
    something was found; the same entries serve :func:`redact_conversations`). Above ``sample`` conversations
    a seeded random sample is checked (the detector reads about 65 messages a second on 2 CPU cores) and the
    share is an estimate; ``sample=None`` checks them all.
    """
    import random

    idx = list(range(len(conversations)))
    if sample is not None and len(idx) > sample:
        idx = sorted(random.Random(random_state).sample(idx, sample))
    params = detector.get_params() if cache is not None else None
    found = [[kind for _, kinds in reds for kind in kinds]
             for _, reds in _by_conversation([conversations[i] for i in idx], detector, cache, params)]
    flagged, by_kind = _tally(found)
    return {"conversations": len(conversations), "checked": len(idx), "sampled": len(idx) < len(conversations),
            "with_pii": flagged, "share": round(flagged / len(idx), 4) if idx else None,
            "findings_by_kind": by_kind}
