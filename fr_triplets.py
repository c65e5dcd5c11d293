"""Triplet loss and online triplet mining for FaceNet.

FaceNet (Schroff, Kalenichenko and Philbin, 2015) learns an embedding
f(x) in R^128 (L2-normalised, so it lies on the unit hypersphere) in which
the squared Euclidean distance between two face images is small when they
show the same person and large when they show different people.

The triplet loss (paper, section 3.1)
-------------------------------------
A *triplet* is made of an anchor image A, a positive image P (same person
as A) and a negative image N (a different person).  We want

    ||f(A) - f(P)||^2 + alpha < ||f(A) - f(N)||^2

i.e. the negative must be further from the anchor than the positive by at
least the margin ``alpha``.  For one triplet the loss is the hinge

    max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)

which is zero once the triplet satisfies the inequality.  ``triplet_hinge``
below is that single definition; every loss in this module is built on it.

Triplet selection (paper, section 3.2)
--------------------------------------
Most triplets already satisfy the inequality, contribute zero loss and so
teach the network nothing.  Training therefore concentrates on triplets
that violate it, and these are chosen *online*, inside each mini-batch:

* **batch all**: use every valid triplet of the batch and average the loss
  over those that are still active (loss > 0).
* **semi-hard** (the choice of the paper): for every anchor-positive pair
  pick a negative that is further away than the positive but still inside
  the margin,  d(a,p) < d(a,n) < d(a,p) + alpha.

Why not simply always take the *hardest* negative (the closest one)?  The
paper reports that selecting the hardest negatives can, in practice, lead
to bad local minima early in training and in particular can result in a
collapsed model, i.e. f(x) = 0 for every image (then every distance is 0
and the loss is stuck at alpha).  Semi-hard negatives still give a useful
gradient but are "easy enough" for training to stay stable.

All functions use TensorFlow ops only, so they can be used inside a
``tf.GradientTape`` training loop or a ``tf.function``.  The batched
versions are vectorised with (B, B, B) boolean masks indexed [a, p, n].
"""

import tensorflow as tf

__all__ = [
    "squared_l2_distance",
    "triplet_hinge",
    "triplet_loss",
    "pairwise_squared_distances",
    "anchor_positive_mask",
    "anchor_negative_mask",
    "valid_triplet_mask",
    "batch_all_triplet_loss",
    "batch_all_triplet_indices",
    "semihard_triplet_indices",
    "batch_semihard_triplet_loss",
]


# ---------------------------------------------------------------------------
# The per-triplet definition (shared by everything below)
# ---------------------------------------------------------------------------

def squared_l2_distance(x, y):
    """Squared Euclidean distance along the last axis: sum((x - y)^2, -1).

    For (m, 128) inputs this returns one distance per row, shape (m,).
    Forgetting ``axis=-1`` would sum over the whole batch and return a
    single number, which silently changes the loss.
    """
    return tf.reduce_sum(tf.square(x - y), axis=-1)


def triplet_hinge(pos_dist, neg_dist, alpha=0.2):
    """Per-triplet loss max(pos_dist - neg_dist + alpha, 0), elementwise.

    ``pos_dist`` and ``neg_dist`` are squared distances d(a, p) and d(a, n);
    they may be any broadcast-compatible shapes.
    """
    basic = pos_dist - neg_dist + tf.cast(alpha, pos_dist.dtype)
    return tf.maximum(basic, tf.zeros([], dtype=basic.dtype))


def triplet_loss(y_true, y_pred, alpha=0.2):
    """Triplet loss of the course assignment (sum over the m triplets).

    Arguments:
        y_true: unused (present so the signature matches a Keras loss).
        y_pred: (anchor, positive, negative), each of shape (m, 128).
        alpha: the margin.

    Returns:
        A scalar tensor: sum over i of
        max(||a_i - p_i||^2 - ||a_i - n_i||^2 + alpha, 0).
    """
    del y_true  # not used
    anchor, positive, negative = y_pred[0], y_pred[1], y_pred[2]
    pos_dist = squared_l2_distance(anchor, positive)  # (m,)
    neg_dist = squared_l2_distance(anchor, negative)  # (m,)
    return tf.reduce_sum(triplet_hinge(pos_dist, neg_dist, alpha))


# ---------------------------------------------------------------------------
# Batch helpers
# ---------------------------------------------------------------------------

def _as_embeddings(embeddings):
    embeddings = tf.convert_to_tensor(embeddings)
    if not embeddings.dtype.is_floating:
        embeddings = tf.cast(embeddings, tf.float32)
    return embeddings


def _as_labels(labels):
    return tf.reshape(tf.convert_to_tensor(labels), [-1])


def pairwise_squared_distances(embeddings):
    """All squared distances d[i, j] = ||e_i - e_j||^2, shape (B, B).

    Uses ||x - y||^2 = ||x||^2 - 2 x.y + ||y||^2 (one matrix product).
    Rounding can make that slightly negative, so it is clipped at 0, and
    the diagonal is set to exactly 0.  No square root is taken: the
    gradient of sqrt is infinite at 0, which would give NaN gradients as
    soon as two embeddings coincide.
    """
    e = _as_embeddings(embeddings)
    sq_norms = tf.reduce_sum(tf.square(e), axis=-1)  # (B,)
    gram = tf.matmul(e, e, transpose_b=True)  # (B, B)
    d = sq_norms[:, None] - 2.0 * gram + sq_norms[None, :]
    d = tf.maximum(d, tf.zeros([], dtype=d.dtype))
    off_diagonal = 1.0 - tf.eye(tf.shape(d)[0], dtype=d.dtype)
    return d * off_diagonal


def anchor_positive_mask(labels):
    """(B, B) bool: True at [a, p] when a != p and label[a] == label[p]."""
    labels = _as_labels(labels)
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.cast(tf.eye(tf.shape(labels)[0]), tf.bool))
    return tf.logical_and(same, not_self)


def anchor_negative_mask(labels):
    """(B, B) bool: True at [a, n] when label[a] != label[n]."""
    labels = _as_labels(labels)
    return tf.not_equal(labels[:, None], labels[None, :])


def valid_triplet_mask(labels):
    """(B, B, B) bool: True at [a, p, n] for every valid triplet.

    Valid means a != p, label[a] == label[p] and label[n] != label[a]
    (which also implies n != a and n != p).
    """
    ap = anchor_positive_mask(labels)
    an = anchor_negative_mask(labels)
    return tf.logical_and(ap[:, :, None], an[:, None, :])


def _all_triplet_hinges(labels, embeddings, alpha):
    """(B, B, B) hinge values (0 where the triplet is not valid) and mask."""
    d = pairwise_squared_distances(embeddings)
    # hinge[a, p, n] = max(d[a, p] - d[a, n] + alpha, 0)
    hinge = triplet_hinge(d[:, :, None], d[:, None, :], alpha)
    valid = valid_triplet_mask(labels)
    hinge = tf.where(valid, hinge, tf.zeros_like(hinge))
    return hinge, valid


def _safe_ratio(num, den):
    """num / max(den, 1), so that an empty set gives 0 instead of NaN."""
    return num / tf.maximum(den, tf.ones_like(den))


# ---------------------------------------------------------------------------
# Batch all
# ---------------------------------------------------------------------------

def batch_all_triplet_loss(labels, embeddings, alpha=0.2):
    """Batch-all online mining.

    Arguments:
        labels: (B,) integer identity labels.
        embeddings: (B, d) float embeddings.
        alpha: the margin.

    Returns:
        (loss, fraction_active): ``loss`` is the mean per-triplet loss over
        the valid triplets whose loss is > 0 (0 if there are none);
        ``fraction_active`` is (number of active triplets) / (number of
        valid triplets) (0 if there are no valid triplets).
    """
    hinge, valid = _all_triplet_hinges(labels, embeddings, alpha)
    active = tf.logical_and(valid, hinge > 0)
    num_active = tf.reduce_sum(tf.cast(active, hinge.dtype))
    num_valid = tf.reduce_sum(tf.cast(valid, hinge.dtype))
    loss = _safe_ratio(tf.reduce_sum(hinge), num_active)
    fraction_active = _safe_ratio(num_active, num_valid)
    return loss, fraction_active


def batch_all_triplet_indices(labels, embeddings, alpha=0.2, active_only=True):
    """(N, 3) int64 tensor of (a, p, n) triplets used by batch-all mining.

    With ``active_only=True`` (default) these are the triplets that the
    loss of ``batch_all_triplet_loss`` averages over (valid and loss > 0);
    with ``active_only=False`` all valid triplets.  Rows are in
    lexicographic (a, p, n) order.
    """
    hinge, valid = _all_triplet_hinges(labels, embeddings, alpha)
    chosen = tf.logical_and(valid, hinge > 0) if active_only else valid
    return tf.where(chosen)


# ---------------------------------------------------------------------------
# Semi-hard (FaceNet)
# ---------------------------------------------------------------------------

def _semihard_selection(labels, embeddings, alpha):
    """Pick one negative per anchor-positive pair.

    Returns (d, pairs, negatives): the distance matrix, the (N, 2) int64
    (a, p) pairs in lexicographic order and the (N,) int64 chosen negative
    of each pair.

    Rule: among the negatives n of anchor a with
        d(a, p) < d(a, n) < d(a, p) + alpha      (semi-hard)
    take the one with the smallest d(a, n).  If there is none, fall back to
    the hardest negative overall, i.e. the smallest d(a, n) among all
    negatives of a.  In that case either some negative is at least as close
    as the positive (d(a, n) <= d(a, p): a hard negative, which gives a
    gradient) or all negatives are beyond the margin and the loss of the
    pair is 0 anyway.  Ties are broken by taking the smallest index n.

    Anchor-positive pairs whose anchor has no negative at all in the batch
    (every image has the same label) are skipped.
    """
    labels = _as_labels(labels)
    d = pairwise_squared_distances(embeddings)
    dtype = d.dtype
    batch = tf.shape(d)[0]

    an = anchor_negative_mask(labels)  # (B, B) [a, n]
    has_negative = tf.reduce_any(an, axis=1)  # (B,) per anchor
    pair_mask = tf.logical_and(anchor_positive_mask(labels),
                               has_negative[:, None])  # (B, B) [a, p]

    d_ap = d[:, :, None]  # (B, B, 1)
    d_an = d[:, None, :]  # (B, 1, B)
    alpha = tf.cast(alpha, dtype)
    neg3 = tf.broadcast_to(an[:, None, :], [batch, batch, batch])
    semihard = tf.logical_and(
        neg3, tf.logical_and(d_an > d_ap, d_an < d_ap + alpha))  # [a, p, n]
    has_semihard = tf.reduce_any(semihard, axis=2, keepdims=True)
    candidates = tf.where(has_semihard, semihard, neg3)  # (B, B, B)

    # Closest candidate; deterministic tie-break on the smallest index.
    big = tf.fill(tf.shape(candidates), tf.constant(float("inf"), dtype))
    cand_dist = tf.where(candidates, tf.broadcast_to(d_an, tf.shape(big)), big)
    min_dist = tf.reduce_min(cand_dist, axis=2, keepdims=True)
    is_min = tf.logical_and(candidates, tf.equal(cand_dist, min_dist))
    n_range = tf.broadcast_to(tf.range(batch, dtype=tf.int64)[None, None, :],
                              tf.shape(is_min))
    neg_index = tf.reduce_min(
        tf.where(is_min, n_range, tf.cast(batch, tf.int64)), axis=2)  # (B, B)

    pairs = tf.where(pair_mask)  # (N, 2) [a, p]
    negatives = tf.gather_nd(neg_index, pairs)  # (N,)
    return d, pairs, negatives


def semihard_triplet_indices(labels, embeddings, alpha=0.2):
    """(N, 3) int64 tensor: one (a, p, n) row per anchor-positive pair.

    ``n`` is the negative chosen by FaceNet semi-hard mining (see
    ``batch_semihard_triplet_loss`` for the rule and the fallback).
    """
    _, pairs, negatives = _semihard_selection(labels, embeddings, alpha)
    return tf.concat([pairs, negatives[:, None]], axis=1)


def batch_semihard_triplet_loss(labels, embeddings, alpha=0.2):
    """FaceNet semi-hard online mining.

    For every valid anchor-positive pair (a, p) the negative is the
    closest n with d(a, p) < d(a, n) < d(a, p) + alpha.  Fallback when no
    such n exists: the hardest negative overall (smallest d(a, n)).  Pairs
    whose anchor has no negative in the batch are skipped.

    Returns:
        (loss, fraction_active): ``loss`` is the mean over the anchor-
        positive pairs of max(d(a, p) - d(a, n) + alpha, 0) (0 if there are
        no pairs); ``fraction_active`` the fraction of those pairs whose
        loss is > 0.  Use ``semihard_triplet_indices`` to see the triplets.
    """
    d, pairs, negatives = _semihard_selection(labels, embeddings, alpha)
    pos_dist = tf.gather_nd(d, pairs)  # d[a, p]
    neg_dist = tf.gather_nd(d, tf.stack([pairs[:, 0], negatives], axis=1))
    hinge = triplet_hinge(pos_dist, neg_dist, alpha)  # (N,)
    num_pairs = tf.cast(tf.shape(hinge)[0], hinge.dtype)
    num_active = tf.reduce_sum(tf.cast(hinge > 0, hinge.dtype))
    loss = _safe_ratio(tf.reduce_sum(hinge), num_pairs)
    fraction_active = _safe_ratio(num_active, num_pairs)
    return loss, fraction_active
