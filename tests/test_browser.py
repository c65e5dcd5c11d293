"""The notebook in a real browser: JupyterLab on localhost, Debian's headless Chromium, Playwright.

Runs every cell of Face_Recognition.ipynb as a student would (Run > Run All Cells), moves the
threshold slider of section 10 with the keyboard from the data-chosen default to 0.7, and checks
that the counts shown are those ``fr_eval`` gives for the same distances; then uploads photos
through the file chooser to identify, enrol and identify again. Screenshots go to build/browser/. See tools/browser_check.py for the server and browser set-up.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import fr_plots
import fr_utils
from tools import browser_check

NOTEBOOK = Path(os.environ.get("FR_BROWSER_NOTEBOOK", browser_check.NOTEBOOK))
HEATMAP = ".fr-distance-heatmap"
ENROL = ".fr-enrol-upload"
IDENTIFY = ".fr-identify-upload"


def notebook_has_explorer(path):
    cells = json.loads(path.read_text())["cells"]
    return any("fr_widgets.ThresholdExplorer(" in "".join(cell["source"]) for cell in cells
               if cell["cell_type"] == "code")


def skip_reason():
    """Why this machine cannot run the browser test, or None (checked before any fixture runs)."""
    missing = browser_check.missing_requirements()
    if missing:
        return f"browser test needs Chromium and Playwright: {missing}"
    if not NOTEBOOK.is_file():
        return f"{NOTEBOOK} not found"
    if not notebook_has_explorer(NOTEBOOK):
        return f"{NOTEBOOK.name} has no section 10 ThresholdExplorer cell yet"
    return None


SKIP_REASON = skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))


@pytest.fixture(scope="module")
def expected_counts(celebrity_encoded, one_shot_database):
    """Threshold -> the counts line, from the data section 10 uses: the first train photo of each
    person enrolled, every other photo a camera photo."""
    _, camera_paths = fr_plots.enrolment_split(celebrity_encoded.paths)
    rows = [celebrity_encoded.paths.index(p) for p in camera_paths]
    camera = fr_plots.camera_distances(one_shot_database, celebrity_encoded.encodings[rows],
                                       [p.parent.name for p in camera_paths], camera_paths)
    return lambda threshold: fr_plots.counts_text(camera.counts(threshold))


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_threshold_slider_in_jupyterlab(expected_counts, one_shot_database, model):
    before = sha256(NOTEBOOK)
    madonna_photo = fr_utils.IMAGES_DIR / "val" / "madonna" / "madonna_03.jpg"
    madonna_distance = float(np.linalg.norm(fr_utils.img_to_encoding(madonna_photo, model)
                                            - one_shot_database["madonna"]))
    visitor_photo = fr_utils.IMAGES_DIR / "val" / "jerry_seinfeld" / "jerry_seinfeld_03.jpg"
    default = fr_utils.DEFAULT_THRESHOLD
    timings = {}
    started = time.monotonic()
    with browser_check.JupyterLab(NOTEBOOK) as lab, browser_check.chromium_page() as page:
        timings["server_start_s"] = time.monotonic() - started
        browser_check.open_notebook(page, lab)
        timings["run_all_cells_s"] = browser_check.run_all_cells(page)
        errors = browser_check.error_outputs(page)
        browser_check.screenshot(page, "1-notebook-after-run-all")
        assert errors == [], f"cells raised in the browser:\n{errors}\nserver log:\n{lab.log()}"
        assert browser_check.cells_not_run(page) == [], "Run All Cells left cells unrun"

        page.locator(browser_check.EXPLORER).first.scroll_into_view_if_needed()
        assert browser_check.slider_value(page) == default
        assert browser_check.read_counts(page) == expected_counts(default)
        figure = page.locator(f"{browser_check.EXPLORER} img").first
        figure_at_default = figure.get_attribute("src")
        browser_check.screenshot(page, "2-explorer-default", browser_check.EXPLORER)

        # One key press, one step: the counts follow at once.
        assert browser_check.slider_to(page, default - 0.01) == ["ArrowLeft"]
        browser_check.wait_counts(page, expected_counts(default - 0.01))

        moved = time.monotonic()
        keys = browser_check.slider_to(page, 0.70)
        assert browser_check.slider_value(page) == 0.70
        shown = browser_check.wait_counts(page, expected_counts(0.70))
        timings["slider_to_0.70_s"] = time.monotonic() - moved
        assert shown != expected_counts(default)
        assert figure.get_attribute("src") != figure_at_default  # the figure was redrawn too
        browser_check.screenshot(page, "3-explorer-0.70", browser_check.EXPLORER)
        # The other panels share the threshold: the distance matrix shows the same counts.
        browser_check.wait_counts(page, expected_counts(0.70), panel=HEATMAP)
        page.locator(HEATMAP).first.scroll_into_view_if_needed()
        browser_check.screenshot(page, "4-heatmap-0.70", HEATMAP)

        # Your own photos: identify one, enrol a new person from one photo, find them again.
        uploaded = time.monotonic()
        page.locator(ENROL).first.scroll_into_view_if_needed()
        browser_check.upload_file(page, IDENTIFY, madonna_photo)
        answer = browser_check.wait_text(page, f"{IDENTIFY} .fr-who-is-it", "it's madonna, the distance is ")
        assert abs(float(answer.rsplit(" ", 1)[1]) - madonna_distance) < 2e-4
        browser_check.upload_file(page, ENROL, visitor_photo)
        browser_check.wait_text(page, f"{ENROL} .fr-message", f"One face found in {visitor_photo.name}")
        page.locator(f"{ENROL} input[type=text]").first.fill("visitor")
        page.locator(f"{ENROL} input[type=text]").first.press("Enter")  # the Text widget syncs on Enter/blur
        page.locator(ENROL).get_by_role("button", name="Enrol", exact=True).click()
        browser_check.wait_text(page, f"{ENROL} .fr-message", "Enrolled visitor")
        browser_check.upload_file(page, IDENTIFY, visitor_photo)
        browser_check.wait_text(page, f"{IDENTIFY} .fr-who-is-it", "it's visitor, the distance is 0.0000")
        timings["uploads_s"] = time.monotonic() - uploaded
        browser_check.screenshot(page, "5-your-photos", ".fr-your-photos")
    timings["total_s"] = time.monotonic() - started
    timings["keys_to_0.70"] = len(keys)
    browser_check.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (browser_check.SCREENSHOTS / "timings.json").write_text(json.dumps(timings, indent=2))
    print("browser test timings:", json.dumps(timings))
    assert sha256(NOTEBOOK) == before, "the committed notebook must not be written by the browser run"
