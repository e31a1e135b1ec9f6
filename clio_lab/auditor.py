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

import random
import re
from collections.abc import Iterable
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
    """Scores per node id, the minimum acceptable score, failures and the model's costs."""

    scores: dict[str, AuditScore]
    min_score: int = DEFAULT_MIN_SCORE
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)

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
            scores[nid] = AuditScore(nid, None, "fixed name, no model-written text", "not audited")
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
