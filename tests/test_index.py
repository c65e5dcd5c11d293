"""FaceIndex: exact nearest-identity search, single and batched, against plain brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fr_index import FaceIndex


def unit_rows(rng, n, d=128):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(matrix, queries):
    """The reference: every distance |m - q|, computed the plain way (float64)."""
    diff = matrix[None, :, :].astype(np.float64) - queries[:, None, :].astype(np.float64)
    return np.sqrt((diff ** 2).sum(axis=2))


def near_queries(rng, matrix, count, distance):
    """Queries at a given L2 distance from random rows (a new photo of an enrolled person)."""
    rows = rng.integers(0, len(matrix), count)
    noise = rng.standard_normal((count, matrix.shape[1])).astype(np.float32)
    noise -= (noise * matrix[rows]).sum(1, keepdims=True) * matrix[rows]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    angle = 2 * np.arcsin(distance / 2)
    return (np.cos(angle) * matrix[rows] + np.sin(angle) * noise).astype(np.float32), rows


def test_single_queries_match_brute_force():
    rng = np.random.default_rng(1)
    matrix = unit_rows(rng, 5000)
    queries = np.concatenate([near_queries(rng, matrix, 100, 0.9)[0], unit_rows(rng, 100)])
    index = FaceIndex([f"id{i}" for i in range(len(matrix))], matrix)
    reference = brute_force(matrix, queries)
    for query, ref in zip(queries, reference):
        name, distance = index.nearest(query)
        assert name == f"id{int(np.argmin(ref))}"
        assert distance == pytest.approx(ref.min(), abs=1e-5)


def test_batched_search_equals_one_query_at_a_time_and_brute_force():
    rng = np.random.default_rng(2)
    matrix = unit_rows(rng, 3000)
    queries = unit_rows(rng, 300)
    index = FaceIndex(range(len(matrix)), matrix)
    rows, distances = index.search(queries, k=5)
    assert rows.shape == distances.shape == (300, 5)
    reference = brute_force(matrix, queries)
    np.testing.assert_array_equal(rows, np.argsort(reference, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(distances, np.sort(reference, axis=1)[:, :5], atol=1e-5)
    assert np.all(np.diff(distances, axis=1) >= 0)
    for q in (0, 17, 299):
        single_rows, single_distances = index.search(queries[q], k=5)
        np.testing.assert_array_equal(single_rows[0], rows[q])


def test_many_blocks_give_the_same_answer(monkeypatch):
    """Databases larger than one block are searched block by block; the merge must be exact."""
    import fr_index

    rng = np.random.default_rng(3)
    matrix = unit_rows(rng, 10_000)
    queries, true_rows = near_queries(rng, matrix, 64, 0.8)
    matrix[9999] = matrix[5]  # the same encoding in the first and the last block
    queries[0] = matrix[5]
    whole = FaceIndex(range(len(matrix)), matrix).search(queries, k=3)
    whole_top1 = FaceIndex(range(len(matrix)), matrix).search(queries, k=1)
    monkeypatch.setattr(fr_index, "SCORES_PER_BLOCK", 1024 * 64)  # 1,024 rows a block: 10 blocks
    blocked = FaceIndex(range(len(matrix)), matrix).search(queries, k=3)
    blocked_top1 = FaceIndex(range(len(matrix)), matrix).search(queries, k=1)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole_top1[0], blocked_top1[0])
    np.testing.assert_array_equal(whole_top1[0][:, 0], whole[0][:, 0])
    assert whole[0][0, :2].tolist() == [5, 9999]  # an exact tie: lower row first
    # Queries 0.8 away from a row are far nearer to it than to the rest (~1.41 away).
    np.testing.assert_array_equal(whole_top1[0][1:, 0], true_rows[1:])


def test_names_may_repeat_and_the_nearest_encodings_name_is_returned():
    rng = np.random.default_rng(4)
    matrix = unit_rows(rng, 6)
    index = FaceIndex(["ann", "bob", "ann", "cy", "bob", "ann"], matrix)
    assert index.nearest(matrix[4]) == ("bob", pytest.approx(0.0, abs=1e-6))
    assert index.nearest(matrix[2])[0] == "ann"


def test_equal_distances_resolve_to_the_lower_row():
    e = np.zeros((3, 128), np.float32)
    e[:, 0] = 1.0  # three identical encodings
    rows, distances = FaceIndex(["a", "b", "c"], e).search(e[0], k=3)
    assert rows[0].tolist() == [0, 1, 2]
    assert FaceIndex(["a", "b", "c"], e).nearest(e[0])[0] == "a"


def test_from_database_accepts_the_fr_utils_dict():
    rng = np.random.default_rng(5)
    matrix = unit_rows(rng, 4)
    database = {name: matrix[i:i + 1] for i, name in enumerate(["w", "x", "y", "z"])}
    index = FaceIndex.from_database(database)
    assert len(index) == 4 and index.names == ["w", "x", "y", "z"]
    assert index.nearest(matrix[2])[0] == "y"
    assert index.nbytes == 4 * 128 * 4 + 4 * 4  # float32 matrix + squared norms


def test_k_larger_than_the_database_returns_every_row():
    rng = np.random.default_rng(6)
    matrix = unit_rows(rng, 3)
    rows, _ = FaceIndex("abc", matrix).search(matrix[0], k=10)
    assert sorted(rows[0].tolist()) == [0, 1, 2] and rows[0, 0] == 0


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 64)), "expected shape"),
    (np.full((2, 128), np.nan), "NaN"),
    (np.array([["a"] * 128] * 2), "expected numbers"),
])
def test_bad_encodings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        FaceIndex(["p", "q"], bad)


def test_mismatched_names_empty_index_and_bad_k_are_refused():
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match="3 names for 2 encodings"):
        FaceIndex(["a", "b", "c"], unit_rows(rng, 2))
    empty = FaceIndex([], np.zeros((0, 128), np.float32))
    with pytest.raises(ValueError, match="empty"):
        empty.nearest(unit_rows(rng, 1)[0])
    with pytest.raises(ValueError, match="k must be"):
        FaceIndex(["a"], unit_rows(rng, 1)).search(unit_rows(rng, 1), k=0)
    with pytest.raises(TypeError, match="dict"):
        FaceIndex.from_database([("a", unit_rows(rng, 1))])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), q=st.integers(1, 20), k=st.sampled_from([1, 1, 2, 6]), seed=st.integers(0, 2**32 - 1))
def test_property_top_k_is_exact(n, q, k, seed):
    rng = np.random.default_rng(seed)
    # Not unit length on purpose: the index must be exact for any finite vectors.
    matrix = rng.standard_normal((n, 128)).astype(np.float32) * rng.uniform(0.1, 3.0, (n, 1)).astype(np.float32)
    queries = rng.standard_normal((q, 128)).astype(np.float32)
    rows, distances = FaceIndex(range(n), matrix).search(queries, k=k)
    reference = brute_force(matrix, queries)
    expected = np.sort(reference, axis=1)[:, :min(k, n)]
    np.testing.assert_allclose(distances, expected, rtol=1e-5, atol=1e-5)
    # The rows found have those distances (ties may pick either of two equal rows).
    np.testing.assert_allclose(np.take_along_axis(reference, rows, axis=1), expected, rtol=1e-5, atol=1e-5)
