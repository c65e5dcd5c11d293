"""From a photo to a FaceNet encoding, and from encodings to decisions.

The pipeline, one small function a step:

1. :func:`load_image` reads any common photo (EXIF orientation applied; grey, RGBA, palette,
   16-bit, CMYK all become 8-bit RGB) and refuses what is not an image, clearly.
2. :func:`detect_faces` finds faces with MTCNN (Zhang et al. 2016): boxes, confidences and five
   landmarks. :func:`crop_face` cuts the box out with a margin and resizes it to 160x160.
3. :func:`prewhiten` standardises each crop (zero mean, unit variance), the input the pretrained
   FaceNet weights were trained with.
4. :func:`encode_faces` runs the Inception-ResNet-v1 of ``inception_blocks_v2`` and scales each
   128-D encoding to unit length, so L2 distances lie between 0 and 2.
5. A database is a plain ``dict`` name -> (1, 128) encoding, one photo per person (one-shot).
   :func:`verify` answers "is this the claimed person?" (1:1) and :func:`who_is_it` "who is this?"
   (1:K) by comparing L2 distances with a threshold.
"""

import contextlib
import difflib
import hashlib
import io
import math
import os
import re
import stat
import sys
import tempfile
import unicodedata
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "keras-facenet-h5"
DEFAULT_WEIGHTS_PATH = WEIGHTS_DIR / "facenet_keras.h5"
IMAGES_DIR = HERE / "images"
FACENET_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"

FACE_SIZE = 160  # the pretrained model's input side, in pixels
EMBEDDING_SIZE = 128
MARGIN = 0.1  # fraction of the box's width/height added around the face before cropping

# Decision threshold on the L2 distance between unit-length encodings: "same person" when the
# distance is strictly below it. Chosen from data by `python tools/choose_threshold.py`: on a grid
# of 0.01 steps, the threshold with the best accuracy over all same/different pairs of the
# celebrity *train* photos (93 photos, 839 same and 3439 different pairs: accuracy 0.9815,
# TAR 0.925, FAR 0.005). On LFW the best threshold is about 1.11 (benchmarks/results.md).
# The seed's 0.7 was made for pre-cropped 96-px faces; here it accepts only 24% of same pairs.
DEFAULT_THRESHOLD = 1.18
SEED_THRESHOLD = 0.7

# Photos are downscaled before detection so that a 40-megapixel camera photo takes seconds, not
# minutes; a face that fills less than 1/60 of such a photo's long side is not worth finding.
MAX_IMAGE_SIDE = 1600
MIN_IMAGE_SIDE = 12  # MTCNN's smallest window
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
# The only formats Pillow may try: photo formats. The others it knows (EPS, which runs Ghostscript,
# PSD, FITS, WMF, ...) are never photos of a face and only widen what a hostile file can reach.
Image.init()
IMAGE_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF", "PPM") if f in Image.OPEN)

# Detection settings. The defaults of the mtcnn package are 0.6/0.7/0.8; a face partly hidden
# (sunglasses, a microphone) can score just under them, so a photo with no face at the first pass
# gets a second, more permissive pass (lower thresholds, smaller faces, photo upscaled if small).
FIRST_PASS = dict(min_face_size=20, threshold_pnet=0.6, threshold_rnet=0.7, threshold_onet=0.8)
SECOND_PASS = dict(min_face_size=12, threshold_pnet=0.5, threshold_rnet=0.6, threshold_onet=0.7)
SECOND_PASS_MIN_SIDE = 400  # a smaller photo is upscaled to this before the second pass
# The permissive pass also finds "faces" in hands, hair and fabric: in 262 face-free strips cut
# from the demo photos it found 8, each under 0.9 confidence or under 20 pixels wide (and one real
# profile face in a background, 0.96 and 32 pixels). So its faces are kept only if confident, at
# least as large as the first pass's smallest face (in the photo's own pixels) and shaped like a
# face (landmarks inside the box, eyes above the mouth). The first pass is left as MTCNN's defaults.
SECOND_PASS_MIN_CONFIDENCE = 0.9
MIN_FACE_PIXELS = FIRST_PASS["min_face_size"]


# ---------------------------------------------------------------------------------------------
# Errors: each says which file or identity, what went wrong and what to do.
# ---------------------------------------------------------------------------------------------
class FaceRecognitionError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageLoadError(FaceRecognitionError, OSError):
    """A file could not be read as a photo."""


class ImageTooLargeError(ImageLoadError):
    """The image declares more pixels than Pillow's decompression-bomb limit."""


class NoFaceError(FaceRecognitionError, ValueError):
    """No face was found in a photo."""


class DatabaseError(FaceRecognitionError, ValueError):
    """A database entry (name or encoding) is invalid, or an identity is unknown."""


class DatabaseFileError(FaceRecognitionError, OSError):
    """A database file could not be saved or loaded."""


class WeightsError(FaceRecognitionError, OSError):
    """The FaceNet weights file is missing, damaged or not the expected one."""


class EncoderInputError(FaceRecognitionError, ValueError):
    """An array given to the detector or the encoder has the wrong shape, type or values (or the
    model is not a Keras model)."""


class ThresholdError(FaceRecognitionError, ValueError):
    """A decision threshold that is not a usable L2 distance between unit vectors."""


def _shown(path):
    """A path as the user gave it (relative stays relative), for error messages that read the same
    on every machine."""
    return os.fspath(path)


# ---------------------------------------------------------------------------------------------
# TensorFlow start-up
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _stderr_filtered(drop=re.compile(rb"^(I0000|WARNING: All log messages before absl)")):
    """Run a block with file descriptor 2 captured, then replay all but the dropped lines.

    TensorFlow's C++ start-up prints absl INFO lines straight to fd 2 before any logging setting
    is read (TF_CPP_MIN_LOG_LEVEL does not reach them). Jupyter shows fd 2 in the notebook, so
    they are filtered here at their source; every other line (a real error) is kept.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not drop.match(line)]
            if kept:
                sys.stderr.write(b"".join(kept).decode(errors="replace"))


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_filtered():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    return tf


tf = _import_tensorflow()
import inception_blocks_v2  # noqa: E402  (needs TensorFlow imported quietly first)
import keras  # noqa: E402
from inception_blocks_v2 import WeightsMismatchError  # noqa: E402,F401


class WrongWeightsError(WeightsError, WeightsMismatchError):
    """The weights file holds another architecture (layer names or shapes differ).

    Both a :class:`WeightsError` (so ``except FaceRecognitionError`` catches it) and the
    architecture's own :class:`inception_blocks_v2.WeightsMismatchError`.
    """


# ---------------------------------------------------------------------------------------------
# 1. Images
# ---------------------------------------------------------------------------------------------
def list_images(folder):
    """Sorted paths of the image files under ``folder`` (recursively), for deterministic order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(f"{folder}: no such folder of photos. Run `make assets` to fetch the demo photos.")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _to_rgb(img):
    """Convert any Pillow mode to 8-bit RGB: alpha over white, 16-bit scaled, CMYK converted."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale: Pillow's convert() would clip at 255 and return a white image.
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = values.min(), values.max()
        grey = ((values - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(values)).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


# Pillow's decompression-bomb limit (about 89 million pixels, 0.25 GiB of RGB). It stays in force
# here even if Image.MAX_IMAGE_PIXELS is set to None; a larger value set there is respected.
PIXEL_LIMIT = Image.MAX_IMAGE_PIXELS or 89_478_485


def _pixel_limit():
    return Image.MAX_IMAGE_PIXELS or PIXEL_LIMIT


def _too_large(shown, pixels, limit, size=None):
    side = int(math.sqrt(limit))
    declared = f"{size[0]}x{size[1]} pixels" if size else (f"{pixels:,} pixels" if pixels else "its size")
    return ImageTooLargeError(
        f"{shown}: {declared} is more than the {limit:,}-pixel safety limit for images (a "
        f"decompression bomb, or a huge scan); it was refused before decoding. Resize the photo below "
        f"{side:,}x{side:,} pixels and try again."
    )


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")


def _what_it_is(head):
    """A short description of a file Pillow cannot identify, from its first bytes."""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "an HEIC/HEIF/AVIF photo (the iPhone format), which cannot be read here. Export it as JPEG"
    if head.startswith(b"%PDF"):
        return "a PDF document, not a photo. Export the page as a JPEG or PNG"
    printable = sum(32 <= b < 127 or b in b"\t\n\r" for b in head)
    if b"\x00" not in head and printable >= 0.95 * len(head):
        return "a text file, not a photo. Pass the path of a JPEG or PNG photo"
    return "not an image format that can be read (damaged, or not a photo at all). Use a JPEG or PNG photo"


def load_image(path, max_side=MAX_IMAGE_SIDE):
    """Read a photo as an (H, W, 3) uint8 RGB array, upright, at most ``max_side`` on its long side.

    Raises:
        ImageLoadError: the path is missing, a folder, empty, not an image, truncated or too small.
        ImageTooLargeError: the header declares more pixels than Pillow's bomb limit (refused
            before decoding).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ImageLoadError(
            f"load_image takes the path of a photo (a str or Path), got a {type(path).__name__}. "
            "To find faces in an image array you already have, call detect_faces(array)."
        )
    shown = _shown(path)
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageLoadError(
            f"{shown}: no such file. Check the spelling and the folder (relative paths start in the current "
            "folder, the notebook's folder in Jupyter); run `make assets` if the demo photos are missing."
        ) from None
    except (OSError, ValueError) as exc:  # permission denied on a folder, a NUL in the name, ...
        raise ImageLoadError(f"{shown}: cannot be read ({getattr(exc, 'strerror', None) or exc}). "
                             "Check the path and its permissions.") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(f"{shown}: is a folder, not a photo. Pass one image file, or use list_images(folder).")
    if not stat.S_ISREG(info.st_mode):
        raise ImageLoadError(f"{shown}: is not a regular file (a device, pipe or socket). Pass a photo file.")
    if info.st_size == 0:
        raise ImageLoadError(f"{shown}: the file is empty (0 bytes). Copy the photo again.")
    return _decode(path, shown, max_side)


def image_from_bytes(data, name="upload", max_side=MAX_IMAGE_SIDE):
    """Decode a photo held in memory (an upload, never written to disk) exactly as
    :func:`load_image` decodes a file; ``name`` is the file name used in error messages.

    Raises:
        ImageLoadError, ImageTooLargeError: as :func:`load_image`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageLoadError(f"{name}: image_from_bytes takes the bytes of a photo, got a {type(data).__name__}.")
    if not len(data):
        raise ImageLoadError(f"{name}: the file is empty (0 bytes). Choose the photo again.")
    return _decode(io.BytesIO(bytes(data)), name, max_side)


def _decode(source, shown, max_side):
    """Decode a path or a binary stream with Pillow, every failure turned into one sentence."""
    limit = _pixel_limit()
    try:
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice it (and raises above): the check below refuses
            # all of them, with the size in the message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=IMAGE_FORMATS) as img:
                width, height = img.size
                if width * height > limit:
                    raise _too_large(shown, width * height, limit, (width, height))
                if min(width, height) < MIN_IMAGE_SIDE:
                    raise ImageLoadError(
                        f"{shown}: {width}x{height} pixels is too small to hold a face "
                        f"(at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} needed). Use a larger photo."
                    )
                # JPEG can decode straight at 1/2, 1/4 or 1/8 size: large photos load fast.
                img.draft("RGB", (max_side, max_side))
                img.load()
                img = _upright(img, shown)
                if max(img.size) > max_side:
                    if img.mode == "P":  # resample colours, not palette indices
                        img = img.convert("RGBA")
                    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                return _to_rgb(img)
    except FaceRecognitionError:
        raise
    except Image.DecompressionBombError as exc:
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(shown, int(declared.group(1)) if declared else None, limit) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{shown}: {_what_it_is(_head(source))}.") from exc
    except PermissionError as exc:
        raise ImageLoadError(f"{shown}: permission denied. Copy the photo somewhere you can read it.") from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{shown}: not enough memory to decode this image. Resize the photo and try again.") from exc
    except Exception as exc:  # noqa: BLE001
        # A damaged file makes Pillow's parsers fail with many exception types (OSError, ValueError,
        # SyntaxError, struct.error, zlib.error, MemoryError, ...): all mean the same to a user.
        raise ImageLoadError(
            f"{shown}: the image is damaged or truncated and cannot be decoded ({exc.__class__.__name__}: "
            f"{exc}). Copy or export the photo again."
        ) from exc


def _head(source, size=512):
    """The first bytes of a path or a BytesIO (to say what an unreadable file is)."""
    if isinstance(source, io.BytesIO):
        return source.getvalue()[:size]
    with open(source, "rb") as f:
        return f.read(size)


def _upright(img, shown):
    """Apply the EXIF orientation tag (cameras and phones store photos sideways and set it)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001  (damaged EXIF must not make a good photo unusable)
        warnings.warn(f"{shown}: unreadable EXIF orientation ({exc.__class__.__name__}); using the photo as "
                      "stored.", stacklevel=3)
        return img


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated photo is an error, not a grey half


# ---------------------------------------------------------------------------------------------
# 2. Detection and cropping
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Face:
    """One detected face: box (x1, y1, x2, y2) in pixels of the loaded image, MTCNN confidence,
    and the five landmarks (left_eye, right_eye, nose, mouth_left, mouth_right) as (x, y)."""

    box: tuple
    confidence: float
    keypoints: dict = field(default_factory=dict)

    @property
    def area(self):
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


_DETECTOR = None


def _stable_sort_by_scores(tensor, scores, ascending=True):
    """mtcnn's ``sort_by_scores`` with a stable sort (see :func:`get_detector`)."""
    order = np.argsort(scores if ascending else -np.asarray(scores), kind="stable")
    return tensor[order]


def get_detector():
    """The shared MTCNN detector (its three small networks load once, in about a second)."""
    global _DETECTOR
    if _DETECTOR is None:
        import mtcnn.utils.bboxes
        from mtcnn import MTCNN

        # mtcnn 1.0.0 orders candidate boxes by score with numpy's default (unstable) sort before
        # its order-dependent non-maximum suppression. Many scores are exactly 1.0, so which box
        # survived depended on the other photos in the same call: one photo's box moved by up to
        # 6 px, its encoding by up to 0.18, between detecting it alone and among 15 others. A
        # stable sort keeps each photo's own order among ties, whatever else is in the batch.
        mtcnn.utils.bboxes.sort_by_scores = _stable_sort_by_scores
        with _stderr_filtered():
            _DETECTOR = MTCNN(device="CPU:0")
    return _DETECTOR


_KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _faces_from_rows(rows, scale=1.0):
    faces = []
    for row in rows:
        box = tuple(float(v) / scale for v in row[1:5])
        # mtcnn's numpy rows: id, x1, y1, x2, y2, confidence, five landmark x's, five landmark y's.
        keypoints = {name: (float(row[6 + i]) / scale, float(row[11 + i]) / scale)
                     for i, name in enumerate(_KEYPOINT_NAMES)}
        faces.append(Face(box=box, confidence=float(row[5]), keypoints=keypoints))
    return sorted(faces, key=face_rank)


# MTCNN also returns less certain boxes (ONet scores 0.8-0.95): on the demo photos mostly real small
# or blurred faces in the background, but also a jacket's shoulder (0.88) that was larger than the
# singer's face (0.99). A face this confident or more is preferred to any less confident one.
CONFIDENT_FACE = 0.95


def face_rank(face):
    """Sort key giving "the face" of a photo first: confident faces (>= ``CONFIDENT_FACE``) before
    the others, then the largest, then the most confident."""
    return (face.confidence < CONFIDENT_FACE, -face.area, -face.confidence)


def _run_mtcnn(images, settings):
    """MTCNN on a list of same-shape images; returns one (k, 16) array of rows per image."""
    rows = get_detector().detect_faces(list(images), output_type="numpy", box_format="xyxy", **settings)
    rows = np.asarray(rows).reshape(-1, 16)
    return [rows[rows[:, 0] == i] for i in range(len(images))]


def _resize(image, scale):
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def _plausible(face):
    """Is a face from the permissive second pass believable? (see SECOND_PASS_MIN_CONFIDENCE)"""
    x1, y1, x2, y2 = face.box
    if face.confidence < SECOND_PASS_MIN_CONFIDENCE or min(x2 - x1, y2 - y1) < MIN_FACE_PIXELS:
        return False
    points = face.keypoints
    inside = all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in points.values())
    eyes_y = max(points["left_eye"][1], points["right_eye"][1])
    return inside and eyes_y < min(points["mouth_left"][1], points["mouth_right"][1])


def _check_rgb(image):
    """Refuse, clearly, an array the detector cannot take (MTCNN fails deep inside otherwise)."""
    if not isinstance(image, np.ndarray):
        raise EncoderInputError(f"the detector takes an image array or a photo path, got a {type(image).__name__}.")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise EncoderInputError(
            f"the detector takes an (H, W, 3) uint8 RGB array, got shape {image.shape} and dtype {image.dtype}. "
            "Read photos with load_image(path), which returns exactly that."
        )
    return image


DETECTION_BATCH = 16  # photos per MTCNN call
DETECTION_CANVAS_STEP = 64  # photos are padded to a multiple of this many pixels before detection


def _detection_canvas(shape, step=DETECTION_CANVAS_STEP):
    """The (height, width) a photo is padded to for MTCNN: each side rounded up to ``step``."""
    return -(-shape[0] // step) * step, -(-shape[1] // step) * step


def _padded_batches(images, indices, batch=DETECTION_BATCH):
    """Group photos into MTCNN calls: yield (indices, canvases), one canvas shape per call.

    MTCNN runs on one array per call, so a call can only take photos of one shape, and each call
    has a fixed cost. Each photo is zero-padded (bottom and right, so that boxes keep the photo's
    own coordinates) to its sides rounded up to 64 pixels: the 118 demo photos have 80 distinct
    shapes but 10 padded ones, which took 2.3x less detection time (benchmarks/bench_enrol.py).
    The canvas depends only on the photo's own shape, so a photo gets the same faces whether it
    is detected alone or among others.
    """
    by_canvas = {}
    for i in indices:
        by_canvas.setdefault(_detection_canvas(images[i].shape), []).append(i)
    for (height, width), members in sorted(by_canvas.items()):
        for start in range(0, len(members), batch):
            group = members[start:start + batch]
            canvases = []
            for i in group:
                h, w = images[i].shape[:2]
                if (h, w) == (height, width):
                    canvases.append(images[i])
                else:
                    canvas = np.zeros((height, width, 3), np.uint8)
                    canvas[:h, :w] = images[i]
                    canvases.append(canvas)
            yield group, canvases


def detect_faces_batch(images, settings=None):
    """Detect faces in many RGB arrays at once; returns a list (per image) of lists of :class:`Face`,
    "the face" first (:func:`face_rank`).

    Photos go through MTCNN 16 at a time, padded to sides that are multiples of 64 pixels (see
    :func:`_padded_batches`). A photo with no face at the first pass gets the second, more
    permissive pass on its own, upscaled when small, whose faces must look plausible.
    """
    images = [_check_rgb(image) for image in images]
    results = [[] for _ in images]
    # Smaller than MTCNN's smallest window: no face, nothing to run.
    usable = [i for i, image in enumerate(images) if min(image.shape[:2]) >= MIN_IMAGE_SIDE]
    for group, canvases in _padded_batches(images, usable):
        for index, rows in zip(group, _run_mtcnn(canvases, settings or FIRST_PASS)):
            h, w = images[index].shape[:2]
            # A box that starts inside the padding is not a face of this photo; the others are
            # clipped to the photo, as MTCNN clips them to the array it is given.
            rows = rows[(rows[:, 1] < w) & (rows[:, 2] < h)].copy()
            rows[:, [1, 3]] = np.clip(rows[:, [1, 3]], 0, w)
            rows[:, [2, 4]] = np.clip(rows[:, [2, 4]], 0, h)
            results[index] = _faces_from_rows(rows)
    if settings is None:
        for index in usable:
            if not results[index]:
                image = images[index]
                scale = max(1.0, SECOND_PASS_MIN_SIDE / min(image.shape[:2]))
                rows = _run_mtcnn([_resize(image, scale)], SECOND_PASS)[0]
                results[index] = [face for face in _faces_from_rows(rows, scale) if _plausible(face)]
    return results


def detect_faces(image, settings=None):
    """Detect the faces in one RGB array (or photo path), "the face" first (see :func:`face_rank`):
    confident faces largest first, then the less confident ones. See :func:`detect_faces_batch`."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    return detect_faces_batch([image], settings)[0]


def level_eyes(image, face):
    """Rotate ``image`` about the centre of ``face``'s box so that its two eye landmarks are level.

    The box is kept as it is (a small rotation hardly moves the face within it). Returns a new
    array; a face without landmarks (a plain box) leaves the image unchanged.
    """
    points = face.keypoints if isinstance(face, Face) else {}
    if "left_eye" not in points or "right_eye" not in points:
        return image
    (lx, ly), (rx, ry) = points["left_eye"], points["right_eye"]
    if not all(np.isfinite((lx, ly, rx, ry))):
        return image
    angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    x1, y1, x2, y2 = face.box
    # Image y points down, so a positive angle means the right eye is lower; PIL's positive angle
    # turns the picture anticlockwise on screen, which lifts that eye back.
    rotated = Image.fromarray(image).rotate(angle, resample=Image.Resampling.BILINEAR,
                                            center=((x1 + x2) / 2, (y1 + y2) / 2))
    return np.asarray(rotated)


ALIGNMENTS = ("none", "eyes")


def crop_face(image, face, margin=MARGIN, size=FACE_SIZE, align="none"):
    """Cut a face out of an RGB array with ``margin`` of its box added on each side, resized to
    ``size`` x ``size`` (uint8). The box is clipped to the photo, as in FaceNet's own alignment.

    ``align="eyes"`` first levels the eyes (:func:`level_eyes`). On LFW that, together with
    ``encode_faces(..., flip=True)``, scored best (benchmarks/results.md); neither alone helped.
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    if align == "eyes":
        image = level_eyes(image, face)
    x1, y1, x2, y2 = face.box if isinstance(face, Face) else face
    dx, dy = (x2 - x1) * margin / 2, (y2 - y1) * margin / 2
    h, w = image.shape[:2]
    left, top = max(0, int(round(x1 - dx))), max(0, int(round(y1 - dy)))
    right, bottom = min(w, int(round(x2 + dx))), min(h, int(round(y2 + dy)))
    if right - left < 2 or bottom - top < 2:
        raise NoFaceError(f"face box {tuple(round(v) for v in (x1, y1, x2, y2))} lies outside the {w}x{h} photo")
    crop = Image.fromarray(image[top:bottom, left:right])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _pick_faces(faces, path, all_faces):
    if not faces:
        raise NoFaceError(
            f"{path}: no face found. Use a photo where the face is clearly visible, frontal and at least "
            "about 40 pixels wide."
        )
    if all_faces:
        return faces
    # Several confident faces make "whose face?" a real question; a confident face beside a few
    # less certain boxes (often not faces) does not.
    confident = sum(face.confidence >= CONFIDENT_FACE for face in faces) or len(faces)
    if confident > 1:
        warnings.warn(
            f"{path}: {confident} faces found; using the largest confident one. Pass all_faces=True to get "
            "all of them.",
            stacklevel=3,
        )
    return faces[:1]


def load_faces(image_path, all_faces=False, margin=MARGIN):
    """Load a photo, detect its face(s) and return ``(crops, faces, image)``.

    ``crops`` is an (n, 160, 160, 3) uint8 array; n is 1 (the largest face, with a warning when
    there are several) unless ``all_faces`` is true.
    """
    image = load_image(image_path)
    faces = _pick_faces(detect_faces(image), image_path, all_faces)
    crops = np.stack([crop_face(image, face, margin) for face in faces])
    return crops, faces, image


# ---------------------------------------------------------------------------------------------
# 3-4. Encoding
# ---------------------------------------------------------------------------------------------
def prewhiten(faces):
    """Standardise each image to zero mean and unit variance (per image, over all its pixels).

    The standard deviation is floored at 1/sqrt(number of values), so a flat image does not
    divide by zero (the same rule as ``tf.image.per_image_standardization``).
    """
    x = np.asarray(faces, dtype=np.float32)
    axes = tuple(range(x.ndim - 3, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    floor = 1.0 / math.sqrt(np.prod(x.shape[-3:]))
    return (x - mean) / np.maximum(std, floor)


def l2_normalize(encodings, epsilon=1e-10):
    """Scale each row to unit length."""
    encodings = np.asarray(encodings, dtype=np.float32)
    norms = np.linalg.norm(encodings, axis=-1, keepdims=True)
    return encodings / np.maximum(norms, epsilon)


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_weights_file(path, shown):
    """Open the ``.h5`` file before the 4-second model build: a missing, truncated or foreign file
    fails here at once."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if not len(group.keys()):
                raise WrongWeightsError(f"{shown}: the file holds no weights. Is it facenet_keras.h5?")
    except FaceRecognitionError:
        raise
    except Exception as exc:  # noqa: BLE001  (h5py reports damage as OSError, KeyError, RuntimeError, ...)
        raise WeightsError(
            f"{shown}: not a readable HDF5 weights file ({exc.__class__.__name__}: {exc}). It may be truncated "
            "or another kind of file: delete it and run `make assets` again."
        ) from exc


PRECISIONS = ("float32", "bfloat16")


def load_facenet(path=None, expected_sha256=None, precision="float32"):
    """Build FaceNet's Inception-ResNet-v1 and load the pretrained weights.

    Arguments:
        path: the ``.h5`` weights file. Default: ``keras-facenet-h5/facenet_keras.h5`` (fetched by
            ``make assets``), whose sha256 is then checked. Another file can be passed, e.g. a
            fine-tuned copy; then no checksum is checked unless ``expected_sha256`` is given.
        precision: "float32" (default) or "bfloat16": the layers compute in bfloat16 (Keras'
            ``mixed_bfloat16``; weights stay float32). On a CPU with AMX or AVX512-BF16 that
            encodes about 1.5x faster at batch 32 with LFW accuracy within 0.001 of float32
            (benchmarks/results.md); elsewhere it is slower. Encodings differ from float32 by
            about 1e-2, so keep one precision for a database and its queries.

    Raises:
        WeightsError: missing, truncated, not HDF5, or checksum mismatch.
        WrongWeightsError: the file holds another architecture (layer names or shapes differ); it is
            a WeightsError and an ``inception_blocks_v2.WeightsMismatchError``.
    """
    if path is None:
        path, expected_sha256 = DEFAULT_WEIGHTS_PATH, expected_sha256 or FACENET_SHA256
    shown = _shown(path)
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"{shown}: FaceNet weights not found. Run `make assets` to download them, or pass "
            "path= to a facenet_keras.h5 of your own."
        )
    if expected_sha256 and sha256_of(path) != expected_sha256:
        raise WeightsError(
            f"{shown}: checksum mismatch (the file is damaged or not the expected weights). "
            "Delete it and run `make assets` again."
        )
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    _check_weights_file(path, shown)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        model = inception_blocks_v2.faceRecoModel((FACE_SIZE, FACE_SIZE, 3))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    try:
        inception_blocks_v2.load_weights_from_h5(model, path)
    except WeightsMismatchError as exc:
        raise WrongWeightsError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(
            f"{shown}: cannot read the weights ({exc.__class__.__name__}: {exc}). The file may be damaged: "
            "delete it and run `make assets` again."
        ) from exc
    return model


def _check_faces(faces, model):
    """Faces as an (m, 160, 160, 3) numeric, finite array; refuse anything else in one sentence."""
    if not callable(model) or not hasattr(model, "input_shape"):
        raise EncoderInputError(f"model must be the Keras model from load_facenet(), got a {type(model).__name__}.")
    expected = tuple(model.input_shape[1:])
    wanted = f"(m, {', '.join(map(str, expected))})"
    try:
        faces = np.asarray(faces)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise EncoderInputError(f"the encoder takes an array of faces of shape {wanted}; got something that "
                                f"is not an array ({exc}).") from exc
    if faces.ndim == 3:
        faces = faces[None]
    if faces.ndim != 4 or tuple(faces.shape[1:]) != expected:
        raise EncoderInputError(
            f"the encoder takes faces of shape {wanted}, got {faces.shape}. "
            "Crop faces with crop_face() or load_faces() first."
        )
    if not (np.issubdtype(faces.dtype, np.integer) or np.issubdtype(faces.dtype, np.floating)):
        raise EncoderInputError(f"the encoder takes numeric pixel arrays (uint8 0-255 or float), got dtype {faces.dtype}.")
    if not np.all(np.isfinite(faces)):
        raise EncoderInputError("the faces contain NaN or infinite values; pass pixel values (0-255).")
    return faces


# Calling the Keras model eagerly runs its 426 layers one Python call at a time; a graph traced
# once per batch size runs them as one TensorFlow program (same numbers to 1e-6; 2.6x the faces/s
# at batch 32 and about 10x at batch 1 on this CPU, benchmarks/results.md). Batches are padded up
# to a few fixed sizes so that at most six graphs are traced per model.
ENCODER_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
_ENCODER_GRAPHS = weakref.WeakKeyDictionary()  # model -> {batch size: traced function}


def _encoder_graph(model, batch_size):
    graphs = _ENCODER_GRAPHS.setdefault(model, {})
    if batch_size not in graphs:
        spec = tf.TensorSpec((batch_size, *model.input_shape[1:]), tf.float32)
        graphs[batch_size] = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32),
                                         input_signature=[spec])
    return graphs[batch_size]


def encode_faces(faces, model, batch_size=32, flip=False):
    """Encode face crops (m, 160, 160, 3), pixel values 0-255, into unit-length (m, 128) float32.

    ``flip=True`` also encodes each crop's mirror image and returns the normalised mean of the two
    unit encodings (test-time augmentation: twice the work; see :func:`crop_face` for when it helps).
    """
    faces = _check_faces(faces, model)
    if flip:
        plain = encode_faces(faces, model, batch_size)
        mirrored = encode_faces(faces[:, :, ::-1], model, batch_size)
        return l2_normalize(plain + mirrored)
    outputs = []
    for start in range(0, len(faces), batch_size):
        batch = prewhiten(faces[start:start + batch_size])
        real = len(batch)
        size = next((b for b in ENCODER_BATCH_SIZES if b >= real), real)
        if size > real:  # zero faces pad the batch to a traced size; their rows are dropped
            batch = np.concatenate([batch, np.zeros((size - real, *batch.shape[1:]), np.float32)])
        outputs.append(_encoder_graph(model, size)(batch).numpy()[:real])
    if not outputs:
        return np.zeros((0, EMBEDDING_SIZE), np.float32)
    return l2_normalize(np.concatenate(outputs))


def img_to_encoding(image_path, model):
    """Encode the (largest) face of a photo: a (1, 128) float32 array of unit length."""
    crops, _, _ = load_faces(image_path)
    return encode_faces(crops, model)


@dataclass
class EncodedPhotos:
    """What :func:`encode_photos` returns: one row per photo that gave a face."""

    paths: list
    encodings: np.ndarray  # (n, 128) float32, unit length
    crops: np.ndarray  # (n, 160, 160, 3) uint8
    faces: list  # the Face used for each photo
    failures: dict  # path -> the error that stopped it


def encode_photos(paths, model, batch_size=32, margin=MARGIN, progress=True, skip_errors=False):
    """Load, detect, crop and encode many photos, with detection and encoding batched.

    Arguments:
        skip_errors: if false (default) the first bad photo raises its error; if true, bad photos
            are collected in ``failures`` and the others are encoded.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    kept_paths, crops, faces, failures = [], [], [], {}
    bar = tqdm(total=len(paths), desc="Encoding photos", unit="photo", disable=not progress)
    for start in range(0, len(paths), batch_size):
        chunk, images = [], []
        for path in paths[start:start + batch_size]:
            try:
                images.append(load_image(path))
                chunk.append(path)
            except FaceRecognitionError as exc:
                if not skip_errors:
                    raise
                failures[path] = exc
        for path, image, found in zip(chunk, images, detect_faces_batch(images)):
            try:
                face = _pick_faces(found, path, all_faces=False)[0]
                crops.append(crop_face(image, face, margin))
            except FaceRecognitionError as exc:
                if not skip_errors:
                    raise
                failures[path] = exc
                continue
            kept_paths.append(path)
            faces.append(face)
        bar.update(len(paths[start:start + batch_size]))
    bar.close()
    crops = np.stack(crops) if crops else np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    return EncodedPhotos(kept_paths, encode_faces(crops, model, batch_size), crops, faces, failures)


# ---------------------------------------------------------------------------------------------
# 5. Database, verify, who_is_it
# ---------------------------------------------------------------------------------------------
_FORBIDDEN_NAME_CHARS = re.compile(r"[/\\]")
# A database file is small (one 512-byte row per person); a member larger than this is not one of
# ours (or is a zip bomb) and is refused before it is decompressed.
MAX_DATABASE_BYTES = 1 << 30


def check_identity(name):
    """Return ``name`` if it is a usable identity: a non-empty string without path separators,
    control characters or spaces at its ends (it ends up in file names, tables and printed
    sentences)."""
    if not isinstance(name, str):
        raise DatabaseError(f"identity {name!r} is a {type(name).__name__}; names must be strings, e.g. 'elton_john'.")
    if not name.strip():
        raise DatabaseError(f"an identity name is empty ({name!r}); give each person a non-empty name.")
    if _FORBIDDEN_NAME_CHARS.search(name) or name in (".", ".."):
        raise DatabaseError(f"identity {name!r} contains a path separator or is '.'/'..'; use letters, digits, '_' or '-'.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise DatabaseError(f"identity {name!r} contains control or invisible characters; remove them.")
    if name != name.strip():
        raise DatabaseError(f"identity {name!r} has spaces at its start or end; remove them.")
    return name


def check_encoding(encoding, name="encoding", tolerance=1e-3):
    """Return ``encoding`` as a (1, 128) float32 array, checking shape, finiteness and unit length."""
    try:
        array = np.asarray(encoding)
    except (ValueError, TypeError) as exc:
        raise DatabaseError(f"{name}: the encoding is not an array of numbers ({exc}). Make it with img_to_encoding().") from exc
    if array.shape not in ((EMBEDDING_SIZE,), (1, EMBEDDING_SIZE)):
        raise DatabaseError(
            f"{name}: an encoding has shape (1, {EMBEDDING_SIZE}) or ({EMBEDDING_SIZE},), got {array.shape}. "
            "Make it with img_to_encoding()."
        )
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DatabaseError(f"{name}: an encoding holds numbers, got dtype {array.dtype}. Make it with img_to_encoding().")
    array = array.astype(np.float32).reshape(1, EMBEDDING_SIZE)
    if not np.all(np.isfinite(array)):
        raise DatabaseError(f"{name}: the encoding contains NaN or infinite values; encode the photo again.")
    norm = float(np.linalg.norm(array))
    if abs(norm - 1.0) > tolerance:
        raise DatabaseError(
            f"{name}: the encoding has length {norm:.4f}, not 1. Encodings are unit vectors; "
            "make them with img_to_encoding() or l2_normalize()."
        )
    return array


def check_database(database):
    """Validate a database dict (names and encodings); returns (names, (n, 128) matrix)."""
    if not isinstance(database, dict):
        raise DatabaseError(
            f"the database is a dict name -> encoding, got a {type(database).__name__}. "
            "Build it with build_database() or load it with load_database()."
        )
    names = [check_identity(name) for name in database]
    matrix = np.concatenate([check_encoding(database[n], n) for n in names]) if names else \
        np.zeros((0, EMBEDDING_SIZE), np.float32)
    return names, matrix


def build_database(photos_by_name, model):
    """One-shot enrolment: ``{name: photo_path}`` -> ``{name: (1, 128) encoding}``."""
    if not isinstance(photos_by_name, dict):
        raise DatabaseError(f"build_database takes a dict name -> photo path, got a {type(photos_by_name).__name__}.")
    for name in photos_by_name:  # every name first: a typo should not cost the encoding of the others
        check_identity(name)
    return {name: img_to_encoding(photo, model) for name, photo in photos_by_name.items()}


def save_database(database, path):
    """Save a database to ``.npz`` atomically (written beside it, then renamed over it), without
    pickle: names as a unicode array, encodings as an (n, 128) float32 array.

    A crash or a full disk mid-save leaves the previous file as it was (at worst a hidden
    ``.<name>.*.tmp`` file stays beside it). Returns the path written (``.npz`` added if missing).
    """
    names, matrix = check_database(database)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    shown, folder = _shown(path), path.parent
    if not folder.is_dir():
        raise DatabaseFileError(
            f"{shown}: the folder {_shown(folder)} does not exist; create it first or choose another path."
        )
    if path.is_dir():
        raise DatabaseFileError(f"{shown}: is a folder; choose a file name such as {_shown(path / 'database.npz')}.")
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DatabaseFileError(
            f"{shown}: cannot write in the folder {_shown(folder)} ({exc.strerror}); choose a folder you can "
            "write to. Nothing was changed."
        ) from exc
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, names=np.array(names, dtype=str), encodings=matrix)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        _fsync_folder(folder)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise DatabaseFileError(
                f"{shown}: saving failed ({exc.strerror or exc}); the previous file, if any, is unchanged."
            ) from exc
        raise
    return path


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); where folders cannot be opened, the rename still is atomic."""
    with contextlib.suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _database_arrays(path, shown):
    """Read the two arrays of a database file, refusing anything else (pickle first of all)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        raise DatabaseFileError(f"{shown}: a single NumPy array (.npy), not a face database. Save one with save_database().")
    if head[:1] == b"\x80":
        raise DatabaseFileError(
            f"{shown}: a pickle file, refused: unpickling can run arbitrary code. "
            "Re-create the database with save_database()."
        )
    if not head.startswith(b"PK"):
        raise DatabaseFileError(f"{shown}: not a face database (.npz) file. Save one with save_database().")
    with np.load(path, allow_pickle=False) as data:
        if sorted(data.files) != ["encodings", "names"]:
            raise DatabaseFileError(
                f"{shown}: not a face database (it holds {sorted(data.files)}, expected names and encodings)."
            )
        size = sum(info.file_size for info in data.zip.infolist())
        if size > MAX_DATABASE_BYTES:
            raise DatabaseFileError(f"{shown}: {size:,} bytes once unpacked, too large for a face database; refused.")
        return data["names"], data["encodings"]


def load_database(path):
    """Load a database saved by :func:`save_database` (never unpickles anything)."""
    shown, path = _shown(path), Path(path)
    if path.is_dir():
        raise DatabaseFileError(f"{shown}: is a folder, not a database file.")
    if not path.is_file():
        raise DatabaseFileError(f"{shown}: no such database file. Save one with save_database(database, path).")
    redo = "Re-create it with save_database()."
    try:
        names, encodings = _database_arrays(path, shown)
    except DatabaseFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DatabaseFileError(
                f"{shown}: the file needs pickle to load, which can run arbitrary code; it is refused. {redo}"
            ) from exc
        raise DatabaseFileError(f"{shown}: not a readable database ({exc}). {redo}") from exc
    except Exception as exc:  # noqa: BLE001  (BadZipFile, EOFError, OSError, zlib.error, MemoryError, ...)
        raise DatabaseFileError(
            f"{shown}: the file is damaged or truncated ({exc.__class__.__name__}: {exc}). {redo}"
        ) from exc
    if names.ndim != 1 or names.dtype.kind != "U":
        raise DatabaseFileError(f"{shown}: the names are not a list of text (dtype {names.dtype}, shape {names.shape}). {redo}")
    if encodings.ndim != 2 or encodings.shape[1] != EMBEDDING_SIZE or encodings.dtype.kind != "f":
        raise DatabaseFileError(
            f"{shown}: the encodings are not an (n, {EMBEDDING_SIZE}) array of floats "
            f"(dtype {encodings.dtype}, shape {encodings.shape}). {redo}"
        )
    if len(names) != len(encodings):
        raise DatabaseFileError(f"{shown}: {len(names)} names but {len(encodings)} encodings. {redo}")
    if len(set(names.tolist())) != len(names):
        raise DatabaseFileError(f"{shown}: an identity appears twice. {redo}")
    try:
        database = {str(n): e[None, :].astype(np.float32) for n, e in zip(names, encodings)}
        check_database(database)
    except DatabaseError as exc:
        raise DatabaseFileError(f"{shown}: {exc}") from exc
    return database


def _threshold(threshold):
    """The threshold to use: DEFAULT_THRESHOLD for None, else a number in (0, 2]."""
    if threshold is None:
        return DEFAULT_THRESHOLD
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ThresholdError(f"threshold {threshold!r} is not a number; use e.g. {DEFAULT_THRESHOLD}.") from None
    if not 0 < value <= 2:
        raise ThresholdError(
            f"threshold {threshold!r} is not an L2 distance between unit vectors, which lies between 0 and 2; "
            f"use e.g. {DEFAULT_THRESHOLD}."
        )
    return value


def _reference(identity, database):
    """The enrolled encoding of ``identity``; an unknown name says who is known and the closest."""
    names, _ = check_database(database)
    check_identity(identity)
    if identity not in database:
        close = difflib.get_close_matches(identity, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else " Enrol them first with build_database()."
        raise DatabaseError(f"{identity!r} is not in the database (known: {', '.join(sorted(names)) or 'nobody'}).{hint}")
    return check_encoding(database[identity], identity)


def verify(image_path, identity, database, model, threshold=None):
    """Is the person in ``image_path`` the claimed ``identity``? (1:1 verification)

    Returns:
        (dist, door_open): the L2 distance between the photo's encoding and the identity's, and
        whether it is below the threshold (default :data:`DEFAULT_THRESHOLD`).
    """
    threshold = _threshold(threshold)
    reference = _reference(identity, database)
    encoding = img_to_encoding(image_path, model)
    dist = float(np.linalg.norm(encoding - reference))
    door_open = dist < threshold
    if door_open:
        print(f"It's {identity}, welcome in!")
    else:
        print(f"It's not {identity}, please go away")
    return dist, door_open


def nearest_identity(encoding, database):
    """Distances from one encoding to every identity, in one vectorised step.

    Returns ``(names, distances)`` with distances an (n,) float array.
    """
    names, matrix = check_database(database)
    encoding = check_encoding(encoding, "the photo's encoding")
    return names, np.linalg.norm(matrix - encoding, axis=1)


def who_is_it(image_path, database, model, threshold=None):
    """Who, of the people in ``database``, is in ``image_path``? (1:K recognition)

    ``database`` is the dict ``{name: (1, 128) encoding}`` of the lesson, or, for many people, an
    ``fr_index.FaceIndex`` built once from it (``FaceIndex.from_database(database)``), which
    answers a query without walking the dict again (benchmarks/results.md, item 4).

    Returns:
        (min_dist, identity): the smallest distance and its identity; the identity is returned
        even when the distance is above the threshold, in which case "Not in the database." is
        printed.
    """
    from fr_index import FaceIndex

    threshold = _threshold(threshold)
    if isinstance(database, FaceIndex):
        if len(database) == 0:
            raise DatabaseError("the index is empty; enrol at least one person before asking who_is_it.")
        encoding = img_to_encoding(image_path, model)
        identity, min_dist = database.nearest(encoding)
    else:
        if not check_database(database)[0]:
            raise DatabaseError("the database is empty; enrol at least one person (build_database) before asking "
                                "who_is_it.")
        encoding = img_to_encoding(image_path, model)
        names, distances = nearest_identity(encoding, database)
        best = int(np.argmin(distances))
        min_dist, identity = float(distances[best]), names[best]
    if min_dist < threshold:
        print(f"it's {identity}, the distance is {min_dist:.4f}")
    else:
        print("Not in the database.")
    return min_dist, identity
