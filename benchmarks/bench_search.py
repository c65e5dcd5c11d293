"""who_is_it scaling: query time against database size (benchmark item 4).

Databases of 1e2 ... 1e6 random unit encodings. Queries are mostly "a new photo of an enrolled
person" (a unit vector 0.6-1.1 away from a random entry, the range of same-person distances on
LFW) plus strangers (random unit vectors). Methods, timed in the same run:

* ``assignment loop``: the exercise's Python loop over the dict, ``np.linalg.norm(enc - db[name])``
  (up to 1e4 entries);
* ``fr_utils.nearest_identity``: the package's dict search today (validates the dict, stacks it,
  one vectorised norm) (up to 1e5);
* ``FaceIndex, 1 query``: ``fr_index.FaceIndex`` built once, one query at a time;
* ``FaceIndex, 256 queries``: the same index, 256 queries in one call, time per query.

Top-1 agreement: each method's answers are compared with the plain exact search
``argmin |m - q|`` (float64) on every query. Memory per identity: the index's bytes over n, and for
the dict what numpy and Python hold for each entry.

    python benchmarks/bench_search.py [--max-size 1000000]
"""

import argparse
import sys
import time

import numpy as np

from _common import save_result

SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
LOOP_MAX = 10_000
DICT_MAX = 100_000
BATCH = 256


def unit_rows(rng, n, d=128):
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_queries(rng, matrix, count):
    """3/4 enrolled people (0.6-1.1 from a random row), 1/4 strangers."""
    near = count * 3 // 4
    rows = rng.integers(0, len(matrix), near)
    noise = unit_rows(rng, near)
    noise -= (noise * matrix[rows]).sum(1, keepdims=True) * matrix[rows]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    angle = 2 * np.arcsin(rng.uniform(0.6, 1.1, (near, 1)) / 2)
    near_queries = np.cos(angle) * matrix[rows] + np.sin(angle) * noise
    return np.concatenate([near_queries, unit_rows(rng, count - near)]).astype(np.float32)


def exact_top1(matrix, queries, block=65_536):
    """Reference answers: argmin of |m - q| computed in float64, block by block."""
    best = np.full(len(queries), np.inf)
    best_row = np.zeros(len(queries), np.int64)
    q64 = queries.astype(np.float64)
    for start in range(0, len(matrix), block):
        m64 = matrix[start:start + block].astype(np.float64)
        d2 = (m64 ** 2).sum(1)[None, :] - 2 * q64 @ m64.T + (q64 ** 2).sum(1)[:, None]
        k = np.argmin(d2, axis=1)
        better = d2[np.arange(len(queries)), k] < best
        best[better] = d2[np.arange(len(queries)), k][better]
        best_row[better] = k[better] + start
    return best_row


def assignment_loop(encoding, database):
    """The exercise's who_is_it search, as students write it."""
    min_dist, identity = 100, None
    for name, db_enc in database.items():
        dist = np.linalg.norm(encoding - db_enc)
        if dist < min_dist:
            min_dist, identity = dist, name
    return identity, min_dist


def median_ms(fn, inputs, max_seconds):
    """Median milliseconds of fn(x) over the inputs, stopping after max_seconds (at least 3 runs)."""
    times, answers = [], []
    start = time.perf_counter()
    for x in inputs:
        t = time.perf_counter()
        answers.append(fn(x))
        times.append(time.perf_counter() - t)
        if len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return 1e3 * float(np.median(times)), answers


def dict_bytes_per_identity(database):
    """Bytes Python and numpy hold for a dict database, per entry (arrays, names, dict slots)."""
    arrays = sum(sys.getsizeof(v) for v in database.values())
    names = sum(sys.getsizeof(k) for k in database)
    return (arrays + names + sys.getsizeof(database)) / len(database)


def run(sizes=SIZES, queries_per_size=1024, log=print):
    import fr_index

    fr_utils = None
    try:
        import fr_utils  # noqa: F811  (TensorFlow import, only for nearest_identity)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        matrix = unit_rows(rng, n)
        names = [f"person_{i:07d}" for i in range(n)]
        queries = make_queries(rng, matrix, queries_per_size)
        reference = exact_top1(matrix, queries)
        t = time.perf_counter()
        index = fr_index.FaceIndex(names, matrix)
        build_ms = 1e3 * (time.perf_counter() - t)
        results = {}

        single_ms, answers = median_ms(index.nearest, queries, max_seconds=10)
        found = np.array([int(a[0][7:]) for a in answers])
        results["FaceIndex, 1 query"] = (single_ms, np.mean(found == reference[:len(found)]), len(found))

        batch_times, batch_rows = [], []
        for start in range(0, len(queries), BATCH):
            t = time.perf_counter()
            r, _ = index.search(queries[start:start + BATCH])
            batch_times.append((time.perf_counter() - t) / len(r))
            batch_rows.append(r[:, 0])
        batch_rows = np.concatenate(batch_rows)
        results[f"FaceIndex, {BATCH} queries"] = (1e3 * float(np.median(batch_times)),
                                                  np.mean(batch_rows == reference), len(batch_rows))
        if n <= DICT_MAX:
            database = {name: matrix[i:i + 1].copy() for i, name in enumerate(names)}
            dict_bytes = dict_bytes_per_identity(database)
            if n <= LOOP_MAX:
                loop_ms, answers = median_ms(lambda q: assignment_loop(q, database), queries, max_seconds=10)
                found = np.array([int(a[0][7:]) for a in answers])
                results["assignment loop"] = (loop_ms, np.mean(found == reference[:len(found)]), len(found))
            if fr_utils is not None:
                def package_search(q):
                    found_names, distances = fr_utils.nearest_identity(q, database)
                    return found_names[int(np.argmin(distances))]

                dict_ms, answers = median_ms(package_search, queries, max_seconds=10)
                found = np.array([int(a[7:]) for a in answers])
                results["fr_utils.nearest_identity"] = (dict_ms, np.mean(found == reference[:len(found)]), len(found))
            del database
        else:
            dict_bytes = None
        for method, (ms, agreement, count) in results.items():
            rows.append({"size": n, "method": method, "ms_per_query": ms, "top1_agreement": float(agreement),
                         "queries_checked": int(count)})
        rows.append({"size": n, "method": "memory", "index_bytes_per_identity": index.nbytes / n,
                     "names_bytes_per_identity": sum(sys.getsizeof(s) + 8 for s in names) / n,
                     "dict_bytes_per_identity": dict_bytes, "index_build_ms": build_ms})
        log(f"n={n:>9,}: " + ", ".join(f"{m} {v[0]:.3f} ms" for m, v in results.items()))
        del matrix, index
    return {"rows": rows, "batch": BATCH, "queries_per_size": queries_per_size}


def summary(result):
    rows = result["rows"]
    sizes = sorted({r["size"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "memory"))
    lines = [f"{'ms per query':28s}" + "".join(f"{n:>12,}" for n in sizes)]
    for m in methods:
        cells = []
        for n in sizes:
            match = [r for r in rows if r["size"] == n and r["method"] == m]
            cells.append(f"{match[0]['ms_per_query']:12.3f}" if match else f"{'-':>12s}")
        lines.append(f"{m:28s}" + "".join(cells))
    worst = min(r["top1_agreement"] for r in rows if "FaceIndex" in r["method"])
    lines.append(f"FaceIndex top-1 agreement with exact float64 search: worst {100 * worst:.2f}% of queries")
    memory = [r for r in rows if r["method"] == "memory"]
    lines.append(f"memory per identity: FaceIndex {memory[-1]['index_bytes_per_identity']:.0f} B "
                 f"+ names {memory[-1]['names_bytes_per_identity']:.0f} B; dict database "
                 f"{max(r['dict_bytes_per_identity'] or 0 for r in memory):.0f} B")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-size", type=int, default=max(SIZES))
    parser.add_argument("--queries", type=int, default=1024)
    args = parser.parse_args(argv)
    result = run([n for n in SIZES if n <= args.max_size], args.queries, log=lambda m: print(m, flush=True))
    for line in summary(result):
        print(line)
    save_result("search", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
