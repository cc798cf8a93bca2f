"""mmsk.widgets: every widget's state, driven from Python, changes as training/tuning goes on."""

import copy
import io
import os
import pickle
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame

pytest.importorskip("ipywidgets")

from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_html_repr

from mmsk import MultimodalClassifier, MultimodalRegressor
from mmsk.components import AttentionFusion, CNNEncoder, RNNEncoder
from mmsk.exceptions import BackendError, InputError, NotFittedError, ParameterError
from mmsk.preprocessing import ModalityPreprocessor
from mmsk.tuning import TrialRecord
from mmsk.widgets import PredictionPlayground, TunerDashboard

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
SMALL = {"head_units": 8, "batch_size": 8, "random_state": 0}


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(wave_: np.ndarray, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes((np.clip(wave_, -1, 1) * 32000).astype("<i2").tobytes())
    return buffer.getvalue()


def plot_points(figure) -> list[int]:
    return [len(line.get_xdata()) for ax in figure.axes for line in ax.lines]


def png_width(data: bytes) -> int:
    return Image.open(io.BytesIO(bytes(data))).size[0]


class Handle:
    """Records what a display handle is updated with (IPython's DisplayHandle API)."""

    def __init__(self):
        self.shown = []

    def update(self, obj):
        self.shown.append(obj)


# ---- import ------------------------------------------------------------------
def test_import_is_light_and_lazy():
    out = run_python(
        "import sys, mmsk; assert 'mmsk.widgets' not in sys.modules and "
        "'ipywidgets' not in sys.modules\n"
        "import mmsk.widgets; assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "print(sorted(mmsk.widgets.__all__))"
    )
    assert out.returncode == 0, out.stderr
    assert "TrainingMonitor" in out.stdout


def test_missing_ipywidgets_names_the_extra():
    out = run_python(
        "import sys; sys.modules['ipywidgets'] = None\n"
        "from mmsk.exceptions import BackendError\n"
        "try:\n    import mmsk.widgets\n"
        "except BackendError as e:\n    assert isinstance(e, ImportError); print(e)\n"
    )
    assert out.returncode == 0, out.stderr
    assert 'pip install "mmsk[notebook]"' in out.stdout
    assert issubclass(BackendError, ImportError)


# ---- TrainingMonitor -----------------------------------------------------------
@pytest.mark.slow  # trains two models
def test_monitor_follows_a_fit_epoch_by_epoch():
    import keras

    from mmsk.widgets import TrainingMonitor

    monitor = TrainingMonitor(mode="widget", min_interval=0.0)
    assert monitor.plot_image.layout.display == "none"  # a placeholder, not a broken image
    seen = []

    class Spy(keras.callbacks.Callback):  # runs after the monitor: reads what it shows
        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", monitor.epoch_bar.value, monitor.batch_bar.value))

        def on_train_batch_begin(self, batch, logs=None):
            if not monitor.epochs:  # no point yet: the placeholder shows
                assert monitor.placeholder.layout.display == ""
                assert monitor.plot_image.layout.display == "none"

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", monitor.epoch_bar.value, len(monitor.history["loss"])))
            assert monitor.plot_image.layout.display == ""
            assert monitor.placeholder.layout.display == "none"
            assert plot_points(monitor.figure)[0] == epoch + 1

    X, y = make_frame(24, seed=1)
    clf = MultimodalClassifier(epochs=3, validation_split=0.25, **SMALL)
    clf.fit(X[["size"]], y, callbacks=[monitor, Spy()])
    assert monitor.active_mode == "widget"
    assert monitor.epoch_bar.value == monitor.epoch_bar.max == 3
    assert monitor.batch_bar.value == monitor.batch_bar.max == 3  # 18 training rows / 8
    assert [s[1:] for s in seen if s[0] == "epoch"] == [(1, 1), (2, 2), (3, 3)]
    assert [s[2] for s in seen if s[0] == "batch"] == [1, 2, 3] * 3
    assert [s[1] for s in seen if s[0] == "batch"] == [0] * 3 + [1] * 3 + [2] * 3
    assert monitor.epochs == [1, 2, 3]
    # A classifier reports accuracy by default: a panel beside the loss.
    assert set(monitor.history) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert monitor.history["loss"] == pytest.approx(clf.history_["loss"])
    assert monitor.history["accuracy"] == pytest.approx(clf.history_["accuracy"])
    assert len(monitor.figure.axes) >= 2
    assert plot_points(monitor.figure) == [3, 3, 3, 3]  # train and validation, per panel
    assert monitor.plot_image.value[:8] == PNG
    # Drawn for the width it is shown at, at twice the resolution.
    assert monitor.plot_image.layout.width == "640px"
    assert png_width(monitor.plot_image.value) == 2 * 640
    assert re.fullmatch(r"3/3 &middot; [\d.]+ batch/s &middot; ETA 0:00", monitor.batch_info.value)
    assert re.fullmatch(r"3/3 &middot; \d+:\d\d", monitor.epoch_info.value)
    assert "done: 3/3 epochs" in monitor.status.value
    static = monitor.to_static()._repr_mimebundle_()
    assert "data:image/png;base64," in static["text/html"] and "done: 3/3" in static["text/html"]
    assert monitor.summary().startswith("3 epochs: loss")


def test_monitor_true_is_a_text_bar_outside_jupyter(capsys):
    X = np.random.default_rng(0).normal(size=(16, 2))
    MultimodalRegressor(epochs=2, **SMALL).fit(X, X[:, 0], monitor=True)
    err = capsys.readouterr().err
    assert re.search(r"Epoch 1/2 - 2 batches - loss \d", err), err
    assert "Epoch 2/2" in err


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def drive(monitor, epochs=2, steps=4):
    """Run a monitor's Keras hooks by hand, as model.fit would."""
    monitor.set_params({"epochs": epochs, "steps": steps, "verbose": 0})
    monitor.on_train_begin()
    for epoch in range(epochs):
        monitor.on_epoch_begin(epoch)
        for batch in range(steps):
            monitor.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1)})
        monitor.on_epoch_end(epoch, {"loss": 0.5 - 0.1 * epoch, "accuracy": 0.6 + 0.1 * epoch})
    monitor.on_train_end()


def test_monitor_text_bar_redraws_on_a_terminal():
    from mmsk.widgets import TrainingMonitor

    out = FakeTTY()
    monitor = TrainingMonitor(mode="text", stream=out, min_interval=0.0)
    drive(monitor)
    text = out.getvalue()
    assert re.search(r"\rEpoch 1/2 \[#{24}\] 4/4 [\d.]+ batch/s ETA 0:00 loss 0.2500", text)
    assert "Epoch 2/2 - 4 batches - loss 0.4000, accuracy 0.7000" in text
    assert monitor.figure is None  # no plot drawn in text mode
    assert (monitor.epoch_bar.value, monitor.batch_bar.value) == (2, 4)


def test_monitor_in_a_kernel_shows_itself_once(monkeypatch):
    from mmsk.widgets import TrainingMonitor, _monitor

    shown, handle = [], Handle()
    monkeypatch.setattr(_monitor, "in_kernel", lambda: True)
    monkeypatch.setattr(_monitor, "show", lambda widget: shown.append(widget) or handle)
    monkeypatch.setattr("mmsk.widgets._common.in_kernel", lambda: True)
    monitor = TrainingMonitor()
    assert monitor.active_mode == "widget"
    drive(monitor)
    # Training over: the live display is replaced by a static copy (HTML + PNG).
    assert [type(o).__name__ for o in handle.shown] == ["Static"]
    html = handle.shown[0]._repr_mimebundle_()["text/html"]
    assert "data:image/png;base64," in html and "done: 2/2 epochs" in html
    assert "var(--jp-" in html and "#e8f5e9" not in html
    drive(monitor, epochs=3)  # a second fit reuses the display: live, then static again
    assert shown == [monitor.widget]
    assert handle.shown[1] is monitor.widget and type(handle.shown[2]).__name__ == "Static"
    assert monitor.n_fits == 2 and monitor.epoch_bar.max == 3
    assert plot_points(monitor.figure) == [3, 3]  # loss and accuracy axes
    assert [ax.get_title() for ax in monitor.figure.axes] == ["loss", "accuracy"]
    bundle = monitor._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_monitor_copies_and_settings():
    from mmsk.widgets import TrainingMonitor

    monitor = TrainingMonitor(mode="text", plot=False, min_interval=0.5)
    assert copy.deepcopy(monitor) is monitor
    clf = MultimodalClassifier(callbacks=[monitor])
    assert clone(clf).callbacks[0] is monitor  # a search's clones report to one display
    fresh = pickle.loads(pickle.dumps(monitor))
    assert type(fresh) is TrainingMonitor and fresh is not monitor
    assert (fresh.mode, fresh.plot, fresh.min_interval) == ("text", False, 0.5)
    with pytest.raises(ParameterError, match="mode"):
        TrainingMonitor(mode="html")
    with pytest.raises(ParameterError, match="min_interval"):
        TrainingMonitor(min_interval=-1)


# ---- TunerDashboard --------------------------------------------------------------
class FakeSearch:
    def __init__(self, max_trials=3, callbacks=None):
        self.max_trials = max_trials
        self.callbacks = callbacks
        self.estimator = MultimodalClassifier()


def test_dashboard_follows_trials():
    search = FakeSearch(max_trials=3)
    dash = TunerDashboard(search, mode="widget")
    assert search.callbacks == [dash]
    dash.on_search_begin(search)
    assert (dash.progress.value, dash.progress.max, dash.best) == (0, 3, None)
    assert "KerasTunerSearchCV" not in dash.title.value and "FakeSearch" in dash.title.value
    # The user's estimator and the metric: a classifier's score is its accuracy.
    assert "FakeSearch of MultimodalClassifier" in dash.title.value
    assert dash.metric == "accuracy" and "metric: <b>accuracy</b>" in dash.title.value

    plan = [("0", {"learning_rate": 1e-3, "fusion": "concat"}, "COMPLETED", 0.70),
            ("1", {"learning_rate": 1e-2, "fusion": "attention"}, "COMPLETED", 0.85),
            ("2", {"learning_rate": 1e-1, "fusion": "sum"}, "FAILED", None)]  # fmt: skip
    for i, (tid, params, status, score) in enumerate(plan):
        trial = TrialRecord(tid, params, "RUNNING")
        dash.on_trial_begin(search, trial)
        assert dash.trials[-1].status == "RUNNING"
        assert f"running: trial {tid}" in dash.summary.value
        assert dash.progress.value == i
        # Folds and epochs of the running trial, where the search reports them.
        dash.on_fold_begin(search, trial, 1, 2)
        for epoch in range(3 + i):
            dash.on_epoch_end(search, trial, epoch, 10, {"loss": 1.0})
        assert "fold 2/2 &middot; epoch " + f"{3 + i}/10 &middot; 0:00" in dash.summary.value
        trial.status, trial.score, trial.duration = status, score, 1.5
        trial.std = None if score is None else 0.05
        trial.error = "ValueError: boom" if status == "FAILED" else None
        dash.on_trial_end(search, trial)
        assert dash.progress.value == i + 1
        assert len(dash.trials) == i + 1  # the RUNNING record was replaced, not added
    dash.on_search_end(search)

    assert dash.best.trial_id == "1" and dash.best.score == 0.85
    assert "best accuracy: <b>0.85</b>" in dash.summary.value and "1 failed" in dash.summary.value
    assert dash.progress.bar_style == "success" and "finished" in dash.title.value
    table = dash.table.value
    for text in ("learning_rate", "fusion", "attention", "0.01", "0.85", "FAILED", "boom"):
        assert text in table
    best_row = re.search(r'<tr class="mmsk-best">(.*?)</tr>', table).group(1)
    assert "attention" in best_row  # the best trial's row is highlighted, by theme colours
    assert "#e8f5e9" not in table and "style=" not in table
    assert "<th>accuracy</th>" in table and "best accuracy: <b>0.85</b>" in dash.summary.value
    frame = dash.to_frame()
    assert frame["trial_id"].tolist() == ["0", "1", "2"]
    assert frame["status"].tolist() == ["COMPLETED", "COMPLETED", "FAILED"]
    assert frame["param_fusion"].tolist() == ["concat", "attention", "sum"]
    assert frame["epochs"].tolist() == [3, 4, 5]  # the most epochs a fold trained
    ax = dash.figure.axes[0]
    data_line, _, (bars,) = ax.containers[0]  # errorbar: points and their std
    assert list(data_line.get_ydata()) == [0.70, 0.85]  # score per completed trial
    assert [len(seg) for seg in bars.get_segments()] == [2, 2]
    assert [seg[1][1] - seg[0][1] for seg in bars.get_segments()] == pytest.approx([0.1, 0.1])
    assert list(ax.lines[-2].get_ydata()) == [0.70, 0.85]  # best so far
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["best so far", "failed trial", "trial (± std over folds)"]
    assert ax.get_ylabel() == "mean CV accuracy"
    assert dash.plot_image.value[:8] == PNG


def test_dashboard_attaches_once_and_late():
    search = FakeSearch(max_trials=None, callbacks=[])
    dash = TunerDashboard(mode="widget")
    assert dash.attach(search) is dash and dash.attach(search) is dash
    assert search.callbacks == [dash]
    # Attached while the search runs: no on_search_begin, yet it follows.
    trial = TrialRecord("7", {"head_units": 8}, "RUNNING")
    dash.on_trial_begin(search, trial)
    assert (dash.progress.value, dash.progress.max) == (0, 1)
    dash.on_trial_end(search, TrialRecord("7", {"head_units": 8}, "COMPLETED", score=0.5))
    assert "1 of 1 trials done" in dash.summary.value  # no max_trials: out of trials seen
    assert dash.best.trial_id == "7"


def test_dashboard_modes_copies_and_pickle(monkeypatch):
    out = io.StringIO()
    dash = TunerDashboard(mode="text", stream=out)
    dash.on_trial_end(None, TrialRecord("3", {"learning_rate": 0.01}, "COMPLETED", score=0.9))
    assert "trial 3 COMPLETED score 0.9 (learning_rate=0.01)" in out.getvalue()
    assert dash.figure is None
    assert TunerDashboard().active_mode == "quiet"  # outside Jupyter the search prints
    shown = []
    monkeypatch.setattr("mmsk.widgets._dashboard.in_kernel", lambda: True)
    handle = Handle()
    monkeypatch.setattr("mmsk.widgets._dashboard.show", lambda w: shown.append(w) or handle)
    live = TunerDashboard()
    live.on_search_begin(FakeSearch())
    assert shown == [live.widget] and live.active_mode == "widget"
    live.on_trial_begin(None, TrialRecord("0", {"learning_rate": 0.1}))
    live.on_trial_end(None, TrialRecord("0", {"learning_rate": 0.1}, "COMPLETED", score=0.7))
    live.on_search_end(None)  # the live display becomes its static copy
    (static,) = handle.shown
    bundle = static._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert '<table class="mmsk-trials">' in bundle["text/html"]
    assert "data:image/png;base64," in bundle["text/html"]
    assert "best accuracy 0.7" in bundle["text/plain"]
    assert copy.deepcopy(dash) is dash
    back = pickle.loads(pickle.dumps(dash))
    assert [t.trial_id for t in back.trials] == ["3"] and back.progress.value == 1
    with pytest.raises(ParameterError, match="mode"):
        TunerDashboard(mode="gui")


@pytest.mark.slow  # a Keras Tuner search of several trials
def test_dashboard_on_a_real_search(tmp_path):
    """One real search: the dashboard follows each trial, fold and epoch as it runs."""
    tuning = pytest.importorskip("mmsk.tuning")
    pytest.importorskip("keras_tuner")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3))
    y = (X[:, 0] > 0).astype(int)
    dash = TunerDashboard(mode="widget")
    seen = []

    class Peek:  # after the dashboard: what it shows as each epoch ends
        def on_epoch_end(self, search, trial, epoch, epochs, logs):
            seen.append(dash.summary.value)

    search = tuning.KerasTunerSearchCV(
        MultimodalClassifier(epochs=2, early_stopping=False, **SMALL),
        {"learning_rate": [1e-3, 1e-2]}, tuner="random", max_trials=2, cv=2, random_state=0,
        progress=False, callbacks=[dash, Peek()], refit=False,
        directory=tmp_path,  # fold models kept: the search fits through its own wrapper
    )  # fmt: skip
    assert search._text_progress() is None  # the dashboard replaces the text bar
    search.fit(X, y)
    title = dash.to_static()._repr_mimebundle_()["text/html"]
    assert "KerasTunerSearchCV of MultimodalClassifier" in title and "_TrialFit" not in title
    assert len(seen) == 2 * 2 * 2  # trials x folds x epochs
    for i, text in enumerate(seen):
        trial, fold, epoch = i // 4, i // 2 % 2 + 1, i % 2 + 1
        assert f"running: trial {trial} &middot; fold {fold}/2 &middot; epoch {epoch}/2" in text
    assert "running" not in dash.summary.value
    # The epochs column: as trained, from the search's records.
    assert [t.epochs for t in search.trials_] == [2, 2]
    assert dash.to_frame()["epochs"].tolist() == [2, 2]
    assert all(dash._epochs_cell(t) == "2" for t in dash.trials)
    assert len(dash.trials) == 2 and all(t.status == "COMPLETED" for t in dash.trials)
    assert (dash.progress.value, dash.progress.max) == (2, 2)
    frame = dash.to_frame().set_index("trial_id")
    ids, scores = search.cv_results_["trial_id"], search.cv_results_["mean_test_score"]
    results = dict(zip(ids, scores, strict=True))
    assert frame["score"].to_dict() == pytest.approx(results)
    assert dash.best.score == pytest.approx(search.best_score_)
    assert plot_points(dash.figure)[0] == 2


def test_dashboard_replaces_the_text_progress_where_it_shows_progress():
    assert TunerDashboard(mode="widget").replaces_progress
    assert TunerDashboard(mode="text").replaces_progress
    assert not TunerDashboard().replaces_progress  # quiet outside Jupyter: the bar prints


# ---- PredictionPlayground ------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_clf():
    X, y = make_frame(30, seed=2)
    clf = MultimodalClassifier(
        encoders={"image": CNNEncoder(filters=4, blocks=1), "text": RNNEncoder(units=4)},
        epochs=1, **SMALL,
    )  # fmt: skip
    return clf.fit(X, y), X


def shown_proba(play, clf):
    return np.array([play.bars[c].value for c in clf.classes_])


def test_playground_classifier(fitted_clf, tmp_path):
    clf, X = fitted_clf
    play = PredictionPlayground(clf)
    assert play.columns == ["image", "caption", "size"]
    assert play.kinds == {"image": "image", "caption": "text", "size": "numeric"}
    assert set(play.bars) == set(clf.classes_.tolist())
    # Nothing filled in: no prediction until the person gives an input.
    assert play.proba is None and play.prediction is None and play.filled() == []
    assert "Fill in an input" in play.message.value
    assert shown_proba(play, clf).tolist() == [0.0] * len(clf.classes_)
    empty = play.row()
    assert empty.iloc[0]["image"] is None and empty.iloc[0]["caption"] is None
    assert np.isnan(empty.iloc[0]["size"])
    before = clf.predict_proba(empty)[0]

    play.inputs["caption"].value = "a photo of the blue thing"
    play.inputs["size"].value = "2.0"
    play.set_input("image", png_bytes(X["image"].iloc[0]))
    row = play.row()
    assert row.iloc[0]["caption"] == "a photo of the blue thing" and row.iloc[0]["size"] == 2.0
    assert row.iloc[0]["image"].startswith(PNG)
    expected = clf.predict_proba(row)[0]
    assert np.allclose(shown_proba(play, clf), expected) and not np.allclose(before, expected)
    assert play.prediction == clf.classes_[np.argmax(expected)]
    assert f"predicted: <b>{play.prediction}</b>" in play.result.value
    assert play._percent[play.prediction].value == f"{expected.max():.1%}"
    assert play.bars[play.prediction].bar_style == "success"
    assert play.previews["image"].layout.display == "" and play.previews["image"].format == "png"
    assert play.file_names["image"].value.startswith("upload.png (")
    # The bars are sorted, most probable first.
    order = [row.children[0].value for row in play.bar_box.children]
    assert order == [str(c) for c in clf.classes_[np.argsort(-expected, kind="stable")]]

    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(X["image"].iloc[1]))
    play.set_input("image", path)  # a path is read like a browser upload
    assert play.inputs["image"].value[0]["name"] == "photo.png"
    assert play.file_names["image"].value.startswith("photo.png (")
    os.mkfifo(tmp_path / "pipe.png")  # read with the checks of any input file: no hang
    with pytest.raises(InputError, match=r"column 'image': '.*pipe\.png' is a FIFO"):
        play.set_input("image", tmp_path / "pipe.png")
    assert play.inputs["image"].value[0]["name"] == "photo.png"
    assert np.allclose(shown_proba(play, clf), clf.predict_proba(play.row())[0])

    play.inputs["size"].value = "big"  # not a number: a message, no stale prediction
    assert "not a number" in play.error and "not a number" in play.message.value
    assert play.error.startswith("column 'size'") and play.proba is None
    assert shown_proba(play, clf).sum() == 0.0 and play.result.value == ""
    play.inputs["size"].value = ""
    play.set_input("image", None)
    assert play.error is None and play.previews["image"].layout.display == "none"
    assert play.row().iloc[0]["image"] is None
    assert np.allclose(shown_proba(play, clf), clf.predict_proba(play.row())[0])
    play.set_input("image", b"not an image")
    assert play.error.startswith("image (file 'upload.png'): ") and "row 0" not in play.error
    assert play.proba is None
    with pytest.raises(InputError, match="unknown column"):
        play.set_input("photo", None)


def test_playground_regressor_with_audio_and_categories():
    rng = np.random.default_rng(0)
    n = 24
    waves = [np.sin(np.arange(1600) * (0.05 + 0.01 * (i % 4))) for i in range(n)]
    X = pd.DataFrame({"sound": waves, "colour": rng.choice(["red", "blue"], n),
                      "size": rng.normal(size=n)})  # fmt: skip
    prep = ModalityPreprocessor(modalities={"colour": "categorical"})
    reg = MultimodalRegressor(epochs=1, preprocessor=prep, **SMALL)
    reg.fit(X, X["size"] * 2)
    play = PredictionPlayground(reg)
    assert play.kinds == {"sound": "audio", "colour": "categorical", "size": "numeric"}
    assert play.bars == {} and play.proba is None
    assert play.inputs["colour"].options[0] == ("(missing)", None)
    assert {label for label, _ in play.inputs["colour"].options[1:]} == {"red", "blue"}

    play.set_input("sound", wav_bytes(waves[3], rate=16000))
    play.set_input("colour", "blue")
    play.inputs["size"].value = "0.5"
    row = play.row()
    assert row.iloc[0]["sound"][:4] == b"RIFF" and row.iloc[0]["colour"] == "blue"
    expected = reg.predict(row)[0]
    assert play.prediction == pytest.approx(expected)
    assert f"{expected:.4g}" in play.result.value
    assert play.previews["sound"].layout.display == ""


def test_playground_pipeline_and_errors():
    X, y = make_frame(30, seed=2)
    X = X[["size"]].assign(shade=np.where(y == "red", "warm", "cold"))
    pipe = Pipeline([("prep", ModalityPreprocessor()),
                     ("clf", MultimodalClassifier(epochs=1, **SMALL))]).fit(X, y)  # fmt: skip
    play = PredictionPlayground(pipe)
    assert play.columns == ["size", "shade"]
    assert play.kinds == {"size": "numeric", "shade": "categorical"}
    play.set_input("shade", "warm")
    with pytest.raises(InputError, match="not a category seen in fit"):
        play.set_input("shade", "lukewarm")
    assert np.allclose(shown_proba(play, pipe), pipe.predict_proba(play.row())[0])
    with pytest.raises(InputError, match="ModalityBatch"):
        PredictionPlayground(pipe[-1])  # fitted on the preprocessed batch: no columns
    with pytest.raises(NotFittedError):
        PredictionPlayground(MultimodalClassifier())
    html = estimator_html_repr(pipe)  # fitted: the encoders used, one per modality
    for text in ["ModalityPreprocessor", "encoders", "MLPEncoder", "ConcatFusion"]:
        assert text in html


# ---- HTML diagram -------------------------------------------------------------------
def diagram_labels(html: str) -> list[str]:
    return re.findall(r"<div>([^<]+)</div>", re.sub(r"<style>.*?</style>", "", html, flags=re.S))


def param_rows(html: str) -> list[tuple[str, str]]:
    # A parameter's name is a link to its documentation where the box has one.
    cell = r'<td class="param">\s*(?:<a [^>]*>\s*)?(\w+)\s*(?:<span.*?</span>\s*</a>\s*)?</td>'
    return re.findall(cell + r'\s*<td class="value">([^<]*)</td>', html, flags=re.S)


def test_html_diagram_shows_component_settings():
    clf = MultimodalClassifier(
        encoders={"text": RNNEncoder(units=8), "image": "cnn"}, fusion=AttentionFusion(num_heads=2)
    )
    html = clf._repr_html_()
    assert "sk-container" in estimator_html_repr(clf)
    labels = re.findall(r"<div>([^<]+)</div>", re.sub(r"<style>.*?</style>", "", html, flags=re.S))
    assert labels[:6] == ["MultimodalClassifier", "encoders", "text", "RNNEncoder", "image", "cnn"]
    assert "AttentionFusion" in labels
    rows = param_rows(html)
    assert ("units", "8") in rows and ("num_heads", "2") in rows
    assert ("learning_rate", "0.001") in rows  # the estimator's own table stays
    assert 'data-param-prefix="encoders__text__"' in html
    assert 'data-param-prefix="fusion__"' in html
    # Nothing to draw but the estimator: sklearn's usual single box.
    plain = MultimodalClassifier()._repr_html_()
    assert diagram_labels(plain) == ["MultimodalClassifier"]
    assert 'api/estimators/#mmsk.models.MultimodalClassifier"' in plain  # its "?" link
    # A fusion given by name is drawn, with its settings and its documentation link.
    named = MultimodalClassifier(fusion="attention")._repr_html_()
    assert "AttentionFusion" in diagram_labels(named) and ("num_heads", "4") in param_rows(named)
    assert (
        'href="https://mmsk.readthedocs.io/en/latest/api/components/#mmsk.components.Atte' in named
    )
    pipe = Pipeline([("clf", MultimodalClassifier(fusion=AttentionFusion(num_heads=4)))])
    assert ("num_heads", "4") in param_rows(estimator_html_repr(pipe))


def test_html_diagram_after_fit_shows_every_modality(fitted_clf):
    clf, _ = fitted_clf
    html = estimator_html_repr(clf)
    labels = diagram_labels(html)
    # Every modality, by name and kind (and column), with its transformer and encoder.
    start = labels.index("encoders")
    assert labels[start + 1 : start + 4] == ["image: image", "ImagePreprocessor", "CNNEncoder"]
    assert labels[start + 4 : start + 7] == ["caption: text", "TextVectorizer", "RNNEncoder"]
    assert "numeric: numeric from size" in labels and labels[-2] == "ConcatFusion"
    # sklearn's box of output features: the embeddings transform gives, not pixels.
    width = clf.model_.get_layer("fused").output.shape[-1]
    assert labels[-1] in (f"{width} features", f"100 of {width} features")
    assert "multimodalclassifier0" in html
    assert "icon_0" not in html and "image_0" not in html  # no pixel "features"
    assert 'href="https://mmsk.readthedocs.io/en/latest/api/preprocessing/#mmsk.prep' in html
