"""clio_lab: a Jupyter-first, privacy-preserving reimplementation of Anthropic's Clio (arXiv 2412.13678).

The pipeline is a chain of plain, cached functions, each usable alone in a notebook cell::

    convs = clio_lab.load_conversations("datasets/clio_demo.jsonl")
    facets = clio_lab.extract_facets(convs)            # step 1: facets (LLM)
    space = clio_lab.embed_conversations(convs, summaries, clio_lab.resolve_embedder("auto", convs)[0])
    X = space.X                                        # step 2: embeddings (or clio_lab.embed(texts))
    clusters = clio_lab.cluster(X, method="kmeans")    # step 3: base clusters
    names = clio_lab.label_clusters(summaries, X, clusters.labels, embedder=space.embedder,
                                    requests=space.requests, users=user_ids)  # step 4: names
    tree = clio_lab.build_hierarchy(clusters.labels, names)          # step 5: hierarchy (steps a-f)
    audit = clio_lab.rule_audit(tree, clio_lab.support_texts(convs, summaries), user_ids)  # or audit_clusters(tree)
    shown = clio_lab.release_tree(tree, user_ids, audit=audit)       # step 6: privacy gating
    xy = clio_lab.project(X)                                         # step 7: 2-D map (UMAP)
    result = clio_lab.run_pipeline(convs)              # all of the above, in order
    result.save("runs/demo"); run = clio_lab.load_run("runs/demo")
    clio_lab.explore(run)                              # the linked tree, map and details (Jupyter)
    clio_lab.trends(run, level=-1, freq="M")           # shares per month, thresholds held per period
    more = clio_lab.extend(run, new_convs)             # new conversations into the run's clusters, no re-clustering
"""

import os as _os

# LiteLLM fetches its price list at import unless told not to; clio_lab runs offline.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .auditor import audit_clusters, rule_audit, support_texts  # noqa: E402
from .cache import Cache, make_key  # noqa: E402
from .clustering import Clustering, cluster, default_k  # noqa: E402
from .embed_input import embed_conversations  # noqa: E402
from .embeddings import LiteLLMEmbedder, SentenceTransformerEmbedder, embed, get_embedder  # noqa: E402
from .estimate import CostAboveLimit, estimate  # noqa: E402
from .extend import extend  # noqa: E402
from .facets import FacetResults, FacetSpec, extract_facets  # noqa: E402
from .hierarchy import build_hierarchy, level_sizes  # noqa: E402
from .judge import judge_hierarchy  # noqa: E402
from .languages import resolve_embedder  # noqa: E402
from .llm import DEFAULT_LOCAL_MODEL, LLM, PromptLibrary  # noqa: E402
from .loaders import RecordError, load_conversations  # noqa: E402
from .naming import ClusterLabels, keyword_labels, label_clusters  # noqa: E402
from .pipeline import PipelineResult, run_pipeline  # noqa: E402
from .projection import project  # noqa: E402
from .records import Conversation, LoadReport, Message  # noqa: E402
from .release import PrivacyOptions, apply_thresholds, release_tree  # noqa: E402
from .results import Run  # noqa: E402
from .runs import SavedRun, load_run, save_run  # noqa: E402
from .tree import Hierarchy, Node, Status  # noqa: E402
from .trends import trends  # noqa: E402


def explore(run, **kwargs):
    """Open the linked cluster tree, map and details on a run in Jupyter (see :class:`clio_lab.widgets.Explorer`;
    needs the ``notebooks`` extra)."""
    from .widgets import explore as _explore

    return _explore(run, **kwargs)


__version__ = "0.1.0"

__all__ = [
    "Cache", "make_key", "Clustering", "cluster", "default_k", "LiteLLMEmbedder", "SentenceTransformerEmbedder",
    "embed", "get_embedder", "embed_conversations", "resolve_embedder", "FacetResults", "FacetSpec", "extract_facets", "LLM", "DEFAULT_LOCAL_MODEL",
    "PromptLibrary", "RecordError", "load_conversations", "PipelineResult", "run_pipeline", "Conversation",
    "LoadReport", "Message", "ClusterLabels", "keyword_labels", "label_clusters", "project", "Hierarchy", "build_hierarchy", "level_sizes", "SavedRun", "load_run",
    "save_run", "audit_clusters", "rule_audit", "support_texts", "apply_thresholds", "release_tree", "PrivacyOptions", "Run", "Node", "Status",
    "judge_hierarchy", "explore", "trends", "extend", "estimate", "CostAboveLimit", "__version__",
]
