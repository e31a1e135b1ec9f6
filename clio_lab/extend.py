"""Extend a run with new conversations without re-clustering or renaming (open-clio's ``extend``, BERTopic's
``transform``).

:func:`extend` takes a run (live, or saved and read back with :func:`~clio_lab.load_run`) and new conversations.
It answers their facets with the run's own model, prompts, facets and cache, embeds them with the run's
embedder the way the run did (``embed_on``), and :func:`assign`\\ s each to the nearest base-cluster centroid in
the run's embedding space. A new conversation farther from that centroid than 99% of the run's conversations are
from theirs (``quantile``; ``max_distance`` overrides it) goes to "Unclustered".

Sizes and distinct users are recounted and the run's privacy thresholds applied again. A base cluster that was
withheld for being too small and now passes the thresholds is named the run's way (from the answers the run
holds for it: all of them for a live run, the new conversations' for a saved one, which keeps no answers of
withheld clusters) and released only if the privacy auditor rates the name at the run's minimum or above. One
whose category was withheld too stays withheld (naming a category needs a new run). Nothing else is renamed.

New points are placed on the run's map at the mean position of their nearest conversations (in the embedding
space); the map is not refitted. The result is a run (a :class:`~clio_lab.runs.SavedRun` held in memory) with
one more entry in ``config["extended"]``; ``.save(dir)`` writes it like any run. The conversations frame's
``extension`` column says which call added each conversation (0: the original run).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .clustering import NOISE
from .naming import UNCLUSTERED
from .tree import Hierarchy, Node, Status, node_id

if TYPE_CHECKING:  # pragma: no cover
    from .records import Conversation
    from .results import PipelineResult
    from .runs import SavedRun

DEFAULT_QUANTILE = 0.99  # farther from its centroid than 99% of the run's conversations from theirs: "Unclustered"
N_MAP_NEIGHBOURS = 5


@dataclass
class Assignment:
    """Where :func:`assign` put each new item: its base cluster (``-1`` beyond the radius), the nearest
    cluster regardless of the radius, the cosine distance to that centroid, and each cluster's radius."""

    labels: np.ndarray
    nearest: np.ndarray
    distance: np.ndarray
    radius: dict[int, float]

    @property
    def n_unclustered(self) -> int:
        return int((self.labels == NOISE).sum())


def centroids(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cluster ids (noise left out) and their unit-length mean embeddings, one row per id."""
    labels = np.asarray(labels)
    ids = np.array(sorted(set(labels.tolist()) - {NOISE}), dtype=int)
    C = np.stack([X[labels == i].mean(axis=0) for i in ids]) if len(ids) else np.zeros((0, X.shape[1]))
    C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    return ids, C.astype(np.float32)


def assign(X_new: np.ndarray, X: np.ndarray, labels: np.ndarray, *, max_distance: float | str | None = "auto",
           quantile: float = DEFAULT_QUANTILE) -> Assignment:
    """Assign rows of ``X_new`` to the nearest centroid of the clusters ``labels`` made of ``X`` (cosine).

    ``max_distance``: ``"auto"`` (default) is one radius for every cluster: the ``quantile`` (0.99) of the fitted
    items' distances to their own centroids, pooled; ``"per-cluster"`` gives each cluster that quantile of its own
    members' distances; a number is one radius (cosine distance); ``None`` assigns every item. Items beyond their
    nearest cluster's radius get ``-1`` (unclustered). The pooled default was chosen on Banking77's train split
    (half fitted, half assigned): 1.3% of the held-back half and 98.7% of the off-topic demo corpus went to
    unclustered, against 3.5% and 95.0% per cluster; clusters of 20 members left 10.8% out per cluster
    (``benchmarks/extend.py``).

    Example:
        >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> assign(np.array([[0.95, 0.05], [-1.0, 0.0]]), X, np.array([0, 0, 1, 1])).labels.tolist()
        [0, -1]
    """
    X = np.asarray(X, dtype=np.float32)
    X_new = np.asarray(X_new, dtype=np.float32)
    labels = np.asarray(labels)
    if len(X) != len(labels):
        raise ValueError(f"X ({len(X)}) and labels ({len(labels)}) must align")
    if X_new.ndim != 2 or (len(X_new) and X_new.shape[1] != X.shape[1]):
        raise ValueError(f"new embeddings of shape {X_new.shape} do not match the run's ({X.shape[1]} dimensions): "
                         "embed them with the run's embedder")
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], not {quantile!r}")
    ids, C = centroids(X, labels)
    if not len(ids):
        raise ValueError("the run has no clusters to assign to (every conversation is unclustered)")

    def unit(A: np.ndarray) -> np.ndarray:
        return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)

    sims = unit(X_new) @ C.T if len(X_new) else np.zeros((0, len(ids)), np.float32)
    best = sims.argmax(axis=1) if len(X_new) else np.zeros(0, dtype=int)
    distance = 1.0 - sims[np.arange(len(X_new)), best]
    nearest = ids[best]
    if max_distance is None:
        radius = {int(c): float("inf") for c in ids}
    elif max_distance in ("auto", "per-cluster"):
        members = labels[labels != NOISE]
        own = 1.0 - np.einsum("ij,ij->i", unit(X[labels != NOISE]), C[np.searchsorted(ids, members)])
        if max_distance == "auto":
            pooled = float(np.quantile(own, quantile))
            radius = {int(c): pooled for c in ids}
        else:
            radius = {int(c): float(np.quantile(own[members == c], quantile)) for c in ids}
    elif isinstance(max_distance, int | float) and max_distance >= 0:
        radius = {int(c): float(max_distance) for c in ids}
    else:
        raise ValueError(f"max_distance must be 'auto', 'per-cluster', None or a cosine distance >= 0, "
                         f"not {max_distance!r}")
    limit = np.array([radius[int(c)] for c in nearest])
    out = np.where(distance <= limit + 1e-6, nearest, NOISE)
    return Assignment(out.astype(int), nearest.astype(int), distance.astype(np.float32), radius)


def place_on_map(X_new: np.ndarray, X: np.ndarray, coords: np.ndarray, k: int = N_MAP_NEIGHBOURS,
                 chunk: int = 2048) -> np.ndarray:
    """Map positions for new items: the mean position of their ``k`` nearest items (cosine) on the run's map."""
    k = max(1, min(k, len(X)))
    out = np.zeros((len(X_new), 2), dtype=np.float32)
    for s in range(0, len(X_new), chunk):
        sims = X_new[s:s + chunk] @ X.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[s:s + chunk] = coords[near].mean(axis=1)
    return out


@dataclass
class _Base:
    """What extend needs of the run it extends, from a live result or a saved folder alike."""

    frame: Any
    clusters: Any
    tree: Hierarchy
    X: np.ndarray
    base_labels: np.ndarray  # each conversation's base cluster before release
    answers: dict[str, list[str | None]]  # facet answers per conversation (None where not kept)
    config: dict[str, Any]
    failures: list[dict[str, Any]]
    stats: dict[str, Any]
    privacy: dict[str, Any]
    source: str


def _base(run: PipelineResult | SavedRun) -> _Base:
    from .results import PipelineResult

    if isinstance(run, PipelineResult):
        answers = {k: list(v) for k, v in run.facets.values.items()}
        return _Base(run.to_frame(), run.clusters_frame(), run.hierarchy, np.asarray(run.embeddings, np.float32),
                     np.asarray(run.clustering.labels), answers, dict(run.config), list(run.failures), run.stats(),
                     run.privacy(), "a live run")
    if run.base_labels is None or run.embeddings is None:
        missing = "base_labels.npy" if run.base_labels is None else "embeddings.npy"
        raise ValueError(f"{run.path}: the run folder has no {missing} (saved before clio_lab could extend runs); "
                         "run the pipeline again to extend it")
    frame = run.to_frame()
    answers = {f: frame[f].tolist() if f in frame else [None] * len(frame) for f in run.config.get("facets", [])}
    return _Base(frame, run.clusters_frame(), run.hierarchy, np.asarray(run.embeddings, np.float32),
                 np.asarray(run.base_labels), answers, dict(run.config), list(run.failures), run.stats(),
                 run.privacy(), str(run.path) if run.path else "a run")


def run_llm(config: dict[str, Any], llm: Any = None, api_base: str | None = None) -> Any:
    """The run's own model (``api_base``: its server's address now, if it moved); a given one (say, with its
    API key) must be the same model with the same settings (its address may differ)."""
    from .llm.client import LLM

    saved = config.get("llm") or {}
    if llm is None:
        return LLM(model=saved["model"], prompt_style=saved.get("style", "auto"), temperature=saved.get("temperature"),
                   api_base=api_base or saved.get("api_base"), extra=dict(saved.get("extra") or {}))
    model = llm if isinstance(llm, LLM) else LLM(model=str(llm), api_base=api_base or saved.get("api_base"))
    differ = sorted(k for k, v in model.get_params().items() if k != "api_base" and saved.get(k, v) != v)
    if differ:
        raise ValueError(f"the run's answers came from {saved.get('model')!r} with other settings ({', '.join(differ)} "
                         f"differ): extend with the run's own model, or run the pipeline again")
    return model


def _run_embedder(config: dict[str, Any], embedder: Any) -> Any:
    """The run's own embedder (its name and settings are in ``config["embedder"]``, with a language-centred
    run's per-language shifts, so new conversations land in the space the run was clustered in)."""
    from .embeddings import embedder_from_params, get_embedder

    saved = config.get("embedder") or {}
    emb = embedder_from_params(saved) if embedder is None else get_embedder(embedder)
    if saved.get("kind") == "language-centred" and emb.get_params().get("kind") != "language-centred":
        from .languages import LanguageCentredEmbedder

        emb = LanguageCentredEmbedder.from_params(saved, emb)  # the run's embedder given: its shifts applied
    if _differs(emb.get_params(), saved):
        raise ValueError(f"the run was embedded with {_short(saved)}; extend needs the same embedder, not "
                         f"{_short(emb.get_params())}")
    return emb


def _differs(params: Any, saved: Any) -> bool:
    """Whether an embedder's settings differ from the saved ones; library versions and settings the run did not
    save are not compared (a run may be extended after an upgrade)."""
    if isinstance(params, dict) and isinstance(saved, dict):
        return any(_differs(v, saved[k]) for k, v in params.items()
                   if k not in ("st_version", "version") and k in saved)
    if isinstance(params, list | tuple) and isinstance(saved, list | tuple):
        return len(params) != len(saved) or any(_differs(a, b) for a, b in zip(params, saved, strict=True))
    return params != saved


def _short(params: dict[str, Any]) -> dict[str, Any]:
    return {k: ("..." if k == "offsets" else v) for k, v in params.items()}


def _chain_leaf(base: _Base) -> dict[int, int]:
    """Each base cluster's leaf in the released tree: itself when shown, its "Other (withheld)" pool if not."""
    released = np.asarray(base.tree.base_labels)
    out: dict[int, int] = {}
    for c in np.unique(base.base_labels):
        leaves = np.unique(released[base.base_labels == c])
        out[int(c)] = int(leaves[0])
    return out


def _distinct(users: np.ndarray, idx: np.ndarray, present: bool) -> int:
    return len({users[i] for i in idx}) if present else len(idx)


def extend(run: PipelineResult | SavedRun, conversations: Sequence[Conversation] | str | Path, *,
           llm: Any = None, embedder: Any = None, cache: Any = "default", prompts: Any = None,
           max_distance: float | str | None = "auto", quantile: float = DEFAULT_QUANTILE, pii: Any = "auto",
           progress: bool = True) -> SavedRun:
    """Add ``conversations`` to ``run``'s clusters (see the module's docstring); returns the extended run.

    Args:
        run: a :class:`~clio_lab.PipelineResult` or a run read with :func:`~clio_lab.load_run`.
        conversations: the new conversations, or a path for :func:`~clio_lab.load_conversations`. Ids already
            in the run are refused.
        llm, embedder: default: the run's own (a hosted model's key is not saved: pass ``llm=LLM(model, api_key=..)``
            of the same model); another model or embedder than the run's is refused.
        cache, prompts: as for :func:`~clio_lab.run_pipeline` (the run's cached answers are reused).
        max_distance, quantile: see :func:`assign`.
        pii: the detector that checks the new facet answers and names (as ``run_pipeline``'s).

    Example:
        >>> more = clio_lab.extend(clio_lab.load_run("runs/demo"), "new.jsonl")  # doctest: +SKIP
        >>> more.save("runs/demo_extended")  # doctest: +SKIP
    """
    import pandas as pd

    from .cache import resolve_cache
    from .embed_input import RepeatedSentences, texts_to_embed, user_requests
    from .embeddings import embed
    from .facets import extract_facets
    from .languages import LanguageCentredEmbedder
    from .pii import resolve_detector
    from .pipeline import _load
    from .release import DEFAULT_MIN_CONVERSATIONS, DEFAULT_MIN_USERS
    from .runs import RUN_FORMAT, SavedRun

    base = _base(run)
    config = base.config
    new, load_report = _load(conversations)
    known = set(base.frame["id"].astype(str))
    clash = [c.id for c in new if str(c.id) in known]
    if clash:
        raise ValueError(f"{len(clash)} new conversations have ids already in the run (first: {clash[0]!r}); "
                         "extend adds conversations the run does not hold")
    model = run_llm(config, llm)
    emb = _run_embedder(config, embedder)
    # the run screened and asked facets with its embedder before centring languages (which needs the embeddings)
    ask_emb = emb.base if isinstance(emb, LanguageCentredEmbedder) else emb
    store = resolve_cache(cache)
    detector = resolve_detector(pii) if config.get("pii_check") else None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    redaction = None
    if config.get("redact_input"):
        from .pii import PIIDetector, redact_conversations

        new, redaction = redact_conversations(new, detector or PIIDetector(), cache=store)
    screened = None
    if config.get("screen"):  # the run's question, asked the run's way
        from .screening import screen

        q = config["screen"]
        screened = screen(new, q["question"], llm=model, method=q.get("method", "auto"),
                          threshold=q.get("threshold", 0.35), embedder=ask_emb, cache=store, prompts=prompts,
                          progress=progress)
        new = screened.select(new)
    timings["extend: screen and redact"] = time.perf_counter() - t0
    n_new = len(new)

    t0 = time.perf_counter()
    fac = extract_facets(new, config.get("facets") or ["request"], llm=model, cache=store, embedder=ask_emb,
                         examples=config.get("examples", "nearest"), prompts=prompts, pii=detector or False,
                         progress=progress) if n_new else None
    timings["extend: facets"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    new_answers = fac.values if fac else {}
    summaries_new = new_answers.get("request", [None] * n_new)
    rep = config.get("repeated_sentences")  # the run's repeated sentences are left out of the new ones too
    repeated = (RepeatedSentences(max_share=rep["max_share"], min_count=rep["min_count"],
                                  keys_=frozenset(rep["keys"])) if rep else None)
    texts, sources = texts_to_embed(new, summaries_new, config.get("embed_on", "text"), repeated)
    X_new = embed(texts, emb, cache=store, progress=progress) if n_new else np.zeros((0, base.X.shape[1]), np.float32)
    timings["extend: embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    got = assign(X_new, base.X, base.base_labels, max_distance=max_distance, quantile=quantile)
    labels = np.concatenate([base.base_labels, got.labels])
    X_all = np.concatenate([base.X, X_new]).astype(np.float32)
    old_users = (base.frame["user_id"].tolist() if "user_id" in base.frame else [None] * len(base.frame))
    users_list = old_users + [c.user_id for c in new]
    present = any(u for u in users_list)
    users = np.array([u or "" for u in users_list], dtype=object)
    answers = {f: list(base.answers.get(f, [None] * len(base.frame))) + list(new_answers.get(f, [None] * n_new))
               for f in set(base.answers) | set(new_answers)}
    thr = config.get("thresholds") or {}
    min_conv = thr.get("min_conversations", DEFAULT_MIN_CONVERSATIONS) or 1
    min_users = thr.get("min_users", DEFAULT_MIN_USERS) or 1
    # a saved run keeps no conversation text: only the new conversations' own requests can give candidate names
    requests = [None] * len(base.frame) + user_requests(new, repeated)
    tree, decided, naming_failures, audit_stats, audit_scores = _update_tree(
        base, labels, users, present, X_all, answers.get("request", [None] * len(labels)), min_conv, min_users,
        model=model, emb=emb, store=store, prompts=prompts, detector=detector, progress=progress,
        requests=requests)
    timings["extend: assign and release"] = time.perf_counter() - t0

    # the conversations frame: the run's rows and the new ones, cluster columns from the new tree
    new_frame = fac.to_frame() if fac else pd.DataFrame({"id": []})
    new_frame["embedded_from"] = sources
    if present or "user_id" in base.frame:
        new_frame["user_id"] = [c.user_id for c in new]
    if "created_at" in base.frame or any(c.created_at for c in new):
        new_frame["created_at"] = pd.to_datetime([c.created_at for c in new], utc=True)
    if {"x", "y"} <= set(base.frame.columns) and n_new:
        xy = place_on_map(X_new, base.X, base.frame[["x", "y"]].to_numpy(np.float32))
        new_frame["x"], new_frame["y"] = xy[:, 0], xy[:, 1]
    old = base.frame.drop(columns=[c for c in base.frame.columns if c.startswith("level_")])
    if "extension" not in old:
        old["extension"] = 0
    new_frame["extension"] = int(old["extension"].max()) + 1
    frame = pd.concat([old, new_frame], ignore_index=True)
    frame["cluster"] = tree.base_labels
    withheld = tree.withheld_members()
    frame["withheld"] = withheld
    for f, vals in answers.items():  # answers of the newly released clusters come back; withheld stay empty
        if f in frame:
            frame[f] = pd.Series(vals, dtype=object).where(~withheld, None)
    for lvl in range(tree.n_levels):
        at = tree.labels_at(lvl)
        names = {n.index: n.name for n in tree.level(lvl)}
        frame[f"level_{lvl}"] = at
        frame[f"level_{lvl}_name"] = [names[i] for i in at]

    clusters = _clusters_frame(tree, base.clusters, X_all, answers.get("request", [None] * len(labels)), users,
                               present, audit_scores)
    record = {"from": base.source, "conversations": n_new, "assigned": int((got.labels != NOISE).sum()),
              "unclustered": got.n_unclustered, "max_distance": max_distance, "quantile": quantile,
              "released": decided["released"], "still_withheld": decided["still_withheld"],
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **({"screen": screened.counts()} if screened else {}),
              **({"input_redaction": redaction} if redaction else {})}
    config = {**config, "extended": [*config.get("extended", []), record]}
    new_failures = list(fac.failures) if fac else []
    if screened is not None:
        new_failures = list(screened.failures) + new_failures
    if detector is not None:  # raw model answers are exported redacted, as a run's are
        new_failures = [{**f, "raw": detector.redact(f["raw"]).text} if f.get("raw") else f for f in new_failures]
    failures = base.failures + new_failures + naming_failures
    stats = _stats(base.stats, tree, frame, failures, timings, fac, audit_stats, got, config)
    privacy = _privacy(base.privacy, tree, decided, fac)
    meta = {"format": RUN_FORMAT, "config": config}
    return SavedRun(None, meta, frame, clusters, tree, X_all, failures,
                    load_report.model_dump() if load_report is not None else None, stats, privacy,
                    base_labels=labels)


def _update_tree(base: _Base, labels: np.ndarray, users: np.ndarray, present: bool, X: np.ndarray,
                 summaries: list[str | None], min_conv: int, min_users: int, **ctx: Any):
    """The released tree with the new conversations in their leaves, and withheld clusters that now pass the
    thresholds named, audited and released (or kept withheld, with the reason)."""
    from .auditor import audit_clusters, rule_audit, support_texts
    from .naming import label_clusters

    old_n = len(base.base_labels)
    leaf = _chain_leaf(base)
    nodes = {nid: replace(n, children=[], keywords=list(n.keywords)) for nid, n in base.tree.nodes.items()}
    n_levels = base.tree.n_levels
    decided: dict[str, Any] = {"released": [], "still_withheld": {}}
    failures: list[dict[str, Any]] = []
    audit_stats, audit_scores = None, {}
    # withheld base clusters that were below the thresholds and now pass them
    candidates = []
    for c, at in leaf.items():
        if c == NOISE or at == c:
            continue
        old_idx = np.flatnonzero(base.base_labels == c)
        idx = np.flatnonzero(labels == c)
        passed_before = len(old_idx) >= min_conv and _distinct(users, old_idx, present) >= min_users
        passes_now = len(idx) >= min_conv and _distinct(users, idx, present) >= min_users
        if not passes_now or passed_before:  # one that passed before was withheld by the auditor: it stays
            continue
        owner = nodes[node_id(0, at)].parent
        if n_levels > 1 and (owner is None or nodes[owner].level != 1 or nodes[owner].status is Status.WITHHELD):
            decided["still_withheld"]["its category is withheld"] = \
                decided["still_withheld"].get("its category is withheld", 0) + 1
            continue
        candidates.append((c, owner))
    named: dict[int, Node] = {}
    if candidates:
        keep = {c for c, _ in candidates}
        method = base.config.get("naming") or "keywords"
        # a written name is asked only for the candidates; extractive and keyword names contrast with every cluster
        masked = np.array([c if c in keep else NOISE for c in labels]) if method == "llm" else labels
        names = label_clusters(summaries, X, masked, method=method, llm=ctx["model"], cache=ctx["store"],
                               prompts=ctx["prompts"], random_state=base.config.get("random_state", 0),
                               embedder=ctx["emb"], pii=ctx["detector"] or False, progress=ctx["progress"],
                               requests=ctx["requests"], users=list(users) if present else None,
                               min_word_users=min_users)
        failures += [{"id": None, "step": "naming", "reason": "(a withheld cluster)"} for f in names.failures
                     if int(f["id"]) in keep]
        for c, owner in candidates:
            if c not in names.labels or not names[c].name.strip():
                decided["still_withheld"]["no answers to name it from"] = \
                    decided["still_withheld"].get("no answers to name it from", 0) + 1
                continue
            lab = names[c]
            named[c] = Node(node_id(0, c), 0, c, lab.name, lab.description, 0, lab.method, owner, [],
                            list(lab.keywords))
        if named and base.config.get("audit"):
            new_nodes = {n.id: n for n in named.values()}
            if base.config.get("auditor") == "rules":  # as the run was audited (runs before the rules: the model)
                # a saved run keeps no conversation text: a word's writers are counted in the model's answers
                # (fewer than the run counted, so this withholds more, never less)
                audit = rule_audit(Hierarchy(new_nodes, labels), support_texts(None, summaries),
                                   list(users) if present else None, min_users=min_users,
                                   min_score=base.config.get("min_audit_score", 3), detector=ctx["detector"] or False)
            else:
                audit = audit_clusters(Hierarchy(new_nodes, np.array([], int)),
                                       min_score=base.config.get("min_audit_score", 3), llm=ctx["model"],
                                       cache=ctx["store"], prompts=ctx["prompts"],
                                       random_state=base.config.get("random_state", 0), embedder=ctx["emb"],
                                       progress=ctx["progress"])
            audit_stats, audit_scores = audit.stats, audit.scores
            for nid, reason in audit.withheld().items():
                c = named.pop(int(nid.split(".", 1)[1])).index
                decided["still_withheld"][reason] = decided["still_withheld"].get(reason, 0) + 1
                failures += [{"id": None, "step": "privacy_audit", "reason": "no valid rating (the cluster was withheld)"}
                             for f in audit.failures if f["id"] == nid]
    for c, node in named.items():
        nodes[node.id] = node
        leaf[c] = c
        decided["released"].append({"id": node.id, "name": node.name})
    # unclustered new conversations need an "Unclustered" leaf (and its chain up the levels)
    if (labels[old_n:] == NOISE).any() and node_id(0, NOISE) not in nodes:
        for lvl in range(n_levels):
            nodes[node_id(lvl, NOISE)] = Node(node_id(lvl, NOISE), lvl, NOISE, UNCLUSTERED, "", 0, "fixed",
                                              node_id(lvl + 1, NOISE) if lvl + 1 < n_levels else None)
    leaf[NOISE] = NOISE
    new_base = np.array([leaf[int(c)] for c in labels], dtype=int)
    # sizes bottom up; pools left empty (every member released) go, and so do parents left with no children
    for lvl in range(n_levels):
        for n in nodes.values():
            n.children = []
        for n in nodes.values():
            if n.parent is not None:
                nodes[n.parent].children.append(n.id)
        for nid in [nid for nid, n in nodes.items() if n.level == lvl]:
            n = nodes[nid]
            n.size = int((new_base == n.index).sum()) if lvl == 0 else sum(nodes[ch].size for ch in n.children)
            if n.size == 0:
                del nodes[nid]
    for n in nodes.values():
        n.children = [c for c in n.children if c in nodes]
    tree = Hierarchy(nodes, new_base, failures=base.tree.failures, stats=base.tree.stats, pii=base.tree.pii,
                     config=dict(base.tree.config))
    tree.check()
    return tree, decided, failures, audit_stats, audit_scores


def _clusters_frame(tree: Hierarchy, old: Any, X: np.ndarray, summaries: list[str | None], users: np.ndarray,
                    present: bool, audit_scores: dict[str, Any]) -> Any:
    """One row per cluster per level, as :func:`clio_lab.results.clusters_frame` makes it."""
    from .naming import central_texts

    df = tree.to_frame()
    n_users, central = [], []
    for lvl in range(tree.n_levels):
        at = tree.labels_at(lvl)
        for node in tree.level(lvl):
            idx = np.flatnonzero(at == node.index)
            n_users.append(_distinct(users, idx, True) if present else None)
            central.append(central_texts(idx, X, summaries, 3) if node.shows_text else [])
    df["n_users"] = n_users
    df["central_summaries"] = central
    before = old.set_index("id") if "id" in old else None
    for col in ("privacy_score", "privacy_reason"):
        vals = []
        for nid in df["id"]:
            if nid in audit_scores:
                s = audit_scores[nid]
                vals.append(s.score if col == "privacy_score" else s.reason)
            elif before is not None and nid in before.index and col in before:
                v = before.at[nid, col]
                vals.append(None if v is None or (isinstance(v, float) and np.isnan(v)) else v)
            else:
                vals.append(None)
        df[col] = vals
    return df


def _stats(old: dict[str, Any], tree: Hierarchy, frame: Any, failures: list[dict[str, Any]],
           timings: dict[str, float], fac: Any, audit_stats: Any, got: Assignment, config: dict[str, Any]):
    from collections import Counter

    from .llm.client import CallStats

    steps = {k: v for k, v in (("extend: facets", fac.stats if fac else None),
                                ("extend: privacy_audit", audit_stats)) if v is not None}
    added = CallStats()
    for s in steps.values():
        added.add(s)
    tokens = old.get("tokens") or {"prompt": 0, "completion": 0}
    return {**old,
            "conversations": len(frame),
            "llm_calls": old.get("llm_calls", 0) + added.calls,
            "llm_cache_hits": old.get("llm_cache_hits", 0) + added.cache_hits,
            "cache_hits": old.get("cache_hits", 0) + added.cache_hits,
            "failed_items": len(failures),
            "failures_by_step": dict(Counter(f["step"] for f in failures)),
            "tokens": {"prompt": tokens["prompt"] + added.prompt_tokens,
                       "completion": tokens["completion"] + added.completion_tokens},
            "llm_by_step": {**(old.get("llm_by_step") or {}), **{k: v.as_dict() for k, v in steps.items()}},
            "seconds": {**(old.get("seconds") or {}), **{k: round(v, 3) for k, v in timings.items()}},
            "unclustered": int((tree.base_labels == NOISE).sum()),
            "clusters_per_level": [sum(1 for n in tree.level(lvl) if n.index >= 0) for lvl in range(tree.n_levels)],
            "named_by": dict(Counter(n.method for n in tree.nodes.values() if n.shows_text)),
            "nodes_by_status": dict(Counter(n.status.value for n in tree.nodes.values())),
            "extended": config["extended"], "config": config}


def _privacy(old: dict[str, Any], tree: Hierarchy, decided: dict[str, Any], fac: Any) -> dict[str, Any]:
    from .results import _stage

    withheld = dict(old.get("withheld") or {})
    withheld["conversations"] = int(tree.withheld_members().sum())
    per_level = dict(withheld.get("clusters_per_level") or {})
    if per_level.get("0") is not None:
        per_level["0"] = max(0, int(per_level["0"]) - len(decided["released"]))
    withheld["clusters_per_level"] = per_level
    stages = dict(old.get("stages") or {})
    if fac is not None:
        stages["extend_facet_answers"] = _stage(*fac.pii.values())
    return {**old, "withheld": withheld, "stages": stages,
            "extended": {"released": len(decided["released"]), "still_withheld": decided["still_withheld"]}}
