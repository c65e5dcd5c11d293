"""Tests for fr_triplets: triplet loss and online triplet mining."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fr_triplets as ft  # noqa: E402


# ---------------------------------------------------------------------------
# Plain Python / numpy references
# ---------------------------------------------------------------------------

def np_sqdist(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.sum((x - y) ** 2))


def brute_valid_triplets(labels, emb, alpha):
    """Every valid (a, p, n) with its hinge value, by enumeration."""
    out = {}
    B = len(labels)
    for a in range(B):
        for p in range(B):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(B):
                if labels[n] == labels[a]:
                    continue
                h = np_sqdist(emb[a], emb[p]) - np_sqdist(emb[a], emb[n]) + alpha
                out[(a, p, n)] = max(h, 0.0)
    return out


def brute_batch_all(labels, emb, alpha):
    trip = brute_valid_triplets(labels, emb, alpha)
    active = {t: h for t, h in trip.items() if h > 0}
    loss = sum(active.values()) / len(active) if active else 0.0
    frac = len(active) / len(trip) if trip else 0.0
    return set(active), loss, frac


def brute_semihard(labels, emb, alpha):
    B = len(labels)
    chosen, hinges = set(), []
    for a in range(B):
        negs = [n for n in range(B) if labels[n] != labels[a]]
        if not negs:
            continue
        for p in range(B):
            if p == a or labels[p] != labels[a]:
                continue
            dap = np_sqdist(emb[a], emb[p])
            dan = {n: np_sqdist(emb[a], emb[n]) for n in negs}
            semi = [n for n in negs if dap < dan[n] < dap + alpha]
            pool = semi if semi else negs
            n = min(pool, key=lambda k: (dan[k], k))
            chosen.add((a, p, n))
            hinges.append(max(dap - dan[n] + alpha, 0.0))
    loss = sum(hinges) / len(hinges) if hinges else 0.0
    frac = sum(h > 0 for h in hinges) / len(hinges) if hinges else 0.0
    return chosen, loss, frac


def as_set(idx):
    arr = np.asarray(idx)
    assert arr.ndim == 2 and arr.shape[1] == 3
    return {tuple(int(v) for v in row) for row in arr}


def check_against_brute(labels, emb, alpha):
    labels = np.asarray(labels, dtype=np.int32)
    emb = np.asarray(emb, dtype=np.float32)

    ref_set, ref_loss, ref_frac = brute_batch_all(labels, emb, alpha)
    got = ft.batch_all_triplet_indices(labels, emb, alpha)
    assert as_set(got) == ref_set
    loss, frac = ft.batch_all_triplet_loss(labels, emb, alpha)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-5, abs=1e-5)
    assert float(frac) == pytest.approx(ref_frac, abs=1e-6)
    all_valid = ft.batch_all_triplet_indices(labels, emb, alpha, active_only=False)
    assert as_set(all_valid) == set(brute_valid_triplets(labels, emb, alpha))

    ref_set, ref_loss, ref_frac = brute_semihard(labels, emb, alpha)
    got = ft.semihard_triplet_indices(labels, emb, alpha)
    assert np.asarray(got).shape[0] == len(ref_set)
    assert as_set(got) == ref_set
    loss, frac = ft.batch_semihard_triplet_loss(labels, emb, alpha)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-5, abs=1e-5)
    assert float(frac) == pytest.approx(ref_frac, abs=1e-6)


# ---------------------------------------------------------------------------
# Exercise 1: triplet_loss
# ---------------------------------------------------------------------------

def _seeded_y_pred(normal):
    tf.random.set_seed(1)
    return (normal([3, 128], mean=6, stddev=0.1, seed=1),
            normal([3, 128], mean=1, stddev=1, seed=1),
            normal([3, 128], mean=3, stddev=4, seed=1))


@pytest.mark.parametrize("normal", [tf.keras.backend.random_normal, tf.random.normal],
                         ids=["keras.backend.random_normal", "tf.random.normal"])
def test_seeded_assignment_value(normal):
    loss = ft.triplet_loss(None, _seeded_y_pred(normal))
    assert loss.shape == ()
    assert round(float(loss), 4) == 527.2598


def _buggy_triplet_loss_no_axis(y_true, y_pred, alpha=0.2):
    """The classic mistake: reduce_sum without axis=-1."""
    a, p, n = y_pred
    pos = tf.reduce_sum(tf.square(a - p))
    neg = tf.reduce_sum(tf.square(a - n))
    return tf.reduce_sum(tf.maximum(pos - neg + alpha, 0.0))


def test_missing_axis_bug_is_distinguishable():
    y_pred = _seeded_y_pred(tf.random.normal)
    good = float(ft.triplet_loss(None, y_pred))
    bad = float(_buggy_triplet_loss_no_axis(None, y_pred))
    assert abs(good - bad) > 1.0
    # a small hand case: per-row hinges 0.2 + 5.2, the bug gives 10 - 5 + 0.2
    a = tf.constant([[0.0, 0.0], [0.0, 0.0]])
    p = tf.constant([[1.0, 0.0], [0.0, 3.0]])
    n = tf.constant([[1.0, 0.0], [2.0, 0.0]])
    assert float(ft.triplet_loss(None, (a, p, n))) == pytest.approx(0.2 + 5.2, abs=1e-5)
    assert float(_buggy_triplet_loss_no_axis(None, (a, p, n))) == pytest.approx(
        10.0 - 5.0 + 0.2, abs=1e-5)
    # a case where the bug gives 0 although one triplet violates the margin
    p2 = tf.constant([[1.0, 0.0], [0.0, 0.0]])
    n2 = tf.constant([[0.0, 0.0], [3.0, 0.0]])
    assert float(ft.triplet_loss(None, (a, p2, n2))) == pytest.approx(1.2, abs=1e-6)
    assert float(_buggy_triplet_loss_no_axis(None, (a, p2, n2))) == 0.0


def test_anchor_equals_positive_and_far_negative_gives_zero():
    a = tf.constant([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
    n = a + 10.0
    assert float(ft.triplet_loss(None, (a, a, n))) == 0.0


def test_hand_computed_basic():
    # pos = 1, neg = 0.5 -> basic = 1 - 0.5 + 0.2 = 0.7
    # pos = 1, neg = 2.25 -> basic = -1.05 -> 0
    a = tf.constant([[0.0, 0.0], [0.0, 0.0]])
    p = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    n = tf.constant([[0.5, 0.5], [0.0, 1.5]])
    assert float(ft.triplet_loss(None, (a, p, n))) == pytest.approx(0.7, abs=1e-6)
    assert float(ft.triplet_loss(None, (a, p, n), alpha=2.0)) == pytest.approx(
        2.5 + 0.75, abs=1e-6)
    # y_pred may also be a single stacked (3, m, d) tensor
    stacked = tf.stack([a, p, n])
    assert float(ft.triplet_loss(None, stacked)) == pytest.approx(0.7, abs=1e-6)


def test_triplet_hinge_elementwise():
    h = ft.triplet_hinge(tf.constant([1.0, 1.0, 0.0]), tf.constant([0.5, 2.0, 0.2]), 0.2)
    np.testing.assert_allclose(h.numpy(), [0.7, 0.0, 0.0], atol=1e-6)


# ---------------------------------------------------------------------------
# Pairwise distances and masks
# ---------------------------------------------------------------------------

def test_pairwise_squared_distances_matches_numpy():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(7, 5)).astype(np.float32)
    e[3] = e[1]  # coincident pair
    d = ft.pairwise_squared_distances(e).numpy()
    ref = np.array([[np_sqdist(x, y) for y in e] for x in e])
    np.testing.assert_allclose(d, ref, atol=1e-5, rtol=1e-5)
    assert np.all(d >= 0)
    assert np.all(np.diag(d) == 0)
    assert d[1, 3] == pytest.approx(0.0, abs=1e-5)


def test_valid_triplet_mask_small():
    m = ft.valid_triplet_mask([0, 0, 1]).numpy()
    assert {tuple(int(v) for v in t) for t in np.argwhere(m)} == {(0, 1, 2), (1, 0, 2)}


# ---------------------------------------------------------------------------
# Hand-made batch with known answers (1-D embeddings, alpha = 0.2)
# ---------------------------------------------------------------------------
# x0 = 0, x1 = 0.5 (label 0); x2 = 0.6, x3 = -0.65, x4 = 0.3 (labels 1, 2, 3)
# d(0,1) = 0.25; d(0,2) = 0.36, d(0,3) = 0.4225, d(0,4) = 0.09
# d(1,2) = 0.01, d(1,3) = 1.3225, d(1,4) = 0.04
HAND_LABELS = [0, 0, 1, 2, 3]
HAND_EMB = [[0.0], [0.5], [0.6], [-0.65], [0.3]]


def test_hand_batch_semihard():
    # (0,1): band (0.25, 0.45) holds n=2 (0.36) and n=3 (0.4225) -> closest n=2
    #        loss 0.25 - 0.36 + 0.2 = 0.09
    # (1,0): band empty -> fallback to hardest negative n=2 (0.01)
    #        loss 0.25 - 0.01 + 0.2 = 0.44
    idx = ft.semihard_triplet_indices(HAND_LABELS, HAND_EMB)
    assert as_set(idx) == {(0, 1, 2), (1, 0, 2)}
    loss, frac = ft.batch_semihard_triplet_loss(HAND_LABELS, HAND_EMB)
    assert float(loss) == pytest.approx((0.09 + 0.44) / 2, abs=1e-5)
    assert float(frac) == pytest.approx(1.0)


def test_hand_batch_all():
    # (0,1,n): 0.09, 0.0275, 0.36 ; (1,0,n): 0.44, 0 (-0.8725), 0.41
    idx = ft.batch_all_triplet_indices(HAND_LABELS, HAND_EMB)
    assert as_set(idx) == {(0, 1, 2), (0, 1, 3), (0, 1, 4), (1, 0, 2), (1, 0, 4)}
    loss, frac = ft.batch_all_triplet_loss(HAND_LABELS, HAND_EMB)
    assert float(loss) == pytest.approx((0.09 + 0.0275 + 0.36 + 0.44 + 0.41) / 5, abs=1e-5)
    assert float(frac) == pytest.approx(5 / 6, abs=1e-6)


def test_semihard_tie_break_smallest_index():
    # two identical semi-hard negatives (indices 2 and 3) -> index 2
    labels = [0, 0, 1, 1]
    emb = [[0.0], [0.5], [0.625], [0.625]]
    assert (0, 1, 2) in as_set(ft.semihard_triplet_indices(labels, emb))


def test_semihard_loss_equals_triplet_loss_on_chosen_triplets():
    """Both paths share triplet_hinge: gathering the chosen triplets and
    feeding them to the assignment loss gives N * (semi-hard mean loss)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=10)
    emb = rng.normal(size=(10, 6)).astype(np.float32) * 0.3
    idx = ft.semihard_triplet_indices(labels, emb).numpy()
    y_pred = tuple(tf.gather(emb, idx[:, k]) for k in range(3))
    total = float(ft.triplet_loss(None, y_pred))
    loss, _ = ft.batch_semihard_triplet_loss(labels, emb)
    assert total == pytest.approx(float(loss) * len(idx), rel=1e-5, abs=1e-5)


def test_no_valid_triplets():
    emb = np.eye(4, dtype=np.float32)
    for labels in ([1, 1, 1, 1], [0, 1, 2, 3]):
        assert ft.batch_all_triplet_indices(labels, emb).shape == (0, 3)
        assert ft.semihard_triplet_indices(labels, emb).shape == (0, 3)
        for fn in (ft.batch_all_triplet_loss, ft.batch_semihard_triplet_loss):
            loss, frac = fn(labels, emb)
            assert float(loss) == 0.0 and float(frac) == 0.0


# ---------------------------------------------------------------------------
# Brute-force comparisons
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_against_brute_force_random(seed):
    rng = np.random.default_rng(seed)
    B = int(rng.integers(4, 13))
    n_labels = int(rng.integers(3, 5))
    labels = rng.integers(0, n_labels, size=B)
    emb = rng.normal(size=(B, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)  # FaceNet: unit norm
    alpha = [0.2, 0.5, 1.0][seed % 3]
    check_against_brute(labels, emb, alpha)


@st.composite
def grid_batches(draw):
    """Embeddings on a 1/4 grid: every distance is exact in float32, so
    ties and margin boundaries are hit exactly and compared exactly."""
    B = draw(st.integers(2, 10))
    dim = draw(st.integers(1, 3))
    labels = draw(st.lists(st.integers(0, 3), min_size=B, max_size=B))
    ints = draw(st.lists(st.lists(st.integers(-6, 6), min_size=dim, max_size=dim),
                         min_size=B, max_size=B))
    alpha = draw(st.sampled_from([0.2, 0.5, 1.0]))
    return labels, np.asarray(ints, dtype=np.float32) * 0.25, alpha


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(grid_batches())
def test_against_brute_force_hypothesis(batch):
    labels, emb, alpha = batch
    check_against_brute(labels, emb, alpha)


# ---------------------------------------------------------------------------
# Gradients and graph mode
# ---------------------------------------------------------------------------

def test_gradients_finite_with_coincident_embeddings():
    labels = tf.constant([0, 0, 1, 1, 2])
    base = np.array([[0.1, 0.2], [0.1, 0.2], [0.1, 0.2], [0.5, -0.3], [0.5, -0.3]],
                    dtype=np.float32)
    emb = tf.Variable(base)
    for fn in (ft.batch_all_triplet_loss, ft.batch_semihard_triplet_loss):
        with tf.GradientTape() as tape:
            loss, _ = fn(labels, emb)
        g = tape.gradient(loss, emb)
        assert g is not None and np.all(np.isfinite(g.numpy()))
    with tf.GradientTape() as tape:
        d = ft.pairwise_squared_distances(emb)
        total = tf.reduce_sum(d)
    assert np.all(np.isfinite(tape.gradient(total, emb).numpy()))
    with tf.GradientTape() as tape:
        loss = ft.triplet_loss(None, (emb[:2], emb[:2], emb[2:4]))
    assert np.all(np.isfinite(tape.gradient(loss, emb).numpy()))


def test_works_inside_tf_function():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=9).astype(np.int32)
    emb = rng.normal(size=(9, 4)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32),
                                  tf.TensorSpec([None, 4], tf.float32)])
    def both(lab, e):
        return ft.batch_all_triplet_loss(lab, e) + ft.batch_semihard_triplet_loss(lab, e)

    graph = [float(v) for v in both(labels, emb)]
    eager = [float(v) for v in ft.batch_all_triplet_loss(labels, emb)
             + ft.batch_semihard_triplet_loss(labels, emb)]
    np.testing.assert_allclose(graph, eager, rtol=1e-6, atol=1e-6)
