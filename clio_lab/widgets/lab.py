"""Driving the widgets in a real browser: a JupyterLab server on 127.0.0.1 and Debian's Chromium through
Playwright. Used by the browser test and the map benchmark; needs the ``browser`` extra.

Playwright cannot download its own browsers here, so Chromium comes from the system (``/usr/bin/chromium``,
or ``$CLIO_LAB_CHROMIUM``) and WebGL runs on SwiftShader (software) unless the machine has a GPU.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CLIO_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """A notebook of code cells, with no outputs."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                    for c in cells],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_lab(root: Path, timeout: float = 90) -> Iterator[dict[str, Any]]:
    """JupyterLab serving ``root`` on 127.0.0.1 (its own config and runtime folders under ``root``); yields
    ``{"base": url, "token": token, "log": path}`` and stops the server on exit."""
    root = Path(root)
    port, token = _free_port(), "clio-lab-token"
    log = root / "lab.log"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jcfg"), "JUPYTER_RUNTIME_DIR": str(root / ".jrt")}
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
             "--LabServerApp.extension_manager=readonly"],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield {"base": base, "token": token, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_notebook(page: Any, lab: dict[str, Any], name: str) -> None:
    """Open a notebook and wait until its kernel is idle (a cell run before the kernel connects is dropped)."""
    page.goto(f"{lab['base']}/lab/tree/{name}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_function("() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')",
                           timeout=120_000)


def run_cell(page: Any, index: int, until: str, *, timeout_ms: int = 60_000, tries: int = 3,
             screenshot: Path | None = None) -> None:
    """Run cell ``index`` (Shift+Enter) until the selector ``until`` appears, re-running if nothing shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.locator(".jp-Cell").nth(index).click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_selector(until, timeout=timeout_ms)
            return
        except PlaywrightTimeout:
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            if attempt == tries - 1:
                raise
