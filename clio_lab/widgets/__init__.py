"""Widgets for Jupyter (anywidget): :class:`ClusterTree`, :class:`ClusterMap` and the linked
:class:`Explorer` (``clio_lab.explore(run)``). Needs the ``notebooks`` extra (anywidget, ipywidgets)."""

from .components import ClusterMap, ClusterTree
from .explorer import Explorer, explore

__all__ = ["ClusterMap", "ClusterTree", "Explorer", "explore"]
