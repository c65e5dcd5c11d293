"""Fine-tuning the top of FaceNet with the triplet loss, on the real model and the real photos.

One seeded fine-tuning run (module fixture ``tuned``) is shared by most tests: 279 views of the
93 train photos go through the frozen trunk once, then 30 Adam steps train the head.
"""

import itertools

import numpy as np
import pytest

import fr_training
import fr_triplets
import fr_utils
from conftest import LFW_DIR

MARGIN = 1.0  # the notebook's margin: at FaceNet's 0.2 these five people are already separated
STEPS = 30


def _split_by_folder(encoded):
    is_train = np.array([p.parent.parent.name == "train" for p in encoded.paths])
    names = np.array([p.parent.name for p in encoded.paths])
    return (encoded.crops[is_train], names[is_train]), (encoded.crops[~is_train], names[~is_train])


@pytest.fixture(scope="module")
def celebrity_split(celebrity_encoded):
    """((train crops, names), (val crops, names)) of the demo photos."""
    return _split_by_folder(celebrity_encoded)


@pytest.fixture(scope="module")
def pretrained_snapshot(model):
    """A copy of every weight of the session's pretrained model, taken before any training."""
    return [w.copy() for w in model.get_weights()]


@pytest.fixture(scope="module")
def tuned(model, celebrity_split, pretrained_snapshot):
    (train_crops, train_names), _ = celebrity_split
    return fr_training.fine_tune(model, train_crops, train_names, steps=STEPS, alpha=MARGIN,
                                 learning_rate=5e-5, random_crops=1, seed=0)


@pytest.fixture(scope="module")
def val_features(tuned, celebrity_split):
    """Trunk features of the 25 val crops (the trunk is frozen: the same before and after)."""
    _, (val_crops, _) = celebrity_split
    return fr_training.run_trunk(val_crops, tuned.trunk)


# --- the split into trunk and head -------------------------------------------------------------
@pytest.mark.parametrize("blocks, boundary", [(1, "Block8_5_Activation"), (2, "Block8_4_Activation"),
                                              (6, "Mixed_7a")])
def test_head_of_trunk_is_the_whole_model(model, celebrity_split, blocks, boundary):
    (train_crops, _), _ = celebrity_split
    split = fr_training.split_facenet(model, blocks)
    assert split.boundary == boundary
    x = fr_utils.prewhiten(train_crops[:3])
    whole = np.asarray(model(x, training=False))
    composed = np.asarray(split.head(split.trunk(x, training=False), training=False))
    np.testing.assert_allclose(composed, whole, rtol=0, atol=1e-5)
    # The head shares the model's layers: the very same variables, not copies.
    assert split.head.get_layer("Bottleneck") is model.get_layer("Bottleneck")


@pytest.mark.parametrize("bad", [0, 7, 1.5, "1", True])
def test_trunk_boundary_rejects_bad_block_counts(bad):
    with pytest.raises(ValueError, match="trainable_blocks"):
        fr_training.trunk_boundary(bad)


def test_compiled_trunk_matches_eager_call(tuned, celebrity_split):
    (train_crops, _), _ = celebrity_split
    eager = np.asarray(tuned.trunk(fr_utils.prewhiten(train_crops[:5]), training=False))
    # batch_size=2 also sends a last, smaller batch through the same traced graph.
    np.testing.assert_allclose(fr_training.run_trunk(train_crops[:5], tuned.trunk, batch_size=2), eager,
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(tuned.training_set.original_features[:5], eager, rtol=0, atol=1e-5)


# --- augmentation and P x K batches ------------------------------------------------------------
def test_augmented_views_are_the_crop_its_mirror_and_seeded_sub_crops(celebrity_split):
    (train_crops, _), _ = celebrity_split
    crops = train_crops[:4]
    views, photo = fr_training.augment_views(crops, random_crops=2, seed=3)
    assert views.shape == (16, 160, 160, 3) and views.dtype == np.uint8
    np.testing.assert_array_equal(photo, np.repeat(np.arange(4), 4))
    np.testing.assert_array_equal(views[0::4], crops)
    np.testing.assert_array_equal(views[1::4], crops[:, :, ::-1])
    for k in range(4):
        sub_crops = views[4 * k + 2: 4 * k + 4]
        # A zoomed-in sub-crop is a different image from the crop and from its mirror.
        assert not np.array_equal(sub_crops[0], crops[k]) and not np.array_equal(sub_crops[0], crops[k, :, ::-1])
        assert not np.array_equal(sub_crops[0], sub_crops[1])
    again, _ = fr_training.augment_views(crops, random_crops=2, seed=3)
    other, _ = fr_training.augment_views(crops, random_crops=2, seed=4)
    np.testing.assert_array_equal(again, views)
    assert not np.array_equal(other, views)


def test_pk_batches_hold_p_people_with_k_distinct_photos():
    labels = np.repeat([0, 1, 2, 3], 12)  # 4 people x 4 photos x 3 views
    photo = np.repeat(np.arange(16), 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = fr_training.pk_batch_indices(labels, photo, identities=3, photos_per_identity=4, rng=rng)
        assert rows.shape == (12,)
        people = labels[rows].reshape(3, 4)
        assert len(set(people[:, 0])) == 3 and np.all(people == people[:, :1])
        for group in rows.reshape(3, 4):
            assert len(set(photo[group])) == 4  # K different photos, not K views of one photo
    with pytest.raises(ValueError, match="identities"):
        fr_training.pk_batch_indices(labels, photo, identities=5, photos_per_identity=2, rng=rng)


# --- the metric ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_mean_triplet_loss_matches_every_triplet_enumerated(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=9)
    encodings = fr_utils.l2_normalize(rng.normal(size=(9, 4)))
    hinges = []
    for a, p, n in itertools.permutations(range(9), 3):
        if labels[a] == labels[p] and labels[a] != labels[n]:
            d_ap = np.sum((encodings[a] - encodings[p]) ** 2)
            d_an = np.sum((encodings[a] - encodings[n]) ** 2)
            hinges.append(max(d_ap - d_an + 0.8, 0.0))
    loss, active = fr_training.mean_triplet_loss(labels, encodings, alpha=0.8)
    assert loss == pytest.approx(np.mean(hinges), abs=1e-5)
    assert active == pytest.approx(np.mean(np.array(hinges) > 0), abs=1e-6)


# --- training -----------------------------------------------------------------------------------
def test_training_set_caches_every_view_once(tuned):
    data = tuned.training_set
    assert data.features.shape == (93 * 3, 3, 3, 1792)
    assert data.is_original.sum() == 93 and data.names == sorted(set(data.names)) and len(data.names) == 5
    assert tuned.settings["boundary"] == "Block8_5_Activation"


def test_loss_and_active_triplets_decrease_over_the_first_steps(tuned):
    history = tuned.history
    assert history.loss.shape == history.fraction_active.shape == (STEPS,)
    assert np.all(np.isfinite(history.loss)) and np.all((history.fraction_active >= 0) & (history.fraction_active <= 1))
    first, last = slice(0, 5), slice(STEPS - 5, STEPS)
    assert history.loss[first].mean() > 0.2  # at margin 1.0 most semi-hard triplets start active
    assert history.loss[last].mean() < 0.5 * history.loss[first].mean()
    assert history.fraction_active[last].mean() < history.fraction_active[first].mean() - 0.2


def test_training_is_deterministic_for_a_seed(model, celebrity_split, tuned):
    (train_crops, train_names), _ = celebrity_split
    again = fr_training.fine_tune(model, train_crops, train_names, steps=STEPS, alpha=MARGIN, learning_rate=5e-5,
                                  random_crops=1, seed=0, training_set=tuned.training_set)
    np.testing.assert_array_equal(again.history.loss, tuned.history.loss)
    np.testing.assert_array_equal(again.history.fraction_active, tuned.history.fraction_active)
    np.testing.assert_array_equal(again.model.get_layer("Bottleneck").get_weights()[0],
                                  tuned.model.get_layer("Bottleneck").get_weights()[0])


def test_batch_all_mining_trains_too(model, tuned):
    split = fr_training.split_facenet(fr_training.clone_facenet(model), 1)
    history = fr_training.train_head(split.head, tuned.training_set, steps=12, mining="batch_all",
                                     alpha=MARGIN, learning_rate=5e-5, seed=1)
    assert history.mining == "batch_all"
    assert history.loss[-4:].mean() < history.loss[:4].mean()
    with pytest.raises(ValueError, match="mining"):
        fr_training.train_head(split.head, tuned.training_set, steps=1, mining="hardest")


def test_fine_tuned_val_triplet_loss_is_lower(model, tuned, celebrity_split, val_features):
    _, (_, val_names) = celebrity_split
    pretrained_head = fr_training.split_facenet(model).head
    before = fr_training.embedding_metrics(fr_training.embed_features(val_features, pretrained_head), val_names,
                                           1.2, MARGIN)
    after = fr_training.embedding_metrics(fr_training.embed_features(val_features, tuned.head), val_names, 1.2, MARGIN)
    assert before["triplet_loss"] > 0.01  # the pretrained model leaves some val triplets inside the margin
    assert after["triplet_loss"] < 0.5 * before["triplet_loss"]
    assert after["active_triplets"] < before["active_triplets"]
    assert after["auc"] >= before["auc"] - 1e-3


def test_frozen_layers_unchanged_trained_layers_changed(model, tuned):
    trained = {"Bottleneck"} | {layer.name for layer in tuned.head.layers
                                if layer.name.startswith("Block8_6") and layer.name.endswith(("1x1", "1x3", "3x1"))}
    assert len(trained) == 6  # four branch convolutions, the 1x1 up-projection, the bottleneck
    changed = set()
    for layer in tuned.model.layers:
        for ours, theirs in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            if not np.array_equal(ours, theirs):
                changed.add(layer.name)
    assert changed == trained  # every BatchNorm (statistics and offsets) and the whole trunk frozen


def test_caller_model_untouched(model, tuned, pretrained_snapshot):
    assert tuned.model is not model
    for now, before in zip(model.get_weights(), pretrained_snapshot):
        np.testing.assert_array_equal(now, before)
    assert all(layer.trainable for layer in model.layers)


def test_fine_tuned_full_model_uses_the_trained_head(tuned, celebrity_split, val_features):
    _, (val_crops, _) = celebrity_split
    through_head = fr_training.embed_features(val_features[:4], tuned.head)
    np.testing.assert_allclose(fr_utils.encode_faces(val_crops[:4], tuned.model), through_head, atol=1e-5)


def test_compare_heads_table(model, tuned, celebrity_split, val_features):
    _, (_, val_names) = celebrity_split
    data = tuned.training_set
    train_names = np.array(data.names)[data.original_labels]
    pairs = (val_features[:6], val_features[6:12], np.array([True, False] * 3))
    table = fr_training.compare_heads({"pretrained": fr_training.split_facenet(model).head, "fine-tuned": tuned.head},
                                      (data.original_features, train_names), (val_features, val_names), pairs,
                                      alpha=MARGIN, pairs_name="toy pairs")
    assert list(table.columns) == ["pretrained", "fine-tuned"]
    assert "val triplet loss" in table.index and "toy pairs AUC" in table.index
    assert table.loc["train triplet loss", "fine-tuned"] < table.loc["train triplet loss", "pretrained"]
    assert 0.9 < table.loc["threshold (best on train)", "pretrained"] < 1.5
    assert table.loc["train accuracy", "pretrained"] == pytest.approx(0.982, abs=0.005)


# --- LFW ----------------------------------------------------------------------------------------
@pytest.mark.skipif(not (LFW_DIR / "pairs.txt").is_file(), reason=f"LFW not found in {LFW_DIR}")
def test_lfw_pair_sample_is_the_first_pairs_of_the_file():
    sample = fr_training.lfw_pair_sample(LFW_DIR / "pairs.txt")
    assert len(sample) == 200 and sample.is_same[:100].all() and not sample.is_same[100:].any()
    assert (sample.path1[0], sample.path2[0]) == ("Abel_Pacheco/Abel_Pacheco_0001.jpg",
                                                  "Abel_Pacheco/Abel_Pacheco_0004.jpg")
    assert all((LFW_DIR / "images" / name).is_file() for name in sample.images)
    small = fr_training.PairSample(sample.path1[:2] + sample.path1[100:101], sample.path2[:2] + sample.path2[100:101],
                                   sample.is_same[[0, 1, 100]])
    crops, index1, index2, kept = fr_training.load_pair_crops(small, LFW_DIR / "images")
    assert kept.all() and crops.shape == (len(small.images), 160, 160, 3)
    assert [small.images[i] for i in index1] == list(small.path1)
    assert [small.images[i] for i in index2] == list(small.path2)
