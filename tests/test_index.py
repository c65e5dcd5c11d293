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


# -- the fast path: 4-bit codes scanned by faiss, candidates re-ranked exactly --------------------

faiss = pytest.importorskip("faiss")


def distances64(matrix, queries):
    """All distances in float64 through |m|^2 - 2 m.q + |q|^2 (memory q*n, for large databases)."""
    m, q = matrix.astype(np.float64), np.atleast_2d(queries).astype(np.float64)
    squared = (m ** 2).sum(1)[None, :] - 2 * q @ m.T + (q ** 2).sum(1)[:, None]
    return np.sqrt(np.maximum(squared, 0))


def test_fast_path_equals_exact_search_on_near_queries_strangers_and_duplicates():
    rng = np.random.default_rng(10)
    matrix = unit_rows(rng, 30_000)
    matrix[29_999] = matrix[7]  # an exact duplicate, in another 32-row block of codes
    matrix[100:110] = matrix[50] + 1e-4 * rng.standard_normal((10, 128)).astype(np.float32)  # near-ties
    near, true_rows = near_queries(rng, matrix, 300, 0.9)
    queries = np.concatenate([near, unit_rows(rng, 300), matrix[[7, 50, 123]],
                              matrix[[50]] + 0.01 * unit_rows(rng, 1)])
    fast = FaceIndex(range(len(matrix)), matrix, method="fast")
    exact = FaceIndex(range(len(matrix)), matrix, method="exact")
    assert fast.search_method == "fast" and exact.search_method == "exact"
    fast_rows, fast_distances = fast.search(queries, k=1)
    exact_rows, exact_distances = exact.search(queries, k=1)
    np.testing.assert_array_equal(fast_rows, exact_rows)
    np.testing.assert_allclose(fast_distances, exact_distances, rtol=0, atol=1e-6)
    reference = np.argmin(distances64(matrix, queries), axis=1)
    np.testing.assert_array_equal(fast_rows[:, 0], reference)
    assert fast_rows[600, 0] == 7  # the duplicate pair: lower row first
    # one query at a time gives the same answers as the batch
    for q in (0, 299, 300, 599, 600, 601, 602, 603):
        assert fast.search(queries[q])[0][0, 0] == fast_rows[q, 0]
    # the top-k: same rows in the same order, distances ascending
    fast_k, fast_kd = fast.search(queries[::20], k=8)
    exact_k, exact_kd = exact.search(queries[::20], k=8)
    np.testing.assert_array_equal(fast_k, exact_k)
    np.testing.assert_allclose(fast_kd, exact_kd, rtol=0, atol=1e-6)
    assert np.all(np.diff(fast_kd, axis=1) >= 0)
    duplicate = fast.search(matrix[7], k=3)[0][0]
    assert duplicate[:2].tolist() == [7, 29_999]


def test_fast_path_check_falls_back_when_the_candidates_may_miss_the_nearest():
    """A cluster of near-identical encodings fills a short candidate list with rows whose order the
    codes cannot tell apart; the check must notice and search again, so the answer stays exact."""
    rng = np.random.default_rng(11)
    matrix = unit_rows(rng, 25_000)
    centre = matrix[0].copy()
    cluster = centre + 0.02 * unit_rows(rng, 400)
    matrix[1000:1400] = cluster / np.linalg.norm(cluster, axis=1, keepdims=True)
    queries = near_queries(rng, matrix[1000:1400], 20, 0.05)[0]
    fast = FaceIndex(range(len(matrix)), matrix, method="fast", candidates=16)
    rows, distances = fast.search(queries, k=3)
    reference = distances64(matrix, queries)
    np.testing.assert_array_equal(rows, np.argsort(reference, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(distances, np.sort(reference, axis=1)[:, :3], atol=1e-5)
    assert fast.fallbacks > 0


def test_fast_path_ends_with_the_exact_scan_when_more_candidates_do_not_settle_it():
    rng = np.random.default_rng(15)
    matrix = unit_rows(rng, 20_000)
    matrix[:3000] = matrix[0] + 0.01 * unit_rows(rng, 3000)  # 3,000 near-copies of one person
    queries = matrix[:30] + 0.005 * unit_rows(rng, 30)
    fast = FaceIndex(range(len(matrix)), matrix, method="fast", candidates=4)  # then 64, then exact
    rows, distances = fast.search(queries, k=2)
    exact_rows, exact_distances = FaceIndex(range(len(matrix)), matrix, method="exact").search(queries, k=2)
    np.testing.assert_array_equal(rows, exact_rows)
    np.testing.assert_array_equal(distances, exact_distances)
    assert fast.fallbacks == 2 * len(queries)  # every query doubted twice, then scanned exactly


def test_fast_path_split_over_threads_numbers_rows_across_the_parts(monkeypatch):
    import fr_index

    monkeypatch.setattr(fr_index, "SHARD_MIN_ROWS", 4000)
    rng = np.random.default_rng(16)
    matrix = unit_rows(rng, 21_000)
    matrix[20_999] = matrix[3]  # a duplicate in the first and the last part
    index = FaceIndex(range(20_000), matrix[:20_000], method="fast", threads=3)
    assert [part.ntotal for part in index._parts] == [6667, 6666, 6667]
    index.add(range(20_000, 21_000), matrix[20_000:])  # into the last part
    assert [part.ntotal for part in index._parts] == [6667, 6666, 7667] and index._codes.ntotal == 21_000
    assert index.nbytes == 21_000 * (128 * 4 + 4) + (6688 + 6688 + 7680) * 64 + 128 * 16 * 4
    queries = np.concatenate([near_queries(rng, matrix, 200, 0.9)[0], unit_rows(rng, 100), matrix[[3, 6667, 20_500]]])
    rows, distances = index.search(queries, k=4)
    exact_rows, exact_distances = FaceIndex(range(21_000), matrix, method="exact").search(queries, k=4)
    np.testing.assert_array_equal(rows, exact_rows)
    np.testing.assert_allclose(distances, exact_distances, rtol=0, atol=1e-6)
    assert rows[300, :2].tolist() == [3, 20_999] and rows[301, 0] == 6667 and rows[302, 0] == 20_500
    assert FaceIndex(range(20_000), matrix[:20_000], method="fast", threads=1)._codes.ntotal == 20_000
    with pytest.raises(ValueError, match="threads must be"):
        FaceIndex(["a"], matrix[:1], threads=0)


def test_auto_switches_to_the_fast_path_from_fast_min_size_and_add_keeps_it_exact(monkeypatch):
    import fr_index

    monkeypatch.setattr(fr_index, "FAST_MIN_SIZE", 2000)
    rng = np.random.default_rng(12)
    matrix = unit_rows(rng, 3000)
    small = FaceIndex([f"p{i}" for i in range(1500)], matrix[:1500])
    assert small.search_method == "exact" and small._codes is None
    small.add([f"p{i}" for i in range(1500, 2500)], matrix[1500:2500])  # grows past the threshold
    assert small.search_method == "fast" and len(small) == 2500
    small.add([f"p{i}" for i in range(2500, 3000)], matrix[2500:])  # codes added by faiss
    assert small._codes.ntotal == 3000
    queries = np.concatenate([near_queries(rng, matrix, 100, 0.8)[0], unit_rows(rng, 100)])
    rows, _ = small.search(queries)
    np.testing.assert_array_equal(rows[:, 0], np.argmin(distances64(matrix, queries), axis=1))
    assert small.nearest(matrix[2999]) == ("p2999", pytest.approx(0.0, abs=1e-6))
    forced = FaceIndex(range(3000), matrix, method="exact")
    assert forced.search_method == "exact" and forced._codes is None
    assert forced.nbytes == 3000 * (128 * 4 + 4)
    fast = FaceIndex(range(3000), matrix, method="fast")
    assert fast.nbytes == 3000 * (128 * 4 + 4) + 3008 * 64 + 128 * 16 * 4  # codes in blocks of 32 rows


def test_fast_path_names_repeat_tiny_and_empty_indexes():
    rng = np.random.default_rng(13)
    matrix = unit_rows(rng, 6)
    index = FaceIndex(["ann", "bob", "ann", "cy", "bob", "ann"], matrix, method="fast")
    assert index.nearest(matrix[4]) == ("bob", pytest.approx(0.0, abs=1e-6))
    assert index.nearest(matrix[2])[0] == "ann"
    rows, distances = index.search(matrix[3], k=10)  # k > n: every row, nearest first
    np.testing.assert_array_equal(rows[0], np.argsort(distances64(matrix, matrix[3:4])[0], kind="stable"))
    empty = FaceIndex([], np.zeros((0, 128), np.float32), method="fast")
    with pytest.raises(ValueError, match="empty"):
        empty.nearest(matrix[0])
    empty.add(["dee"], matrix[:1])
    assert empty.nearest(matrix[0])[0] == "dee"
    with pytest.raises(ValueError, match="method must be"):
        FaceIndex(["a"], matrix[:1], method="hnsw")


def test_without_faiss_fast_fails_clearly_and_auto_stays_exact(monkeypatch):
    import fr_index

    monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # import faiss now raises
    monkeypatch.setattr(fr_index, "FAST_MIN_SIZE", 100)
    rng = np.random.default_rng(14)
    matrix = unit_rows(rng, 200)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        FaceIndex(range(200), matrix, method="fast")
    with pytest.warns(UserWarning, match="exactly"):
        index = FaceIndex(range(200), matrix)
    assert index.search_method == "exact"
    assert index.nearest(matrix[17])[0] == 17
