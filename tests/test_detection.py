"""Detection and alignment on the real photos: batching, the face kept, eye levelling, mirror TTA."""

import numpy as np
import pytest
from PIL import Image

import fr_utils


def eye_angle(face):
    """Angle of the line from the left to the right eye landmark, in degrees (0 = level)."""
    (lx, ly), (rx, ry) = face.keypoints["left_eye"], face.keypoints["right_eye"]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


# --- batching ---------------------------------------------------------------------------------
def test_canvases_round_each_side_up_to_64_pixels():
    assert fr_utils._detection_canvas((202, 300, 3)) == (256, 320)
    assert fr_utils._detection_canvas((256, 320, 3)) == (256, 320)
    assert fr_utils._detection_canvas((12, 1600, 3)) == (64, 1600)


def test_photos_are_grouped_by_canvas_and_padded_bottom_right(celebrity_photos):
    images = [fr_utils.load_image(p) for p in celebrity_photos[:40]]
    seen = []
    for group, canvases in fr_utils._padded_batches(images, range(len(images))):
        assert 1 <= len(group) <= fr_utils.DETECTION_BATCH
        assert len({c.shape for c in canvases}) == 1  # one array shape per MTCNN call
        for index, canvas in zip(group, canvases):
            h, w = images[index].shape[:2]
            assert canvas.shape[:2] == fr_utils._detection_canvas(images[index].shape)
            np.testing.assert_array_equal(canvas[:h, :w], images[index])  # the photo, unmoved
            assert not canvas[h:].any() and not canvas[:, w:].any()  # zeros around it
        seen += group
    assert sorted(seen) == list(range(len(images)))
    shapes = {image.shape for image in images}
    assert len({fr_utils._detection_canvas(s) for s in shapes}) < len(shapes)  # fewer calls


def test_a_photos_faces_do_not_depend_on_the_other_photos_in_its_batch(celebrity_photos):
    # mtcnn's own unstable sort let the batch mates decide between boxes of equal score
    # (before the fix: up to 6 px apart on these photos); get_detector makes it stable.
    images = [fr_utils.load_image(p) for p in celebrity_photos[::3]]
    together = fr_utils.detect_faces_batch(images)
    for path, image, faces in zip(celebrity_photos[::3], images, together):
        alone = fr_utils.detect_faces(image)
        assert len(alone) == len(faces), path
        for a, b in zip(alone, faces):
            np.testing.assert_allclose(a.box, b.box, atol=0.01, err_msg=str(path))


def test_boxes_are_in_the_photos_own_coordinates(celebrity_photos):
    for path in celebrity_photos[::2]:
        image = fr_utils.load_image(path)
        h, w = image.shape[:2]
        for face in fr_utils.detect_faces(image):
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (path, face.box)


# --- which face -------------------------------------------------------------------------------
def test_face_rank_prefers_confident_faces_then_large_ones():
    small_sure = fr_utils.Face((0, 0, 40, 40), 0.99)
    big_unsure = fr_utils.Face((0, 0, 45, 60), 0.88)
    bigger_sure = fr_utils.Face((0, 0, 50, 50), 0.96)
    tiny_unsure = fr_utils.Face((0, 0, 10, 10), 0.90)
    ranked = sorted([tiny_unsure, big_unsure, small_sure, bigger_sure], key=fr_utils.face_rank)
    assert ranked == [bigger_sure, small_sure, big_unsure, tiny_unsure]


def test_a_larger_uncertain_box_does_not_replace_the_singers_face():
    # In this photo MTCNN also returns a shoulder (0.88), larger than the face (0.99).
    path = fr_utils.IMAGES_DIR / "train" / "elton_john" / "elton_john_01.jpg"
    faces = fr_utils.detect_faces(path)
    assert len(faces) == 2
    face, other = faces
    assert face.confidence >= fr_utils.CONFIDENT_FACE > other.confidence and other.area > face.area
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.keypoints.values())
    # One confident face and an uncertain box: no "several faces" warning.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crops, kept, _ = fr_utils.load_faces(path)
    assert kept == [face] and crops.shape == (1, 160, 160, 3)


# --- alignment --------------------------------------------------------------------------------
@pytest.mark.parametrize("tilt", [-15.0, 12.0])
def test_level_eyes_undoes_a_tilt(photo, tilt):
    image = fr_utils.load_image(photo)
    upright = fr_utils.detect_faces(image)[0]  # the head leans a little already (about -6 degrees)
    x1, y1, x2, y2 = upright.box
    tilted = np.asarray(Image.fromarray(image).rotate(tilt, resample=Image.Resampling.BILINEAR,
                                                       center=((x1 + x2) / 2, (y1 + y2) / 2)))
    face = fr_utils.detect_faces(tilted)[0]
    assert abs(eye_angle(face) - (eye_angle(upright) - tilt)) < 4  # PIL turns anticlockwise
    levelled = fr_utils.level_eyes(tilted, face)
    assert levelled.shape == tilted.shape
    assert abs(eye_angle(fr_utils.detect_faces(levelled)[0])) < 3


def test_crop_face_with_eyes_levelled_matches_the_upright_crop_better(photo, model):
    image = fr_utils.load_image(photo)
    upright = fr_utils.detect_faces(image)[0]
    x1, y1, x2, y2 = upright.box
    tilted = np.asarray(Image.fromarray(image).rotate(20, resample=Image.Resampling.BILINEAR,
                                                       center=((x1 + x2) / 2, (y1 + y2) / 2)))
    face = fr_utils.detect_faces(tilted)[0]
    reference = fr_utils.encode_faces(fr_utils.crop_face(image, upright, align="eyes"), model)
    plain = fr_utils.encode_faces(fr_utils.crop_face(tilted, face), model)
    aligned = fr_utils.encode_faces(fr_utils.crop_face(tilted, face, align="eyes"), model)
    assert np.linalg.norm(aligned - reference) < np.linalg.norm(plain - reference)


def test_level_eyes_leaves_a_plain_box_alone(photo):
    image = fr_utils.load_image(photo)
    assert fr_utils.level_eyes(image, (10, 10, 50, 50)) is image
    with pytest.raises(ValueError, match="align must be one of"):
        fr_utils.crop_face(image, (10, 10, 50, 50), align="nose")


# --- mirror test-time augmentation ------------------------------------------------------------
def test_flip_averages_the_crop_and_its_mirror(celebrity_encoded, model):
    crops = celebrity_encoded.crops[:5]
    both = fr_utils.encode_faces(crops, model, flip=True)
    plain = fr_utils.encode_faces(crops, model)
    mirrored = fr_utils.encode_faces(crops[:, :, ::-1], model)
    np.testing.assert_allclose(both, fr_utils.l2_normalize(plain + mirrored), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    # A mirrored photo gets the same encoding: the pair is the same two crops.
    np.testing.assert_allclose(fr_utils.encode_faces(crops[:, :, ::-1], model, flip=True), both, atol=1e-5)
    assert fr_utils.encode_faces(crops[:0], model, flip=True).shape == (0, 128)


# --- bfloat16 ---------------------------------------------------------------------------------
def test_bfloat16_model_gives_nearly_the_same_encodings(celebrity_encoded, model):
    import keras

    half = fr_utils.load_facenet(precision="bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy is restored
    crops = celebrity_encoded.crops[::12]
    low = fr_utils.encode_faces(crops, half)
    assert low.dtype == np.float32 and low.shape == (len(crops), 128)
    full = fr_utils.encode_faces(crops, model)
    gaps = np.linalg.norm(low - full, axis=1)
    assert gaps.max() < 0.1, gaps  # same-person distances are 0.4-1.1, the threshold 1.18
    # The same people are still the nearest to each other.
    np.testing.assert_array_equal(np.argsort(low @ low.T, axis=1)[:, -2], np.argsort(full @ full.T, axis=1)[:, -2])
    with pytest.raises(ValueError, match="precision must be one of"):
        fr_utils.load_facenet(precision="float16")
