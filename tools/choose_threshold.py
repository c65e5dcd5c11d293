"""Choose fr_utils.DEFAULT_THRESHOLD from data, and print how it was chosen.

The threshold is the one with the best accuracy over all same-person / different-person pairs of
the celebrity *train* photos (the val photos are kept for evaluation), on a grid of 0.01 steps.
Run: `.venv/bin/python tools/choose_threshold.py`.
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import fr_eval  # noqa: E402
import fr_utils  # noqa: E402


def choose_threshold(encodings, labels, grid=np.round(np.arange(0.30, 1.80001, 0.01), 2)):
    """The threshold on a 0.01 grid with the best accuracy over all pairs (the smallest if tied).

    A grid, rather than the exact midpoint between two distances, gives a round number that a
    student can type, and does not pretend to more precision than 93 photos carry.
    """
    same, different = fr_eval.same_different_distances(encodings, labels)
    accuracies = [fr_eval.confusion_counts(same, different, t).accuracy for t in grid]
    return float(grid[int(np.argmax(accuracies))]), same, different


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
    exact, _ = fr_eval.best_accuracy_threshold(same, different)
    print(f"best exact midpoint between two distances: {exact:.4f}")
    print(f"chosen threshold: {threshold}  (fr_utils.DEFAULT_THRESHOLD = {fr_utils.DEFAULT_THRESHOLD})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
