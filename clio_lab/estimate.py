"""A preflight for hosted runs: the calls, tokens and cost of each model step, before any call is made.

:func:`estimate` renders the prompts the run would send and counts them with LiteLLM's token counter for the
chosen model; the cost comes from LiteLLM's price table (``litellm.cost_per_token``, the table that ships
with the package: nothing is fetched). What each step's prompts hold is known in advance for the first
steps and only in size for the later ones:

- **screen** and **facets**: the exact prompts (the same :class:`~clio_lab.llm.LLMTask` objects the run
  sends, :func:`clio_lab.facets.facet_tasks`), and the answers the cache already holds, counted by their keys.
  Above ``sample`` uncached prompts, a seeded random sample of them is counted and the mean scaled up.
- **naming**, **hierarchy** (the paper's steps a-f) and the **privacy audit** depend on clusters that do not
  exist yet: their calls follow from ``k`` and the level sizes, and their prompts are rendered from the real
  templates and worked examples, filled with as many example summaries and names as the run would show.
  The audit is counted for the clusters expected to pass the thresholds (:func:`expected_passing`).

Completion tokens are the worked examples' answers of each step, counted the same way (capped at the step's
``max_tokens``). Re-asks (an answer that fails validation or holds personal details is asked again) are
counted where the cache already holds answers of the same facet tasks, at the rate those answers had: run a
pilot of a few hundred conversations first and the estimate of the rest includes the model's own re-ask rate.
Otherwise they are not counted, nor are the later steps' re-asks or the auditor's second ask of a low rating
(``Estimate.notes`` says so). ``benchmarks/estimate.py`` checks the
estimate against the tokens of a real run.

Example:
    >>> est = estimate("datasets/clio_demo.jsonl", llm="openai/gpt-4o-mini")  # doctest: +SKIP
    >>> print(est.table())  # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import CacheLike, resolve_cache
from .clustering import default_k
from .llm.client import LLM, resolve_llm
from .llm.prompts import Prompt, PromptLibrary, resolve_prompts
from .records import Conversation

TokenCounter = Callable[[LLM, Prompt], int]


class CostAboveLimit(RuntimeError):
    """The estimated cost of a run is above the limit the user set (``max_cost``); nothing was called."""

    def __init__(self, est: Estimate, limit: float) -> None:
        self.estimate, self.limit = est, limit
        cost = "unknown (the model is not in LiteLLM's price table)" if est.cost_usd is None else f"${est.cost_usd:,.4f}"
        super().__init__(f"the estimated cost of this run is {cost}, above max_cost=${limit:,.4f}; nothing was "
                         "sent. Raise the limit, or run with max_cost=None to go on.\n" + est.table())


@dataclass
class StepEstimate:
    """One model step: calls it will make (``cached`` of them already answered), tokens and cost."""

    step: str
    calls: int
    cached: int | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    note: str = ""
    reasks_per_item: float | None = None  # measured from the cache's answers; None where nothing tells

    @property
    def to_send(self) -> int:
        """First asks still to make (the re-asks are in the tokens, not here)."""
        return self.calls - (self.cached or 0)


@dataclass
class Estimate:
    """What a run would send, step by step (:func:`estimate`)."""

    model: str
    conversations: int
    steps: list[StepEstimate]
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(s.calls - (s.cached or 0) for s in self.steps)

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    @property
    def cost_usd(self) -> float | None:
        costs = [s.cost_usd for s in self.steps]
        return None if any(c is None for c in costs) else float(sum(costs))

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "conversations": self.conversations, "calls": self.calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd, "steps": [asdict(s) for s in self.steps], "notes": list(self.notes)}

    def table(self) -> str:
        def money(v: float | None) -> str:
            return "unknown" if v is None else f"{v:,.4f}"

        rows = [("step", "calls", "cached", "prompt tokens", "completion tokens", "cost (USD)")]
        for s in self.steps:
            rows.append((s.step, f"{s.calls:,}", "-" if s.cached is None else f"{s.cached:,}", f"{s.prompt_tokens:,}",
                         f"{s.completion_tokens:,}", money(s.cost_usd)))
        rows.append(("total (to send)", f"{self.calls:,}", "", f"{self.prompt_tokens:,}",
                     f"{self.completion_tokens:,}", money(self.cost_usd)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"Estimate for {self.model} on {self.conversations:,} conversations (before any call):"]
        for j, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
            if j == 0 or j == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"  {s.step}: {s.note}" for s in self.steps if s.note]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def litellm_tokens(model: LLM, prompt: Prompt) -> int:
    """Tokens of the messages ``model`` would send for ``prompt``, by LiteLLM's counter for that model (its
    own tokenizer where LiteLLM has one, tiktoken's otherwise)."""
    import litellm

    return int(litellm.token_counter(model=model.model, messages=model.messages(prompt)))


def _text_tokens(model: LLM, text: str, counter: TokenCounter) -> int:
    return counter(model, Prompt(body=text, prefill="", template_name="", template_sha256="", stop=()))


def price(model: LLM, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD from LiteLLM's price table; 0 for the in-process local model; ``None`` for a model not in it."""
    if model.is_local:
        return 0.0
    if prompt_tokens == 0 and completion_tokens == 0:
        return 0.0
    import litellm

    try:
        cin, cout = litellm.cost_per_token(model=model.model, prompt_tokens=prompt_tokens,
                                           completion_tokens=completion_tokens)
    except Exception:  # noqa: BLE001 - LiteLLM raises many kinds for models missing from its price table
        return None
    return float(cin) + float(cout)


def _tasks_step(name: str, tasks: list[Any], model: LLM, store: Any, counter: TokenCounter, completion: int,
                sample: int, rng: random.Random) -> StepEstimate:
    """Exact prompts: cached ones counted by key, the rest's tokens counted (a sample of them above ``sample``)."""
    from .llm.runner import plan_tasks

    hits, pending, repeated = plan_tasks(model, tasks, store)  # as the run will answer them
    todo = [t for _, t, _ in pending]
    cached, repeats = len(hits), len(repeated)
    reasks = sum(len(hit.get("attempt_errors") or []) for hit in hits.values())
    shown = todo if len(todo) <= sample else rng.sample(todo, sample)
    counted = [counter(model, t.prompt) for t in shown]
    # the cached answers of these very tasks say how often this model's answers were re-asked: the rest
    # will be re-asked as often (a re-ask repeats the prompt with other worked examples or another seed)
    rate = reasks / cached if cached and todo else 0.0
    prompt_tokens = round(sum(counted) / len(counted) * len(todo) * (1 + rate)) if counted else 0
    completion_tokens = round(min(completion, max(t.max_tokens for t in tasks)) * len(todo) * (1 + rate)) if tasks else 0
    notes = []
    if len(shown) < len(todo):
        notes.append(f"prompt tokens of {len(shown):,} sampled prompts, scaled")
    if rate:
        notes.append(f"with {rate:.2f} re-asks per answer, as the {cached:,} cached answers had")
    if repeats:
        notes.append(f"{repeats:,} repeat another's prompt exactly and are answered with it (counted as cached)")
    note = "; ".join(notes)
    return StepEstimate(name, len(tasks), cached + repeats, prompt_tokens, completion_tokens,
                        price(model, prompt_tokens, completion_tokens), note, round(rate, 3))


def _model_step(name: str, calls: int, prompt: Prompt | None, completion: int, model: LLM, counter: TokenCounter,
                note: str = "") -> StepEstimate:
    """A later step: ``calls`` prompts like ``prompt`` (rendered with example fill-ins of the run's sizes)."""
    per = counter(model, prompt) if prompt is not None and calls else 0
    p, c = per * calls, completion * calls
    return StepEstimate(name, calls, None, p, c, price(model, p, c), note)


def expected_passing(n: int, level_counts: Sequence[int], min_conversations: int | None) -> int:
    """How many clusters of all levels are expected to hold at least ``min_conversations`` conversations (and so
    be audited), before any clustering: each level's sizes taken as gamma-distributed with shape 2 around its
    mean ``n / count``, so a share ``exp(-2t/mean) (1 + 2t/mean)`` passes (t = ``min_conversations``). k-means
    sizes are less skewed than exponential ones, more so since languages are centred: on the bundled corpus's
    first 60, 120 and 200 conversations (fake model, summaries and text) the runs audited 5, 4, 11, 9, 12 and 15
    clusters; shape 2 expected 4, 4, 8, 8, 12, 12 (mean error 1.3), the exponential 4, 4, 7, 7, 11, 11 (2.0)."""
    if not min_conversations:
        return int(sum(level_counts))
    return round(sum(c * math.exp(-2 * min_conversations / (n / c)) * (1 + 2 * min_conversations / (n / c))
                     for c in level_counts if c))


def _cycle(items: Sequence[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(n)] if items else []


def _answer_tokens(model: LLM, texts: Sequence[str], counter: TokenCounter, cap: int) -> int:
    if not texts:
        return cap
    return min(cap, round(sum(_text_tokens(model, t, counter) for t in texts) / len(texts)))


def estimate(
    conversations: Sequence[Conversation] | str | Path,
    *,
    llm: LLM | str | None = None,
    facets: Sequence[Any] = ("request",),
    examples: str = "nearest",
    prompts: PromptLibrary | str | None = None,
    embedder: Any = "auto",
    cache: CacheLike | str = "default",
    method: str = "kmeans",
    k: int | None = None,
    naming: str | None = "auto",
    hierarchy: str | None | bool = True,
    levels: Sequence[int] | None = None,
    top: int | None = None,
    audit: bool | str = "auto",
    screen: str | None = None,
    pii: Any = "auto",
    min_conversations: int | None = 10,
    count_tokens: TokenCounter | None = None,
    sample: int = 2000,
    random_state: int = 0,
) -> Estimate:
    """The calls, tokens and cost in USD of each model step of :func:`~clio_lab.run_pipeline` with these
    settings, and how many answers the cache already holds; nothing is sent to the model.

    Args:
        conversations, llm, facets, examples, prompts, embedder, cache, method, k, naming, hierarchy, levels,
            top, audit, screen, pii, min_conversations: as for :func:`~clio_lab.run_pipeline` (``pii`` changes
            the facet tasks' cache keys, so it is needed to find cached answers).
        count_tokens: ``f(llm, prompt) -> tokens`` (default: LiteLLM's counter for the model).
        sample: above this many uncached prompts per facet, a seeded random sample of them is counted.

    Returns:
        :class:`Estimate`; ``print(est)`` shows the table, ``est.cost_usd`` is ``None`` when the model is
        not in LiteLLM's price table.
    """
    from .facets import facet_tasks, resolve_specs
    from .hierarchy import check_levels, level_sizes
    from .hierarchy_llm import NEIGHBOURHOOD_SIZE
    from .languages import resolve_embedder
    from .naming import resolve_method
    from .pii import resolve_detector
    from .pipeline import _load

    convs, _ = _load(conversations)
    embedder = resolve_embedder(embedder, convs)[0]  # "auto": as run_pipeline chooses (worked examples are picked by it)
    model = resolve_llm(llm)
    lib = resolve_prompts(prompts)
    store = resolve_cache(cache)
    counter = count_tokens or litellm_tokens
    rng = random.Random(random_state)
    n = len(convs)
    steps: list[StepEstimate] = []
    notes = ["re-asks of answers that fail validation or hold personal details are counted only where the cache "
             "holds answers of the same step to measure them by (each repeats its prompt; at most "
             f"{model.parse_retries} per item); the later steps' re-asks and the auditor's second ask of a low "
             "rating are not counted"]

    if screen:
        from .screening import _task

        if not model.is_local:  # screen(method="auto") asks hosted models, and embeds with the local one
            ex = lib.examples("screen", required=("conversation", "question", "answer"))
            question = " ".join(str(screen).split())
            steps.append(_tasks_step("screen", [_task(c, question, lib, ex) for c in convs], model, store, counter,
                                     2, sample, rng))
            notes.append("the later steps are counted for every conversation, as if the screener kept them all")

    specs = resolve_specs(facets)
    detector = resolve_detector(pii)
    _, planned = facet_tasks(convs, specs, llm=model, cache=store, prompts=lib, examples=examples, embedder=embedder,
                             detector=detector)
    for spec, tasks in zip(specs, planned, strict=True):
        answers = [e["answer"] for e in lib.examples(spec.examples)] if spec.examples else []
        typical = _answer_tokens(model, answers, counter, spec.max_tokens)
        steps.append(_tasks_step(f"facet:{spec.name}", tasks, model, store, counter, typical, sample, rng))

    naming = resolve_method(naming, model)
    n_base = k or default_k(n)
    if method != "kmeans" and k is None:
        notes.append(f"{method} finds its own number of clusters: the later steps assume k = {n_base}, the "
                     "k-means default")
    ex_name = lib.examples("cluster_name", required=("inside", "outside", "description", "name"))
    pool = [s for e in ex_name for s in (*e["inside"], *e["outside"])]
    if naming == "llm":
        n_in, n_out = (12, 8) if model.is_local else (50, 50)
        prompt = lib.render("cluster_name.j2", prefill="Summary:", prefill_joiner="\n", examples=ex_name,
                            inside=_cycle(pool, min(n_in, max(1, n // n_base))), outside=_cycle(pool, n_out))
        answer = _answer_tokens(model, [f"{e['description']}\nName: {e['name']}" for e in ex_name], counter, 120)
        steps.append(_model_step("naming", n_base, prompt, answer, model, counter))

    tree_method = (naming if hierarchy is True else hierarchy or None) if naming else None
    sizes = (check_levels(levels, n_base) if levels is not None else level_sizes(n_base, top=top)) \
        if tree_method else []
    if tree_method == "llm":
        ex_prop = lib.examples("hierarchy_propose", required=("clusters", "low", "high", "categories"))
        ex_assign = lib.examples("hierarchy_assign", required=("categories", "name", "description", "answer"))
        ex_rename = lib.examples("hierarchy_rename", required=("children", "description", "name"))
        names = [e["name"] for e in ex_name]
        descs = [f"{e['name']}: {e['description']}" for e in ex_name]
        cats = [c for e in ex_prop for c in e["categories"]]
        n_nearby = 3 if model.is_local else 10
        shown = names if model.is_local else descs
        cat_tokens = _answer_tokens(model, cats, counter, 24) + 2
        rename_answer = _answer_tokens(model, [f"{e['description']}\nName: {e['name']}" for e in ex_rename],
                                       counter, 120)
        children = n_base
        for lvl, target in enumerate(sizes, 1):
            target = max(1, min(target, children - 1))
            hoods = math.ceil(children / NEIGHBOURHOOD_SIZE)
            per_hood = math.ceil(children / hoods)
            want = max(1, round(target / hoods))
            high = max(1, min(per_hood, math.ceil(1.5 * want)))
            low = max(1, math.ceil(0.5 * want))
            p = lib.render("hierarchy_propose.j2", prefill="Categories:\n-", prefill_joiner="\n", examples=ex_prop,
                           clusters=_cycle(shown, per_hood), nearby=_cycle(shown, n_nearby), low=low, high=high)
            steps.append(_model_step(f"hierarchy {lvl}: propose", hoods, p, cat_tokens * high, model, counter))
            if target > 1:
                a = lib.render("hierarchy_assign.j2", prefill="Best category:", examples=ex_assign,
                               categories=_cycle(cats, target), cluster_name=names[0],
                               cluster_description=ex_name[0]["description"])
                steps.append(_model_step(f"hierarchy {lvl}: assign", children, a, cat_tokens, model, counter))
            r = lib.render("hierarchy_rename.j2", prefill="Summary:", prefill_joiner="\n", examples=ex_rename,
                           children=_cycle(descs, min(12 if model.is_local else 40, math.ceil(children / target))),
                           nearby=_cycle(descs, n_nearby))
            steps.append(_model_step(f"hierarchy {lvl}: rename", target, r, rename_answer, model, counter,
                                     "at most: a parent that no cluster chose is not named" if lvl == 1 else ""))
            children = target

    from .auditor import audit_off_reason, resolve_auditor

    audited = audit_off_reason(audit, naming) is None and \
        resolve_auditor(audit, model) == "model"  # the rules make no model call
    if audited:
        from .auditor import N_EXAMPLES

        ex_audit = lib.examples("privacy_audit", required=("name", "description", "reason", "score"))
        p = lib.render("privacy_audit.j2", prefill="Rating:", prefill_joiner="\n", examples=ex_audit[:N_EXAMPLES],
                       group_name=ex_name[0]["name"], group_description=ex_name[0]["description"])
        answer = _answer_tokens(model, [f"{e['score']}\nReason: {e['reason']}" for e in ex_audit], counter, 80)
        nodes = n_base + sum(sizes)
        expected = expected_passing(n, [n_base, *sizes], min_conversations)
        steps.append(_model_step("privacy audit", expected, p, answer, model, counter,
                                 f"expected: the clusters that pass the thresholds (at most {nodes})"))
    if steps and model.is_local:
        notes.append("the in-process local model costs nothing; its calls take about a second each on 2 cores")
    elif any(s.cost_usd is None for s in steps):
        notes.append(f"{model.model} is not in LiteLLM's price table: the cost is unknown")
    return Estimate(model=model.model, conversations=n, steps=steps, notes=notes)
