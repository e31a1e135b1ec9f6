"""The Explorer in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

A notebook builds an Explorer on a small saved run (fake model, fake embedder) whose names and summaries
carry markup. The test checks that the tree shows the run's cluster names, that clicking a node highlights
its points (the map's pixels change) and fills the details panel, that colouring by a facet changes the
colours and the legend, that hovering shows a summary and clicking or lassoing points reaches Python, and
that no markup runs. Screenshots go to $CLIO_LAB_SCREENSHOTS (default: the
test's temporary folder). ``make test`` installs Chromium with apt-get when it is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anywidget")
playwright = pytest.importorskip("playwright.sync_api")

from clio_lab.widgets.lab import CHROMIUM, CHROMIUM_ARGS, open_notebook, run_cell, running_lab, write_notebook  # noqa: E402

XSS_NAME = "<img src=x onerror=\"window.__xss=1\">"
XSS_SUMMARY = "<script>window.__xss2=1</script>"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (make test installs it)")]


def _make_run(folder: Path, fake_embedder, demo_convs) -> dict:
    import clio_lab
    from clio_lab import LLM

    res = clio_lab.run_pipeline(demo_convs, llm=LLM(model="fake/m", prompt_style="completion"),
                                embedder=fake_embedder, cache=folder / "cache", k=5, min_conversations=None,
                                min_users=None, progress=False)
    base = res.hierarchy.level(0)[0]
    base.name = XSS_NAME  # markup as data: must show as text, never run
    # a point that no other point covers (equal texts get equal fake embeddings) carries a markup summary
    d = np.linalg.norm(res.coords[:, None] - res.coords[None], axis=-1) + np.eye(len(res.coords)) * 1e9
    lone = int(np.argmax(d.min(axis=1)))
    res.facets.values["request"][lone] = XSS_SUMMARY
    res.save(folder / "run")
    return {"top": [n.name for n in res.hierarchy.top], "base_name": base.name, "lone": lone}


@pytest.fixture
def lab(tmp_path, fake_llm, fake_embedder, demo_convs):
    info = _make_run(tmp_path, fake_embedder, demo_convs)
    write_notebook(tmp_path / "explore.ipynb", [
        f"import clio_lab\nex = clio_lab.explore({str(tmp_path / 'run')!r}, height=420)\nex"])
    with running_lab(tmp_path) as server:
        yield {**server, **info}


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CLIO_LAB_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_explorer_in_jupyterlab(lab, tmp_path):
    shots = _shots(tmp_path)
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_notebook(page, lab, "explore.ipynb")
        run_cell(page, 0, ".clio-tree-row", screenshot=shots / "explorer_not_shown.png")
        page.wait_for_selector(".clio-map[data-first-draw-ms]", timeout=60_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "explorer.png"), full_page=True)

        # the tree shows the run's top-level names
        rows = page.locator(".clio-tree-row .clio-tree-name")
        shown = rows.all_text_contents()
        assert set(lab["top"]) <= set(shown), (lab["top"], shown)

        # clicking a node selects it, fills the details panel and highlights its points
        canvas = page.locator(".clio-map-canvas")
        before = canvas.screenshot()
        target = lab["top"][0]
        page.locator(".clio-tree-row", has_text=target).first.click()
        page.wait_for_selector(".clio-tree-row.selected")
        details = page.locator(".widget-html-content").filter(has_text="Privacy:")
        details.wait_for(timeout=30_000)
        assert target in details.inner_text()
        page.wait_for_timeout(500)
        after = canvas.screenshot()
        assert after != before, "selecting a node did not change the map"
        page.screenshot(path=str(shots / "explorer_node_selected.png"), full_page=True)

        # colouring by a facet changes the colours and the legend
        page.locator(".widget-dropdown select").select_option(label="facet: meta_language")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.clio-map-legend-label')].some(e => e.textContent === 'English')",
            timeout=30_000)
        page.wait_for_timeout(500)
        recoloured = canvas.screenshot()
        assert recoloured != after, "colouring by a facet did not change the map"
        page.screenshot(path=str(shots / "explorer_by_language.png"), full_page=True)

        # hovering a point shows its summary, as text (this one's summary is markup)
        box = canvas.bounding_box()
        px, py = page.evaluate("i => document.querySelector('.clio-map').__clioPlot.getScreenPosition(i)",
                               lab["lone"])
        page.mouse.move(box["x"] + px, box["y"] + py)
        tip = page.locator(".clio-map-tip")
        tip.wait_for(state="visible", timeout=10_000)
        assert tip.text_content() == XSS_SUMMARY
        page.screenshot(path=str(shots / "explorer_hover.png"), full_page=True)
        # clicking it selects it: the selection reaches Python, which fills the details with its breakdown
        page.mouse.click(box["x"] + px, box["y"] + py)
        page.locator(".widget-html-content").filter(has_text="1 selected conversations").wait_for(timeout=30_000)
        # a lasso over the whole view selects every point, and the selection reaches Python. (Drawn with
        # regl-scatterplot's lassoSelect: Playwright's shift + drag did not start its lasso in headless Chromium.)
        page.evaluate("() => document.querySelector('.clio-map').__clioPlot.lassoSelect("
                      "[[-1.2, -1.2], [1.2, -1.2], [1.2, 1.2], [-1.2, 1.2]], { isGl: true })")
        page.screenshot(path=str(shots / "explorer_lasso.png"), full_page=True)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.widget-html-content')].some(e => {"
            "  const m = e.textContent.match(/(\\d+) selected conversations/); return m && +m[1] > 1; })",
            timeout=30_000)

        # markup in a name and in a summary is shown as text and never runs
        page.locator(".clio-tree-row").first.locator(".clio-tree-toggle").click()  # open the first top node
        page.locator(".clio-tree-search").fill("onerror")
        page.wait_for_timeout(300)
        names = page.locator(".clio-tree-row .clio-tree-name").all_text_contents()
        assert XSS_NAME in names, names
        assert page.locator(".clio-tree img, .clio-map-tip script, .clio-details script").count() == 0
        assert page.evaluate("() => window.__xss === undefined && window.__xss2 === undefined")
        page.screenshot(path=str(shots / "explorer_markup_as_text.png"), full_page=True)
        assert not [e for e in errors if "clio" in e.lower()], errors
        browser.close()
    if os.environ.get("CLIO_LAB_SCREENSHOTS"):
        shutil.copy(lab["log"], shots / "lab.log")


def test_explorer_in_marimo(tmp_path, fake_llm, fake_embedder, demo_convs):
    """notebooks/06_explore_in_marimo.py served by `marimo run`: the tree, the map and the details, linked, as
    in JupyterLab (marimo shows anywidget components, not ipywidgets, so the notebook lays them out itself)."""
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("marimo")
    info = _make_run(tmp_path, fake_embedder, demo_convs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "06_explore_in_marimo.py"
    log = (tmp_path / "marimo.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(notebook), "--headless", "--host",
                               "127.0.0.1", "--port", str(port), "--no-token", "--", "--run", str(tmp_path / "run")],
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    shots = _shots(tmp_path)
    try:
        for _ in range(120):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(".clio-map[data-first-draw-ms]", timeout=120_000)
            page.wait_for_timeout(500)
            names = page.locator(".clio-tree-row .clio-tree-name").all_text_contents()
            assert set(info["top"]) <= set(names), (info["top"], names)
            frame = page.locator(".clio-map-frame").bounding_box()
            page.wait_for_timeout(500)
            assert page.locator(".clio-map-frame").bounding_box() == frame  # the map's size settles
            canvas = page.locator(".clio-map-canvas")
            before = canvas.screenshot()
            target = info["top"][0]
            page.locator(".clio-tree-row", has_text=target).first.click()
            details = page.locator(".clio-details").filter(has_text="Privacy:")
            details.wait_for(timeout=30_000)
            assert target in details.inner_text()
            page.wait_for_timeout(500)
            assert canvas.screenshot() != before, "selecting a node did not change the map"
            page.screenshot(path=str(shots / "explorer_marimo.png"), full_page=True)
            assert page.evaluate("() => window.__xss === undefined && window.__xss2 === undefined")
            assert not [e for e in errors if "clio" in e.lower()], errors
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
