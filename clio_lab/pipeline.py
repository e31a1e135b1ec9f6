"""The main job: every step in order, one result record holding each stage's output and its costs.

Each step is the plain cached function from its own module; ``run_pipeline`` only wires them together and
keeps the books (timings, model and embedding calls, cache hits, tokens, failures). What may be shown is
decided once, by :func:`clio_lab.release.release_tree`; the tables are built in :mod:`clio_lab.results`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .auditor import (
    DEFAULT_MIN_SCORE,
    RULE_MIN_USERS,
    audit_clusters,
    audit_off_reason,
    resolve_auditor,
    rule_audit,
    support_texts,
)
from .cache import CacheLike, resolve_cache
from .clustering import cluster
from .embed_input import embed_conversations, texts_to_embed  # noqa: F401  (public here since 0.1)
from .embeddings import COUNTER
from .facets import extract_facets
from .hierarchy import build_hierarchy, check_levels
from .languages import resolve_embedder
from .llm.client import LLM, resolve_llm
from .naming import label_clusters, resolve_method
from .projection import project
from .records import Conversation
from .release import (
    DEFAULT_MIN_CONVERSATIONS,
    DEFAULT_MIN_USERS,
    PrivacyOptions,
    audit_candidates,
    release_tree,
)
from .results import PipelineResult  # noqa: F401  (clio_lab.pipeline.PipelineResult since 0.1)

EmbedOn = Literal["auto", "summary", "text", "both"]


def _runtime_info(model: LLM) -> dict[str, Any] | None:
    """The in-process model's build and CPU features (which code paths llama.cpp takes here)."""
    if not model.is_local:
        return None
    from .llm.local import runtime_info

    return runtime_info(model.model)


def resolve_embed_on(embed_on: EmbedOn, llm: LLM) -> str:
    """What gets embedded and clustered. ``auto``: the conversation's own text with the local base model
    (its summaries cost 15 NMI points on Banking77, measured), the request summary with hosted models."""
    if embed_on == "auto":
        return "text" if llm.is_local else "summary"
    if embed_on not in ("summary", "text", "both"):
        raise ValueError(f"embed_on must be 'auto', 'summary', 'text' or 'both', not {embed_on!r}")
    return embed_on


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Record the seconds a step took under its name."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = time.perf_counter() - start


def _privacy_options(privacy: PrivacyOptions | None, flat: dict[str, Any]) -> PrivacyOptions:
    """``privacy=`` or the flat keywords (the defaults of both are the same), not both."""
    if privacy is None:
        return PrivacyOptions(**flat)
    defaults = PrivacyOptions()
    given = {k: v for k, v in flat.items() if v != getattr(defaults, k)}
    if given:
        raise ValueError(f"privacy options given twice: as privacy= and as {sorted(given)}; use one")
    return privacy


def _load(conversations: Sequence[Conversation] | str | Path) -> tuple[list[Conversation], Any]:
    from .loaders import load_conversations

    if isinstance(conversations, str | Path):
        conversations = load_conversations(conversations)
    report = getattr(conversations, "report", None)
    conversations = list(conversations)
    if not conversations:
        where = f"{report.source}: " if report is not None else ""
        why = f" ({'; '.join(report.notes)})" if report is not None and report.notes else ""
        raise ValueError(f"{where}run_pipeline needs at least one conversation{why}")
    return conversations, report


def run_pipeline(
    conversations: Sequence[Conversation] | str | Path,
    *,
    llm: LLM | str | None = None,
    embedder: Any = "auto",
    embed_on: EmbedOn = "auto",
    drop_repeated: bool = True,
    centre_languages: bool = True,
    method: str | Any = "kmeans",
    k: int | None = None,
    random_state: int = 0,
    cache: CacheLike | str = "default",
    facets: Sequence[Any] = ("request",),
    examples: Literal["nearest", "fixed", "none"] = "nearest",
    prompts: Any = None,
    naming: Literal["auto", "llm", "extractive", "keywords"] | None = "auto",
    hierarchy: Literal["llm", "extractive", "keywords"] | None | bool = True,
    levels: Sequence[int] | None = None,
    top: int | None = None,
    projection: bool = True,
    privacy: PrivacyOptions | None = None,
    pii: Any = "auto",
    redact_input: bool = False,
    min_conversations: int | None = DEFAULT_MIN_CONVERSATIONS,
    min_users: int | None = DEFAULT_MIN_USERS,
    audit: bool | Literal["auto"] = "auto",
    min_audit_score: int = DEFAULT_MIN_SCORE,
    show_raw: bool = False,
    screen: str | None = None,
    partitions: str | Sequence[Any] | None = None,
    max_cost: float | None = None,
    engine: Any = None,
    progress: bool = True,
) -> PipelineResult:
    """Run facets → embeddings → clustering → naming → hierarchy → release → projection on a corpus.

    Args:
        conversations: loaded conversations, or a path for :func:`~clio_lab.load_conversations`.
        llm: an :class:`~clio_lab.llm.LLM` or LiteLLM model name (default: the local model).
        embedder: embedder object or name, or ``"auto"`` (default): the bundled all-MiniLM-L6-v2, or MiniLM and
            multilingual-e5 side by side when 10% or more of the corpus is in non-Latin scripts
            (:func:`~clio_lab.languages.choose_embedder`; the choice and the languages are in ``config``).
        embed_on: what is embedded and clustered: ``"summary"``, ``"text"``, ``"both"``, or ``"auto"``.
        drop_repeated: leave sentences found in more than 1% of the conversations (and more than 20) out of
            the embedded user text (:mod:`clio_lab.embed_input`); the model still reads them.
        centre_languages: shift each language that holds enough conversations onto the corpus's centre
            (:class:`~clio_lab.languages.LanguageCentredEmbedder`), so that conversations cluster by what they
            ask rather than by their language; a no-op for a corpus in one language.
        method, k, random_state: passed to :func:`~clio_lab.cluster`.
        cache: a :class:`~clio_lab.cache.Cache`, a folder, ``"default"`` or ``None`` (off).
        facets, examples: passed to :func:`~clio_lab.extract_facets`.
        prompts: your own prompt folder (default: the packaged ``prompts/``).
        naming: ``"llm"`` has the model write each name contrastively (keyword fallback; the paper's way),
            ``"extractive"`` names each cluster by the member summary that best tells it apart (no writing
            model: :mod:`clio_lab.extractive`), ``"keywords"`` by c-TF-IDF words, ``None`` skips naming (and
            the hierarchy). ``"auto"`` (default): ``"extractive"`` with the local model, whose written names
            measured worse than keywords, ``"llm"`` with hosted models.
        hierarchy: ``True`` (the same method as ``naming``), ``"llm"``, ``"extractive"``, ``"keywords"``, or
            ``None``/``False`` for base clusters only. ``levels`` / ``top``: see :func:`~clio_lab.build_hierarchy`.
        projection: compute the 2-D map of every conversation (UMAP; PCA for tiny inputs).
        privacy: every privacy setting as one :class:`~clio_lab.release.PrivacyOptions`; or give them as the
            keywords below (not both).
        pii: a :class:`~clio_lab.pii.PIIDetector`, ``"auto"`` (one when presidio is installed), ``True`` or
            ``False``: every text the model writes (facet answers, cluster and parent names and descriptions)
            is checked; one with personal details is re-asked once, then kept redacted, and counted.
        min_conversations, min_users: aggregation thresholds (:func:`~clio_lab.release.release_tree`): a
            cluster with fewer conversations or distinct users is withheld from every view and export, its
            conversations counted in an "Other (withheld)" node. ``None`` turns a threshold off.
        redact_input: redact personal details in every conversation before any model sees them (and before
            the text is embedded); counted in ``stats()["input_redaction"]``. Needs presidio.
        audit, min_audit_score: the privacy auditor rates every cluster that passes the thresholds on the
            paper's 1-5 scale and withholds those below ``min_audit_score`` (default 3) or that it cannot rate.
            ``"auto"``: on whenever clusters are named. With the local model it is the rules
            (:func:`~clio_lab.auditor.rule_audit`: the PII detector, and every name-like word written by
            ``min_users`` users), whose false alarms on held-out texts measured far below the 270M model's; with
            a hosted model, the model (:func:`~clio_lab.auditor.audit_clusters`, the paper's way).
            ``"rules"`` or ``"model"`` picks one.
        show_raw: put each conversation's own text in the exports (``text`` column) — only for public or
            synthetic data; recorded in the run and its privacy report. Off by default.
        screen: a yes/no question (``"Is this conversation about ...?"``) asked of every conversation first
            (:func:`~clio_lab.screening.screen`, ``method="auto"``: by embedding similarity with the local model,
            by the model with a hosted one); only those answered "Yes" go on. The count of each answer is
            in ``config["screen"]``, failed answers in ``failures``.
        partitions: fixed top-level categories (:mod:`clio_lab.partitions`): a facet or metadata field name
            (``"language"``), each value a partition, or named categories (``[{"name": ..., "description":
            ...}]``) each conversation is assigned to by embedding similarity; clusters and one level of parents
            are built inside each partition, and the partitions form the top of the tree.
        max_cost: a limit in US dollars: the run is first estimated (:func:`~clio_lab.estimate.estimate`:
            calls, tokens and LiteLLM's prices, answers already cached left out) and raises
            :class:`~clio_lab.estimate.CostAboveLimit` before any model call when the estimate is above it, or
            unknown (a model missing from LiteLLM's price table). The estimate is kept in ``config["estimate"]``.
        engine: where the per-conversation work runs: ``None`` (this process), ``"ray"``, a Ray address
            (``"ray://head:10001"``) or a :class:`~clio_lab.engine.RayEngine`. The facet calls with their PII
            checks, the embeddings and the input redaction then run as Ray Data batch jobs on the cluster; this
            process keeps the cache and runs the other steps, and the results are those of a run here.

    Example:
        >>> result = run_pipeline("datasets/clio_demo.jsonl")  # doctest: +SKIP
        >>> result.stats()["llm_calls"]  # doctest: +SKIP
        0
    """
    opts = _privacy_options(privacy, dict(pii=pii, redact_input=redact_input, min_conversations=min_conversations,
                                          min_users=min_users, audit=audit, min_audit_score=min_audit_score,
                                          show_raw=show_raw))
    conversations, report = _load(conversations)
    if levels is not None:  # fail before any model call, not after
        check_levels(levels, n_base=10**12)
    if partitions is not None and (levels is not None or top is not None):
        from .partitions import PartitionError

        raise PartitionError("partitions= builds the levels itself (base clusters, one level of parents inside each "
                         "partition, the partitions on top): leave levels= and top= out")
    if partitions is not None and not isinstance(partitions, str):
        from .partitions import _categories

        _categories(partitions)  # a malformed category list fails before any model call
    from .pii import resolve_detector

    model = resolve_llm(llm)
    naming = resolve_method(naming, model)
    emb, embedder_choice = resolve_embedder(embedder, conversations)
    store = resolve_cache(cache)
    on = resolve_embed_on(embed_on, model)
    detector = resolve_detector(opts.pii)
    from .engine import resolve_engine

    runner = resolve_engine(engine)
    if callable(getattr(runner, "check", None)):
        runner.check(model)  # e.g. a provider with no batch API: said before any work
    timings: dict[str, float] = {}
    estimated = None
    if max_cost is not None:
        from .estimate import CostAboveLimit, estimate

        with _timed(timings, "estimate"):
            estimated = estimate(conversations, llm=model, facets=facets, examples=examples, prompts=prompts,
                                 embedder=emb, cache=store, method=method if isinstance(method, str) else "other",
                                 k=k, naming=naming, hierarchy=hierarchy, levels=levels, top=top,
                                 audit=opts.audit, screen=screen, pii=detector or False, random_state=random_state,
                                 min_conversations=opts.min_conversations)
        if estimated.cost_usd is None or estimated.cost_usd > max_cost:
            raise CostAboveLimit(estimated, max_cost)
    input_redaction = None
    if opts.redact_input:
        from .pii import PIIDetector, redact_conversations

        with _timed(timings, "redact_input"):
            conversations, input_redaction = redact_conversations(conversations, detector or PIIDetector(),
                                                                  cache=store, engine=runner)
    screened = None
    if screen:
        from .screening import NothingScreenedIn
        from .screening import screen as ask

        with _timed(timings, "screen"):
            screened = ask(conversations, screen, llm=model, embedder=emb, cache=store, prompts=prompts,
                           progress=progress, engine=runner)
        conversations = screened.select(conversations)
        if not conversations:
            raise NothingScreenedIn(f"the screener answered no conversation 'Yes' to {screened.question!r} "
                             f"({screened.counts()}): nothing is left to cluster")
    calls0, hits0 = COUNTER.calls, COUNTER.cache_hits
    checked_by = detector or False

    with _timed(timings, "facets"):
        fac = extract_facets(conversations, facets, llm=model, cache=store, embedder=emb, examples=examples,
                             prompts=prompts, pii=checked_by, progress=progress, engine=runner)
    summaries = fac.values.get("request", [None] * len(conversations))
    with _timed(timings, "embed"):
        space = embed_conversations(conversations, summaries, emb, embed_on=on, drop_repeated=drop_repeated,
                                    centre_languages=centre_languages, cache=store, progress=progress,
                                    engine=runner)
    emb, X, sources, requests = space.embedder, space.X, space.sources, space.requests
    user_ids = [c.user_id if c.user_id is not None else f"row {i}" for i, c in enumerate(conversations)]
    parts = None
    if partitions is not None:
        from .partitions import cluster_within, partition

        with _timed(timings, "partition"):
            parts = partition(conversations, partitions, facet_values=fac.values, computed=fac.computed, X=X,
                              embedder=emb, cache=store)
    with _timed(timings, "cluster"):
        clustering = (cluster_within(X, parts, method=method, k=k, random_state=random_state, cache=store) if parts
                      else cluster(X, method=method, k=k, random_state=random_state, cache=store))
    names = None
    if naming:
        with _timed(timings, "naming"):
            names = label_clusters(summaries, X, clustering.labels, method=naming, llm=model, cache=store,
                                   prompts=prompts, random_state=random_state, embedder=emb, pii=checked_by,
                                   progress=progress, requests=requests, users=user_ids,
                                   min_word_users=opts.min_users)
    tree_method = (naming if hierarchy is True else hierarchy or None) if naming else None
    with _timed(timings, "hierarchy"):
        if parts is not None:
            from .partitions import build_partitioned

            full_tree = build_partitioned(parts, clustering.labels, names.labels if names else {},
                                          method=tree_method or "keywords", summaries=summaries, X=X, llm=model,
                                          embedder=emb, cache=store, prompts=prompts, random_state=random_state,
                                          pii=checked_by, progress=progress, requests=requests, users=user_ids,
                                          min_word_users=opts.min_users)
        else:
            full_tree = build_hierarchy(clustering.labels, names.labels if names else {},
                                        method=tree_method or "keywords", levels=levels if tree_method else [], top=top,
                                        llm=model, embedder=emb, summaries=summaries, X=X, cache=store, prompts=prompts,
                                        random_state=random_state, pii=checked_by, progress=progress,
                                        requests=requests, users=user_ids, min_word_users=opts.min_users)

    users = [c.user_id for c in conversations]
    audited = None
    audit_off = audit_off_reason(opts.audit, naming)
    if audit_off is None:  # only clusters that pass the thresholds can be shown, so only they are audited
        with _timed(timings, "audit"):
            given = parts.given_ids(full_tree) if parts is not None else set()  # the user's own category names
            candidates = [n for n in audit_candidates(full_tree, users, **opts.gate) if n not in given]
            if resolve_auditor(opts.audit, model) == "rules":
                audited = rule_audit(full_tree, support_texts(conversations, *fac.values.values()), users,
                                     nodes=candidates, min_users=opts.min_users or RULE_MIN_USERS,
                                     min_score=opts.min_audit_score, detector=detector or False)
            else:
                audited = audit_clusters(full_tree, nodes=candidates, min_score=opts.min_audit_score, llm=model,
                                         cache=store, prompts=prompts, random_state=random_state, embedder=emb,
                                         progress=progress)
    with _timed(timings, "release"):
        shown = release_tree(full_tree, users, audit=audited, **opts.gate, detector=detector)
    raw_pii = None
    if detector is not None:
        from .pii import scan_conversations

        with _timed(timings, "privacy_check"):
            raw_pii = ({**input_redaction, "checked": len(conversations), "sampled": False,
                        "with_pii": input_redaction["conversations_with_pii"]} if input_redaction else
                       scan_conversations(conversations, detector, cache=store, random_state=random_state))
    coords = None
    if projection:
        with _timed(timings, "projection"):
            coords = project(X, random_state=random_state, cache=store)

    config = {"llm": model.get_params(), "embedder": emb.get_params(), "embedder_choice": embedder_choice,
              "language_centring": space.centring, "repeated_sentences": space.repeated_config(),
              "embed_on": on, "method": clustering.method,
              "k": clustering.params.get("k"), "random_state": random_state, "examples": examples,
              "facets": [f if isinstance(f, str) else f.name for f in facets], "naming": naming,
              "hierarchy": tree_method, "levels": shown.tree.config.get("levels"), "projection": projection,
              "pii_check": detector.get_params() if detector is not None else None,
              "redact_input": opts.redact_input,
              "thresholds": {"min_conversations": opts.min_conversations, "min_users": opts.min_users},
              "audit": audited is not None, "auditor": audited.by if audited is not None else None,
              "min_audit_score": opts.min_audit_score, "audit_off_reason": audit_off,
              "show_raw": bool(opts.show_raw), "cache": str(store.directory) if store is not None else None,
              "llm_runtime": _runtime_info(model), "screen": screened.as_dict() if screened else None,
              "partitions": parts.as_dict() if parts else None,
              "estimate": estimated.as_dict() if estimated is not None else None,
              "engine": runner.get_params() if runner is not None else None}
    llm_stats = {**({"screen": screened.stats} if screened else {}), "facets": fac.stats, **({"naming": names.stats} if names else {}),
                 **({"hierarchy": full_tree.stats} if tree_method == "llm" else {}),
                 **({"privacy_audit": audited.stats} if audited is not None else {})}
    return PipelineResult(conversations=conversations, facets=fac, embeddings=X, embedded_from=sources,
                          clustering=clustering, config=config, timings=timings, llm_stats=llm_stats,
                          embedding_calls=COUNTER.calls - calls0, embedding_cache_hits=COUNTER.cache_hits - hits0,
                          load_report=report, names=names, hierarchy=shown.tree, coords=coords,
                          input_redaction=input_redaction, thresholds=shown.report.as_dict(),
                          full_hierarchy=full_tree, pii_detector=detector, audit=audited, raw_pii=raw_pii,
                          released_pii=shown.released_pii, screening=screened)
