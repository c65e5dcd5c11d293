"""Encoder throughput: this package's FaceNet vs facenet-pytorch's InceptionResnetV1 (item 2).

Both networks are the same Inception-ResNet-v1 (1.417 GMAC = 2.83 GFLOP per 160x160 face). They
get the same random prewhitened batches of 1, 8 and 32 faces. PyTorch runs in its own virtual
environment (``benchmarks/.venv-torch``), as a warm worker subprocess (``torch_worker.py``)
driven call by call from here, so the repeats of every engine are interleaved in one run: round
after round, each engine times one repeat of 32 faces per batch size, in a rotating order. The
figure is the median over rounds. A 2048x2048 float32 numpy matmul is timed in the same rounds as
this CPU's practical peak.

    python benchmarks/bench_encoder.py [--repeats 7] [--no-torch]
"""

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np

from _common import BENCH_DIR, CACHE_DIR, TORCH_VENV, save_result

GFLOP_PER_FACE = 2 * 1.417  # 1.417 GMAC per 160x160 face (Inception-ResNet-v1, FaceNet)
BATCH_SIZES = (1, 8, 32)
FACES_PER_REPEAT = 32
MATMUL_SIZE = 2048


class TorchWorker:
    """facenet-pytorch's model in the torch venv, one JSON request/answer a line."""

    def __init__(self, inputs_path):
        python = TORCH_VENV / "bin" / "python"
        if not python.exists():
            raise FileNotFoundError(f"{python} not found: create the torch venv with `make bench`")
        self.process = subprocess.Popen([str(python), str(BENCH_DIR / "torch_worker.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = self.ask(cmd="load", inputs=str(inputs_path))

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the torch worker died; run benchmarks/torch_worker.py by hand to see why")
        return json.loads(line)

    def seconds(self, batch, calls):
        return self.ask(cmd="time", batch=batch, calls=calls)["seconds"]

    def close(self):
        try:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")  # no answer comes back
            self.process.stdin.close()
        finally:
            self.process.wait(timeout=30)


def tf_engines(model, kinds):
    """name -> function(batch ndarray) that runs the forward pass and returns numpy encodings."""
    import fast_encoder
    import fr_utils

    engines = {}
    if "eager" in kinds:
        # A first version: call the Keras model eagerly, layer by layer.
        engines["keras eager, model(x)"] = lambda x: np.asarray(model(x, training=False))
    if "float32" in kinds:
        # The package: fr_utils.encode_faces runs this traced graph (one per batch size).
        engines["package graph float32"] = lambda x: fr_utils._encoder_graph(model, len(x))(x).numpy()
    if "bfloat16" in kinds:
        # The package with load_facenet(precision="bfloat16"): the same graph, bfloat16 layers.
        half = fr_utils.load_facenet(precision="bfloat16")
        engines["package graph bfloat16"] = lambda x: fr_utils._encoder_graph(half, len(x))(x).numpy()
    for name, dtype, xla in (("tf.function XLA float32", "float32", True),):
        if "xla" in kinds:
            per_batch = {b: fast_encoder.compiled_encoder(model, dtype, batch_size=b, jit_compile=xla)
                         for b in BATCH_SIZES}
            engines[name] = lambda x, per_batch=per_batch: per_batch[len(x)](x)
    return engines


def matmul_seconds(a):
    start = time.perf_counter()
    a @ a
    return time.perf_counter() - start


def run(repeats=7, use_torch=True, kinds=("eager", "float32", "xla", "bfloat16"), log=print):
    import fr_utils

    rng = np.random.default_rng(0)
    faces = fr_utils.prewhiten(rng.integers(0, 256, (max(BATCH_SIZES), 160, 160, 3), dtype=np.uint8))
    CACHE_DIR.mkdir(exist_ok=True)
    inputs_path = CACHE_DIR / "encoder_bench_inputs.npy"
    np.save(inputs_path, faces)
    model = fr_utils.load_facenet()
    engines = tf_engines(model, kinds)
    worker = TorchWorker(inputs_path) if use_torch else None
    timers = {}
    for name, fn in engines.items():
        timers[name] = lambda b, calls, fn=fn: _timed(lambda: [fn(faces[:b]) for _ in range(calls)])
    if worker:
        timers["facenet-pytorch float32"] = worker.seconds
    matrix = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32)
    log(f"warming up {len(timers)} engines ...")
    for b in BATCH_SIZES:
        for name, timer in timers.items():
            timer(b, 1)
            timer(b, 1)
    matmul_seconds(matrix)
    samples = {(name, b): [] for name in timers for b in BATCH_SIZES}
    matmul = []
    for round_no in range(repeats):
        names = list(timers)
        names = names[round_no % len(names):] + names[:round_no % len(names)]  # rotate the order
        for b in BATCH_SIZES:
            calls = math.ceil(FACES_PER_REPEAT / b)
            for name in names:
                # The eager path is so slow at batch 1 that it gets one call a repeat.
                n = 1 if name.startswith("keras eager") else calls
                samples[(name, b)].append(n * b / timers[name](b, n))
            matmul.append(2 * MATMUL_SIZE ** 3 / matmul_seconds(matrix) / 1e9)
        log(f"round {round_no + 1}/{repeats} done")
    if worker:
        torch_info = worker.info
        worker.close()
    else:
        torch_info = None
    peak = float(np.median(matmul))
    rows = []
    for (name, b), values in samples.items():
        rate = float(np.median(values))
        rows.append({"engine": name, "batch": b, "images_per_s": rate, "gflop_per_s": rate * GFLOP_PER_FACE,
                     "fraction_of_matmul_peak": rate * GFLOP_PER_FACE / peak,
                     "samples": [float(v) for v in values]})
    return {"rows": rows, "matmul_gflop_per_s": peak, "matmul_samples": [float(v) for v in matmul],
            "ceiling_faces_per_s": peak / GFLOP_PER_FACE, "torch": torch_info, "repeats": repeats}


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(result, lfw32=None, lfw16=None):
    """Lines of text: a table and the headline ratios."""
    rows = result["rows"]
    by = {(r["engine"], r["batch"]): r for r in rows}
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    lines = [f"{'engine':34s}" + "".join(f"  batch {b:2d} img/s" for b in BATCH_SIZES) + "   GFLOP/s@32  % of peak@32"]
    for e in engines:
        r32 = by[(e, 32)]
        lines.append(f"{e:34s}" + "".join(f"{by[(e, b)]['images_per_s']:17.1f}" for b in BATCH_SIZES)
                     + f"{r32['gflop_per_s']:13.1f}{100 * r32['fraction_of_matmul_peak']:12.0f}%")
    lines.append(f"numpy {MATMUL_SIZE}x{MATMUL_SIZE} float32 matmul: {result['matmul_gflop_per_s']:.0f} GFLOP/s "
                 f"-> ceiling {result['ceiling_faces_per_s']:.1f} faces/s")
    torch_name = "facenet-pytorch float32"
    if (torch_name, 32) in by:
        for e in engines:
            if e != torch_name:
                ratio = by[(e, 32)]["images_per_s"] / by[(torch_name, 32)]["images_per_s"]
                lines.append(f"{e} / facenet-pytorch at batch 32: {ratio:.2f}x")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-torch", action="store_true", help="skip facenet-pytorch (no torch venv)")
    parser.add_argument("--engines", default="eager,float32,xla,bfloat16",
                        help="comma-separated subset of eager,float32,xla,bfloat16")
    args = parser.parse_args(argv)
    result = run(args.repeats, not args.no_torch, tuple(args.engines.split(",")), log=lambda m: print(m, flush=True))
    for line in summary(result):
        print(line)
    save_result("encoder", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
