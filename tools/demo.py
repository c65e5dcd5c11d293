"""`make run`: one-shot face verification and recognition on the bundled celebrity photos.

Enrols the first train photo of each person (one photo per person), then, for every val photo,
asks who_is_it (1:K) and verifies the true identity (1:1), and prints a table and the accuracy.
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import fr_utils  # noqa: E402


def enrolment_photos(images_dir=fr_utils.IMAGES_DIR):
    """``{person: first train photo}`` (sorted names, so every run enrols the same photos)."""
    photos = {}
    for path in fr_utils.list_images(Path(images_dir) / "train"):
        photos.setdefault(path.parent.name, path)
    return photos


def evaluate(database, model, photos, threshold=None):
    """Identify and verify each photo; returns a DataFrame with one row per photo."""
    threshold = fr_utils.DEFAULT_THRESHOLD if threshold is None else threshold
    names = sorted(database)
    matrix = np.concatenate([database[n] for n in names])
    encoded = fr_utils.encode_photos(photos, model, progress=False)
    rows = []
    for path, encoding in zip(encoded.paths, encoded.encodings):
        distances = np.linalg.norm(matrix - encoding, axis=1)
        best = int(np.argmin(distances))
        truth = path.parent.name
        identified = names[best] if distances[best] < threshold else "(unknown)"
        rows.append({
            "photo": path.name,
            "truth": truth,
            "prediction": identified,
            "distance": round(float(distances[best]), 3),
            "decision": "accept" if distances[best] < threshold else "reject",
            "verified": bool(distances[names.index(truth)] < threshold) if truth in names else False,
        })
    return pd.DataFrame(rows)


def main():
    model = fr_utils.load_facenet()
    enrol = enrolment_photos()
    print(f"Enrolling one photo per person: {', '.join(f'{n} ({p.name})' for n, p in enrol.items())}")
    database = fr_utils.build_database(enrol, model)
    val_photos = fr_utils.list_images(fr_utils.IMAGES_DIR / "val")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # several faces in a photo: the largest is used, as documented
        table = evaluate(database, model, val_photos)
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(table.to_string(index=False))
    identified = (table.prediction == table.truth).mean()
    verified = table.verified.mean()
    print(f"\nthreshold {fr_utils.DEFAULT_THRESHOLD} (L2 distance between unit encodings)")
    print(f"who_is_it accuracy: {identified:.3f} ({(table.prediction == table.truth).sum()}/{len(table)})")
    print(f"verify (true claim accepted): {verified:.3f} ({table.verified.sum()}/{len(table)})")
    return 0 if len(table) == len(val_photos) else 1


if __name__ == "__main__":
    sys.exit(main())
