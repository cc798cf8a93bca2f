"""A notebook with a TrainingMonitor, served by Voila and rendered in headless Chromium.

Needs Debian's ``chromium`` at /usr/bin/chromium (``.ci/run`` installs it) and
the ``dev`` extra (voila, playwright; Playwright drives the system Chromium,
its own browser download is not used).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CODE = """\
import numpy as np
from mmsk import MultimodalRegressor

X = np.random.default_rng(0).normal(size=(32, 3))
reg = MultimodalRegressor(epochs=2, batch_size=8, head_units=8, random_state=0)
reg.fit(X, X.sum(axis=1), monitor=True)
print("fitted", reg.n_epochs_, "epochs")
"""


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
    nb.cells = [nbformat.v4.new_code_cell(CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Debian's chromium at {CHROMIUM}")
def test_training_monitor_renders_in_voila(tmp_path):
    from playwright.sync_api import sync_playwright

    notebook = tmp_path / "monitor.ipynb"
    write_notebook(notebook)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no user config
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    log = open(tmp_path / "voila.log", "w+")  # closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, server, timeout=60)
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM,
                headless=True, args=FLAGS,
            )  # fmt: skip
            try:
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}/", timeout=90_000, wait_until="commit")
                monitor = page.locator(".mmsk-training-monitor")
                status = monitor.locator(".widget-html-content").first
                # The fit streams its updates; wait until the widget shows the end.
                page.wait_for_function(
                    "() => { const m = document.querySelector('.mmsk-training-monitor');"
                    " return m && m.textContent.includes('done: 2/2 epochs'); }",
                    timeout=90_000,
                )
                assert "done: 2/2 epochs" in status.inner_text()
                bars = monitor.locator(".widget-hprogress")  # ipywidgets' IntProgress views
                assert bars.count() == 2
                epoch_bar = bars.filter(has_text="Epoch").locator(".progress-bar")
                assert epoch_bar.evaluate("e => e.style.width") == "100%"  # value == max
                assert "progress-bar-success" in (epoch_bar.get_attribute("class") or "")
                plot = monitor.locator("img.widget-image")
                plot.wait_for(state="visible", timeout=30_000)
                assert plot.evaluate("e => e.complete && e.naturalWidth > 0")
                assert "fitted 2 epochs" in page.locator("body").inner_text()
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
