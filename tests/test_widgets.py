"""Headless tests of the threshold explorers: the numbers the callbacks compute and the figures
they draw, driven by setting slider, dropdown and upload values as a person would in the browser.

The pure parts (fr_plots) are tested on small hand-made data; the panels on the real encodings of
the celebrity photos, with the database of the notebook (first train photo of each person)."""

import io
import math
import warnings

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from PIL import Image

import fr_eval
import fr_plots
import fr_utils
import fr_widgets

THRESHOLDS = (0.5, 0.7, 0.95, 1.1, fr_utils.DEFAULT_THRESHOLD, 1.3, 1.6)


# ---------------------------------------------------------------------------------------------
# Small hand-made data
# ---------------------------------------------------------------------------------------------
def toy_camera():
    """Three enrolled people, five camera photos (one of a stranger), distances set by hand."""
    distances = np.array([
        #  ann   bob   cid
        [0.40, 1.50, 1.40],  # ann: correct at 1.0
        [1.20, 0.90, 1.30],  # bob: correct at 1.0, missed at 0.8
        [0.95, 1.40, 1.45],  # cid, but nearest is ann: wrong person at 1.0
        [1.60, 1.70, 1.10],  # cid: missed at 1.0, correct at 1.2
        [0.99, 1.30, 1.35],  # eve (not enrolled): let in at 1.0, rejected at 0.9
    ])
    return fr_plots.CameraDistances(("ann", "bob", "cid"), ("ann", "bob", "cid", "cid", "eve"),
                                    tuple(f"p{i}" for i in range(5)), distances)


def unit_rows(rng, n, d=128):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_camera_distances_matches_direct_norms():
    rng = np.random.default_rng(0)
    database = {name: unit_rows(rng, 1).astype(np.float32) for name in ("a", "b", "c")}
    encodings = unit_rows(rng, 7)
    labels = ["a", "b", "c", "a", "z", "b", "a"]
    camera = fr_plots.camera_distances(database, encodings, labels, [f"x/train/a/p{i}.jpg" for i in range(7)])
    expected = np.array([[np.linalg.norm(e - database[n][0]) for n in "abc"] for e in encodings])
    np.testing.assert_allclose(camera.distances, expected, atol=1e-6)
    assert camera.names == ("a", "b", "c") and camera.photos[3] == "train/p3"
    same, different = camera.same_different()
    # Brute force: photo i vs identity j is "same" iff labels agree; the stranger "z" is all "different".
    brute_same = [expected[i, j] for i in range(7) for j in range(3) if labels[i] == "abc"[j]]
    brute_diff = [expected[i, j] for i in range(7) for j in range(3) if labels[i] != "abc"[j]]
    np.testing.assert_allclose(same, brute_same, atol=1e-6)
    np.testing.assert_allclose(different, brute_diff, atol=1e-6)
    assert len(same) == 6 and len(different) == 15
    for t in (0.5, 1.0, 1.4):
        assert camera.counts(t) == fr_eval.confusion_counts(same, different, t)
        np.testing.assert_array_equal(camera.accepted(t), camera.distances < t)


def test_camera_distances_rejects_mismatched_inputs():
    database = {"a": np.ones((1, 4)) / 2}
    with pytest.raises(ValueError, match="shape"):
        fr_plots.camera_distances(database, np.ones((2, 5)), ["a", "a"])
    with pytest.raises(ValueError, match="labels"):
        fr_plots.camera_distances(database, np.ones((2, 4)), ["a"])
    with pytest.raises(ValueError, match="empty"):
        fr_plots.camera_distances({}, np.ones((2, 4)), ["a", "a"])


def test_enrolment_split_takes_the_first_train_photo_of_each_person():
    paths = ["im/val/ann/ann_01.jpg", "im/train/bob/bob_02.jpg", "im/train/ann/ann_03.jpg",
             "im/train/ann/ann_02.jpg", "im/train/bob/bob_01.jpg", "im/val/cid/cid_01.jpg"]
    enrolled, camera = fr_plots.enrolment_split(paths)
    assert enrolled == {"ann": "im/train/ann/ann_02.jpg", "bob": "im/train/bob/bob_01.jpg"}
    assert camera == ["im/val/ann/ann_01.jpg", "im/train/bob/bob_02.jpg", "im/train/ann/ann_03.jpg",
                      "im/val/cid/cid_01.jpg"]


@pytest.mark.parametrize("threshold, expected", [
    (1.0, [fr_plots.CORRECT, fr_plots.CORRECT, fr_plots.WRONG_PERSON, fr_plots.MISSED, fr_plots.ACCEPTED_STRANGER]),
    (0.8, [fr_plots.CORRECT, fr_plots.MISSED, fr_plots.MISSED, fr_plots.MISSED, fr_plots.REJECTED_STRANGER]),
    (1.2, [fr_plots.CORRECT, fr_plots.CORRECT, fr_plots.WRONG_PERSON, fr_plots.CORRECT, fr_plots.ACCEPTED_STRANGER]),
])
def test_identify_all_classifies_every_outcome(threshold, expected):
    rows = fr_plots.identify_all(toy_camera(), threshold)
    assert [row.outcome for row in rows] == expected
    assert [row.nearest for row in rows] == ["ann", "bob", "ann", "cid", "ann"]
    assert rows[0].answer == "it's ann, the distance is 0.4000"
    counts = fr_plots.outcome_counts(rows)
    assert list(counts) == list(fr_plots.OUTCOMES) and sum(counts.values()) == 5
    assert counts[fr_plots.CORRECT] == expected.count(fr_plots.CORRECT)


def test_identify_all_accepts_strictly_below_the_threshold():
    row = fr_plots.identify_all(toy_camera(), 0.40)[0]
    assert not row.accepted and row.answer == "Not in the database."


@pytest.mark.parametrize("photo, claimed, threshold, kind, message", [
    (0, "ann", 1.0, "true accept", "It's ann, welcome in!"),
    (1, "bob", 0.9, "false reject", "It's not bob, please go away"),
    (2, "ann", 1.0, "false accept", "It's ann, welcome in!"),
    (2, "ann", 0.95, "true reject", "It's not ann, please go away"),
])
def test_verify_outcome(photo, claimed, threshold, kind, message):
    outcome = fr_plots.verify_outcome(toy_camera(), photo, claimed, threshold)
    assert outcome.distance == toy_camera().distances[photo, "abc".index(claimed[0])]
    assert outcome.kind == kind and outcome.message == message


def test_verify_outcome_unknown_identity():
    with pytest.raises(KeyError, match="zed"):
        fr_plots.verify_outcome(toy_camera(), 0, "zed", 1.0)


def test_counts_text_round_trip():
    counts = fr_eval.confusion_counts([0.2, 0.5, 0.9], [0.8, 1.3], 0.85)
    text = fr_plots.counts_text(counts)
    assert text == "TA=2 FA=1 TR=1 FR=1 TAR=0.6667 FAR=0.5000"
    assert fr_plots.parse_counts_text(text) == {"TA": 2, "FA": 1, "TR": 1, "FR": 1, "TAR": 0.6667, "FAR": 0.5}
    with pytest.raises(ValueError, match="missing"):
        fr_plots.parse_counts_text("TA=2 FA=1")
    assert "TAR=nan" in fr_plots.counts_text(fr_eval.confusion_counts([], [1.0], 0.5))


def test_format_threshold():
    assert fr_plots.format_threshold(1.18) == "1.18"
    assert fr_plots.format_threshold(0.7000000000000001) == "0.70"
    assert fr_plots.format_threshold(1.2516558) == "1.2517"


# ---------------------------------------------------------------------------------------------
# PCA
# ---------------------------------------------------------------------------------------------
def test_pca_2d_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 7.0
    p = fr_plots.pca_2d(x)
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vectors[:, ::-1][:, :2].T
    np.testing.assert_allclose(np.abs(p.components), np.abs(top), atol=1e-8)
    np.testing.assert_allclose(p.explained_variance_ratio, values[::-1][:2] / values.sum(), rtol=1e-8)
    np.testing.assert_allclose(p.coords.mean(axis=0), 0.0, atol=1e-10)
    assert p.coords[:, 0].var() > p.coords[:, 1].var()
    np.testing.assert_allclose(p.transform(x), p.coords, atol=1e-10)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(2), atol=1e-10)


def test_pca_2d_sign_convention_is_deterministic():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 5)) * np.array([4.0, 2.0, 1.0, 1.0, 1.0])
    p = fr_plots.pca_2d(x)
    for axis in p.components:
        assert axis[np.argmax(np.abs(axis))] > 0
    order = rng.permutation(40)
    shuffled = fr_plots.pca_2d(x[order] + 3.0)  # row order and translation change nothing
    np.testing.assert_allclose(shuffled.coords, p.coords[order], atol=1e-9)
    flipped = fr_plots.pca_2d(-x)  # a mirrored cloud gives mirrored coordinates, same axes
    np.testing.assert_allclose(flipped.components, p.components, atol=1e-9)
    np.testing.assert_allclose(flipped.coords, -p.coords, atol=1e-9)


@pytest.mark.parametrize("bad", [np.ones(5), np.ones((1, 4)), np.ones((4, 1)), [[0.0, np.nan], [1.0, 2.0]]])
def test_pca_2d_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        fr_plots.pca_2d(bad)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0.85, 0.6, 1.5])
def test_threshold_plot_moves_line_and_point(threshold):
    same, different = [0.2, 0.5, 0.9, 1.1], [0.8, 1.3, 1.4, 1.7, 1.9]
    plot = fr_plots.ThresholdPlot(same, different, 1.0)
    counts = plot.update(threshold)
    assert counts == fr_eval.confusion_counts(same, different, threshold)
    assert list(plot.threshold_line.get_xdata()) == [threshold, threshold]
    (far,), (tar,) = plot.operating_point.get_data()
    assert (far, tar) == (counts.far, counts.tar)
    title = plot.histogram_axes.get_title()
    assert f"{counts.true_accepts}/4 same accepted" in title and f"{counts.false_accepts}/5 different" in title
    assert plot.roc_axes.get_title() == f"TAR {counts.tar:.4f} at FAR {counts.far:.4f}"
    assert plot.auc == fr_eval.roc_auc(same, different)
    heights = [p.get_height() for p in plot.histogram_axes.patches]
    assert sum(heights) == len(same) + len(different)
    assert plot.png().startswith(b"\x89PNG")


@pytest.mark.parametrize("threshold", [0.85, 1.0, 1.25])
def test_heatmap_figure_shows_distances_and_decisions(threshold):
    camera = toy_camera()
    figure = fr_plots.heatmap_figure(camera, threshold)
    ax = figure.axes[0]
    order = fr_plots.person_order(camera.labels)
    np.testing.assert_array_equal(ax.images[0].get_array(), camera.distances[order].T)
    markers = {c.get_label(): c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)}
    same = camera.same_mask[order].T
    accepted = camera.distances[order].T < threshold
    for label, mask in (("true accept", accepted & same), ("false reject", ~accepted & same),
                        ("false accept", accepted & ~same)):
        rows, cols = np.nonzero(mask)
        assert sorted(map(tuple, np.asarray(markers[label]).reshape(-1, 2))) == sorted(zip(cols, rows)), label
    counts = camera.counts(threshold)
    assert f"right person {counts.true_accepts} of 4 times" in ax.get_title()
    assert f"wrong person {counts.false_accepts} of 11 times" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ann", "bob", "cid"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ann", "bob", "cid", "eve"]


def test_embedding_figure_one_group_per_person():
    rng = np.random.default_rng(3)
    encodings = unit_rows(rng, 9, 8)
    labels = ["b", "a", "a", "c", "b", "a", "c", "c", "c"]
    projection = fr_plots.pca_2d(encodings)
    figure = fr_plots.embedding_figure(projection, labels, encodings[:2], ["b", "a"])
    ax = figure.axes[0]
    groups = {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections}
    assert list(groups) == ["a (3)", "b (2)", "c (4)", "b (enrolled)", "a (enrolled)"]
    np.testing.assert_allclose(groups["c (4)"], projection.coords[[3, 6, 7, 8]])
    np.testing.assert_allclose(groups["a (enrolled)"], projection.coords[[1]])
    assert "PCA" in ax.get_title() and ax.get_xlabel().startswith("principal component 1")


def test_faces_overlay_and_image_bytes():
    image = np.zeros((600, 800, 3), np.uint8)
    overlay = fr_plots.faces_overlay(image, [(100, 100, 300, 300), (500, 50, 600, 150)], chosen=1, max_side=400)
    assert overlay.shape == (300, 400, 3)
    assert tuple(overlay[25, 250]) == (0, 200, 0)  # chosen box (scaled by 0.5), drawn green
    assert tuple(overlay[50, 100]) == (255, 200, 0)  # the other one, yellow
    jpeg = fr_plots.image_bytes(image, size=100)
    assert Image.open(io.BytesIO(jpeg)).size == (100, 75)


# ---------------------------------------------------------------------------------------------
# Panels on hand-made distances
# ---------------------------------------------------------------------------------------------
TOY_SAME = np.array([0.35, 0.5, 0.62, 0.68, 0.71, 0.8, 0.93, 1.02, 1.12, 1.21, 1.4])
TOY_DIFFERENT = np.array([0.66, 0.98, 1.15, 1.19, 1.22, 1.26, 1.3, 1.33, 1.38, 1.41, 1.45, 1.5, 1.55, 1.62])


def widget_text(panel):
    return panel._repr_mimebundle_()["text/plain"]


def test_threshold_explorer_follows_the_slider():
    explorer = fr_widgets.ThresholdExplorer(TOY_SAME, TOY_DIFFERENT)
    assert explorer.slider.value == fr_utils.DEFAULT_THRESHOLD
    assert explorer.slider.continuous_update is False
    assert (explorer.slider.min, explorer.slider.max) == (0.3, 1.8)
    previous_png = bytes(explorer.image.value)
    for threshold in THRESHOLDS:
        explorer.slider.value = threshold
        expected = fr_eval.confusion_counts(TOY_SAME, TOY_DIFFERENT, threshold)
        assert explorer.counts == expected
        assert f'<span class="fr-counts" style="font-family:monospace;font-weight:bold">' \
               f'{fr_plots.counts_text(expected)}</span>' in explorer.counts_html.value
        assert list(explorer.plot.threshold_line.get_xdata()) == [threshold, threshold]
        assert explorer.plot.operating_point.get_data()[0][0] == expected.far
        png = bytes(explorer.image.value)
        assert png.startswith(b"\x89PNG") and png != previous_png
        previous_png = png
        assert widget_text(explorer) == f"ThresholdExplorer(threshold {threshold:.2f}: " \
                                        f"{fr_plots.counts_text(expected)})"


def test_threshold_explorer_buttons_set_the_slider():
    explorer = fr_widgets.ThresholdExplorer(TOY_SAME, TOY_DIFFERENT, threshold=0.5)
    eer, eer_threshold = fr_eval.equal_error_rate(TOY_SAME, TOY_DIFFERENT)
    explorer.eer_button.click()
    assert explorer.slider.value == pytest.approx(eer_threshold)
    assert explorer.counts == fr_eval.confusion_counts(TOY_SAME, TOY_DIFFERENT, eer_threshold)
    assert f"{eer_threshold:.3f}" in explorer.eer_button.description
    for target in (0.001, 0.1):
        explorer.far_dropdown.value = target
        expected, counts = fr_eval.threshold_at_far(TOY_SAME, TOY_DIFFERENT, target)
        assert f"{expected:.3f}" in explorer.far_button.description
        explorer.far_button.click()
        assert explorer.slider.value == pytest.approx(expected)
        assert explorer.counts.far <= target and explorer.counts == counts


def test_set_threshold_clamps_to_the_slider_range():
    explorer = fr_widgets.ThresholdExplorer(TOY_SAME, TOY_DIFFERENT)
    explorer.set_threshold(5.0)
    assert explorer.slider.value == 1.8 and explorer.counts.threshold == 1.8
    explorer.set_threshold(0.0)
    assert explorer.slider.value == 0.3 and explorer.counts.true_accepts == 0


def test_panel_output_is_the_widget_with_a_stable_summary():
    explorer = fr_widgets.ThresholdExplorer(TOY_SAME, TOY_DIFFERENT)
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "application/vnd.jupyter.widget-view+json"}
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    again = fr_widgets.ThresholdExplorer(TOY_SAME, TOY_DIFFERENT)._repr_mimebundle_()
    assert again["text/plain"] == bundle["text/plain"]  # what nbval compares: identical every run
    assert "fr-threshold-explorer" in explorer.widget._dom_classes


def test_link_thresholds_moves_every_panel():
    camera = toy_camera()
    crops = np.zeros((5, 160, 160, 3), np.uint8)
    explorer = fr_widgets.ThresholdExplorer(*camera.same_different())
    heatmap = fr_widgets.DistanceHeatmap(camera)
    gallery = fr_widgets.WhoIsItGallery(camera, crops)
    playground = fr_widgets.VerifyPlayground(camera, crops)
    links = fr_widgets.link_thresholds(explorer, heatmap, gallery, playground)
    gallery.slider.value = 0.8  # any of them drives all of them
    for panel in (explorer, heatmap, gallery, playground):
        assert panel.slider.value == 0.8
    assert heatmap.counts == explorer.counts == camera.counts(0.8)
    assert [row.outcome for row in gallery.rows] == [row.outcome for row in fr_plots.identify_all(camera, 0.8)]
    assert playground.outcome.threshold == 0.8
    for link in links:
        link.unlink()


def test_gallery_tiles_follow_the_threshold_and_the_filter():
    camera = toy_camera()
    gallery = fr_widgets.WhoIsItGallery(camera, np.zeros((5, 160, 160, 3), np.uint8), threshold=1.0)
    assert "fr-wrong-person" in gallery.captions[2].value and "nearest: ann" in gallery.captions[2].value
    assert gallery.tiles[2].layout.border == f"3px solid {fr_plots.WRONG_COLOUR}"
    gallery.show.value = "mistakes only"
    shown = [i for i, tile in enumerate(gallery.tiles) if tile.layout.display != "none"]
    assert shown == [2, 3, 4]  # wrong person, missed, stranger let in
    gallery.slider.value = 0.9
    shown = [i for i, tile in enumerate(gallery.tiles) if tile.layout.display != "none"]
    assert shown == [1, 2, 3]  # bob missed at 0.9, cid missed twice; the stranger is now rejected
    assert widget_text(gallery) == "WhoIsItGallery(5 camera photos at threshold 0.90: correct 1, missed 3, " \
                                   "stranger rejected 1)"
    assert "missed: 3" in gallery.summary.value


def test_verify_playground_dropdowns():
    camera = toy_camera()
    crops = np.random.default_rng(4).integers(0, 255, (5, 160, 160, 3), dtype=np.uint8)
    playground = fr_widgets.VerifyPlayground(camera, crops, threshold=1.0, enrolled_crops={"ann": crops[0]})
    playground.photo.value = 2
    playground.identity.value = "ann"
    assert playground.outcome.kind == "false accept" and playground.outcome.distance == 0.95
    assert '<span class="fr-distance">0.9500</span> &lt; 1.00' in playground.result.value
    assert "It&#x27;s ann, welcome in!" in playground.result.value
    playground.slider.value = 0.9
    assert playground.outcome.kind == "true reject"
    assert widget_text(playground) == "VerifyPlayground(p2 claims ann at threshold 0.90: true reject)"
    assert playground.enrolled_image.value  # the enrolled face is shown beside the photo


def test_identify_html_lists_every_distance():
    text = fr_widgets.identify_html(["ann", "bob"], np.array([0.9, 0.4]), 0.5, claimed="ann")
    assert "it&#x27;s bob, the distance is 0.4000" in text
    assert "It&#x27;s not ann, please go away" in text
    assert text.index("<td>bob</td>") < text.index("<td>ann</td>")  # nearest first


def test_image_from_bytes_decodes_in_memory_and_refuses_garbage():
    picture = Image.new("RGB", (40, 30), (10, 20, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = fr_widgets.image_from_bytes(buffer.getvalue(), "a.png")
    assert image.shape == (30, 40, 3) and tuple(image[0, 0]) == (10, 20, 30)
    with pytest.raises(fr_utils.ImageLoadError, match="empty"):
        fr_widgets.image_from_bytes(b"", "e.jpg")
    with pytest.raises(fr_utils.ImageLoadError, match="not a readable image"):
        fr_widgets.image_from_bytes(b"hello, not a photo", "notes.jpg")
    with pytest.raises(fr_utils.ImageLoadError, match="too small"):
        tiny = io.BytesIO()
        Image.new("RGB", (5, 5)).save(tiny, format="PNG")
        fr_widgets.image_from_bytes(tiny.getvalue(), "tiny.png")


# ---------------------------------------------------------------------------------------------
# Panels on the real model and photos (the notebook's section 10 data)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def camera_rows(celebrity_encoded):
    """Rows of celebrity_encoded that are camera photos: every photo but the 5 enrolled ones."""
    _, camera_paths = fr_plots.enrolment_split(celebrity_encoded.paths)
    return [celebrity_encoded.paths.index(p) for p in camera_paths]


@pytest.fixture(scope="module")
def camera(celebrity_encoded, one_shot_database, camera_rows):
    """Database x camera photos: 113 photos, 5 enrolled people (the notebook's section 10 data)."""
    paths = [celebrity_encoded.paths[i] for i in camera_rows]
    return fr_plots.camera_distances(one_shot_database, celebrity_encoded.encodings[camera_rows],
                                     [p.parent.name for p in paths], paths)


@pytest.fixture(scope="module")
def camera_crops(celebrity_encoded, camera_rows):
    return celebrity_encoded.crops[camera_rows]


def test_moving_the_slider_from_the_default_to_0_7(camera):
    same, different = camera.same_different()
    assert (len(same), len(different)) == (113, 452)
    explorer = fr_widgets.ThresholdExplorer(same, different)
    default = fr_eval.confusion_counts(same, different, fr_utils.DEFAULT_THRESHOLD)
    assert explorer.counts == default
    explorer.slider.value = 0.7
    at_seed = fr_eval.confusion_counts(same, different, 0.7)
    assert explorer.counts == at_seed != default
    assert fr_plots.counts_text(at_seed) in explorer.counts_html.value
    # The trade-off itself: the seed's 0.7 turns away most of the rightful visitors.
    assert at_seed.tar < 0.5 < default.tar and at_seed.far <= default.far
    assert list(explorer.plot.threshold_line.get_xdata()) == [0.7, 0.7]


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_real_panels_agree_with_the_pure_functions(camera, camera_crops, threshold):
    heatmap = fr_widgets.DistanceHeatmap(camera, threshold)
    assert heatmap.counts == camera.counts(threshold)
    gallery = fr_widgets.WhoIsItGallery(camera, camera_crops, threshold)
    identified = fr_plots.identify_all(camera, threshold)
    assert gallery.rows == identified
    assert sum(gallery.outcomes.values()) == 113 and gallery.outcomes[fr_plots.ACCEPTED_STRANGER] == 0
    # who_is_it's answer is right exactly when the true identity is the nearest and accepted.
    best = camera.distances.argmin(axis=1)
    right = [camera.names[j] == label and camera.distances[i, j] < threshold
             for i, (j, label) in enumerate(zip(best, camera.labels))]
    assert gallery.outcomes[fr_plots.CORRECT] == sum(right)


def test_verify_playground_matches_fr_utils_verify(camera, camera_crops, one_shot_database, model, capsys):
    playground = fr_widgets.VerifyPlayground(camera, camera_crops)
    index = camera.photos.index("val/jerry_seinfeld_03")
    playground.photo.value = index
    for claimed in ("jerry_seinfeld", "madonna"):
        playground.identity.value = claimed
        path = fr_utils.IMAGES_DIR / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg"
        dist, door_open = fr_utils.verify(path, claimed, one_shot_database, model)
        assert playground.outcome.distance == pytest.approx(dist, abs=1e-5)
        assert playground.outcome.door_open == door_open
        assert capsys.readouterr().out.strip() == playground.outcome.message


def test_embedding_map_on_real_encodings(camera, celebrity_encoded, one_shot_database):
    labels = [p.parent.name for p in celebrity_encoded.paths]
    panel = fr_widgets.EmbeddingMap(celebrity_encoded.encodings, labels, one_shot_database)
    coords = panel.projection.coords
    # FaceNet puts each person's photos together: their centroids are far apart in the map.
    centroids = {name: coords[[i for i, l in enumerate(labels) if l == name]].mean(axis=0) for name in set(labels)}
    spread = np.mean([np.linalg.norm(coords[i] - centroids[l]) for i, l in enumerate(labels)])
    gaps = [np.linalg.norm(centroids[a] - centroids[b]) for a in centroids for b in centroids if a < b]
    assert np.median(gaps) > spread
    assert widget_text(panel) == "EmbeddingMap(118 encodings of 5 people, PCA to 2-D)"
    assert bytes(panel.image.value).startswith(b"\x89PNG")


def photo_bytes(path):
    return (fr_utils.IMAGES_DIR / path).read_bytes()


def upload_value(name, data):
    """What ipywidgets 8's FileUpload.value holds after a person picks one file."""
    import datetime

    return ({"name": name, "type": "image/jpeg", "size": len(data), "content": memoryview(data),
             "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)


def test_enrol_a_new_person_then_identify_them(one_shot_database, model, tmp_path):
    database = {name: enc for name, enc in one_shot_database.items() if name != "madonna"}
    panel = fr_widgets.YourPhotos(database, model)
    enrol, identify = panel.enrol, panel.identify
    assert enrol.enrol_button.disabled

    identify.upload.value = upload_value("who.jpg", photo_bytes("val/madonna/madonna_03.jpg"))
    assert identify.distances is not None
    assert "Not in the database." in identify.result.value  # madonna is not enrolled yet

    enrol.upload.value = upload_value("madonna_01.jpg", photo_bytes("train/madonna/madonna_01.jpg"))
    assert "One face found in madonna_01.jpg" in enrol.message.value
    assert not enrol.enrol_button.disabled and enrol.preview.value and enrol.crop_image.value
    enrol.name.value = "madonna"
    enrol.enrol_button.click()
    assert "Enrolled madonna" in enrol.message.value and set(database) == set(one_shot_database)
    np.testing.assert_allclose(database["madonna"], one_shot_database["madonna"], atol=1e-5)

    # The identify panel sees the new person at once, without re-uploading.
    assert "madonna" in [value for _, value in identify.claimed.options]
    assert "it&#x27;s madonna, the distance is" in identify.result.value
    names, distances = identify.distances
    assert names[int(np.argmin(distances))] == "madonna"
    identify.claimed.value = "madonna"
    assert "It&#x27;s madonna, welcome in!" in identify.result.value
    identify.slider.value = 0.3  # too strict for anybody
    assert "Not in the database." in identify.result.value
    assert "It&#x27;s not madonna, please go away" in identify.result.value

    enrol.name.value = "madonna"
    enrol.enrol_button.click()
    assert "already enrolled" in enrol.message.value
    saved = enrol.save(tmp_path / "mine.npz")
    loaded = fr_utils.load_database(saved)
    assert list(loaded) == list(database) and "no photo is stored" in enrol.message.value
    assert list(tmp_path.iterdir()) == [saved]  # the database file only


def test_enrol_refuses_a_photo_without_a_face(model):
    database = {}
    panel = fr_widgets.EnrolFromUpload(database, model)
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank, format="JPEG")
    panel.upload.value = upload_value("wall.jpg", blank.getvalue())
    assert "No face found in wall.jpg" in panel.message.value and "fr-message-error" in panel.message.value
    assert panel.enrol_button.disabled and panel.enrol("nobody") is None and database == {}
    panel.upload.value = upload_value("notes.jpg", b"not a photo at all")
    assert "not a readable image" in panel.message.value and panel.enrol_button.disabled


def test_enrol_asks_which_face_when_there_are_several(model):
    left = fr_utils.load_image(fr_utils.IMAGES_DIR / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg")
    right = fr_utils.load_image(fr_utils.IMAGES_DIR / "val" / "mindy_kaling" / "mindy_kaling_03.jpg")
    height = min(left.shape[0], right.shape[0])
    pair = np.concatenate([left[:height], right[:height]], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pair).save(buffer, format="JPEG", quality=95)
    database = {}
    panel = fr_widgets.EnrolFromUpload(database, model)
    panel.upload.value = upload_value("two.jpg", buffer.getvalue())
    count = len(panel.faces)
    assert count >= 2
    assert f"{count} faces found in two.jpg" in panel.message.value and "fr-message-warning" in panel.message.value
    assert panel.face_choice.layout.display is None and len(panel.face_choice.options) == count
    first_crop = panel.crop
    panel.face_choice.value = 1
    assert not np.array_equal(panel.crop, first_crop)
    assert panel.enrol("second_face") == "second_face"
    expected = fr_utils.encode_faces(fr_utils.crop_face(panel.image, panel.faces[1])[None], model)
    np.testing.assert_allclose(database["second_face"], expected, atol=1e-6)
