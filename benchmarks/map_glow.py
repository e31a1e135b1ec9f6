"""The printed map's density glow: datamapplot's own against ``clio_lab.charts.add_glow``, on a saved run.

    .venv/bin/python benchmarks/scale.py --pipeline 20000 --keep /tmp/run20k   # a 20,000-conversation run
    .venv/bin/python benchmarks/map_glow.py --run /tmp/run20k [--out /tmp/glow]

Draws the report's map (``charts.datamap_figure``, dpi 80, saved as PNG) three ways, each in a process of its
own so that its peak memory is its own: with datamapplot's glow (``add_glow=True``, the keywords clio_lab
passed it before: Gaussian, bandwidth 0.25, ``approx_patch_size`` 32), with clio_lab's glow (the same KDE and
bands, the patch upsampled 2 times instead of 12), and with none. Prints seconds and peak resident memory above
the process's memory before drawing (datamapplot imported and the run loaded before the clock); the PNGs are
written to ``--out`` to be looked at side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import json, sys, threading, time
import matplotlib.pyplot as plt
import datamapplot
import clio_lab, clio_lab.charts as charts

which, run_dir, out = sys.argv[1:4]
points, labels = charts.map_data(clio_lab.load_run(run_dir))

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6

base = peak = rss()
def sample():
    global peak
    while True:
        peak = max(peak, rss())
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
if which == "datamapplot":
    real = datamapplot.create_plot
    def create(*a, **kw):
        kw.update(add_glow=True, glow_keywords={"kernel": "gaussian", "kernel_bandwidth": 0.25, "approx_patch_size": 32})
        return real(*a, **kw)
    datamapplot.create_plot = create
    charts.add_glow = lambda *a, **kw: None
elif which == "none":
    charts.GLOW_MAX_POINTS = 0
start = time.perf_counter()
fig = charts.datamap_figure(points, labels, dpi=80)
fig.savefig(out, format="png", bbox_inches="tight")
plt.close(fig)
seconds = time.perf_counter() - start
time.sleep(0.05)
print(json.dumps({"points": len(points), "colours": int(points["colour"].nunique()), "seconds": seconds,
                  "peak_mb": peak - base}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a saved run's folder (clio_lab.load_run)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/map_glow"), help="where the three PNGs go")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for which in ("datamapplot", "clio_lab", "none"):
        png = args.out / f"{args.run.name}_{which}.png"
        done = subprocess.run([sys.executable, "-c", CHILD, which, str(args.run), str(png)], check=True,
                              capture_output=True, text=True)
        rows.append((which, json.loads(done.stdout.strip().splitlines()[-1]), png))
    first = rows[0][1]
    print(f"map of {args.run} ({first['points']:,} points, {first['colours']} colours)")
    print("| glow | seconds | peak MB above the loaded run | PNG |\n|---|---|---|---|")
    for which, r, png in rows:
        print(f"| {which} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} | {png} |")


if __name__ == "__main__":
    main()
