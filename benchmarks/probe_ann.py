"""One-off probe: can an HNSW graph (usearch) replace exact search for who_is_it? (item 4)

Not part of `make bench` (usearch is not a dependency of the package). Run it in any venv with
numpy and ``usearch==2.26.6``, e.g. the torch venv:

    benchmarks/.venv-torch/bin/pip install usearch==2.26.6
    benchmarks/.venv-torch/bin/python benchmarks/probe_ann.py [--size 100000]

Database: random unit encodings; queries: 0.6-1.1 away from a random entry (a new photo of an
enrolled person). For each search width ("ef") it prints ms per query and how often the best of
the 10 graph candidates (re-ranked exactly) is the exact nearest encoding.
"""

import argparse
import time

import numpy as np


def main():
    from usearch.index import Index

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.size
    matrix = rng.standard_normal((n, 128)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    rows = rng.integers(0, n, args.queries)
    noise = rng.standard_normal((args.queries, 128)).astype(np.float32)
    noise -= (noise * matrix[rows]).sum(1, keepdims=True) * matrix[rows]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    angle = 2 * np.arcsin(rng.uniform(0.6, 1.1, (args.queries, 1)) / 2)
    queries = (np.cos(angle) * matrix[rows] + np.sin(angle) * noise).astype(np.float32)
    exact = np.array([np.argmax(matrix @ q) for q in queries])
    for dtype in ("f16",):
        start = time.perf_counter()
        index = Index(ndim=128, metric="l2sq", dtype=dtype, connectivity=16, expansion_add=128)
        index.add(np.arange(n), matrix, threads=0)
        print(f"{dtype}: built in {time.perf_counter() - start:.0f} s, {index.memory_usage / n:.0f} bytes per identity")
        for ef in (16, 32, 64, 128):
            index.expansion_search = ef
            start = time.perf_counter()
            found = [index.search(q, 10) for q in queries]
            ms = 1e3 * (time.perf_counter() - start) / len(queries)
            top = np.array([r.keys[np.argmin(np.linalg.norm(matrix[r.keys.astype(int)] - q, axis=1))]
                            for r, q in zip(found, queries)])
            print(f"  ef {ef:3d}: {ms:.3f} ms per query, top-1 equals exact search for "
                  f"{100 * np.mean(top == exact):.1f}% of queries")


if __name__ == "__main__":
    main()
