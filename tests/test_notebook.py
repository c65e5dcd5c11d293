"""The notebook: in sync with its source, and nbval really catches a broken exercise."""

import subprocess
import sys

import nbformat
import pytest

from tools import build_notebook

ROOT = build_notebook.ROOT
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "nbval_sanitize.cfg")]


def test_committed_notebook_matches_its_source():
    committed = nbformat.read(build_notebook.NOTEBOOK, as_version=4)
    built = build_notebook.build()
    assert [c.id for c in committed.cells] == [c.id for c in built.cells]
    for ours, theirs in zip(committed.cells, built.cells):
        assert ours.source == theirs.source, f"cell {ours.id} differs: run `make notebook`"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"cell {cell.id} has no stored output: run `make notebook`"
            assert not any(o.output_type == "error" for o in cell.outputs), cell.id


def test_graded_cells_have_markers_and_a_test_cell():
    cells = {c.id: c for c in nbformat.read(build_notebook.NOTEBOOK, as_version=4).cells}
    for exercise in ("exercise-1-triplet-loss", "exercise-2-verify", "exercise-3-who-is-it"):
        source = cells[exercise].source
        assert "graded" in cells[exercise].metadata["tags"]
        assert source.count("### START CODE HERE ###") == 1 and source.count("### END CODE HERE ###") == 1
        assert cells[exercise.split("-")[0] + "-" + exercise.split("-")[1] + "-test"].metadata["tags"] == ["test"]


def _break(source, old, new):
    assert old in source, old
    return source.replace(old, new)


@pytest.mark.slow
def test_nbval_fails_on_a_deliberately_broken_copy(tmp_path):
    notebook = nbformat.read(build_notebook.NOTEBOOK, as_version=4)
    # Keep the cells up to the verify test: enough to show both failures, in half the time.
    last = [c.id for c in notebook.cells].index("exercise-2-expected")
    notebook.cells = notebook.cells[: last + 1]
    cells = {c.id: c for c in notebook.cells}
    ex1, ex2 = cells["exercise-1-triplet-loss"], cells["exercise-2-verify"]
    ex1.source = _break(ex1.source, "tf.subtract(anchor, positive)), axis=-1)", "tf.subtract(anchor, positive)))")
    ex1.source = _break(ex1.source, "tf.subtract(anchor, negative)), axis=-1)", "tf.subtract(anchor, negative)))")
    ex2.source = _break(ex2.source, "if dist < threshold:", "if dist >= threshold:")
    broken = tmp_path / "Broken.ipynb"
    nbformat.write(notebook, broken)
    for folder in ("images", "keras-facenet-h5"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NBVAL, str(broken)],
        cwd=tmp_path, capture_output=True, text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1, result.stdout[-3000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    # The two visible test cells fail (nbval numbers the code cells from 0).
    index = {c.id: i for i, c in enumerate(c for c in notebook.cells if c.cell_type == "code")}
    assert any(f"Cell {index['exercise-1-test']}" in line for line in failed), result.stdout[-3000:]
    assert any(f"Cell {index['exercise-2-test']}" in line for line in failed), result.stdout[-3000:]
    assert len(failed) >= 2
