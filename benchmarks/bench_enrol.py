"""Enrolment throughput, photo -> detect -> crop -> encode, on the 118 celebrity photos (item 3).

Two paths, run alternately in one process (naive, package, package, naive, ...) so that both see
the same machine load; the figure is the median over runs:

* ``naive loop``: what a first version does, one photo at a time -- Pillow to open the photo,
  ``MTCNN.detect_faces(image)`` with the mtcnn package's defaults, the largest box with the same
  10% margin, prewhitening, ``model.predict`` on one face;
* ``package``: ``fr_utils.encode_photos(paths, model)`` -- photos downscaled to at most 1600 px,
  detection batched 16 photos a call (each padded to sides that are multiples of 64 px), encoding
  batched 32 faces a call through the traced encoder graph.

Both use the same loaded MTCNN and FaceNet, warmed up first. Photos per second and the time in
each stage are reported.

    python benchmarks/bench_enrol.py [--runs 2]
"""

import argparse
import sys
import time
import warnings

import numpy as np

from _common import save_result


def naive_enrol(paths, model, detector):
    """One photo at a time, with the plain library calls; returns (encodings, stage seconds)."""
    import fr_utils
    from PIL import Image

    stages = {"load": 0.0, "detect": 0.0, "crop": 0.0, "encode": 0.0}
    encodings = []
    for path in paths:
        t0 = time.perf_counter()
        image = np.asarray(Image.open(path).convert("RGB"))
        t1 = time.perf_counter()
        faces = detector.detect_faces(image)
        t2 = time.perf_counter()
        if not faces:
            stages["load"] += t1 - t0
            stages["detect"] += t2 - t1
            continue
        x, y, w, h = max(faces, key=lambda f: f["box"][2] * f["box"][3])["box"]
        crop = fr_utils.crop_face(image, (x, y, x + w, y + h))
        t3 = time.perf_counter()
        encoding = model.predict(fr_utils.prewhiten(crop[None]), verbose=0)
        encodings.append(encoding[0] / np.linalg.norm(encoding[0]))
        t4 = time.perf_counter()
        for stage, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[stage] += seconds
    return np.array(encodings), stages


def package_enrol(paths, model):
    import fr_utils

    encoded = fr_utils.encode_photos(paths, model, progress=False, skip_errors=True)
    return encoded.encodings, {}


NAIVE, PACKAGE = "naive loop", "package (fr_utils.encode_photos)"


def run(runs=2, log=print):
    import fr_utils

    paths = fr_utils.list_images(fr_utils.IMAGES_DIR)
    model = fr_utils.load_facenet()
    detector = fr_utils.get_detector()
    warnings.simplefilter("ignore")  # several faces in a photo: the largest is used in both paths
    naive_enrol(paths[:3], model, detector)  # warm-up: first graph builds, first predict
    package_enrol(paths[:40], model)  # traces the encoder graphs for 32 and 8 faces
    timings = {NAIVE: [], PACKAGE: []}
    run_path = {NAIVE: lambda: naive_enrol(paths, model, detector), PACKAGE: lambda: package_enrol(paths, model)}
    stages = {}
    outputs = {}
    for run_no in range(runs):
        order = list(timings) if run_no % 2 == 0 else list(timings)[::-1]
        for name in order:
            start = time.perf_counter()
            encodings, stage_seconds = run_path[name]()
            seconds = time.perf_counter() - start
            stages = stage_seconds or stages
            timings[name].append(seconds)
            outputs[name] = encodings
            log(f"run {run_no + 1}: {name}: {seconds:.1f} s ({len(paths) / seconds:.2f} photos/s)")
    rows = [{"path": name, "photos": len(paths), "seconds_median": float(np.median(t)),
             "photos_per_s": len(paths) / float(np.median(t)), "seconds_all": [float(x) for x in t],
             "faces_encoded": len(outputs[name]),
             "speedup_vs_naive": float(np.median(timings[NAIVE]) / np.median(t))}
            for name, t in timings.items()]
    return {"rows": rows, "naive_stage_seconds": stages}


def summary(result):
    lines = [f"{r['path']:36s} {r['photos_per_s']:6.2f} photos/s  ({r['seconds_median']:.1f} s for {r['photos']}, "
             f"{r['faces_encoded']} faces)  {r['speedup_vs_naive']:.2f}x the naive loop"
             for r in result["rows"]]
    stage = result["naive_stage_seconds"]
    if stage:
        lines.append("naive loop time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stage.items()))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.runs, log=lambda m: print(m, flush=True))
    for line in summary(result):
        print(line)
    save_result("enrol", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
