"""The notebooks are kept as code: no outputs in git, stable cell ids, and every one run by `make test` (nbval)."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_the_readme_promises_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_quickstart", "02_step_by_step", "03_compare_hyperparameters", "04_synthetic_validation",
                     "05_figures_for_reports"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name}: cell {i} has outputs; run `make strip` before committing")
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    assert all(cell.get("id") for cell in nb["cells"]), f"{path.name}: a cell without an id (nbformat 4.5)"


def test_make_test_runs_every_notebook():
    """The pytest command that `make test` runs (read from `make -n`, not from the Makefile's text) collects
    every cell of every notebook as a test."""
    root = Path(__file__).resolve().parents[1]
    dry = subprocess.run(["make", "-n", "-s", "test"], cwd=root, capture_output=True, text=True, check=True).stdout
    lines = [line for line in dry.splitlines() if " -m pytest " in line]
    assert len(lines) == 1, dry
    command = lines[0].replace("$(mktemp -d)", os.fsdecode(Path(tempfile.mkdtemp())))
    collected = subprocess.run(f"{command} --collect-only -q -p no:cacheprovider", shell=True, cwd=root,
                               capture_output=True, text=True, env={**os.environ, "CLIO_LAB_NO_SKIPS": "0"})
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    for path in NOTEBOOKS:
        code_cells = sum(c["cell_type"] == "code" for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
        items = [line for line in collected.stdout.splitlines() if line.startswith(f"notebooks/{path.name}::")]
        assert len(items) == code_cells, (path.name, len(items), code_cells)
