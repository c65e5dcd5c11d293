"""Shared fixtures: the real pretrained model and the real celebrity photos, loaded once."""

import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fr_utils  # noqa: E402

LFW_DIR = ROOT.parent / "shared" / "lfw"


@pytest.fixture(scope="session")
def model():
    """FaceNet with the pretrained weights (fetched by `make assets`)."""
    return fr_utils.load_facenet()


@pytest.fixture(scope="session")
def celebrity_photos():
    """All 118 demo photos, sorted: images/{train,val}/<person>/<person>_NN.jpg."""
    photos = fr_utils.list_images(fr_utils.IMAGES_DIR)
    assert len(photos) == 118, "run `make assets` to fetch the demo photos"
    return photos


@pytest.fixture(scope="session")
def celebrity_encoded(model, celebrity_photos):
    """The 118 photos detected, cropped and encoded (batched), as fr_utils.EncodedPhotos."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photos with several faces: the largest is the person
        return fr_utils.encode_photos(celebrity_photos, model, progress=False)


@pytest.fixture(scope="session")
def one_shot_database(model):
    """The first train photo of each person, enrolled: {name: (1, 128) encoding}."""
    photos = {}
    for path in fr_utils.list_images(fr_utils.IMAGES_DIR / "train"):
        photos.setdefault(path.parent.name, path)
    return fr_utils.build_database(photos, model)


@pytest.fixture
def photo():
    """One clear single-face photo."""
    return fr_utils.IMAGES_DIR / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg"
