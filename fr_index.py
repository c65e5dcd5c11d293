"""Nearest-identity search for ``who_is_it``, from five people to a million.

``fr_utils.who_is_it`` compares a query encoding with every encoding of the database. With a dict,
every query walks the dict again: a Python loop (the assignment's version), or a validation and
stacking of every entry before one vectorised step (``fr_utils.nearest_identity``). :class:`FaceIndex`
does that work once: the encodings become one float32 matrix (512 bytes a person) with their
squared norms, searched one of two ways.

* **Exact scan** (``method="exact"``; ``"auto"`` below ``FAST_MIN_SIZE`` = 5,000 encodings): one
  matrix-vector product per query, ``argmin |m|^2 - 2 m.q``; the rows within rounding of the best
  are re-ranked with the plain distance ``|m - q|``. numpy only. One query reads the whole matrix:
  about 0.1 ms at 1e3, 0.3 ms at 1e4, 2 ms at 1e5 and 30 ms at 1e6 on the benchmark machine (2
  cores). numpy's OpenBLAS splits the product over both cores; when the other core is busy, a
  product of 5,000 rows or more often waits about 8 ms for its second thread (the 8 ms per query
  at 1e4-1e5 of earlier runs). Many queries in one call share one pass over the matrix.

* **Compressed scan + exact re-rank** (``method="fast"``; ``"auto"`` from 5,000 encodings; needs
  ``faiss-cpu``, imported only then). Each encoding also gets a 64-byte code: each of its 128
  numbers quantised to 4 bits on 16 levels fitted to its dimension (one-dimensional Lloyd-Max, on
  up to 65,536 rows), i.e. a product quantiser of 128 one-number sub-quantisers, scanned by faiss's
  fast-scan kernel (``IndexPQFastScan``, SIMD table look-ups on packed 4-bit codes). From
  2 x ``SHARD_MIN_ROWS`` = 100,000 encodings the codes are split into one part per core
  (``threads``) and each query scans the parts in parallel (``faiss.IndexShards``). The
  ``candidates`` (256) rows with the smallest code distance are re-ranked with the exact distance
  ``|m - q|`` from the float32 matrix: the distances returned are exact, and so is the top-1
  whenever the true nearest is among the candidates. A per-query check guards that: the error of
  the code distances is estimated on the candidates (whose code and exact distances are both
  known), and unless the last candidate's code distance exceeds the k-th best exact distance by 4
  standard deviations of that error, the query is searched again with 16 times more candidates,
  and if still in doubt, exactly. It never fired on the random benchmark data; on a cluster of
  near-identical encodings (``tests/test_index.py``) it does, and keeps the answers exact. It is a
  statistical check, not a proof.

Measured (``benchmarks/bench_search.py``, two runs; random unit 128-D encodings; one query at a
time; 3/4 "a new photo of an enrolled person", 0.6-1.1 away from an entry, 1/4 strangers): the fast
path takes about 0.2 ms at 1e4, 0.7 ms at 1e5 and 5 ms at 1e6 (on one core 0.9-1.0 and 8.7-9.9
ms), against 0.3, 1.8-2.0 and 30-33 ms for the exact scan. Its top-1 equalled exact float64 search
on all 4,096 queries of every size from 1e2 to 1e6 (3,072 near, 1,024 strangers). In one-off
probes at 1e6 (4,000-8,000 queries each) the true nearest ranked at most 10th (near queries) and
49th (strangers) in the code order, against 256 candidates re-ranked. Memory: 516 bytes per
encoding exact, 580 with the codes. Building the codes: about 0.7 s at 1e5 and 3 s at 1e6.

Not kept (``benchmarks/findings.md``): an HNSW graph (usearch) found the exact top-1 for only
34-84% of queries, a 128-bit sign-code prefilter 92-98%; faiss's 8-bit and bfloat16 scalar
quantisers were exact with a few candidates but took 25-37 ms a query at 1e6 (decoding-bound);
32-byte product-quantiser codes scanned twice as fast but the strangers needed 4,096 candidates
(true nearest down to rank 2,631 of the code order).

Names may repeat (several photos of one person); :meth:`FaceIndex.nearest` returns the name of
the nearest encoding.
"""

import math
import os
import warnings

import numpy as np

__all__ = ["FaceIndex", "FAST_MIN_SIZE"]

EMBEDDING_SIZE = 128
# Exact search works through the matrix in blocks of rows so that the (rows, queries) score
# matrix never holds more than this many numbers (16 MiB): one query scores up to 4 million rows
# in one product, 256 queries 16,384 rows a block.
SCORES_PER_BLOCK = 1 << 22
# method="auto" uses the compressed scan from this many encodings. Measured crossover for one query,
# with numpy's BLAS on one thread: 2,000 rows exact 0.10 ms, fast 0.14; 5,000 rows 0.23 and 0.16;
# 10,000 rows 0.42 and 0.19 (and the fast path does not use BLAS, so it never waits for a thread).
FAST_MIN_SIZE = 5_000
CODE_LEVELS = 16  # 4 bits a number
CODEBOOK_SAMPLE = 65_536  # rows used to fit the levels
CANDIDATES = 256  # re-ranked exactly per query
CHECK_SIGMAS = 4.0  # the candidate list must end this many error deviations past the k-th best
SHARD_MIN_ROWS = 50_000  # the fast path gives each thread a part of the codes, of at least this many rows
RERANK_ROWS = 1 << 14  # candidate rows gathered at a time for the re-rank (8 MiB of float32)


def _as_encodings(encodings, name="encodings"):
    array = np.asarray(encodings)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != EMBEDDING_SIZE:
        raise ValueError(f"{name}: expected shape (n, {EMBEDDING_SIZE}), got {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _import_faiss():
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "FaceIndex(method='fast') needs faiss: pip install faiss-cpu==1.15.1 "
            "(or use method='exact', numpy only)") from error
    return faiss


def fit_levels(matrix, levels=CODE_LEVELS, sample=CODEBOOK_SAMPLE, iterations=25):
    """Per dimension, the ``levels`` values that minimise the squared quantisation error of that
    dimension (one-dimensional k-means, Lloyd-Max), fitted on up to ``sample`` rows.

    Returns (d, levels) float32, sorted along each row."""
    if len(matrix) > sample:
        matrix = matrix[np.random.default_rng(0).choice(len(matrix), sample, replace=False)]
    values = np.sort(matrix.astype(np.float64), axis=0)  # (s, d), each column sorted
    s, d = values.shape
    sums = np.concatenate([np.zeros((1, d)), np.cumsum(values, axis=0)])  # sums[i, j]: first i values
    # Start from equal-count bins; a Lloyd step is: boundaries at the midpoints, levels at the means.
    bounds = np.linspace(0, s, levels + 1).round().astype(np.int64)[:, None].repeat(d, axis=1)
    columns = np.arange(d)
    centres = values[np.minimum(bounds[:-1], s - 1), columns]  # (stands in for empty bins)
    for step in range(iterations + 1):
        counts = np.diff(bounds, axis=0)
        means = (sums[bounds[1:], columns] - sums[bounds[:-1], columns]) / np.maximum(counts, 1)
        centres = np.sort(np.where(counts > 0, means, centres), axis=0)
        if step == iterations:
            break
        midpoints = (centres[1:] + centres[:-1]) / 2
        inner = np.stack([np.searchsorted(values[:, j], midpoints[:, j]) for j in range(d)], axis=1)
        bounds = np.concatenate([np.zeros((1, d), np.int64), inner, np.full((1, d), s)])
    return np.ascontiguousarray(centres.T, dtype=np.float32)


def encode_4bit(matrix, levels, block=65_536):
    """Each number's nearest level (4 bits), two a byte, low half first (faiss's PQ code layout)."""
    midpoints = (levels[:, 1:] + levels[:, :-1]) / 2  # (d, 15)
    codes = np.empty((len(matrix), matrix.shape[1] // 2), np.uint8)
    for start in range(0, len(matrix), block):
        part = matrix[start:start + block]
        level = np.zeros(part.shape, np.uint8)
        for t in range(midpoints.shape[1]):
            level += part > midpoints[:, t]
        codes[start:start + block] = level[:, 0::2] | (level[:, 1::2] << 4)
    return codes


def _fast_scan_index(faiss, levels, codes):
    """A faiss.IndexPQFastScan over 4-bit codes made by encode_4bit with these levels."""
    flat = faiss.IndexPQ(EMBEDDING_SIZE, EMBEDDING_SIZE, 4)  # 128 one-dimensional sub-quantisers
    # faiss's centroid table is (M, ksub, dsub) = (128, 16, 1): the levels, dimension by dimension
    faiss.copy_array_to_vector(levels.reshape(-1), flat.pq.centroids)
    flat.is_trained = True
    faiss.copy_array_to_vector(codes.reshape(-1), flat.codes)
    flat.ntotal = len(codes)
    return faiss.IndexPQFastScan(flat, 32)  # packs the codes in blocks of 32 rows for the SIMD scan


class FaceIndex:
    """Encodings of enrolled people, kept for nearest-neighbour search.

    Parameters
    ----------
    names : sequence of str, length n
        The identity of each encoding (repeats allowed: several photos of one person).
    encodings : array_like, shape (n, 128)
        One encoding per row (unit length for FaceNet, though any finite vectors work).
    method : {"auto", "exact", "fast"}
        ``"exact"``: numpy scan of every encoding. ``"fast"``: 4-bit codes scanned by faiss, the
        best ``candidates`` re-ranked exactly (needs faiss-cpu). ``"auto"`` (default): exact below
        ``FAST_MIN_SIZE`` encodings, fast from there (exact, with a warning, if faiss is missing).
    candidates : int
        Rows re-ranked exactly per query on the fast path.
    threads : int or None
        Fast path: the codes are split into this many parts (at most one per ``SHARD_MIN_ROWS``
        rows), scanned in parallel for every query. Default: the cores this process may use.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> enc = rng.standard_normal((3, 128)); enc /= np.linalg.norm(enc, axis=1, keepdims=True)
    >>> index = FaceIndex(["ann", "bob", "cy"], enc)
    >>> index.nearest(enc[1])
    ('bob', 0.0)
    >>> rows, distances = index.search(enc[[2, 0]], k=2)  # two queries in one pass
    >>> rows[:, 0].tolist()
    [2, 0]
    """

    def __init__(self, names, encodings, method="auto", candidates=CANDIDATES, threads=None):
        if method not in ("auto", "exact", "fast"):
            raise ValueError(f"method must be 'auto', 'exact' or 'fast', got {method!r}")
        if int(candidates) < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        threads = _usable_cores() if threads is None else int(threads)
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        matrix = _as_encodings(encodings)
        names = list(names)
        if len(names) != len(matrix):
            raise ValueError(f"{len(names)} names for {len(matrix)} encodings")
        self.names = names
        self.encodings = matrix
        self.method = method
        self.candidates = int(candidates)
        self.threads = threads
        # |m|^2 once, so a query needs one product with the matrix: |m-q|^2 = |m|^2 - 2 m.q + |q|^2.
        self._squared_norms = np.einsum("ij,ij->i", matrix, matrix)
        self._levels = None  # (128, 16) float32: the 4-bit levels of each dimension
        self._parts = []  # faiss.IndexPQFastScan over consecutive rows, one per thread
        self._codes = None  # the part, or a faiss.IndexShards searching the parts in parallel
        self.fallbacks = 0  # queries the check sent to a longer candidate list or to the exact scan
        self._update_fast_path()

    @classmethod
    def from_database(cls, database, **options):
        """Build from a database dict ``{name: (1, 128) encoding}`` (as made by fr_utils)."""
        if not isinstance(database, dict):
            raise TypeError(f"database must be a dict name -> encoding, got {type(database).__name__}")
        names = list(database)
        matrix = (np.concatenate([np.asarray(database[n], np.float32).reshape(1, -1) for n in names])
                  if names else np.zeros((0, EMBEDDING_SIZE), np.float32))
        return cls(names, matrix, **options)

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return f"FaceIndex({len(self)} encodings, {self.search_method} search, {self.nbytes / 2**20:.1f} MiB)"

    @property
    def search_method(self):
        """``"fast"`` when queries go through the codes, else ``"exact"``."""
        return "exact" if self._codes is None else "fast"

    @property
    def nbytes(self):
        """Bytes of the search structures (float32 matrix, norms, codes and levels), names excluded."""
        total = self.encodings.nbytes + self._squared_norms.nbytes
        if self._codes is not None:
            # fast-scan codes are stored in blocks of bbs (32) rows, M / 2 bytes a row
            total += sum(part.ntotal2 * part.M2 // 2 for part in self._parts) + self._levels.nbytes
        return total

    def add(self, names, encodings):
        """Enrol more encodings (appended as the last rows); returns self."""
        matrix = _as_encodings(encodings)
        names = list(names)
        if len(names) != len(matrix):
            raise ValueError(f"{len(names)} names for {len(matrix)} encodings")
        self.names.extend(names)
        self.encodings = np.concatenate([self.encodings, matrix])
        self._squared_norms = np.concatenate([self._squared_norms, np.einsum("ij,ij->i", matrix, matrix)])
        if self._codes is not None and len(matrix):
            # codes for the new rows, with the levels already fitted (faiss encodes them), in the
            # last part so that the parts keep consecutive rows
            self._parts[-1].add(matrix)
            if len(self._parts) > 1:
                self._codes.syncWithSubIndexes()
        else:
            self._update_fast_path()
        return self

    def _update_fast_path(self):
        if self._codes is not None or len(self) == 0:
            return
        if self.method == "exact" or (self.method == "auto" and len(self) < FAST_MIN_SIZE):
            return
        if self.method == "auto":
            try:
                faiss = _import_faiss()
            except ImportError as error:
                warnings.warn(f"{error}; searching {len(self)} encodings exactly", stacklevel=3)
                self.method = "exact"
                return
        else:
            faiss = _import_faiss()
        levels = fit_levels(self.encodings)
        codes = encode_4bit(self.encodings, levels)
        count = max(1, min(self.threads, len(self) // SHARD_MIN_ROWS))
        bounds = np.linspace(0, len(self), count + 1).round().astype(np.int64)
        self._parts = [_fast_scan_index(faiss, levels, codes[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        if count == 1:
            self._codes = self._parts[0]
        else:  # one thread a part for each query; rows numbered across the parts in order
            self._codes = faiss.IndexShards(EMBEDDING_SIZE, True, True)
            for part in self._parts:  # (self._parts keeps them alive)
                self._codes.add_shard(part)
        self._levels = levels

    def search(self, queries, k=1):
        """The ``k`` nearest encodings of each query.

        Parameters
        ----------
        queries : array_like, shape (q, 128) or (128,)
            Pass many queries at once to share one pass over the database.
        k : int

        Returns
        -------
        rows : ndarray of int64, shape (q, k)
            Rows of ``encodings``, nearest first (equal distances: lower row first).
        distances : ndarray of float32, shape (q, k)
            Their L2 distances, computed as ``|m - q|``.
        """
        queries = _as_encodings(queries, "queries")
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if len(self) == 0:
            raise ValueError("the index is empty; enrol at least one person first")
        k = min(k, len(self))
        if self._codes is not None:
            return self._search_fast(queries, k)
        return self._search_exact(queries, k)

    def nearest(self, query):
        """``(name, distance)`` of the encoding nearest to one query encoding."""
        rows, distances = self.search(query, k=1)
        return self.names[int(rows[0, 0])], float(distances[0, 0])

    # -- exact scan -------------------------------------------------------------------------------

    def _search_exact(self, queries, k):
        if k == 1:
            return self._nearest_one(queries)
        return self._rerank(queries, self._candidates(queries, k), k)

    def _scores(self, queries):
        """Yield (first row, scores) block by block, scores of shape (q, rows):
        scores[i, j] = |m_j|^2 - 2 m_j.q_i, the squared distance less |q_i|^2 (the same for every
        row, so it orders rows alike). Each query's scores are contiguous, so the reductions
        along them (argmin, count) run at memory speed."""
        block_rows = max(1024, SCORES_PER_BLOCK // len(queries))
        for start in range(0, len(self), block_rows):
            block = self.encodings[start:start + block_rows]
            scores = queries @ block.T  # one matrix product
            scores *= -2.0
            scores += self._squared_norms[start:start + block_rows]
            yield start, scores

    def _nearest_one(self, queries):
        """Top-1 for each query: the row with the minimum score, and, where other rows score
        within a rounding margin of it, all of them re-ranked by the plain distance (so
        near-ties are settled exactly, as brute force would settle them)."""
        # The expanded form differs from |m - q|^2 by float32 rounding, about 1e-6 here; a margin
        # of 1e-4 (relative) keeps every row that could be the true nearest.
        margin = (1e-4 * (1.0 + np.einsum("ij,ij->i", queries, queries)
                          + self._squared_norms.max())).astype(np.float32)
        columns = np.arange(len(queries))
        best = np.full(len(queries), np.inf, np.float32)
        found_queries, found_rows = [], []
        for start, scores in self._scores(queries):
            rows = np.argmin(scores, axis=1)
            block_best = scores[columns, rows]
            best = np.minimum(best, block_best)
            useful = block_best <= best + margin  # this block can still hold the nearest
            candidates = scores if useful.all() else scores[useful]  # (no copy in the common case)
            close_counts = np.count_nonzero(candidates <= (best + margin)[useful, None], axis=1)
            single = np.flatnonzero(useful)[close_counts == 1]
            found_queries.append(single)
            found_rows.append(rows[single] + start)
            for query in np.flatnonzero(useful)[close_counts > 1]:  # rare: a near-tie
                row = np.flatnonzero(scores[query] <= best[query] + margin[query])
                found_queries.append(np.full(len(row), query))
                found_rows.append(row + start)
        q_index, rows = np.concatenate(found_queries), np.concatenate(found_rows)
        differences = self.encodings[rows] - queries[q_index]
        distances = np.sqrt(np.einsum("ij,ij->i", differences, differences))
        # Per query: smallest distance, then lowest row. lexsort's last key sorts first.
        order = np.lexsort((rows, distances, q_index))
        first = order[np.flatnonzero(np.diff(q_index[order], prepend=-1))]
        return rows[first, None], distances[first, None]

    def _candidates(self, queries, k):
        """Rows with the smallest scores, k plus spares, for k > 1."""
        keep = min(len(self), k + 8)  # spares absorb the rounding of the expanded form
        best_scores = np.zeros((len(queries), 0), np.float32)
        best_rows = np.zeros((len(queries), 0), np.int64)
        for start, scores in self._scores(queries):
            rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
            best_scores = np.concatenate([best_scores, scores], axis=1)
            best_rows = np.concatenate([best_rows, rows], axis=1)
            if best_scores.shape[1] > keep:
                part = np.argpartition(best_scores, keep - 1, axis=1)[:, :keep]
                best_scores = np.take_along_axis(best_scores, part, axis=1)
                best_rows = np.take_along_axis(best_rows, part, axis=1)
        return best_rows

    def _rerank(self, queries, rows, k):
        """Plain distances |m - q| of the candidate rows; the k nearest, sorted."""
        differences = self.encodings[rows] - queries[:, None, :]
        distances = np.sqrt(np.einsum("qcd,qcd->qc", differences, differences))
        order = np.lexsort((rows, distances), axis=1)[:, :k]  # by distance, then by row
        return np.take_along_axis(rows, order, axis=1), np.take_along_axis(distances, order, axis=1)

    # -- compressed scan + exact re-rank ------------------------------------------------------------

    def _search_fast(self, queries, k):
        """Code scan, exact re-rank of the candidates, and for the queries the check doubts, one
        more scan with 16 times more candidates, then the exact scan."""
        rows = np.empty((len(queries), k), np.int64)
        distances = np.empty((len(queries), k), np.float32)
        pending = np.arange(len(queries))
        for count in (max(self.candidates, 2 * k), 16 * max(self.candidates, 2 * k), None):
            if not len(pending):
                break
            if count is None or count >= len(self):  # every row a candidate: the exact scan
                rows[pending], distances[pending] = self._search_exact(queries[pending], k)
                break
            code_distances, candidates = self._codes.search(queries[pending], count)
            unsure = []
            block = max(1, RERANK_ROWS // count)  # queries re-ranked at a time
            for start in range(0, len(pending), block):
                part = slice(start, start + block)
                found, exact, sure = self._rerank_checked(
                    queries[pending[part]], candidates[part], code_distances[part], k)
                rows[pending[part][sure]], distances[pending[part][sure]] = found[sure], exact[sure]
                unsure.append(pending[part][~sure])
            pending = np.concatenate(unsure)
            self.fallbacks += len(pending)
        return rows, distances

    def _rerank_checked(self, queries, candidates, code_distances, k):
        """Exact re-rank of the candidates, and whether each query's answer is safe: the last
        candidate's code distance, corrected for this query's mean code error, must exceed the
        k-th exact squared distance by CHECK_SIGMAS deviations of the code error (both estimated
        on the candidates, whose code and exact distances are both known)."""
        valid = np.all(candidates >= 0, axis=1)  # (faiss marks missing results with -1)
        candidates = np.where(candidates >= 0, candidates, 0)
        if len(queries) == 1:  # (the common case, without the 3-D temporaries)
            differences = self.encodings.take(candidates[0], axis=0)
            differences -= queries[0]
            squared = np.einsum("ij,ij->i", differences, differences)[None]
        else:
            differences = self.encodings[candidates] - queries[:, None, :]
            squared = np.einsum("qcd,qcd->qc", differences, differences)
        error = code_distances - squared
        offset, spread = error.mean(axis=1), error.std(axis=1)
        if k == 1:  # smallest distance, then lowest row
            best = squared.min(axis=1, keepdims=True)
            rows = np.where(squared == best, candidates, np.iinfo(np.int64).max).min(axis=1, keepdims=True)
            kth = best[:, 0]
        else:
            order = np.lexsort((candidates, squared), axis=1)[:, :k]  # by distance, then by row
            rows, best = np.take_along_axis(candidates, order, axis=1), np.take_along_axis(squared, order, axis=1)
            kth = best[:, -1]
        sure = valid & (code_distances[:, -1] - offset > kth + CHECK_SIGMAS * spread + 1e-6 * (1 + kth))
        return rows, np.sqrt(best), sure


def _self_test():  # pragma: no cover - a quick manual check: python fr_index.py
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((1000, EMBEDDING_SIZE)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index = FaceIndex([f"p{i}" for i in range(1000)], matrix)
    name, distance = index.nearest(matrix[123])
    assert name == "p123" and math.isclose(distance, 0.0, abs_tol=1e-6), (name, distance)
    print(index, "ok")


if __name__ == "__main__":  # pragma: no cover
    _self_test()
