"""A fit killed with SIGKILL resumes from its last finished epoch (``checkpoint_dir``)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras, numpy as np
    import mmsk

    checkpoint_dir, log, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            with open(log, "a") as fh:
                fh.write(f"{epoch}\\n")

        def on_epoch_end(self, epoch, logs=None):
            if epoch == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    clf = mmsk.MultimodalClassifier(
        epochs=6, random_state=0, checkpoint_dir=checkpoint_dir, callbacks=[Record()]
    ).fit(X, y)
    print("finished", clf.n_epochs_, clf.score(X, y))
    """
)


def fit(tmp_path, kill_after):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path / "ckpt"),
            str(tmp_path / "epochs.log"),
            str(kill_after),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.slow
def test_killed_fit_resumes_from_its_last_finished_epoch(tmp_path):
    killed = fit(tmp_path, kill_after=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "epochs.log").read_text().split() == ["0", "1", "2"]
    assert any((tmp_path / "ckpt").iterdir())  # the state of epoch 2 was saved

    resumed = fit(tmp_path, kill_after=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = (tmp_path / "epochs.log").read_text().split()
    assert epochs == ["0", "1", "2", "3", "4", "5"]  # epochs 0-2 were not trained again
    assert resumed.stdout.startswith("finished")
    assert float(resumed.stdout.split()[-1]) > 0.8
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())


def test_checkpoint_dir_is_a_plain_parameter(tmp_path):
    import mmsk
    from mmsk.exceptions import ParameterError

    clf = mmsk.MultimodalRegressor(checkpoint_dir=tmp_path)
    assert clf.get_params()["checkpoint_dir"] == tmp_path
    with pytest.raises(ParameterError, match="checkpoint_dir"):
        mmsk.MultimodalRegressor(checkpoint_dir=3, epochs=1).fit([[0.0], [1.0]], [0.0, 1.0])
