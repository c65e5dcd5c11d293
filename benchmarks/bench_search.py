"""who_is_it scaling: query time against database size (benchmark item 4).

Databases of 1e2 ... 1e6 random unit encodings. Queries are mostly "a new photo of an enrolled
person" (a unit vector 0.6-1.1 away from a random entry, the range of same-person distances on
LFW) plus strangers (random unit vectors). Methods, timed in the same run:

* ``assignment loop``: the exercise's Python loop over the dict, ``np.linalg.norm(enc - db[name])``
  (up to 1e4 entries);
* ``fr_utils.nearest_identity``: the package's dict search today (validates the dict, stacks it,
  one vectorised norm) (up to 1e5);
* ``FaceIndex exact, 1 query``: ``fr_index.FaceIndex(method="exact")`` built once, one query at a
  time (numpy scan of the float32 matrix);
* ``FaceIndex fast, 1 query``: ``FaceIndex(method="fast")``, one query at a time (faiss scan of
  4-bit codes, 256 candidates re-ranked exactly); at every size, to show the crossover;
  ``method="auto"`` (the default) is exact below ``fr_index.FAST_MIN_SIZE`` and fast from there;
* ``FaceIndex fast 1 core, 1 query``: the same with ``threads=1`` where the default splits the
  codes over the cores (from 1e5 on 2 cores), to show what the second core brings;
* ``FaceIndex exact|fast, 256 queries``: the same indexes, 256 queries in one call, time per query.

Top-1 agreement: each method's answers are compared with the plain exact search
``argmin |m - q|`` (float64) on every query it answered, separately for the near queries and the
strangers. The single-query timings stop after about 10 s per method and size; the fast method's
agreement is counted on every query (its batched answers, which are checked to be those of the
one-at-a-time calls where both exist). Memory per identity: the index's bytes over n, and for the
dict what numpy and Python hold for each entry. Build: the time to construct each index.

    python benchmarks/bench_search.py [--max-size 1000000] [--queries 4096]
"""

import argparse
import os
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


def agreement(found, reference, near):
    """Fractions of queries whose top-1 equals the reference: near queries, strangers, all."""
    found = np.asarray(found)
    ok = found == reference[:len(found)]
    near = near[:len(found)]
    return {"top1_agreement": float(np.mean(ok)),
            "top1_agreement_near": float(np.mean(ok[near])) if near.any() else None,
            "top1_agreement_strangers": float(np.mean(ok[~near])) if (~near).any() else None,
            "queries_checked": int(len(found)), "strangers_checked": int(np.sum(~near))}


def batched(index, queries, batch=BATCH, max_seconds=None):
    """Median ms per query over calls of `batch` queries, and the top-1 rows (all queries unless
    max_seconds stops it first)."""
    times, rows = [], []
    start = time.perf_counter()
    for first in range(0, len(queries), batch):
        t = time.perf_counter()
        r, _ = index.search(queries[first:first + batch])
        times.append((time.perf_counter() - t) / len(r))
        rows.append(r[:, 0])
        if max_seconds and len(times) >= 2 and time.perf_counter() - start > max_seconds:
            break
    return 1e3 * float(np.median(times)), np.concatenate(rows)


def run(sizes=SIZES, queries_per_size=4096, log=print):
    import fr_index

    fr_utils = None
    try:
        import fr_utils  # noqa: F811  (TensorFlow import, only for nearest_identity)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        load_before = os.getloadavg()[0]
        matrix = unit_rows(rng, n)
        names = [f"person_{i:07d}" for i in range(n)]
        queries = make_queries(rng, matrix, queries_per_size)
        near = np.arange(len(queries)) < len(queries) * 3 // 4  # make_queries puts them first
        shuffle = rng.permutation(len(queries))  # so that timings cut short still see both kinds
        queries, near = queries[shuffle], near[shuffle]
        reference = exact_top1(matrix, queries)
        results = {}

        def row_number(answer):
            return int(answer[0][7:])

        t = time.perf_counter()
        exact = fr_index.FaceIndex(names, matrix, method="exact")
        exact_build_ms = 1e3 * (time.perf_counter() - t)
        t = time.perf_counter()
        fast = fr_index.FaceIndex(names, matrix, method="fast")
        fast_build_ms = 1e3 * (time.perf_counter() - t)

        ms, answers = median_ms(exact.nearest, queries, max_seconds=10)
        results["FaceIndex exact, 1 query"] = (ms, agreement([row_number(a) for a in answers], reference, near))
        ms, answers = median_ms(fast.nearest, queries, max_seconds=10)
        single = np.array([row_number(a) for a in answers])
        _, fast_rows = batched(fast, queries)
        mismatches = int(np.sum(single != fast_rows[:len(single)]))
        results["FaceIndex fast, 1 query"] = (ms, {**agreement(fast_rows, reference, near),
                                                   "single_vs_batched_mismatches": mismatches,
                                                   "single_queries_timed": len(single)})
        if len(fast._parts) > 1:  # the same codes in one part: the fast path on one core
            one_core = fr_index.FaceIndex(names, matrix, method="fast", threads=1)
            ms, answers = median_ms(one_core.nearest, queries, max_seconds=10)
            results["FaceIndex fast 1 core, 1 query"] = (
                ms, agreement([row_number(a) for a in answers], reference, near))
            del one_core
        ms, found = batched(exact, queries, max_seconds=10)
        results[f"FaceIndex exact, {BATCH} queries"] = (ms, agreement(found, reference, near))
        ms, found = batched(fast, queries)
        results[f"FaceIndex fast, {BATCH} queries"] = (ms, agreement(found, reference, near))
        fallbacks = fast.fallbacks
        if n <= DICT_MAX:
            database = {name: matrix[i:i + 1].copy() for i, name in enumerate(names)}
            dict_bytes = dict_bytes_per_identity(database)
            if n <= LOOP_MAX:
                ms, answers = median_ms(lambda q: assignment_loop(q, database), queries, max_seconds=10)
                results["assignment loop"] = (ms, agreement([row_number(a) for a in answers], reference, near))
            if fr_utils is not None:
                def package_search(q):
                    found_names, distances = fr_utils.nearest_identity(q, database)
                    return found_names[int(np.argmin(distances))]

                ms, answers = median_ms(package_search, queries, max_seconds=10)
                results["fr_utils.nearest_identity"] = (ms, agreement([int(a[7:]) for a in answers], reference, near))
            del database
        else:
            dict_bytes = None
        for method, (ms, checks) in results.items():
            rows.append({"size": n, "method": method, "ms_per_query": ms, **checks})
        rows.append({"size": n, "method": "memory", "index_bytes_per_identity": exact.nbytes / n,
                     "fast_index_bytes_per_identity": fast.nbytes / n,
                     "names_bytes_per_identity": sum(sys.getsizeof(s) + 8 for s in names) / n,
                     "dict_bytes_per_identity": dict_bytes, "index_build_ms": exact_build_ms,
                     "fast_index_build_ms": fast_build_ms, "fast_fallbacks": int(fallbacks),
                     "fast_parts": len(fast._parts),
                     "auto_method": "fast" if n >= fr_index.FAST_MIN_SIZE else "exact",
                     "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        log(f"n={n:>9,}: " + ", ".join(f"{m} {v[0]:.3f} ms ({100 * v[1]['top1_agreement']:.2f}%)"
                                      for m, v in results.items())
            + f"; build exact {exact_build_ms:.0f} ms, fast {fast_build_ms:.0f} ms; load {load_before:.1f}")
        del matrix, exact, fast
    return {"rows": rows, "batch": BATCH, "queries_per_size": queries_per_size,
            "fast_min_size": fr_index.FAST_MIN_SIZE}


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}"


def summary(result):
    rows = result["rows"]
    sizes = sorted({r["size"] for r in rows})
    order = ["FaceIndex exact, 1 query", "FaceIndex fast, 1 query", "FaceIndex fast 1 core, 1 query"]
    methods = sorted(dict.fromkeys(r["method"] for r in rows if r["method"] != "memory"),
                     key=lambda m: (order.index(m) if m in order else len(order), not m.startswith("FaceIndex")))
    lines = [f"{'ms per query':32s}" + "".join(f"{n:>12,}" for n in sizes)]
    for m in methods:
        cells = []
        for n in sizes:
            match = [r for r in rows if r["size"] == n and r["method"] == m]
            cells.append(f"{match[0]['ms_per_query']:12.3f}" if match else f"{'-':>12s}")
        lines.append(f"{m:32s}" + "".join(cells))
    memory = {r["size"]: r for r in rows if r["method"] == "memory"}
    if "fast_min_size" in result:
        lines.append(f"FaceIndex default (method='auto'): exact below {result['fast_min_size']:,} encodings, "
                     "fast from there")
    lines += ["", "top-1 agreement with exact float64 search, % (near queries / strangers / all; queries checked)"]
    for m in methods:
        cells = []
        for n in sizes:
            match = [r for r in rows if r["size"] == n and r["method"] == m]
            if match and "top1_agreement_near" in match[0]:
                r = match[0]
                cells.append(f"{n:,}: {_percent(r['top1_agreement_near'])} / {_percent(r['top1_agreement_strangers'])}"
                             f" / {_percent(r['top1_agreement'])} ({r['queries_checked']})")
            elif match:
                cells.append(f"{n:,}: {_percent(match[0]['top1_agreement'])} ({match[0]['queries_checked']})")
        lines.append(f"  {m}: " + "; ".join(cells))
    lines += ["", f"{'per identity':32s}" + "".join(f"{n:>12,}" for n in sizes)]
    table = [("FaceIndex exact, bytes", "index_bytes_per_identity", "{:12.0f}"),
             ("FaceIndex fast, bytes", "fast_index_bytes_per_identity", "{:12.0f}"),
             ("names, bytes", "names_bytes_per_identity", "{:12.0f}"),
             ("dict database, bytes", "dict_bytes_per_identity", "{:12.0f}"),
             ("build exact, ms", "index_build_ms", "{:12.1f}"),
             ("build fast, ms", "fast_index_build_ms", "{:12.1f}"),
             ("fast: queries re-searched", "fast_fallbacks", "{:12d}"),
             ("fast: parts (threads)", "fast_parts", "{:12d}"),
             ("1-min load before/after", "load_average_1min", None)]
    for label, key, fmt in table:
        cells = []
        for n in sizes:
            value = memory.get(n, {}).get(key)
            if value is None:
                cells.append(f"{'-':>12s}")
            elif fmt is None:
                cells.append(f"{'/'.join(f'{v:.1f}' for v in value):>12s}")
            else:
                cells.append(fmt.format(value))
        lines.append(f"{label:32s}" + "".join(cells))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-size", type=int, default=max(SIZES))
    parser.add_argument("--queries", type=int, default=4096)
    args = parser.parse_args(argv)
    result = run([n for n in SIZES if n <= args.max_size], args.queries, log=lambda m: print(m, flush=True))
    for line in summary(result):
        print(line)
    save_result("search", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
