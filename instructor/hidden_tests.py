"""Hidden tests of the graded exercises. Instructors only: never hand this file to students.

``tools/grade.py`` imports this module for :data:`EXERCISES` and :func:`case_names`, and sends its
source into the grading kernel, where

* :func:`compute_oracles` runs once, right after the reference notebook and before any
  submission: it records expected values with the package's own functions
  (``fr_triplets.triplet_loss``, ``fr_utils.verify``, ``fr_utils.who_is_it``) while nothing a
  student wrote has run yet;
* :func:`run_cases` runs each case of one exercise against the submitted function and returns
  ``[{"name", "passed", "message"}, ...]``.

No solution is written here: each case compares the submission with hand-computed numbers or
with those recorded oracles. The cases go beyond the notebook's visible tests: a batch of one,
alpha = 0 and large alpha, a list for ``y_pred``, thresholds exactly at the distance, names and
databases the notebook never uses, a person missing from the database, and that the database
is left unchanged.

Top-level imports are standard library only (the grader process imports this file without
TensorFlow); the cases import what they need inside the kernel.
"""

import contextlib
import io
import json
import re

EXERCISES = {
    "exercise-1-triplet-loss": {"function": "triplet_loss", "points": 10},
    "exercise-2-verify": {"function": "verify", "points": 10},
    "exercise-3-who-is-it": {"function": "who_is_it", "points": 10},
}

# Photos the notebook's visible tests do not use (the database is the first train photo of each).
GENUINE = ("images/val/madonna/madonna_02.jpg", "madonna")
IMPOSTOR = ("images/val/elton_john/elton_john_02.jpg", "mindy_kaling")
KNOWN = ("images/val/jerry_seinfeld/jerry_seinfeld_05.jpg", "jerry_seinfeld")
UNKNOWN = ("images/val/elton_john/elton_john_03.jpg", "elton_john")  # asked with elton_john removed
SOLO = ("images/val/mindy_kaling/mindy_kaling_02.jpg", "mindy_kaling")
TOLERANCE = 1e-4  # on distances: the same photo and model give the same encoding up to float noise

_CASES = {}


def case(exercise):
    """Register a hidden test ``f(func, g, oracle)`` for an exercise; it fails by raising."""
    def register(function):
        _CASES.setdefault(exercise, []).append(function)
        return function
    return register


def case_names(exercise):
    return [function.__name__ for function in _CASES.get(exercise, [])]


def run_cases(exercise, function_name, oracle_json, g):
    """Run every case of ``exercise`` on ``g[function_name]``; one result dict per case."""
    func = g.get(function_name)
    oracle = json.loads(oracle_json)
    results = []
    for test in _CASES.get(exercise, []):
        try:
            test(func, g, oracle)
            results.append({"name": test.__name__, "passed": True, "message": ""})
        except KeyboardInterrupt:  # the grader's timeout
            raise
        except BaseException as exc:  # noqa: BLE001 - a student's code may raise anything
            message = str(exc) if isinstance(exc, AssertionError) and str(exc) else f"{type(exc).__name__}: {exc}"
            results.append({"name": test.__name__, "passed": False, "message": message[:300]})
    return results


def _captured(func, *args, **kwargs):
    """Call ``func`` with stdout captured: ``(result, printed text)``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = func(*args, **kwargs)
    return result, buffer.getvalue()


def _copy_database(database):
    import numpy as np

    return {name: np.array(encoding, dtype=np.float32, copy=True) for name, encoding in database.items()}


def _pair(result, names):
    assert isinstance(result, tuple) and len(result) == 2, f"must return a pair ({names}), got {result!r:.80}"
    return result


def _check_unchanged(before, after):
    import numpy as np

    assert list(before) == list(after), "the database's names changed: do not modify the database"
    for name in before:
        assert np.array_equal(before[name], after[name]), f"the database's encoding of {name} changed"


def _as_distance(value, what):
    import numpy as np

    assert np.ndim(value) == 0, f"{what} must be one number, got shape {np.shape(value)}"
    number = float(value)
    assert np.isfinite(number), f"{what} is {number}"
    return number


def _door(value):
    import numpy as np

    assert isinstance(value, (bool, np.bool_)), f"door_open must be True or False, got {value!r:.40}"
    return bool(value)


# ---------------------------------------------------------------------------------------------
# Oracles: expected values from the package's own functions, before any submission runs
# ---------------------------------------------------------------------------------------------
def _random_triplets(m, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (m, 128)).astype(np.float32) for _ in range(3)]


TRIPLET_RANDOM = {"batch of 1": (1, 11, 0.2), "batch of 16": (16, 12, 0.2), "alpha 0.5": (16, 13, 0.5),
                  "alpha 0": (16, 14, 0.0), "alpha 50": (8, 15, 50.0)}


def compute_oracles(g):
    """Expected values of every exercise's cases: ``{exercise id: {...}}`` (JSON-able)."""
    return {"exercise-1-triplet-loss": triplet_oracles(),
            "exercise-2-verify": verify_oracles(g),
            "exercise-3-who-is-it": who_is_it_oracles(g)}


def triplet_oracles():
    import fr_triplets

    return {key: float(fr_triplets.triplet_loss(None, _random_triplets(m, seed), alpha))
            for key, (m, seed, alpha) in TRIPLET_RANDOM.items()}


def _reference_call(function, *args, **kwargs):
    (dist, second), printed = _captured(function, *args, **kwargs)
    return {"dist": float(dist), "second": second if isinstance(second, str) else bool(second), "printed": printed}


def verify_oracles(g):
    import fr_utils

    model, database = g["model"], _copy_database(g["database"])
    threshold = float(g.get("DEFAULT_THRESHOLD", fr_utils.DEFAULT_THRESHOLD))
    oracles = {"threshold": threshold,
               "genuine": _reference_call(fr_utils.verify, *GENUINE, database, model, threshold),
               "impostor": _reference_call(fr_utils.verify, *IMPOSTOR, database, model, threshold)}
    # The cases assume photos for which these hold; fail loudly (the grader stops) otherwise.
    assert oracles["genuine"]["second"] and not oracles["impostor"]["second"], oracles
    return oracles


def who_is_it_oracles(g):
    import fr_utils

    model, database = g["model"], _copy_database(g["database"])
    threshold = float(g.get("DEFAULT_THRESHOLD", fr_utils.DEFAULT_THRESHOLD))
    without = {name: e for name, e in database.items() if name != UNKNOWN[1]}
    oracles = {"threshold": threshold,
               "known": _reference_call(fr_utils.who_is_it, KNOWN[0], database, model, threshold),
               "unknown": _reference_call(fr_utils.who_is_it, UNKNOWN[0], without, model, threshold),
               "solo": _reference_call(fr_utils.who_is_it, SOLO[0], {"solo": database[SOLO[1]]}, model, 2.0),
               "all_close": _reference_call(fr_utils.who_is_it, KNOWN[0], dict(reversed(list(database.items()))),
                                            model, 2.0)}
    assert oracles["known"]["second"] == KNOWN[1] and oracles["unknown"]["dist"] >= threshold, oracles
    return oracles


# ---------------------------------------------------------------------------------------------
# Exercise 1: triplet_loss(y_true, y_pred, alpha=0.2)
# ---------------------------------------------------------------------------------------------
def _loss_value(loss):
    import numpy as np

    assert np.ndim(loss) == 0, f"the loss must be a scalar, got shape {np.shape(loss)}"
    return float(loss)


def _close(got, expected, what):
    assert abs(got - expected) <= 1e-4 + 1e-4 * abs(expected), f"{what}: expected {expected:.6g}, got {got:.6g}"


def _tensors(*rows):
    import tensorflow as tf

    return tuple(tf.constant(r, dtype=tf.float32) for r in rows)


@case("exercise-1-triplet-loss")
def triplet_one_violating_triplet(func, g, oracle):
    # ||a-p||^2 = 9, ||a-n||^2 = 1: 9 - 1 + 0.2
    _close(_loss_value(func(None, _tensors([[0.0, 0.0]], [[3.0, 0.0]], [[0.0, 1.0]]))), 8.2, "one triplet")


@case("exercise-1-triplet-loss")
def triplet_one_satisfied_triplet(func, g, oracle):
    # ||a-p||^2 = 1, ||a-n||^2 = 9: max(1 - 9 + 0.2, 0) = 0
    _close(_loss_value(func(None, _tensors([[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 3.0]]))), 0.0, "a satisfied triplet")


@case("exercise-1-triplet-loss")
def triplet_hinge_per_example(func, g, oracle):
    # Example 1: 9 - 1 + 0.2 = 8.2; example 2: 0 - 16 + 0.2 < 0 -> 0. Total 8.2.
    # Summing the distances over the whole batch first gives max(9 - 17 + 0.2, 0) = 0.
    anchor, positive, negative = [[0.0, 0.0], [1.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 5.0]]
    _close(_loss_value(func(None, _tensors(anchor, positive, negative))), 8.2,
           "max(.., 0) must apply to each example (sum the squares over axis=-1 only)")


@case("exercise-1-triplet-loss")
def triplet_margin_alpha(func, g, oracle):
    # Three identical triplets with a = p = n: each contributes exactly alpha.
    same = [[0.5, -1.0, 2.0]] * 3
    _close(_loss_value(func(None, _tensors(same, same, same))), 0.6, "a = p = n, default alpha 0.2 (m * alpha)")
    _close(_loss_value(func(None, _tensors(same, same, same), alpha=1.5)), 4.5, "a = p = n, alpha 1.5")
    _close(_loss_value(func(None, _tensors(same, same, same), alpha=0.0)), 0.0, "a = p = n, alpha 0")


@case("exercise-1-triplet-loss")
def triplet_random_batches(func, g, oracle):
    import tensorflow as tf

    for key, (m, seed, alpha) in TRIPLET_RANDOM.items():
        y_pred = tuple(tf.constant(x) for x in _random_triplets(m, seed))
        _close(_loss_value(func(None, y_pred, alpha=alpha)), oracle[key], f"random {key}")


@case("exercise-1-triplet-loss")
def triplet_list_and_y_true(func, g, oracle):
    import numpy as np

    a, p, n = _random_triplets(4, 21)
    as_tuple = _loss_value(func(None, _tensors(a, p, n)))
    _close(_loss_value(func(None, list(_tensors(a, p, n)))), as_tuple, "y_pred given as a list")
    _close(_loss_value(func(np.ones((4, 1), np.float32), _tensors(a, p, n))), as_tuple, "y_true must be ignored")


@case("exercise-1-triplet-loss")
def triplet_returns_scalar_tensor(func, g, oracle):
    import tensorflow as tf

    loss = func(None, _tensors(*_random_triplets(3, 22)))
    assert isinstance(loss, tf.Tensor), f"return a TensorFlow tensor, got {type(loss).__name__}"
    assert loss.shape == (), f"the loss must be a scalar tensor, got shape {loss.shape}"


# ---------------------------------------------------------------------------------------------
# Exercise 2: verify(image_path, identity, database, model, threshold=DEFAULT_THRESHOLD)
# ---------------------------------------------------------------------------------------------
def _verify(func, g, photo, identity, database=None, **kw):
    database = _copy_database(g["database"] if database is None else database)
    before = _copy_database(database)
    result, printed = _captured(func, photo, identity, database, g["model"], **kw)
    _check_unchanged(before, database)
    dist, door_open = _pair(result, "dist, door_open")
    return _as_distance(dist, "dist"), _door(door_open), printed


@case("exercise-2-verify")
def verify_genuine_default_threshold(func, g, oracle):
    expected = oracle["genuine"]
    dist, door_open, printed = _verify(func, g, *GENUINE)
    assert abs(dist - expected["dist"]) < TOLERANCE, f"distance {dist:.4f}, expected {expected['dist']:.4f}"
    assert door_open, f"{GENUINE[1]}'s own photo (distance {dist:.3f}) must open the door at the default threshold"
    assert printed == expected["printed"], f"printed {printed!r}, expected {expected['printed']!r}"


@case("exercise-2-verify")
def verify_impostor(func, g, oracle):
    expected = oracle["impostor"]
    dist, door_open, printed = _verify(func, g, *IMPOSTOR)
    assert abs(dist - expected["dist"]) < TOLERANCE, f"distance {dist:.4f}, expected {expected['dist']:.4f}"
    assert not door_open, f"an impostor at distance {dist:.3f} must not get in"
    assert printed == expected["printed"], f"printed {printed!r}, expected {expected['printed']!r}"


@case("exercise-2-verify")
def verify_threshold_is_strict(func, g, oracle):
    dist, _, _ = _verify(func, g, *GENUINE, threshold=2.0)
    _, at_distance, printed = _verify(func, g, *GENUINE, threshold=dist)
    assert not at_distance, "at a threshold equal to the distance the door stays shut (dist < threshold)"
    assert printed == f"It's not {GENUINE[1]}, please go away\n", f"printed {printed!r}"


@case("exercise-2-verify")
def verify_uses_threshold_argument(func, g, oracle):
    _, door_open, _ = _verify(func, g, *IMPOSTOR, threshold=1.99)
    assert door_open, "with threshold=1.99 the impostor's distance is below it: the door must open"
    _, door_open, _ = _verify(func, g, *GENUINE, threshold=0.05)
    assert not door_open, "with threshold=0.05 even the genuine photo must be refused"


@case("exercise-2-verify")
def verify_other_names_and_database(func, g, oracle):
    # Uses the database and identity it is given, whatever the names.
    database = {"Ada Lovelace": g["database"][GENUINE[1]], "Alan Turing": g["database"][IMPOSTOR[1]]}
    dist, door_open, printed = _verify(func, g, GENUINE[0], "Ada Lovelace", database)
    assert door_open and printed == "It's Ada Lovelace, welcome in!\n", f"printed {printed!r}, door_open {door_open}"
    assert abs(dist - oracle["genuine"]["dist"]) < TOLERANCE, "the distance to the identity's own encoding"


# ---------------------------------------------------------------------------------------------
# Exercise 3: who_is_it(image_path, database, model, threshold=DEFAULT_THRESHOLD)
# ---------------------------------------------------------------------------------------------
def _who(func, g, photo, database=None, **kw):
    database = _copy_database(g["database"] if database is None else database)
    before = _copy_database(database)
    result, printed = _captured(func, photo, database, g["model"], **kw)
    _check_unchanged(before, database)
    min_dist, identity = _pair(result, "min_dist, identity")
    return _as_distance(min_dist, "min_dist"), identity, printed


def _check_recognised(printed, identity, dist):
    """"it's <identity>, the distance is <dist>": the distance to 4 decimals (or more), as in the
    notebook; nbval's sanitising of the visible test likewise compares 4 decimals."""
    match = re.fullmatch(r"it's (.+), the distance is (\d+\.\d{4,})\n", printed)
    assert match, f"printed {printed!r}, expected \"it's {identity}, the distance is {dist:.4f}\""
    assert match.group(1) == identity and abs(float(match.group(2)) - dist) <= 1.5e-4, \
        f"printed {printed!r}, expected \"it's {identity}, the distance is {dist:.4f}\""


@case("exercise-3-who-is-it")
def who_known_person(func, g, oracle):
    expected = oracle["known"]
    dist, identity, printed = _who(func, g, KNOWN[0])
    assert identity == KNOWN[1], f"identity {identity!r}, expected {KNOWN[1]!r}"
    assert abs(dist - expected["dist"]) < TOLERANCE, f"min_dist {dist:.4f}, expected {expected['dist']:.4f}"
    _check_recognised(printed, identity, expected["dist"])


@case("exercise-3-who-is-it")
def who_person_not_in_database(func, g, oracle):
    expected = oracle["unknown"]
    without = {name: e for name, e in g["database"].items() if name != UNKNOWN[1]}
    dist, _, printed = _who(func, g, UNKNOWN[0], without)
    assert abs(dist - expected["dist"]) < TOLERANCE, \
        f"min_dist {dist:.4f}, expected the smallest distance {expected['dist']:.4f}"
    assert printed == "Not in the database.\n", f"printed {printed!r}, expected 'Not in the database.'"


@case("exercise-3-who-is-it")
def who_threshold_is_strict(func, g, oracle):
    dist, _, _ = _who(func, g, KNOWN[0], threshold=2.0)
    _, _, printed = _who(func, g, KNOWN[0], threshold=dist)
    assert printed == "Not in the database.\n", \
        f"at a threshold equal to the smallest distance nobody is recognised (min_dist < threshold); printed {printed!r}"


@case("exercise-3-who-is-it")
def who_single_person_database(func, g, oracle):
    expected = oracle["solo"]
    dist, identity, printed = _who(func, g, SOLO[0], {"solo": g["database"][SOLO[1]]}, threshold=2.0)
    assert identity == "solo", f"identity {identity!r}, expected 'solo' (the only person)"
    assert abs(dist - expected["dist"]) < TOLERANCE, f"min_dist {dist:.4f}, expected {expected['dist']:.4f}"
    _check_recognised(printed, identity, expected["dist"])


@case("exercise-3-who-is-it")
def who_closest_not_first(func, g, oracle):
    # Everybody is under threshold 2.0, listed in reverse order: the answer is still the closest.
    expected = oracle["all_close"]
    database = dict(reversed(list(g["database"].items())))
    dist, identity, _ = _who(func, g, KNOWN[0], database, threshold=2.0)
    assert identity == expected["second"], \
        f"identity {identity!r}: the closest person is {expected['second']!r} (smallest distance, not the first or largest)"
    assert abs(dist - expected["dist"]) < TOLERANCE, f"min_dist {dist:.4f}, expected {expected['dist']:.4f}"
