"""Where the per-item work runs: in this process (the default), or as Ray Data batch jobs on a Ray cluster.

The steps that do one piece of work per conversation are the ones that outgrow a machine: the model calls
(facets, each answer checked for personal details where it is written), the embeddings, and the redaction of
every message before any model sees it. With ``engine=RayEngine(...)`` (or ``"ray"``) those run as
``map_batches`` jobs of `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_ over the cluster's CPUs;
every other step (clustering, naming, the tree, the audit) stays here, where its few calls and its arrays are.

This process keeps the cache. It sends the cluster only the items the cache does not hold, and writes each
batch's answers under the same keys a run on this machine would, as the batches come back. So a run can move
between one machine and a cluster in both directions, a stopped run loses only the batches in flight, and the
results are those of the same run here (the tests compare them). Nodes need clio_lab (the same version) and
its extras installed; they need no shared folder, and no cache of their own. A worker that dies mid-batch is
restarted by Ray and its batch is asked again (Ray Data's actor pools retry by default).

Example:
    >>> from clio_lab import run_pipeline
    >>> from clio_lab.engine import RayEngine
    >>> result = run_pipeline("corpus.jsonl", llm="openai/gpt-4o-mini",
    ...                       engine=RayEngine("ray://head-node:10001"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Ray reports usage statistics to its makers unless told not to; nothing may reach the network at run time.
OFFLINE_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
CLIENT_CONNECT_TRIES = 3


class EngineError(RuntimeError):
    """The cluster could not be reached, or a batch could not be answered there."""


def _offline() -> None:
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)


@dataclass
class RayEngine:
    """Run the per-item steps as Ray Data batch jobs.

    Args:
        address: the cluster: ``"ray://host:10001"`` (Ray Client, from outside the cluster), ``"host:6379"`` or
            ``"auto"`` (a node of the cluster), or ``None``: ``RAY_ADDRESS`` or a cluster already running on
            this machine, else a new one here (on this machine's CPUs: useful for trying it out).
        batch_size: model calls per batch. A batch is the unit of retry: a worker that dies costs at most the
            batch it was answering.
        embed_batch_size: texts per embedding batch.
        concurrency: workers (Ray actors) per job; default one per CPU of the cluster.
        num_cpus: CPUs each worker reserves.
        init_kwargs: more keywords for ``ray.init`` (``runtime_env``, ``namespace``...).

    Each worker answers its batch with :func:`clio_lab.llm.runner.run_tasks` (the same retries, validation
    and re-asks as here, ``LLM.max_concurrency`` calls in flight per worker) and checks the answers for
    personal details itself.
    """

    address: str | None = None
    batch_size: int = 256
    embed_batch_size: int = 4096
    concurrency: int | None = None
    num_cpus: float = 1.0
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    def get_params(self) -> dict[str, Any]:
        """What a run records of its engine (no part of any cache key: the engine changes no answer)."""
        return {"engine": "ray", "address": self.address, "batch_size": self.batch_size,
                "embed_batch_size": self.embed_batch_size, "concurrency": self.concurrency, "num_cpus": self.num_cpus}

    # ------------------------------------------------------------------------------------------ the cluster
    def connect(self) -> Any:
        """Connect to the cluster (once per process) and return the ``ray`` module."""
        _offline()
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the Ray engine needs `pip install 'clio-lab[distributed]'` (ray[data])") from exc
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": True, "logging_level": "warning"}
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                kwargs["include_dashboard"] = False  # only a cluster started here can be told so
            # Ray Client's proxy sometimes fails to start the server it makes for a new client ("Starting Ray
            # client server failed", seen about once in four test runs); a second connection gets a fresh one
            tries = CLIENT_CONNECT_TRIES if str(self.address or "").startswith("ray://") else 1
            for attempt in range(tries):
                try:
                    ray.init(address=self.address, **kwargs, **self.init_kwargs)
                    break
                except Exception as exc:  # noqa: BLE001 - Ray raises several kinds for an unreachable cluster
                    if attempt + 1 < tries and "Starting Ray client server failed" in str(exc):
                        time.sleep(2.0 * (attempt + 1))
                        continue
                    raise EngineError(f"could not connect to the Ray cluster at "
                                      f"{self.address or 'RAY_ADDRESS/local'}: {exc}") from exc
        import logging

        from ray.data import DataContext

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no INFO lines per job; failures still show
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = os.environ.get("CLIO_LAB_PROGRESS") != "0"
        ctx.print_on_execution_start = False
        return ray

    def workers(self) -> int:
        """Workers per job: ``concurrency``, or one per ``num_cpus`` of the cluster's CPUs."""
        ray = self.connect()
        if self.concurrency is not None:
            return max(1, int(self.concurrency))
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.num_cpus))

    def _map(self, rows: list[dict[str, Any]], worker: type, args: dict[str, Any], n: int) -> Iterator[dict[str, Any]]:
        """Each row through ``worker`` (one actor per worker, built with ``args``), rows in any order.

        On the cluster (a driver on one of its nodes) the rows stream back as they are done. Through Ray Client
        (``ray://``), where Ray Data cannot run in the client and streaming results are not supported, the job
        runs inside a task on the cluster, a window of ``4 x workers`` rows at a time, and each window's rows
        come back (and are cached) when it is done."""
        ray = self.connect()
        if not ray.util.client.ray.is_connected():
            yield from _run_job(rows, worker, args, n, self.num_cpus, stream=True)
            return
        job = ray.remote(num_cpus=0)(_run_job)
        window = max(1, 4 * n)
        for start in range(0, len(rows), window):
            yield from ray.get(job.remote(rows[start:start + window], worker, args, n, self.num_cpus))

    # ------------------------------------------------------------------------------------------ the steps
    def answer(self, llm: Any, tasks: Sequence[Any]) -> Iterator[tuple[list[int], list[dict[str, Any]], Any]]:
        """Answer ``tasks`` (:class:`~clio_lab.llm.LLMTask`) on the cluster, a batch at a time as they finish:
        ``(positions in tasks, cache entries, CallStats)``. An entry is what a run here would cache for its
        task, or ``{"call_failed": reason}`` for a call that failed (never cached)."""
        from ray import cloudpickle

        from .llm.runner import CallStats

        size = max(1, int(self.batch_size))
        # one pickle per batch: what the batch's tasks share (worked examples, their embeddings, the prompt
        # library, the PII check's settings) travels once
        rows = [{"first": s, "tasks": cloudpickle.dumps(list(tasks[s:s + size]))}
                for s in range(0, len(tasks), size)]
        if not rows:
            return
        for row in self._map(rows, _AnswerWorker, {"llm_blob": cloudpickle.dumps(llm)}, self.workers()):
            entries = json.loads(row["entries"])
            stats = CallStats(**json.loads(row["stats"]))
            first = int(row["first"])
            yield list(range(first, first + len(entries))), entries, stats

    def encode(self, embedder: Any, texts: Sequence[str]) -> np.ndarray:
        """``embedder.encode(texts)`` in batches on the cluster, rows in the order of ``texts``."""
        from ray import cloudpickle

        size = max(1, int(self.embed_batch_size))
        rows = [{"first": s, "texts": json.dumps(list(texts[s:s + size]))} for s in range(0, len(texts), size)]
        parts: dict[int, np.ndarray] = {}
        for row in self._map(rows, _EncodeWorker, {"embedder_blob": cloudpickle.dumps(embedder)}, self.workers()):
            parts[int(row["first"])] = np.asarray(row["X"], dtype=np.float32)
        return np.concatenate([parts[s] for s in sorted(parts)]) if parts else np.zeros((0, 0), np.float32)

    def redact(self, detector: Any, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Each text's redaction by ``detector`` (:class:`~clio_lab.pii.PIIDetector`) on the cluster:
        ``{"kinds": [...], "text": redacted text or None}``, in the order of ``texts``."""
        from ray import cloudpickle

        size = max(1, int(self.batch_size) * 4)
        rows = [{"first": s, "texts": json.dumps(list(texts[s:s + size]))} for s in range(0, len(texts), size)]
        out: list[Any] = [None] * len(texts)
        for row in self._map(rows, _RedactWorker, {"detector_blob": cloudpickle.dumps(detector)}, self.workers()):
            for j, red in enumerate(json.loads(row["found"])):
                out[int(row["first"]) + j] = red
        return out


def _run_job(rows: list[dict[str, Any]], worker: type, args: dict[str, Any], n: int, num_cpus: float,
             stream: bool = False) -> Any:
    """One Ray Data job: the rows through an actor pool of ``n`` ``worker``s; a generator of the finished rows
    with ``stream``, else their list (the job run as a task on the cluster, for Ray Client)."""
    import ray
    from ray.data import ActorPoolStrategy

    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        worker, fn_constructor_kwargs=args, batch_size=1, batch_format="numpy",
        compute=ActorPoolStrategy(size=min(n, len(rows))), num_cpus=num_cpus)
    done = ({k: v[0] for k, v in batch.items()}
            for batch in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0))
    return done if stream else list(done)


# ---------------------------------------------------------------------------------------------- the workers
# Ray Data builds one of each per actor (the model client, the embedder, the spaCy pipeline load once) and calls
# it with one row: a batch of work.

class _AnswerWorker:
    def __init__(self, llm_blob: bytes):
        from ray import cloudpickle

        os.environ["CLIO_LAB_PROGRESS"] = "0"
        self.llm = cloudpickle.loads(llm_blob)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ray import cloudpickle

        from .cache import MemoryCache
        from .llm.runner import run_sync, run_tasks

        tasks = cloudpickle.loads(batch["tasks"][0])
        store = MemoryCache()
        outcomes, stats = run_sync(run_tasks(self.llm, tasks, cache=store, progress=False))
        entries = [store.get(self.llm.task_key(t)) or {"call_failed": o.error}
                   for t, o in zip(tasks, outcomes, strict=True)]
        return {"first": batch["first"], "entries": np.array([json.dumps(entries)], dtype=object),
                "stats": np.array([json.dumps(stats.as_dict())], dtype=object)}


class _EncodeWorker:
    def __init__(self, embedder_blob: bytes):
        from ray import cloudpickle

        self.embedder = cloudpickle.loads(embedder_blob)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        X = np.asarray(self.embedder.encode(json.loads(batch["texts"][0])), dtype=np.float32)
        return {"first": batch["first"], "X": X[None, ...]}


class _RedactWorker:
    def __init__(self, detector_blob: bytes):
        from ray import cloudpickle

        self.detector = cloudpickle.loads(detector_blob)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .pii_checks import redaction_entries

        found = redaction_entries(self.detector, json.loads(batch["texts"][0]))
        return {"first": batch["first"], "found": np.array([json.dumps(found)], dtype=object)}


def resolve_engine(engine: Any) -> Any:
    """``None`` or ``"local"``: this process; ``"ray"``: a :class:`RayEngine` on ``RAY_ADDRESS`` (or a cluster
    started here); ``"ray://..."`` or ``"host:port"``: a :class:`RayEngine` at that address; ``"batch"``: the
    provider's batch API (:class:`~clio_lab.llm.batches.BatchAPIEngine`); an engine object as given.

    An engine answers model tasks (``answer``); one that can also embed and redact (``encode``, ``redact``)
    does those too, and the others run here."""
    if engine is None or engine == "local":
        return None
    if isinstance(engine, str):
        if engine == "ray":
            return RayEngine()
        if engine == "batch":
            from .llm.batches import BatchAPIEngine

            return BatchAPIEngine()
        if engine.startswith("ray://") or ":" in engine or engine == "auto":
            return RayEngine(address=engine)
    elif hasattr(engine, "answer"):
        return engine
    raise ValueError(f"engine must be 'local', 'ray', a Ray address ('ray://host:10001'), 'batch', a RayEngine "
                     f"or a BatchAPIEngine, not {engine!r}")


def can(engine: Any, work: str) -> bool:
    """Whether ``engine`` does ``work`` (``"encode"``, ``"redact"``) itself; if not, it runs here."""
    return engine is not None and callable(getattr(engine, work, None))
