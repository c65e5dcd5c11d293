"""Data and figures for exploring a face verifier's threshold: numbers first, pictures second.

Everything here is plain numpy, Pillow and matplotlib's object API (``Figure``, never ``pyplot``):
no widgets, no TensorFlow, no global plotting state. ``fr_widgets`` wires these to sliders.

The scene is a door with a camera. A database holds one enrolled encoding per person; each
*camera photo* is compared with every enrolled person. A comparison is accepted ("the door opens
for that name") when the L2 distance is strictly below the threshold, as in ``fr_eval``:

* photo of person P against P's entry: a *same* pair (true accept or false reject);
* photo of person P against Q's entry: a *different* pair (false accept or true reject).

:class:`CameraDistances` holds the (photos x identities) distance matrix once; the functions below
read decisions off it at any threshold without encoding anything again.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

import fr_eval

# One colour per role, used by every figure so that the pictures read alike.
SAME_COLOUR = "#1b9e77"  # same-person pairs, true accepts
DIFFERENT_COLOUR = "#d95f02"  # different-person pairs
THRESHOLD_COLOUR = "#222222"
WRONG_COLOUR = "#e7298a"  # false accepts: the door opened for the wrong person
PERSON_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf")
DISTANCE_BINS = np.linspace(0.0, 2.0, 41)  # unit vectors: every L2 distance lies in [0, 2]


# ---------------------------------------------------------------------------------------------
# The distance matrix and the decisions it implies
# ---------------------------------------------------------------------------------------------
def database_matrix(database):
    """``{name: (1, 128) encoding}`` -> (names in insertion order, (n, 128) float64 matrix)."""
    names = list(database)
    if not names:
        raise ValueError("the database is empty; enrol at least one person first")
    matrix = np.concatenate([np.asarray(database[n], dtype=np.float64).reshape(1, -1) for n in names])
    return names, matrix


@dataclass(frozen=True, eq=False)
class CameraDistances:
    """Distances between camera photos (rows) and enrolled identities (columns).

    Attributes
    ----------
    names : tuple of str
        The database identities, one per column.
    labels : tuple of str
        The true person of each camera photo, one per row (may be someone not enrolled).
    photos : tuple of str
        A short name for each photo (e.g. ``"val/madonna_03"``), for captions and menus.
    distances : ndarray of float64, shape (n_photos, n_identities)
    """

    names: tuple
    labels: tuple
    photos: tuple
    distances: np.ndarray

    @property
    def same_mask(self):
        """``same_mask[i, j]``: photo i shows identity j (a genuine pair)."""
        return np.asarray(self.labels, dtype=object)[:, None] == np.asarray(self.names, dtype=object)[None, :]

    def same_different(self):
        """(same, different) distances in row-major order, ready for ``fr_eval``."""
        mask = self.same_mask
        return self.distances[mask], self.distances[~mask]

    def accepted(self, threshold):
        """Boolean (n_photos, n_identities): which doors open at ``threshold``."""
        return self.distances < float(threshold)

    def counts(self, threshold):
        """``fr_eval.VerificationCounts`` of every photo-identity comparison at ``threshold``."""
        same, different = self.same_different()
        return fr_eval.confusion_counts(same, different, threshold)


def photo_label(path):
    """``images/val/madonna/madonna_03.jpg`` -> ``"val/madonna_03"``: split and photo, short."""
    parts = str(path).replace("\\", "/").split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    return f"{parts[-3]}/{stem}" if len(parts) >= 3 else stem


def enrolment_split(paths):
    """Split photo paths into the one-shot enrolment and the camera photos.

    The enrolled photo of each person is their first photo (in sorted order) under a ``train``
    folder, as the notebook's database; every other photo is a camera photo.

    Returns
    -------
    enrolled : dict person -> path
    camera : list of paths, in the given order
    """
    enrolled = {}
    for path in sorted(paths, key=str):
        parts = str(path).replace("\\", "/").split("/")
        if len(parts) >= 3 and parts[-3] == "train":
            enrolled.setdefault(parts[-2], path)
    chosen = {str(p) for p in enrolled.values()}
    return enrolled, [p for p in paths if str(p) not in chosen]


def camera_distances(database, encodings, labels, photos=None):
    """Compare every camera photo's encoding with every enrolled identity.

    Parameters
    ----------
    database : dict
        ``{name: (1, 128) encoding}``, e.g. ``fr_utils.build_database(...)``.
    encodings : array_like, shape (n_photos, 128)
    labels : sequence of str, length n_photos
        True identity of each photo (``path.parent.name`` for the bundled photos).
    photos : sequence, optional
        Paths or names of the photos; shortened with :func:`photo_label`. Default ``"photo i"``.

    Returns
    -------
    CameraDistances
    """
    names, matrix = database_matrix(database)
    encodings = np.asarray(encodings, dtype=np.float64)
    if encodings.ndim != 2 or encodings.shape[1] != matrix.shape[1]:
        raise ValueError(f"encodings must have shape (n, {matrix.shape[1]}); got {encodings.shape}")
    labels = tuple(str(label) for label in labels)
    if len(labels) != len(encodings):
        raise ValueError(f"{len(labels)} labels for {len(encodings)} encodings")
    if photos is None:
        photos = tuple(f"photo {i}" for i in range(len(encodings)))
    else:
        photos = tuple(photo_label(p) for p in photos)
        if len(photos) != len(encodings):
            raise ValueError(f"{len(photos)} photo names for {len(encodings)} encodings")
    return CameraDistances(tuple(names), labels, photos, fr_eval.pairwise_distances(encodings, matrix))


# Outcomes of asking "who is it?" about one photo, in the order a table lists them.
CORRECT = "correct"  # nearest identity is the right person, and close enough
WRONG_PERSON = "wrong person"  # accepted, but as somebody else
MISSED = "missed"  # the person is enrolled but the nearest distance is too large
REJECTED_STRANGER = "stranger rejected"  # not enrolled, and nobody accepted: right
ACCEPTED_STRANGER = "stranger let in"  # not enrolled, yet accepted as somebody
OUTCOMES = (CORRECT, WRONG_PERSON, MISSED, REJECTED_STRANGER, ACCEPTED_STRANGER)
GOOD_OUTCOMES = frozenset({CORRECT, REJECTED_STRANGER})


@dataclass(frozen=True)
class Identification:
    """``who_is_it`` on one camera photo, read off the distance matrix."""

    index: int  # row in CameraDistances
    photo: str
    truth: str
    nearest: str  # the closest identity, accepted or not
    distance: float  # distance to it
    accepted: bool  # distance < threshold
    outcome: str  # one of OUTCOMES

    @property
    def answer(self):
        """What ``who_is_it`` prints, without the print."""
        return f"it's {self.nearest}, the distance is {self.distance:.4f}" if self.accepted else "Not in the database."


def identification_outcome(truth, nearest, accepted, names):
    """Classify one who_is_it answer (see :data:`OUTCOMES`)."""
    if truth not in names:
        return ACCEPTED_STRANGER if accepted else REJECTED_STRANGER
    if not accepted:
        return MISSED
    return CORRECT if nearest == truth else WRONG_PERSON


def identify_all(camera, threshold):
    """who_is_it for every camera photo at ``threshold``: a list of :class:`Identification`.

    The nearest identity is the first one with the smallest distance (``argmin``), as
    ``fr_utils.who_is_it`` does.
    """
    threshold = float(threshold)
    best = np.argmin(camera.distances, axis=1)
    rows = []
    for i, j in enumerate(best):
        distance = float(camera.distances[i, j])
        accepted = distance < threshold
        nearest = camera.names[j]
        rows.append(Identification(
            index=i, photo=camera.photos[i], truth=camera.labels[i], nearest=nearest, distance=distance,
            accepted=accepted, outcome=identification_outcome(camera.labels[i], nearest, accepted, camera.names),
        ))
    return rows


def outcome_counts(identifications):
    """``{outcome: count}`` over :data:`OUTCOMES` (zeros included, in that order)."""
    seen = Counter(row.outcome for row in identifications)
    return {outcome: seen.get(outcome, 0) for outcome in OUTCOMES}


@dataclass(frozen=True)
class VerifyOutcome:
    """``verify`` of one photo against one claimed identity, read off the distance matrix."""

    photo: str
    truth: str
    claimed: str
    distance: float
    threshold: float

    @property
    def door_open(self):
        return self.distance < self.threshold

    @property
    def kind(self):
        """"true accept", "false accept", "true reject" or "false reject"."""
        genuine = self.claimed == self.truth
        if self.door_open:
            return "true accept" if genuine else "false accept"
        return "false reject" if genuine else "true reject"

    @property
    def message(self):
        """What ``verify`` prints."""
        return f"It's {self.claimed}, welcome in!" if self.door_open else f"It's not {self.claimed}, please go away"


def verify_outcome(camera, photo_index, claimed, threshold):
    """verify(photo, claimed) at ``threshold`` for one camera photo (no re-encoding)."""
    if claimed not in camera.names:
        raise KeyError(f"{claimed!r} is not in the database (known: {', '.join(camera.names)})")
    distance = float(camera.distances[int(photo_index), camera.names.index(claimed)])
    return VerifyOutcome(camera.photos[int(photo_index)], camera.labels[int(photo_index)], claimed, distance,
                         float(threshold))


# ---------------------------------------------------------------------------------------------
# Counts as text
# ---------------------------------------------------------------------------------------------
def counts_text(counts):
    """One line a person and a test can read: ``"TA=108 FA=1 TR=451 FR=5 TAR=0.9558 FAR=0.0022"``."""
    return (f"TA={counts.true_accepts} FA={counts.false_accepts} TR={counts.true_rejects} "
            f"FR={counts.false_rejects} TAR={_rate(counts.tar)} FAR={_rate(counts.far)}")


def parse_counts_text(text):
    """Inverse of :func:`counts_text`: ``{"TA": 108, ..., "TAR": 0.9558, "FAR": 0.0022}``."""
    values = {}
    for item in text.split():
        key, _, value = item.partition("=")
        if key in ("TA", "FA", "TR", "FR"):
            values[key] = int(value)
        elif key in ("TAR", "FAR"):
            values[key] = float(value)
    missing = {"TA", "FA", "TR", "FR", "TAR", "FAR"} - set(values)
    if missing:
        raise ValueError(f"not a counts line (missing {sorted(missing)}): {text!r}")
    return values


def format_threshold(threshold):
    """``1.18`` -> ``"1.18"``; a threshold off the 0.01 grid keeps 4 decimals (``"1.2517"``)."""
    threshold = float(threshold)
    return f"{threshold:.2f}" if abs(threshold - round(threshold, 2)) < 1e-9 else f"{threshold:.4f}"


def _rate(value):
    return "nan" if math.isnan(value) else f"{value:.4f}"


# ---------------------------------------------------------------------------------------------
# PCA to 2-D
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Projection:
    """A 2-D principal component projection (see :func:`pca_2d`)."""

    coords: np.ndarray  # (n, 2) the projected points
    components: np.ndarray  # (2, d) unit principal axes, signs fixed
    explained_variance_ratio: np.ndarray  # (2,) share of the total variance along each axis
    mean: np.ndarray  # (d,) subtracted before projecting

    def transform(self, points):
        """Project other points (e.g. the database entries) onto the same two axes."""
        points = np.asarray(points, dtype=np.float64)
        return (points.reshape(-1, self.mean.size) - self.mean) @ self.components.T


def pca_2d(points):
    """Project points onto their first two principal components.

    The sign of a principal axis is arbitrary (``v`` and ``-v`` explain the same variance) and can
    differ between LAPACK builds, so it is fixed: each axis is flipped so that its largest-magnitude
    loading is positive. The same data thus always give the same picture, whatever the row order.

    Parameters
    ----------
    points : array_like, shape (n, d), n >= 2, d >= 2

    Returns
    -------
    Projection
        ``coords[:, 0]`` has the largest variance; both columns have mean 0.

    Examples
    --------
    >>> p = pca_2d([[0, 0, 0], [2, 0, 0], [0, 1, 0], [2, 1, 0]])
    >>> p.components.round(6).tolist(), p.explained_variance_ratio.round(2).tolist()
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0.8, 0.2])
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d needs an (n, d) array with n >= 2 and d >= 2; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("points contain NaN or infinite values")
    mean = x.mean(axis=0)
    centred = x - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2].copy()
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(2), largest])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    variance = singular ** 2
    total = variance.sum()
    ratio = variance[:2] / total if total > 0 else np.zeros(2)
    return Projection(centred @ components.T, components, ratio, mean)


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib's object API: nothing is shown until a caller renders it)
# ---------------------------------------------------------------------------------------------
def figure_png(figure, dpi=None):
    """Render a Figure to PNG bytes (Agg, no display backend involved)."""
    if figure.canvas is None or not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _new_figure(width, height, dpi=80):
    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


class ThresholdPlot:
    """Histograms of same/different distances with the threshold line, beside the ROC curve with
    the current operating point. Built once; :meth:`update` moves the line and the point.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    histogram_axes, roc_axes : Axes
    threshold_line : Line2D (vertical, on the histograms)
    operating_point : Line2D (one marker, on the ROC)
    auc : float
    eer, eer_threshold : float (``fr_eval.equal_error_rate``)
    """

    def __init__(self, same, different, threshold, bins=DISTANCE_BINS):
        self.same = np.asarray(same, dtype=np.float64)
        self.different = np.asarray(different, dtype=np.float64)
        self.figure = _new_figure(10, 3.6)
        self.histogram_axes, self.roc_axes = self.figure.subplots(1, 2, width_ratios=[3, 2])

        ax = self.histogram_axes
        ax.hist(self.different, bins=bins, color=DIFFERENT_COLOUR, alpha=0.55,
                label=f"different person ({self.different.size} pairs)")
        ax.hist(self.same, bins=bins, color=SAME_COLOUR, alpha=0.65, label=f"same person ({self.same.size} pairs)")
        self.threshold_line = ax.axvline(threshold, color=THRESHOLD_COLOUR, linewidth=2, label="threshold")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel("L2 distance between encodings  (accept if distance < threshold)")
        ax.set_ylabel("number of pairs")
        ax.legend(loc="upper left", fontsize="small")

        far, tar, _ = fr_eval.roc_curve(self.same, self.different)
        self.auc = fr_eval.roc_auc(self.same, self.different)
        self.eer, self.eer_threshold = fr_eval.equal_error_rate(self.same, self.different)
        ax = self.roc_axes
        ax.plot(far, tar, color=SAME_COLOUR, linewidth=2, label=f"ROC (AUC {self.auc:.4f})")
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1)
        ax.plot([self.eer], [1 - self.eer], marker="s", color="#7570b3", linestyle="none",
                label=f"equal error rate {self.eer:.3f}")
        self.operating_point, = ax.plot([], [], marker="o", markersize=10, color=THRESHOLD_COLOUR,
                                        linestyle="none", label="current threshold")
        # FAR on a symmetric-log axis: linear near 0, logarithmic above 1%, where a good verifier's
        # operating points crowd against the left edge of a linear axis.
        ax.set_xscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set_xlim(0.0, 1.0)
        ax.set_xticks([0, 0.01, 0.1, 1], ["0", "0.01", "0.1", "1"])
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("false accept rate (FAR, symmetric log scale)")
        ax.set_ylabel("true accept rate (TAR)")
        ax.legend(loc="lower right", fontsize="small")
        self.update(threshold)

    def update(self, threshold):
        """Move the threshold line and the operating point; returns the VerificationCounts."""
        counts = fr_eval.confusion_counts(self.same, self.different, threshold)
        self.threshold_line.set_xdata([counts.threshold, counts.threshold])
        self.operating_point.set_data([counts.far], [counts.tar])
        self.histogram_axes.set_title(
            f"threshold {format_threshold(counts.threshold)}: {counts.true_accepts}/{counts.n_same} same accepted, "
            f"{counts.false_accepts}/{counts.n_different} different accepted")
        self.roc_axes.set_title(f"TAR {_rate(counts.tar)} at FAR {_rate(counts.far)}")
        return counts

    def png(self):
        return figure_png(self.figure)


def person_order(labels):
    """Row indices sorted by person, then by original position (a stable grouping)."""
    return sorted(range(len(labels)), key=lambda i: (labels[i], i))


def heatmap_figure(camera, threshold):
    """The distance matrix, identities x camera photos grouped by person, with the decisions.

    Inside each person's block of columns, the row of their own entry holds the genuine pairs: a
    white dot marks a true accept, an empty white ring a false reject. A pink cross anywhere else
    is a false accept: the door opened for the wrong person.

    Returns
    -------
    Figure
        One Axes; its image holds ``distances[order].T`` (order = :func:`person_order`), and its
        title states the counts at ``threshold``.
    """
    threshold = float(threshold)
    order = person_order(camera.labels)
    matrix = camera.distances[order].T  # identities x photos
    same = camera.same_mask[order].T
    accepted = matrix < threshold
    figure = _new_figure(max(6.0, min(14.0, 2.5 + 0.1 * matrix.shape[1])), 1.6 + 0.45 * matrix.shape[0])
    ax = figure.subplots()
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0.0, vmax=2.0, interpolation="nearest")
    figure.colorbar(image, ax=ax, label="distance", fraction=0.04, pad=0.01)
    rows, cols = np.nonzero(accepted & same)
    ax.scatter(cols, rows, marker="o", s=14, color="white", label="true accept")
    rows, cols = np.nonzero(~accepted & same)
    ax.scatter(cols, rows, marker="o", s=16, facecolors="none", edgecolors="white", linewidths=0.9,
               label="false reject")
    rows, cols = np.nonzero(accepted & ~same)
    ax.scatter(cols, rows, marker="x", s=30, color=WRONG_COLOUR, linewidths=1.5, label="false accept")
    labels = [camera.labels[i] for i in order]
    starts = [k for k in range(len(labels)) if k == 0 or labels[k] != labels[k - 1]]
    for k in starts[1:]:
        ax.axvline(k - 0.5, color="white", linewidth=1)
    ends = starts[1:] + [len(labels)]
    ax.set_xticks([(s + e - 1) / 2 for s, e in zip(starts, ends)], [labels[s] for s in starts], fontsize="small")
    ax.set_yticks(range(len(camera.names)), camera.names)
    ax.set_xlabel(f"camera photos ({len(labels)}), grouped by who they show")
    ax.set_ylabel("enrolled")
    counts = camera.counts(threshold)
    ax.set_title(f"threshold {format_threshold(threshold)}: the door opened for the right person "
                 f"{counts.true_accepts} of {counts.n_same} times, for the wrong person "
                 f"{counts.false_accepts} of {counts.n_different} times",
                 fontsize="medium")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", framealpha=0.7)
    return figure


def embedding_figure(projection, labels, database_points=None, database_names=None):
    """Scatter the 2-D projection, one colour per person; enrolled entries as large stars.

    Returns
    -------
    Figure
        One Axes with one scatter collection per person (label = the person's name), then one
        per enrolled entry when ``database_points`` are given.
    """
    labels = [str(label) for label in labels]
    people = sorted(set(labels) | set(database_names or ()))
    colour = {person: PERSON_COLOURS[k % len(PERSON_COLOURS)] for k, person in enumerate(people)}
    figure = _new_figure(7, 5.5)
    ax = figure.subplots()
    for person in people:
        rows = [i for i, label in enumerate(labels) if label == person]
        if rows:
            ax.scatter(projection.coords[rows, 0], projection.coords[rows, 1], s=28, alpha=0.8,
                       color=colour[person], label=f"{person} ({len(rows)})")
    if database_points is not None:
        points = projection.transform(database_points)
        for name, (x, y) in zip(database_names, points):
            ax.scatter([x], [y], marker="*", s=320, color=colour[name], edgecolors="black", linewidths=1,
                       label=f"{name} (enrolled)")
    ratio = projection.explained_variance_ratio
    ax.set_xlabel(f"principal component 1 ({ratio[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({ratio[1]:.0%} of the variance)")
    ax.set_title("128-D FaceNet encodings projected to 2-D (PCA)")
    ax.legend(fontsize="x-small", loc="best", ncol=2)
    return figure


# ---------------------------------------------------------------------------------------------
# Small pictures
# ---------------------------------------------------------------------------------------------
def image_bytes(image, size=None, format="JPEG", quality=90):
    """Encode an (H, W, 3) uint8 array as JPEG/PNG bytes, optionally shrunk to fit ``size`` px."""
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if size is not None:
        picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **({"quality": quality} if format == "JPEG" else {}))
    return buffer.getvalue()


def faces_overlay(image, boxes, chosen=0, max_side=480):
    """The photo with each face box drawn and numbered from 1 (the chosen one thicker, green).

    Returns an (h, w, 3) uint8 array no larger than ``max_side``.
    """
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(picture)
    for k, box in enumerate(boxes):
        x1, y1, x2, y2 = (v * scale for v in box)
        colour, width = ((0, 200, 0), 4) if k == chosen else ((255, 200, 0), 2)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        draw.text((x1 + 4, y1 + 2), str(k + 1), fill=colour)
    return np.asarray(picture)
