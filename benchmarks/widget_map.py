"""ClusterMap in Chromium: time to first draw and frame times while panning, at 10,000 and 100,000 points.

    .venv/bin/python benchmarks/widget_map.py [--sizes 10000,100000] [--pan-seconds 3]

Starts JupyterLab on 127.0.0.1 and drives Debian's Chromium (headless, WebGL on SwiftShader, i.e. the CPU,
unless the machine has a GPU) with Playwright. For each size a notebook cell builds
``ClusterMap.from_points`` on clustered random points with 20 colours and displays it. Reported:

- first draw, in the page: from the widget's render() to regl-scatterplot's first finished draw;
- first draw, end to end: from Shift+Enter to that draw (the kernel making the points, the binary transfer);
- panning: a mouse drag across the map for ``--pan-seconds``; frame intervals from requestAnimationFrame
  (median, 95th percentile, frames per second) and how many times the plot redrew.

Targets (issue 5): first draw under 2 s and panning above 30 frames per second at 100,000 points.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from clio_lab.widgets.lab import CHROMIUM, CHROMIUM_ARGS, open_notebook, running_lab, write_notebook

CELL = """import numpy as np
from clio_lab.widgets import ClusterMap
rng = np.random.default_rng(0)
n = {n}
centres = rng.normal(scale=6, size=(20, 2))
which = rng.integers(0, 20, size=n)
m = ClusterMap.from_points(centres[which] + rng.normal(size=(n, 2)), [f"cluster {{i}}" for i in which],
                           height=600, point_size=2)
m"""

PAN_JS = """(seconds) => { window.__clioPan = null; (async () => {
  const root = document.querySelectorAll('.clio-map')[document.querySelectorAll('.clio-map').length - 1];
  const plot = root.__clioPlot;
  let draws = 0;
  plot.subscribe('draw', () => { draws += 1; });
  const times = [];
  const stop = performance.now() + seconds * 1000;
  await new Promise((resolve) => {
    function tick(t) { times.push(t); if (t < stop) requestAnimationFrame(tick); else resolve(); }
    requestAnimationFrame(tick);
  });
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
  window.__clioPan = { frames: gaps.length, median: q(0.5), p95: q(0.95),
                       seconds: (times.at(-1) - times[0]) / 1000, draws };
})(); }"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--pan-seconds", type=float, default=3.0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    root = Path(tempfile.mkdtemp(prefix="clio_map_bench_"))
    write_notebook(root / "bench.ipynb", [CELL.format(n=n) for n in sizes])
    rows = []
    with running_lab(root) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        renderer = page.evaluate("""() => { const gl = document.createElement('canvas').getContext('webgl');
            const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
            return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown'; }""")
        open_notebook(page, lab, "bench.ipynb")
        for i, n in enumerate(sizes):
            page.locator(".jp-Cell").nth(i).click()
            start = time.perf_counter()
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(f"() => document.querySelectorAll('.clio-map[data-first-draw-ms]').length > {i}",
                                   timeout=180_000, polling=16)
            end_to_end = time.perf_counter() - start
            in_page = float(page.locator(".clio-map").nth(i).get_attribute("data-first-draw-ms"))
            canvas = page.locator(".clio-map-canvas").nth(i)
            canvas.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            box = canvas.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx, cy)
            page.mouse.down()
            page.evaluate(PAN_JS, args.pan_seconds)  # starts recording frames; the result lands in window
            steps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.pan_seconds:
                steps += 1
                dx = 150 * ((steps % 40) / 20 - 1)
                page.mouse.move(cx + dx, cy + dx / 2)
            page.mouse.up()
            page.wait_for_function("() => window.__clioPan", timeout=60_000)
            stats = page.evaluate("() => window.__clioPan")
            rows.append((n, in_page, end_to_end, stats))
            page.screenshot(path=str(root / f"map_{n}.png"))
        browser.close()
    print(f"Chromium headless, WebGL renderer: {renderer}")
    print("| points | first draw in page (ms) | first draw end to end (s) | pan frames/s | median frame (ms) "
          "| p95 frame (ms) | redraws while panning |")
    print("|---|---|---|---|---|---|---|")
    for n, in_page, e2e, s in rows:
        print(f"| {n:,} | {in_page:.0f} | {e2e:.2f} | {s['frames'] / s['seconds']:.1f} | {s['median']:.1f} "
              f"| {s['p95']:.1f} | {s['draws']} |")
    print(f"screenshots: {root}")


if __name__ == "__main__":
    main()
