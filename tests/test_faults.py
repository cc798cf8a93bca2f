"""Faults: predict from many threads, flat memory over many files, Ctrl-C in the demo."""

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import sigint_as_at_a_terminal

import mmsk
from mmsk import ModalityBatch, ModalitySpec, _demo
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor

# ---- predict from several threads ---------------------------------------------------------


@pytest.fixture(scope="module")
def frame_model(toy):
    X, y = toy
    big = pd.concat([X] * 10, ignore_index=True)  # 600 rows: preprocessed in chunks
    clf = mmsk.MultimodalClassifier(
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=8)),
        epochs=1,
        random_state=0,
    ).fit(X, y)
    return clf, X, big


@pytest.fixture(scope="module")
def batch_model():
    """Fitted on a ModalityBatch, so 2,100 rows go through Keras' Model.predict."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2100, 4)).astype("float32")
    batch = ModalityBatch({"a": a}, {"a": ModalitySpec("numeric", (4,))})
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(batch[:200], a[:200, 0] > 0)
    return clf, batch


def _jobs(frame_model, batch_model):
    clf, X, big = frame_model
    bclf, batch = batch_model
    jobs = [(clf.predict_proba, X.iloc[i : i + 5]) for i in range(0, 40, 5)]  # compiled call
    jobs += [(clf.transform, X.iloc[:7]), (clf.predict_proba, big)]  # streamed in chunks
    jobs += [(bclf.predict_proba, batch), (bclf.predict_proba, batch[:30])]  # Model.predict
    return jobs


@pytest.mark.parametrize("fresh", [False, True], ids=["warm", "first-call"])
def test_predict_from_eight_threads_matches_sequential_calls(frame_model, batch_model, fresh):
    jobs = _jobs(frame_model, batch_model)
    expected = [fn(X) for fn, X in jobs]
    if fresh:  # untraced copies: the threads race to build the compiled functions
        copies = {id(m): pickle.loads(pickle.dumps(m)) for m in (frame_model[0], batch_model[0])}
        jobs = [
            (getattr(copies[id(fn.__self__)], fn.__name__), X) for fn, X in jobs
        ]  # the same calls on the copies
    work = jobs * 3
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: job[0](job[1]), work))
    for (fn, _), got, want in zip(work, results, expected * 3, strict=True):
        # atol: a few float32 steps (1.2e-7 at 1.0) between a model and its unpickled copy
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=fn.__name__)


# ---- memory that stays flat however many files a column names ----------------------------

STREAM = textwrap.dedent(
    """
    import json, os, resource, sys
    import numpy as np, pandas as pd
    from PIL import Image

    folder, n_small, n_big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ramp = np.add.outer(np.arange(256), np.arange(256)).astype(np.uint8)
    paths = []
    for i in range(n_big):  # 256x256 RGB PNG files, each a little different
        paths.append(os.path.join(folder, f"{i}.png"))
        img = np.stack([ramp, np.roll(ramp, i, 0), np.roll(ramp, i, 1)], -1)
        Image.fromarray(img).save(paths[-1], compress_level=1)

    import mmsk
    from mmsk.components import CNNEncoder
    from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor

    X = pd.DataFrame({"photo": paths, "n": np.arange(n_big, dtype=float)})
    clf = mmsk.MultimodalClassifier(
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=64)),
        encoders={"image": CNNEncoder(filters=4, blocks=1)}, epochs=1, random_state=0,
    ).fit(X[:40], np.arange(40) % 2)

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    first = clf.predict_proba(X[:n_small])
    small = peak_mb()
    out = clf.predict_proba(X)
    big = peak_mb()
    same = bool(np.allclose(out[:n_small], first, atol=1e-6))
    print(json.dumps({"small_mb": small, "big_mb": big, "rows": len(out), "same": same}))
    """
)


@pytest.mark.slow
def test_predicting_many_image_files_keeps_memory_flat(tmp_path):
    n_small, n_big = 500, 3000
    # Decoded at once, 2,500 more 64x64 RGB images are 2500 * 64*64*3 * 4 bytes = 123 MB of
    # float32 (measured: the peak grows by ~420 MB); streamed, only one chunk is ever held.
    decoded_mb = (n_big - n_small) * 64 * 64 * 3 * 4 / 2**20
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", STREAM, str(tmp_path), str(n_small), str(n_big)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["rows"] == n_big and found["same"]
    growth = found["big_mb"] - found["small_mb"]
    assert growth < decoded_mb / 3, (growth, decoded_mb, found)


# ---- Ctrl-C in the demo -------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.slow
def test_sigint_while_loading_exits_130_with_a_message_and_no_files(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmsk", "demo", "--epochs", "2", "--output", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    try:
        first = proc.stdout.readline()  # printed before the data and TensorFlow load
        assert "loading" in first, first + proc.stderr.read()
        threading.Event().wait(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert f"mmsk demo: interrupted; no results were written to {out}" in stderr
    assert "Traceback" not in stderr and "The same in Python" not in stdout
    assert _leftovers(tmp_path) == []  # no output folder, no temporary files


def test_ctrl_c_while_writing_the_results_leaves_no_file(tmp_path, monkeypatch, capsys):
    """Interrupted between writing results.json and comparison.png: neither is kept."""
    pytest.importorskip("matplotlib")

    def fake_compare(args, recipe, progress, data, y):
        return {"models": [], "best": "x", "metric": "accuracy", "fusion_gain": None}

    def interrupted_plot(results, path):
        Path(path).write_bytes(b"\x89PNG half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(_demo, "compare", fake_compare)
    monkeypatch.setattr(_demo, "format_table", lambda results: "table")
    monkeypatch.setattr(_demo, "write_plot", interrupted_plot)
    monkeypatch.setattr(_demo, "equivalent_python", lambda *a: "")
    out = tmp_path / "out"
    handler = signal.getsignal(signal.SIGINT)
    args = argparse.Namespace(
        dataset="icons", fusion=["concat"], epochs=1, output=out, seed=0, test_size=0.25,
        verbose=False,
    )  # fmt: skip
    assert _demo.run(args) == _demo.EXIT_INTERRUPTED
    assert "interrupted; no results were written" in capsys.readouterr().err
    assert _leftovers(out) == []
    assert signal.getsignal(signal.SIGINT) is handler  # the user's handler is back
