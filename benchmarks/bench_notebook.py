"""Notebook cost: wall time of the strict nbval run, model loading time, peak memory (item 5).

* nbval: ``python -m pytest --nbval ... Face_Recognition.ipynb`` exactly as ``make test`` runs it;
  its process tree (pytest and the Jupyter kernel) is sampled every 0.2 s for the peak resident
  memory of the tree (sum) and of the largest process.
* Model loading, in a fresh Python: the time to import ``fr_utils`` (TensorFlow) and to run
  ``fr_utils.load_facenet()`` (build, checksum, weights), median of 3 processes.

    python benchmarks/bench_notebook.py [--skip-nbval]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, save_result

NOTEBOOK = ROOT / "Face_Recognition.ipynb"
NBVAL_ARGS = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "nbval_sanitize.cfg",
              "--nbval-cell-timeout=600", "-p", "no:cacheprovider", "-q"]

LOAD_SCRIPT = """
import json, time
t0 = time.perf_counter()
import fr_utils
t1 = time.perf_counter()
model = fr_utils.load_facenet()
t2 = time.perf_counter()
print(json.dumps({"import_seconds": t1 - t0, "load_seconds": t2 - t1}))
"""


def tree_rss_bytes(pid):
    """(sum, max) resident bytes of a process and all its descendants, from /proc."""
    children = {}
    rss = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()
            this = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(this)
            rss[this] = int(fields[21]) * 4096  # rss in pages (4 KiB here)
        except (OSError, ValueError, IndexError):
            continue
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    values = [rss.get(p, 0) for p in tree]
    return sum(values), max(values, default=0)


def run_nbval(log=print):
    python = ROOT / ".venv" / "bin" / "python"
    start = time.perf_counter()
    process = subprocess.Popen([str(python), "-m", "pytest", *NBVAL_ARGS, str(NOTEBOOK.name)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_sum = peak_max = 0
    while process.poll() is None:
        total, largest = tree_rss_bytes(process.pid)
        peak_sum, peak_max = max(peak_sum, total), max(peak_max, largest)
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    output = process.stdout.read()
    last = [line for line in output.strip().splitlines() if line.strip()][-1:]
    log(f"nbval: {seconds:.1f} s, exit {process.returncode}, {last[0] if last else ''}")
    return {"nbval_seconds": seconds, "nbval_exit_code": process.returncode,
            "nbval_summary": last[0] if last else "", "peak_rss_tree_bytes": peak_sum,
            "peak_rss_largest_process_bytes": peak_max}


def model_loading(runs=3):
    python = ROOT / ".venv" / "bin" / "python"
    results = []
    for _ in range(runs):
        out = subprocess.run([str(python), "-c", LOAD_SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    results.sort(key=lambda r: r["load_seconds"])
    middle = results[len(results) // 2]
    return {"import_fr_utils_seconds": sorted(r["import_seconds"] for r in results)[len(results) // 2],
            "load_facenet_seconds": middle["load_seconds"], "load_runs": results}


def summary(result):
    lines = []
    if "nbval_seconds" in result:
        lines.append(f"nbval run of {NOTEBOOK.name}: {result['nbval_seconds']:.0f} s wall "
                     f"({result['nbval_summary']}); peak RSS {result['peak_rss_tree_bytes'] / 2**30:.2f} GiB "
                     f"(pytest + kernel), largest process {result['peak_rss_largest_process_bytes'] / 2**30:.2f} GiB")
    lines.append(f"import fr_utils (TensorFlow): {result['import_fr_utils_seconds']:.1f} s; "
                 f"load_facenet(): {result['load_facenet_seconds']:.1f} s (median of {len(result['load_runs'])})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-nbval", action="store_true")
    args = parser.parse_args(argv)
    if not NOTEBOOK.is_file():
        print(f"{NOTEBOOK} not found", file=sys.stderr)
        return 2
    result = model_loading()
    if not args.skip_nbval:
        result.update(run_nbval(log=lambda m: print(m, flush=True)))
    for line in summary(result):
        print(line)
    save_result("notebook", result)
    return 0 if result.get("nbval_exit_code", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
