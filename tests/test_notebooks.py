"""The notebooks are kept as code: no outputs in git, stable cell ids, and every one run by `make test` (nbval)."""

import json
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
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "pytest tests notebooks --nbval-lax" in makefile
