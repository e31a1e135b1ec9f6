"""Names with no writing model: each cluster is named by the phrase of its own members that best tells it apart.

Measured on labelled data (benchmarks/naming_quality.py), the bundled 270M model writes cluster names that
match the true label less often than plain keywords do, and most of its names fail validation anyway. So, for
the local model, a cluster's name is *chosen* rather than written:

1. candidates come from the members nearest the cluster's centre: each one's request summary (the facet answer)
   and the sentences of its own request (repeated boilerplate left out), each also in more general forms: cut
   before a trailing qualifier ("What questions should I expect in an interview | for a teacher?") and as an
   imperative ("How do I verify my identity?" -> "Verify my identity");
2. a candidate from the users' own words is kept only if **every word in it was written by at least**
   ``min_word_users`` **distinct users** of the cluster (else its longest run of such words, when that is
   still a phrase). Such a name is an aggregate of what several people wrote, never one person's words: a rare
   name, place, number or detail cannot pass. This is the aggregation threshold applied to words. Summaries
   need no such rule: they are model-written under privacy instructions (the paper's layer). No candidate may
   hold a personal detail the detector finds;
3. every candidate is embedded in the run's space and scored by how much nearer it lies to its own cluster's
   centre than to the nearest other cluster's (the paper's contrastive idea, applied to choosing). The best
   of those that lie nearer their own centre than any other becomes the name; the description is built from
   the most central summaries and candidates.

In an English corpus, a candidate cut short where the cut parts a word from one it needs ("Write a React
component that shows | a navigation bar", read off spaCy's parse) goes after the candidates that were not.
A name nearer another cluster's centre than its own is chosen only when no candidate is distinctive, and it
is never released as a plain name: it is marked ``"not distinctive"`` in ``method``. ``method`` also says where
the name came from: ``"extractive (users' words)"`` or ``"extractive (summary)"``. A cluster with no candidate
that passes falls back to its members' summaries alone (model-written under privacy instructions, checked for
personal details), then to keywords.

On held-out data the users' own words named clusters better than the summaries of the 270M model
(BENCHMARKS.md, "Cluster names and trees").
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embeddings import l2_normalise, unit_rows
from .naming import MAX_NAME_WORDS

STEP_VERSION = 6  # 2: candidates from the users' own requests, every word shared by several users; 3: a summary name
# leads its description; 4: a distinctive candidate before a better-scored one that is not; 5: no cut before "of";
# 6: in English, a candidate whose cut parts a word from one it needs goes after the rest
# Every word of a name drawn from the members must have been written by at least this many distinct users of
# the cluster: the aggregation threshold's default (the pipeline passes its own ``min_users``). On the
# development split 5 named clusters as well as 3 once parts of sentences count (BENCHMARKS.md).
MIN_WORD_USERS = 5
# Words that are not function words a name from the users' own words must hold ("How do I fix it" has one).
USERS_CONTENT_WORDS = 2
CANDIDATES_PER_CLUSTER = 40  # embedded and scored per cluster (the most central members' first)
# A part of a sentence ("Exchange rate" from "Why was the exchange rate so bad") is chosen over whole forms only
# when its contrast is higher by more than this: at 0 the development split's names held fragments such as
# "Why was my ATM"; 0.05 kept the accuracy and fewer fragments (BENCHMARKS.md).
WHOLE_BONUS = 0.05
_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
# a greeting or filler before the request, left out of every form of a name
_GREETING = re.compile(r"^(?:(?:hi|hello|hey|hola|bonjour|hallo|ol\u00e1|dear \w+)\b[,!.]?\s*|(?:so|ok so|okay so)\s+"
                       # a label of one to three words before a colon: "Quick question:", "Kurze Frage:", "Context:"
                       r"|(?:[^\W\d_]+\s){0,2}[^\W\d_]+\s?:\s+)+", re.IGNORECASE)
# openings that make a request a question or a plea; what follows is the request itself
_OPENINGS = [re.compile(p, re.IGNORECASE) for p in (
    r"^(?:can|could|would|will) you (?:please |pls )?(?:help me |tell me |show me )?",
    r"^(?:please )?help me (?:to )?",
    r"^i(?: would|'d)? (?:need|want|like) (?:some )?(?:help )?(?:with |to )?",
    r"^how (?:do|can|should|would) (?:i|we) ",
    r"^is it possible to ",
    r"^please ",
)]
# words a name cannot end on ("My card has", "Plan a trip for", "Un quiz sur"): English and the function words
# of the Latin-script languages the synthetic corpora hold (German, French, Spanish, Portuguese) and Italian
_DANGLING = frozenset(
    "a an the to of for and or but with my your our their his her its in on at by from as is are was were be been "
    "has have had i me we you it this that these those than so if when while about into can could would should "
    "will do does did not no any some what which who how why where very more most just also "
    "der die das den dem des ein eine einen einem einer und oder mit f\u00fcr von zu in auf an aus bei nach vor im am "
    "zum zur \u00fcber unter ohne gegen ist sind ich du er sie es wir mein meine "
    "le la les un une et ou avec pour de des du sur dans par en au aux sous chez sans vers est je tu il mon ma mes "
    "el los las una uno unos unas y o con para del al por sin sobre entre hasta desde es yo mi mis "
    "os as um uma e com em no na nos nas ao \u00e0 sem \u00e9 eu meu minha "
    "il lo gli di da su per tra fra della alla".split())
# words a name cannot start with ("was the exchange rate", "and a day hike")
_NO_START = frozenset(
    "to of for and or but with in on at by from as is are was were be been has have had so if than do does did not "
    "no very more most just also into about while und oder mit f\u00fcr von zu et ou avec pour de des du y o con "
    "para del e com".split())
# words before which a request can be cut and stay a request ("... in an interview | for a teacher"). Never
# before "of": it opens a noun's complement, and the cut left "Write a poem in the style" (ShareGPT)
_CUT_BEFORE = frozenset(
    "about for with to in on from by when while because that which who after before if using as into at and "
    "or so but since until f\u00fcr mit \u00fcber von um wenn weil pour avec sur de quand parce para con sobre "
    "cuando porque com quando".split())
# How much the nearest other cluster counts against a candidate (1 = pure contrast). 1.0 was best for summaries
# alone; with the users' own requests among the candidates 0.5 named the development split's clusters as well
# or better (Banking77 train 65-67% against 61-65%, synthetic seeds 101/103 70% against 66-70%) and picked
# fewer over-specific sentences (BENCHMARKS.md, "Cluster names and trees").
CONTRAST_WEIGHT = 0.5
_QUALIFIERS = ("when", "while", "because", "so", "that", "which", "who", "after", "before", "if", "using",
               "with", "for", "in", "on", "about", "from", "by", "to", "and", "or", "as", "into", "at")  # not "of"
_POSSESSIVES = {"their", "his", "her", "my", "your", "our", "its"}
# A cut must not part a word from one it needs: a verb from its object ("that shows | a navigation bar") or from
# the verb it governs ("has chosen | to launch"), a phrasal verb from its particle ("won't turn | on"). Read off
# the English parse of the spaCy model the PII detector uses (dependency labels of spaCy's English models).
_NEEDED = frozenset({"dobj", "xcomp", "ccomp", "prt", "acomp", "attr", "oprd", "dative", "pobj"})
Cut = tuple[str, int, int]  # a text a name was cut from, and the characters of it the name keeps (start, end)


@functools.lru_cache(maxsize=1)
def _english_parser() -> Any:
    """spaCy's small English model without its entity recogniser, or ``None`` where it is not installed."""
    try:
        import spacy

        from .pii import SPACY_MODEL

        return spacy.load(SPACY_MODEL, exclude=["ner", "lemmatizer"])
    except (ImportError, OSError):  # pragma: no cover - both ship with clio_lab's dependencies
        return None


@functools.lru_cache(maxsize=4_096)
def _arcs(text: str) -> tuple[tuple[int, str, int], ...]:
    """Each token of ``text``'s parse as (where it starts, its dependency label, where its head starts): all a
    cut check reads, kept instead of the parse itself (a variant of one sentence is checked again)."""
    return tuple((t.idx, t.dep_, t.head.idx) for t in _english_parser()(text))


def cut_parts_needed(text: str, end: int, start: int = 0) -> bool:
    """Whether keeping only characters ``start`` to ``end`` of English ``text`` leaves a kept word without a
    word it needs after the cut (its object, the verb it governs, its particle) and with no other such word
    kept ("Explain the reasons | and what they mean" keeps one object). ``False`` without a parser.

    Example:
        >>> text = "Write a React component that shows a navigation bar"
        >>> cut_parts_needed(text, text.index(" a navigation")), cut_parts_needed(text, text.index(" that"))
        (True, False)
    """
    if _english_parser() is None:  # pragma: no cover
        return False
    arcs = _arcs(text)
    served = {head for at, dep, head in arcs if start <= at < end and dep in _NEEDED}  # kept words' needs met
    return any(at >= end and dep in _NEEDED and start <= head < end and head not in served for at, dep, head in arcs)


def _spans(text: str) -> list[tuple[int, int]]:
    """Where each whitespace-separated word of ``text`` starts and ends."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def name_from_answer(answer: str | None, max_words: int = MAX_NAME_WORDS) -> str | None:
    """A facet answer turned into a short imperative name, or ``None`` when nothing usable is left.

    The pre-filled opening is already gone (the answer continues "The user's overall request for the
    assistant is to"), so what remains starts with a verb. The first sentence is kept, possessives are made
    general ("their script" -> "the script"), and an over-long answer is cut before a trailing qualifier.

    Example:
        >>> name_from_answer("fix a KeyError in their Python script when reading a CSV file from an API.")
        'Fix a KeyError in the Python script'
    """
    return _answer_name(answer, max_words)[0]


def _answer_name(answer: str | None, max_words: int = MAX_NAME_WORDS) -> tuple[str | None, Cut | None]:
    """:func:`name_from_answer`, and the :data:`Cut` it made when it cut the answer short."""
    if not answer:
        return None, None
    text = re.sub(r"[\u200b-\u200f\u2060\ufeff]", "", answer)  # zero-width characters
    text = re.split(r"(?<=[.!?;])\s", text.strip(), maxsplit=1)[0].strip().rstrip(".!?;:, ")
    # a second clause after a comma is the user going on ("verify the identity, but how do I do that")
    text = re.split(r",\s+(?=(?:but|and|or|so|how|what|which|because|since|as|if)\b)", text, maxsplit=1)[0]
    raw = text.split()
    # "their script" -> "the script" (a name speaks of every member); "their own account" stays as it is
    words = ["the" if w.lower() in _POSSESSIVES and raw[i + 1:i + 2] != ["own"] else w for i, w in enumerate(raw)]
    if len(words) < 2:
        return None, None
    cut_at = None
    if len(words) > max_words:
        cut = max((i for i in range(3, max_words + 1) if words[i].lower().strip(",") in _QUALIFIERS
                   or words[i - 1].endswith(",")), default=None)
        if cut is None:  # no place to cut that leaves a phrase ("... less cash than what"): not a name
            return None, None
        words = words[:cut]
        # a list left dangling ("with museums, food") is cut at its first comma
        comma = next((i for i in range(3, len(words)) if words[i - 1].endswith(",")), None)
        words = words[:comma] if comma else words
        cut_at = (text, 0, _spans(text)[len(words) - 1][1])
    name = " ".join(words).rstrip(",;:")
    return name[0].upper() + name[1:], cut_at


def words(text: str) -> list[str]:
    """The text's words, lower-cased (what the word rule counts)."""
    return [w.lower() for w in _WORD.findall(text or "")]


def _as_request(sentence: str) -> str:
    """The sentence without a greeting or a question's opening ("How do I ...", "Can you ...")."""
    text = sentence.strip().rstrip("?.!;:,").strip()
    changed = True
    while changed and text:
        changed = False
        for pattern in _OPENINGS:
            cut = pattern.sub("", text, count=1)
            if cut != text:
                text, changed = cut.strip(), True
    return text


def name_variants(sentence: str, max_words: int = MAX_NAME_WORDS) -> list[str]:
    """A sentence as a name, as an imperative, and each cut before a trailing qualifier: the more general
    forms, of 2 to ``max_words`` words, that the contrastive choice may prefer.

    Example:
        >>> name_variants("How do I verify my identity?")
        ['How do I verify my identity', 'Verify my identity']
        >>> name_variants("What questions should I expect in an interview for a teacher?")[0]
        'What questions should I expect in an interview'
    """
    return list(_variants(sentence, max_words))


def _variants(sentence: str, max_words: int = MAX_NAME_WORDS) -> dict[str, Cut | None]:
    """:func:`name_variants`, each with the :data:`Cut` that made it (``None`` for a whole form)."""
    plain = _GREETING.sub("", sentence.strip()).rstrip("?.!;:,").strip()
    forms = [plain, _as_request(plain)]
    out: dict[str, Cut | None] = {}
    for form in forms:
        toks = form.split()
        cuts = [len(toks)] + [j for j in range(len(toks) - 1, 2, -1)
                              if toks[j].lower().strip(",;:") in _CUT_BEFORE or toks[j - 1].endswith(",")]
        spans = _spans(form)
        for j in cuts:
            if 2 <= j <= max_words:
                name = " ".join(toks[:j]).rstrip(",;:")
                out.setdefault(name[:1].upper() + name[1:], None if j == len(toks) else (form, 0, spans[j - 1][1]))
    return {n: cut for n, cut in out.items() if _is_prose(n)}


def _is_prose(text: str, content_words: int = 1) -> bool:
    """Two or more words of letters, ``content_words`` of them not function words (a part of a sentence needs
    two: "A payment" says too little), and mostly letters (a line of code or a list of numbers is no name)."""
    letters = sum(ch.isalpha() or ch.isspace() for ch in text)
    found = re.findall(r"[^\W\d_]{2,}", text)
    content = [w for w in found if w.lower() not in _DANGLING]
    return len(found) >= 2 and len(content) >= content_words and letters >= 0.8 * len(text)


def corpus_languages(texts: Sequence[str | None]) -> list[str]:
    """The languages of a sample of ``texts`` (500), most common first; those under 1% of it left out."""
    sample = [t for t in texts if t][:500]
    try:
        from .languages import detect_languages
    except ImportError:  # pragma: no cover - py3langid is a dependency
        return []
    langs = detect_languages(sample) if sample else []
    counts = Counter(langs).most_common()
    return [lang for lang, n in counts if n >= 0.01 * len(langs)]


def in_language(pool: dict[str, Any], languages: Sequence[str]) -> dict[str, Any]:
    """The candidates in the corpus's main language (``languages[0]``; one language for every name, as the paper
    asks facets to answer in English), or all of them when none is."""
    if not languages or not pool:
        return pool
    from .languages import detect_languages

    names = list(pool)
    found = detect_languages(names, default=languages[0], among=languages)
    kept = {n: pool[n] for n, lang in zip(names, found, strict=True) if lang == languages[0]}
    return kept or pool


def word_users(idx: np.ndarray, texts: Sequence[Sequence[str | None]], users: Sequence[Any] | None) -> dict[str, int]:
    """For each word in rows ``idx`` of any of ``texts`` (requests, summaries), how many distinct users wrote it
    (rows count as users when ``users`` is None)."""
    seen: dict[str, set[Any]] = {}
    for i in idx:
        who = users[i] if users is not None else i
        for source in texts:
            for w in set(words(source[i] or "")):
                seen.setdefault(w, set()).add(who)
    return {w: len(u) for w, u in seen.items()}


@dataclass(frozen=True)
class Candidate:
    """Where a candidate name came from (``"summary"`` or ``"users' words"``), whether it is a whole form
    of a sentence or the part of one whose words passed the word rule (chosen only when clearly better), and
    the :data:`Cut` that made it from a longer text (``None`` when nothing was cut from its end)."""

    source: str
    whole: bool = True
    cut: Cut | None = None


def member_candidates(idx: np.ndarray, X: np.ndarray, centre: np.ndarray, answers: Sequence[str | None],
                      requests: Sequence[str | None] | None = None, users: Sequence[Any] | None = None, *,
                      min_word_users: int = MIN_WORD_USERS, limit: int = CANDIDATES_PER_CLUSTER,
                      ) -> dict[str, Candidate]:
    """Candidate names of the cluster of rows ``idx``, the most central members' first: the members' summaries
    (shortened, and in more general forms), and their own requests' sentences, of which every word was written by
    at least ``min_word_users`` distinct users of the cluster (else the longest run of such words)."""
    from .embed_input import sentences

    support = word_users(idx, [requests], users) if requests is not None else {}
    order = idx[np.argsort(-(X[idx] @ centre), kind="stable")]
    out: dict[str, Candidate] = {}
    taken: set[str] = set()
    last_resort: dict[str, tuple[str, Candidate]] = {}
    for i in order:
        found: list[tuple[str, str, Cut | None]] = []
        summary, summary_cut = _answer_name(answers[i])
        if summary:  # a form cut again is judged by its own cut, a whole one by the summary's
            found += [(v, "summary", cut or summary_cut) for v, cut in _variants(summary).items()]
        if requests is not None and requests[i]:
            found += [(v, "users' words", cut) for s in sentences(requests[i]) if len(s.split()) <= 2 * MAX_NAME_WORDS
                      for v, cut in _variants(s).items()]
        for form, source, cut in found:
            # a summary is model-written under privacy instructions and checked for personal details (the paper's
            # privacy layer); the rule guards the users' own words, which have none
            name, part_cut = (form, None) if source == "summary" else _shared_run(form, support, min_word_users)
            if name and source != "summary" and not _is_prose(name, content_words=USERS_CONTENT_WORDS):
                name = None  # "How do I fix it": the users' words say too little
            if name and name.lower() not in taken:
                taken.add(name.lower())
                out[name] = Candidate(source, whole=name == form, cut=part_cut or cut)
            elif not out and name is None:  # a last resort: a part with one content word ("My refund")
                weak, weak_cut = _shared_run(form, support, min_word_users, content_words=1)
                if weak and weak.lower() not in last_resort:
                    last_resort[weak.lower()] = (weak, Candidate(source, whole=False, cut=weak_cut or cut))
        if len(out) >= limit:
            break
    return out or dict(last_resort.values())


def _shared_run(name: str, support: dict[str, int], min_word_users: int,
                content_words: int = 2) -> tuple[str | None, Cut | None]:
    """The name when every word passes the word rule; else its longest run of words that pass, without function
    words at either end, when two or more words are left ("Why was the | exchange rate | so bad"); else None.
    Also the :data:`Cut` of ``name`` it made when the run ends before ``name`` does.

    Example:
        >>> _shared_run("My new card has not arrived yet", {"my": 5, "new": 5, "card": 5, "has": 5,
        ...             "not": 5, "arrived": 5}, 3)[0]
        'My new card has not arrived'
    """
    toks = name.split()
    ok = [all(support.get(w, 0) >= min_word_users for w in words(t)) for t in toks]
    if all(ok):
        return name, None
    best: tuple[int, int] = (0, 0)
    start = 0
    for end in range(len(toks) + 1):
        if end == len(toks) or not ok[end]:
            a, b = start, end
            while a < b and set(words(toks[a])) <= _NO_START:
                a += 1
            while b > a and set(words(toks[b - 1])) <= _DANGLING:
                b -= 1
            if b - a > best[1] - best[0]:
                best = (a, b)
            start = end + 1
    a, b = best
    text = " ".join(t.rstrip(",;:") for t in toks[a:b])
    if not _is_prose(text, content_words):
        return None, None
    spans = _spans(name)
    return text[:1].upper() + text[1:], (name, spans[a][0], spans[b - 1][1]) if b < len(toks) else None


def centroids(X: np.ndarray, labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Unit-length centre of each cluster id's rows."""
    return l2_normalise(np.stack([X[labels == c].mean(axis=0) for c in ids]))


def centred_centroids(X: np.ndarray, labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Each cluster's centre of unit rows, less the centre of all rows, at unit length: where the cluster lies
    *away from the middle*. A mixed cluster's plain centre lies near the middle of the space, so two mixed
    clusters look alike there; measured from the middle they do not. Ward on these centres scored higher
    ARI at the top level on every development corpus (BENCHMARKS.md, "Cluster names and trees")."""
    U = unit_rows(X)
    middle = U.mean(axis=0)
    return l2_normalise(np.stack([U[labels == c].mean(axis=0) - middle for c in ids]))


def contrast(V: np.ndarray, C: np.ndarray, own: int, weight: float = CONTRAST_WEIGHT) -> np.ndarray:
    """For candidate embeddings ``V``: similarity to centre ``own`` minus ``weight`` times the nearest other."""
    sims = V @ C.T
    if C.shape[0] == 1:
        return sims[:, own]
    others = np.delete(sims, own, axis=1)
    return sims[:, own] - weight * others.max(axis=1)


def rank_candidates(candidates: dict[int, list[str]], C: np.ndarray, order: Sequence[int], embedder: Any,
                    store: Any, weight: float = CONTRAST_WEIGHT) -> dict[int, list[dict[str, Any]]]:
    """For each cluster (its position in ``order`` is its row of ``C``), its candidates best first, each with
    its contrast ``score`` and ``margin`` (own-centre similarity minus the nearest other centre's)."""
    from .embeddings import embed

    flat = sorted({c for names in candidates.values() for c in names})
    if not flat:
        return {}
    V = {t: v for t, v in zip(flat, embed(flat, embedder, cache=store), strict=True)}
    out = {}
    for row, c in enumerate(order):
        names = candidates.get(c) or []
        if not names:
            continue
        M = np.stack([V[n] for n in names])
        scores, margins = contrast(M, C, row, weight), contrast(M, C, row, 1.0)
        out[c] = [{"name": names[i], "score": float(scores[i]), "margin": float(margins[i])}
                  for i in np.argsort(-scores, kind="stable")]
    return out


def choose_names(candidates: dict[int, Any], C: np.ndarray, order: Sequence[int], embedder: Any,
                 store: Any, weight: float = CONTRAST_WEIGHT, clean: Any = None,
                 whole_bonus: float | None = None, check_cuts: bool = False) -> dict[int, dict[str, Any]]:
    """For each cluster, the candidate with the best contrast that ``clean`` accepts (no personal details) and
    that is distinctive (nearer its own centre than any other); where none is, the best one, marked
    ``distinctive: False``. Also its source. ``candidates`` maps each cluster to a list of names or to
    ``{name: Candidate}``; a whole name gets ``whole_bonus`` over a part.

    A distinctive candidate goes before a better-scored one that is not: the contrast weighs the nearest other
    centre by ``weight`` only, so a name can score best and still lie nearer another cluster. Replacing such a
    name where the pool allows it (rather than only marking it) left naming accuracy unchanged on the
    development sets and raised self-retrieval (BENCHMARKS.md, "A distinctive candidate first").

    ``check_cuts`` (an English corpus): among those, a candidate whose :class:`Candidate` ``cut`` parts a word
    from one it needs (:func:`cut_parts_needed`: "Write a React component that shows") goes after the rest.
    Each check runs only when a candidate is reached in that order, so a cluster costs a parse or two."""
    whole_bonus = WHOLE_BONUS if whole_bonus is None else whole_bonus
    ranked = rank_candidates({c: list(v) for c, v in candidates.items()}, C, order, embedder, store, weight)
    out = {}
    for c, ranks in ranked.items():
        info = candidates[c] if isinstance(candidates[c], dict) else {}
        for r in ranks:
            r["score"] += whole_bonus if getattr(info.get(r["name"]), "whole", True) else 0.0
        ranks.sort(key=lambda r: -r["score"])
        best = _first_fit(ranks, info, clean, check_cuts)
        if best is not None:
            source = getattr(info.get(best["name"]), "source", "summary")
            out[c] = {**best, "distinctive": best["margin"] > 0, "source": source}
    return out


def _first_fit(ranks: list[dict[str, Any]], info: dict[str, Any], clean: Any, check_cuts: bool) -> dict | None:
    """The best-scored candidate that ``clean`` accepts, preferring, in this order, one that is distinctive and
    whole where cut (with ``check_cuts``), distinctive, whole where cut, any. ``clean`` and the parse run lazily,
    once a candidate."""
    @functools.cache
    def ok(name: str) -> bool:
        return clean is None or bool(clean(name))

    @functools.cache
    def whole(name: str) -> bool:
        cut = getattr(info.get(name), "cut", None)
        if cut is None:
            return True
        text, start, end = cut
        return not cut_parts_needed(text, end, start)

    for distinct, needs_whole in ((True, True), (True, False), (False, True), (False, False)):
        if needs_whole and not check_cuts:
            continue
        best = next((r for r in ranks if (r["margin"] > 0 or not distinct) and ok(r["name"])
                     and (not needs_whole or whole(r["name"]))), None)
        if best is not None:
            return best
    return None


def safe_text(detector: Any = None):
    """What may be shown as a name or in a description: no redaction placeholder left by the facet step's
    check ("<PERSON>"), and, with a detector, nothing it finds (summaries are checked when written, but a
    facet run without the check, or an older cache, may hold a name)."""
    def clean(text: str) -> bool:
        return not re.search(r"<[A-Z_]+>", text) and (detector is None or not detector.has_pii(text))
    return clean


def candidate_names(answers: Sequence[str | None], idx: np.ndarray, X: np.ndarray, centre: np.ndarray,
                    limit: int = 40) -> list[str]:
    """Distinct names from the answers of rows ``idx``, the rows nearest the centre first, at most ``limit``."""
    order = idx[np.argsort(-(X[idx] @ centre))]
    seen: dict[str, None] = {}
    for i in order:
        name = name_from_answer(answers[i])
        if name and name.lower() not in {s.lower() for s in seen}:
            seen[name] = None
            if len(seen) >= limit:
                break
    return list(seen)


def describe(answers: Sequence[str | None], idx: np.ndarray, X: np.ndarray, centre: np.ndarray, n: int = 3,
             clean: Any = None, typical: Sequence[str] = (), lead: str | None = None) -> str:
    """A past-tense description from the most central answers that ``clean`` accepts, and the ``typical``
    requests (candidates that passed the word rule) after it. ``lead``: the name, when it is a member's summary,
    comes first, so that the description never opens on another request than the name's (a mixed cluster's
    name and its most central summaries can differ; the reader then sees both)."""
    from .naming import central_texts

    central = [a.strip().rstrip(".") for a in central_texts(idx, X, answers, 4 * n)
               if clean is None or clean(a)]
    if lead:
        lead = lead.strip().rstrip(".")
        lead = lead if lead[:2].isupper() else lead[:1].lower() + lead[1:]
        central = [lead] + [a for a in central if _plain(a) != _plain(lead)]
    central = central[:n]
    parts = []
    if central:
        rest = "; ".join(central[1:])
        parts.append(f"Users asked the assistant to {central[0]}." + (f" Related requests asked it to {rest}."
                                                                       if rest else ""))
    if typical:
        parts.append("Typical requests: " + "; ".join(f"\u201c{t}\u201d" for t in typical[:n]) + ".")
    return " ".join(parts) or "Conversations whose requests could not be summarised."


MIXED_SUPPORT = 0.5  # a name nearest for fewer than half of its cluster's conversations speaks for a minority
SUPPORT_ROWS = 100_000  # rows read to measure support (evenly spaced): a bounded cost on a million


def name_support(X: np.ndarray, labels: np.ndarray, names: dict[int, str], embedder: Any = None,
                 store: Any = None) -> dict[int, float]:
    """For each named cluster, the share of its conversations whose nearest name, of all the clusters' names
    (embedded in the run's space ``X``), is its own. A name that only one part of a mixed cluster is nearest to
    scores low: on the held-out sets, names below :data:`MIXED_SUPPORT` matched their cluster's true label far
    less often than the others (BENCHMARKS.md, "Cluster names and trees"). At most :data:`SUPPORT_ROWS` rows,
    evenly spaced, are read."""
    from .embeddings import embed

    ids = sorted(names)
    if not ids:
        return {}
    V = l2_normalise(np.asarray(embed([names[c] for c in ids], embedder, cache=store), dtype=np.float32))
    rows = np.arange(0, len(labels), max(1, len(labels) // SUPPORT_ROWS))
    position = {c: j for j, c in enumerate(ids)}
    mine = np.array([position.get(int(c), -1) for c in np.asarray(labels)[rows]])
    nearest = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), 16_384):  # rows x names similarities a chunk at a time
        U = l2_normalise(np.asarray(X[rows[start:start + 16_384]], dtype=np.float32))
        nearest[start:start + 16_384] = np.argmax(U @ V.T, axis=1)
    named = mine >= 0
    total = np.bincount(mine[named], minlength=len(ids))
    right = np.bincount(mine[named & (nearest == mine)], minlength=len(ids))
    return {c: float(right[j] / total[j]) for j, c in enumerate(ids) if total[j]}


def _plain(text: str) -> str:
    return " ".join(words(text.lower()))


def _method(pick: dict[str, Any], support: float | None = None) -> str:
    marks = [pick["source"]] + ([] if pick["distinctive"] else ["not distinctive"]) + (
        ["mixed"] if support is not None and support < MIXED_SUPPORT else [])
    return f"extractive ({', '.join(marks)})"


def extractive_labels(answers: Sequence[str | None], X: np.ndarray, labels: np.ndarray, *, embedder: Any = None,
                      cache: Any = None, fallback: dict[int, Any] | None = None,
                      weight: float = CONTRAST_WEIGHT, detector: Any = None,
                      requests: Sequence[str | None] | None = None, users: Sequence[Any] | None = None,
                      min_word_users: int = MIN_WORD_USERS) -> dict[int, Any]:
    """Name every cluster by its most distinctive candidate (see the module's docstring).

    Args:
        answers: each conversation's request summary (``None`` where it failed).
        X, labels: the embeddings the clusters were made from, and each conversation's cluster.
        embedder: the run's embedder (candidates are scored in the space the clusters live in).
        requests: each conversation's own request text (repeated boilerplate left out), a source of candidates
            alongside the summaries; ``None`` for summaries alone.
        users: each conversation's user id, for the word rule (rows count as users when ``None``).
        min_word_users: every word of a candidate must have been written by this many distinct users.
        detector: a :class:`~clio_lab.pii.PIIDetector`: no candidate or description with personal details.

    Returns :class:`~clio_lab.naming.ClusterLabel` per cluster id. A cluster with no candidate that passes
    the word rule is named from its summaries alone; one with no usable summary keeps its keyword label from
    ``fallback`` (marked ``"keywords (no summaries)"``). A name nearer another cluster's centre than its own is
    marked ``not distinctive``; one that fewer than half of its cluster's conversations lie nearest to (of all
    the names) is marked ``mixed`` (:func:`name_support`): the cluster holds more than its name says.

    Example:
        >>> names = extractive_labels(summaries, X, labels, requests=texts, users=user_ids)  # doctest: +SKIP
        >>> names[0].name, names[0].method  # doctest: +SKIP
        ('Verify my identity', "extractive (users' words)")
    """
    from dataclasses import replace

    from .clustering import NOISE
    from .naming import keyword_labels

    X = np.asarray(X, dtype=np.float32)
    labels = np.asarray(labels)
    fallback = fallback if fallback is not None else keyword_labels(answers, X, labels)
    ids = [c for c in sorted(set(labels.tolist())) if c != NOISE]
    if not ids:
        return dict(fallback)
    C = centroids(X, labels, ids)
    members = {c: np.flatnonzero(labels == c) for c in ids}
    candidates = {}
    languages = corpus_languages(list(requests) if requests is not None else list(answers))
    english = languages[:1] == ["en"]  # cuts are checked on the English parse
    for row, c in enumerate(ids):
        pool = member_candidates(members[c], X, C[row], answers, requests, users, min_word_users=min_word_users)
        # no candidate passes the word rule: the summaries alone (model-written under privacy instructions)
        pool = pool or dict.fromkeys(candidate_names(answers, members[c], X, C[row]), Candidate("summary"))
        candidates[c] = in_language(pool, languages)
    clean = safe_text(detector)
    chosen = choose_names(candidates, C, ids, embedder, cache, weight, clean, check_cuts=english)
    support = name_support(X, labels, {c: pick["name"] for c, pick in chosen.items()}, embedder, cache)
    out = dict(fallback)
    for row, c in enumerate(ids):
        pick = chosen.get(c)
        if pick is None:  # no member's request could be summarised: keywords, or say so
            lab = fallback[c]
            name = lab.name if lab.keywords else "Requests that could not be summarised"
            out[c] = replace(lab, name=name, method="keywords (no summaries)")
            continue
        typical = [n for n in candidates[c] if n != pick["name"] and clean(n)][:3]
        out[c] = replace(fallback[c], name=pick["name"], method=_method(pick, support.get(c)),
                         description=describe(answers, members[c], X, C[row], clean=clean, typical=typical,
                                              lead=pick["name"] if pick["source"] == "summary" else None))
    return out


def ward_cuts(X: np.ndarray, labels: np.ndarray, ids: Sequence[int]):
    """``cut(n)``: each cluster's group (of ``ids``, labels of the rows of ``X``) when Ward's dendrogram of the
    cluster centres (measured from the middle of the space: :func:`centred_centroids`) is cut into ``n`` groups.

    One dendrogram cut at every level's size, rather than grouping each level's recomputed centres anew: on the
    synthetic development corpora the top level (9 groups of 89 clusters) scored NMI 65 against 61 level by
    level, and every level nests in the next by construction."""
    from scipy.cluster.hierarchy import fcluster, linkage

    ids = list(ids)
    Z = linkage(centred_centroids(X, labels, ids), method="ward") if len(ids) > 1 else None

    def cut(n: int) -> dict[int, int]:
        if Z is None or n >= len(ids):
            return {c: i for i, c in enumerate(ids)}
        return dict(zip(ids, fcluster(Z, max(n, 1), criterion="maxclust").tolist(), strict=True))

    return cut


# The default top level of an extractive tree (:func:`top_size`). A merge of Ward's dendrogram is "unrelated" when
# it lies above the distance of two centres whose cosine is GATE_Z standard deviations above the mean of every pair
# of base centres. On the development split's five 200-conversation corpora (17 base clusters, 15 known
# categories) every grouping of the base lost agreement with the categories (top NMI / ARI: no grouping 55.9 /
# 25.4, 6 Ward groups 36.8 / 11.2): their clusters are mixed, and parents joined unrelated ones. Gated at z = 2
# with at most TOP_MAX nodes: 52.8 / 21.4 there, and 77.4 / 53.0 against 73.8 / 50.1 on 2,000 conversations
# (BENCHMARKS.md, "Cluster names and trees").
GATE_Z = 2.0
TOP_MAX = 20


def top_size(X: np.ndarray, labels: np.ndarray, ids: Sequence[int], least: int) -> int:
    """How many nodes the top level should hold: :func:`gated_size` of the base clusters' centres measured from
    the middle of the space, or ``least`` (the paper's geometric default) when that already reaches
    :data:`TOP_MAX` (a large run keeps its default, and no dendrogram is built for it here).

    Example:
        >>> top_size(X, labels, ids, least=6)  # doctest: +SKIP
        14
    """
    ids = list(ids)
    if least >= TOP_MAX or len(ids) <= max(least, 2):
        return least
    return gated_size(centred_centroids(X, np.asarray(labels), ids), least)


def gated_size(C: np.ndarray, least: int) -> int:
    """Groups of Ward's dendrogram of the unit centres ``C`` cut where it stops joining related clusters (see
    :data:`GATE_Z`), at least ``least`` and at most :data:`TOP_MAX` (or ``least`` when larger), fewer than
    ``len(C)``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    sims = (C @ C.T)[~np.eye(len(C), dtype=bool)]
    gate = min(float(sims.mean() + GATE_Z * sims.std()), 1.0)
    related = np.sqrt(max(2.0 - 2.0 * gate, 0.0))  # the Ward distance of two unit centres at that cosine
    n = len(set(fcluster(linkage(C, method="ward"), related, criterion="distance").tolist()))
    return int(min(max(n, least), max(TOP_MAX, least), len(C) - 1))


def _ward_cuts(tree: Any, X: np.ndarray):
    """:func:`ward_cuts` of the base clusters of ``tree``."""
    from .clustering import NOISE

    return ward_cuts(X, tree.labels_at(0), [n.index for n in tree.level(0) if n.index != NOISE])


def _first_base(tree: Any, node: Any) -> int:
    """A base cluster under ``node`` (every one is in the same group of a nested cut)."""
    while node.level > 0:
        node = tree.nodes[node.children[0]]
    return node.index


def group_clusters(V: np.ndarray, sizes: np.ndarray, target: int, linkage: str = "ward") -> np.ndarray:
    """Parent group of each cluster centre in ``V``: agglomerative clustering of the centres into ``target``
    groups (Ward on unit vectors, or average linkage on cosine distance)."""
    from sklearn.cluster import AgglomerativeClustering

    if target <= 1 or len(V) <= target:
        return np.zeros(len(V), dtype=int) if target <= 1 else np.arange(len(V))
    if linkage == "ward":
        model = AgglomerativeClustering(n_clusters=target, linkage="ward")
    else:
        model = AgglomerativeClustering(n_clusters=target, metric="cosine", linkage=linkage)
    return model.fit_predict(V)


def group_by_members(X: np.ndarray, labels: np.ndarray, ids: Sequence[int], target: int) -> np.ndarray:
    """Parent group of each cluster: k-means on the conversations themselves into ``target`` groups, each
    cluster going where most of its conversations fall (centres of impure clusters all lie near the middle of
    the space, so grouping the centres puts most of them into one parent)."""
    from sklearn.cluster import KMeans

    idx = np.flatnonzero(np.isin(labels, ids))
    if target <= 1 or len(ids) <= target:
        return np.zeros(len(ids), dtype=int) if target <= 1 else np.arange(len(ids))
    parent = KMeans(n_clusters=target, n_init=3, random_state=0).fit_predict(X[idx])
    out = np.array([np.bincount(parent[labels[idx] == c], minlength=target).argmax() for c in ids])
    _, dense = np.unique(out, return_inverse=True)  # a group no cluster chose leaves no gap
    return dense


def build_levels(tree: Any, sizes: Sequence[int], answers: Sequence[str | None], X: np.ndarray, *,
                 embedder: Any = None, cache: Any = None, linkage: str = "ward",
                 weight: float = CONTRAST_WEIGHT, detector: Any = None,
                 requests: Sequence[str | None] | None = None, users: Sequence[Any] | None = None,
                 min_word_users: int = MIN_WORD_USERS) -> None:
    """Add parent levels to ``tree`` (a :class:`~clio_lab.hierarchy.Hierarchy` holding only its base level):
    each level groups the centres of the level below by agglomerative clustering (Ward), and each parent is
    named like a base cluster (:func:`member_candidates`, the word rule included) by the candidate that best
    tells it apart from the other parents of its level; a child's own name only when no other is left."""
    from .clustering import NOISE
    from .tree import attach_parents, carry_unclustered

    X = unit_rows(X)
    base_cut = _ward_cuts(tree, X)
    languages = corpus_languages(list(requests) if requests is not None else list(answers))
    english = languages[:1] == ["en"]  # cuts are checked on the English parse
    for lvl, target in enumerate(sizes, 1):
        children = [n for n in tree.level(lvl - 1) if n.index != NOISE]
        if not children:
            carry_unclustered(tree.nodes, lvl)
            continue
        conv = tree.labels_at(lvl - 1)
        if linkage == "ward":  # every level a cut of one dendrogram of the base clusters: nested by construction
            cut = base_cut(target)
            groups_of = np.array([cut[_first_base(tree, c)] for c in children])
        elif linkage == "members":
            groups_of = group_by_members(X, conv, [c.index for c in children], target)
        else:
            V = centroids(X, conv, [c.index for c in children])
            groups_of = group_clusters(V, np.array([c.size for c in children]), target, linkage)
        groups = [[c for c, g in zip(children, groups_of, strict=True) if g == k] for k in sorted(set(groups_of))]
        parent_of = {c.index: k for k, grp in enumerate(groups) for c in grp}
        conv_parent = np.array([parent_of.get(int(c), NOISE) for c in conv])
        ids = list(range(len(groups)))
        C = centroids(X, conv_parent, ids)
        taken = {c.name.lower() for c in children}
        candidates = {}
        for g in ids:
            if len(groups[g]) == 1:  # named after its one cluster below; its centre still counts in the contrast
                continue
            idx = np.flatnonzero(conv_parent == g)
            pool = member_candidates(idx, X, C[g], answers, requests, users, min_word_users=min_word_users) or \
                dict.fromkeys(candidate_names(answers, idx, X, C[g]), Candidate("summary"))
            candidates[g] = in_language({n: src for n, src in pool.items() if n.lower() not in taken} or pool,
                                        languages)
        clean = safe_text(detector)
        chosen = choose_names(candidates, C, ids, embedder, cache, weight, clean, check_cuts=english)
        named = []
        for g in ids:
            pick = chosen.get(g)
            kids = sorted(groups[g], key=lambda n: -n.size)
            if len(kids) == 1:  # a cluster related to no other climbs as it is: its own name, not a second one
                named.append({"name": kids[0].name, "description": kids[0].description,
                              "method": "extractive (its one cluster's name)"})
                continue
            if pick is None:  # no member answer at all: the largest child's name, said so
                named.append({"name": kids[0].name, "description": "Clusters such as: "
                              + "; ".join(k.name for k in kids[:3]) + ".", "method": "extractive (a child's name)"})
                continue
            idx = np.flatnonzero(conv_parent == g)
            listed = "; ".join(k.name for k in kids[:4]) + (f"; and {len(kids) - 4} more" if len(kids) > 4 else "")
            lead = pick["name"] if pick["source"] == "summary" else None
            named.append({"name": pick["name"],
                          "description": f"{describe(answers, idx, X, C[g], n=2, clean=clean, lead=lead)} Its clusters: {listed}.",
                          "method": _method(pick)})
        attach_parents(tree.nodes, lvl, groups, named)
        carry_unclustered(tree.nodes, lvl)
