"""``python -m mmsk demo``: the table, the JSON, the PNG, bad input, and Ctrl-C."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import sigint_as_at_a_terminal
from PIL import Image

from mmsk import _demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS = ("accuracy", "macro_f1", "fit_seconds", "predict_ms_per_row")


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def _demo_cmd(*args):
    return [sys.executable, "-m", "mmsk", "demo", *args]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One short run of the demo, shared by the tests that read its output."""
    cwd = tmp_path_factory.mktemp("demo")
    out = cwd / "out"
    proc = subprocess.run(
        _demo_cmd("--epochs", "1", "--fusion", "concat,late", "--output", str(out)),
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out


@pytest.mark.slow
def test_demo_prints_a_table_with_the_best_marked(demo_run):
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("model ") :]
    rows = {line.split()[0]: line for line in table.splitlines()[2:6]}
    assert set(rows) == {"image", "audio", "fusion=concat", "fusion=late"}
    assert "accuracy" in table and "macro-F1" in table and "predict ms/row" in table
    assert len([line for line in rows.values() if " * " in line]) == 1  # the best, marked
    assert "* best by accuracy" in table
    # the table ends the output, and all of it fits a 24-line terminal
    assert table.rstrip().splitlines()[-1].startswith("the best fusion")
    assert len(proc.stdout.rstrip().splitlines()) <= 24, proc.stdout
    # progress went to stderr: a start and an end line per model
    assert proc.stderr.count("training ...") == 4 and proc.stderr.count("done in") == 4


@pytest.mark.slow
def test_demo_writes_json_and_png(demo_run):
    _, out = demo_run
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "av_digits" and results["metric"] == "accuracy"
    assert [m["model"] for m in results["models"]] == [
        "image only",
        "audio only",
        "fusion=concat",
        "fusion=late",
    ]
    for model in results["models"]:
        for key in METRICS:
            assert isinstance(model[key], float) and model[key] >= 0, (model["model"], key)
        assert 0 <= model["accuracy"] <= 1 and model["epochs"] == 1
    assert results["best"] in [m["model"] for m in results["models"]]
    assert isinstance(results["fusion_gain"], float)
    assert results["n_train"] + results["n_test"] == 1797
    png = out / "comparison.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(png) as img:
        img.verify()
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.png",
        "example.py",
        "results.json",
    ]
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "results.json").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.slow
def test_demo_writes_python_that_compiles(demo_run):
    proc, out = demo_run
    assert str(out / "example.py") in proc.stdout
    code = (out / "example.py").read_text()
    compile(code, "<demo>", "exec")
    for call in (
        "load_av_digits()",
        "MultimodalClassifier(",
        "fusion=fusion",
        "ImagePreprocessor(",
        "AudioFeaturizer(",
        "train_test_split(",
    ):
        assert call in code


def test_unknown_dataset_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        _demo_cmd("--dataset", "mnist"),
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "invalid choice: 'mnist'" in proc.stderr and "av_digits" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fusion", "concat,bogus"], "expected a comma-separated list of concat"),
        (["--epochs", "0"], "expected a positive integer"),
        (["--test-size", "1.5"], "expected a number between 0 and 1"),
    ],
)
def test_bad_options_are_clear_errors(args, message, capsys):
    from mmsk.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["demo", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_exits_130_and_leaves_no_files(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _demo_cmd("--epochs", "50", "--output", str(out)),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_at_a_terminal,
    )
    stderr: list[str] = []
    training = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            stderr.append(line)
            if "training ..." in line:
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert training.wait(120), "the demo never started training:\n" + "".join(stderr)
        time.sleep(1.5)  # well into the first model's epochs
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("the demo ignored SIGINT:\n" + "".join(stderr)[-3000:])
        stdout = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    text = "".join(stderr)
    assert proc.returncode == 130, text[-3000:]
    assert "interrupted; no results were written" in text
    assert "Traceback" not in text
    assert not out.exists() or list(out.iterdir()) == []
    assert "example.py" not in stdout


# ---- pieces, in process --------------------------------------------------------------------


RESULTS = {
    "dataset": "av_digits",
    "metric": "accuracy",
    "n_train": 3,
    "n_test": 1,
    "n_classes": 2,
    "best": "fusion=late",
    "best_single": "a only",
    "fusion_gain": 0.25,
    "models": [
        {
            "model": "a only",
            "kind": "single",
            "columns": ["a"],
            "accuracy": 0.5,
            "macro_f1": 0.4,
            "fit_seconds": 1.0,
            "predict_ms_per_row": 0.1,
        },
        {
            "model": "fusion=late",
            "kind": "fusion",
            "columns": ["a", "b"],
            "accuracy": 0.75,
            "macro_f1": 0.7,
            "fit_seconds": 2.0,
            "predict_ms_per_row": 0.2,
        },
    ],
}


def test_format_table_marks_the_best_and_the_gain():
    text = _demo.format_table(RESULTS)
    assert "fusion=late *" in text and "a only *" not in text
    assert "beats the best single modality (a only) by 25.0 points of accuracy" in text


def test_files_are_written_all_or_none(tmp_path):
    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    def good(tmp: Path) -> None:
        _demo.write_json(RESULTS, tmp)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # the second file fails: the first is not kept
        _demo.write_files({out / "results.json": good, out / "comparison.png": fail})
    assert list(out.iterdir()) == []
    _demo.write_files({out / "results.json": good})
    assert json.loads((out / "results.json").read_text()) == RESULTS
    assert [p.name for p in out.iterdir()] == ["results.json"]


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    _demo.write_plot(RESULTS, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_SIGNATURE


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = _Terminal()
    bar = _demo.Progress(stream, n_models=2, verbose=False)
    bar.begin("image only")
    bar.draw(0, 4, 0.0, None)
    bar.draw(3, 4, 1.0, 0.25)  # Keras' Progbar, redrawn with "\r", ends its own line
    bar.end("accuracy 0.900")
    lines = stream.getvalue().split("\n")
    assert lines[0] == "[1/2] image only        training"
    assert lines[1].startswith("\r") and lines[1].count("\r") == 2  # drawn, then redrawn
    assert "4/4" in lines[1] and lines[1].endswith("loss: 0.2500")
    assert lines[2].startswith("[1/2] image only        done in ") and lines[3:] == [""]
    bar.begin("text only")
    bar.draw(0, 4, 0.5, 0.7)
    bar.close()  # interrupted: the open bar's line is ended
    assert stream.getvalue().endswith("loss: 0.7000\n")


def test_progress_prints_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = _demo.Progress(stream, n_models=1, verbose=True)
    bar.begin("fusion=concat")
    bar.draw(0, 2, 0.5, 1.0)  # no bar in a log
    bar.epoch_done(0, 2, 0.75)
    bar.end("done")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/1] fusion=concat     training ..."
    assert lines[1] == "[1/1] fusion=concat     epoch   1/2 loss 0.7500"
    assert lines[2].startswith("[1/1] fusion=concat     done in ")


def test_a_swallowed_ctrl_c_is_raised_again_at_the_next_check():
    _demo.Interrupt.requested = False
    try:
        _demo.Interrupt.handler(2, None)
    except KeyboardInterrupt:
        pass  # as TensorFlow's __del__ methods lose it
    with pytest.raises(KeyboardInterrupt):
        _demo.Interrupt.check()
    _demo.Interrupt.requested = False
    _demo.Interrupt.check()


def test_an_error_caused_by_a_ctrl_c_still_exits_130(monkeypatch, tmp_path, capsys):
    """A Ctrl-C landing in TensorFlow's C code can surface as another error, which mmsk
    wraps (seen in CI: SystemError -> ModelBuildError); the demo still reports 130."""
    from mmsk.exceptions import ModelBuildError

    def interrupted_training(args, progress):
        _demo.Interrupt.requested = True  # what the SIGINT handler records
        raise ModelBuildError("training failed: SystemError: bad argument to internal function")

    from mmsk.__main__ import main

    argv = ["demo", "--output", str(tmp_path / "out")]
    monkeypatch.setattr(_demo, "_run", interrupted_training)
    assert main(argv) == _demo.EXIT_INTERRUPTED
    assert "interrupted; no results were written" in capsys.readouterr().err
    _demo.Interrupt.requested = False

    def plain_failure(args, progress):
        raise ModelBuildError("a real error")

    monkeypatch.setattr(_demo, "_run", plain_failure)
    assert main(argv) == 1
    assert "ModelBuildError: a real error" in capsys.readouterr().err
