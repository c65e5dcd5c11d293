"""Interactive threshold and distance explorers (ipywidgets 8): a thin layer over ``fr_plots``.

Each panel computes with ``fr_eval`` / ``fr_plots`` and draws with matplotlib's object API into an
``ipywidgets.Image`` (a PNG) or ``HTML`` widget. Nothing is printed or displayed from a callback:
every change travels as widget state, so no Jupyter extension beyond ipywidgets is needed, and
the only output a cell leaves is the panel itself.

Displaying a panel (the last expression of a cell, or ``display(panel)``) shows its widget; its
``text/plain`` is a short summary (counts, and rates computed from them, never raw float distances),
identical on every run: that is what strict nbval compares, as it ignores the widget-view mime
type, whose model id changes per run.

Panels (all expose ``.widget``; those with a threshold expose ``.slider`` and ``.set_threshold``):

* :class:`ThresholdExplorer` -- histograms, counts, ROC, EER and FAR-target buttons.
* :class:`DistanceHeatmap` -- database x camera photos, decisions at the threshold.
* :class:`WhoIsItGallery` -- each camera photo, its nearest identity, distance and decision.
* :class:`VerifyPlayground` -- a photo and a claimed identity from dropdowns.
* :class:`EmbeddingMap` -- the encodings in 2-D (PCA), coloured by person.
* :class:`EnrolFromUpload`, :class:`IdentifyUpload`, :class:`YourPhotos` -- the student's own photos.

:func:`link_thresholds` makes several panels share one threshold.
"""

from __future__ import annotations

import html
import io
import warnings

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import fr_eval
import fr_plots
import fr_utils

SLIDER_MIN, SLIDER_MAX, SLIDER_STEP = 0.3, 1.8, 0.01
TARGET_FARS = (0.001, 0.01, 0.05, 0.1)

# Border colour of a gallery tile, by who_is_it outcome.
OUTCOME_COLOURS = {
    fr_plots.CORRECT: fr_plots.SAME_COLOUR,
    fr_plots.REJECTED_STRANGER: fr_plots.SAME_COLOUR,
    fr_plots.MISSED: "#999999",
    fr_plots.WRONG_PERSON: fr_plots.WRONG_COLOUR,
    fr_plots.ACCEPTED_STRANGER: fr_plots.WRONG_COLOUR,
}


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------
def threshold_slider(value=None, description="threshold"):
    """The threshold slider every panel uses: 0.3-1.8 in 0.01 steps, updating on release."""
    value = fr_utils.DEFAULT_THRESHOLD if value is None else float(value)
    return widgets.FloatSlider(
        value=min(max(value, SLIDER_MIN), SLIDER_MAX), min=SLIDER_MIN, max=SLIDER_MAX, step=SLIDER_STEP,
        description=description, continuous_update=False, readout_format=".2f",
        layout=widgets.Layout(width="480px"),
    )


def clamp_to_slider(value):
    """A threshold brought into the slider's range (a data-chosen one can fall outside it)."""
    return min(max(float(value), SLIDER_MIN), SLIDER_MAX)


class _Panel:
    """A widget plus a stable plain-text summary for notebook outputs."""

    widget = None

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_())
        bundle["text/plain"] = repr(self)
        return bundle


class _ThresholdPanel(_Panel):
    slider = None

    @property
    def threshold(self):
        return float(self.slider.value)

    def set_threshold(self, threshold):
        """Move the slider (clamped to its range); the panel redraws as if a person had moved it."""
        value = clamp_to_slider(threshold)
        if value == self.slider.value:
            self._refresh()
        else:
            self.slider.value = value

    def _on_slider(self, change):
        self._refresh()

    def _refresh(self):
        raise NotImplementedError


def link_thresholds(*panels):
    """Keep the sliders of several panels at one value; returns the links (``.unlink()`` them)."""
    first, *others = panels
    return [widgets.link((first.slider, "value"), (other.slider, "value")) for other in others]


def _png_widget(width=None):
    layout = widgets.Layout(width=width) if width else widgets.Layout()
    return widgets.Image(format="png", layout=layout)


def _message(kind, text):
    """HTML for a status line: kind is 'ok', 'warning' or 'error' (CSS class fr-message-<kind>)."""
    colour = {"ok": "#1b7837", "warning": "#b35806", "error": "#b2182b"}[kind]
    return f'<div class="fr-message fr-message-{kind}" style="color:{colour}">{html.escape(text)}</div>'


# ---------------------------------------------------------------------------------------------
# 1. The threshold trade-off
# ---------------------------------------------------------------------------------------------
def counts_html(counts):
    """The counts as HTML: the machine-readable line in ``span.fr-counts``, then what it means."""
    line = fr_plots.counts_text(counts)
    threshold = fr_plots.format_threshold(counts.threshold)
    return (
        f'<div class="fr-counts-box" style="line-height:1.5">threshold <span class="fr-threshold">{threshold}</span>: '
        f'<span class="fr-counts" style="font-family:monospace;font-weight:bold">{line}</span><br>'
        f'<span class="fr-explain">The door opens for {counts.true_accepts} of {counts.n_same} visits by the '
        f'enrolled person (true accepts) and for {counts.false_accepts} of {counts.n_different} visits by '
        f'somebody else (false accepts); {counts.false_rejects} rightful visitors are turned away '
        f'(false rejects) and {counts.true_rejects} impostors are stopped (true rejects).</span></div>'
    )


class ThresholdExplorer(_ThresholdPanel):
    """Slider-driven histograms, counts and ROC for one set of same/different distances.

    Parameters
    ----------
    same, different : array_like
        Distances of same-person and different-person pairs (e.g. ``CameraDistances.same_different()``).
    threshold : float, optional
        Starting threshold (default ``fr_utils.DEFAULT_THRESHOLD``).
    target_fars : sequence of float
        The FAR targets offered for "threshold at FAR".

    Attributes
    ----------
    slider : FloatSlider
    counts : fr_eval.VerificationCounts at the slider's threshold (updated on every move)
    plot : fr_plots.ThresholdPlot; ``figure`` is its Figure
    eer, eer_threshold : float
    eer_button, far_dropdown, far_button : the buttons that set the slider
    counts_html, image : the HTML and PNG widgets shown
    widget : VBox (CSS class ``fr-threshold-explorer``)
    """

    def __init__(self, same, different, threshold=None, target_fars=TARGET_FARS):
        self.same = np.asarray(same, dtype=np.float64)
        self.different = np.asarray(different, dtype=np.float64)
        self.slider = threshold_slider(threshold)
        self.plot = fr_plots.ThresholdPlot(self.same, self.different, self.slider.value)
        self.figure = self.plot.figure
        self.eer, self.eer_threshold = self.plot.eer, self.plot.eer_threshold
        self.eer_button = widgets.Button(
            description=f"equal error rate: t = {self.eer_threshold:.3f}",
            tooltip=f"FAR = FRR = {self.eer:.4f} here", layout=widgets.Layout(width="260px"))
        self.eer_button.on_click(lambda _: self.set_threshold(self.eer_threshold))
        self.far_dropdown = widgets.Dropdown(
            options=[(f"{far:.1%}", far) for far in target_fars], value=target_fars[1] if len(target_fars) > 1
            else target_fars[0], description="target FAR", layout=widgets.Layout(width="200px"))
        self.far_button = widgets.Button(layout=widgets.Layout(width="260px"))
        self.far_button.on_click(lambda _: self.set_threshold(self.threshold_for_far()))
        self.far_dropdown.observe(self._on_target, "value")
        self.counts_html = widgets.HTML()
        self.image = _png_widget()
        self.counts = None
        self._on_target()
        self.slider.observe(self._on_slider, "value")
        self.widget = widgets.VBox([
            widgets.HBox([self.slider, self.eer_button]),
            widgets.HBox([self.far_dropdown, self.far_button]),
            self.counts_html,
            self.image,
        ])
        self.widget.add_class("fr-threshold-explorer")
        self._refresh()

    def threshold_for_far(self, target_far=None):
        """The largest threshold whose FAR on these pairs is at most the target (``fr_eval``)."""
        target = self.far_dropdown.value if target_far is None else target_far
        threshold, _ = fr_eval.threshold_at_far(self.same, self.different, target)
        return threshold

    def _on_target(self, change=None):
        self.far_button.description = (
            f"FAR ≤ {self.far_dropdown.value:.1%}: t = {clamp_to_slider(self.threshold_for_far()):.3f}")

    def _refresh(self):
        # The picture first, the numbers second: when the numbers change in the browser, the
        # picture drawn for them has already been sent (messages arrive in order).
        self.counts = self.plot.update(self.threshold)
        self.image.value = self.plot.png()
        self.counts_html.value = counts_html(self.counts)

    def __repr__(self):
        threshold = fr_plots.format_threshold(self.counts.threshold)
        return f"ThresholdExplorer(threshold {threshold}: {fr_plots.counts_text(self.counts)})"


# ---------------------------------------------------------------------------------------------
# 2. The distance matrix
# ---------------------------------------------------------------------------------------------
class DistanceHeatmap(_ThresholdPanel):
    """Database x camera photos distances, with each decision at the slider's threshold.

    Attributes
    ----------
    camera : fr_plots.CameraDistances
    figure : the latest heatmap Figure (rebuilt on every move)
    counts : fr_eval.VerificationCounts at the threshold
    """

    def __init__(self, camera, threshold=None):
        self.camera = camera
        self.slider = threshold_slider(threshold)
        self.summary = widgets.HTML()
        self.image = _png_widget()
        self.slider.observe(self._on_slider, "value")
        self.widget = widgets.VBox([self.slider, self.summary, self.image])
        self.widget.add_class("fr-distance-heatmap")
        self._refresh()

    def _refresh(self):
        self.counts = self.camera.counts(self.threshold)
        self.figure = fr_plots.heatmap_figure(self.camera, self.threshold)
        self.image.value = fr_plots.figure_png(self.figure)  # before the numbers, as above
        self.summary.value = f'<span class="fr-counts">{fr_plots.counts_text(self.counts)}</span>'

    def __repr__(self):
        return (f"DistanceHeatmap({len(self.camera.names)} enrolled x {len(self.camera.labels)} camera photos, "
                f"threshold {fr_plots.format_threshold(self.threshold)}: {fr_plots.counts_text(self.counts)})")


# ---------------------------------------------------------------------------------------------
# 3. who_is_it on every camera photo
# ---------------------------------------------------------------------------------------------
def tile_caption(row):
    """HTML caption of one gallery tile (CSS class ``fr-tile`` plus one per outcome)."""
    slug = row.outcome.replace(" ", "-")
    verdict = f"accept as {row.nearest}" if row.accepted else "reject: not in the database"
    return (f'<div class="fr-tile fr-{slug}" style="font-size:11px;line-height:1.25;overflow-wrap:anywhere">'
            f'<b>{html.escape(row.photo)}</b><br>nearest: {html.escape(row.nearest)}<br>'
            f'distance {row.distance:.3f}<br>{html.escape(verdict)}<br><i>{row.outcome}</i></div>')


def outcome_summary_html(counts):
    parts = ", ".join(f"{outcome}: {n}" for outcome, n in counts.items())
    return f'<span class="fr-gallery-summary">{parts}</span>'


class WhoIsItGallery(_ThresholdPanel):
    """Every camera photo with who_is_it's answer at the slider's threshold.

    Parameters
    ----------
    camera : fr_plots.CameraDistances
    crops : array_like, shape (n_photos, 160, 160, 3), uint8
        The face crops, in the rows' order (``EncodedPhotos.crops``).
    threshold : float, optional
    thumbnail : int
        Tile picture side in pixels.

    Attributes
    ----------
    rows : list of fr_plots.Identification at the threshold
    outcomes : dict outcome -> count
    tiles : list of VBox, one per photo; ``show`` is the "all / mistakes only" toggle
    """

    def __init__(self, camera, crops, threshold=None, thumbnail=80):
        crops = np.asarray(crops)
        if len(crops) != len(camera.labels):
            raise ValueError(f"{len(crops)} crops for {len(camera.labels)} camera photos")
        self.camera = camera
        self.slider = threshold_slider(threshold)
        self.show = widgets.ToggleButtons(options=["all", "mistakes only"], value="all",
                                          description="show", style={"button_width": "110px"})
        self.summary = widgets.HTML()
        # One layout and style shared by all pictures and captions: fewer widget models to sync
        # and to store in the notebook. Each tile keeps its own layout (border, visibility).
        picture_layout = widgets.Layout(width=f"{thumbnail}px")
        self.captions = []
        for _ in crops:
            shared = dict(layout=self.captions[0].layout, style=self.captions[0].style) if self.captions else {}
            self.captions.append(widgets.HTML(**shared))
        self.tiles = [
            widgets.VBox([widgets.Image(value=fr_plots.image_bytes(crop, thumbnail, quality=80), format="jpeg",
                                        layout=picture_layout), caption],
                         layout=widgets.Layout(padding="3px", width=f"{thumbnail + 72}px"))
            for crop, caption in zip(crops, self.captions)
        ]
        # A scrolling box: a hundred photos would otherwise push the rest of the notebook far down.
        grid = widgets.GridBox(self.tiles, layout=widgets.Layout(
            grid_template_columns=f"repeat(auto-fill, {thumbnail + 72}px)", grid_gap="6px",
            max_height="620px", overflow="auto"))
        self.slider.observe(self._on_slider, "value")
        self.show.observe(self._on_slider, "value")
        self.widget = widgets.VBox([widgets.HBox([self.slider, self.show]), self.summary, grid])
        self.widget.add_class("fr-who-is-it-gallery")
        self._refresh()

    def _refresh(self):
        self.rows = fr_plots.identify_all(self.camera, self.threshold)
        self.outcomes = fr_plots.outcome_counts(self.rows)
        mistakes_only = self.show.value == "mistakes only"
        for row, tile, caption in zip(self.rows, self.tiles, self.captions):
            caption.value = tile_caption(row)
            tile.layout.border = f"3px solid {OUTCOME_COLOURS[row.outcome]}"
            hidden = mistakes_only and row.outcome in fr_plots.GOOD_OUTCOMES
            tile.layout.display = "none" if hidden else None
        self.summary.value = outcome_summary_html(self.outcomes)

    def __repr__(self):
        parts = ", ".join(f"{outcome} {n}" for outcome, n in self.outcomes.items() if n)
        return (f"WhoIsItGallery({len(self.rows)} camera photos at threshold "
                f"{fr_plots.format_threshold(self.threshold)}: {parts})")


# ---------------------------------------------------------------------------------------------
# 4. verify on a chosen photo and claim
# ---------------------------------------------------------------------------------------------
def verify_html(outcome):
    sign = "&lt;" if outcome.door_open else "≥"
    threshold = fr_plots.format_threshold(outcome.threshold)
    return (f'<div class="fr-verify">distance({html.escape(outcome.photo)}, {html.escape(outcome.claimed)}) = '
            f'<span class="fr-distance">{outcome.distance:.4f}</span> {sign} {threshold}<br>'
            f'<b class="fr-verify-message">{html.escape(outcome.message)}</b><br>'
            f'<span class="fr-verify-kind">The photo shows {html.escape(outcome.truth)}: '
            f'a {outcome.kind}.</span></div>')


class VerifyPlayground(_ThresholdPanel):
    """Pick a camera photo and a claimed identity; see the distance and the door's decision.

    Parameters
    ----------
    camera : fr_plots.CameraDistances
    crops : (n_photos, 160, 160, 3) uint8, the face crops in row order
    enrolled_crops : dict name -> (160, 160, 3) uint8, optional
        The enrolled faces, shown beside the photo when given.

    Attributes
    ----------
    photo, identity : Dropdown (photo value = row index)
    outcome : fr_plots.VerifyOutcome of the current choice
    """

    def __init__(self, camera, crops, threshold=None, enrolled_crops=None):
        self.camera = camera
        self.crops = np.asarray(crops)
        self.enrolled_crops = dict(enrolled_crops or {})
        self.photo = widgets.Dropdown(options=[(p, i) for i, p in enumerate(camera.photos)], value=0,
                                      description="photo")
        self.identity = widgets.Dropdown(options=list(camera.names), value=camera.names[0],
                                         description="claims to be")
        self.slider = threshold_slider(threshold)
        self.photo_image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px"))
        self.enrolled_image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px"))
        self.result = widgets.HTML()
        for control in (self.photo, self.identity, self.slider):
            control.observe(self._on_slider, "value")
        pictures = [self.photo_image] + ([self.enrolled_image] if self.enrolled_crops else [])
        self.widget = widgets.VBox([widgets.HBox([self.photo, self.identity]), self.slider,
                                    widgets.HBox(pictures), self.result])
        self.widget.add_class("fr-verify-playground")
        self._refresh()

    def _refresh(self):
        index = self.photo.value
        self.outcome = fr_plots.verify_outcome(self.camera, index, self.identity.value, self.threshold)
        self.photo_image.value = fr_plots.image_bytes(self.crops[index], 160)
        if self.identity.value in self.enrolled_crops:
            self.enrolled_image.value = fr_plots.image_bytes(self.enrolled_crops[self.identity.value], 160)
        self.result.value = verify_html(self.outcome)

    def __repr__(self):
        o = self.outcome
        return (f"VerifyPlayground({o.photo} claims {o.claimed} at threshold "
                f"{fr_plots.format_threshold(o.threshold)}: {o.kind})")


# ---------------------------------------------------------------------------------------------
# 5. The embedding map
# ---------------------------------------------------------------------------------------------
class EmbeddingMap(_Panel):
    """The encodings projected to 2-D by PCA, one colour per person; enrolled entries as stars.

    Attributes
    ----------
    projection : fr_plots.Projection (fitted on ``encodings``)
    figure : Figure
    """

    def __init__(self, encodings, labels, database=None):
        self.labels = [str(label) for label in labels]
        self.projection = fr_plots.pca_2d(encodings)
        names, points = fr_plots.database_matrix(database) if database else (None, None)
        self.figure = fr_plots.embedding_figure(self.projection, self.labels, points, names)
        self.image = _png_widget(width="560px")
        self.image.value = fr_plots.figure_png(self.figure)
        self.widget = widgets.VBox([self.image])
        self.widget.add_class("fr-embedding-map")

    def __repr__(self):
        return f"EmbeddingMap({len(self.labels)} encodings of {len(set(self.labels))} people, PCA to 2-D)"


# ---------------------------------------------------------------------------------------------
# 6. The student's own photos
# ---------------------------------------------------------------------------------------------
def uploaded_files(value):
    """``FileUpload.value`` -> list of (file name, bytes), for ipywidgets 8 (tuple of dicts)."""
    files = []
    for item in value or ():
        content = item["content"]
        files.append((str(item.get("name", "upload")), content.tobytes() if hasattr(content, "tobytes")
                      else bytes(content)))
    return files


def image_from_bytes(data, name="upload", max_side=fr_utils.MAX_IMAGE_SIDE):
    """Decode uploaded bytes in memory (never written to disk) as ``fr_utils.load_image`` would:
    upright, 8-bit RGB, at most ``max_side`` on its long side.

    Raises
    ------
    fr_utils.ImageLoadError
        Empty, not an image, damaged, too small or too large (with the file name and what to do).
    """
    if not data:
        raise fr_utils.ImageLoadError(f"{name}: the file is empty (0 bytes). Choose the photo again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                limit = Image.MAX_IMAGE_PIXELS
                if limit and width * height > limit:
                    raise fr_utils.ImageTooLargeError(
                        f"{name}: {width}x{height} pixels is more than the {limit:,}-pixel safety limit; "
                        "resize the photo and upload it again.")
                if min(width, height) < fr_utils.MIN_IMAGE_SIDE:
                    raise fr_utils.ImageLoadError(f"{name}: {width}x{height} pixels is too small to hold a face.")
                picture.draft("RGB", (max_side, max_side))
                picture.load()
                picture = ImageOps.exif_transpose(picture)
                if max(picture.size) > max_side:
                    picture = picture.copy()
                    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                return fr_utils._to_rgb(picture)
    except fr_utils.ImageLoadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise fr_utils.ImageLoadError(f"{name}: not a readable image; upload a JPEG or PNG photo.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, IndexError, TypeError, KeyError) as exc:
        raise fr_utils.ImageLoadError(f"{name}: the image is damaged or truncated ({exc}).") from exc


def faces_message(name, count):
    """What to tell the student about the faces found in an uploaded photo."""
    if count == 0:
        return "error", (f"No face found in {name}. Use a photo where one face is clearly visible: "
                         "frontal, well lit, not too small.")
    if count == 1:
        return "ok", f"One face found in {name}."
    return "warning", (f"{count} faces found in {name}. Choose the face to use (1 is the largest confident one); "
                       "the others are ignored.")


def _show_picture(image_widget, data):
    """Set an Image widget's bytes; hide it while there are none."""
    image_widget.value = data
    image_widget.layout.display = None if data else "none"


class _UploadPanel(_Panel):
    """Shared upload handling: decode, detect, show the faces, keep the chosen crop in memory."""

    def __init__(self, model, description):
        self.model = model
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description=description,
                                         layout=widgets.Layout(width="auto"))
        self.face_choice = widgets.Dropdown(description="face", layout=widgets.Layout(display="none"))
        # Pictures are hidden while empty (an empty image shows as a broken-image icon).
        self.preview = widgets.Image(format="jpeg", layout=widgets.Layout(max_width="480px", display="none"))
        self.crop_image = widgets.Image(format="jpeg", layout=widgets.Layout(width="160px", display="none"))
        self.message = widgets.HTML()
        self.file_name = None
        self.image = None  # the uploaded photo, in memory only
        self.faces = []
        self._holding = False
        self.upload.observe(self._on_upload, "value")
        self.face_choice.observe(self._on_face, "value")

    @property
    def crop(self):
        """The chosen face, 160x160 uint8, or None."""
        if not self.faces or self.face_choice.value is None:
            return None
        return fr_utils.crop_face(self.image, self.faces[self.face_choice.value])

    def load_bytes(self, data, name="upload"):
        """Take a photo as bytes (what the upload button delivers); returns the number of faces."""
        self._holding = True  # one redraw at the end, not one per control changed on the way
        try:
            self.file_name, self.image, self.faces = name, None, []
            self.face_choice.options = []
            _show_picture(self.preview, b"")
            _show_picture(self.crop_image, b"")
            try:
                self.image = image_from_bytes(data, name)
                self.faces = fr_utils.detect_faces(self.image)
            except fr_utils.FaceRecognitionError as exc:
                self._show("error", str(exc))
            else:
                self.face_choice.options = [(f"{k + 1}" + (" (largest)" if k == 0 else ""), k)
                                            for k in range(len(self.faces))]
                if self.faces:
                    self.face_choice.value = 0  # ipywidgets 8 selects nothing when options change
                self._show(*faces_message(name, len(self.faces)))
            self.face_choice.layout.display = None if len(self.faces) > 1 else "none"
        finally:
            self._holding = False
        self._on_face()
        return len(self.faces)

    def _on_upload(self, change):
        files = uploaded_files(self.upload.value)
        if files:
            name, data = files[-1]
            self.load_bytes(data, name)

    def _on_face(self, change=None):
        if self._holding:
            return
        if self.image is not None:
            chosen = self.face_choice.value if self.face_choice.value is not None else 0
            overlay = fr_plots.faces_overlay(self.image, [f.box for f in self.faces], chosen)
            _show_picture(self.preview, fr_plots.image_bytes(overlay))
            crop = self.crop
            _show_picture(self.crop_image, fr_plots.image_bytes(crop) if crop is not None else b"")
        self._faces_changed()

    def _show(self, kind, text):
        self.message.value = _message(kind, text)

    def _faces_changed(self):
        """Hook: the photo or the chosen face changed."""


class EnrolFromUpload(_UploadPanel):
    """Enrol a new person from one uploaded photo into ``database`` (the dict is changed in place).

    The photo and its crop stay in memory; only "Save database" writes anything (encodings only,
    with ``fr_utils.save_database``).

    Attributes
    ----------
    upload, name, face_choice, enrol_button, save_path, save_button, message : the controls
    on_enrol : list of callables ``f(name)`` run after each enrolment
    """

    def __init__(self, database, model):
        super().__init__(model, "Photo to enrol")
        self.database = database
        self.on_enrol = []
        self.name = widgets.Text(description="name", placeholder="e.g. ada_lovelace")
        self.enrol_button = widgets.Button(description="Enrol", button_style="primary", disabled=True)
        self.save_path = widgets.Text(value="my_database.npz", description="save to")
        self.save_button = widgets.Button(description="Save database")
        self.enrol_button.on_click(lambda _: self.enrol())
        self.save_button.on_click(lambda _: self.save())
        self.widget = widgets.VBox([
            widgets.HBox([self.upload, self.face_choice]),
            widgets.HBox([self.preview, self.crop_image]),
            self.message,
            widgets.HBox([self.name, self.enrol_button]),
            widgets.HBox([self.save_path, self.save_button]),
        ])
        self.widget.add_class("fr-enrol-upload")

    def _faces_changed(self):
        self.enrol_button.disabled = self.crop is None

    def enrol(self, name=None):
        """Encode the chosen face and add it under ``name`` (default: the name box). Returns the
        name enrolled, or None with the reason shown in the message line."""
        name = (self.name.value if name is None else name).strip()
        crop = self.crop
        if crop is None:
            self._show("error", "Upload a photo with a face first.")
            return None
        try:
            fr_utils.check_identity(name)
        except fr_utils.DatabaseError as exc:
            self._show("error", str(exc))
            return None
        if name in self.database:
            self._show("error", f"{name} is already enrolled; choose another name.")
            return None
        self.database[name] = fr_utils.encode_faces(crop[None], self.model)
        self._show("ok", f"Enrolled {name} from {self.file_name}. The database now has {len(self.database)} "
                         f"people: {', '.join(self.database)}.")
        for callback in self.on_enrol:
            callback(name)
        return name

    def save(self, path=None):
        """Save the database (encodings only) with ``fr_utils.save_database``; returns the path."""
        try:
            saved = fr_utils.save_database(self.database, path or self.save_path.value)
        except (fr_utils.DatabaseError, fr_utils.DatabaseFileError) as exc:
            self._show("error", str(exc))
            return None
        self._show("ok", f"Saved {len(self.database)} people to {saved} (encodings only; no photo is stored).")
        return saved

    def __repr__(self):
        return f"EnrolFromUpload(database of {len(self.database)} people; upload a photo to enrol someone)"


# The claim menu's first entry: no claim, ask who it is. "" can never be a name (check_identity).
WHO_IS_IT = ("(nobody: who is it?)", "")


def identify_html(names, distances, threshold, claimed=None):
    """who_is_it (and verify, if ``claimed``) for one encoding's distances, as HTML."""
    order = np.argsort(distances, kind="stable")
    best = int(order[0])
    answer = (f"it's {names[best]}, the distance is {distances[best]:.4f}" if distances[best] < threshold
              else "Not in the database.")
    lines = [f'who_is_it: <b class="fr-who-is-it">{html.escape(answer)}</b>']
    if claimed is not None:
        d = float(distances[names.index(claimed)])
        message = f"It's {claimed}, welcome in!" if d < threshold else f"It's not {claimed}, please go away"
        lines.append(f'verify as {html.escape(claimed)}: distance {d:.4f} -> '
                     f'<b class="fr-verify-message">{html.escape(message)}</b>')
    rows = "".join(
        f"<tr><td>{html.escape(names[k])}</td><td>{distances[k]:.4f}</td>"
        f"<td>{'accept' if distances[k] < threshold else 'reject'}</td></tr>" for k in order)
    lines.append(f'<table class="fr-distances"><tr><th>enrolled</th><th>distance</th>'
                 f'<th>at {fr_plots.format_threshold(threshold)}</th></tr>{rows}</table>')
    return "<br>".join(lines)


class IdentifyUpload(_UploadPanel, _ThresholdPanel):
    """Upload a photo and ask who it is (1:K), or verify a claimed identity (1:1), against the
    live ``database`` (people enrolled from uploads included).

    Attributes
    ----------
    upload, face_choice, claimed, slider, result : the controls
    encoding : (1, 128) encoding of the chosen face, or None
    distances : (names, distances) to every enrolled person, or None
    """

    def __init__(self, database, model, threshold=None):
        _UploadPanel.__init__(self, model, "Photo to identify")
        self.database = database
        self.encoding = None
        self.distances = None
        self.claimed = widgets.Dropdown(description="claim")
        self.slider = threshold_slider(threshold)
        self.result = widgets.HTML()
        self.refresh_identities()
        self.claimed.observe(self._on_slider, "value")
        self.slider.observe(self._on_slider, "value")
        self.widget = widgets.VBox([
            widgets.HBox([self.upload, self.face_choice]),
            widgets.HBox([self.claimed, self.slider]),
            widgets.HBox([self.preview, self.crop_image]),
            self.message,
            self.result,
        ])
        self.widget.add_class("fr-identify-upload")

    def refresh_identities(self, *_):
        """Offer every enrolled name as a claim (call after the database changes)."""
        current = self.claimed.value
        self.claimed.options = [WHO_IS_IT] + [(name, name) for name in self.database]
        self.claimed.value = current if current in self.database else WHO_IS_IT[1]
        self._refresh()

    def _faces_changed(self):
        crop = self.crop
        self.encoding = fr_utils.encode_faces(crop[None], self.model) if crop is not None else None
        self._refresh()

    def _refresh(self):
        if self.encoding is None or not self.database:
            self.distances = None
            self.result.value = ""
            return
        names, distances = fr_utils.nearest_identity(self.encoding, self.database)
        self.distances = (names, distances)
        claimed = self.claimed.value if self.claimed.value in self.database else None
        self.result.value = identify_html(names, distances, self.threshold, claimed)

    def __repr__(self):
        return f"IdentifyUpload(database of {len(self.database)} people; upload a photo to identify)"


class YourPhotos(_Panel):
    """Enrol from one upload, then identify or verify other uploads, the new person included."""

    def __init__(self, database, model, threshold=None):
        self.database = database
        self.enrol = EnrolFromUpload(database, model)
        self.identify = IdentifyUpload(database, model, threshold)
        self.slider = self.identify.slider
        self.enrol.on_enrol.append(self.identify.refresh_identities)
        self.widget = widgets.VBox([
            widgets.HTML("<h4>1. Enrol someone from one photo</h4>"), self.enrol.widget,
            widgets.HTML("<h4>2. Who is in this photo?</h4>"), self.identify.widget,
        ])
        self.widget.add_class("fr-your-photos")

    def __repr__(self):
        return f"YourPhotos(database of {len(self.database)} people: {', '.join(self.database)})"
