"""Accuracy regression on real LFW pairs through the package's own pipeline.

100 fixed pairs of LFW View 2 (the first 5 same-person and the first 5 different-person pairs of
each of the 10 folds of pairs.txt), decided at ``fr_utils.DEFAULT_THRESHOLD`` with
``fr_utils.encode_photos`` (detection, crop, prewhiten, encoder, unit length). The full
benchmark (6,000 pairs, 10-fold protocol) is ``make bench``; see benchmarks/results.md.

LFW is read from ``../shared/lfw`` (read-only, never copied into the repository); without it the
tests are skipped with the reason shown by ``pytest -ra``.
"""

import warnings

import numpy as np
import pytest

import fr_eval
import fr_utils
from conftest import LFW_DIR

PAIRS_PER_KIND_PER_FOLD = 5
MIN_ACCURACY = 0.97

pytestmark = pytest.mark.skipif(
    not (LFW_DIR / "pairs.txt").is_file(),
    reason=f"LFW not found at {LFW_DIR} (images/ and pairs.txt): the LFW accuracy test needs it",
)


def fixed_pairs(pairs):
    """Indices of the first few same-person and different-person pairs of every fold."""
    chosen = []
    for fold in range(pairs.n_folds):
        start = fold * 2 * pairs.pairs_per_fold
        chosen += range(start, start + PAIRS_PER_KIND_PER_FOLD)  # same-person lines come first
        chosen += range(start + pairs.pairs_per_fold, start + pairs.pairs_per_fold + PAIRS_PER_KIND_PER_FOLD)
    return np.array(chosen)


@pytest.fixture(scope="module")
def lfw_sample(model):
    """(distances, is_same, failed) for the 100 fixed pairs, photos encoded by encode_photos."""
    pairs = fr_eval.read_lfw_pairs(LFW_DIR / "pairs.txt")
    chosen = fixed_pairs(pairs)
    first = [pairs.path1[i] for i in chosen]
    second = [pairs.path2[i] for i in chosen]
    photos = sorted(set(first) | set(second))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several faces in a photo: the largest is used, as documented
        encoded = fr_utils.encode_photos([LFW_DIR / "images" / p for p in photos], model,
                                         progress=False, skip_errors=True)
    row = {str(path.relative_to(LFW_DIR / "images")): k for k, path in enumerate(encoded.paths)}
    distances = np.full(len(chosen), np.nan)
    for k, (a, b) in enumerate(zip(first, second)):
        if a in row and b in row:
            distances[k] = np.linalg.norm(encoded.encodings[row[a]] - encoded.encodings[row[b]])
    return distances, pairs.is_same[chosen], np.isnan(distances)


def test_the_sample_is_100_balanced_pairs_from_every_fold():
    pairs = fr_eval.read_lfw_pairs(LFW_DIR / "pairs.txt")
    chosen = fixed_pairs(pairs)
    assert len(chosen) == 100 and len(set(chosen)) == 100
    assert pairs.is_same[chosen].sum() == 50
    assert np.all(np.bincount(pairs.fold[chosen]) == 10)


def test_accuracy_at_the_default_threshold(lfw_sample):
    distances, is_same, failed = lfw_sample
    # A pair whose photo gave no face cannot be decided: it counts as an error.
    correct = ~failed & ((distances < fr_utils.DEFAULT_THRESHOLD) == is_same)
    accuracy = correct.mean()
    wrong = np.flatnonzero(~correct)
    assert accuracy >= MIN_ACCURACY, (
        f"LFW accuracy on 100 fixed pairs at threshold {fr_utils.DEFAULT_THRESHOLD}: {accuracy:.2f} "
        f"(< {MIN_ACCURACY}); wrong pairs {wrong.tolist()}, distances {np.round(distances[wrong], 3).tolist()}, "
        f"{int(failed.sum())} pairs without a face"
    )


def test_same_and_different_distances_are_well_separated(lfw_sample):
    distances, is_same, failed = lfw_sample
    assert not failed.any(), "every photo of the sample has a detectable face"
    same, different = distances[is_same], distances[~is_same]
    # Same-person pairs are far closer than different-person ones (unit encodings: 0 to 2).
    assert np.median(same) < 0.9 < 1.2 < np.median(different), (np.median(same), np.median(different))
    assert fr_eval.roc_auc(same, different) > 0.98
