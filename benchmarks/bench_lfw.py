"""LFW View 2 accuracy of the package's pipeline (benchmark item 1).

Standard protocol: the 6,000 pairs of ``pairs.txt`` in 10 folds; for each fold the threshold with
the best accuracy on the other 9 folds is applied to it (``fr_eval.kfold_accuracy``). Reported:
mean +- std accuracy, VAL @ FAR = 1e-3 (also cross-validated), ROC AUC and EER over all pairs, with
and without horizontal-flip test-time augmentation.

Pipeline: the package's own ``fr_utils`` steps -- ``load_image``, ``detect_faces_batch`` (MTCNN
with the permissive second pass), ``crop_face`` with a margin, ``prewhiten``, the pretrained
encoder, unit length -- with the settings below. An image where no face is found at all gets the
median box of all other LFW faces (``lfw_data.fallback_box``); the count is reported.

    python benchmarks/bench_lfw.py                     # the package's settings and the chosen ones
    python benchmarks/bench_lfw.py --sweep             # every setting tried (cached encodings)
    python benchmarks/bench_lfw.py --lfw /data/lfw     # LFW elsewhere (images/ + pairs.txt)

Detections and encodings are cached in ``benchmarks/cache/`` (about 10 and 5 minutes on 2 cores
the first time); a re-run takes seconds.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import DEFAULT_LFW_DIR, Stopwatch, save_result
import lfw_data

import fr_eval  # noqa: E402

# The package's settings (fr_utils.MARGIN, fr_utils.face_rank, no rotation) and the ones this benchmark
# found best; --sweep measures the others too.
PACKAGE_SETTINGS = {"margin": 0.1, "rule": "package", "align": "none"}
CHOSEN_SETTINGS = {"margin": 0.1, "rule": "central", "align": "eyes"}
# Scored on every run: the package's defaults, the package with its eye levelling switched on
# (crop_face(align="eyes")), and the benchmark's chosen settings. --sweep adds the rest.
DEFAULT_RUN = [PACKAGE_SETTINGS, {"margin": 0.1, "rule": "package", "align": "eyes"}, CHOSEN_SETTINGS]
SWEEP = [
    {"margin": 0.1, "rule": "central", "align": "none"},
    {"margin": 0.2, "rule": "central", "align": "none"},
    {"margin": 0.3, "rule": "central", "align": "none"},
]
TTA_MODES = ("none", "flip")
LFW_IMAGE_SHAPE = (250, 250)  # every LFW image (deep-funneled or not) is 250x250
MULTI_CROP_MARGINS = (0.1, 0.2)


def pair_indices(pairs, paths):
    position = {p: i for i, p in enumerate(paths)}
    return (np.array([position[p] for p in pairs.path1]), np.array([position[p] for p in pairs.path2]))


def lfw_metrics(encodings, pairs, first, second):
    """Every protocol figure for unit encodings (n, 128) of the images and the pair indices."""
    distances = fr_eval.pair_distances(encodings[first], encodings[second])
    same, different = distances[pairs.is_same], distances[~pairs.is_same]
    accuracy = fr_eval.kfold_accuracy(distances, pairs.is_same, pairs.fold)
    val = fr_eval.val_at_far(distances, pairs.is_same, pairs.fold, target_far=1e-3)
    eer, eer_threshold = fr_eval.equal_error_rate(same, different)
    return {
        "accuracy_mean": accuracy.mean,
        "accuracy_std": accuracy.std,
        "fold_thresholds_mean": float(np.mean(accuracy.thresholds)),
        "val_at_far_1e-3_mean": val.val_mean,
        "val_at_far_1e-3_std": val.val_std,
        "far_obtained_mean": val.far_mean,
        "roc_auc": fr_eval.roc_auc(same, different),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "accuracy_at_default_threshold": _accuracy_at_default_threshold(same, different),
        "distances": distances,
    }


def _accuracy_at_default_threshold(same, different):
    """All 6,000 pairs decided at the package's fixed threshold (no cross-validation)."""
    import fr_utils

    return fr_eval.confusion_counts(same, different, fr_utils.DEFAULT_THRESHOLD).accuracy


def make_encoder(dtype="float32"):
    """Crops (m, 160, 160, 3) uint8 -> encodings: the package's ``encode_faces`` for float32; the
    benchmark's bfloat16 graph (fast_encoder) with the package's prewhitening otherwise."""
    import fr_utils
    import fast_encoder

    model = fr_utils.load_facenet()
    if dtype == "float32":
        return lambda crops: fr_utils.encode_faces(crops, model)
    run = fast_encoder.compiled_encoder(model, dtype=dtype)

    def encode(crops):
        return run(fr_utils.prewhiten(crops))

    return encode


def evaluate(lfw_dir, settings_list, dtype="float32", log=print):
    """Encode (or read from the cache) and score each setting; returns a list of result dicts."""
    pairs, paths = lfw_data.lfw_pairs(lfw_dir)
    first, second = pair_indices(pairs, paths)
    with Stopwatch() as detect_time:
        detections = lfw_data.detect_all(lfw_dir, paths, log=log)
    n_faces = np.array([len(d) for d in detections])
    encoders = {}

    def get_encoder():  # built once, and only if some setting is not cached yet
        if "encoder" not in encoders:
            encoders["encoder"] = make_encoder(dtype)
        return encoders["encoder"]

    results, encoded = [], {}
    for settings in settings_list:
        rows, missing = lfw_data.face_boxes(detections, LFW_IMAGE_SHAPE, settings["rule"])
        key = {**settings, "encoder": f"facenet-{dtype}"}
        with Stopwatch() as encode_time:
            plain, mirrored = lfw_data.encode_all(lfw_dir, paths, rows, key, get_encoder, log=log)
        encoded[(settings["margin"], settings["rule"], settings["align"])] = (plain, mirrored)
        for tta in TTA_MODES:
            metrics = lfw_metrics(lfw_data.combine(plain, mirrored, tta), pairs, first, second)
            results.append({
                **settings, "tta": tta, "dtype": dtype,
                "images": len(paths), "pairs": len(pairs),
                "images_without_face": int(missing.sum()),
                "images_with_several_faces": int((n_faces > 1).sum()),
                "pairs_touching_fallback": int((missing[first] | missing[second]).sum()),
                "detect_seconds": detect_time.seconds, "encode_seconds": encode_time.seconds,
                **metrics,
            })
    # Multi-crop test-time augmentation: the mean of the unit encodings of two margins (and their
    # mirrors), when both were encoded in this run.
    pair_of_margins = [encoded.get((m, "central", "none")) for m in MULTI_CROP_MARGINS]
    if all(p is not None for p in pair_of_margins):
        for tta in TTA_MODES:
            units = [lfw_data.combine(p, q, tta) for p, q in pair_of_margins]
            mean = sum(units) / len(units)
            mean /= np.linalg.norm(mean, axis=1, keepdims=True)
            results.append({**results[-1], **lfw_metrics(mean, pairs, first, second), "tta": tta,
                            "margin": "+".join(map(str, MULTI_CROP_MARGINS)), "rule": "central", "align": "none"})
    return results


def format_row(r):
    return (f"margin {r['margin']!s:7s} {r['rule']:8s} align {r['align']:5s} tta {r['tta']:5s} {r['dtype']:8s} "
            f"acc {r['accuracy_mean']:.4f} +- {r['accuracy_std']:.4f}  "
            f"VAL@1e-3 {r['val_at_far_1e-3_mean']:.4f} +- {r['val_at_far_1e-3_std']:.4f}  "
            f"AUC {r['roc_auc']:.5f}  EER {r['eer']:.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW_DIR,
                        help="LFW folder with images/<Name>/<Name>_NNNN.jpg and pairs.txt (default: %(default)s)")
    parser.add_argument("--sweep", action="store_true", help="score every setting in SWEEP too")
    parser.add_argument("--dtype", default="float32", help="encoder precision (float32 or bfloat16)")
    args = parser.parse_args(argv)
    if not (args.lfw / "pairs.txt").is_file():
        print(f"LFW not found at {args.lfw} (needs pairs.txt and images/). Download LFW from its website "
              "(deep-funneled images and pairs.txt) and pass --lfw DIR.", file=sys.stderr)
        return 2
    settings_list = list(DEFAULT_RUN) if args.dtype == "float32" else [PACKAGE_SETTINGS, CHOSEN_SETTINGS]
    if args.sweep:
        settings_list += [s for s in SWEEP if s not in settings_list]
    results = evaluate(args.lfw, settings_list, args.dtype, log=lambda m: print(m, flush=True))
    for r in results:
        print(format_row(r))
    first = results[0]
    print(f"{first['images']} images, {first['images_without_face']} without a detected face "
          f"(median-box fallback, in {first['pairs_touching_fallback']} pairs), "
          f"{first['images_with_several_faces']} with several faces")
    distances = {f"{r['margin']}_{r['rule']}_{r['align']}_{r['tta']}_{r['dtype']}": r.pop("distances")
                 for r in results}
    save_result(f"lfw_{args.dtype}", {"results": results, "package_settings": PACKAGE_SETTINGS,
                                      "chosen_settings": CHOSEN_SETTINGS, "lfw_dir": str(args.lfw.resolve())})
    np.savez_compressed(Path(__file__).parent / "cache" / f"lfw_distances_{args.dtype}.npz", **distances)
    return 0


if __name__ == "__main__":
    sys.exit(main())
