"""The privacy auditor (Clio's last privacy layer): a model rates each cluster's name and description on the
paper's 1 to 5 scale, and clusters rated below the acceptable level are withheld.

The scale (prompt: ``prompts/privacy_audit.j2``, worked examples: ``prompts/examples/privacy_audit.jsonl``):

1. identifies a specific individual;
2. identifies a specific organisation, business or small group;
3. narrows down to a group of a few thousand people;
4. could identify someone only with a lot of further context;
5. not identifying at all.

The paper keeps clusters rated 3 and above (:data:`DEFAULT_MIN_SCORE`). Every score keeps the model's one-line
justification. The prompt shows the worked examples nearest the cluster's text by embedding, nearest last
(:data:`N_EXAMPLES`), and asks for the rating first; a rating below the minimum is asked again with the
examples shuffled and stands only when confirmed. With the bundled 270M base model, all examples in a
shuffled order gave 73% agreement with hand labels (it rated almost everything 2); as built, 93% on hand
labels (every identifying text withheld) and 82% on the demo run's own cluster texts
(``benchmarks/auditor_agreement.py``, BENCHMARKS.md).

A cluster whose audit fails (no valid rating after the re-ask) is treated as rated below the minimum: the
auditor fails closed, and the failure is recorded. The gating itself is done by
:func:`clio_lab.release.apply_thresholds` (``audit=``): a base cluster below the minimum is withheld like one
below the thresholds; a higher-level category keeps its place but loses its name and description.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .cache import CacheLike, resolve_cache
from .hierarchy import Hierarchy
from .llm.client import LLM, CallStats, LLMTask, ParseError, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts

STEP_VERSION = 1
DEFAULT_MIN_SCORE = 3
N_EXAMPLES = 8
SCALE = {1: "identifies a specific individual", 2: "identifies a specific organisation or small group",
         3: "narrows to a group of a few thousand people", 4: "identifiable only with much more context",
         5: "not identifying"}
_RATING = re.compile(r"(?:Rating:)?\s*\**\s*([1-5])\b\**\.?")


@dataclass
class AuditScore:
    """One cluster's audit: ``score`` 1-5 (``None`` when the audit failed or the node was not audited),
    the model's reason, and ``status``: ``"rated"``, ``"failed"`` or ``"not audited"`` (fixed names such as
    the unclustered group, which hold no model-written text)."""

    node: str
    score: int | None
    reason: str
    status: str
    asks: list[int] = field(default_factory=list)  # every rating the model gave (a low one is asked twice)


@dataclass
class Audit:
    """Scores per node id, the minimum acceptable score, failures, the model's costs and which auditor rated
    (``by``: ``"model"`` or ``"rules"``)."""

    scores: dict[str, AuditScore]
    min_score: int = DEFAULT_MIN_SCORE
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    by: str = "model"

    def withheld(self) -> dict[str, str]:
        """Node ids the auditor withholds, with the reason kind: ``"auditor"`` (rated below the minimum) or
        ``"auditor failed"`` (no valid rating: withheld, failing closed)."""
        out = {}
        for nid, s in self.scores.items():
            if s.status == "failed":
                out[nid] = "auditor failed"
            elif s.status == "rated" and s.score is not None and s.score < self.min_score:
                out[nid] = "auditor"
        return out

    def histogram(self, nodes: Iterable[str] | None = None) -> dict[str, int]:
        """Clusters per score ``"1"``..``"5"`` plus ``"failed"``, over ``nodes`` (default: every audited one)."""
        wanted = set(self.scores) if nodes is None else set(nodes)
        out = {str(s): 0 for s in SCALE} | {"failed": 0}
        for nid, s in self.scores.items():
            if nid not in wanted or s.status == "not audited":
                continue
            out["failed" if s.status == "failed" else str(s.score)] += 1
        return out

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(s) for s in self.scores.values()])


def parse_audit(raw: str) -> dict[str, Any]:
    """Parse ``<1-5>\nReason: <reason>`` (the answer after the ``Rating:`` pre-fill; chat models may repeat
    the pre-fill and write it on one line).

    Example:
        >>> parse_audit(" 5\nReason: A common topic with nothing identifying.")
        {'score': 5, 'reason': 'A common topic with nothing identifying.'}
    """
    text = raw.strip()
    match = _RATING.match(text)
    if not match:
        raise ParseError(f"no rating from 1 to 5 at the start of {text[:120]!r}")
    reason = " ".join(text[match.end():].replace("Reason:", " ").split()).strip(" -:")
    if len(reason.split()) < 3:
        raise ParseError(f"no reason after the rating: {text[:120]!r}")
    return {"score": int(match.group(1)), "reason": reason}


def _audit_task(nid: str, name: str, description: str, lib: PromptLibrary, examples: list[dict[str, Any]],
                random_state: int, ask: int = 0) -> LLMTask:
    """``examples``: the worked examples to show, nearest the cluster last; a re-ask, and the confirming
    second ask (``ask=1``), show them shuffled."""

    def render(seed: int):
        shown = list(examples)
        if seed:
            random.Random(f"{random_state}:{nid}:{name}:{seed}").shuffle(shown)
        return lib.render("privacy_audit.j2", prefill="Rating:", prefill_joiner="\n", examples=shown, group_name=name,
                          group_description=description, stop=("\n\n", "\nGroup name"))

    return LLMTask(item_id=nid, prompt=render(10 * ask), parse=parse_audit,
                   retry_prompt=lambda attempt, error: render(10 * ask + attempt + 1), max_tokens=80,
                   key_parts={"step": "privacy_audit", "version": STEP_VERSION, "ask": ask})


def audit_clusters(
    tree: Hierarchy,
    *,
    nodes: Iterable[str] | None = None,
    min_score: int = DEFAULT_MIN_SCORE,
    llm: LLM | str | None = None,
    cache: CacheLike | str = "default",
    prompts: PromptLibrary | str | None = None,
    random_state: int = 0,
    embedder: Any = None,
    n_examples: int = N_EXAMPLES,
    confirm: bool = True,
    progress: bool = True,
) -> Audit:
    """Rate every cluster's name and description (or only ``nodes``, e.g. those that pass the thresholds).

    Nodes with a fixed name (the unclustered group) or already withheld are not sent to the model. The
    ``n_examples`` worked examples nearest each cluster's text (by ``embedder``, default the bundled one) are
    shown, nearest last. With ``confirm`` (default), a rating below ``min_score`` is asked a second time with
    the examples shuffled and the cluster is withheld only if that rating is also below it (the kept score is
    the higher of the two; both are in ``AuditScore.asks``). With the bundled 270M model this cut false alarms
    on harmless texts while every identifying text stayed withheld (``benchmarks/auditor_agreement.py``).

    Example:
        >>> audit = audit_clusters(result.hierarchy)  # doctest: +SKIP
        >>> audit.histogram()  # doctest: +SKIP
        {'1': 0, '2': 1, '3': 2, '4': 5, '5': 13, 'failed': 0}
    """
    if not 1 <= int(min_score) <= 5:
        raise ValueError(f"min_score must be between 1 and 5, not {min_score!r}")
    model = resolve_llm(llm)
    lib = resolve_prompts(prompts)
    examples = lib.examples("privacy_audit", required=("name", "description", "reason", "score"))
    wanted = list(tree.nodes) if nodes is None else list(nodes)
    store = resolve_cache(cache)
    scores: dict[str, AuditScore] = {}
    todo = []
    for nid in wanted:
        node = tree.nodes[nid]
        if not node.shows_model_text:
            scores[nid] = _not_audited(nid)
        else:
            todo.append(node)
    tasks = []
    examples_for: dict[str, list[dict[str, Any]]] = {}
    if todo:
        from .embeddings import embed, get_embedder

        emb = get_embedder(embedder)
        E = embed([f"{e['name']}. {e['description']}" for e in examples], emb, cache=store)
        Q = embed([f"{n.name}. {n.description}" for n in todo], emb, cache=store)
        for node, q in zip(todo, Q, strict=True):
            nearest = np.argsort(-(E @ q), kind="stable")[:n_examples][::-1]  # nearest last
            examples_for[node.id] = [examples[i] for i in nearest]
            tasks.append(_audit_task(node.id, node.name, node.description, lib, examples_for[node.id],
                                     random_state))
    outcomes, stats = model.run(tasks, cache=store, desc="privacy audit", progress=progress)
    failures = []
    for o in outcomes:
        if o.ok:
            scores[o.item_id] = AuditScore(o.item_id, int(o.value["score"]), o.value["reason"], "rated",
                                           [int(o.value["score"])])
        else:
            scores[o.item_id] = AuditScore(o.item_id, None, "", "failed")
            failures.append({"id": o.item_id, "step": "privacy_audit", "reason": o.error, "raw": o.raw})
    # A rating below the minimum is asked once more with the examples in another order, and stands only if
    # confirmed: the local model's false alarms vary with the order, its true ones do not (measured).
    low = {t.item_id: t for t in tasks if scores[t.item_id].status == "rated" and scores[t.item_id].score < min_score}
    if low and confirm:
        by_id = {n.id: n for n in todo}
        second = [_audit_task(nid, by_id[nid].name, by_id[nid].description, lib, examples_for[nid], random_state,
                              ask=1) for nid in low]
        confirmed, stats2 = model.run(second, cache=store, desc="privacy audit: confirm", progress=progress)
        stats.add(stats2)
        for o in confirmed:
            first = scores[o.item_id]
            if o.ok:
                asks = [*first.asks, int(o.value["score"])]
                better = int(o.value["score"]) > int(first.score)
                scores[o.item_id] = AuditScore(o.item_id, max(asks), o.value["reason"] if better else first.reason,
                                               "rated", asks)
    return Audit(scores, int(min_score), failures, stats)


# --- the rule auditor: no model --------------------------------------------------------------------------------

# A word of a cluster's text is "name-like" when it is capitalised away from the start of a sentence, holds
# three digits or more, or is rare in English: wordfreq's Zipf frequency below this ("kowalczyk" 1.9, "oakridge" 2.1; on the development split 3.0 also caught ordinary
# words a summary used once: "allowable" 3.0, "authorise" 2.8, "unblocked" 2.6).
RARE_ZIPF = 2.5
# A capitalised known first or last name rarer than this in English is name-like even where a sentence starts
# ("Lange asked ..."); lower-cased, a name is name-like only when rare (on the development split, names as
# lower-case words, "printer" and "rainy", were withheld from clusters about printers and weather).
NAME_ZIPF = 4.0
# A known name this common in English ("States" 5.5, "John" 5.4) needs only the corpus's users to share it
# (a surname such as "Smith", 4.9, needs the cluster's): the name lists are noisy, and on the development split
# "United States" was withheld from clusters that one user of the cluster had asked about.
COMMON_ZIPF = 5.0
RULE_MIN_USERS = 5  # the default aggregation threshold's distinct users (release.DEFAULT_MIN_USERS)
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")
_SENTENCE_START = set(".!?:;\"'\u201c\u201d\u2018\u2019([{\u00ab\u2013\u2014-\u2026*")
_NUMBER = re.compile(r"\+?\d[\d ().\-/]{4,}\d")
_RUN = re.compile(r"[^\W_]+")  # a maximal alphanumeric run: what str.isalnum calls a word's characters
_PRONOUN_I = re.compile(r"^I(?:['\u2019](?:m|ve|d|ll))?$")


@functools.cache
def _common_names() -> frozenset[str]:
    """Capitalised words that name no one: languages and nationalities ("Italian", "Spanish": the English names
    of the ISO 639-1 languages, from langcodes), days and months ("Friday" is also a first name)."""
    import calendar

    import langcodes

    names = {str(n).lower() for n in (*calendar.day_name, *calendar.month_name) if n}
    for a in "abcdefghijklmnopqrstuvwxyz":
        for b in "abcdefghijklmnopqrstuvwxyz":
            lang = langcodes.Language.get(a + b)
            if lang.is_valid():
                name = lang.display_name()
                if name.isalpha():  # one word: "Italian", not "Church Slavic" or "Unknown language [xy]"
                    names.add(name.lower())
    return frozenset(names)


def _zipf() -> Any:
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # pragma: no cover - wordfreq comes with the privacy extra
        return None
    return zipf_frequency


def name_like_words(text: str, zipf: Any = None, names: tuple[frozenset[str], frozenset[str]] | None = None) -> list[str]:
    """The words of ``text`` that could name someone or something, each once, as written: capitalised where a
    sentence, clause or quotation does not start, holding three digits or more (and numbers written in groups),
    rare in English (with wordfreq's ``zipf_frequency`` as ``zipf``), or a capitalised known first or last name
    (``names``, from :func:`clio_lab.pii_names.known_names`) that is not a common English word.

    Example:
        >>> name_like_words("Users asked the assistant to email Maria about the 4pm call on 020 7946 0018.")
        ['Maria', '020', '7946', '0018', '020 7946 0018']
    """
    return list(_name_like(text, zipf, names))


def _name_like(text: str, zipf: Any, names: tuple[frozenset[str], frozenset[str]] | None) -> dict[str, float | None]:
    """:func:`name_like_words`, each with its Zipf frequency (``None`` where it was not looked up)."""
    out: dict[str, float | None] = {}
    for m in _TOKEN.finditer(text or ""):
        word = m.group(0).rstrip(".")
        before = text[:m.start()].rstrip()
        starts = not before or before[-1] in _SENTENCE_START
        if word.lower() in _common_names():  # a language, a nationality, a day or a month
            continue
        acronym = len(word) > 1 and word.isupper()  # read like a lower-case word: capitals say nothing here
        capital = any(ch.isupper() for ch in word) and not starts and not acronym and not _PRONOUN_I.match(word)
        digit = sum(ch.isdigit() for ch in word) >= 3
        freq = zipf(word.lower(), "en") if zipf is not None and word.isalpha() else None
        rare = freq is not None and freq < RARE_ZIPF
        known = names is not None and word[:1].isupper() and not acronym and freq is not None and \
            freq < NAME_ZIPF and _is_name(word, names)
        if capital or digit or rare or known:
            out.setdefault(word, freq)
    for m in _NUMBER.finditer(text or ""):  # a phone number written in groups ("02 56 55 11 49")
        if sum(ch.isdigit() for ch in m.group(0)) >= 6:
            out.setdefault(m.group(0), None)
    return out


def _is_name(word: str, names: tuple[frozenset[str], frozenset[str]]) -> bool:
    folded = word.casefold()  # the lists are casefolded
    return folded in names[0] or folded in names[1]


def _writes(text: str, word: str) -> bool:
    """Whether ``text`` (lower-cased) holds ``word`` (lower-cased) as a whole word."""
    at = text.find(word)
    while at >= 0:
        end = at + len(word)
        if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return True
        at = text.find(word, at + 1)
    return False


class WordSupport:
    """Who wrote which word: ``texts`` and user ids (``who``) per conversation. A word that is a known first or
    last name (``clio_lab.pii_names``) or holds a digit must have been written by ``min_users`` distinct users
    of the cluster itself; any other name-like word (a common proper noun such as "United States" or
    "JavaScript", a rare word) by ``min_users`` distinct users anywhere in the corpus: shared vocabulary, not
    one person's detail.

    The corpus is read once for all the words asked about (:meth:`index`): which conversations hold each of
    their alphanumeric runs as a whole word, lower-cased. A word of one run is looked up there; one of several
    ("e-mail", "020 7946 0018") is checked in the texts that hold all its runs. Nothing of the texts is kept."""

    def __init__(self, texts: Sequence[str | None], who: Sequence[str], min_users: int) -> None:
        from .pii_names import known_names

        self.texts, self.who, self.min_users = texts, who, min_users
        self.zipf = _zipf()
        self.names = known_names()
        self.everyone = np.arange(len(texts))
        self._postings: dict[str, np.ndarray] = {}
        self._holders: dict[str, np.ndarray] = {}

    def index(self, words: Iterable[str]) -> None:
        """Read the corpus once for the alphanumeric runs of ``words`` not read for yet."""
        wanted = {r for w in words for r in _RUN.findall(w.lower())} - self._postings.keys()
        if not wanted:
            return
        hits: dict[str, list[int]] = {r: [] for r in wanted}
        for i, text in enumerate(self.texts):
            if text:
                for r in wanted.intersection(_RUN.findall(text.lower())):
                    hits[r].append(i)
        self._postings.update({r: np.asarray(idx, dtype=np.int64) for r, idx in hits.items()})

    def holders(self, word: str) -> np.ndarray:
        """The conversations (in order) whose text, lower-cased, holds ``word`` lower-cased as a whole word."""
        low = word.lower()
        if low not in self._holders:
            runs = _RUN.findall(low)
            if not runs:  # nothing alphanumeric to look up: read every text
                held = [i for i, t in enumerate(self.texts) if _writes((t or "").lower(), low)]
            else:
                self.index(runs)
                held = self._postings[runs[0]]
                for r in runs[1:]:
                    held = np.intersect1d(held, self._postings[r], assume_unique=True)
                if runs != [low]:  # the runs are there; is the whole word?
                    held = [i for i in held if _writes((self.texts[i] or "").lower(), low)]
            self._holders[low] = np.asarray(held, dtype=np.int64)
        return self._holders[low]

    def specific(self, word: str, freq: float | None = None) -> bool:
        """Must the cluster's own users have written it? Numbers, and known names, except acronyms (rare ones
        here: the name lists hold "Sepa") and the commonest words (Zipf of :data:`COMMON_ZIPF` or more:
        "States", "John"), which a name of one person never is on its own. ``freq``: the word's Zipf frequency
        where the caller has it (looked up otherwise)."""
        if any(ch.isdigit() for ch in word) or self.names is None:
            return True
        if freq is None and self.zipf is not None:
            freq = self.zipf(word.lower(), "en")
        if word.isupper() or (freq is not None and freq >= COMMON_ZIPF):
            return False
        return _is_name(word, self.names)

    def writers(self, word: str, among: Sequence[int]) -> int:
        """How many distinct users among ``among`` wrote ``word`` (counting stops at ``min_users``)."""
        held = self.holders(word)
        if among is not self.everyone:
            held = np.intersect1d(held, np.asarray(among, dtype=np.int64))
        seen: set[str] = set()
        for i in held:
            seen.add(self.who[i])
            if len(seen) >= self.min_users:
                break
        return len(seen)

    def name_like(self, text: str) -> dict[str, float | None]:
        """:func:`name_like_words` of ``text``, each with its Zipf frequency."""
        return _name_like(text, self.zipf, self.names)

    def rare_words(self, text: str, members: Sequence[int],
                   words: dict[str, float | None] | None = None) -> list[tuple[str, int]]:
        """The name-like words of ``text`` too few users wrote, each with how many did (among the cluster's
        ``members`` or the corpus, as :class:`WordSupport` says). ``words``: :meth:`name_like` of ``text``
        where the caller has it."""
        out = []
        for word, freq in (self.name_like(text) if words is None else words).items():
            n = self.writers(word, members if self.specific(word, freq) else self.everyone)
            if n < self.min_users:
                out.append((word, n))
        return out


def audit_off_reason(audit: Any, naming: Any) -> str | None:
    """Why a run with these ``audit`` and ``naming`` settings audits nothing, or ``None`` when it audits:
    ``audit`` of ``True``, ``"rules"`` or ``"model"`` always audits, ``"auto"`` whenever clusters are named."""
    if audit in (True, "rules", "model") or (audit == "auto" and naming):
        return None
    return "turned off (audit=False)" if audit is False else "no cluster names in this run"


def _not_audited(nid: str) -> AuditScore:
    """The score of a node with a fixed name (the unclustered group): nothing a model wrote to rate."""
    return AuditScore(nid, None, "fixed name, no model-written text", "not audited")


def resolve_auditor(audit: Any, llm: Any) -> str:
    """``"rules"`` or ``"model"``: the one ``audit`` names, else the rules with the local model (the 270M auditor
    withheld two thirds of harmless held-out cluster texts) and the model with a hosted one."""
    if audit in ("rules", "model"):
        return audit
    return "rules" if resolve_llm(llm).is_local else "model"


def support_texts(conversations: Sequence[Any] | None, *answers: Sequence[Any]) -> list[str]:
    """Per conversation, what :func:`rule_audit` counts a word's writers in: the conversation's own text (when
    given; a saved run keeps none) and every answer the model wrote of it (facet answers that are text)."""
    n = len(conversations) if conversations is not None else len(answers[0])
    out = []
    for i in range(n):
        parts = [conversations[i].as_text()[0]] if conversations is not None else []
        parts += [a[i] for a in answers if isinstance(a[i], str)]
        out.append("\n".join(parts))
    return out


def rule_audit(
    tree: Hierarchy,
    texts: Sequence[str | None],
    users: Sequence[str | None] | None = None,
    *,
    nodes: Iterable[str] | None = None,
    min_users: int = RULE_MIN_USERS,
    min_score: int = DEFAULT_MIN_SCORE,
    detector: Any = "auto",
) -> Audit:
    """Rate every cluster's name and description (or only ``nodes``) by two rules, with no model:

    1. the PII detector finds a personal detail in it: score 1 (identifies a person);
    2. it holds a name-like word (:func:`name_like_words`) that too few users wrote (:class:`WordSupport`: a
       known name or a number, fewer than ``min_users`` distinct users of the cluster; any other, fewer than
       ``min_users`` in the corpus), in ``texts`` (each conversation's own text and what the model wrote of
       it): score 2 (a detail of one or a few people: a name, a small organisation, a number);
    3. otherwise 5.

    This is the aggregation threshold applied to the words a cluster's text shows: a word that at least
    ``min_users`` people wrote is not one person's detail. On held-out clusters (``benchmarks/audit_rules.py``,
    BENCHMARKS.md) they withheld 2% of harmless cluster texts and 96% of the same texts with a planted detail;
    the bundled 270M model as auditor withheld 65% and 78%. Known gaps: a name written in lower case whose words
    are common words ("for the frank family"); an organisation that many users of a cluster name (an employer's
    internal tool asked about by 20 of its staff) passes. A capable model (``audit="model"``) is the remedy.

    ``texts`` and ``users`` are per conversation, in the order of ``tree.base_labels``; a conversation with no
    user id counts as its own user. ``detector``: a :class:`~clio_lab.pii.PIIDetector` (or anything with its
    ``find_many``), ``"auto"``, ``True`` or ``False``. The reason never repeats the word or detail it found.

    Example:
        >>> audit = rule_audit(result.hierarchy, texts, [c.user_id for c in convs])  # doctest: +SKIP
    """
    from .pii_checks import resolve_detector

    if not 1 <= int(min_score) <= 5:
        raise ValueError(f"min_score must be between 1 and 5, not {min_score!r}")
    n = len(tree.base_labels)
    if len(texts) != n or (users is not None and len(users) != n):
        raise ValueError(f"rule_audit needs one text and one user id per conversation of the tree ({n}), "
                         f"not {len(texts)} texts and {len(users) if users is not None else n} user ids")
    found = detector if hasattr(detector, "find_many") else resolve_detector(detector)
    who = [u if u else f"\0conversation {i}" for i, u in enumerate(users if users is not None else [None] * n)]
    support = WordSupport(texts, who, min_users)
    wanted = list(tree.nodes) if nodes is None else list(nodes)
    todo = [tree.nodes[nid] for nid in wanted if tree.nodes[nid].shows_model_text]
    texts_of = {n.id: f"{n.name}. {n.description}" for n in todo}
    words_of = {nid: support.name_like(text) for nid, text in texts_of.items()}
    support.index(w for words in words_of.values() for w in words)  # the corpus read once for all of them
    scores = {nid: _not_audited(nid) for nid in wanted if not tree.nodes[nid].shows_model_text}
    pii = found.find_many([f"{n.name}\n{n.description}" for n in todo]) if found is not None and todo else \
        [[] for _ in todo]
    by_level: dict[int, np.ndarray] = {}
    for node, hits in zip(todo, pii, strict=True):
        if hits:
            kinds = ", ".join(sorted({h.entity for h in hits}))
            scores[node.id] = AuditScore(node.id, 1, f"the detector finds a personal detail ({kinds})", "rated", [1])
            continue
        if node.level not in by_level:
            by_level[node.level] = tree.base_labels if node.level == 0 else tree.labels_at(node.level)
        members = np.flatnonzero(by_level[node.level] == node.index)
        rare = [k for _, k in support.rare_words(texts_of[node.id], members, words_of[node.id])]
        if rare:
            scores[node.id] = AuditScore(
                node.id, 2, f"{len(rare)} name-like word(s) too few users wrote (the fewest: {min(rare)} of the "
                f"{min_users} needed)", "rated", [2])
        else:
            scores[node.id] = AuditScore(node.id, 5, "no personal detail found; every name-like word was written by "
                                         f"at least {min_users} users", "rated", [5])
    return Audit(scores, int(min_score), [], CallStats(), by="rules")
