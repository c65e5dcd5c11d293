"""LFW View 2 through the package's own pipeline: detect once, crop many ways, encode, cache.

Stages, each cached under ``benchmarks/cache/`` and keyed by the settings it depends on, so a
re-run with the same settings reads the cache and takes seconds:

1. :func:`detect_all` runs ``fr_utils.detect_faces_batch`` (MTCNN, with the package's permissive
   second pass) on every image that ``pairs.txt`` names and keeps *all* faces found: box,
   confidence and five landmarks (about 10 minutes on 2 cores). It does not depend on the crop
   settings, so every experiment re-uses it.
2. :func:`face_boxes` picks one face per image (the rule is a setting) and gives images with no
   face a fixed fallback box (see :func:`fallback_box`).
3. :func:`encode_all` crops each face with ``fr_utils.crop_face`` (optionally after levelling the
   eyes), encodes the crop and, for test-time augmentation, its mirror image; raw (un-normalised)
   encodings are cached so any way of combining them can be scored without the model. A new
   setting that crops most images as an earlier one did (e.g. another face rule) re-uses those
   rows and encodes only the rest.
"""

import json
import time

import numpy as np

from _common import CACHE_DIR, settings_key

import fr_eval  # noqa: E402  (_common puts the repository root on sys.path)

# One row per detected face: box (4), confidence (1), landmarks x (5), landmarks y (5).
FACE_ROW = 15


def lfw_pairs(lfw_dir):
    """The 6,000 pairs of ``<lfw_dir>/pairs.txt`` and the sorted unique image paths they name."""
    pairs = fr_eval.read_lfw_pairs(lfw_dir / "pairs.txt")
    paths = sorted(set(pairs.path1) | set(pairs.path2))
    return pairs, paths


def _detection_settings():
    import fr_utils
    import mtcnn

    return {
        "first_pass": fr_utils.FIRST_PASS,
        "second_pass": fr_utils.SECOND_PASS,
        "second_pass_min_side": fr_utils.SECOND_PASS_MIN_SIDE,
        "max_image_side": fr_utils.MAX_IMAGE_SIDE,
        "canvas_step": fr_utils.DETECTION_CANVAS_STEP,
        "batch": fr_utils.DETECTION_BATCH,
        "score_sort": "stable",
        "boxes": "clipped to the photo",
        "mtcnn": getattr(mtcnn, "__version__", "?"),
    }


def _face_rows(faces):
    import fr_utils

    rows = np.zeros((len(faces), FACE_ROW), np.float32)
    for k, face in enumerate(faces):
        rows[k, :4] = face.box
        rows[k, 4] = face.confidence
        for i, name in enumerate(fr_utils._KEYPOINT_NAMES):
            rows[k, 5 + i], rows[k, 10 + i] = face.keypoints[name]
    return rows


def detect_all(lfw_dir, paths, chunk=64, checkpoint_every=512, log=print):
    """All faces of every image: a list (per path) of (k, 15) float32 arrays, k >= 0.

    Cached in ``cache/lfw_detections_<key>.npz``; a partial run is checkpointed and resumed.
    """
    import fr_utils

    key = settings_key({"paths": len(paths), "first": paths[0], "last": paths[-1], **_detection_settings()})
    cache = CACHE_DIR / f"lfw_detections_{key}.npz"
    done = {}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            stored_paths, offsets, rows = data["paths"].tolist(), data["offsets"], data["rows"]
        done = {p: rows[offsets[i]:offsets[i + 1]] for i, p in enumerate(stored_paths)}
        if all(p in done for p in paths):
            return [done[p] for p in paths]
        log(f"resuming LFW detection: {len(done)}/{len(paths)} images cached")

    def save():
        stored = [p for p in paths if p in done]
        offsets = np.cumsum([0] + [len(done[p]) for p in stored])
        rows = np.concatenate([done[p] for p in stored]) if stored else np.zeros((0, FACE_ROW), np.float32)
        CACHE_DIR.mkdir(exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, paths=np.array(stored, dtype=str), offsets=offsets, rows=rows)
        tmp.replace(cache)

    todo = [p for p in paths if p not in done]
    start, since_save = time.perf_counter(), 0
    for i in range(0, len(todo), chunk):
        batch = todo[i:i + chunk]
        images = [fr_utils.load_image(lfw_dir / "images" / p) for p in batch]
        for path, faces in zip(batch, fr_utils.detect_faces_batch(images)):
            done[path] = _face_rows(faces)
        since_save += len(batch)
        if since_save >= checkpoint_every or i + chunk >= len(todo):
            save()
            since_save = 0
            rate = (i + len(batch)) / (time.perf_counter() - start)
            log(f"  detected {len(done)}/{len(paths)} images ({rate:.1f} img/s)")
    return [done[p] for p in paths]


# ---------------------------------------------------------------------------------------------
# Choosing one face per image
# ---------------------------------------------------------------------------------------------
def pick_face(rows, image_shape, rule):
    """Index of "the" face among an image's detections, or None when there is none.

    Rules:
        ``package``: the package's rule, :func:`fr_utils.face_rank` (the largest of the faces with
            confidence >= ``fr_utils.CONFIDENT_FACE``, else the largest).
        ``central``: the largest face after discounting its centre's distance from the image
            centre; LFW images are cropped around the named person, so a bystander's larger face
            near the border loses to the central one. Score: area - 4 * squared offset (both in
            pixels^2; a 100-pixel face 25 pixels off centre scores as a 90-pixel one on centre).
    """
    if len(rows) == 0:
        return None
    if rule == "package":
        import fr_utils

        faces = [fr_utils.Face(box=tuple(row[:4]), confidence=float(row[4])) for row in rows]
        return min(range(len(faces)), key=lambda k: fr_utils.face_rank(faces[k]))
    if rule != "central":
        raise ValueError(f"unknown face rule {rule!r}")
    h, w = image_shape[:2]
    x1, y1, x2, y2 = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    area = (x2 - x1) * (y2 - y1)
    offset = ((x1 + x2) / 2 - w / 2) ** 2 + ((y1 + y2) / 2 - h / 2) ** 2
    return int(np.argmax(area - 4.0 * offset))


def fallback_box(chosen_rows):
    """The box used for images with no detected face: the median of all chosen boxes.

    LFW (deep-funneled) centres and scales every face alike, so where MTCNN finds nothing the
    face is almost surely in the usual place; the median box is that place, measured on the data
    instead of guessed. The number of such images is reported with the results.
    """
    boxes = np.array([r[:4] for r in chosen_rows if r is not None])
    return np.median(boxes, axis=0)


def face_boxes(detections, image_shape, rule):
    """One (15,) row per image (the chosen face, or the fallback box with NaN landmarks) and a
    boolean array marking the images that used the fallback."""
    chosen = []
    for rows in detections:
        k = pick_face(rows, image_shape, rule)
        chosen.append(None if k is None else rows[k])
    fallback = np.full(FACE_ROW, np.nan, np.float32)
    fallback[:4] = fallback_box(chosen)
    missing = np.array([c is None for c in chosen])
    return np.stack([fallback if c is None else c for c in chosen]), missing


# ---------------------------------------------------------------------------------------------
# Cropping and encoding
# ---------------------------------------------------------------------------------------------
def row_to_face(row):
    """A cached (15,) detection row as an ``fr_utils.Face`` (box, confidence, five landmarks)."""
    import fr_utils

    keypoints = {name: (float(row[5 + i]), float(row[10 + i])) for i, name in enumerate(fr_utils._KEYPOINT_NAMES)}
    return fr_utils.Face(box=tuple(float(v) for v in row[:4]), confidence=float(row[4]), keypoints=keypoints)


def crop_all(lfw_dir, paths, rows, margin, align="none", chunk=256):
    """Yield (start, crops) chunks of 160x160 uint8 crops, one per path, in order."""
    import fr_utils

    for start in range(0, len(paths), chunk):
        crops = []
        for path, row in zip(paths[start:start + chunk], rows[start:start + chunk]):
            image = fr_utils.load_image(lfw_dir / "images" / path)
            # The package's own crop (and eye levelling, fr_utils.level_eyes, for align="eyes").
            crops.append(fr_utils.crop_face(image, row_to_face(row), margin, align=align))
        yield start, np.stack(crops)


def encode_all(lfw_dir, paths, rows, settings, get_encoder, log=print):
    """Raw (not normalised) encodings of every crop and of its mirror image, cached.

    Arguments:
        settings: dict with ``margin``, ``align``, ``rule`` and ``encoder`` (a name for the
            encoder, part of the cache key) -- whatever the crops and encodings depend on.
        get_encoder: called (only when the cache misses) to get the encoder, a function
            (m, 160, 160, 3) uint8 crops -> (m, 128) raw float32 encodings.

    Returns:
        (plain, mirrored): two (n, 128) float32 arrays.
    """
    import fr_utils

    key = settings_key({"paths": len(paths), "boxes": float(np.nansum(rows[:, :4])),
                        "weights": fr_utils.FACENET_SHA256[:16], **settings})
    cache = CACHE_DIR / f"lfw_encodings_{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return data["plain"], data["mirrored"]
    boxes = rows[:, :4].astype(np.float32)
    plain = np.zeros((len(paths), 128), np.float32)
    mirrored = np.zeros((len(paths), 128), np.float32)
    # Another setting with the same crop parameters (e.g. another face rule) already encoded most
    # of these boxes: copy those rows, encode only the rest.
    done = _reuse_encodings(settings, paths, boxes, plain, mirrored)
    todo = np.flatnonzero(~done)
    if len(todo):
        log(f"  encoding {len(todo)} of {len(paths)} images and their mirrors ({int(done.sum())} re-used) {settings}")
        encoder = get_encoder()
        start_time = time.perf_counter()
        todo_paths = [paths[i] for i in todo]
        for start, crops in crop_all(lfw_dir, todo_paths, rows[todo], settings["margin"], settings["align"]):
            where = todo[start:start + len(crops)]
            plain[where] = encoder(crops)
            mirrored[where] = encoder(crops[:, :, ::-1])
            count = start + len(crops)
            if count % 2048 < 256 or count == len(todo):
                log(f"  encoded {count}/{len(todo)} ({count / (time.perf_counter() - start_time):.1f} img/s)")
    CACHE_DIR.mkdir(exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, plain=plain, mirrored=mirrored, boxes=boxes, paths=np.array(paths, dtype=str),
             settings=np.array(json.dumps(settings, sort_keys=True)))
    tmp.replace(cache)
    return plain, mirrored


def _reuse_encodings(settings, paths, boxes, plain, mirrored):
    """Fill rows from cached encodings of identical crops; returns a boolean mask of rows filled."""
    same_crop = {k: v for k, v in settings.items() if k != "rule"}
    filled = np.zeros(len(paths), bool)
    for other in sorted(CACHE_DIR.glob("lfw_encodings_*.npz")):
        if other.name.endswith(".tmp.npz"):
            continue
        with np.load(other, allow_pickle=False) as data:
            if "boxes" not in data.files or "paths" not in data.files:
                continue
            other_settings = json.loads(str(data["settings"]))
            if {k: v for k, v in other_settings.items() if k != "rule"} != same_crop:
                continue
            if data["paths"].tolist() != list(paths):
                continue
            match = ~filled & np.all(np.abs(data["boxes"] - boxes) < 1e-3, axis=1)
            plain[match] = data["plain"][match]
            mirrored[match] = data["mirrored"][match]
            filled |= match
    return filled


def combine(plain, mirrored, tta):
    """Unit encodings from the raw ones: ``none`` (plain only), ``flip`` (mean of the plain and
    mirrored unit encodings, renormalised) or ``flip_raw`` (sum of the raw encodings, normalised)."""
    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    if tta == "none":
        return unit(plain)
    if tta == "flip":
        return unit(unit(plain) + unit(mirrored))
    if tta == "flip_raw":
        return unit(plain + mirrored)
    raise ValueError(f"unknown test-time augmentation {tta!r}")
