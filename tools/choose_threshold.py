"""Choose fr_utils.DEFAULT_THRESHOLD from data, and print how it was chosen.

The threshold is the one with the best accuracy over all same-person / different-person pairs of
the celebrity *train* photos (the val photos are kept for evaluation), rounded to two decimals.
Run: `.venv/bin/python tools/choose_threshold.py`.
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import fr_eval  # noqa: E402
import fr_utils  # noqa: E402


def choose_threshold(encodings, labels):
    """Best-accuracy threshold of all pairs, rounded to 2 decimals without losing accuracy."""
    same, different = fr_eval.same_different_distances(encodings, labels)
    best, counts = fr_eval.best_accuracy_threshold(same, different)
    best_accuracy = counts.accuracy
    candidates = sorted({np.floor(best * 100) / 100, np.ceil(best * 100) / 100, round(best, 2)},
                        key=lambda t: abs(t - best))
    for rounded in candidates:
        if fr_eval.confusion_counts(same, different, rounded).accuracy >= best_accuracy:
            return float(rounded), same, different
    return float(best), same, different


def main():
    model = fr_utils.load_facenet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = fr_utils.encode_photos(fr_utils.list_images(fr_utils.IMAGES_DIR / "train"), model, progress=False)
    labels = [p.parent.name for p in encoded.paths]
    threshold, same, different = choose_threshold(encoded.encodings, labels)
    print(f"{len(labels)} train photos, {len(same)} same-person and {len(different)} different-person pairs")
    for t in sorted({fr_utils.SEED_THRESHOLD, threshold, fr_utils.DEFAULT_THRESHOLD}):
        print(fr_eval.confusion_counts(same, different, t))
    print(f"chosen threshold: {threshold}  (fr_utils.DEFAULT_THRESHOLD = {fr_utils.DEFAULT_THRESHOLD})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
