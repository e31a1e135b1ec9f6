"""What each conversation contributes to the embedding that clusters it (step 2's input).

``embed_on`` chooses the text: the request summary (the paper's way, the default with hosted models), the user's
own text (the default with the local model, whose summaries cost 15 NMI points on Banking77), or both.

Sentences that recur across a large share of the corpus are left out of the user's text before it is
embedded: greetings, sign-offs, "Please continue", a tone ("Nothing I try works."), a signature pasted into
every message. They say nothing about what one conversation asks, yet with an English-only embedder they were
the strongest signal in non-English conversations: on the synthetic development corpora, leaving them out
raised base-cluster recovery of the known sub-topics from 84% to 95%, and from 56% to 91% in German
(BENCHMARKS.md, "What gets embedded"). The model still sees every word; only the embedded text changes.
A conversation made only of such sentences keeps them all.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import Conversation

MAX_SHARE = 0.01  # a sentence in more than 1% of the conversations ...
MIN_COUNT = 20  # ... and in more than 20 of them is left out
SCAN_CHARS = 8000  # sentences are looked for in the first characters of the user's text
EMBED_CHARS = 2000  # what is embedded is cut here (the embedders read about 256 word pieces anyway)
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def sentences(text: str) -> list[str]:
    """The text's sentences and lines, stripped, empty ones left out.

    Example:
        >>> sentences("Hi! How do I fix this?\\nThanks.")
        ['Hi!', 'How do I fix this?', 'Thanks.']
    """
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def sentence_key(sentence: str) -> str:
    """A short hash of the sentence's words, case and punctuation ignored (what is counted and saved: a
    run never stores the sentences themselves)."""
    words = _NON_WORD.sub(" ", sentence.lower()).strip()
    return hashlib.blake2b(words.encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class RepeatedSentences:
    """Finds the sentences that recur across a corpus and removes them from texts.

    Args:
        max_share, min_count: a sentence found in more than ``max_share`` of the texts and more than
            ``min_count`` of them is repeated. Both are needed: a small corpus repeats its topical sentences
            too (the bundled corpus has "Should I see a doctor?" six times in 200).

    Example:
        >>> rep = RepeatedSentences(min_count=1).fit(["Hi. Fix my code.", "Hi. Bake bread.", "Hi. Plan a trip."])
        >>> rep.transform(["Hi. Fix my code."])
        ['Fix my code.']
    """

    max_share: float = MAX_SHARE
    min_count: int = MIN_COUNT
    keys_: frozenset[str] = field(default_factory=frozenset)

    def get_params(self) -> dict[str, Any]:
        return {"max_share": self.max_share, "min_count": self.min_count}

    def fit(self, texts: Sequence[str]) -> RepeatedSentences:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update({sentence_key(s) for s in sentences(text[:SCAN_CHARS])})
        floor = max(self.min_count, self.max_share * len(texts))
        self.keys_ = frozenset(k for k, n in counts.items() if n > floor)
        return self

    def remove(self, text: str) -> tuple[str, int]:
        """The text without its repeated sentences, and how many were left out (none when all of them are)."""
        parts = sentences(text[:SCAN_CHARS])
        kept = [s for s in parts if sentence_key(s) not in self.keys_]
        if not kept or len(kept) == len(parts):
            return text[:EMBED_CHARS], 0
        return "\n".join(kept)[:EMBED_CHARS], len(parts) - len(kept)

    def transform(self, texts: Sequence[str]) -> list[str]:
        return [self.remove(t)[0] for t in texts]


def full_user_text(conv: Conversation) -> str:
    """The user's turns (the first message when there are none), up to :data:`SCAN_CHARS` characters."""
    text = "\n".join(m.content for m in conv.messages if m.role == "user") or conv.messages[0].content
    return text[:SCAN_CHARS]


def first_request(conv: Conversation) -> str:
    """The user's first message (the first message when no user spoke), up to :data:`SCAN_CHARS` characters:
    where a conversation states its request. Later turns are follow-ups ("Can you make it shorter?")."""
    first = next((m.content for m in conv.messages if m.role == "user"), conv.messages[0].content)
    return first[:SCAN_CHARS]


def user_requests(conversations: Sequence[Conversation], repeated: RepeatedSentences | None = None) -> list[str]:
    """Each conversation's first request (:func:`first_request`) with the corpus's repeated sentences left out,
    up to :data:`EMBED_CHARS`: the users' own words that candidate names are drawn from."""
    raw = (first_request(c) for c in conversations)
    return [repeated.remove(t)[0] if repeated is not None else t[:EMBED_CHARS] for t in raw]


def texts_to_embed(conversations: Sequence[Conversation], summaries: Sequence[str | None], embed_on: str,
                   repeated: RepeatedSentences | None = None) -> tuple[list[str], list[str]]:
    """The text embedded per conversation and where it came from (a failed summary falls back to the
    conversation's user text and says so). With ``repeated`` (fitted), the user's text is embedded without the
    corpus's repeated sentences."""
    texts, sources = [], []
    for conv, summary in zip(conversations, summaries, strict=True):
        own = None
        if embed_on in ("text", "both") or not summary:
            raw = full_user_text(conv)
            own = repeated.remove(raw)[0] if repeated is not None else raw[:EMBED_CHARS]
        if embed_on == "text" or (embed_on in ("summary", "both") and not summary):
            texts.append(own)
            sources.append("text" if embed_on == "text" else "text (summary failed)")
        elif embed_on == "summary":
            texts.append(summary)
            sources.append("summary")
        else:
            texts.append(f"{summary}\n{own}")
            sources.append("both")
    return texts, sources


def fit_repeated(conversations: Sequence[Conversation], embed_on: str, *, max_share: float = MAX_SHARE,
                 min_count: int = MIN_COUNT) -> RepeatedSentences | None:
    """The corpus's repeated sentences, or ``None`` when no user text is embedded (``embed_on="summary"``
    embeds only failed summaries' text, too few to count)."""
    if embed_on not in ("text", "both"):
        return None
    return RepeatedSentences(max_share=max_share, min_count=min_count).fit(
        [full_user_text(c) for c in conversations])


@dataclass
class EmbeddedConversations:
    """A corpus in the run's embedding space (:func:`embed_conversations`)."""

    X: Any  # float32 rows, unit length
    embedder: Any  # the run's embedder: language-centred when a shift applied
    texts: list[str]  # what was embedded
    sources: list[str]  # where each text came from ("text", "summary", "both", "text (summary failed)")
    requests: list[str]  # each user's first message, repeated sentences left out (candidate names)
    repeated: RepeatedSentences | None
    centring: dict[str, Any] | None

    def repeated_config(self) -> dict[str, Any] | None:
        """What a saved run needs to leave the same sentences out of conversations added later (hashes only)."""
        if self.repeated is None:
            return None
        return {**self.repeated.get_params(), "sentences": len(self.repeated.keys_),
                "keys": sorted(self.repeated.keys_)}


def embed_conversations(conversations: Sequence[Conversation], summaries: Sequence[str | None], embedder: Any, *,
                        embed_on: str = "text", drop_repeated: bool = True, centre_languages: bool = True,
                        cache: Any = "default", progress: bool = False, engine: Any = None) -> EmbeddedConversations:
    """Step 2 for a corpus: what each conversation contributes (``embed_on``, repeated sentences left out),
    embedded with ``embedder`` (on a Ray cluster with an ``engine``: :mod:`clio_lab.engine`), each language
    with enough conversations shifted onto the corpus's centre.

    Example:
        >>> space = embed_conversations(convs, facets.values["request"], get_embedder())  # doctest: +SKIP
        >>> space.X.shape, space.centring  # doctest: +SKIP
    """
    from .embeddings import embed

    repeated = fit_repeated(conversations, embed_on) if drop_repeated else None
    texts, sources = texts_to_embed(conversations, summaries, embed_on, repeated)
    X = embed(texts, embedder, cache=cache, progress=progress, engine=engine)
    centring = None
    if centre_languages and texts:
        from .languages import centre

        # a language is told best from the user's own words, nothing left out (summaries are in English)
        said = [full_user_text(c) if src != "summary" else t for c, t, src in zip(conversations, texts, sources,
                                                                                    strict=True)]
        embedder, X, centring = centre(embedder, X, said)
    return EmbeddedConversations(X, embedder, texts, sources, user_requests(conversations, repeated), repeated,
                                 centring)
