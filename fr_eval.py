"""Turn face-embedding distances into verification numbers.

Small, pure numpy functions in the spirit of ``sklearn.metrics``: they take
arrays, return arrays or small frozen result objects, and never plot.

Conventions used throughout the package
---------------------------------------
* Faces are encoded as unit-length vectors and compared by L2 distance.
* A pair is *accepted* (predicted "same person") when
  ``distance < threshold`` -- strictly less.
* ``same`` holds the distances of genuine pairs (same person) and
  ``different`` those of impostor pairs (different people).

Vocabulary (FaceNet paper, Schroff et al. 2015)::

    TAR / VAL = true accepts  / all same pairs        (a.k.a. recall, 1 - FRR)
    FAR       = false accepts / all different pairs   (1 - TRR)

All distances are converted to float64 before any comparison, so that a
threshold returned here accepts exactly the pairs it claims to accept.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = [
    "pairwise_distances",
    "pair_distances",
    "same_different_distances",
    "VerificationCounts",
    "confusion_counts",
    "roc_curve",
    "roc_auc",
    "equal_error_rate",
    "threshold_at_far",
    "best_accuracy_threshold",
    "LFWPairs",
    "read_lfw_pairs",
    "KFoldAccuracy",
    "kfold_accuracy",
    "ValAtFar",
    "val_at_far",
]


# ---------------------------------------------------------------------------
# Distances
# ---------------------------------------------------------------------------

def _as_matrix(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        # A single encoding is treated as a batch of one.
        x = x[np.newaxis, :]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n, d); got shape {x.shape}")
    return x


def pairwise_distances(a, b):
    """L2 distance between every row of ``a`` and every row of ``b``.

    Parameters
    ----------
    a : array_like, shape (n, d) or (d,)
    b : array_like, shape (m, d) or (d,)
        A 1-D input is treated as a single row.

    Returns
    -------
    ndarray of float64, shape (n, m)
        ``out[i, j] = ||a[i] - b[j]||``.

    Examples
    --------
    >>> pairwise_distances([[0, 0], [3, 4]], [[0, 0]])
    array([[0.],
           [5.]])
    """
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have the same number of columns; got {a.shape[1]} and {b.shape[1]}"
        )
    # ||x - y||^2 = ||x||^2 + ||y||^2 - 2 x.y avoids an (n, m, d) temporary.
    # Cancellation can leave tiny negatives for (near-)identical rows, which
    # would become NaN under sqrt, hence the clip. float64 keeps the error of
    # a self-distance around 1e-8 instead of 1e-4 in float32.
    sq = (
        np.einsum("ij,ij->i", a, a)[:, np.newaxis]
        + np.einsum("ij,ij->i", b, b)[np.newaxis, :]
        - 2.0 * (a @ b.T)
    )
    np.maximum(sq, 0.0, out=sq)
    return np.sqrt(sq)


def pair_distances(a, b):
    """Row-wise L2 distance: ``out[i] = ||a[i] - b[i]||``.

    Parameters
    ----------
    a, b : array_like, shape (n, d)

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    >>> pair_distances([[0, 0], [1, 1]], [[3, 4], [1, 1]])
    array([5., 0.])
    """
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}")
    # Direct differences: exact for identical rows, no clipping needed.
    return np.sqrt(np.sum((a - b) ** 2, axis=1))


def same_different_distances(encodings, labels, *, block_size=1024):
    """Distances of all pairs ``i < j``, split by whether the labels match.

    This is the "all pairs" evaluation: every encoding is compared with
    every other one exactly once.

    Parameters
    ----------
    encodings : array_like, shape (n, d)
    labels : array_like, shape (n,)
        Identity of each encoding (any type comparable with ``==``).
    block_size : int, default 1024
        Rows processed at a time; bounds the temporary memory to
        ``block_size * n`` float64 values.

    Returns
    -------
    same : ndarray of float64
        Distances of the pairs with equal labels.
    different : ndarray of float64
        Distances of the pairs with different labels.
        Both are in row-major ``(i, j)`` order.

    Examples
    --------
    >>> same, diff = same_different_distances([[0, 0], [0, 1], [3, 4]], ["a", "a", "b"])
    >>> same, diff
    (array([1.]), array([5.        , 4.24264069]))
    """
    x = _as_matrix(encodings, "encodings")
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(
            f"labels must have shape ({x.shape[0]},) to match encodings; got {labels.shape}"
        )
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}")
    same_parts, diff_parts = [], []
    n = x.shape[0]
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        # Rows start..stop against columns start..n; keep only j > i.
        d = pairwise_distances(x[start:stop], x[start:])
        match = labels[start:stop, np.newaxis] == labels[np.newaxis, start:]
        upper = np.triu(np.ones(d.shape, dtype=bool), k=1)
        same_parts.append(d[upper & match])
        diff_parts.append(d[upper & ~match])
    if not same_parts:
        return np.empty(0), np.empty(0)
    return np.concatenate(same_parts), np.concatenate(diff_parts)


# ---------------------------------------------------------------------------
# Counts at one threshold
# ---------------------------------------------------------------------------

def _as_distances(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of distances; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite distances")
    return x


def _ratio(num, den):
    # nan instead of a ZeroDivisionError / RuntimeWarning when a side is empty.
    return num / den if den else math.nan


@dataclass(frozen=True)
class VerificationCounts:
    """Confusion counts of a verifier at one threshold (accept iff ``d < threshold``).

    Attributes
    ----------
    threshold : float
    true_accepts : int     same pairs accepted
    false_rejects : int    same pairs rejected
    false_accepts : int    different pairs accepted
    true_rejects : int     different pairs rejected

    Rates whose denominator is zero are ``nan``.
    """

    threshold: float
    true_accepts: int
    false_rejects: int
    false_accepts: int
    true_rejects: int

    @property
    def n_same(self) -> int:
        return self.true_accepts + self.false_rejects

    @property
    def n_different(self) -> int:
        return self.false_accepts + self.true_rejects

    @property
    def tar(self) -> float:
        """True accept rate (FaceNet's VAL): TA / (TA + FR)."""
        return _ratio(self.true_accepts, self.n_same)

    @property
    def frr(self) -> float:
        """False reject rate: FR / (TA + FR) = 1 - TAR."""
        return _ratio(self.false_rejects, self.n_same)

    @property
    def far(self) -> float:
        """False accept rate: FA / (FA + TR)."""
        return _ratio(self.false_accepts, self.n_different)

    @property
    def trr(self) -> float:
        """True reject rate: TR / (FA + TR) = 1 - FAR."""
        return _ratio(self.true_rejects, self.n_different)

    @property
    def accuracy(self) -> float:
        """(TA + TR) / all pairs."""
        return _ratio(self.true_accepts + self.true_rejects, self.n_same + self.n_different)

    def as_dict(self) -> dict:
        """Counts and rates as a plain dict (e.g. for a ``pandas.DataFrame`` row)."""
        return {
            "threshold": self.threshold,
            "true_accepts": self.true_accepts,
            "false_rejects": self.false_rejects,
            "false_accepts": self.false_accepts,
            "true_rejects": self.true_rejects,
            "tar": self.tar,
            "far": self.far,
            "frr": self.frr,
            "trr": self.trr,
            "accuracy": self.accuracy,
        }

    def __str__(self) -> str:
        return (
            f"threshold={self.threshold:.4g}: "
            f"TAR={self.tar:.4f} ({self.true_accepts}/{self.n_same} same accepted), "
            f"FAR={self.far:.4f} ({self.false_accepts}/{self.n_different} different accepted), "
            f"accuracy={self.accuracy:.4f}"
        )


def confusion_counts(same, different, threshold):
    """Count accepts and rejects at ``threshold`` (accept iff ``distance < threshold``).

    Parameters
    ----------
    same : array_like, shape (n_same,)
        Distances of same-person pairs.
    different : array_like, shape (n_different,)
        Distances of different-person pairs.
    threshold : float

    Returns
    -------
    VerificationCounts

    Examples
    --------
    >>> c = confusion_counts([0.2, 0.5, 0.9], [0.8, 1.3], threshold=0.85)
    >>> c.true_accepts, c.false_accepts, round(c.tar, 3), c.far
    (2, 1, 0.667, 0.5)
    """
    same = _as_distances(same, "same")
    different = _as_distances(different, "different")
    threshold = float(threshold)
    ta = int(np.count_nonzero(same < threshold))
    fa = int(np.count_nonzero(different < threshold))
    return VerificationCounts(
        threshold=threshold,
        true_accepts=ta,
        false_rejects=same.size - ta,
        false_accepts=fa,
        true_rejects=different.size - fa,
    )


# ---------------------------------------------------------------------------
# Every operating point
# ---------------------------------------------------------------------------

def _candidate_thresholds(values):
    """One threshold per distinct operating point of ``d < t``, increasing.

    ``values`` are all distances (both sides). Returns one threshold below
    the minimum, the midpoints between consecutive distinct values, and one
    above the maximum.
    """
    u = np.unique(values)  # sorted, distinct
    if u.size == 0:
        raise ValueError("need at least one distance")
    lo, hi = u[0] - 1.0, u[-1] + 1.0
    # For huge magnitudes +-1 is lost to rounding; step one float instead.
    if not lo < u[0]:
        lo = np.nextafter(u[0], -np.inf)
    if not hi > u[-1]:
        hi = np.nextafter(u[-1], np.inf)
    # Midpoint written to avoid overflow. When u[k] and u[k+1] are adjacent
    # floats the midpoint rounds onto one of them; u[k+1] itself is then the
    # correct threshold (accepts u[k] and below, rejects u[k+1]).
    mid = u[:-1] + (u[1:] - u[:-1]) / 2.0
    mid = np.where(mid > u[:-1], mid, u[1:])
    return np.concatenate(([lo], mid, [hi]))


def _operating_points(same, different):
    """Thresholds and (true accept, false accept) counts at each of them."""
    same = np.sort(_as_distances(same, "same"))
    different = np.sort(_as_distances(different, "different"))
    thresholds = _candidate_thresholds(np.concatenate((same, different)))
    # side="left" counts the values strictly below each threshold, matching
    # the strict ``d < threshold`` decision.
    ta = np.searchsorted(same, thresholds, side="left")
    fa = np.searchsorted(different, thresholds, side="left")
    return thresholds, ta, fa, same.size, different.size


def _require_both_sides(n_same, n_different):
    if n_same == 0 or n_different == 0:
        raise ValueError(
            "need at least one same-pair and one different-pair distance; "
            f"got {n_same} same and {n_different} different"
        )


def roc_curve(same, different):
    """Receiver operating characteristic for the decision ``distance < threshold``.

    Parameters
    ----------
    same : array_like, shape (n_same,)
        Distances of same-person pairs (must be non-empty).
    different : array_like, shape (n_different,)
        Distances of different-person pairs (must be non-empty).

    Returns
    -------
    far : ndarray, shape (k,)
        False accept rate at each threshold, non-decreasing, from 0 to 1.
    tar : ndarray, shape (k,)
        True accept rate at each threshold, non-decreasing, from 0 to 1.
    thresholds : ndarray, shape (k,)
        Strictly increasing. ``confusion_counts(same, different, thresholds[i])``
        reproduces ``(far[i], tar[i])`` exactly.

    Notes
    -----
    One point per distinct distance value plus one: every operating point the
    data allow, with ``k = number of distinct distances + 1``. Thresholds are
    one below the smallest distance, the midpoints between consecutive
    distinct distances, and one above the largest. Runs in O(n log n).

    Examples
    --------
    >>> far, tar, thr = roc_curve([0.1, 0.3], [0.2, 0.4])
    >>> far, tar, thr
    (array([0. , 0. , 0.5, 0.5, 1. ]), array([0. , 0.5, 0.5, 1. , 1. ]), array([-0.9 ,  0.15,  0.25,  0.35,  1.4 ]))
    """
    thresholds, ta, fa, n_same, n_diff = _operating_points(same, different)
    _require_both_sides(n_same, n_diff)
    return fa / n_diff, ta / n_same, thresholds


def roc_auc(same, different):
    """Area under the ROC curve.

    Equals the probability that a random same-pair distance is smaller than
    a random different-pair distance, ties counting 1/2 (the Mann-Whitney U
    statistic). Computed from ranks in O(n log n).

    Returns
    -------
    float
        1.0 for perfectly separated distances, 0.5 for uninformative ones.

    Examples
    --------
    >>> roc_auc([0.1, 0.2], [0.8, 0.9])
    1.0
    >>> roc_auc([0.5, 0.5], [0.5])
    0.5
    """
    same = _as_distances(same, "same")
    different = _as_distances(different, "different")
    _require_both_sides(same.size, different.size)
    values = np.concatenate((same, different))
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # Average 1-based rank of each tie group: the group starting at sorted
    # position p with c members has ranks p+1 .. p+c, mean p + (c + 1) / 2.
    starts = np.cumsum(counts) - counts
    ranks = (starts + (counts + 1) / 2.0)[inverse]
    n_s, n_d = same.size, different.size
    # U of the different side = #(same < different) + 1/2 #(ties).
    u_different = ranks[n_s:].sum() - n_d * (n_d + 1) / 2.0
    return float(u_different / (n_s * n_d))


def equal_error_rate(same, different):
    """Equal error rate: the point where FAR = FRR (= 1 - TAR).

    The ROC is a set of discrete points, so FAR - FRR rarely hits 0 exactly;
    we interpolate linearly between the two neighbouring ROC points where it
    changes sign, both for the rate and for the threshold.

    Returns
    -------
    eer : float
    threshold : float
        Threshold at the crossing. At this threshold the real (step-wise)
        FAR and FRR are within one ROC step of ``eer``.

    Examples
    --------
    >>> equal_error_rate([0.1, 0.2], [0.8, 0.9])
    (0.0, 0.5)
    """
    far, tar, thresholds = roc_curve(same, different)
    gap = far - (1.0 - tar)  # increases from -1 to +1 along the curve
    k = int(np.argmax(gap >= 0))  # first point at or past the crossing
    if gap[k] == 0 or k == 0:
        return float(far[k]), float(thresholds[k])
    # Fraction of the way from point k-1 to point k where gap == 0.
    alpha = -gap[k - 1] / (gap[k] - gap[k - 1])
    eer = far[k - 1] + alpha * (far[k] - far[k - 1])
    threshold = thresholds[k - 1] + alpha * (thresholds[k] - thresholds[k - 1])
    return float(eer), float(threshold)


def threshold_at_far(same, different, target_far):
    """Largest candidate threshold whose false accept rate is ``<= target_far``.

    Candidates are the ROC thresholds (see :func:`roc_curve`). Any larger
    threshold with the same FAR accepts exactly the same pairs, so this
    also maximises TAR under the FAR bound.

    Parameters
    ----------
    same, different : array_like
        Distances; ``different`` must be non-empty.
    target_far : float in [0, 1]

    Returns
    -------
    threshold : float
    counts : VerificationCounts
        Counts at ``threshold``; ``counts.far <= target_far``.

    Examples
    --------
    >>> thr, c = threshold_at_far([0.1, 0.3, 0.5], [0.4, 0.6, 0.7, 0.8], 0.25)
    >>> thr, c.far, round(c.tar, 3)
    (0.55, 0.25, 1.0)
    """
    target_far = float(target_far)
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target_far must be in [0, 1]; got {target_far}")
    thresholds, ta, fa, n_same, n_diff = _operating_points(same, different)
    if n_diff == 0:
        raise ValueError("need at least one different-pair distance to measure FAR")
    # FAR is non-decreasing in the threshold: take the last point within the
    # bound. Rates are computed exactly as VerificationCounts.far does, so the
    # returned counts satisfy ``counts.far <= target_far`` bit for bit.
    k = int(np.searchsorted(fa / n_diff, target_far, side="right")) - 1
    thr = float(thresholds[k])
    counts = VerificationCounts(
        threshold=thr,
        true_accepts=int(ta[k]),
        false_rejects=int(n_same - ta[k]),
        false_accepts=int(fa[k]),
        true_rejects=int(n_diff - fa[k]),
    )
    return thr, counts


def best_accuracy_threshold(same, different):
    """Threshold that maximises accuracy (TA + TR) / (all pairs).

    All ROC thresholds (see :func:`roc_curve`) are tried. When several give
    the same best accuracy, the **smallest** one is returned (the same rule
    as ``argmax`` over a threshold grid), so the result is deterministic.

    Parameters
    ----------
    same, different : array_like
        Distances; at least one of them must be non-empty.

    Returns
    -------
    threshold : float
    counts : VerificationCounts
        Counts at ``threshold``; ``counts.accuracy`` is the best accuracy.

    Examples
    --------
    >>> thr, c = best_accuracy_threshold([0.2, 0.4, 0.9], [0.8, 1.1, 1.3])
    >>> round(thr, 3), round(c.accuracy, 3)
    (0.6, 0.833)
    """
    thresholds, ta, fa, n_same, n_diff = _operating_points(same, different)
    correct = ta + (n_diff - fa)
    k = int(np.argmax(correct))  # argmax returns the first (smallest) maximum
    thr = float(thresholds[k])
    counts = VerificationCounts(
        threshold=thr,
        true_accepts=int(ta[k]),
        false_rejects=int(n_same - ta[k]),
        false_accepts=int(fa[k]),
        true_rejects=int(n_diff - fa[k]),
    )
    return thr, counts


# ---------------------------------------------------------------------------
# LFW protocol
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LFWPairs:
    """Pairs of an LFW ``pairs.txt`` file, one entry per pair, in file order.

    Attributes
    ----------
    path1, path2 : tuple of str
        Image paths relative to the LFW image root, ``Name/Name_0001.jpg``.
    is_same : ndarray of bool
        True for same-person pairs.
    fold : ndarray of int
        0-based fold index of each pair.
    n_folds : int
    pairs_per_fold : int
        Same-person pairs per fold (equal to the different-person pairs).
    """

    path1: tuple
    path2: tuple
    is_same: np.ndarray
    fold: np.ndarray
    n_folds: int
    pairs_per_fold: int

    def __len__(self) -> int:
        return len(self.path1)


def _lfw_image_path(name, index):
    return f"{name}/{name}_{index:04d}.jpg"


def read_lfw_pairs(path: Union[str, os.PathLike]) -> LFWPairs:
    """Parse an LFW ``pairs.txt`` (View 2) file.

    Format: a header ``n_folds n_per_fold`` (e.g. ``10 300``), then per fold
    ``n_per_fold`` same-person lines ``name  i  j`` followed by ``n_per_fold``
    different-person lines ``name1  i  name2  j`` (tab separated; any
    whitespace is accepted). A one-number header ``n`` (the View 1
    ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` files) is read as a single
    fold. Blank lines and trailing whitespace are ignored.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LFWPairs

    Raises
    ------
    ValueError
        If the file is malformed; the message names the file and line.

    Examples
    --------
    >>> pairs = read_lfw_pairs("lfw/pairs.txt")            # doctest: +SKIP
    >>> len(pairs), pairs.n_folds, int(pairs.is_same.sum()) # doctest: +SKIP
    (6000, 10, 3000)
    >>> pairs.path1[0], pairs.path2[0]                      # doctest: +SKIP
    ('Abel_Pacheco/Abel_Pacheco_0001.jpg', 'Abel_Pacheco/Abel_Pacheco_0004.jpg')
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        # Keep 1-based line numbers for error messages, skip blank lines.
        lines = [(no, line.split()) for no, line in enumerate(f, start=1) if line.strip()]

    def fail(line_no, message):
        raise ValueError(f"{path}, line {line_no}: {message}")

    def positive_int(text, line_no, what):
        try:
            value = int(text)
        except ValueError:
            fail(line_no, f"{what} must be an integer, got {text!r}")
        if value < 1:
            fail(line_no, f"{what} must be >= 1, got {value}")
        return value

    if not lines:
        raise ValueError(f"{path}: file is empty, expected a header such as '10 300'")
    header_no, header = lines[0]
    if len(header) == 2:
        n_folds = positive_int(header[0], header_no, "number of folds")
        n_per = positive_int(header[1], header_no, "pairs per fold")
    elif len(header) == 1:
        n_folds, n_per = 1, positive_int(header[0], header_no, "number of pairs")
    else:
        fail(header_no, f"expected a header 'n_folds pairs_per_fold', got {' '.join(header)!r}")

    body = lines[1:]
    expected = n_folds * 2 * n_per
    if len(body) < expected:
        last_no = lines[-1][0]
        raise ValueError(
            f"{path}: header promises {n_folds} folds x {2 * n_per} pairs = {expected} pair "
            f"lines, but only {len(body)} found (file ends at line {last_no})"
        )
    if len(body) > expected:
        fail(body[expected][0], f"unexpected extra line; header promises only {expected} pair lines")

    path1, path2, is_same, fold = [], [], [], []
    for k, (line_no, fields) in enumerate(body):
        same_pair = (k % (2 * n_per)) < n_per
        if same_pair:
            if len(fields) != 3:
                fail(line_no, f"expected a same-person pair 'name i j' (3 fields), got {len(fields)}")
            name, i, j = fields
            a = _lfw_image_path(name, positive_int(i, line_no, "image number"))
            b = _lfw_image_path(name, positive_int(j, line_no, "image number"))
        else:
            if len(fields) != 4:
                fail(
                    line_no,
                    f"expected a different-person pair 'name1 i name2 j' (4 fields), got {len(fields)}",
                )
            name1, i, name2, j = fields
            a = _lfw_image_path(name1, positive_int(i, line_no, "image number"))
            b = _lfw_image_path(name2, positive_int(j, line_no, "image number"))
        path1.append(a)
        path2.append(b)
        is_same.append(same_pair)
        fold.append(k // (2 * n_per))

    return LFWPairs(
        path1=tuple(path1),
        path2=tuple(path2),
        is_same=np.array(is_same, dtype=bool),
        fold=np.array(fold, dtype=np.int64),
        n_folds=n_folds,
        pairs_per_fold=n_per,
    )


# ---------------------------------------------------------------------------
# Cross-validated protocol numbers
# ---------------------------------------------------------------------------

def _protocol_inputs(distances, is_same, folds):
    """Validate inputs; return distances, is_same and fold ids 0..k-1."""
    distances = _as_distances(distances, "distances")
    is_same = np.asarray(is_same)
    if is_same.shape != distances.shape:
        raise ValueError(
            f"is_same must have the same shape as distances; got {is_same.shape} and {distances.shape}"
        )
    is_same = is_same.astype(bool)
    n = distances.size
    if np.isscalar(folds) and not isinstance(folds, bool):
        k = int(folds)
        if k < 2 or k > n:
            raise ValueError(f"number of folds must be in [2, {n}]; got {k}")
        # Contiguous, nearly equal folds in input order (like an unshuffled
        # sklearn KFold); LFW pairs are already stored fold by fold.
        fold_ids = np.empty(n, dtype=np.int64)
        for f, idx in enumerate(np.array_split(np.arange(n), k)):
            fold_ids[idx] = f
    else:
        raw = np.asarray(folds)
        if raw.shape != distances.shape:
            raise ValueError(
                f"folds must be an int or have the same shape as distances; got {raw.shape}"
            )
        # Any fold labels: relabel to 0..k-1 in sorted order.
        _, fold_ids = np.unique(raw, return_inverse=True)
        fold_ids = fold_ids.reshape(-1)
        if fold_ids.max(initial=-1) < 1:
            raise ValueError("need at least 2 distinct folds")
    return distances, is_same, fold_ids


@dataclass(frozen=True, eq=False)
class KFoldAccuracy:
    """Result of :func:`kfold_accuracy`.

    Attributes
    ----------
    accuracies : ndarray, shape (k,)
        Accuracy on each held-out fold.
    thresholds : ndarray, shape (k,)
        Threshold used for each fold (chosen on the other folds).
    """

    accuracies: np.ndarray
    thresholds: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0) over folds, as usually reported for LFW."""
        return float(np.std(self.accuracies))

    def __str__(self) -> str:
        return f"accuracy {self.mean:.4f} +- {self.std:.4f} over {len(self.accuracies)} folds"


def kfold_accuracy(distances, is_same, folds=10):
    """Cross-validated verification accuracy (the LFW View 2 protocol).

    For each fold, the threshold is chosen by :func:`best_accuracy_threshold`
    on all *other* folds and the accuracy is measured on the held-out fold,
    so no fold is scored with a threshold tuned on itself.

    Parameters
    ----------
    distances : array_like, shape (n,)
        Distance of each pair.
    is_same : array_like of bool, shape (n,)
        True for same-person pairs.
    folds : int or array_like, shape (n,), default 10
        Either the fold label of each pair (e.g. ``LFWPairs.fold``) or a
        number of contiguous folds to split the pairs into, in order.

    Returns
    -------
    KFoldAccuracy
        ``.accuracies``, ``.thresholds``, ``.mean``, ``.std``.

    Examples
    --------
    >>> pairs = read_lfw_pairs("lfw/pairs.txt")                 # doctest: +SKIP
    >>> result = kfold_accuracy(dists, pairs.is_same, pairs.fold) # doctest: +SKIP
    >>> print(result)                                             # doctest: +SKIP
    accuracy 0.9650 +- 0.0080 over 10 folds
    """
    distances, is_same, fold_ids = _protocol_inputs(distances, is_same, folds)
    n_folds = int(fold_ids.max()) + 1
    accuracies = np.empty(n_folds)
    thresholds = np.empty(n_folds)
    for f in range(n_folds):
        test = fold_ids == f
        train = ~test
        thr, _ = best_accuracy_threshold(distances[train & is_same], distances[train & ~is_same])
        counts = confusion_counts(distances[test & is_same], distances[test & ~is_same], thr)
        accuracies[f] = counts.accuracy
        thresholds[f] = thr
    return KFoldAccuracy(accuracies=accuracies, thresholds=thresholds)


@dataclass(frozen=True, eq=False)
class ValAtFar:
    """Result of :func:`val_at_far`.

    Attributes
    ----------
    target_far : float
    vals : ndarray, shape (k,)
        Validation rate (TAR) on each held-out fold.
    fars : ndarray, shape (k,)
        False accept rate actually obtained on each held-out fold.
    thresholds : ndarray, shape (k,)
        Threshold used for each fold (chosen on the other folds).
    """

    target_far: float
    vals: np.ndarray
    fars: np.ndarray
    thresholds: np.ndarray

    @property
    def val_mean(self) -> float:
        return float(np.mean(self.vals))

    @property
    def val_std(self) -> float:
        """Population standard deviation (ddof=0) of VAL over folds."""
        return float(np.std(self.vals))

    @property
    def far_mean(self) -> float:
        return float(np.mean(self.fars))

    def __str__(self) -> str:
        return (
            f"VAL {self.val_mean:.4f} +- {self.val_std:.4f} @ FAR={self.far_mean:.5f} "
            f"(target {self.target_far:g}, {len(self.vals)} folds)"
        )


def _threshold_for_far(same, different, target_far):
    """Threshold whose FAR is ``target_far``, interpolated between operating points.

    For each achievable FAR value we keep its largest threshold (the one with
    the highest TAR), then interpolate the threshold linearly in FAR. When
    the target is achievable exactly this is the :func:`threshold_at_far`
    threshold; in between it behaves like a quantile of the different-pair
    distances.
    """
    thresholds, _, fa, _, n_diff = _operating_points(same, different)
    if n_diff == 0:
        raise ValueError("a training split has no different-pair distances; cannot measure FAR")
    far = fa / n_diff
    # Last index of each distinct FAR value (FAR is sorted, non-decreasing).
    last = np.flatnonzero(np.append(far[1:] != far[:-1], True))
    return float(np.interp(target_far, far[last], thresholds[last]))


def val_at_far(distances, is_same, folds=10, target_far=1e-3):
    """Validation rate (TAR) at a fixed false accept rate, cross-validated.

    This follows the FaceNet paper's VAL(d) / FAR(d) report as done in common
    FaceNet evaluation code: for each fold, the threshold giving
    ``FAR = target_far`` is found on the other folds (interpolating between
    operating points, since FAR only takes values k / n_different), then VAL
    and FAR are measured on the held-out fold.

    Parameters
    ----------
    distances : array_like, shape (n,)
    is_same : array_like of bool, shape (n,)
    folds : int or array_like, shape (n,), default 10
        As in :func:`kfold_accuracy`.
    target_far : float in [0, 1], default 1e-3

    Returns
    -------
    ValAtFar
        ``.vals``, ``.fars``, ``.thresholds``, ``.val_mean``, ``.val_std``,
        ``.far_mean``.

    Notes
    -----
    With LFW's 2,700 training different pairs per split, FAR = 1e-3 lies
    between 2 and 3 false accepts, so the result is noisy; report it with
    its standard deviation.
    """
    target_far = float(target_far)
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target_far must be in [0, 1]; got {target_far}")
    distances, is_same, fold_ids = _protocol_inputs(distances, is_same, folds)
    n_folds = int(fold_ids.max()) + 1
    vals = np.empty(n_folds)
    fars = np.empty(n_folds)
    thresholds = np.empty(n_folds)
    for f in range(n_folds):
        test = fold_ids == f
        train = ~test
        thr = _threshold_for_far(distances[train & is_same], distances[train & ~is_same], target_far)
        counts = confusion_counts(distances[test & is_same], distances[test & ~is_same], thr)
        vals[f] = counts.tar
        fars[f] = counts.far
        thresholds[f] = thr
    return ValAtFar(target_far=target_far, vals=vals, fars=fars, thresholds=thresholds)
