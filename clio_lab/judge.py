"""LLM-judge checks of a hierarchy (as open-clio evaluates one), each with a control that says whether the judge
can tell at all.

For a sample of conversations (their summaries) and the clusters at one level:

- ``fit``: does the item belong in its own cluster? Control: the same question about a random other cluster.
- ``best``: shown its cluster among the nearest others (letters shuffled), does the judge pick its own?
  Chance is 1 / the number of candidates.
- ``exclusive``: it fits its own cluster and not the nearest other one.
- ``distinct``: are a cluster and its nearest neighbour about different things? Control: a cluster against
  itself, which should be called the same.
- ``placement`` (trees with more than one level): does each cluster belong in its parent category? Control:
  a random other category. The paper's manual review found 97% of placements accurate.

A judge that says Yes to everything scores 100% on ``fit`` and ``placement``; only the gap to the control
(``control_rate``) is evidence. With the bundled 270M base model the gap is small (measured in the validation
notebook); use a hosted model (``llm="anthropic/..."``) for figures worth reporting.
Prompts: ``prompts/judge_fit.j2``, ``judge_best.j2``, ``judge_distinct.j2`` with worked examples beside them.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cache import CacheLike, resolve_cache
from .hierarchy import Hierarchy, Node
from .llm.client import LLM, CallStats, LLMTask, ParseError, resolve_llm
from .llm.prompts import PromptLibrary, resolve_prompts

STEP_VERSION = 1
CHECKS = ("fit", "best", "exclusive", "distinct", "placement")


@dataclass
class JudgeReport:
    """Every ask (``asks``: check, item, cluster, verdict, control) and the model's costs."""

    asks: list[dict[str, Any]]
    stats: CallStats = field(default_factory=CallStats)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.asks, columns=["check", "item", "cluster", "verdict", "control", "error"])

    def summary(self):
        """One row per check: ``rate`` (share judged good), ``control_rate`` (the same on the control asks),
        ``n``, ``failed`` (answers that could not be read; left out of the rates) and ``chance`` for ``best``."""
        import pandas as pd

        df = self.to_frame()
        rows = []
        for check in CHECKS:
            part = df[df["check"] == check]
            if part.empty:
                continue
            read = part[part["verdict"].notna()]
            real, ctrl = read[~read["control"]], read[read["control"]]
            rows.append({"check": check, "rate": _mean(real["verdict"]), "n": len(real),
                         "control_rate": _mean(ctrl["verdict"]), "control_n": len(ctrl),
                         "failed": int(part["verdict"].isna().sum()),
                         "chance": self._chance() if check == "best" else None})
        return pd.DataFrame(rows)

    def _chance(self) -> float | None:
        sizes = [a["candidates"] for a in self.asks if a["check"] == "best" and a.get("candidates")]
        return round(float(np.mean([1 / s for s in sizes])), 3) if sizes else None


def _mean(values) -> float | None:
    return round(float(np.mean(values.astype(float))), 3) if len(values) else None


def _group(node: Node) -> dict[str, str]:
    return {"name": node.name, "description": node.description}


def parse_yes_no(raw: str) -> bool:
    """``Yes`` / ``No`` (or ``Different`` / ``Same``) at the start of an answer.

    Example:
        >>> parse_yes_no(" Yes\\n"), parse_yes_no("**No**, it is about cooking")
        (True, False)
    """
    match = re.match(r"[\s*\"']*(yes|no|different|same)\b", raw.strip(), flags=re.I)
    if not match:
        raise ParseError(f"no Yes or No at the start of {raw.strip()[:80]!r}")
    return match.group(1).lower() in ("yes", "different")


class _Judge:
    def __init__(self, llm: LLM, lib: PromptLibrary, random_state: int) -> None:
        self.llm, self.lib, self.random_state = llm, lib, random_state
        self.examples = {name: lib.examples(name, required=req) for name, req in (
            ("judge_fit", ("item", "group_name", "answer")), ("judge_best", ("item", "groups", "answer")),
            ("judge_distinct", ("a_name", "b_name", "answer")))}

    def _task(self, item_id: str, template: str, parse, prefill: str, **variables: Any) -> LLMTask:
        name = template.removesuffix(".j2")
        shown = self.examples[name]

        def render(attempt: int):
            # one fixed order first, so the local model's prefix cache serves every ask (shuffled per ask it
            # took 1.6 s a call on 2 cores); a re-ask sees the examples in another order
            order = list(shown)
            if attempt:
                random.Random(f"{self.random_state}:{item_id}:{attempt}").shuffle(order)
            return self.lib.render(template, prefill=prefill, examples=order, **variables)

        return LLMTask(item_id=item_id, prompt=render(0), parse=parse, max_tokens=8,
                       retry_prompt=lambda attempt, error: render(attempt),
                       key_parts={"step": name, "version": STEP_VERSION})  # judge_fit, judge_best, ..

    def fit(self, ask_id: str, item: str, group: Node) -> LLMTask:
        return self._task(ask_id, "judge_fit.j2", parse_yes_no, "Belongs:", item=item, group=_group(group))

    def best(self, ask_id: str, item: str, groups: list[Node]) -> LLMTask:
        letters = string.ascii_uppercase[:len(groups)]

        def parse(raw: str) -> str:
            match = re.match(r"[\s*\"'(]*([A-Z])\b", raw.strip())
            if not match or match.group(1) not in letters:
                raise ParseError(f"no letter among {letters} at the start of {raw.strip()[:80]!r}")
            return match.group(1)

        return self._task(ask_id, "judge_best.j2", parse, "Best group:", item=item,
                          groups=[{"letter": c, **_group(g)} for c, g in zip(letters, groups, strict=True)])

    def distinct(self, ask_id: str, a: Node, b: Node) -> LLMTask:
        return self._task(ask_id, "judge_distinct.j2", parse_yes_no, "Answer:", a=_group(a), b=_group(b))


def _embed_texts(texts: list[str], embedder: Any, store: Any) -> np.ndarray:
    from .embeddings import embed, get_embedder

    return embed(texts, get_embedder(embedder), cache=store)


def judge_hierarchy(
    tree: Hierarchy,
    texts: Sequence[str | None],
    *,
    level: int = 0,
    n_items: int = 40,
    n_candidates: int = 4,
    n_pairs: int = 20,
    llm: LLM | str | None = None,
    cache: CacheLike | str = "default",
    prompts: PromptLibrary | str | None = None,
    embedder: Any = None,
    random_state: int = 0,
    progress: bool = True,
) -> JudgeReport:
    """Ask a model to check the clusters of one ``level`` of ``tree`` (and every parent placement), with
    controls. ``texts``: one per conversation, aligned with ``tree.base_labels`` (e.g. the ``request`` facet's
    answers); items are drawn from conversations with a text in clusters the run shows.

    Example:
        >>> report = judge_hierarchy(result.hierarchy, result.facets.values["request"], n_items=30)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
    """
    texts = list(texts)
    if len(texts) != len(tree.base_labels):
        raise ValueError(f"texts ({len(texts)}) must align with the tree's conversations ({len(tree.base_labels)})")
    if not 0 <= level < tree.n_levels:
        raise ValueError(f"level must be between 0 and {tree.n_levels - 1}, not {level}")
    model = resolve_llm(llm)
    lib = resolve_prompts(prompts)
    judge, store, rng = _Judge(model, lib, random_state), resolve_cache(cache), random.Random(random_state)
    shown = [n for n in tree.level(level) if n.index >= 0 and n.shows_model_text]
    if len(shown) < 2:
        raise ValueError(f"level {level} has {len(shown)} shown clusters; the checks need at least two")
    by_index = {n.index: n for n in shown}
    labels = tree.labels_at(level)
    pool = [i for i, (c, t) in enumerate(zip(labels.tolist(), texts, strict=True)) if c in by_index and t]
    items = sorted(rng.sample(pool, min(n_items, len(pool))))
    G = _embed_texts([f"{n.name}. {n.description}" for n in shown], embedder, store)
    Q = _embed_texts([texts[i] for i in items], embedder, store) if items else np.zeros((0, G.shape[1]))
    tasks: list[tuple[dict[str, Any], LLMTask]] = []
    for i, q in zip(items, Q, strict=True):
        own = by_index[int(labels[i])]
        others = [shown[j] for j in np.argsort(-(G @ q), kind="stable") if shown[j].id != own.id]
        rand = rng.choice(others)
        cands = [own, *others[:n_candidates - 1]]
        rng.shuffle(cands)
        item = f"conv {i}"
        tasks += [({"check": "fit", "item": item, "cluster": own.id, "control": False}, judge.fit(f"{i}:own", texts[i], own)),
                  ({"check": "fit", "item": item, "cluster": rand.id, "control": True},
                   judge.fit(f"{i}:{rand.id}", texts[i], rand)),
                  ({"check": "exclusive", "item": item, "cluster": others[0].id, "control": False},
                   judge.fit(f"{i}:{others[0].id}", texts[i], others[0])),
                  ({"check": "best", "item": item, "cluster": own.id, "control": False, "candidates": len(cands),
                    "letter": string.ascii_uppercase[cands.index(own)]}, judge.best(f"{i}:best", texts[i], cands))]
    S = G @ G.T
    np.fill_diagonal(S, -np.inf)
    pairs = sorted({tuple(sorted((a, int(np.argmax(S[a]))))) for a in range(len(shown))},
                   key=lambda p: -S[p[0], p[1]])[:n_pairs]
    for a, b in pairs:
        tasks += [({"check": "distinct", "item": shown[a].id, "cluster": shown[b].id, "control": False},
                   judge.distinct(f"{shown[a].id}~{shown[b].id}", shown[a], shown[b])),
                  ({"check": "distinct", "item": shown[a].id, "cluster": shown[a].id, "control": True},
                   judge.distinct(f"{shown[a].id}~self", shown[a], shown[a]))]
    tasks += _placement_tasks(tree, judge, rng)
    outcomes, stats = model.run([t for _, t in tasks], cache=store, desc="judge", progress=progress)
    return JudgeReport(_verdicts(tasks, outcomes), stats)


def _placement_tasks(tree: Hierarchy, judge: _Judge, rng: random.Random) -> list[tuple[dict[str, Any], LLMTask]]:
    out = []
    for lvl in range(tree.n_levels - 1):
        parents = [n for n in tree.level(lvl + 1) if n.index >= 0 and n.shows_model_text]
        for node in tree.level(lvl):
            parent = tree.nodes.get(node.parent or "")
            if parent not in parents or not node.shows_model_text:
                continue
            text = f"{node.name}: {node.description}"
            out.append(({"check": "placement", "item": node.id, "cluster": parent.id, "control": False},
                        judge.fit(f"{node.id}^{parent.id}", text, parent)))
            others = [p for p in parents if p.id != parent.id]
            if others:
                other = rng.choice(others)
                out.append(({"check": "placement", "item": node.id, "cluster": other.id, "control": True},
                            judge.fit(f"{node.id}^{other.id}", text, other)))
    return out


def _verdicts(tasks: list[tuple[dict[str, Any], LLMTask]], outcomes: list[Any]) -> list[dict[str, Any]]:
    """Turn answers into verdicts: ``True`` = judged good (for ``exclusive``, the nearest other cluster was
    judged *not* to fit: combined with the item's own ``fit`` below); ``None`` = no readable answer."""
    asks = []
    own_fit = {}
    for meta, outcome in zip((m for m, _ in tasks), outcomes, strict=True):
        ask = {**meta, "verdict": None, "error": None if outcome.ok else outcome.error}
        if outcome.ok:
            if meta["check"] == "best":
                ask["verdict"] = outcome.value == meta["letter"]
            elif meta["check"] == "exclusive":
                ask["verdict"] = not outcome.value
            else:
                ask["verdict"] = bool(outcome.value)
        if meta["check"] == "fit" and not meta["control"]:
            own_fit[meta["item"]] = ask["verdict"]
        asks.append(ask)
    for ask in asks:  # fits only one: its own cluster, and not the nearest other
        if ask["check"] == "exclusive" and ask["verdict"] is not None:
            fits_own = own_fit.get(ask["item"])
            ask["verdict"] = None if fits_own is None else bool(fits_own and ask["verdict"])
    return asks
