"""`make bench`: every benchmark, one after another, then benchmarks/results.md and the plots.

Each benchmark runs in its own Python process (clean memory and thread pools) and saves its
figures to benchmarks/results/<name>.json; report.py turns them into results.md. Not part of
`make test`. About 18 minutes on 2 cores when the LFW caches are warm (benchmarks/cache/); the
first run adds about 35 minutes for LFW (detection once, then the crops of each setting, each
with its mirror image, in float32 and bfloat16).

    python benchmarks/run_all.py [--lfw DIR] [--skip lfw,encoder,enrol,search,notebook] [--quick] [--sweep]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _common import BENCH_DIR, DEFAULT_LFW_DIR, TORCH_VENV


def step(name, args):
    print(f"\n=== {name}: {' '.join(args)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, str(BENCH_DIR / args[0]), *args[1:]], cwd=BENCH_DIR.parent)
    print(f"=== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
    return code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW_DIR)
    parser.add_argument("--skip", default="", help="comma-separated steps to skip")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a smoke run)")
    parser.add_argument("--sweep", action="store_true", help="LFW: also score the other margins and face rules")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    failures = []
    plan = [
        ("lfw", ["bench_lfw.py", "--lfw", str(args.lfw)] + (["--sweep"] if args.sweep else [])),
        ("lfw-bfloat16", ["bench_lfw.py", "--lfw", str(args.lfw), "--dtype", "bfloat16"]),
        ("encoder", ["bench_encoder.py"] + (["--repeats", "2"] if args.quick else [])
         + ([] if (TORCH_VENV / "bin" / "python").exists() else ["--no-torch"])),
        ("enrol", ["bench_enrol.py"] + (["--runs", "1"] if args.quick else [])),
        ("search", ["bench_search.py"] + (["--max-size", "100000"] if args.quick else [])),
        ("notebook", ["bench_notebook.py"]),
    ]
    for name, command in plan:
        if name in skip or name.split("-")[0] in skip:
            continue
        if name.startswith("lfw") and not (args.lfw / "pairs.txt").is_file():
            print(f"=== {name}: skipped, no LFW at {args.lfw} (pass --lfw DIR)")
            continue
        if step(name, command) != 0:
            failures.append(name)
    step("report", ["report.py"])
    print((BENCH_DIR / "results.md").read_text())
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
