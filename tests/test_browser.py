"""mmsk's widgets in a real browser: a notebook served by Voila, and its HTML export.

Needs Debian's ``chromium`` at /usr/bin/chromium (``.ci/run`` installs it) and
the ``dev`` extra (voila, playwright; Playwright drives the system Chromium,
its own browser download is not used).

Every check runs in JupyterLab's light and dark themes.  Screenshots go to
``$MMSK_SCREENSHOTS`` (default ``tests/artifacts/browser/``, git-ignored), for
CI to keep as artifacts; with ``MMSK_DOC_SCREENSHOTS=1`` the small ones used by
``docs/widgets.md`` are written to ``docs/img/`` too.
"""

import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmsk.tuning import KerasTunerSearchCV

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("MMSK_SCREENSHOTS") or ROOT / "tests" / "artifacts" / "browser")
DOC_IMG = ROOT / "docs" / "img"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A small notebook: a fit with a monitor, a search with a dashboard (its text
# progress left at the default), the fitted best model's diagram, a playground.
CELLS = [
    """\
import numpy as np
import pandas as pd
from mmsk import KerasTunerSearchCV, MultimodalClassifier
from mmsk.widgets import PredictionPlayground, TunerDashboard

rng = np.random.default_rng(0)
y = np.array(["cat", "dog"] * 24)
X = pd.DataFrame({"note": np.where(y == "cat", "a small cat", "a big dog"),
                  "size": rng.normal(size=48) + (y == "dog")})
small = dict(batch_size=8, head_units=8, random_state=0)""",
    "clf = MultimodalClassifier(epochs=3, **small).fit(X, y, monitor=True)",
    """\
search = KerasTunerSearchCV(
    MultimodalClassifier(epochs=1, **small), {"learning_rate": [1e-3, 3e-2]},
    tuner="random", max_trials=2, cv=2, random_state=0, callbacks=[TunerDashboard()],
)
search.fit(X, y)
search.best_estimator_""",
    "PredictionPlayground(search)",
]
# Issue 15: with a widget attached, the search's text progress is off by default.
QUIET_SEARCH = inspect.signature(KerasTunerSearchCV).parameters["progress"].default == "auto"
LEAKS = ["_TrialFit", "Error displaying widget", "tensorflow/core", "oneDNN", "cuda_", "absl::"]
DARK = """() => {
  for (const link of document.querySelectorAll('link[href*="theme-light"]'))
    link.href = link.href.replace('theme-light', 'theme-dark');
  document.body.dataset.jpThemeLight = 'false';
  document.body.classList.replace('theme-light', 'theme-dark');
}"""
COLOURS = """(sel) => {
  const cell = document.querySelector(sel);
  let bg = 'rgba(0, 0, 0, 0)';
  for (let e = cell; e && /rgba\\(0, 0, 0, 0\\)|transparent/.test(bg); e = e.parentElement)
    bg = getComputedStyle(e).backgroundColor;
  return [getComputedStyle(cell).color, bg];
}"""


def luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    hi, lo = sorted([luminance(fg), luminance(bg)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21.0)
    assert contrast("rgb(255, 255, 255)", "rgb(232, 245, 233)") < 1.2  # the old best row


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout} s")


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, path)


def kernel_env(tmp_path: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no user config
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # mmsk itself must keep TensorFlow's C++ logs out
    return env


def shot(locator, name: str, doc: bool = False) -> None:
    """Save a screenshot for CI; a small palette copy for the docs when asked."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    locator.screenshot(path=str(path))
    if doc and os.environ.get("MMSK_DOC_SCREENSHOTS") == "1":
        from PIL import Image

        DOC_IMG.mkdir(parents=True, exist_ok=True)
        image = Image.open(path).convert("RGB").quantize(colors=64)
        image.save(DOC_IMG / f"{name}.png", optimize=True)


def browser(pw, profile: Path):
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
        viewport={"width": 1000, "height": 900},
    )  # fmt: skip


def check_stderr(texts: list[str]) -> None:
    """No text on standard error: no TensorFlow log, no search progress next to its widget."""
    leaks = [t for t in texts if any(k in t for k in LEAKS)]
    assert not leaks, f"TensorFlow's logs reach the notebook: {leaks}"
    if QUIET_SEARCH:
        assert not texts, f"stray text on stderr: {texts}"


def check_page(page, theme: str, where: str) -> None:
    """What both the live notebook and its export must show, in one theme."""
    body = page.locator("body").inner_text()
    for text in LEAKS:
        assert text not in body, f"{where} ({theme}) shows {text!r}"
    dash = page.locator(".mmsk-tuner-dashboard.mmsk-static")
    assert dash.count() == 1, f"{where}: the dashboard left no static copy"
    text = dash.inner_text()
    assert "KerasTunerSearchCV of MultimodalClassifier" in text
    assert "metric: accuracy" in text and "best accuracy:" in text
    assert dash.locator("table.mmsk-trials tbody tr").count() == 2
    assert dash.locator("th", has_text="accuracy").count() == 1
    plots = page.locator(".mmsk-static img.mmsk-plot")
    assert plots.count() == 2  # the monitor's curves and the dashboard's scores
    for i in range(2):
        assert plots.nth(i).evaluate("e => e.complete && e.naturalWidth >= 2 * e.width")
    monitor = page.locator(".mmsk-training-monitor.mmsk-static")
    assert "done: 3/3 epochs" in monitor.inner_text()
    fg, bg = page.evaluate(COLOURS, ".mmsk-trials tr.mmsk-best td")
    ratio = contrast(fg, bg)
    assert ratio >= 4.5, f"{where} ({theme}): best row {fg} on {bg}, contrast {ratio:.2f}"
    if theme == "dark":
        assert luminance(bg) < 0.2, f"{where}: the best row is light ({bg}) in the dark theme"
        assert plots.first.evaluate("e => getComputedStyle(e).filter").startswith("invert")
    shot(dash, f"{where}-dashboard-{theme}", doc=where == "voila")
    shot(monitor, f"{where}-monitor-{theme}", doc=where == "voila")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}")
def test_widgets_live_in_voila_then_static(tmp_path):
    from playwright.sync_api import sync_playwright

    notebook = tmp_path / "widgets.ipynb"
    write_notebook(notebook)
    port = free_port()
    log = open(tmp_path / "voila.log", "w+")  # closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
        cwd=tmp_path, env=kernel_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, server, timeout=60)
        with sync_playwright() as pw:
            context = browser(pw, tmp_path / "chromium-profile")
            try:
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"http://127.0.0.1:{port}/", timeout=90_000, wait_until="commit")
                page.locator(".mmsk-prediction-playground").wait_for(timeout=240_000)
                diagram = page.locator(".sk-top-container").inner_text()
                assert "note: text" in diagram and "numeric: numeric from size" in diagram
                assert page.locator(".sk-top-container a.sk-estimator-doc-link").count() >= 3
                play = page.locator(".mmsk-prediction-playground")
                assert "Fill in an input" in play.inner_text()  # no prediction at start
                play.locator("textarea").fill("a big dog")
                play.locator("textarea").press("Tab")  # the text is sent when it loses focus
                page.wait_for_function(
                    "() => document.querySelector('.mmsk-prediction-playground')"
                    ".innerText.includes('predicted:')", timeout=30_000,
                )  # fmt: skip
                percents = [float(v) for v in re.findall(r"([\d.]+)%", play.inner_text())]
                assert len(percents) == 2 and percents == sorted(percents, reverse=True)
                for theme in ("light", "dark"):
                    if theme == "dark":
                        page.evaluate(DARK)
                        page.wait_for_function(
                            "() => getComputedStyle(document.body).getPropertyValue("
                            "'--jp-layout-color0').trim() !== '#ffffff' && getComputedStyle("
                            "document.body).getPropertyValue('--jp-layout-color0').trim() !== "
                            "'white'", timeout=10_000,
                        )  # fmt: skip
                    check_page(page, theme, "voila")
                    shot(play, f"voila-playground-{theme}", doc=True)
                    page.screenshot(path=str(SHOTS / f"voila-page-{theme}.png"), full_page=True)
                assert not errors, errors
                # No stray text: TensorFlow's C++ logs, the search's text progress.
                stderr = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
                check_stderr(stderr.all_inner_texts())
            finally:
                context.close()
    except Exception:
        log.seek(0)
        print("---- voila log ----\n" + log.read()[-5000:])
        raise
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}")
def test_saved_notebook_and_html_export_keep_the_results(tmp_path, monkeypatch):
    """Run the notebook with a kernel, save it, export it: no kernel is needed to see
    the final curves and tables (no "Error displaying widget: model not found")."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from playwright.sync_api import sync_playwright

    write_notebook(tmp_path / "widgets.ipynb")
    nb = nbformat.read(tmp_path / "widgets.ipynb", as_version=4)
    for key, value in kernel_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    nbformat.write(nb, tmp_path / "saved.ipynb")
    # The monitor's and the dashboard's outputs are static HTML now, not widget views.
    for cell in nb.cells[1:3]:
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for o in cell.outputs)  # fmt: skip
    saved = (tmp_path / "saved.ipynb").read_text()
    assert '<table class=\\"mmsk-trials\\">' in saved and "data:image/png;base64," in saved
    with sync_playwright() as pw:
        context = browser(pw, tmp_path / "chromium-profile")
        try:
            for theme in ("light", "dark"):
                body, _ = HTMLExporter(template_name="lab", theme=theme).from_notebook_node(nb)
                page_file = tmp_path / f"export-{theme}.html"
                page_file.write_text(body)
                page = context.new_page()
                page.goto(page_file.as_uri(), wait_until="load")
                check_page(page, theme, "export")
                page.close()
        finally:
            context.close()
    check_stderr([o.text for c in nb.cells for o in c.outputs if o.get("name") == "stderr"])
