"""Helpers shared by the benchmark scripts: paths, machine description, timing, caches."""

import datetime
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / "cache"
RESULTS_DIR = BENCH_DIR / "results"  # one JSON per benchmark; results.md is written from them
DEFAULT_LFW_DIR = ROOT.parent / "shared" / "lfw"
TORCH_VENV = BENCH_DIR / ".venv-torch"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cpu_model():
    """The CPU's marketing name from /proc/cpuinfo (or platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def usable_cores():
    """Cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info():
    """What a reader needs to compare numbers: CPU, cores, memory, OS, Python, date."""
    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f in flags]
    try:
        mem_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                            if l.startswith("MemTotal")).split()[1])
        memory = f"{mem_kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "simd": simd,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_1min": None if load is None else round(load[0], 2),
    }


def settings_key(settings):
    """A short stable hash of a JSON-able dict, to key a cache file by the settings it depends on."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def save_result(name, data):
    """Write one benchmark's figures to benchmarks/results/<name>.json (with the machine)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    script = Path(sys.argv[0]).resolve()
    script = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    data = {"machine": machine_info(), "command": " ".join(["python", str(script)] + sys.argv[1:]), **data}
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)
    return path


def load_result(name):
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
