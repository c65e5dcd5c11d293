"""A reproducible fuzz corpus for the image loader, and the worker that runs it.

:func:`build_corpus` writes byte strings to a folder: a real demo photo (shrunk, so each case takes
milliseconds) encoded in every format the loader accepts, then mutated in the ways files really get
damaged or forged (flipped bits, overwritten header fields, truncation, spliced, deleted and
inserted spans, two files glued together), plus plain random bytes with and without a valid magic
number. Everything derives from one seed, so a failure can be replayed.

Run as a script, it loads every file of a folder with ``fr_utils.load_image`` and prints one JSON
line per file (outcome, exception class, seconds). The test runs it in a subprocess so that a hang
or a crash of a C decoder is reported as a failure naming the file instead of killing pytest.
"""

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SEED_PHOTO = HERE.parent / "images" / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg"
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
MAGIC_NUMBERS = (b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
                 b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"P6\n", b"\x00\x00\x00\x1cftypavif")


def _save(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def seed_files(photo=SEED_PHOTO, side=64):
    """The real photo, shrunk to ``side`` pixels high, in each accepted format: name -> bytes."""
    with Image.open(photo) as original:
        small = original.convert("RGB")
    small = small.resize((round(small.width * side / small.height), side), Image.Resampling.LANCZOS)
    exif = Image.Exif()
    exif[0x0112] = 6
    seeds = {
        "baseline.jpg": _save(small, "JPEG", quality=85),
        "progressive.jpg": _save(small, "JPEG", quality=85, progressive=True),
        "exif.jpg": _save(small, "JPEG", quality=85, exif=exif.tobytes()),
        "cmyk.jpg": _save(small.convert("CMYK"), "JPEG"),
        "rgb.png": _save(small, "PNG"),
        "rgba.png": _save(small.convert("RGBA"), "PNG"),
        "grey16.png": _save(Image.fromarray(np.asarray(small.convert("L")).astype(np.uint16) * 257), "PNG"),
        "palette.gif": _save(small.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "rgb.bmp": _save(small, "BMP"),
        "lzw.tiff": _save(small, "TIFF", compression="tiff_lzw"),
        "raw.tiff": _save(small, "TIFF"),
        "lossy.webp": _save(small, "WEBP", quality=80),
        "rgb.ppm": _save(small, "PPM"),
    }
    return seeds


# --- mutators: (bytes, numpy Generator) -> bytes ------------------------------------------------
def flip_bits(data, rng):
    data = bytearray(data)
    for position in rng.integers(0, len(data), rng.integers(1, 20)):
        data[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(data)


def overwrite_bytes(data, rng):
    data = bytearray(data)
    for position in rng.integers(0, len(data), rng.integers(1, 10)):
        data[position] = int(rng.choice(INTERESTING_BYTES)) if rng.random() < 0.6 else int(rng.integers(0, 256))
    return bytes(data)


def corrupt_header(data, rng):
    """Damage the first 64 bytes, where sizes, depths and chunk lengths live."""
    data = bytearray(data)
    for position in rng.integers(0, min(64, len(data)), rng.integers(1, 6)):
        data[position] = int(rng.choice(INTERESTING_BYTES)) if rng.random() < 0.5 else int(rng.integers(0, 256))
    return bytes(data)


def truncate(data, rng):
    return data[:int(rng.integers(1, len(data)))]


def splice(data, rng):
    """Copy a random span of the file over another place."""
    start, length = int(rng.integers(0, len(data))), int(rng.integers(1, 512))
    target = int(rng.integers(0, len(data)))
    return data[:target] + data[start:start + length] + data[target + length:]


def delete_span(data, rng):
    start = int(rng.integers(0, len(data)))
    return data[:start] + data[start + int(rng.integers(1, 256)):]


def insert_random(data, rng):
    start = int(rng.integers(0, len(data)))
    return data[:start] + rng.integers(0, 256, int(rng.integers(1, 128)), dtype=np.uint8).tobytes() + data[start:]


MUTATORS = (flip_bits, overwrite_bytes, corrupt_header, truncate, splice, delete_span, insert_random)


def build_corpus(folder, mutants_per_seed=28, random_files=40, seed=20240601):
    """Write the corpus into ``folder``; returns the list of paths (seeds, mutants, random)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seeds = seed_files()
    corpus = {}
    for name, data in seeds.items():
        corpus[f"seed_{name}"] = data
        for i in range(mutants_per_seed):
            mutant = data
            for _ in range(int(rng.integers(1, 4))):  # one to three damages stacked
                mutant = MUTATORS[int(rng.integers(0, len(MUTATORS)))](mutant, rng)
            corpus[f"mutant_{i:02d}_{name}"] = mutant
    names = sorted(seeds)
    for i in range(random_files // 4):  # the head of one file glued to the tail of another
        a, b = seeds[names[int(rng.integers(0, len(names)))]], seeds[names[int(rng.integers(0, len(names)))]]
        corpus[f"glued_{i:02d}.jpg"] = a[:int(rng.integers(1, len(a)))] + b[int(rng.integers(0, len(b))):]
    for i in range(random_files - random_files // 4):
        noise = rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
        if i % 2:  # half of them start like a real format, to get past identification
            noise = MAGIC_NUMBERS[i % len(MAGIC_NUMBERS)] + noise
        corpus[f"random_{i:02d}.jpg"] = noise
    paths = []
    for name, data in corpus.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def run(folder):
    """Load every file in ``folder``; print a JSON line before (``start``) and after each."""
    sys.path.insert(0, str(HERE.parent))
    import warnings

    import fr_utils

    warnings.simplefilter("ignore")  # Pillow's "possibly corrupt" warnings are expected here
    for path in sorted(Path(folder).iterdir()):
        print(json.dumps({"start": path.name}), flush=True)
        begin = time.perf_counter()
        try:
            image = fr_utils.load_image(path)
            outcome = {"outcome": "decoded", "shape": list(image.shape), "dtype": str(image.dtype)}
        except fr_utils.FaceRecognitionError as exc:
            outcome = {"outcome": "refused", "error": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:  # noqa: BLE001  (what the test is looking for)
            outcome = {"outcome": "escaped", "error": f"{type(exc).__module__}.{type(exc).__name__}",
                       "message": str(exc)[:300]}
        outcome.update(name=path.name, seconds=round(time.perf_counter() - begin, 4))
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    run(sys.argv[1])
