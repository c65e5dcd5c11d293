"""Bad photos, odd photos, bad weights and bad encoder input: each ends in one clear sentence.

Every bad input must raise the package's own error (a ``FaceRecognitionError`` that is also an
``OSError`` or ``ValueError``) whose message names the file and says what to do. Every odd but
legal photo (CMYK, 16-bit, RGBA, palette, greyscale, EXIF-rotated, 40 megapixels) must *work*:
the face is found and its encoding is close to the original photo's.

The odd photos are made from a real demo photo (``photo`` fixture); see tests/image_makers.py.
"""

import os
import re
import time
import warnings

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

import fr_utils
import image_makers as mk

PHOTO = fr_utils.IMAGES_DIR / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg"  # conftest's `photo`

# Re-detecting the same face at another scale moves the encoding by 0.12-0.19 (measured on the
# photo fixture at 500-1600 px); a different photo of the same person is 0.5-1.1 away.
SAME_PHOTO_TOLERANCE = 0.35


@pytest.fixture(scope="module")
def upright():
    """The fixture photo as a Pillow image (240x364, one face)."""
    with Image.open(PHOTO) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def reference_encoding(model):
    return fr_utils.img_to_encoding(PHOTO, model)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_refused(path, error, *fragments):
    """``load_image(path)`` raises ``error`` naming the file, with each fragment in the message."""
    with pytest.raises(error) as caught:
        fr_utils.load_image(path)
    message = str(caught.value)
    assert message.startswith(f"{os.fspath(path)}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(caught.value, fr_utils.FaceRecognitionError)
    return message


# ---------------------------------------------------------------------------------------------
# Files that are not photos
# ---------------------------------------------------------------------------------------------
def test_missing_path_keeps_a_relative_path_relative(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    message = assert_refused("images/no_such_photo.jpg", fr_utils.ImageLoadError, "no such file", "make assets")
    assert str(tmp_path) not in message  # the same sentence on every machine (the notebook shows it)
    assert issubclass(fr_utils.ImageLoadError, OSError)


def test_a_folder_is_not_a_photo(tmp_path):
    assert_refused(tmp_path, fr_utils.ImageLoadError, "is a folder", "list_images")


def test_an_empty_file(tmp_path):
    assert_refused(write(tmp_path, "empty.jpg", b""), fr_utils.ImageLoadError, "empty (0 bytes)")


def test_random_bytes_named_jpg(tmp_path):
    noise = np.random.default_rng(5).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    assert_refused(write(tmp_path, "noise.jpg", noise), fr_utils.ImageLoadError, "JPEG or PNG")


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_a_truncated_jpeg(tmp_path, photo, fraction):
    data = photo.read_bytes()
    path = write(tmp_path, "cut.jpg", data[:int(len(data) * fraction)])
    assert_refused(path, fr_utils.ImageLoadError, "damaged or truncated", "export the photo again")


def test_a_text_file(tmp_path):
    path = write(tmp_path, "notes.jpg", "name,photo\nelton_john,elton_john_01.jpg\n".encode() * 20)
    assert_refused(path, fr_utils.ImageLoadError, "a text file, not a photo")


def test_an_iphone_heic_photo_says_to_export_as_jpeg(tmp_path):
    heic_start = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)
    assert_refused(write(tmp_path, "IMG_0001.HEIC", heic_start), fr_utils.ImageLoadError, "HEIC", "JPEG")


def test_devices_and_pipes_are_refused_without_reading(tmp_path):
    assert_refused("/dev/zero", fr_utils.ImageLoadError, "not a regular file")
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert_refused(fifo, fr_utils.ImageLoadError, "not a regular file")


def test_an_array_instead_of_a_path(photo):
    with pytest.raises(fr_utils.ImageLoadError, match=r"got a ndarray.*detect_faces\(array\)"):
        fr_utils.load_image(fr_utils.load_image(photo))


def test_a_one_pixel_image(tmp_path):
    for side in (1, 8):
        path = write(tmp_path, f"dot{side}.png", mk.encode(Image.new("RGB", (side, side), "white"), "PNG"))
        assert_refused(path, fr_utils.ImageLoadError, f"{side}x{side} pixels is too small")


def test_a_unicode_file_name_works(tmp_path, photo):
    path = write(tmp_path, "Zoë Saldaña – 写真.jpg", photo.read_bytes())
    assert fr_utils.load_image(path).shape == (364, 240, 3)


def test_uploaded_bytes_get_the_same_answers(photo):
    np.testing.assert_array_equal(fr_utils.image_from_bytes(photo.read_bytes(), "me.jpg"), fr_utils.load_image(photo))
    with pytest.raises(fr_utils.ImageLoadError, match=r"^me\.jpg: the file is empty"):
        fr_utils.image_from_bytes(b"", "me.jpg")
    with pytest.raises(fr_utils.ImageLoadError, match=r"^me\.jpg: a text file"):
        fr_utils.image_from_bytes(b"hello, world\n" * 10, "me.jpg")
    with pytest.raises(fr_utils.ImageTooLargeError, match=r"^me\.png: 10,000,000,000 pixels"):
        fr_utils.image_from_bytes(mk.bomb_png(), "me.png")
    with pytest.raises(fr_utils.ImageLoadError, match="damaged or truncated"):
        fr_utils.image_from_bytes(photo.read_bytes()[:5000], "me.jpg")
    with pytest.raises(fr_utils.ImageLoadError, match="takes the bytes of a photo, got a str"):
        fr_utils.image_from_bytes("me.jpg", "me.jpg")


# ---------------------------------------------------------------------------------------------
# Size: bombs are refused at once, a 40-megapixel camera photo works
# ---------------------------------------------------------------------------------------------
def test_a_decompression_bomb_png_is_refused_before_decoding(tmp_path):
    path = write(tmp_path, "bomb.png", mk.bomb_png(100_000, 100_000))
    assert path.stat().st_size < 200
    start = time.perf_counter()
    message = assert_refused(path, fr_utils.ImageTooLargeError, "10,000,000,000 pixels", "safety limit")
    assert time.perf_counter() - start < 1.0
    assert "Resize the photo" in message


def test_a_jpeg_declaring_65535x65535_is_refused(tmp_path, photo):
    path = write(tmp_path, "bomb.jpg", mk.jpeg_with_size(photo.read_bytes(), 65535, 65535))
    start = time.perf_counter()
    assert_refused(path, fr_utils.ImageTooLargeError, "safety limit")
    assert time.perf_counter() - start < 1.0


def test_just_over_the_limit_is_refused_too(tmp_path):
    # 10,000 x 10,000 is over Pillow's limit but under twice it, where Pillow only warns.
    path = write(tmp_path, "scan.png", mk.bomb_png(10_000, 10_000))
    assert_refused(path, fr_utils.ImageTooLargeError, "10000x10000 pixels")


def test_the_limit_stays_when_pillow_s_is_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = write(tmp_path, "bomb.png", mk.bomb_png(100_000, 100_000))
    start = time.perf_counter()
    assert_refused(path, fr_utils.ImageTooLargeError, f"{fr_utils.PIXEL_LIMIT:,}-pixel")
    assert time.perf_counter() - start < 1.0


def test_a_40_megapixel_photo_is_downscaled_and_works(tmp_path, upright, model, reference_encoding):
    scale = (40e6 / (upright.width * upright.height)) ** 0.5  # keep the aspect ratio: 5132x7785
    camera = upright.resize((round(upright.width * scale), round(upright.height * scale)), Image.Resampling.BICUBIC)
    path = tmp_path / "DSC_0001.jpg"
    camera.save(path, quality=90)
    assert camera.width * camera.height >= 39.9e6
    start = time.perf_counter()
    image = fr_utils.load_image(path)
    encoding = fr_utils.img_to_encoding(path, model)
    elapsed = time.perf_counter() - start
    assert max(image.shape[:2]) == fr_utils.MAX_IMAGE_SIDE
    assert np.linalg.norm(encoding - reference_encoding) < SAME_PHOTO_TOLERANCE
    assert elapsed < 30, f"{elapsed:.1f} s: a hang guard only (it takes about 2-5 s)"


# ---------------------------------------------------------------------------------------------
# Odd but legal photos must work
# ---------------------------------------------------------------------------------------------
ODD_PHOTOS = {
    "cmyk.jpg": lambda im: mk.encode(im.convert("CMYK"), "JPEG", quality=95),
    "grey16.png": lambda im: mk.encode(Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257), "PNG"),
    "rgb16.png": lambda im: mk.png_16bit_rgb(np.asarray(im)),
    "rgba.png": lambda im: mk.encode(mk.rgba_with_transparent_border(im), "PNG"),
    "palette.gif": lambda im: mk.encode(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "GIF"),
    "grey.jpg": lambda im: mk.encode(im.convert("L"), "JPEG", quality=95),
}
ODD_MODES = {"cmyk.jpg": "CMYK", "grey16.png": "I;16", "rgba.png": "RGBA", "palette.gif": "P", "grey.jpg": "L"}


@pytest.mark.parametrize("name", sorted(ODD_PHOTOS))
def test_odd_formats_of_a_real_photo_work(tmp_path, name, upright, model, reference_encoding):
    path = write(tmp_path, name, ODD_PHOTOS[name](upright))
    with Image.open(path) as raw:
        assert raw.mode == ODD_MODES.get(name, raw.mode)  # the file really is in that mode
    image = fr_utils.load_image(path)
    assert image.shape == (upright.height, upright.width, 3) and image.dtype == np.uint8
    encoding = fr_utils.img_to_encoding(path, model)
    assert np.linalg.norm(encoding - reference_encoding) < SAME_PHOTO_TOLERANCE


def test_16_bit_values_are_scaled_not_clipped(tmp_path, upright):
    grey = np.asarray(upright.convert("L"))
    path = write(tmp_path, "grey16.png", mk.encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"))
    np.testing.assert_array_equal(fr_utils.load_image(path)[:, :, 0], grey)
    path = write(tmp_path, "rgb16.png", mk.png_16bit_rgb(np.asarray(upright)))
    np.testing.assert_array_equal(fr_utils.load_image(path), np.asarray(upright))


def test_transparent_pixels_become_white(tmp_path, upright):
    image = fr_utils.load_image(write(tmp_path, "cutout.png", mk.encode(mk.rgba_with_transparent_border(upright), "PNG")))
    assert np.all(image[0] == 255) and np.all(image[:, 0] == 255)  # random colours under alpha 0 are gone


@pytest.mark.parametrize("orientation", sorted(mk.STORED_FOR_ORIENTATION))
def test_every_exif_orientation_is_turned_upright(tmp_path, upright, orientation):
    path = write(tmp_path, f"o{orientation}.jpg", mk.exif_rotated_jpeg(upright, orientation))
    with Image.open(path) as raw:
        stored = raw.size
    image = fr_utils.load_image(path)
    assert image.shape[:2] == (upright.height, upright.width)
    if orientation >= 5:
        assert stored == (upright.height, upright.width)  # the file itself is sideways
    # Only JPEG re-compression separates the two (a wrong turn differs by about 60 grey levels).
    assert np.abs(image.astype(int) - np.asarray(upright, int)).mean() < 4


def test_an_exif_rotated_photo_finds_the_face(tmp_path, upright, model, reference_encoding):
    path = write(tmp_path, "IMG_sideways.jpg", mk.exif_rotated_jpeg(upright, 6))
    encoding = fr_utils.img_to_encoding(path, model)
    assert np.linalg.norm(encoding - reference_encoding) < SAME_PHOTO_TOLERANCE
    # The same pixels without the tag: the sideways face is not found at all.
    with Image.open(path) as raw:
        sideways = write(tmp_path, "no_tag.jpg", mk.encode(raw.convert("RGB"), "JPEG", quality=95))
    with pytest.raises(fr_utils.NoFaceError):
        fr_utils.img_to_encoding(sideways, model)


def test_a_damaged_exif_block_does_not_lose_the_photo(tmp_path, photo):
    data = bytearray(mk.exif_rotated_jpeg(Image.open(photo).convert("RGB"), 6))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4:start + 8] = b"\xff\xff\xff\xff"  # first IFD offset points past the end
    path = write(tmp_path, "bad_exif.jpg", bytes(data))
    with pytest.warns(UserWarning, match="Corrupt EXIF"):  # Pillow's own word for it
        image = fr_utils.load_image(path)
    assert image.shape == (240, 364, 3)  # as stored: the orientation was lost with the EXIF block


def test_an_orientation_that_cannot_be_applied_keeps_the_photo(tmp_path, upright, monkeypatch):
    def broken(image, **kwargs):
        raise SyntaxError("not a TIFF IFD")

    monkeypatch.setattr(fr_utils.ImageOps, "exif_transpose", broken)
    path = write(tmp_path, "IMG_0002.jpg", mk.exif_rotated_jpeg(upright, 6))
    with pytest.warns(UserWarning, match=r"IMG_0002\.jpg: unreadable EXIF orientation \(SyntaxError\)"):
        image = fr_utils.load_image(path)
    assert image.shape == (240, 364, 3)


# ---------------------------------------------------------------------------------------------
# Faces: none, or several
# ---------------------------------------------------------------------------------------------
def no_face_scenes():
    """Pictures without a face: smooth, flat, noisy, and the face-free strip of five real photos."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 300 * 400).reshape(300, 400)
    scenes = {
        "gradient.png": np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], axis=2),
        "grey_wall.png": np.full((300, 400, 3), 128),
        "noise.png": rng.integers(0, 256, (300, 400, 3)),
    }
    # Per person, the first val photo whose largest strip clear of every face (and of a band
    # around it) is at least 60 pixels each way: a wall, a stage, a street, clothes, hands.
    for person in ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"):
        for path in fr_utils.list_images(fr_utils.IMAGES_DIR / "val" / person):
            image = fr_utils.load_image(path)
            boxes = [face.box for face in fr_utils.detect_faces(image, settings=fr_utils.FIRST_PASS)]
            if not boxes:  # the face is found only by the second pass: where to cut is unknown
                continue
            strip = mk.face_free_strip(image, boxes)
            if min(strip.shape[:2]) >= 60:
                scenes[f"{path.stem}_background.png"] = strip
                break
    return {name: pixels.astype(np.uint8) for name, pixels in scenes.items()}


def test_a_picture_without_a_face_says_so(tmp_path, model):
    scenes = no_face_scenes()
    assert len(scenes) == 8
    for name, pixels in scenes.items():
        path = tmp_path / name
        Image.fromarray(pixels).save(path)
        with pytest.raises(fr_utils.NoFaceError) as caught:
            fr_utils.img_to_encoding(path, model)
        assert str(caught.value).startswith(f"{path}: no face found"), name
        assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("photo_name, rows, columns", [
    # Face-free strips of three demo photos: the bottom, bottom and left part, clear of every face
    # box by at least 30% of its size. Fixed here, not recomputed: whether the permissive pass
    # "sees" a face in a strip changes with a one-pixel shift of its edge.
    ("jerry_seinfeld/jerry_seinfeld_16.jpg", slice(120, None), slice(None)),  # a 9-pixel "face" at 0.96: too small
    ("madonna/madonna_14.jpg", slice(102, None), slice(None)),  # 8 pixels at 0.83
    ("elton_john/elton_john_17.jpg", slice(None), slice(None, 116)),  # 12 pixels at 0.73
])
def test_the_second_pass_no_longer_invents_faces(photo_name, rows, columns):
    image = fr_utils.load_image(fr_utils.IMAGES_DIR / "train" / photo_name)
    strip = np.ascontiguousarray(image[rows, columns])
    top, left = rows.start or 0, columns.start or 0
    bottom, right = rows.stop or image.shape[0], columns.stop or image.shape[1]
    for face in fr_utils.detect_faces(image, settings=fr_utils.FIRST_PASS):  # the strip holds no face
        x1, y1, x2, y2 = face.box
        assert x2 <= left or x1 >= right or y2 <= top or y1 >= bottom, face.box
    # Unfiltered, MTCNN's permissive settings see a face in this bit of stage, dress or wall...
    scale = max(1.0, fr_utils.SECOND_PASS_MIN_SIDE / min(strip.shape[:2]))
    rows = fr_utils._run_mtcnn([fr_utils._resize(strip, scale)], fr_utils.SECOND_PASS)[0]
    assert len(fr_utils._faces_from_rows(rows, scale)) >= 1
    # ...which detect_faces does not report.
    assert fr_utils.detect_faces(strip) == []


def test_the_hard_demo_photo_still_passes_the_filter():
    # A large face (128 x 166 px) that MTCNN's first pass misses in this 300 x 300 photo.
    image = fr_utils.load_image(fr_utils.IMAGES_DIR / "val" / "elton_john" / "elton_john_01.jpg")
    assert fr_utils.detect_faces(image, settings=fr_utils.FIRST_PASS) == []
    faces = fr_utils.detect_faces(image)  # found by the second pass, and believed
    assert len(faces) == 1 and faces[0].confidence > 0.95


def test_the_second_pass_keeps_only_plausible_faces():
    box = (10.0, 10.0, 60.0, 70.0)
    points = {"left_eye": (25, 30), "right_eye": (45, 30), "nose": (35, 42), "mouth_left": (27, 55),
              "mouth_right": (43, 55)}
    assert fr_utils._plausible(fr_utils.Face(box, 0.95, points))
    assert not fr_utils._plausible(fr_utils.Face(box, 0.85, points))  # not confident enough
    assert not fr_utils._plausible(fr_utils.Face((10.0, 10.0, 22.0, 24.0), 0.99, points))  # 12 px: too small
    upside_down = {**points, "mouth_left": (27, 20), "mouth_right": (43, 20)}
    assert not fr_utils._plausible(fr_utils.Face(box, 0.99, upside_down))
    outside = {**points, "nose": (80, 42)}
    assert not fr_utils._plausible(fr_utils.Face(box, 0.99, outside))


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """Jerry Seinfeld and Madonna (one face each in their photos) side by side in one picture."""
    val = fr_utils.IMAGES_DIR / "val"
    with Image.open(val / "jerry_seinfeld" / "jerry_seinfeld_03.jpg") as a, \
            Image.open(val / "madonna" / "madonna_01.jpg") as b:
        picture = mk.side_by_side(a.convert("RGB"), b.convert("RGB"))
    path = tmp_path_factory.mktemp("group") / "two_people.jpg"
    picture.save(path, quality=95)
    return path


def test_several_faces_warn_with_the_count_and_use_the_largest(two_people):
    with pytest.warns(UserWarning, match=r"two_people\.jpg: 2 faces found; using the largest confident one.*all_faces=True"):
        crops, faces, _ = fr_utils.load_faces(two_people)
    assert crops.shape == (1, 160, 160, 3) and len(faces) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for all of them is not worth a warning
        crops, faces, _ = fr_utils.load_faces(two_people, all_faces=True)
    assert crops.shape == (2, 160, 160, 3)
    assert faces[0].area >= faces[1].area


def test_all_faces_are_the_two_people(two_people, model, one_shot_database):
    crops, faces, _ = fr_utils.load_faces(two_people, all_faces=True)
    found = set()
    for encoding in fr_utils.encode_faces(crops, model):
        names, distances = fr_utils.nearest_identity(encoding, one_shot_database)
        assert distances.min() < fr_utils.DEFAULT_THRESHOLD
        found.add(names[int(np.argmin(distances))])
    assert found == {"jerry_seinfeld", "madonna"}
    left_face = min(faces, key=lambda f: f.box[0])
    with Image.open(two_people) as picture:
        assert left_face.box[2] < picture.width / 2  # one on each side


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------
def test_missing_weights_say_make_assets(tmp_path):
    with pytest.raises(fr_utils.WeightsError, match=r"facenet_keras\.h5: FaceNet weights not found.*make assets"):
        fr_utils.load_facenet(tmp_path / "facenet_keras.h5")
    assert issubclass(fr_utils.WeightsError, OSError)


def test_truncated_weights_fail_before_the_model_is_built(tmp_path):
    data = fr_utils.DEFAULT_WEIGHTS_PATH.read_bytes()
    path = write(tmp_path, "facenet_keras.h5", data[:len(data) // 3])
    start = time.perf_counter()
    with pytest.raises(fr_utils.WeightsError, match=r"not a readable HDF5 weights file.*make assets"):
        fr_utils.load_facenet(path)
    assert time.perf_counter() - start < 2.0  # no 4-second build first


def test_the_default_path_checks_the_checksum(tmp_path, monkeypatch):
    data = bytearray(fr_utils.DEFAULT_WEIGHTS_PATH.read_bytes())
    data[-1000] ^= 0xFF  # one flipped byte: still a valid HDF5 file
    path = write(tmp_path, "facenet_keras.h5", bytes(data))
    monkeypatch.setattr(fr_utils, "DEFAULT_WEIGHTS_PATH", path)
    with pytest.raises(fr_utils.WeightsError, match="checksum mismatch.*make assets"):
        fr_utils.load_facenet()
    with pytest.raises(fr_utils.WeightsError, match="checksum mismatch"):
        fr_utils.load_facenet(path, expected_sha256="0" * 64)


def test_a_photo_renamed_h5_is_not_weights(tmp_path, photo):
    with pytest.raises(fr_utils.WeightsError, match="not a readable HDF5"):
        fr_utils.load_facenet(write(tmp_path, "facenet_keras.h5", photo.read_bytes()))


def test_an_empty_h5_file_holds_no_weights(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w"):
        pass
    with pytest.raises(fr_utils.WrongWeightsError, match="holds no weights"):
        fr_utils.load_facenet(path)


def test_weights_of_another_model_are_refused(tmp_path):
    other = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(10, name="digits")])
    path = tmp_path / "mnist.h5"
    other.save(path)  # the legacy Keras .h5 format, like facenet_keras.h5
    with pytest.raises(fr_utils.WrongWeightsError) as caught:
        fr_utils.load_facenet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: the weights do not fit") and "facenet_keras.h5" in message
    assert "'conv'" in message or "'digits'" in message  # names the foreign layers
    # One class, caught by either family.
    assert isinstance(caught.value, fr_utils.WeightsError) and isinstance(caught.value, fr_utils.WeightsMismatchError)


def test_weights_with_a_layer_removed_are_refused(tmp_path):
    path = write(tmp_path, "facenet_keras.h5", fr_utils.DEFAULT_WEIGHTS_PATH.read_bytes())
    with h5py.File(path, "r+") as f:
        del f["model_weights/Bottleneck"]
        f["model_weights"].attrs["layer_names"] = [n for n in f["model_weights"].attrs["layer_names"]
                                                    if n != b"Bottleneck"]
    with pytest.raises(fr_utils.WrongWeightsError, match="Bottleneck"):
        fr_utils.load_facenet(path)


# ---------------------------------------------------------------------------------------------
# Encoder and detector input
# ---------------------------------------------------------------------------------------------
BAD_FACES = {
    "96 px faces": (np.zeros((2, 96, 96, 3), np.uint8), "shape"),
    "greyscale face": (np.zeros((160, 160), np.uint8), "shape"),
    "RGBA faces": (np.zeros((1, 160, 160, 4), np.uint8), "shape"),
    "a batch of batches": (np.zeros((2, 1, 160, 160, 3), np.uint8), "shape"),
    "file names": (np.array(["a.jpg", "b.jpg"]), "shape"),
    "ragged lists": ([np.zeros((160, 160, 3)), np.zeros((96, 96, 3))], "not an array"),
    "strings of the right shape": (np.full((1, 160, 160, 3), "x"), "dtype <U1"),
    "objects": (np.empty((1, 160, 160, 3), dtype=object), "dtype object"),
    "booleans": (np.ones((1, 160, 160, 3), bool), "dtype bool"),
    "complex numbers": (np.ones((1, 160, 160, 3), complex), "dtype complex128"),
    "NaN": (np.full((1, 160, 160, 3), np.nan, np.float32), "NaN"),
    "infinity": (np.full((1, 160, 160, 3), np.inf), "infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD_FACES))
def test_bad_encoder_input_is_refused(model, case):
    faces, fragment = BAD_FACES[case]
    with pytest.raises(fr_utils.EncoderInputError, match=fragment):
        fr_utils.encode_faces(faces, model)


def test_the_encoder_needs_the_model():
    with pytest.raises(fr_utils.EncoderInputError, match="load_facenet"):
        fr_utils.encode_faces(np.zeros((1, 160, 160, 3), np.uint8), "keras-facenet-h5/facenet_keras.h5")


def test_floats_in_0_1_give_the_same_encoding_as_0_255(model, photo):
    crop = fr_utils.load_faces(photo)[0]
    np.testing.assert_allclose(fr_utils.encode_faces(crop / 255.0, model), fr_utils.encode_faces(crop, model), atol=1e-5)


@pytest.mark.parametrize("image, fragment", [
    (np.zeros((200, 200), np.uint8), "shape (200, 200)"),
    (np.zeros((200, 200, 4), np.uint8), "shape (200, 200, 4)"),
    (np.zeros((200, 200, 3), np.float32), "dtype float32"),
    ([[0, 1], [2, 3]], "got a list"),
])
def test_bad_detector_input_is_refused(image, fragment):
    with pytest.raises(fr_utils.EncoderInputError, match=re.escape(fragment)):
        fr_utils.detect_faces(image)


def test_an_image_too_small_for_a_face_has_none():
    tiny = np.full((8, 8, 3), 128, np.uint8)
    assert fr_utils.detect_faces(tiny) == []
    assert fr_utils.detect_faces_batch([tiny, np.zeros((5, 300, 3), np.uint8)]) == [[], []]
