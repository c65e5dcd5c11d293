"""The instructor workflow: the student edition (tools/make_student.py) and the grader (tools/grade.py).

The fast tests check the pieces on the real reference notebook without a kernel. One grader run
(module fixture ``graded``, a few minutes: the reference notebook runs once, then every
submission reuses that kernel) grades the reference, the student edition and the hand-made
submissions of ``tests/submissions/`` and the tests below check each score and reason.

The reference is ``Face_Recognition.ipynb`` executed by ``make notebook`` (its stored outputs are
what the grader compares with); ``FR_REFERENCE_NOTEBOOK`` may point to another executed copy.
"""

import copy
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from tools import grade, make_student

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("FR_REFERENCE_NOTEBOOK", ROOT / "Face_Recognition.ipynb"))
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
EXERCISE_IDS = ["exercise-1-triplet-loss", "exercise-2-verify", "exercise-3-who-is-it"]
TIMEOUT_S = 15  # per cell in the grader run below (the infinite loop costs this much)


@pytest.fixture(scope="module")
def reference():
    assert REFERENCE.is_file(), f"{REFERENCE} is missing: run `make notebook`"
    notebook = nbformat.read(str(REFERENCE), as_version=4)
    unrun = [c.id for c in notebook.cells if c.cell_type == "code" and c.execution_count is None]
    assert not unrun, f"{REFERENCE.name}: cells {unrun[:3]} not executed; run `make notebook` (the grader needs outputs)"
    return notebook


def submitted_cells():
    """{file stem: (exercise id, source)} of the hand-made submissions."""
    cells = {}
    for path in sorted(SUBMISSIONS.glob("*.pycell")):
        source = path.read_text()
        exercise = re.match(r"# exercise: (\S+)", source).group(1)
        cells[path.stem] = (exercise, source)
    return cells


def with_cell(reference, exercise_id, source):
    """The reference notebook with one graded cell's source replaced."""
    notebook = copy.deepcopy(reference)
    cell = next(c for c in notebook.cells if c.get("id") == exercise_id)
    cell.source = source
    cell.outputs, cell.execution_count = [], None
    return notebook


def reordered(reference):
    """The graded cells moved around: exercise 3 first, exercise 1 last, and exercise 2 with a
    new id and no tags (as if deleted and re-typed), so it can only be found by its function.
    Exercises 1 and 2 get a comment line, so that they are graded again, not matched to the
    reference's identical code."""
    notebook = copy.deepcopy(reference)
    cells = {c.get("id"): c for c in notebook.cells}
    graded = [cells[i] for i in EXERCISE_IDS]
    rest = [c for c in notebook.cells if c.get("id") not in EXERCISE_IDS]
    graded[1].id, graded[1].metadata = "a1b2c3d4", {}
    for cell in graded[:2]:
        cell.source += "\n# moved here"
    notebook.cells = [graded[2]] + rest[:10] + [graded[1]] + rest[10:] + [graded[0]]
    return notebook


# ---------------------------------------------------------------------------------------------
# Student edition
# ---------------------------------------------------------------------------------------------
def test_blank_source_replaces_each_region_with_the_placeholder():
    source = ("def f(x):\n    y = 1\n    ### START CODE HERE ### (2 lines)\n    y = x + 1\n    z = y\n"
              "    ### END CODE HERE ###\n    if y:\n        ### START CODE HERE ###\n        y = 3\n"
              "        ### END CODE HERE ###\n    return y\n")
    assert make_student.blank_source(source, 4, "f") == (
        "def f(x):\n    y = 1\n    ### START CODE HERE ### (2 lines)\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise 4: f")\n    ### END CODE HERE ###\n    if y:\n'
        '        ### START CODE HERE ###\n        # YOUR CODE HERE\n        raise NotImplementedError("Exercise 4: f")\n'
        "        ### END CODE HERE ###\n    return y\n")


@pytest.mark.parametrize("source", [
    "def f():\n    ### START CODE HERE ###\n    x = 1\n",  # never closed
    "def f():\n    x = 1\n    ### END CODE HERE ###\n",  # END without START
    "def f():\n    ### START CODE HERE ###\n    ### START CODE HERE ###\n    ### END CODE HERE ###\n",  # nested
    "def f():\n    x = 1\n",  # no region at all
])
def test_broken_markers_are_refused(source):
    with pytest.raises(make_student.MarkerError):
        make_student.blank_source(source, 1, "f")


def test_student_edition_of_the_reference(reference):
    student = make_student.make_student_edition(reference)
    assert make_student.edition_differences(reference, student) == []
    assert [g.function for g in make_student.graded_cells(reference)] == ["triplet_loss", "verify", "who_is_it"]
    for ref_cell, cell in zip(reference.cells, student.cells):
        if cell.get("id") in EXERCISE_IDS:
            number = EXERCISE_IDS.index(cell.id) + 1
            assert f'raise NotImplementedError("Exercise {number}: ' in cell.source
            assert cell.source.count("### START CODE HERE ###") == ref_cell.source.count("### START CODE HERE ###")
            assert cell.outputs == [] and cell.execution_count is None
            # The solution lines are gone: nothing between the markers but the placeholder.
            inside = re.findall(r"### START CODE HERE ###.*?\n(.*?)### END CODE HERE ###", cell.source, re.S)
            assert all(len(block.strip().splitlines()) == 2 for block in inside)
        elif make_student.is_test_cell(cell):
            assert cell.outputs == [] and cell.source == ref_cell.source
        else:
            assert cell == ref_cell  # markdown ("Expected output" included), other cells and their outputs
    assert make_student.placeholder_is_explained(reference), "the notebook must tell students about the placeholder"


@pytest.mark.parametrize("damage", ["markdown", "outside-marker", "solution-left", "test-source", "output-left",
                                    "other-output", "metadata", "cell-removed"])
def test_edition_check_catches_every_other_difference(reference, damage):
    student = make_student.make_student_edition(reference)
    cells = {c.get("id"): c for c in student.cells}
    solved = {c.get("id"): c for c in reference.cells}
    if damage == "markdown":
        cells["exercise-1-expected"].source += " "
    elif damage == "outside-marker":
        cells["exercise-2-verify"].source = cells["exercise-2-verify"].source.replace("return dist, door_", "return ")
    elif damage == "solution-left":
        cells["exercise-3-who-is-it"].source = solved["exercise-3-who-is-it"].source
    elif damage == "test-source":
        cells["exercise-1-test"].source = "pass"
    elif damage == "output-left":
        cells["exercise-2-test"].outputs = copy.deepcopy(solved["exercise-2-test"].outputs)
        cells["exercise-2-test"].execution_count = 3
    elif damage == "other-output":
        cells["database"].outputs = []
    elif damage == "metadata":
        cells["exercise-1-triplet-loss"].metadata["tags"] = []
    else:
        student.cells = student.cells[:-1]
    assert make_student.edition_differences(reference, student)


def test_make_student_writes_a_checked_edition(tmp_path, reference):
    out = tmp_path / "student" / "Face_Recognition.ipynb"
    assert make_student.main(["--reference", str(REFERENCE), "--out", str(out)]) == 0
    written = nbformat.read(str(out), as_version=4)
    nbformat.validate(written)
    assert make_student.edition_differences(reference, written) == []

    broken = copy.deepcopy(reference)
    cell = next(c for c in broken.cells if c.get("id") == "exercise-2-verify")
    cell.source = cell.source.replace("### END CODE HERE ###", "")
    nbformat.write(broken, str(tmp_path / "broken.ipynb"))
    out.unlink()
    assert make_student.main(["--reference", str(tmp_path / "broken.ipynb"), "--out", str(out)]) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Grader pieces (no kernel)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, kind", [
    ("def f(:\n    pass", "syntax"),
    ("from fr_utils import verify\ndef verify2(): pass", "solution"),
    ("def verify(a):\n    return fr_utils.who_is_it(a)", "solution"),
    ("import fr_triplets", "solution"),
    ("import fr_utils as fu\ndef who_is_it(p, d, m):\n    return fu.who_is_it(p, d, m)", "solution"),
    ("def triplet_loss(t, p, alpha=0.2):\n    return fr_training.fr_triplets.triplet_loss(t, p, alpha)", "solution"),
    ("x = open('Face_Recognition.ipynb').read()", "solution"),
    ("def f():\n    os.remove('images/x.jpg')", "files"),
    ("import shutil\nshutil.rmtree('images')", "files"),
    ("from pathlib import Path\nPath('fr_utils.py').unlink()", "files"),
    ("!rm -rf images", "process"),
    ("import subprocess", "process"),
    ("def f():\n    exit()", "process"),
    ("np.linalg.norm = lambda x: 0", "tamper"),
    ("setattr(fr_utils, 'img_to_encoding', None)", "tamper"),
    ("del __grader__", "tamper"),
])
def test_static_checks_refuse_before_running(source, kind):
    problems = grade.source_problems(source)
    assert problems and problems[0].kind == kind, problems


@pytest.mark.parametrize("name", sorted(p.stem for p in SUBMISSIONS.glob("*.pycell")))
def test_static_checks_let_honest_code_run(name, reference):
    exercise, source = submitted_cells()[name]
    problems = grade.source_problems(source)
    refused = {"verify_syntax_error": "syntax", "verify_imports_solution": "solution", "verify_deletes_files": "files"}
    assert [p.kind for p in problems[:1]] == ([refused[name]] if name in refused else []), problems
    for cell in reference.cells:  # and the reference's own graded cells
        if cell.get("id") in EXERCISE_IDS:
            assert not grade.source_problems(cell.source), cell.id
    assert not grade.source_problems("%matplotlib inline\n%timeit f(1)")


def test_exercises_and_their_cells(reference):
    exercises = {e.cell_id: e for e in grade.find_exercises(reference)}
    assert list(exercises) == EXERCISE_IDS
    ids = lambda indices: [reference.cells[i].id for i in indices]  # noqa: E731
    for number, (key, exercise) in enumerate(exercises.items(), start=1):
        assert ids(exercise.tests) == [f"exercise-{number}-test"]
        assert set(exercise.tests) <= set(exercise.block)
        assert all(i > exercise.index for i in exercise.block + exercise.downstream)
    for exercise in exercises.values():  # every later cell that calls the function is checked
        for i, cell in enumerate(reference.cells):
            calls = re.search(rf"(?<![\w.]){exercise.function}\(", cell.source)  # not fr_utils.verify(
            if i > max(exercise.block) and cell.cell_type == "code" and calls:
                assert i in exercise.downstream, cell.id


def test_submitted_cells_are_found_by_id_or_function_not_position(reference):
    exercises = grade.find_exercises(reference)
    moved = reordered(reference)
    for exercise in exercises:
        cell, how = grade.find_submitted_cell(moved, exercise)
        assert exercise.function in make_student.defined_functions(cell.source)
        assert ("cell id" in how) == (exercise.cell_id != "exercise-2-verify")
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert grade.find_submitted_cell(empty, exercises[0])[0] is None


def test_submissions_are_named_after_files_or_folders(tmp_path):
    checkpoint = "bob/.ipynb_checkpoints/Face_Recognition-checkpoint.ipynb"
    for relative in ["alice.ipynb", "bob/Face_Recognition.ipynb", checkpoint]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}")
    assert sorted(grade.find_submissions(tmp_path)) == ["alice", "bob"]


def test_output_comparison_is_nbvals(reference):
    comparison = grade.OutputComparison()
    cell = next(c for c in reference.cells if c.get("id") == "exercise-2-test")
    assert comparison.difference(cell.outputs, cell.outputs) is None
    changed = copy.deepcopy(cell.outputs)
    changed[0]["text"] = changed[0]["text"].replace("welcome in", "welcome")
    assert "welcome" in comparison.difference(changed, cell.outputs)
    # nbval merges the stream pieces before comparing: one stream for several prints is equal.
    merged = [nbformat.v4.new_output("stream", name="stdout", text="".join(o["text"] for o in cell.outputs))]
    assert comparison.difference(merged, cell.outputs) is None


def _triplet_variants():
    """The correct triplet loss and mistakes the hidden tests must each catch (name -> function)."""
    import tensorflow as tf

    def distances(y_pred, **kw):
        a, p, n = y_pred[0], y_pred[1], y_pred[2]
        return tf.reduce_sum(tf.square(a - p), **kw), tf.reduce_sum(tf.square(a - n), **kw)

    def correct(y_true, y_pred, alpha=0.2):
        pos, neg = distances(y_pred, axis=-1)
        return tf.reduce_sum(tf.maximum(pos - neg + alpha, 0.0))

    def no_axis(y_true, y_pred, alpha=0.2):
        pos, neg = distances(y_pred)
        return tf.reduce_sum(tf.maximum(pos - neg + alpha, 0.0))

    def no_alpha(y_true, y_pred, alpha=0.2):
        pos, neg = distances(y_pred, axis=-1)
        return tf.reduce_sum(tf.maximum(pos - neg, 0.0))

    def fixed_alpha(y_true, y_pred, alpha=0.2):
        return correct(y_true, y_pred, 0.2)

    def mean(y_true, y_pred, alpha=0.2):
        pos, neg = distances(y_pred, axis=-1)
        return tf.reduce_mean(tf.maximum(pos - neg + alpha, 0.0))

    def python_float(y_true, y_pred, alpha=0.2):
        return float(correct(y_true, y_pred, alpha))

    def tuples_only(y_true, y_pred, alpha=0.2):
        assert isinstance(y_pred, tuple)
        return correct(y_true, y_pred, alpha)

    return {"correct": (correct, set()),
            "no_axis": (no_axis, {"triplet_hinge_per_example", "triplet_random_batches"}),
            "no_alpha": (no_alpha, {"triplet_one_violating_triplet", "triplet_margin_alpha"}),
            "fixed_alpha": (fixed_alpha, {"triplet_margin_alpha", "triplet_random_batches"}),
            "mean": (mean, {"triplet_margin_alpha", "triplet_random_batches"}),
            "python_float": (python_float, {"triplet_returns_scalar_tensor"}),
            "tuples_only": (tuples_only, {"triplet_list_and_y_true"})}


@pytest.mark.parametrize("variant", list(_triplet_variants()))
def test_hidden_triplet_cases_catch_each_mistake(variant):
    hidden, _ = grade.load_hidden_tests(grade.DEFAULT_HIDDEN_TESTS)
    function, must_fail = _triplet_variants()[variant]
    oracle = json.dumps(hidden.triplet_oracles())
    results = hidden.run_cases("exercise-1-triplet-loss", "triplet_loss", oracle, {"triplet_loss": function})
    failed = {r["name"] for r in results if not r["passed"]}
    assert must_fail <= failed and (failed == set()) == (variant == "correct"), results


# ---------------------------------------------------------------------------------------------
# One grader run over all submissions
# ---------------------------------------------------------------------------------------------
EXPECTED = {  # submission -> {exercise: (points, words in the reason)}; exercises not named: full marks
    "reference": {},
    "reordered": {},
    "student_edition": {e: (0, "NotImplementedError") for e in EXERCISE_IDS},
    "triplet_no_axis": {"exercise-1-triplet-loss": (0, "exercise-1-test raised AssertionError")},
    "triplet_no_alpha": {"exercise-1-triplet-loss": (0, "exercise-1-test raised AssertionError")},
    "triplet_infinite_loop": {"exercise-1-triplet-loss": (0, "did not finish within")},
    "triplet_writes_file": {"exercise-1-triplet-loss": (0, "deleted or changed files: fr_eval.py")},
    "triplet_alternative": {},
    "triplet_sets_printoptions": {},
    "verify_ge": {"exercise-2-verify": (0, "exercise-2-test raised AssertionError")},
    "verify_le": {"exercise-2-verify": (0, "use dist < threshold")},
    "verify_syntax_error": {"exercise-2-verify": (0, "syntax error on line")},
    "verify_imports_solution": {"exercise-2-verify": (0, "uses the solution fr_utils.verify")},
    "verify_prints_debug": {"exercise-2-verify": (0, "printed something other than the reference")},
    "verify_deletes_files": {"exercise-2-verify": (0, "os.remove()")},
    "who_is_it_max": {"exercise-3-who-is-it": (0, "exercise-3-test raised AssertionError")},
    "who_is_it_loop": {},
    "who_is_it_first_match": {"exercise-3-who-is-it": ("partial", "who_closest_not_first")},
    "not_a_notebook": {e: (0, "not a readable notebook") for e in EXERCISE_IDS},
}


@pytest.fixture(scope="module")
def graded(reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    nbformat.write(reference, str(folder / "reference.ipynb"))
    nbformat.write(make_student.make_student_edition(reference), str(folder / "student_edition.ipynb"))
    nbformat.write(reordered(reference), str(folder / "reordered.ipynb"))
    for name, (exercise, source) in submitted_cells().items():
        nbformat.write(with_cell(reference, exercise, source), str(folder / f"{name}.ipynb"))
    (folder / "not_a_notebook.ipynb").write_text('{"cells": [')
    out = tmp_path_factory.mktemp("grades")
    table, timings, results = grade.grade_submissions(folder, REFERENCE, out, timeout=TIMEOUT_S)
    print(f"\ngrader timings: setup {timings['setup_s']:.1f} s, per submission "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings["per_submission_s"].items()))
    return {"table": table, "timings": timings, "results": results, "out": out}


def test_every_submission_scores_as_expected(graded):
    table = graded["table"]
    assert sorted(table.student.unique()) == sorted(EXPECTED)
    wrong = []
    for row in table.itertuples():
        points, words = EXPECTED[row.student].get(row.exercise, (row.max_points, "passed"))
        if points == "partial":
            ok = 0 < row.points < row.max_points
        else:
            ok = row.points == points
        if not ok or words not in row.reason:
            wrong.append(f"{row.student} {row.exercise}: {row.points}/{row.max_points} {row.reason!r} "
                         f"(expected {points}, {words!r})")
    assert not wrong, "\n".join(wrong)


def test_reference_scores_full_marks_on_hidden_tests_too(graded):
    reference = [r for r in graded["results"] if r.student == "reference"]
    assert [r.points for r in reference] == [10.0, 10.0, 10.0]
    for r in reference:
        hidden = [d for d in r.details if d.startswith("hidden test ")]
        assert len(hidden) >= 5 and all(d.endswith(": passed") for d in hidden), r.details


def test_csv_and_feedback(graded):
    import pandas as pd

    csv = pd.read_csv(graded["out"] / "grades.csv")
    assert list(csv.columns) == ["student", "exercise", "points", "max_points", "reason"]
    assert len(csv) == len(EXPECTED) * len(EXERCISE_IDS)
    feedback = (graded["out"] / "feedback" / "verify_ge.txt").read_text()
    assert "20 / 30 points" in feedback and "exercise-2-test raised AssertionError" in feedback
    first_match = (graded["out"] / "feedback" / "who_is_it_first_match.txt").read_text()
    assert "hidden test who_closest_not_first: FAILED" in first_match
    settings = (graded["out"] / "feedback" / "triplet_sets_printoptions.txt").read_text()
    assert "changed NumPy's print options (restored)" in settings and "30 / 30 points" in settings
    moved = (graded["out"] / "feedback" / "reordered.txt").read_text()
    assert "found by the cell defining verify()" in moved and moved.count("result reused") == 1


def test_grading_is_isolated_and_reuses_one_kernel(graded):
    # triplet_writes_file emptied fr_eval.py in the grader's working copy, not in the repository.
    assert "def pairwise_distances" in (ROOT / "fr_eval.py").read_text()
    timings = graded["timings"]
    assert timings["kernel_restarts"] == 0, "the infinite loop must be interrupted, not the kernel restarted"
    # One full submission costs the set-up plus its own time; N of them share the set-up.
    one = timings["setup_s"] + timings["per_submission_s"]["reference"]
    assert timings["total_s"] < len(EXPECTED) * one
    assert timings["total_s"] < timings["setup_s"] + sum(timings["per_submission_s"].values()) + 30
