"""The face database and the decisions made with it: bad names, bad encodings, bad files, and
the guarantees of saving (atomic, no pickle, old file intact whatever happens).

The databases are real ones (the notebook's: first train photo of each person) or random unit
vectors where only the file format matters.
"""

import ast
import contextlib
import errno
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fr_utils

ROOT = Path(fr_utils.__file__).resolve().parent


def random_database(n, seed=0):
    rng = np.random.default_rng(seed)
    return {f"person_{i:04d}": fr_utils.l2_normalize(rng.normal(size=(1, 128))) for i in range(n)}


def assert_same_database(loaded, expected):
    assert list(loaded) == list(expected)
    for name in expected:
        np.testing.assert_allclose(loaded[name], np.asarray(expected[name], np.float32).reshape(1, 128), atol=1e-7)


def temp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------
# verify and who_is_it with a bad identity, database or threshold: refused before any encoding
# ---------------------------------------------------------------------------------------------
def test_verify_an_unknown_identity_names_it_and_the_closest(one_shot_database, photo):
    with pytest.raises(fr_utils.DatabaseError) as caught:
        fr_utils.verify(photo, "elton_jon", one_shot_database, model=None)  # model never reached
    message = str(caught.value)
    assert message.startswith("'elton_jon' is not in the database (known: ben_afflek, elton_john,")
    assert message.endswith("Did you mean 'elton_john'?")
    with pytest.raises(fr_utils.DatabaseError, match="'Donald' is not in the database.*build_database"):
        fr_utils.verify(photo, "Donald", one_shot_database, model=None)
    assert issubclass(fr_utils.DatabaseError, ValueError)


@pytest.mark.parametrize("identity, fragment", [
    (42, "is a int; names must be strings"), (None, "is a NoneType"), (["madonna"], "is a list"),
    ("", "empty"),
])
def test_verify_a_non_name_identity(one_shot_database, photo, identity, fragment):
    with pytest.raises(fr_utils.DatabaseError, match=fragment):
        fr_utils.verify(photo, identity, one_shot_database, model=None)


def test_verify_with_an_empty_database(photo):
    with pytest.raises(fr_utils.DatabaseError, match=r"known: nobody"):
        fr_utils.verify(photo, "madonna", {}, model=None)


def test_who_is_it_with_an_empty_database(photo):
    with pytest.raises(fr_utils.DatabaseError, match="the database is empty; enrol at least one person"):
        fr_utils.who_is_it(photo, {}, model=None)


@pytest.mark.parametrize("database", [[], ["madonna"], np.zeros((5, 128)), "database.npz", None])
def test_a_database_that_is_not_a_dict(photo, database):
    with pytest.raises(fr_utils.DatabaseError, match="the database is a dict name -> encoding"):
        fr_utils.who_is_it(photo, database, model=None)
    with pytest.raises(fr_utils.DatabaseError, match="the database is a dict name -> encoding"):
        fr_utils.verify(photo, "madonna", database, model=None)


def test_a_damaged_entry_is_named(one_shot_database, photo):
    broken = dict(one_shot_database, madonna=np.full((1, 128), np.nan, np.float32))
    with pytest.raises(fr_utils.DatabaseError, match="madonna: the encoding contains NaN"):
        fr_utils.who_is_it(photo, broken, model=None)


@pytest.mark.parametrize("threshold, fragment", [
    (0, "between 0 and 2"), (-0.7, "between 0 and 2"), (3.5, "between 0 and 2"), (float("nan"), "between 0 and 2"),
    ("high", "is not a number"), ([0.7], "is not a number"),
])
def test_a_threshold_that_is_not_a_distance(one_shot_database, photo, threshold, fragment):
    with pytest.raises(fr_utils.ThresholdError, match=fragment):
        fr_utils.verify(photo, "madonna", one_shot_database, model=None, threshold=threshold)
    with pytest.raises(fr_utils.ThresholdError, match=fragment):
        fr_utils.who_is_it(photo, one_shot_database, model=None, threshold=threshold)


def test_valid_thresholds_are_accepted():
    assert fr_utils._threshold(None) == fr_utils.DEFAULT_THRESHOLD
    assert fr_utils._threshold("0.7") == 0.7 and fr_utils._threshold(np.float32(2.0)) == 2.0


# ---------------------------------------------------------------------------------------------
# Encodings and names
# ---------------------------------------------------------------------------------------------
UNIT = fr_utils.l2_normalize(np.arange(1, 129, dtype=np.float32))
BAD_ENCODINGS = {
    "wrong length": (np.zeros(127) + 1 / np.sqrt(127), "got (127,)"),
    "two rows": (np.vstack([UNIT, UNIT]), "got (2, 128)"),
    "column": (UNIT.reshape(128, 1), "got (128, 1)"),
    "NaN": (np.where(np.arange(128) == 5, np.nan, UNIT), "NaN or infinite"),
    "infinity": (np.where(np.arange(128) == 5, np.inf, UNIT), "NaN or infinite"),
    "not unit length": (UNIT * 3, "length 3.0000, not 1"),
    "all zeros": (np.zeros((1, 128)), "length 0.0000, not 1"),
    "raw model output": (np.arange(128, dtype=np.float32), "not 1"),
    "strings": (np.array(["0.1"] * 128), "holds numbers, got dtype <U3"),
    "ragged": ([[0.1] * 128, [0.2]], "not an array of numbers"),
    "photo path": ("images/train/madonna/madonna_01.jpg", "got ()"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENCODINGS))
def test_bad_encodings_are_refused(case, tmp_path):
    encoding, fragment = BAD_ENCODINGS[case]
    with pytest.raises(fr_utils.DatabaseError, match=f"^madonna: .*{re.escape(fragment)}"):
        fr_utils.check_encoding(encoding, "madonna")
    with pytest.raises(fr_utils.DatabaseError, match=re.escape(fragment)):
        fr_utils.save_database({"madonna": encoding}, tmp_path / "db.npz")
    assert list(tmp_path.iterdir()) == []  # refused before any file is touched


def test_good_encodings_in_every_accepted_form():
    for encoding in (UNIT, UNIT.reshape(1, 128), UNIT.astype(np.float64), UNIT.tolist()):
        checked = fr_utils.check_encoding(encoding)
        assert checked.shape == (1, 128) and checked.dtype == np.float32


BAD_NAMES = {
    "empty": ("", "empty"),
    "blank": ("   ", "empty"),
    "a number": (7, "is a int; names must be strings"),
    "bytes": (b"madonna", "is a bytes"),
    "a tuple": (("madonna", 1), "is a tuple"),
    "None": (None, "is a NoneType"),
    "slash": ("photos/madonna", "path separator"),
    "backslash": ("..\\madonna", "path separator"),
    "dot-dot": ("..", "path separator or is '.'/'..'"),
    "newline": ("madonna\n", "control or invisible"),
    "tab": ("elton\tjohn", "control or invisible"),
    "NUL": ("madonna\x00", "control or invisible"),
    "escape sequence": ("\x1b[31mred", "control or invisible"),
    "zero-width space": ("mad\u200bonna", "control or invisible"),
    "right-to-left override": ("\u202eannodam", "control or invisible"),
    "lone surrogate": ("mad\ud800", "control or invisible"),
    "leading space": (" madonna", "spaces at its start or end"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_names_are_refused(case, tmp_path):
    name, fragment = BAD_NAMES[case]
    with pytest.raises(fr_utils.DatabaseError, match=re.escape(fragment)):
        fr_utils.check_identity(name)
    with pytest.raises(fr_utils.DatabaseError, match=re.escape(fragment)):
        fr_utils.save_database({name: UNIT}, tmp_path / "db.npz")
    with pytest.raises(fr_utils.DatabaseError, match=re.escape(fragment)):
        fr_utils.build_database({name: "images/train/madonna/madonna_01.jpg"}, model=None)  # before encoding
    assert list(tmp_path.iterdir()) == []


def test_good_names_pass():
    for name in ("madonna", "Elton John", "Zoë Saldaña", "李小龙", "o'brien-2", "Dr. Who"):
        assert fr_utils.check_identity(name) == name


# ---------------------------------------------------------------------------------------------
# Loading files that are not our databases
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def saved(one_shot_database, tmp_path):
    """The notebook's database saved as tmp_path/db.npz."""
    return fr_utils.save_database(one_shot_database, tmp_path / "db.npz")


def assert_load_refused(path, *fragments):
    with pytest.raises(fr_utils.DatabaseFileError) as caught:
        fr_utils.load_database(path)
    message = str(caught.value)
    assert message.startswith(f"{os.fspath(path)}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(caught.value, OSError) and isinstance(caught.value, fr_utils.FaceRecognitionError)
    return message


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 30])
def test_a_truncated_database(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:keep if isinstance(keep, int) else int(len(data) * keep)])
    assert_load_refused(saved, "damaged or truncated", "save_database()")


def test_a_missing_file_and_a_folder(tmp_path):
    assert_load_refused(tmp_path / "nobody.npz", "no such database file", "save_database")
    assert_load_refused(tmp_path, "is a folder")


def test_foreign_npz_files(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, kernel=np.zeros((3, 3)), bias=np.zeros(3))
    assert_load_refused(path, "not a face database (it holds ['bias', 'kernel'], expected names and encodings)")
    np.savez(path, names=np.array([b"madonna"]), encodings=UNIT.reshape(1, 128))
    assert_load_refused(path, "the names are not a list of text (dtype |S7")
    np.savez(path, names=np.array(["madonna"]), encodings=np.zeros((1, 96)))
    assert_load_refused(path, "not an (n, 128) array of floats", "shape (1, 96)")
    np.savez(path, names=np.array(["madonna"]), encodings=np.ones((1, 128), np.int64))
    assert_load_refused(path, "dtype int64")
    np.savez(path, names=np.array(["madonna", "elton_john"]), encodings=UNIT.reshape(1, 128))
    assert_load_refused(path, "2 names but 1 encodings")
    np.savez(path, names=np.array(["madonna", "madonna"]), encodings=np.vstack([UNIT, UNIT]))
    assert_load_refused(path, "an identity appears twice")
    np.savez(path, names=np.array(["madonna"]), encodings=2 * UNIT.reshape(1, 128))
    assert_load_refused(path, "madonna: the encoding has length 2.0000")
    np.savez(path, names=np.array(["../etc/passwd"]), encodings=UNIT.reshape(1, 128))
    assert_load_refused(path, "path separator")


def test_other_kinds_of_file(tmp_path, photo):
    npy = tmp_path / "encodings.npy"
    np.save(npy, np.vstack([UNIT, UNIT]))
    assert_load_refused(npy, "a single NumPy array (.npy), not a face database")
    text = tmp_path / "db.npz"
    text.write_text("madonna,0.1,0.2\n")
    assert_load_refused(text, "not a face database (.npz) file")
    jpeg = tmp_path / "photo.npz"
    jpeg.write_bytes(photo.read_bytes())
    assert_load_refused(jpeg, "not a face database (.npz) file")


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_database_needing_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "db.npz"
    names = np.empty(1, dtype=object)
    names[0] = _Payload(str(marker))
    np.savez(path, names=names, encodings=UNIT.reshape(1, 128))  # object array: stored with pickle
    assert_load_refused(path, "needs pickle", "refused")
    assert not marker.exists()
    # The check is real: numpy with pickle allowed would have run the payload.
    with np.load(path, allow_pickle=True) as data:
        data["names"]
    assert marker.exists()


def test_a_pickle_file_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "db.npz"
    path.write_bytes(pickle.dumps({"madonna": _Payload(str(marker))}))
    assert_load_refused(path, "a pickle file, refused")
    assert not marker.exists()


def test_an_oversized_member_is_refused_before_unpacking(tmp_path, monkeypatch):
    path = fr_utils.save_database(random_database(50), tmp_path / "db.npz")
    monkeypatch.setattr(fr_utils, "MAX_DATABASE_BYTES", 10_000)  # 50 people take 25,600 bytes
    assert_load_refused(path, "too large for a face database")


# ---------------------------------------------------------------------------------------------
# Saving: refused cleanly, and atomic
# ---------------------------------------------------------------------------------------------
def test_saving_into_a_missing_folder(tmp_path, one_shot_database):
    with pytest.raises(fr_utils.DatabaseFileError, match="the folder .*nowhere does not exist; create it first"):
        fr_utils.save_database(one_shot_database, tmp_path / "nowhere" / "db.npz")
    assert list(tmp_path.iterdir()) == []


def test_saving_onto_a_folder(tmp_path, one_shot_database):
    (tmp_path / "db.npz").mkdir()
    with pytest.raises(fr_utils.DatabaseFileError, match="is a folder"):
        fr_utils.save_database(one_shot_database, tmp_path / "db.npz")


@contextlib.contextmanager
def read_only_folder():
    """A folder nobody may write in. Root may write anywhere, so for root the block runs with the
    effective user 'nobody' (restored after); the folder is outside pytest's root-only tmp tree."""
    folder = Path(tempfile.mkdtemp(prefix="facenet-readonly-"))
    try:
        yield folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


@contextlib.contextmanager
def without_write_permission(folder):
    folder.chmod(0o555)
    root = os.geteuid() == 0
    if root:
        os.seteuid(65534)
    try:
        yield
    finally:
        if root:
            os.seteuid(0)
        folder.chmod(0o755)


def test_saving_into_a_read_only_folder_keeps_the_old_file(one_shot_database):
    with read_only_folder() as folder:
        old = fr_utils.save_database(random_database(3), folder / "db.npz")
        before = old.read_bytes()
        with without_write_permission(folder):
            with pytest.raises(fr_utils.DatabaseFileError, match="cannot write in the folder .*Nothing was changed"):
                fr_utils.save_database(one_shot_database, old)
        assert old.read_bytes() == before
        assert_same_database(fr_utils.load_database(old), random_database(3))
        assert temp_files(folder) == []


def test_a_failure_mid_write_keeps_the_old_file(tmp_path, one_shot_database, monkeypatch):
    old = fr_utils.save_database(random_database(3), tmp_path / "db.npz")
    before = old.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04" + bytes(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(fr_utils.DatabaseFileError, match="saving failed .No space left on device.; the previous file"):
        fr_utils.save_database(one_shot_database, old)
    assert old.read_bytes() == before
    assert temp_files(tmp_path) == []  # the half-written temporary file is removed


SLOW_SAVER = """
import sys, time, io
sys.path.insert(0, sys.argv[1])
import numpy as np
import fr_utils

real_savez = np.savez

def slow_savez(file, **arrays):
    # The real bytes, written 4 KiB at a time, so the parent can kill us in the middle.
    buffer = io.BytesIO()
    real_savez(buffer, **arrays)
    data = buffer.getvalue()
    for start in range(0, len(data), 4096):
        file.write(data[start:start + 4096])
        file.flush()
        if start == 16 * 4096:
            print("half-written", flush=True)
        time.sleep(0.05)

np.savez = slow_savez
rng = np.random.default_rng(1)
database = {f"new_{i:05d}": fr_utils.l2_normalize(rng.normal(size=(1, 128))) for i in range(1000)}
fr_utils.save_database(database, sys.argv[2])
print("finished", flush=True)
"""


def test_a_save_killed_midway_leaves_the_old_database(tmp_path):
    old_database = random_database(5)
    path = fr_utils.save_database(old_database, tmp_path / "db.npz")
    before = path.read_bytes()
    saver = subprocess.Popen([sys.executable, "-c", SLOW_SAVER, str(ROOT), str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    guard = threading.Timer(180, saver.kill)  # a hang fails the test instead of blocking it
    guard.start()
    try:
        assert saver.stdout.readline().strip() == "half-written"  # TensorFlow import first: ~5-10 s
        partial = [tmp_path / name for name in temp_files(tmp_path)]
        assert len(partial) == 1 and partial[0].stat().st_size > 16 * 4096
        saver.send_signal(signal.SIGKILL)
    finally:
        guard.cancel()
        saver.kill()
        saver.wait(timeout=60)
    assert saver.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert_same_database(fr_utils.load_database(path), old_database)
    # The killed save's leftover is a hidden temporary beside it, not the database...
    leftover = partial[0]
    assert leftover.name.startswith(".db.npz.") and leftover.exists()
    assert_load_refused(leftover, "damaged or truncated")
    # ...and it does not stop the next save.
    new_database = random_database(7, seed=3)
    fr_utils.save_database(new_database, path)
    assert_same_database(fr_utils.load_database(path), new_database)


def test_saving_adds_the_npz_suffix_and_replaces(tmp_path):
    path = fr_utils.save_database(random_database(2), tmp_path / "staff")
    assert path == tmp_path / "staff.npz"
    fr_utils.save_database(random_database(4, seed=1), path)
    assert_same_database(fr_utils.load_database(path), random_database(4, seed=1))
    assert temp_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Property: any valid database survives save + load exactly; any invalid name is refused
# ---------------------------------------------------------------------------------------------
name_text = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"),
                                  blacklist_characters="/\\"), min_size=1, max_size=40)
valid_names = name_text.map(str.strip).filter(lambda n: n not in ("", ".", ".."))


@st.composite
def databases(draw):
    names = draw(st.lists(valid_names, unique=True, max_size=25))
    seed = draw(st.integers(0, 2**32 - 1))
    vectors = np.random.default_rng(seed).normal(size=(len(names), 128))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(st.sampled_from([(1, 128), (128,)]))
    return {name: fr_utils.l2_normalize(v).astype(dtype).reshape(shape) for name, v in zip(names, vectors)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(database=databases())
def test_any_database_round_trips(database, tmp_path):
    path = fr_utils.save_database(database, tmp_path / "db.npz")
    loaded = fr_utils.load_database(path)
    assert_same_database(loaded, database)
    assert all(v.shape == (1, 128) and v.dtype == np.float32 for v in loaded.values())
    assert temp_files(tmp_path) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=12))
def test_any_name_either_round_trips_or_is_refused(name, tmp_path):
    path = tmp_path / "db.npz"
    try:
        fr_utils.check_identity(name)
    except fr_utils.DatabaseError:
        with pytest.raises(fr_utils.DatabaseError):
            fr_utils.save_database({name: UNIT}, path)
        return
    fr_utils.save_database({name: UNIT}, path)
    assert list(fr_utils.load_database(path)) == [name]


# ---------------------------------------------------------------------------------------------
# Static guarantee: no code of the project can unpickle or deserialise unsafely
# ---------------------------------------------------------------------------------------------
def project_sources():
    folders = [ROOT, ROOT / "tools", ROOT / "instructor", ROOT / "benchmarks"]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.py"))


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def unsafe_calls(source):
    """(line, what) for each construct that could unpickle or deserialise code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if func.split(".")[-1] in ("load", "loads") and func.split(".")[0] in ("np", "numpy"):
                value = keywords.get("allow_pickle")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    found.append((node.lineno, f"{func} without allow_pickle=False"))
            if func.endswith("load_model") or func.endswith("deserialize_keras_object"):
                value = keywords.get("safe_mode")
                if value is not None and not (isinstance(value, ast.Constant) and value.value is True):
                    found.append((node.lineno, f"{func} outside safe mode"))
            if func.endswith(("enable_unsafe_deserialization", "read_pickle", "torch.load")):
                found.append((node.lineno, func))
    return found


def test_the_scanner_finds_unsafe_code():
    bad = ("import pickle\nfrom joblib import load\nnp.load(p)\nnp.load(p, allow_pickle=True)\n"
           "keras.models.load_model(p, safe_mode=False)\nkeras.config.enable_unsafe_deserialization()\n"
           "pd.read_pickle(p)\n")
    assert [line for line, _ in unsafe_calls(bad)] == [1, 2, 3, 4, 5, 6, 7]
    assert unsafe_calls("np.load(p, allow_pickle=False)\nkeras.models.load_model(p)\n") == []


def test_no_project_code_can_unpickle():
    sources = project_sources()
    assert ROOT / "fr_utils.py" in sources and len(sources) >= 5
    problems = {p.relative_to(ROOT).as_posix(): unsafe_calls(p.read_text()) for p in sources}
    assert {path: found for path, found in problems.items() if found} == {}
