"""Builders of bad, odd and hostile image files for the tests, made from the real demo photos.

Each returns bytes or an array; the tests write them under ``tmp_path``. The PNG writer is written
out by hand (zlib + CRC) so the tests can make files that Pillow itself would refuse to write: a
16-bit RGB PNG, or a header that declares billions of pixels over a few bytes of data.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"

# How a camera stores the pixels for each EXIF orientation, given the upright picture: the inverse
# of the turn a viewer applies (EXIF 2.32, tag 274). 6 = "rotate 90 degrees clockwise to view", so
# the stored pixels are the upright picture turned 90 degrees counter-clockwise.
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # Pillow's ROTATE_90 is counter-clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width, height, raw_rows, bit_depth=8, colour_type=2):
    """A PNG file from already-filtered scanlines (each row starts with its filter byte)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw_rows))
            + png_chunk(b"IEND", b""))


def png_16bit_rgb(rgb):
    """A 16-bit-per-channel RGB PNG (as scanners and raw converters export) of an (H, W, 3) uint8 array."""
    wide = rgb.astype(">u2") * 257  # 0..255 -> 0..65535
    rows = b"".join(b"\x00" + row.tobytes() for row in wide)
    return png_bytes(rgb.shape[1], rgb.shape[0], rows, bit_depth=16, colour_type=2)


def bomb_png(width=100_000, height=100_000):
    """A 100-byte PNG whose header declares ``width`` x ``height`` pixels (10 billion by default)."""
    return png_bytes(width, height, b"\x00" * 64)


def jpeg_with_size(jpeg, width, height):
    """A real JPEG with its frame header (SOF) rewritten to declare another size."""
    data = bytearray(jpeg)
    i = 2
    while i < len(data) - 9:
        if data[i] != 0xFF:
            raise ValueError("not a JPEG marker stream")
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):  # baseline, extended, progressive frame
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no frame header found")


def encode(image, fmt, **options):
    """Encode a Pillow image into ``fmt`` and return the bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(upright, orientation, quality=95):
    """JPEG bytes storing ``upright`` the way a camera held at ``orientation`` does, with the tag set."""
    stored = upright.transpose(STORED_FOR_ORIENTATION[orientation])
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return encode(stored, "JPEG", quality=quality, exif=exif.tobytes())


def rgba_with_transparent_border(image, border=0.12):
    """RGBA copy of ``image`` whose outer ``border`` (fraction of each side) is fully transparent,
    holding random colours there, as cut-outs exported from photo editors do."""
    rgba = np.asarray(image.convert("RGBA")).copy()
    h, w = rgba.shape[:2]
    dy, dx = int(h * border), int(w * border)
    mask = np.ones((h, w), bool)
    mask[dy:h - dy, dx:w - dx] = False
    rng = np.random.default_rng(0)
    rgba[mask, :3] = rng.integers(0, 256, (mask.sum(), 3))
    rgba[mask, 3] = 0
    return Image.fromarray(rgba, "RGBA")


def side_by_side(left, right, height=360, gap=40):
    """Two photos resized to the same height and pasted next to each other on grey."""
    left = left.resize((round(left.width * height / left.height), height), Image.Resampling.LANCZOS)
    right = right.resize((round(right.width * height / right.height), height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (left.width + gap + right.width, height), (128, 128, 128))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas


def face_free_strip(image, boxes, pad=0.3, side=None):
    """The largest full-width or full-height strip of an (H, W, 3) array that stays clear of every
    face box, each grown by ``pad`` of its size on all sides (or the strip on ``side``: "left",
    "right", "top" or "bottom")."""
    h, w = image.shape[:2]
    x1 = min(b[0] - pad * (b[2] - b[0]) for b in boxes)
    x2 = max(b[2] + pad * (b[2] - b[0]) for b in boxes)
    y1 = min(b[1] - pad * (b[3] - b[1]) for b in boxes)
    y2 = max(b[3] + pad * (b[3] - b[1]) for b in boxes)
    strips = [
        image[:, :max(0, int(x1))], image[:, min(w, int(np.ceil(x2))):],
        image[:max(0, int(y1))], image[min(h, int(np.ceil(y2))):],
    ]
    if side is not None:
        return np.ascontiguousarray(strips[("left", "right", "top", "bottom").index(side)])
    return np.ascontiguousarray(max(strips, key=lambda s: s.shape[0] * s.shape[1]))
