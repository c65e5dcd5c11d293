"""Drive the notebook in a real browser: JupyterLab on localhost, Debian's Chromium, Playwright.

What a student does, done by a program: open Face_Recognition.ipynb in JupyterLab, Run > Run All
Cells, scroll to section 10, move the threshold slider with the keyboard and read the counts.

* :class:`JupyterLab` starts a private server (no token, settings/config/runtime/workspaces in a
  temporary folder, autosave off) on a free 127.0.0.1 port, in a *mirror* of the repository: every
  top-level entry is a symlink to the real one except the notebook, which is a copy. Relative paths
  and imports work as in the repository, and the committed notebook is never written. The server
  (and every kernel it started) is shut down on exit, whatever happened.
* :func:`run_all_cells`, :func:`slider_to`, :func:`read_counts` are the browser steps.

``tests/test_browser.py`` uses these to check the counts against ``fr_eval``. Run by hand
(screenshots go to build/browser/): ``.venv/bin/python tools/browser_check.py [notebook]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "Face_Recognition.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ROOT / "build" / "browser"
EXPLORER = ".fr-threshold-explorer"

# User settings of the private JupyterLab: never write the notebook, render every cell (no
# virtual scrolling, so a widget far down is in the page), no news or update checks (offline).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                    "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
SKIP_IN_MIRROR = {".git", "build", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis", "__pycache__"}


def missing_requirements():
    """Why the browser check cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (apt-get install chromium; `make test` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mirror_repository(destination, notebook=NOTEBOOK, root=ROOT):
    """Fill ``destination`` with symlinks to ``root``'s top-level entries and a copy of
    ``notebook`` (named like the real one). Returns the copy's path."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name in SKIP_IN_MIRROR or entry.name == NOTEBOOK.name:
            continue
        (destination / entry.name).symlink_to(entry)
    copy = destination / NOTEBOOK.name
    shutil.copyfile(notebook, copy)
    return copy


def _get_json(url, method="GET", timeout=5):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


class JupyterLab(contextlib.AbstractContextManager):
    """A private JupyterLab server on a mirror of the repository; stopped on exit.

    Attributes
    ----------
    url : str, e.g. ``http://127.0.0.1:PORT``
    notebook_url : str, the lab URL of the notebook copy
    log_path : Path, the server's output
    """

    def __init__(self, notebook=NOTEBOOK, start_timeout=120):
        self.notebook = Path(notebook)
        self.start_timeout = start_timeout
        self.process = None

    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fr-browser-")
        tmp = Path(self._tmp.name)
        self.workdir = tmp / "repo"
        mirror_repository(self.workdir, self.notebook)
        settings = tmp / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        env.update({
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "JUPYTER_DATA_DIR": str(tmp / "data"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONHASHSEED": "0",
        })
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.notebook_url = f"{self.url}/lab/tree/{NOTEBOOK.name}"
        self.log_path = tmp / "jupyterlab.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
             f"--ServerApp.root_dir={self.workdir}", "--LabApp.news_url=None",
             "--LabApp.extension_manager=readonly"]  # offline: no extension index to query
            + (["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
            cwd=self.workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one below
        )
        try:
            self._wait_until_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_up(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError):
                _get_json(f"{self.url}/api/status")
                return
            time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {self.start_timeout} s:\n{self.log()}")

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def __exit__(self, *exc):
        if self.process is not None:
            if self.process.poll() is None:
                # Kernels run in their own sessions: shut them down through the server first.
                with contextlib.suppress(OSError, ValueError):
                    for kernel in _get_json(f"{self.url}/api/kernels") or []:
                        _get_json(f"{self.url}/api/kernels/{kernel['id']}", method="DELETE", timeout=20)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            self.process = None
        if getattr(self, "_log", None):
            self._log.close()
        if getattr(self, "_tmp", None):
            self._tmp.cleanup()
        return False


@contextlib.contextmanager
def chromium_page(width=1400, height=1000):
    """A headless Debian Chromium page (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def open_notebook(page, lab, timeout_s=120):
    """Open the notebook and wait until its kernel is idle."""
    page.goto(lab.notebook_url, timeout=timeout_s * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
    # The notebook names its kernel (python3); should JupyterLab still ask, take the one it offers.
    with contextlib.suppress(Exception):
        page.get_by_role("button", name="Select", exact=True).click(timeout=3000)
    wait_kernel_idle(page, timeout_s)


def wait_kernel_idle(page, timeout_s):
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const kernel = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName');
            return panel && status && status.getAttribute('data-status') === 'idle'
                && kernel && !/No Kernel/.test(kernel.textContent);
        }""", timeout=timeout_s * 1000)


def run_all_cells(page, timeout_s=1200):
    """Run > Run All Cells from the menu bar; wait until nothing runs or waits to run any more
    (every cell done, or the run stopped at a cell that raised). Returns seconds taken."""
    start = time.monotonic()
    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # Running: some prompt shows [*]. Done: none does, and the kernel is idle.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                   .some(p => p.textContent.includes('*'))""", timeout=60_000)
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return !prompts.some(p => p.textContent.includes('*'))
                && status && status.getAttribute('data-status') === 'idle';
        }""", timeout=timeout_s * 1000, polling=1000)
    return time.monotonic() - start


def cells_not_run(page):
    """Indices (from 0) of the code cells without an execution number."""
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    return [i for i, text in enumerate(prompts) if not any(ch.isdigit() for ch in text)]


def error_outputs(page):
    """Text of every error output in the notebook (a cell that raised)."""
    return page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()


def read_counts(page, panel=EXPLORER):
    """The ``TA=... FA=... TR=... FR=... TAR=... FAR=...`` line a panel shows."""
    return page.locator(f"{panel} .fr-counts").first.inner_text().strip()


def slider_value(page, panel=EXPLORER):
    """The slider's readout, as a float."""
    return float(page.locator(f"{panel} .widget-readout").first.inner_text().strip())


def wait_counts(page, expected, panel=EXPLORER, timeout_s=60):
    """Wait until the panel shows ``expected`` (the kernel redraws after each key); returns it."""
    page.wait_for_function(
        "([selector, text]) => { const e = document.querySelector(selector); "
        "return e && e.innerText.trim() === text; }",
        arg=[f"{panel} .fr-counts", expected], timeout=timeout_s * 1000)
    return read_counts(page, panel)


def slider_to(page, target, panel=EXPLORER, step=0.01, max_presses=400):
    """Move the slider to ``target`` with the keyboard only (PageUp/PageDown jump several steps
    where the slider supports it, the arrow keys one step). Returns the keys pressed."""
    handle = page.locator(f"{panel} .noUi-handle").first
    handle.focus()
    pressed = []
    for _ in range(max_presses):
        value = slider_value(page, panel)
        gap = target - value
        if abs(gap) < step / 2:
            return pressed
        key = ("PageUp" if gap > 0 else "PageDown") if abs(gap) >= 5 * step else (
            "ArrowRight" if gap > 0 else "ArrowLeft")
        handle.press(key)
        pressed.append(key)
        if slider_value(page, panel) == value and key.startswith("Page"):
            # No page jumps on this slider: finish one step at a time.
            key = "ArrowRight" if gap > 0 else "ArrowLeft"
            handle.press(key)
            pressed.append(key)
    raise AssertionError(f"slider did not reach {target} after {max_presses} key presses "
                         f"(at {slider_value(page, panel)})")


def upload_file(page, panel, path):
    """Click the panel's upload button and pick ``path`` in the file chooser, as a person would."""
    with page.expect_file_chooser() as chooser:
        page.locator(f"{panel} .widget-upload").first.click()
    chooser.value.set_files(str(path))


def wait_text(page, selector, text, timeout_s=60):
    """Wait until the first element matching ``selector`` contains ``text``; returns its text."""
    page.wait_for_function(
        "([selector, text]) => { const e = document.querySelector(selector); "
        "return e && e.innerText.includes(text); }",
        arg=[selector, text], timeout=timeout_s * 1000)
    return page.locator(selector).first.inner_text().strip()


def screenshot(page, name, selector=None):
    """Save build/browser/<name>.png (of one element when ``selector`` is given); returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if selector:
        page.locator(selector).first.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    return path


def main(argv=None):
    """Run the notebook in the browser and move the slider to 0.7, printing what it shows."""
    argv = sys.argv[1:] if argv is None else argv
    notebook = Path(argv[0]) if argv else NOTEBOOK
    reason = missing_requirements()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    started = time.monotonic()
    with JupyterLab(notebook) as lab, chromium_page() as page:
        open_notebook(page, lab)
        took = run_all_cells(page)
        print(f"ran all cells in {took:.0f} s; errors: {error_outputs(page) or 'none'}")
        page.locator(EXPLORER).first.scroll_into_view_if_needed()
        print(f"slider {slider_value(page):.2f}: {read_counts(page)}")
        screenshot(page, "explorer-default", EXPLORER)
        keys = slider_to(page, 0.70)
        time.sleep(5)  # let the kernel finish redrawing
        print(f"after {len(keys)} keys, slider {slider_value(page):.2f}: {read_counts(page)}")
        screenshot(page, "explorer-0.70", EXPLORER)
    print(f"total {time.monotonic() - started:.0f} s; screenshots in {SCREENSHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
