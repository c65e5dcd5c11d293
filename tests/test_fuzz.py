"""Fuzzing the image loader: every byte string either decodes or raises the package's error.

A photo from a student can be anything. ``fr_utils.load_image`` must answer each file with an RGB
array or an ``ImageLoadError`` (a ``FaceRecognitionError``), never another exception, never a hang,
never a crash of the interpreter. The corpus (tests/fuzz_corpus.py) is a real demo photo in 13
encodings, 28 random damages of each, and 40 random or glued files: 417 files in all, the same on
every run. Hypothesis then searches further from the same seeds.
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fr_utils
import fuzz_corpus

# Damaged files make Pillow warn ("Corrupt EXIF data", "Truncated File Read"): expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PER_FILE_SECONDS = 5.0  # a hang guard: the slowest file takes about 0.05 s
CORPUS_SIZE = 13 * (1 + 28) + 40


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory):
    """Run the whole corpus in a subprocess; returns (paths, results by file name)."""
    folder = tmp_path_factory.mktemp("fuzz")
    paths = fuzz_corpus.build_corpus(folder)
    worker = subprocess.run([sys.executable, fuzz_corpus.__file__, str(folder)], capture_output=True, text=True,
                            timeout=600)
    lines = [json.loads(line) for line in worker.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    results = {line["name"]: line for line in lines if "name" in line}
    if worker.returncode != 0:
        last = started[-1] if started else "before the first file"
        pytest.fail(f"the loader killed the interpreter (exit {worker.returncode}) on {last}:\n{worker.stderr[-2000:]}")
    return paths, results


def test_the_corpus_is_the_promised_size(fuzz_results):
    paths, results = fuzz_results
    assert len(paths) == len(results) == CORPUS_SIZE == 417
    assert len({p.read_bytes() for p in paths}) > 0.95 * len(paths)  # the mutants really differ


def test_every_file_decodes_or_raises_the_package_error(fuzz_results):
    _, results = fuzz_results
    escaped = {name: f"{r['error']}: {r['message']}" for name, r in results.items() if r["outcome"] == "escaped"}
    assert escaped == {}
    for name, result in results.items():
        if result["outcome"] == "refused":
            assert result["error"] in ("ImageLoadError", "ImageTooLargeError"), name
            assert result["message"].startswith(f"{name}: ") or name in result["message"], name
        else:
            height, width, channels = result["shape"]
            assert channels == 3 and result["dtype"] == "uint8", name
            assert min(height, width) >= fr_utils.MIN_IMAGE_SIDE and max(height, width) <= fr_utils.MAX_IMAGE_SIDE


def test_every_file_is_answered_quickly(fuzz_results):
    _, results = fuzz_results
    slow = {name: r["seconds"] for name, r in results.items() if r["seconds"] > PER_FILE_SECONDS}
    assert slow == {}


def test_the_seeds_decode_and_damage_is_mostly_caught(fuzz_results):
    _, results = fuzz_results
    seeds = {name: r for name, r in results.items() if name.startswith("seed_")}
    assert len(seeds) == 13 and all(r["outcome"] == "decoded" for r in seeds.values()), seeds
    outcomes = Counter(r["outcome"] for name, r in results.items() if not name.startswith("seed_"))
    # Not a vacuous pass: both answers occur in numbers (a flipped bit in pixel data still decodes).
    assert outcomes["refused"] >= 100 and outcomes["decoded"] >= 50, outcomes


# Hypothesis searches beyond the fixed corpus, in this process, shrinking any failure it finds.
SEEDS = fuzz_corpus.seed_files()


@st.composite
def damaged_photo(draw):
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    edits = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=8))
    for position, value in edits:
        data[position] = value
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut])


@settings(max_examples=150, deadline=int(PER_FILE_SECONDS * 1000),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_photo())
def test_hypothesis_damaged_photos(data, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    try:
        image = fr_utils.load_image(path)
    except fr_utils.ImageLoadError as exc:
        assert str(exc).startswith(f"{path}: ")
        # An upload of the same bytes (decoded in memory by the widgets) gets the same answer.
        with pytest.raises(type(exc)):
            fr_utils.image_from_bytes(data, "photo.jpg")
    else:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        np.testing.assert_array_equal(fr_utils.image_from_bytes(data, "photo.jpg"), image)


@settings(max_examples=60, deadline=int(PER_FILE_SECONDS * 1000),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=4096), magic=st.sampled_from((b"",) + fuzz_corpus.MAGIC_NUMBERS))
def test_hypothesis_random_bytes(data, magic, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(magic + data)
    try:
        fr_utils.load_image(path)
    except fr_utils.ImageLoadError as exc:
        assert Path(str(exc).split(": ", 1)[0]) == path
    try:
        fr_utils.image_from_bytes(magic + data, "upload.jpg")
    except fr_utils.ImageLoadError as exc:
        assert str(exc).startswith("upload.jpg: ")
