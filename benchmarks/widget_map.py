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

``--profile`` also records a Chromium trace of each pan (Playwright's ``start_tracing``) and prints where
the time went: busy milliseconds per thread (the page's main thread, the compositor, the GPU process where
SwiftShader rasterises, the browser), and on the page's main thread the time per kind of task (animation
frames, mouse events, the 2-D canvas copy, painting, garbage collection). ``--trace-dir`` keeps the traces
(open them in chrome://tracing or Perfetto).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from clio_lab.widgets.lab import CHROMIUM, CHROMIUM_ARGS, open_notebook, running_lab, write_notebook

CELL = """import numpy as np
from pathlib import Path
from clio_lab.widgets import ClusterMap
if {esm!r}:  # the bundle of another commit, side by side with this tree's
    ClusterMap = type("ClusterMap", (ClusterMap,), {{"_esm": Path({esm!r})}})
rng = np.random.default_rng(0)
n = {n}
centres = rng.normal(scale=6, size=(20, 2))
which = rng.integers(0, 20, size=n)
m = ClusterMap.from_points(centres[which] + rng.normal(size=(n, 2)), [f"cluster {{i}}" for i in which],
                           height=600, point_size=2)
m"""

# ``--run DIR``: the explorer (tree, map and details) on a saved run, as a user opens it
RUN_CELL = """import time
import clio_lab
t = time.perf_counter()
run = clio_lab.load_run({run!r})
print(f"load_run {{time.perf_counter() - t:.1f}} s; {{len(run.hierarchy.top)}} top clusters")
clio_lab.explore(run)"""

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


TRACE_CATEGORIES = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "blink",
                    "gpu", "cc", "viz", "disabled-by-default-devtools.timeline.frame"]
# main-thread events worth naming, in the order a frame meets them (their durations nest, so each is shown on
# its own, not summed)
MAIN_EVENTS = ["FireAnimationFrame", "EventDispatch", "FunctionCall", "HitTest", "UpdateLayoutTree", "Layout",
               "PrePaint", "Paint", "Layerize", "Commit", "MajorGC", "MinorGC", "V8.GC_SCAVENGER",
               "GLES2::ReadPixels", "CommandBufferHelper::Finish"]


def summarise_trace(raw: bytes, seconds: float) -> dict:
    """Busy time per thread (sum of its top-level tasks) and the page main thread's time per event kind."""
    events = json.loads(raw)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    names, procs = {}, {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
        if e.get("ph") == "M" and e.get("name") == "process_name":
            procs[e["pid"]] = e["args"]["name"]
    busy: dict = defaultdict(float)
    per_event: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    mousemove = 0.0
    main = {k for k, v in names.items() if v == "CrRendererMain"}
    for e in events:
        if e.get("ph") != "X" or "dur" not in e:
            continue
        key = (e["pid"], e["tid"])
        if e.get("cat") == "toplevel" and e["name"] in ("ThreadControllerImpl::RunTask", "ThreadPool_RunTask",
                                                         "RunTask", "ThreadPool_RunTask_Sequenced"):
            thread = names.get(key, str(e["tid"]))
            busy[f"{procs.get(e['pid'], e['pid'])} / {thread}"] += e["dur"] / 1000
        if key in main and e["name"] in MAIN_EVENTS:
            per_event[e["name"]] += e["dur"] / 1000
            counts[e["name"]] += 1
            if e["name"] == "EventDispatch" and (e.get("args", {}).get("data", {}).get("type") in
                                                 ("mousemove", "pointermove", "pointerrawupdate")):
                mousemove += e["dur"] / 1000
    return {"seconds": seconds, "busy": dict(busy), "main": dict(per_event), "counts": dict(counts),
            "mousemove": mousemove}


def print_profile(what: str, prof: dict) -> None:
    secs = prof["seconds"]
    print(f"\nWhere the time went while panning ({what} points; {secs:.1f} s traced):")
    print("| thread | busy ms | share of the pan |")
    print("|---|---|---|")
    for thread, ms in sorted(prof["busy"].items(), key=lambda kv: -kv[1])[:8]:
        print(f"| {thread} | {ms:.0f} | {ms / (10 * secs):.0f}% |")
    print("| page main thread: event | ms | count |")
    print("|---|---|---|")
    for name in MAIN_EVENTS:
        if name in prof["main"]:
            print(f"| {name} | {prof['main'][name]:.0f} | {prof['counts'][name]} |")
    print(f"| of EventDispatch: mouse/pointer moves | {prof['mousemove']:.0f} | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--run", type=Path, default=None, metavar="DIR",
                    help="instead of random points: the explorer on this saved run (benchmarks/scale.py --keep)")
    ap.add_argument("--pan-seconds", type=float, default=3.0)
    ap.add_argument("--profile", action="store_true", help="trace each pan and print where the time went")
    ap.add_argument("--trace-dir", type=Path, default=None, help="keep the raw traces here")
    ap.add_argument("--baseline", default=None,
                    help="also run the map bundle of this commit (clio_lab/widgets/static/cluster_map.js there)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    root = Path(tempfile.mkdtemp(prefix="clio_map_bench_"))
    variants = [("this tree", "")]
    if args.baseline:
        import subprocess

        old = subprocess.run(["git", "show", f"{args.baseline}:clio_lab/widgets/static/cluster_map.js"],
                             capture_output=True, check=True).stdout
        (root / "baseline_map.js").write_bytes(old)
        variants.append((f"at {args.baseline}", str(root / "baseline_map.js")))
    runs = [(label, esm, n) for n in sizes for label, esm in variants]
    cells = [CELL.format(n=n, esm=esm) for _, esm, n in runs]
    if args.run:
        from clio_lab import load_run

        n_points = len(load_run(args.run))
        runs = [(f"explorer on {args.run}", "", n_points)]
        cells = [RUN_CELL.format(run=str(args.run.resolve()))]
    write_notebook(root / "bench.ipynb", cells)
    rows, profiles = [], {}
    with running_lab(root) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        renderer = page.evaluate("""() => { const gl = document.createElement('canvas').getContext('webgl');
            const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
            return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown'; }""")
        open_notebook(page, lab, "bench.ipynb")
        for i, (label, _, n) in enumerate(runs):
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
            if args.profile:
                browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            page.evaluate(PAN_JS, args.pan_seconds)  # starts recording frames; the result lands in window
            steps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.pan_seconds:
                steps += 1
                dx = 150 * ((steps % 40) / 20 - 1)
                page.mouse.move(cx + dx, cy + dx / 2)
            page.mouse.up()
            page.wait_for_function("() => window.__clioPan", timeout=60_000)
            stats = page.evaluate("() => window.__clioPan")
            if args.profile:
                raw = browser.stop_tracing()
                if args.trace_dir:
                    args.trace_dir.mkdir(parents=True, exist_ok=True)
                    (args.trace_dir / f"pan_{n}_{i}.json").write_bytes(raw)
                profiles[(label, n)] = summarise_trace(raw, stats["seconds"])
            rows.append((label, n, in_page, end_to_end, stats))
            page.screenshot(path=str(root / f"map_{n}_{i}.png"))
        browser.close()
    print(f"Chromium headless, WebGL renderer: {renderer}")
    print("| bundle | points | first draw in page (ms) | first draw end to end (s) | pan frames/s "
          "| median frame (ms) | p95 frame (ms) | redraws while panning |")
    print("|---|---|---|---|---|---|---|---|")
    for label, n, in_page, e2e, s in rows:
        print(f"| {label} | {n:,} | {in_page:.0f} | {e2e:.2f} | {s['frames'] / s['seconds']:.1f} | {s['median']:.1f} "
              f"| {s['p95']:.1f} | {s['draws']} |")
    for (label, n), prof in profiles.items():
        print_profile(f"{label}, {n:,}", prof)
    print(f"screenshots: {root}")


if __name__ == "__main__":
    main()
