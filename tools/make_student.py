"""Write the student edition of the reference notebook, and check it.

The reference notebook (``Face_Recognition.ipynb``) is solved and executed. Its graded cells (tag
``graded``, id ``exercise-N-...``) hold the solution between two marker lines::

    ### START CODE HERE ###
    ...solution...
    ### END CODE HERE ###

The student edition is the same notebook with, in every graded cell, the lines between each pair
of markers replaced by the placeholder (indented like the START line)::

    # YOUR CODE HERE
    raise NotImplementedError("Exercise N: <function name>")

and the outputs of the graded and test cells cleared. Everything else (markdown, "expected
output" text, the outputs of the other cells, metadata, ids) is kept as it is.
:func:`edition_differences` checks exactly that; ``main`` refuses to leave a student edition
that differs from the reference anywhere else.

Usage::

    python tools/make_student.py [--reference Face_Recognition.ipynb] [--out build/student/Face_Recognition.ipynb]
"""

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT / "Face_Recognition.ipynb"
DEFAULT_OUT = ROOT / "build" / "student" / "Face_Recognition.ipynb"

START_MARKER = "### START CODE HERE ###"
END_MARKER = "### END CODE HERE ###"
PLACEHOLDER_COMMENT = "# YOUR CODE HERE"
GRADED_TAG = "graded"
TEST_TAG = "test"
_EXERCISE_ID = re.compile(r"^exercise-(\d+)-(.+)$")
_DEF_LINE = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")


class MarkerError(ValueError):
    """A graded cell's START/END markers are missing, unbalanced or nested."""


@dataclass(frozen=True)
class GradedCell:
    """One graded exercise of the reference notebook."""

    index: int  # position in notebook.cells
    cell_id: str  # e.g. "exercise-2-verify"
    number: int  # N of "exercise-N-..."
    function: str  # the function the cell defines, e.g. "verify"

    @property
    def label(self):
        return f"Exercise {self.number}: {self.function}"


# ---------------------------------------------------------------------------------------------
# Finding exercises and marker regions
# ---------------------------------------------------------------------------------------------
def cell_tags(cell):
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def defined_functions(source):
    """Names of the top-level ``def`` statements of a cell, in order (regex fallback if the
    source does not parse, e.g. a student's syntax error)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [m.group(2) for m in map(_DEF_LINE.match, source.splitlines()) if m and not m.group(1)]
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def graded_cells(notebook):
    """The graded exercises of a reference notebook, in notebook order.

    A graded cell is a code cell tagged ``graded`` whose id is ``exercise-N-<name>``; its
    function is the first function the cell defines.
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or GRADED_TAG not in cell_tags(cell):
            continue
        match = _EXERCISE_ID.match(cell.get("id", ""))
        if not match:
            raise MarkerError(f"graded cell {index} has id {cell.get('id')!r}; graded cells need an id 'exercise-N-<name>'.")
        functions = defined_functions(cell.source)
        if not functions:
            raise MarkerError(f"graded cell {cell.id} defines no function.")
        found.append(GradedCell(index, cell.id, int(match.group(1)), functions[0]))
    numbers = [g.number for g in found]
    if len(numbers) != len(set(numbers)):
        raise MarkerError(f"two graded cells share an exercise number: {numbers}")
    return found


def is_test_cell(cell, number=None):
    """A visible test cell: tag ``test`` and id ``exercise-N-test...`` (of exercise N if given)."""
    if cell.cell_type != "code" or TEST_TAG not in cell_tags(cell):
        return False
    match = _EXERCISE_ID.match(cell.get("id", ""))
    return bool(match and match.group(2).startswith("test") and (number is None or int(match.group(1)) == number))


def marker_regions(source):
    """``[(start_line, end_line), ...]``: 0-based indices of each START line and its END line.

    Raises :class:`MarkerError` for an END without START, a START inside a region, or a region
    left open.
    """
    regions, start = [], None
    for number, line in enumerate(source.splitlines()):
        if START_MARKER in line:
            if start is not None:
                raise MarkerError(f"line {number + 1}: START CODE HERE inside another region (line {start + 1}).")
            start = number
        elif END_MARKER in line:
            if start is None:
                raise MarkerError(f"line {number + 1}: END CODE HERE without a START before it.")
            regions.append((start, number))
            start = None
    if start is not None:
        raise MarkerError(f"line {start + 1}: START CODE HERE is never closed by END CODE HERE.")
    return regions


def enclosing_function(lines, line_number):
    """Name of the ``def`` that contains line ``line_number`` (by indentation), or None."""
    indent = len(lines[line_number]) - len(lines[line_number].lstrip())
    for line in reversed(lines[:line_number]):
        match = _DEF_LINE.match(line)
        if match and len(match.group(1)) < indent:
            return match.group(2)
    return None


def placeholder_lines(indent, number, function):
    return [f"{indent}{PLACEHOLDER_COMMENT}",
            f'{indent}raise NotImplementedError("Exercise {number}: {function}")']


def blank_source(source, number, default_function):
    """The source with every START/END region replaced by the placeholder."""
    lines = source.splitlines()
    regions = marker_regions(source)
    if not regions:
        raise MarkerError(f"exercise {number}: no '{START_MARKER}' ... '{END_MARKER}' region.")
    out, previous = [], 0
    for start, end in regions:
        start_line = lines[start]
        indent = start_line[: len(start_line) - len(start_line.lstrip())]
        function = enclosing_function(lines, start) or default_function
        out += lines[previous: start + 1] + placeholder_lines(indent, number, function)
        previous = end
    out += lines[previous:]
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


# ---------------------------------------------------------------------------------------------
# The student edition and its check
# ---------------------------------------------------------------------------------------------
def cleared_cell_indices(notebook):
    """Indices of the cells whose outputs the student edition clears: graded and test cells."""
    return {i for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and (GRADED_TAG in cell_tags(cell) or is_test_cell(cell))}


def make_student_edition(reference):
    """The student edition of a reference notebook (a new notebook; the reference is unchanged)."""
    student = copy.deepcopy(reference)
    for exercise in graded_cells(reference):
        cell = student.cells[exercise.index]
        cell.source = blank_source(cell.source, exercise.number, exercise.function)
    for index in cleared_cell_indices(reference):
        student.cells[index].outputs = []
        student.cells[index].execution_count = None
    return student


def _masked(source):
    """The source with each region's content replaced by one token, and the region contents."""
    lines = source.splitlines()
    out, contents, previous = [], [], 0
    for start, end in marker_regions(source):
        out += lines[previous: start + 1] + ["<region>"]
        contents.append(lines[start + 1: end])
        previous = end
    out += lines[previous:]
    return out, contents


def _first_difference(a_lines, b_lines):
    for number, (a, b) in enumerate(zip(a_lines, b_lines)):
        if a != b:
            return f"line {number + 1}: {a!r} became {b!r}"
    return f"{len(a_lines)} lines became {len(b_lines)}"


def edition_differences(reference, student):
    """Every way ``student`` differs from ``reference`` other than the allowed ones.

    Allowed: in graded cells, the lines inside START/END regions, which must be exactly the
    placeholder; the outputs and execution counts of graded and test cells, which must be empty.
    Returns a list of readable strings (empty when the edition is right).
    """
    problems = []
    if reference.metadata != student.metadata:
        problems.append("notebook metadata differs")
    if [c.get("id") for c in reference.cells] != [c.get("id") for c in student.cells]:
        return problems + ["the cells differ (ids, count or order)"]
    exercises = {g.index: g for g in graded_cells(reference)}
    cleared = cleared_cell_indices(reference)
    for index, (ref, stu) in enumerate(zip(reference.cells, student.cells)):
        where = f"cell {index} ({ref.get('id')})"
        if ref.cell_type != stu.cell_type:
            problems.append(f"{where}: type {ref.cell_type} became {stu.cell_type}")
            continue
        if ref.metadata != stu.metadata:
            problems.append(f"{where}: metadata differs")
        if ref.get("attachments") != stu.get("attachments"):
            problems.append(f"{where}: attachments differ")
        if index in exercises:
            problems += _graded_source_differences(where, exercises[index], ref.source, stu.source)
        elif ref.source != stu.source:
            difference = _first_difference(ref.source.splitlines(), stu.source.splitlines())
            problems.append(f"{where}: source differs, {difference}")
        if ref.cell_type != "code":
            continue
        if index in cleared:
            if stu.outputs or stu.execution_count is not None:
                problems.append(f"{where}: outputs not cleared")
        elif ref.outputs != stu.outputs or ref.execution_count != stu.execution_count:
            problems.append(f"{where}: outputs differ")
    return problems


def _graded_source_differences(where, exercise, ref_source, stu_source):
    try:
        ref_masked, _ = _masked(ref_source)
        stu_masked, stu_regions = _masked(stu_source)
    except MarkerError as exc:
        return [f"{where}: {exc}"]
    problems = []
    if ref_masked != stu_masked:
        problems.append(f"{where}: code outside the markers differs, {_first_difference(ref_masked, stu_masked)}")
    ref_lines = ref_source.splitlines()
    for (start, _), content in zip(marker_regions(ref_source), stu_regions):
        indent = ref_lines[start][: len(ref_lines[start]) - len(ref_lines[start].lstrip())]
        function = enclosing_function(ref_lines, start) or exercise.function
        if content != placeholder_lines(indent, exercise.number, function):
            problems.append(f"{where}: the region after line {start + 1} is not the placeholder")
    return problems


def placeholder_is_explained(notebook):
    """Does some markdown cell tell students about the ``raise NotImplementedError`` placeholder?"""
    return any(cell.cell_type == "markdown" and "NotImplementedError" in cell.source for cell in notebook.cells)


def write_student_edition(reference_path, out_path):
    """Write the student edition, re-read it from disk and check it; returns the problems found
    (the file is removed when there are any, so a build never ships a wrong edition)."""
    reference = nbformat.read(str(reference_path), as_version=4)
    student = make_student_edition(reference)
    nbformat.validate(student)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, str(out_path))
    written = nbformat.read(str(out_path), as_version=4)
    problems = edition_differences(reference, written)
    if not placeholder_is_explained(reference):
        problems.append("no markdown cell of the reference explains the `raise NotImplementedError` placeholder")
    if problems:
        out_path.unlink()
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the solved notebook")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the student edition")
    args = parser.parse_args(argv)
    try:
        problems = write_student_edition(args.reference, args.out)
    except (MarkerError, OSError, nbformat.ValidationError, ValueError) as exc:
        print(f"make_student: {args.reference}: {exc}", file=sys.stderr)
        return 1
    if problems:
        print(f"make_student: the student edition differs from {args.reference} outside the markers:",
              *problems, sep="\n  ", file=sys.stderr)
        return 1
    reference = nbformat.read(str(args.reference), as_version=4)
    exercises = ", ".join(g.label for g in graded_cells(reference))
    print(f"wrote {args.out} ({exercises}; checked: identical to the reference outside the markers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
