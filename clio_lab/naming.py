"""Step 4: naming clusters, contrastively (Clio, section 3.3), with a no-LLM labeller beside it.

For each cluster the model sees a sample of summaries from inside it and the summaries *outside* it that lie
nearest its centroid (nearest, not random, so that the name says what sets the cluster apart from its
neighbours), then writes a two-sentence description and a name of at most ten words. Answers are validated
and re-asked; a cluster whose naming still fails gets the keyword label, marked as a fallback.

:func:`keyword_labels` needs no model at all: c-TF-IDF keywords (BERTopic's class-based TF-IDF) plus the
summaries nearest the centre.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .cache import CacheLike, resolve_cache
from .clustering import NOISE
from .llm.client import LLM, CallStats, LLMTask, MissingNameLine, ParseError, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts

STEP_VERSION = 2  # 2: re-ask by failure kind, names shortened, copies never cached
MAX_NAME_WORDS = 10
UNCLUSTERED = "Unclustered conversations"


@dataclass
class ClusterLabel:
    cluster: int
    name: str
    description: str
    method: str  # "llm", "keywords", "keywords (llm failed)", or "fixed" for the unclustered group
    size: int
    keywords: list[str] = field(default_factory=list)


@dataclass
class ClusterLabels:
    """Names per cluster id, the failures behind any fallback, and the model's costs."""

    labels: dict[int, ClusterLabel]
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    pii: dict[str, int] = field(default_factory=dict)  # names re-asked / redacted for personal details

    def __getitem__(self, cluster: int) -> ClusterLabel:
        return self.labels[cluster]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(v) for _, v in sorted(self.labels.items())])


def _members(labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): np.flatnonzero(labels == c) for c in sorted(set(labels.tolist()))}


def central_texts(idx: np.ndarray, X: np.ndarray, texts: Sequence[str | None], n: int) -> list[str]:
    """The ``n`` distinct texts of rows ``idx`` nearest their centre in ``X`` (failed, empty texts skipped)."""
    if len(idx) == 0:
        return []
    centre = X[idx].mean(axis=0)
    order = idx[np.argsort(-(X[idx] @ centre))]
    return _unique([texts[i] for i in order if texts[i]], n)


def _unique(items: Sequence[str], n: int) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.strip(), None)
        if len(seen) >= n:
            break
    return list(seen)


def keyword_labels(texts: Sequence[str | None], X: np.ndarray, labels: np.ndarray, *, n_keywords: int = 5,
                   n_central: int = 2) -> dict[int, ClusterLabel]:
    """Label clusters with no model: c-TF-IDF keywords plus the most central texts.

    Example:
        >>> import numpy as np
        >>> texts = ["fix python error", "python bug fix", "bake bread", "bread recipe"]
        >>> X = np.eye(4, dtype=np.float32); labels = np.array([0, 0, 1, 1])
        >>> keyword_labels(texts, X, labels)[1].keywords[0]
        'bread'
    """
    from sklearn.feature_extraction.text import CountVectorizer

    groups = _members(labels)
    ids = [c for c in groups if c != NOISE]
    docs = [" ".join(t for t in (texts[i] for i in groups[c]) if t) or "empty" for c in ids]
    out: dict[int, ClusterLabel] = {}
    keywords: dict[int, list[str]] = {c: [] for c in ids}
    if ids:
        vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
        try:
            counts = vec.fit_transform(docs).toarray().astype(float)
        except ValueError:  # no usable words at all
            counts = np.zeros((len(ids), 0))
        if counts.shape[1]:
            tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
            idf = np.log(1 + counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1))
            scores = tf * idf
            vocab = vec.get_feature_names_out()
            for row, c in enumerate(ids):
                top = np.argsort(-scores[row])[:n_keywords]
                keywords[c] = [str(vocab[j]) for j in top if scores[row, j] > 0]
    for c, idx in groups.items():
        if c == NOISE:
            out[c] = ClusterLabel(c, UNCLUSTERED, "Conversations that the clustering did not assign to any cluster.",
                                  "fixed", len(idx))
            continue
        central = central_texts(idx, X, texts, n_central)
        kws = keywords[c]
        name = ", ".join(kws[:3]) if kws else f"cluster {c}"
        description = (f"Conversations most distinguished by the words {', '.join(kws)}." if kws
                       else "Conversations with no distinctive words.")
        if central:
            description += " Typical: " + " / ".join(central)
        out[c] = ClusterLabel(c, name, description, "keywords", len(idx), kws)
    return out


def shorten_name(name: str, max_words: int = MAX_NAME_WORDS) -> str:
    """Fit a name into ``max_words`` by dropping trailing qualifiers (``with ...``, ``for ...``, ``, ...``)
    as long as at least three words remain; :class:`ParseError` when that is not possible.

    Example:
        >>> shorten_name("Plan a short budget city trip with museums and good food")
        'Plan a short budget city trip with museums'
    """
    words = name.split()
    if len(words) <= max_words:
        return name
    for cut in range(min(len(words) - 1, max_words), 2, -1):
        nxt = words[cut].lower().strip(",")
        if words[cut - 1].endswith(",") or nxt in ("with", "for", "in", "and", "about", "on", "to", "by", "from"):
            return " ".join(words[:cut]).rstrip(",")
    raise ParseError(f"name must have 1 to {max_words} words: {name!r}")


def parse_name(raw: str) -> dict[str, str]:
    """Parse ``<description>\nName: <name>``; raise :class:`ParseError` for anything else. An over-long name
    is shortened by dropping trailing qualifiers (:func:`shorten_name`)."""
    text = raw.strip()
    if "Name:" not in text:
        raise MissingNameLine(f"no 'Name:' line in {text[:120]!r}")
    description, name = text.split("Name:", 1)
    description = " ".join(description.replace("Summary:", " ").split())
    name = name.strip().split("\n", 1)[0].strip().strip('"').strip().rstrip(".")
    if len(description.split()) < 5 or "Requests in the group" in description:
        raise ParseError(f"description unusable: {description[:120]!r}")
    if not name:
        raise ParseError("empty name")
    name = shorten_name(name)
    if not description.endswith((".", "!", "?")):
        description += "."
    return {"name": name, "description": description}


def described_name_task(item_id: str, render: Callable[..., Any], examples: list[dict[str, Any]], step: str,
                        version: int, check: Callable[[dict[str, str]], None] | None = None,
                        detector: Any = None) -> LLMTask:
    """A call that writes ``Summary: <description>`` then ``Name: <name>`` (cluster names, parent names).

    ``render(shown_examples, prefill)`` builds the prompt. Small base models often stop after a good
    description, or copy a worked example; the re-ask is chosen by the failure: a usable description with no
    name is pre-filled and only the name is asked for; a copy is re-asked without the copied example.
    ``check`` may raise :class:`ParseError` for a value that is well formed but wrong. With a ``detector``
    (:class:`~clio_lab.pii.PIIDetector`), a name or description with personal details is re-asked, then
    kept redacted.
    """
    state: dict[str, Any] = {"desc": None, "copied": []}

    def parse(raw: str) -> dict[str, str]:
        text = f"{state['desc']}\nName: {raw.strip()}" if state["desc"] else raw
        state["raw"] = raw
        value = parse_name(text)
        for ex in examples:
            if value["name"].lower() == ex["name"].lower().rstrip(".") or value["description"] == ex["description"]:
                state["copied"].append(ex)
                raise ParseError(f"copied the worked example named {ex['name']!r}")
        if check is not None:
            check(value)
        from .pii import check_answer

        return check_answer(detector, **value)

    def retry(attempt: int, error: ParseError):
        raw = " ".join(str(state.get("raw") or "").split())
        state["desc"] = None
        if isinstance(error, MissingNameLine) and len(raw.split()) >= 5 and "Requests in the group" not in raw:
            desc = raw if raw.endswith((".", "!", "?")) else raw + "."
            state["desc"] = desc
            return render(examples, f"Summary: {desc}\nName:")
        return render([ex for ex in examples if ex not in state["copied"]] or examples[:1], "Summary:")

    return LLMTask(item_id=item_id, prompt=render(examples, "Summary:"), parse=parse, retry_prompt=retry,
                   max_tokens=120, key_parts={"step": step, "version": version,
                                              **({"pii": detector.get_params()} if detector is not None else {})})


def _naming_task(c: int, lib: PromptLibrary, examples: list[dict[str, Any]], inside: list[str],
                 outside: list[str], fits: Callable[[str], bool], detector: Any = None) -> LLMTask:
    """One cluster's naming call; the name must also fit its own cluster better than the nearby ones."""

    def render(shown: list[dict[str, Any]], prefill: str):
        return lib.render("cluster_name.j2", prefill=prefill, prefill_joiner="\n", examples=shown,
                          inside=inside, outside=outside, stop=("\n\n", "\nRequests in the group", "\nNearby"))

    def check(value: dict[str, str]) -> None:
        if not fits(f"{value['name']}. {value['description']}"):
            raise ParseError(f"the name fits the nearby clusters better than its own: {value['name']!r}")

    return described_name_task(str(c), render, examples, "name_clusters", STEP_VERSION, check, detector)


def _fit_check(inside: np.ndarray, outside: np.ndarray, embedder: Any, store: Any) -> Callable[[str], bool]:
    def fits(text: str) -> bool:
        from .embeddings import embed

        v = embed([text], embedder, cache=store)[0]
        return len(outside) == 0 or float((inside @ v).mean()) > float((outside @ v).mean())

    return fits


def resolve_method(method: str | None, llm: LLM | str | None) -> str | None:
    """``"auto"``: ``"extractive"`` with the local model (its written names matched the true labels less often
    than keywords on held-out data, benchmarks/naming_quality.py), ``"llm"`` (the paper's way) with hosted models."""
    if method == "auto":
        return "extractive" if resolve_llm(llm).is_local else "llm"
    if method not in (None, "llm", "extractive", "keywords"):
        raise ValueError(f"method must be 'auto', 'llm', 'extractive', 'keywords' or None, not {method!r}")
    return method


def label_clusters(
    summaries: Sequence[str | None],
    X: np.ndarray,
    labels: np.ndarray,
    *,
    method: Literal["auto", "llm", "extractive", "keywords"] = "auto",
    llm: LLM | str | None = None,
    cache: CacheLike | str = "default",
    prompts: PromptLibrary | str | None = None,
    n_inside: int | None = None,
    n_outside: int | None = None,
    random_state: int = 0,
    embedder: Any = None,
    pii: Any = "auto",
    progress: bool = True,
    requests: Sequence[str | None] | None = None,
    users: Sequence[Any] | None = None,
    min_word_users: int | None = None,
) -> ClusterLabels:
    """Name every cluster.

    Args:
        summaries: one facet answer per conversation (``None`` where it failed; skipped).
        X: the embeddings the clusters were made from, rows aligned with ``summaries``.
        labels: cluster id per conversation (``-1`` = unclustered).
        method: ``"llm"`` (the model writes each name contrastively, keyword fallback), ``"extractive"``
            (the member summary that best tells the cluster apart, :mod:`clio_lab.extractive`), ``"keywords"``
            (c-TF-IDF, no model), or ``"auto"``: extractive with the local model, llm with hosted ones.
        llm: an :class:`~clio_lab.llm.LLM` or a LiteLLM model name (default: the local model).
        n_inside, n_outside: summaries shown from inside the cluster (a seeded random sample) and from outside
            it (those nearest its centroid). The paper uses about 50 each; the default is 50 for hosted models
            and 12 and 8 for the local model, whose context and speed are small.
        embedder: the embedder that made ``X``. A name is accepted only if its embedding lies closer, on
            average, to its own cluster's conversations than to the nearest outside ones (the contrast).
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` or ``False``: names and descriptions with
            personal details are re-asked, then kept redacted (counted in ``ClusterLabels.pii``).
        requests, users, min_word_users: for ``"extractive"``: each conversation's own request text, a source
            of candidate names beside the summaries, kept only when every word was written by at least
            ``min_word_users`` distinct users (default 3) of the cluster (:mod:`clio_lab.extractive`).

    Example:
        >>> names = label_clusters(facets.values["request"], X, clustering.labels)  # doctest: +SKIP
        >>> names[0].name  # doctest: +SKIP
        'Debug errors in Python programs'
    """
    labels = np.asarray(labels)
    if len(summaries) != len(labels) or len(X) != len(labels):
        raise ValueError(f"summaries ({len(summaries)}), X ({len(X)}) and labels ({len(labels)}) must align")
    method = resolve_method(method, llm)
    fallback = keyword_labels(summaries, X, labels)
    if method == "keywords":
        return ClusterLabels(fallback)
    if method == "extractive":
        from .extractive import MIN_WORD_USERS, extractive_labels
        from .pii import resolve_detector

        return ClusterLabels(extractive_labels(summaries, X, labels, embedder=embedder, cache=resolve_cache(cache),
                                               fallback=fallback, detector=resolve_detector(pii), requests=requests,
                                               users=users, min_word_users=min_word_users or MIN_WORD_USERS))
    if method != "llm":
        raise ValueError(f"method must be 'auto', 'llm', 'extractive' or 'keywords', not {method!r}")
    model = resolve_llm(llm)
    lib = resolve_prompts(prompts)
    n_in = n_inside or (12 if model.is_local else 50)
    n_out = n_outside or (8 if model.is_local else 50)
    examples = lib.examples("cluster_name", required=("inside", "outside", "description", "name"))
    from .pii import pii_counts, resolve_detector

    detector = resolve_detector(pii)
    X = np.asarray(X, dtype=np.float32)
    store = resolve_cache(cache)
    tasks = []
    for c, idx in _members(labels).items():
        if c == NOISE:
            continue
        inside = _unique(random.Random(f"{random_state}:{c}").sample(
            [summaries[i] for i in idx if summaries[i]], k=sum(1 for i in idx if summaries[i])), n_in)
        if not inside:
            continue
        centre = X[idx].mean(axis=0)
        outside_idx = np.flatnonzero(labels != c)
        order = outside_idx[np.argsort(-(X[outside_idx] @ centre))]
        outside = _unique([summaries[i] for i in order if summaries[i] and summaries[i] not in inside], n_out)
        near_out = order[: max(len(idx), 1)]
        tasks.append(_naming_task(c, lib, examples, inside, outside, _fit_check(X[idx], X[near_out], embedder, store),
                                  detector))
    outcomes, stats = model.run(tasks, cache=store, desc="name clusters", progress=progress)
    out = dict(fallback)
    failures = []
    for o in outcomes:
        c = int(o.item_id)
        if o.ok:
            out[c] = ClusterLabel(c, o.value["name"], o.value["description"], "llm", fallback[c].size,
                                  fallback[c].keywords)
        else:
            out[c] = ClusterLabel(**{**asdict(fallback[c]), "method": "keywords (llm failed)"})
            failures.append({"id": o.item_id, "step": "naming", "reason": o.error, "raw": o.raw})
    return ClusterLabels(out, failures, stats, pii_counts(outcomes, detector is not None))
