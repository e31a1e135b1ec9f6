"""The printed map's first draw in a new process: datamapplot imported as it is, and through
``charts.import_datamapplot`` (without datashader's edge bundling, whose numba kernels compile at import).

    .venv/bin/python benchmarks/report_time.py [--rounds 3] [--points 200]

Each leg runs in a new interpreter (as `clio-lab run` does) that has imported clio_lab: the seconds to import
datamapplot, then to draw the report's map (``charts.datamap_figure``, saved as a PNG) of ``--points`` points in 8
labelled clusters; the legs alternate. Prints a row per leg and the best of each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

LEG = r"""
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
drawn = time.perf_counter() - t
print(json.dumps({"import": imported, "draw": drawn}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--points", type=int, default=200)
    args = ap.parse_args()
    from clio_lab.llm.native import cpu_summary

    print(f"{cpu_summary()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| round | datamapplot imported | import s | first draw s | in all s |\n|---|---|---|---|---|")
    best: dict[str, float] = {}
    png = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"report_time_{os.getpid()}.png")
    for r in range(1, args.rounds + 1):
        for leg in ("plain", "import_datamapplot"):
            out = subprocess.run([sys.executable, "-c", LEG, leg, str(args.points), png], capture_output=True,
                                 text=True, check=True)
            t = json.loads(out.stdout.strip().splitlines()[-1])
            total = t["import"] + t["draw"]
            best[leg] = min(best.get(leg, float("inf")), total)
            print(f"| {r} | {'as it is' if leg == 'plain' else 'charts.import_datamapplot'} | {t['import']:.2f} | "
                  f"{t['draw']:.2f} | {total:.2f} |", flush=True)
    if os.path.exists(png):
        os.remove(png)
    print(f"\nbest: {best['plain']:.2f} s as it is, {best['import_datamapplot']:.2f} s through import_datamapplot: "
          f"{best['plain'] - best['import_datamapplot']:.2f} s saved")


if __name__ == "__main__":
    main()
