"""What a new process pays for its first map, before and after: datamapplot's import (the report's printed map)
and UMAP's compiled kernels (the map's coordinates).

    .venv/bin/python benchmarks/new_process.py [--rounds 3] [--points 200]

Each leg runs in a new interpreter that has imported clio_lab, as `clio-lab run` and every notebook kernel do;
the legs alternate.
- datamapplot: the seconds to import it as it is, and through ``charts.import_datamapplot`` (without datashader's
  edge bundling, whose numba kernels compile at import); then to draw the report's map
  (``charts.datamap_figure``, saved as a PNG) of ``--points`` points in 8 labelled clusters.
- UMAP: the seconds of ``projection.umap_reduce`` on ``--points`` random 384-d points, with umap's kernels
  compiled in the process (``CACHE_UMAP_KERNELS = False``) and kept in numba's on-disk cache
  (``projection.cache_umap_kernels``). The cache is a new folder (``NUMBA_CACHE_DIR``), filled by a first
  process that is shown apart; a hash of the coordinates shows that both give the same map.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

MAP = r"""
import json, sys, time
import numpy as np, pandas as pd
from clio_lab import charts  # imported before the clock in both legs
t = time.perf_counter()
if sys.argv[1] == "plain":
    import datamapplot  # noqa: F401
else:
    charts.import_datamapplot()
imported = time.perf_counter() - t
rng = np.random.default_rng(0)
n = int(sys.argv[2])
k = rng.integers(0, 8, n)
names = [f"Cluster number {i} of the map" for i in range(8)]
colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
xy = rng.normal(size=(n, 2)) + np.c_[np.cos(k), np.sin(k)] * 4
points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "cluster": [names[i] for i in k],
                       "category": [names[i] for i in k], "colour": [colours[i] for i in k]})
labels = (points.groupby("cluster").agg(category=("category", "first"), colour=("colour", "first"),
          size=("x", "size"), x=("x", "median"), y=("y", "median")).reset_index())
t = time.perf_counter()
charts.datamap_figure(points, labels).savefig(sys.argv[3], dpi=100)
print(json.dumps({"first": imported, "then": time.perf_counter() - t, "hash": ""}))
"""

UMAP = r"""
import hashlib, json, sys, time
import numpy as np
from clio_lab import projection
import umap  # noqa: F401  imported before the clock in both legs
projection.CACHE_UMAP_KERNELS = sys.argv[1] == "cached"
X = np.random.default_rng(0).normal(size=(int(sys.argv[2]), 384)).astype(np.float32)
X /= np.linalg.norm(X, axis=1, keepdims=True)
t = time.perf_counter()
Y = projection.umap_reduce(X)
first = time.perf_counter() - t
t = time.perf_counter()
projection.umap_reduce(X[::-1].copy())
print(json.dumps({"first": first, "then": time.perf_counter() - t,
                  "hash": hashlib.sha256(np.ascontiguousarray(Y).tobytes()).hexdigest()[:12]}))
"""

LEGS = {"datamapplot": (MAP, ("plain", "import_datamapplot"), ("import s", "first draw s"),
                        {"plain": "as it is", "import_datamapplot": "charts.import_datamapplot"}),
        "umap": (UMAP, ("compiled", "cached"), ("first fit s", "second fit s"),
                 {"compiled": "compiled in the process", "cached": "kept in numba's disk cache"})}


def leg(script: str, setting: str, points: int, env: dict[str, str], png: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, setting, str(points), png], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--points", type=int, default=200)
    args = ap.parse_args()
    from clio_lab.llm.native import cpu_summary

    print(f"{cpu_summary()}, {os.cpu_count()} cores, Python {platform.python_version()}, {args.points} points")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba")}
        png = os.path.join(tmp, "map.png")
        for what, (script, settings, columns, label) in LEGS.items():
            print(f"\n{what}\n\n| round | {what} | {columns[0]} | {columns[1]} | coordinates |\n|---|---|---|---|---|")
            if what == "umap":
                t = leg(script, "cached", args.points, env, png)
                print(f"| 0 (fills the cache) | {label['cached']} | {t['first']:.2f} | {t['then']:.2f} | {t['hash']} |")
            best: dict[str, float] = {}
            for r in range(1, args.rounds + 1):
                for s in settings:
                    t = leg(script, s, args.points, env, png)
                    best[s] = min(best.get(s, float("inf")), t["first"])
                    print(f"| {r} | {label[s]} | {t['first']:.2f} | {t['then']:.2f} | {t['hash']} |", flush=True)
            a, b = settings
            print(f"\nbest {columns[0][:-2]}: {best[a]:.2f} s {label[a]}, {best[b]:.2f} s {label[b]}: "
                  f"{best[a] - best[b]:.2f} s saved")


if __name__ == "__main__":
    main()
