"""``report.html``: a self-contained page that opens offline (Vega is inlined, nothing from a CDN).

It shows what a run found and what it cost. Raw conversation text is never written here; only facet
answers (written by the model under Clio's privacy instructions) and counts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import PipelineResult

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
td, th { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; vertical-align: top; }
.kpi { display: inline-block; margin: 0 1.5rem 1rem 0; } .kpi b { display: block; font-size: 1.4rem; }
.muted { color: #777; font-size: 0.85rem; }
.node { margin-left: 1.4rem; } details { margin: 2px 0; } summary { cursor: pointer; }
"""


def _kpis(stats: dict) -> str:
    items = [("conversations", stats["conversations"]), ("clusters", stats["clusters"]),
             ("LLM calls", stats["llm_calls"]), ("cache hits", stats["cache_hits"]),
             ("failed items", stats["failed_items"]),
             ("run seconds", round(sum(stats["seconds"].values()), 1))]
    return "".join(f'<div class="kpi"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>' for k, v in items)


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
    df["example"] = df["central_summaries"].map(lambda s: s[0] if len(s) else "")
    return (
        alt.Chart(df[["id", "name", "size", "category", "example"]])
        .mark_bar()
        .encode(x=alt.X("name:N", sort="-y", title="base cluster", axis=alt.Axis(labelLimit=180)),
                y=alt.Y("size:Q", title="conversations"),
                color=alt.Color("category:N", title="top-level category", legend=alt.Legend(labelLimit=260)),
                tooltip=["name", "size", "category", "example"])
        .properties(width=900, height=220, title="Base cluster sizes")
    )


def _score(row) -> str:
    score = row.get("privacy_score")
    if score is None or score != score:  # None or NaN: not audited
        return ""
    return f" · privacy {int(score)}/5"


def _tree_html(clusters) -> str:
    """The hierarchy as nested <details> (opens offline, no script), top level first."""
    children: dict[str | None, list] = {}
    for _, row in clusters.sort_values(["level", "size"], ascending=[False, False]).iterrows():
        parent = row["parent"] if isinstance(row["parent"], str) else None
        children.setdefault(parent, []).append(row)

    def render(row) -> str:
        e = html.escape
        summaries = "".join(f"<li>{e(s)}</li>" for s in row["central_summaries"])
        inner = "".join(render(c) for c in children.get(row["id"], []))
        return (f"<details><summary><b>{e(str(row['name']))}</b> <span class='muted'>{row['size']} conversations"
                f" · level {row['level']} · named by {e(str(row['method']))}{_score(row)}</span></summary>"
                f"<div class='node'><p>{e(str(row['description']))}</p>"
                f"{f'<ul class=muted>{summaries}</ul>' if summaries and row['level'] == 0 else ''}{inner}</div>"
                f"</details>")

    return "".join(render(r) for r in children.get(None, []))


_STAGES = (("raw_conversations", "Raw conversations"), ("facet_answers", "Facet answers (when written)"),
           ("cluster_texts", "Cluster names and descriptions (when written)"),
           ("released_cluster_texts", "Released cluster names and descriptions (final check)"))


def _privacy_html(privacy: dict) -> str:
    """The privacy section: personal details per stage, thresholds, withheld clusters, auditor histogram."""
    e = html.escape
    rows = []
    for key, label in _STAGES:
        st = (privacy.get("stages") or {}).get(key)
        if not st:
            rows.append(f"<tr><td>{e(label)}</td><td colspan=4 class=muted>not checked (no PII detector)</td></tr>")
            continue
        flagged = st.get("with_pii", st.get("with_pii_when_written"))
        checked = st.get("checked") or 0
        share = f"{100 * flagged / checked:.1f}%" if checked else "–"
        note = " (a random sample)" if st.get("sampled") else ""
        rows.append(f"<tr><td>{e(label)}</td><td>{checked}{note}</td><td>{flagged}</td><td>{share}</td>"
                    f"<td>{e(str(st.get('kept_redacted', '–')))}</td></tr>")
    if (privacy.get("stages") or {}).get("model_input_redacted"):
        rows.append("<tr><td colspan=5 class=muted>Conversations were redacted before any model saw them.</td></tr>")
    thr, withheld, auditor = privacy.get("thresholds") or {}, privacy.get("withheld") or {}, privacy.get("auditor") or {}
    users = "" if thr.get("user_ids_present", True) else \
        " The data has no user ids: each conversation counts as its own user."
    hist = ""
    if auditor.get("ran"):
        counts = auditor.get("histogram") or {}
        most = max(counts.values(), default=0) or 1
        bars = "".join(
            f"<tr><td>{e(k)}</td><td><span style='display:inline-block;height:0.8em;background:"
            f"{'#c0392b' if k == 'failed' or int(k) < auditor.get('min_score', 3) else '#4c78a8'};"
            f"width:{int(200 * v / most)}px'></span> {v}</td></tr>" for k, v in counts.items())
        hist = (f"<p>Privacy auditor ({e(str(auditor.get('model')))}): clusters rated below "
                f"{auditor.get('min_score')} on the 1-5 scale, or that it could not rate, are withheld (a category "
                f"keeps its place under a neutral name, the clusters under it audited on their own). Released "
                f"texts by score: {e(json.dumps(auditor.get('histogram_released') or {}))}.</p>"
                f"<table style='width:auto'><tr><th>score</th><th>clusters</th></tr>{bars}</table>")
    else:
        hist = f"<p>Privacy auditor: off ({e(str(auditor.get('why')))}).</p>"
    return (f"<table><tr><th>stage</th><th>items checked</th><th>with personal details</th><th>share</th>"
            f"<th>kept redacted</th></tr>{''.join(rows)}</table>"
            f"<p>Aggregation thresholds: at least {thr.get('min_conversations')} conversations and "
            f"{thr.get('min_users')} distinct users per cluster.{e(users)}</p>"
            f"<p>Withheld clusters per level: {e(json.dumps(withheld.get('clusters_per_level') or {}))}; by reason: "
            f"{e(json.dumps(withheld.get('by_reason') or {}))}; conversations counted only as withheld: "
            f"{withheld.get('conversations') or 0}.</p>{hist}"
            f"<p class=muted>{e((privacy.get('raw_text') or {}).get('note', ''))}.</p>")


def write_report(result: PipelineResult, path: str | Path, clusters=None, stats=None, privacy=None) -> Path:
    """Write the run's offline HTML report (``clusters``, ``stats``, ``privacy``: the result's clusters_frame(),
    stats() and privacy(), if already made)."""
    stats = result.stats() if stats is None else stats
    privacy = result.privacy() if privacy is None else privacy
    clusters = result.clusters_frame() if clusters is None else clusters
    chart_html = cluster_size_chart(clusters).to_html(inline=True, fullhtml=False)
    tree_html = _tree_html(clusters)
    failures = stats["failures_by_step"] or {}
    load = stats.get("load") or {}
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>clio_lab report</title>
<style>{_STYLE}</style></head><body>
<h1>clio_lab run report</h1>
<p class="muted">Only model-written summaries and counts appear here; raw conversation text is never included.
Clusters below the privacy thresholds or rated too identifying by the auditor are withheld (see Privacy).</p>
{_kpis(stats)}
<h2>Clusters</h2>
{chart_html}
<h2>Hierarchy</h2>
<p class="muted">Levels: {html.escape(str(stats.get('clusters_per_level')))} clusters (base first). Click to open.</p>
{tree_html}
<h2>Privacy</h2>
{_privacy_html(privacy)}
<h2>Failures and data</h2>
<p>Failed items by step: {html.escape(json.dumps(failures))}. Conversations cut to fit the model's context:
{stats['truncated_conversations']}.</p>
<p>Loading: {html.escape(json.dumps({k: load.get(k) for k in ('source', 'loaded', 'skipped', 'skipped_by_reason', 'notes')}))}</p>
<h2>Run</h2>
<pre>{html.escape(json.dumps({'seconds': stats['seconds'], 'tokens': stats['tokens'], 'cost_usd': stats['cost_usd'],
                          'config': stats['config']}, indent=2, default=str))}</pre>
</body></html>"""
    path = Path(path)
    path.write_text(body, encoding="utf-8")
    return path
