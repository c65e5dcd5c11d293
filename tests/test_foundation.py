"""The foundation on the real model and the real photos: architecture, weights, encodings, decisions."""

import json

import h5py
import keras
import numpy as np
import pytest

import fr_eval
import fr_utils
import inception_blocks_v2
from tools import demo, fetch_assets


# --- architecture and weights -----------------------------------------------------------------
def test_architecture_matches_the_checkpoint(model):
    assert model.count_params() == 22_808_144
    assert len(model.layers) == 426
    assert model.input_shape == (None, 160, 160, 3)
    assert model.output_shape == (None, 128)
    with h5py.File(fr_utils.DEFAULT_WEIGHTS_PATH, "r") as f:
        config = json.loads(f.attrs["model_config"])
    stored = [(layer["name"], layer["class_name"]) for layer in config["config"]["layers"]]
    # Same names in the same order; the Lambda scale-sums are ScaleSum layers here.
    ours = [(layer.name, type(layer).__name__) for layer in model.layers]
    assert [n for n, _ in ours] == [n for n, _ in stored]
    for (name, ours_class), (_, stored_class) in zip(ours, stored):
        expected = "ScaleSum" if stored_class == "Lambda" else stored_class
        assert ours_class == expected, name
    scales = {layer.name: layer.scale for layer in model.layers if isinstance(layer, inception_blocks_v2.ScaleSum)}
    assert len(scales) == 21
    assert scales["Block35_1_ScaleSum"] == 0.17 and scales["Block17_10_ScaleSum"] == 0.1
    assert scales["Block8_5_ScaleSum"] == 0.2 and scales["Block8_6_ScaleSum"] == 1.0


def test_every_stored_weight_is_loaded(model):
    stored = inception_blocks_v2.read_h5_weights(fr_utils.DEFAULT_WEIGHTS_PATH)
    assert len(stored) == 245
    for layer_name, arrays in stored.items():
        layer = model.get_layer(layer_name)
        loaded = {w.path.rsplit("/", 1)[-1]: np.asarray(w) for w in layer.weights}
        assert loaded.keys() == arrays.keys(), layer_name
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value, err_msg=f"{layer_name}/{key}")


def test_loader_refuses_a_file_with_a_layer_missing(tmp_path):
    broken = tmp_path / "missing_layer.h5"
    broken.write_bytes(fr_utils.DEFAULT_WEIGHTS_PATH.read_bytes())
    with h5py.File(broken, "r+") as f:
        del f["model_weights/Block17_3_Conv2d_1x1"]
        names = [n for n in f["model_weights"].attrs["layer_names"] if n != b"Block17_3_Conv2d_1x1"]
        f["model_weights"].attrs["layer_names"] = names
    model = inception_blocks_v2.faceRecoModel()
    with pytest.raises(inception_blocks_v2.WeightsMismatchError, match="Block17_3_Conv2d_1x1"):
        inception_blocks_v2.load_weights_from_h5(model, broken)


def test_scale_sum_is_a_serialisable_layer():
    layer = inception_blocks_v2.ScaleSum(0.17, name="Block35_1_ScaleSum")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, inception_blocks_v2.ScaleSum) and clone.scale == 0.17
    out = clone([np.ones((1, 2), np.float32), np.full((1, 2), 2.0, np.float32)])
    np.testing.assert_allclose(np.asarray(out), [[1.34, 1.34]], rtol=1e-6)


def test_whole_model_saves_and_loads_in_keras_safe_mode(model, tmp_path):
    path = tmp_path / "facenet.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    faces = np.random.default_rng(0).uniform(0, 255, (2, 160, 160, 3)).astype(np.float32)
    np.testing.assert_allclose(fr_utils.encode_faces(faces, reloaded), fr_utils.encode_faces(faces, model), atol=1e-5)


# --- from photo to encoding -------------------------------------------------------------------
def test_img_to_encoding_has_the_assignment_shape(model, photo):
    encoding = fr_utils.img_to_encoding(photo, model)
    assert encoding.shape == (1, 128) and encoding.dtype == np.float32
    assert np.linalg.norm(encoding) == pytest.approx(1.0, abs=1e-5)


def test_single_and_batched_paths_give_the_same_encoding(model, celebrity_encoded, photo):
    row = celebrity_encoded.paths.index(photo)
    np.testing.assert_allclose(fr_utils.img_to_encoding(photo, model)[0], celebrity_encoded.encodings[row], atol=1e-4)


def test_prewhiten_standardises_each_image():
    rng = np.random.default_rng(1)
    faces = rng.uniform(0, 255, (3, 160, 160, 3))
    white = fr_utils.prewhiten(faces)
    np.testing.assert_allclose(white.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(white.std(axis=(1, 2, 3)), 1, atol=1e-4)
    flat = fr_utils.prewhiten(np.full((160, 160, 3), 7.0))
    assert np.all(np.isfinite(flat)) and np.all(flat == 0)


def test_every_demo_photo_gives_a_face(celebrity_photos, celebrity_encoded):
    assert celebrity_encoded.failures == {}
    assert celebrity_encoded.paths == list(celebrity_photos)
    assert celebrity_encoded.encodings.shape == (118, 128)
    # The photos MTCNN misses at its default settings are found by the second pass, and each face
    # found is where a face is: its landmarks lie inside its box.
    for hard in (fr_utils.IMAGES_DIR / "val" / "ben_afflek" / "ben_afflek_04.jpg",
                 fr_utils.IMAGES_DIR / "val" / "elton_john" / "elton_john_01.jpg"):
        assert fr_utils.detect_faces(hard, settings=fr_utils.FIRST_PASS) == []
        face = celebrity_encoded.faces[celebrity_encoded.paths.index(hard)]
        x1, y1, x2, y2 = face.box
        for x, y in face.keypoints.values():
            assert x1 <= x <= x2 and y1 <= y <= y2


def test_a_picture_without_a_face_gives_no_face(tmp_path):
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 300 * 400).reshape(300, 400)
    scenes = {
        "gradient": np.stack([gradient, gradient[::-1], np.full_like(gradient, 90)], axis=2),
        "noise": rng.integers(0, 256, (300, 400, 3)),
    }
    for name, pixels in scenes.items():
        assert fr_utils.detect_faces(pixels.astype(np.uint8)) == [], name


# --- decisions on real photos -----------------------------------------------------------------
def test_all_pairs_auc_on_the_celebrity_photos(celebrity_encoded):
    labels = [p.parent.name for p in celebrity_encoded.paths]
    same, different = fr_eval.same_different_distances(celebrity_encoded.encodings, labels)
    assert fr_eval.roc_auc(same, different) >= 0.995


def test_one_shot_who_is_it_on_every_val_photo(one_shot_database, celebrity_encoded):
    correct = 0
    for path, encoding in zip(celebrity_encoded.paths, celebrity_encoded.encodings):
        if path.parts[-3] != "val":
            continue
        names, distances = fr_utils.nearest_identity(encoding, one_shot_database)
        best = int(np.argmin(distances))
        correct += names[best] == path.parent.name and distances[best] < fr_utils.DEFAULT_THRESHOLD
    assert correct == 25


def test_verify_accepts_the_person_and_rejects_an_impostor(model, one_shot_database, photo, capsys):
    dist, door_open = fr_utils.verify(photo, "jerry_seinfeld", one_shot_database, model)
    assert door_open and dist < fr_utils.DEFAULT_THRESHOLD
    assert capsys.readouterr().out == "It's jerry_seinfeld, welcome in!\n"
    dist, door_open = fr_utils.verify(photo, "madonna", one_shot_database, model)
    assert not door_open and dist >= fr_utils.DEFAULT_THRESHOLD
    assert capsys.readouterr().out == "It's not madonna, please go away\n"
    # The seed's threshold is one argument away.
    _, door_open = fr_utils.verify(photo, "jerry_seinfeld", one_shot_database, model, threshold=0.1)
    assert not door_open


def test_who_is_it_names_the_person_or_nobody(model, one_shot_database, photo, capsys):
    min_dist, identity = fr_utils.who_is_it(photo, one_shot_database, model)
    assert identity == "jerry_seinfeld"
    assert capsys.readouterr().out == f"it's jerry_seinfeld, the distance is {min_dist:.4f}\n"
    without_jerry = {n: e for n, e in one_shot_database.items() if n != "jerry_seinfeld"}
    min_dist, identity = fr_utils.who_is_it(photo, without_jerry, model)
    assert min_dist >= fr_utils.DEFAULT_THRESHOLD
    assert capsys.readouterr().out == "Not in the database.\n"


def test_who_is_it_with_a_face_index_answers_as_with_the_dict(model, one_shot_database, capsys):
    from fr_index import FaceIndex

    # The five people among 20,000 random strangers: the index's fast path, not a five-row search.
    rng = np.random.default_rng(7)
    strangers = rng.standard_normal((20_000, 128)).astype(np.float32)
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    names = [f"stranger_{i}" for i in range(len(strangers))] + list(one_shot_database)
    matrix = np.concatenate([strangers, *one_shot_database.values()])
    index = FaceIndex(names, matrix)
    big_dict = dict(zip(names, matrix[:, None, :]))
    for path in fr_utils.list_images(fr_utils.IMAGES_DIR / "val")[::5]:
        by_dict = fr_utils.who_is_it(path, big_dict, model)
        printed = capsys.readouterr().out
        by_index = fr_utils.who_is_it(path, index, model)
        assert by_index[1] == by_dict[1] == path.parent.name
        assert by_index[0] == pytest.approx(by_dict[0], abs=1e-5)
        assert capsys.readouterr().out == printed
    with pytest.raises(fr_utils.DatabaseError, match="the index is empty"):
        fr_utils.who_is_it(path, FaceIndex([], np.zeros((0, 128), np.float32)), model)


def test_database_round_trip(one_shot_database, tmp_path):
    path = fr_utils.save_database(one_shot_database, tmp_path / "db.npz")
    loaded = fr_utils.load_database(path)
    assert list(loaded) == list(one_shot_database)
    for name in loaded:
        np.testing.assert_array_equal(loaded[name], one_shot_database[name])
    with np.load(path, allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U"


def test_demo_table_identifies_every_val_photo(model, one_shot_database):
    photos = fr_utils.list_images(fr_utils.IMAGES_DIR / "val")
    table = demo.evaluate(one_shot_database, model, photos)
    assert len(table) == 25
    assert (table.prediction == table.truth).all()
    assert list(table.columns) == ["photo", "truth", "prediction", "distance", "decision", "verified"]


def test_default_threshold_is_the_one_chosen_on_train(celebrity_encoded):
    from tools import choose_threshold

    train = [i for i, p in enumerate(celebrity_encoded.paths) if p.parts[-3] == "train"]
    labels = [celebrity_encoded.paths[i].parent.name for i in train]
    chosen, _, _ = choose_threshold.choose_threshold(celebrity_encoded.encodings[train], labels)
    assert chosen == pytest.approx(fr_utils.DEFAULT_THRESHOLD, abs=0.011)


# --- assets -----------------------------------------------------------------------------------
def test_assets_match_the_manifest():
    manifest = fetch_assets.read_manifest()
    assert len(manifest) == 119
    assert manifest["keras-facenet-h5/facenet_keras.h5"] == fr_utils.FACENET_SHA256
    assert fetch_assets.missing_or_wrong(manifest) == []
