# /// script
# requires-python = ">=3.11"
# dependencies = ["clio-lab[notebooks]", "marimo"]
# ///
"""The explorer in marimo: the same linked tree, map and details as ``clio_lab.explore`` in JupyterLab.

Open it with ``marimo edit notebooks/06_explore_in_marimo.py`` (or ``marimo run`` for the app view). It shows
``runs/demo`` (made by ``make demo``), or the run folder given as ``-- --run DIR``. marimo displays anywidget
components but not ipywidgets, so this notebook lays out the explorer's two components itself and renders its
details panel in a cell that marimo re-runs whenever a node or points are selected.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    import clio_lab

    return Path, clio_lab, mo


@app.cell
def _(Path, clio_lab, mo):
    run_dir = Path(mo.cli_args().get("run") or Path(mo.notebook_dir()).parent / "runs" / "demo")
    if not (run_dir / "run.json").exists():
        mo.stop(True, mo.md(f"No run at `{run_dir}`: run `make demo` first, or pass `-- --run DIR`."))
    explorer = clio_lab.explore(run_dir, height=520)
    tree = mo.ui.anywidget(explorer.tree)
    points = mo.ui.anywidget(explorer.map)
    mo.md(f"# {explorer.frame.shape[0]:,} conversations of `{run_dir.name}`\n\n"
          "Click a cluster in the tree to highlight its conversations on the map; shift + drag on the map to "
          "lasso some and see their breakdown.")
    return explorer, points, tree


@app.cell
def _(explorer, mo, points, tree):
    label_of = {value: label for label, value in explorer.color_options}
    colour = mo.ui.dropdown(options=dict(explorer.color_options), value=label_of[explorer.color.value],
                            label="Colour by")
    mo.vstack([colour, mo.hstack([tree, points], widths=[1, 3], align="start")])
    return (colour,)


@app.cell
def _(colour, explorer):
    if colour.value:
        explorer.color.value = colour.value  # the explorer recolours the map
    return


@app.cell
def _(explorer, mo, points, tree):
    # re-runs when a node or points are selected: the explorer has already filled its details panel
    _ = (tree.value, points.value)
    mo.Html(f"<div class='clio-details'>{explorer.details.value}</div>")
    return


if __name__ == "__main__":
    app.run()
