"""Tests for fr_eval: distances -> verification numbers, LFW protocol helpers."""

import itertools
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fr_eval as fe  # noqa: E402

LFW_DIR = "/work/shared/lfw"
LFW_PAIRS = os.path.join(LFW_DIR, "pairs.txt")


# ---------------------------------------------------------------------------
# Strategies and brute-force references
# ---------------------------------------------------------------------------

# Small integer grids produce many ties, the case that breaks naive code.
def distance_lists(min_size=1, max_size=12):
    tied = st.lists(st.integers(0, 6).map(lambda k: k / 4), min_size=min_size, max_size=max_size)
    free = st.lists(
        st.floats(0.0, 2.0, allow_nan=False, allow_infinity=False),
        min_size=min_size,
        max_size=max_size,
    )
    return st.one_of(tied, free)


def brute_auc(same, different):
    wins = 0.0
    for s, d in itertools.product(same, different):
        wins += 1.0 if s < d else 0.5 if s == d else 0.0
    return wins / (len(same) * len(different))


# ---------------------------------------------------------------------------
# Distances
# ---------------------------------------------------------------------------

def test_pairwise_distances_matches_direct_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 128)).astype(np.float32)
    b = rng.normal(size=(5, 128)).astype(np.float32)
    expected = np.linalg.norm(a[:, None, :].astype(np.float64) - b[None, :, :], axis=-1)
    got = fe.pairwise_distances(a, b)
    assert got.shape == (7, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_pairwise_distances_self_is_zero_not_nan():
    # Unit float32 vectors: x.x + x.x - 2 x.x can be slightly negative.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = fe.pairwise_distances(x, x)
    assert not np.isnan(d).any()
    assert np.all(np.diag(d) < 1e-6)


def test_pairwise_distances_rejects_mismatched_dims():
    with pytest.raises(ValueError, match="columns"):
        fe.pairwise_distances(np.zeros((2, 3)), np.zeros((2, 4)))


def test_pair_distances_row_wise():
    a = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    b = np.array([[3.0, 4.0], [1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(fe.pair_distances(a, b), [5.0, 0.0, 2.0])
    with pytest.raises(ValueError):
        fe.pair_distances(a, b[:2])


@pytest.mark.parametrize("block_size", [1, 2, 1024])
def test_same_different_distances_all_pairs(block_size):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 4))
    labels = np.array(["a", "b", "a", "c", "b", "a", "c", "c", "d"])
    same, diff = fe.same_different_distances(x, labels, block_size=block_size)
    exp_same, exp_diff = [], []
    for i, j in itertools.combinations(range(len(x)), 2):
        d = np.linalg.norm(x[i] - x[j])
        (exp_same if labels[i] == labels[j] else exp_diff).append(d)
    assert len(same) + len(diff) == 9 * 8 // 2
    np.testing.assert_allclose(same, exp_same, atol=1e-12)
    np.testing.assert_allclose(diff, exp_diff, atol=1e-12)


# ---------------------------------------------------------------------------
# confusion_counts
# ---------------------------------------------------------------------------

def test_confusion_counts_strict_threshold_and_rates():
    same = [0.2, 0.5, 0.7, 0.9]
    diff = [0.7, 1.1, 1.3]
    c = fe.confusion_counts(same, diff, 0.7)  # 0.7 itself is rejected
    assert (c.true_accepts, c.false_rejects, c.false_accepts, c.true_rejects) == (2, 2, 0, 3)
    assert c.tar == 0.5 and c.frr == 0.5 and c.far == 0.0 and c.trr == 1.0
    assert c.accuracy == pytest.approx(5 / 7)
    d = c.as_dict()
    assert d["tar"] == 0.5 and d["true_rejects"] == 3 and d["threshold"] == 0.7
    text = str(c)
    assert "TAR=0.5000" in text and "FAR=0.0000" in text and "2/4" in text


def test_confusion_counts_empty_side_gives_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = fe.confusion_counts([0.1, 0.3], [], 0.2)
        assert np.isnan(c.far) and np.isnan(c.trr)
        assert c.tar == 0.5 and c.accuracy == 0.5
        empty = fe.confusion_counts([], [], 0.2)
        assert np.isnan(empty.accuracy) and np.isnan(empty.tar)


def test_verification_counts_is_frozen():
    c = fe.confusion_counts([0.1], [0.9], 0.5)
    with pytest.raises(AttributeError):
        c.true_accepts = 3


def test_rejects_nan_distances():
    with pytest.raises(ValueError, match="NaN"):
        fe.confusion_counts([0.1, np.nan], [0.9], 0.5)


# ---------------------------------------------------------------------------
# ROC, AUC
# ---------------------------------------------------------------------------

def test_roc_curve_hand_example():
    far, tar, thr = fe.roc_curve([0.1, 0.3], [0.2, 0.4])
    np.testing.assert_array_equal(far, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tar, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [-0.9, 0.15, 0.25, 0.35, 1.4])


@settings(max_examples=60, deadline=None)
@given(distance_lists(), distance_lists())
def test_roc_thresholds_reproduce_points(same, diff):
    far, tar, thr = fe.roc_curve(same, diff)
    assert (far[0], tar[0]) == (0.0, 0.0) and (far[-1], tar[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thr) > 0)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
    # One point per distinct distance plus one, and all points distinct.
    assert len(thr) == len(np.unique(np.concatenate([same, diff]))) + 1
    assert len({(a, b) for a, b in zip(far, tar)}) == len(thr)
    for f, t, th in zip(far, tar, thr):
        c = fe.confusion_counts(same, diff, th)
        assert c.far == f and c.tar == t


def test_roc_adjacent_floats_are_separated():
    # The midpoint of two neighbouring floats rounds onto one of them.
    a = 1.0
    b = np.nextafter(a, 2.0)
    far, tar, thr = fe.roc_curve([a], [b])
    np.testing.assert_array_equal(far, [0, 0, 1])
    np.testing.assert_array_equal(tar, [0, 1, 1])
    c = fe.confusion_counts([a], [b], thr[1])
    assert c.accuracy == 1.0
    assert fe.best_accuracy_threshold([a], [b])[1].accuracy == 1.0


def test_roc_curve_requires_both_sides():
    with pytest.raises(ValueError, match="same"):
        fe.roc_curve([], [0.5])


def test_roc_curve_large_input_is_vectorised():
    rng = np.random.default_rng(3)
    same = rng.normal(0.8, 0.15, 500_000)
    diff = rng.normal(1.3, 0.15, 500_000)
    far, tar, thr = fe.roc_curve(same, diff)
    assert len(thr) == 1_000_001
    auc = fe.roc_auc(same, diff)
    # Two normals: AUC = Phi(0.5 / (0.15 * sqrt 2)) ~= 0.9907.
    assert auc == pytest.approx(0.9907, abs=2e-3)


def test_auc_known_values():
    assert fe.roc_auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert fe.roc_auc([0.5, 0.9], [0.1, 0.2, 0.3]) == 0.0
    assert fe.roc_auc([0.4, 0.4], [0.4, 0.4, 0.4]) == 0.5
    rng = np.random.default_rng(4)
    x = rng.random(20_000)
    y = rng.random(20_000)
    assert fe.roc_auc(x, y) == pytest.approx(0.5, abs=0.01)


@settings(max_examples=80, deadline=None)
@given(distance_lists(), distance_lists())
def test_auc_equals_brute_force_probability_and_trapezoid(same, diff):
    auc = fe.roc_auc(same, diff)
    assert auc == pytest.approx(brute_auc(same, diff), abs=1e-12)
    far, tar, _ = fe.roc_curve(same, diff)
    assert auc == pytest.approx(np.trapezoid(tar, far), abs=1e-12)


# ---------------------------------------------------------------------------
# EER, threshold at FAR, best accuracy
# ---------------------------------------------------------------------------

def test_eer_perfect_separation():
    eer, thr = fe.equal_error_rate([0.1, 0.2, 0.3], [0.7, 0.9])
    assert eer == 0.0
    assert thr == pytest.approx(0.5)


def test_eer_exact_and_interpolated_hand_cases():
    # Exact: at threshold 0.45, FAR = FRR = 1/4.
    eer, thr = fe.equal_error_rate([0.1, 0.2, 0.3, 0.6], [0.4, 0.5, 0.7, 0.8])
    assert eer == pytest.approx(0.25) and thr == pytest.approx(0.45)
    # Interpolated: (FAR, FRR) goes (0, 1/3) -> (1/2, 1/3) between thresholds
    # 0.25 and 0.35; FAR - FRR crosses 0 two thirds of the way.
    eer, thr = fe.equal_error_rate([0.1, 0.2, 0.5], [0.3, 0.4])
    assert eer == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.25 + 2 / 3 * 0.1)


def test_eer_identical_distributions_is_about_half():
    rng = np.random.default_rng(5)
    eer, _ = fe.equal_error_rate(rng.random(5000), rng.random(5000))
    assert eer == pytest.approx(0.5, abs=0.03)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 300), st.integers(2, 300))
def test_eer_threshold_gives_far_close_to_frr(seed, n_same, n_diff):
    rng = np.random.default_rng(seed)
    same = rng.normal(0.9, 0.2, n_same)
    diff = rng.normal(1.2, 0.2, n_diff)  # continuous: no ties
    eer, thr = fe.equal_error_rate(same, diff)
    c = fe.confusion_counts(same, diff, thr)
    # The real rates are step functions: within one step of the crossing.
    assert abs(c.far - eer) <= 1 / n_diff + 1e-12
    assert abs(c.frr - eer) <= 1 / n_same + 1e-12


@settings(max_examples=80, deadline=None)
@given(distance_lists(), distance_lists(), st.floats(0.0, 1.0))
def test_threshold_at_far_respects_bound_and_is_largest(same, diff, target):
    thr, c = fe.threshold_at_far(same, diff, target)
    assert c.threshold == thr
    assert c.far <= target
    assert c == fe.confusion_counts(same, diff, thr)
    # Maximal: the next operating point already exceeds the bound.
    _, _, thresholds = fe.roc_curve(same, diff)
    larger = thresholds[thresholds > thr]
    if larger.size:
        assert fe.confusion_counts(same, diff, larger[0]).far > target
    else:
        assert c.far == 1.0


def test_threshold_at_far_hand_case_and_validation():
    thr, c = fe.threshold_at_far([0.1, 0.3, 0.5], [0.4, 0.6, 0.7, 0.8], 0.25)
    assert thr == pytest.approx(0.55)
    assert (c.true_accepts, c.false_accepts) == (3, 1)
    thr0, c0 = fe.threshold_at_far([0.1, 0.3, 0.5], [0.4, 0.6, 0.7, 0.8], 0.0)
    assert c0.false_accepts == 0 and c0.true_accepts == 2 and thr0 == pytest.approx(0.35)
    with pytest.raises(ValueError):
        fe.threshold_at_far([0.1], [0.5], 1.5)


@settings(max_examples=80, deadline=None)
@given(distance_lists(min_size=0), distance_lists(), st.floats(-1.0, 3.0))
def test_best_accuracy_threshold_beats_any_threshold(same, diff, other):
    thr, c = fe.best_accuracy_threshold(same, diff)
    assert c == fe.confusion_counts(same, diff, thr)
    assert c.accuracy >= fe.confusion_counts(same, diff, other).accuracy
    # Tie rule: no smaller candidate threshold reaches the same accuracy.
    # The candidates are the ROC thresholds of all distances pooled.
    values = np.concatenate([same, diff])
    _, _, candidates = fe.roc_curve(values, values)
    assert thr in candidates
    for t in candidates:
        if t < thr:
            assert fe.confusion_counts(same, diff, t).accuracy < c.accuracy


def test_best_accuracy_threshold_tie_takes_smallest():
    # Thresholds 0.2 and 0.7 both give 3/4 correct.
    thr, c = fe.best_accuracy_threshold([0.1, 0.5], [0.3, 0.9])
    assert thr == pytest.approx(0.2) and c.accuracy == 0.75


# ---------------------------------------------------------------------------
# k-fold protocol
# ---------------------------------------------------------------------------

def synthetic_pairs(rng, n_per_fold=60, n_folds=10, gap=True):
    dist, same, fold = [], [], []
    for f in range(n_folds):
        if gap:
            s = rng.uniform(0.2, 0.6, n_per_fold)
            d = rng.uniform(1.0, 1.6, n_per_fold)
        else:
            s = rng.normal(0.9, 0.25, n_per_fold)
            d = rng.normal(1.3, 0.25, n_per_fold)
        dist += [*s, *d]
        same += [True] * n_per_fold + [False] * n_per_fold
        fold += [f] * (2 * n_per_fold)
    return np.array(dist), np.array(same), np.array(fold)


def test_kfold_separable_data_is_perfect():
    dist, same, fold = synthetic_pairs(np.random.default_rng(6))
    result = fe.kfold_accuracy(dist, same, fold)
    np.testing.assert_array_equal(result.accuracies, np.ones(10))
    assert result.mean == 1.0 and result.std == 0.0
    assert np.all((result.thresholds > 0.6) & (result.thresholds < 1.0))
    assert "1.0000" in str(result)


def test_kfold_thresholds_come_from_training_folds_only():
    dist, same, fold = synthetic_pairs(np.random.default_rng(7), gap=False)
    result = fe.kfold_accuracy(dist, same, fold)
    for f in range(10):
        train = fold != f
        thr, _ = fe.best_accuracy_threshold(dist[train & same], dist[train & ~same])
        assert result.thresholds[f] == thr
        test = fold == f
        expected = fe.confusion_counts(dist[test & same], dist[test & ~same], thr).accuracy
        assert result.accuracies[f] == expected
    assert result.mean == pytest.approx(np.mean(result.accuracies))
    assert result.std == pytest.approx(np.std(result.accuracies))
    assert 0.7 < result.mean < 0.9


def test_kfold_integer_folds_split_contiguously():
    dist, same, fold = synthetic_pairs(np.random.default_rng(8), gap=False)
    by_labels = fe.kfold_accuracy(dist, same, fold)
    by_count = fe.kfold_accuracy(dist, same, 10)
    np.testing.assert_array_equal(by_labels.accuracies, by_count.accuracies)
    with pytest.raises(ValueError):
        fe.kfold_accuracy(dist, same, 1)
    with pytest.raises(ValueError):
        fe.kfold_accuracy(dist, same[:-1], 10)


def test_val_at_far_separable_data():
    dist, same, fold = synthetic_pairs(np.random.default_rng(9))
    result = fe.val_at_far(dist, same, fold, target_far=0.0)
    np.testing.assert_array_equal(result.vals, np.ones(10))
    np.testing.assert_array_equal(result.fars, np.zeros(10))
    assert result.val_mean == 1.0 and result.far_mean == 0.0 and result.target_far == 0.0


def test_val_at_far_hits_target_on_training_folds():
    dist, same, fold = synthetic_pairs(np.random.default_rng(10), n_per_fold=300, gap=False)
    target = 0.05
    result = fe.val_at_far(dist, same, fold, target_far=target)
    for f in range(10):
        train, test = fold != f, fold == f
        thr = result.thresholds[f]
        n_train_diff = np.count_nonzero(train & ~same)
        train_far = fe.confusion_counts(dist[train & same], dist[train & ~same], thr).far
        # Interpolated threshold: FAR on the training folds within one step of target.
        assert abs(train_far - target) <= 1 / n_train_diff + 1e-12
        c = fe.confusion_counts(dist[test & same], dist[test & ~same], thr)
        assert result.vals[f] == c.tar and result.fars[f] == c.far
    assert result.val_std == pytest.approx(np.std(result.vals))
    assert 0.0 < result.val_mean < 1.0
    assert result.far_mean == pytest.approx(target, abs=0.03)


# ---------------------------------------------------------------------------
# LFW pairs parser
# ---------------------------------------------------------------------------

SMALL_PAIRS = (
    "2\t2  \n"
    "Alice\t1\t3\n"
    "Bob_Smith\t2\t10 \n"
    "Alice\t1\tBob_Smith\t1\n"
    "Carol\t12\tAlice\t2\t\n"
    "Carol\t1\t2\n"
    "Dave\t1\t2\n"
    "Dave\t3\tEve\t101\n"
    "Eve\t1\tCarol\t1\n"
    "\n\n"
)


def write(tmp_path, text, name="pairs.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_lfw_pairs_small_file(tmp_path):
    pairs = fe.read_lfw_pairs(write(tmp_path, SMALL_PAIRS))
    assert len(pairs) == 8 and pairs.n_folds == 2 and pairs.pairs_per_fold == 2
    assert pairs.path1[0] == "Alice/Alice_0001.jpg"
    assert pairs.path2[0] == "Alice/Alice_0003.jpg"
    assert pairs.path2[1] == "Bob_Smith/Bob_Smith_0010.jpg"
    assert pairs.path1[3] == "Carol/Carol_0012.jpg"
    assert pairs.path2[6] == "Eve/Eve_0101.jpg"
    np.testing.assert_array_equal(pairs.is_same, [1, 1, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(pairs.fold, [0, 0, 0, 0, 1, 1, 1, 1])


def test_read_lfw_pairs_single_number_header_is_one_fold(tmp_path):
    pairs = fe.read_lfw_pairs(write(tmp_path, "1\nAl\t1\t2\nAl\t1\tBo\t1\n"))
    assert pairs.n_folds == 1 and list(pairs.is_same) == [True, False]


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("2\t2\n" + "Alice\t1\n" + SMALL_PAIRS.split("\n", 2)[2], 2, "3 fields"),
        (SMALL_PAIRS.replace("Alice\t1\tBob_Smith\t1", "Alice\t1\tBob_Smith"), 4, "4 fields"),
        (SMALL_PAIRS.replace("Carol\t1\t2", "Carol\tx\t2"), 6, "integer"),
        (SMALL_PAIRS.replace("Dave\t1\t2", "Dave\t0\t2"), 7, ">= 1"),
        ("ten 300\n", 1, "integer"),
        ("1 2 3\n", 1, "header"),
        (SMALL_PAIRS.rstrip("\n") + "\nZed\t1\t2\n", 10, "extra"),
    ],
)
def test_read_lfw_pairs_malformed_names_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text, name="bad_pairs.txt")
    with pytest.raises(ValueError) as info:
        fe.read_lfw_pairs(path)
    message = str(info.value)
    assert "bad_pairs.txt" in message
    assert f"line {line}:" in message
    assert fragment in message


def test_read_lfw_pairs_truncated_file(tmp_path):
    text = "\n".join(SMALL_PAIRS.splitlines()[:6]) + "\n"
    with pytest.raises(ValueError, match=r"short_pairs\.txt.*only 5 found"):
        fe.read_lfw_pairs(write(tmp_path, text, name="short_pairs.txt"))
    with pytest.raises(ValueError, match="empty"):
        fe.read_lfw_pairs(write(tmp_path, "\n", name="empty.txt"))


needs_lfw = pytest.mark.skipif(
    not os.path.isfile(LFW_PAIRS), reason=f"LFW pairs file not found at {LFW_PAIRS}"
)


@needs_lfw
def test_read_real_lfw_pairs():
    pairs = fe.read_lfw_pairs(LFW_PAIRS)
    assert len(pairs) == 6000
    assert pairs.n_folds == 10 and pairs.pairs_per_fold == 300
    assert int(pairs.is_same.sum()) == 3000
    np.testing.assert_array_equal(np.bincount(pairs.fold), np.full(10, 600))
    np.testing.assert_array_equal(np.bincount(pairs.fold[pairs.is_same]), np.full(10, 300))
    assert pairs.path1[0] == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert pairs.path2[0] == "Abel_Pacheco/Abel_Pacheco_0004.jpg"
    # Same pairs name one person, different pairs two.
    first_dir = [p.split("/")[0] for p in pairs.path1]
    second_dir = [p.split("/")[0] for p in pairs.path2]
    assert all((a == b) == s for a, b, s in zip(first_dir, second_dir, pairs.is_same))


@needs_lfw
@pytest.mark.skipif(
    not os.path.isdir(os.path.join(LFW_DIR, "images")),
    reason=f"LFW images not found under {LFW_DIR}/images",
)
def test_real_lfw_pair_paths_exist():
    pairs = fe.read_lfw_pairs(LFW_PAIRS)
    root = os.path.join(LFW_DIR, "images")
    missing = [p for p in set(pairs.path1) | set(pairs.path2) if not os.path.isfile(os.path.join(root, p))]
    assert missing == []
