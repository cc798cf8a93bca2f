"""``checkpoint_dir`` never destroys: mmsk writes only into a folder it owns and
removes only what it wrote (issue 12, item 6)."""

import json
import os

import keras
import numpy as np
import pytest
from sklearn.base import clone

import mmsk
from mmsk.exceptions import ModelBuildError, ParameterError
from mmsk.models._checkpoint import BACKUP, MARKER

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    paths = [os.path.join(root, name) for root, _, files in os.walk(folder) for name in files]
    return {os.path.relpath(p, folder): open(p, "rb").read() for p in paths}


def user_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "2024").mkdir(parents=True)
    (folder / "a.txt").write_text("keep me")
    (folder / "2024" / "b.bin").write_bytes(os.urandom(100))
    return folder


class Epochs(keras.callbacks.Callback):
    """Records the epochs begun; raises at the end of ``fail_at``."""

    def __init__(self, fail_at=-1):
        super().__init__()
        self.begun, self.fail_at = [], fail_at

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.fail_at:
            raise RuntimeError("interrupted")


def clf(folder, **kw):
    kw = {"epochs": 4, "batch_size": 30, "random_state": 0, **kw}
    return mmsk.MultimodalClassifier(checkpoint_dir=folder, **kw)


def test_a_users_folder_is_refused_and_left_intact(tmp_path):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(ParameterError) as err:
        clf(folder).fit(X, Y)
    message = str(err.value)
    assert str(folder) in message and "'a.txt'" in message and MARKER in message
    assert snapshot(folder) == before and sorted(os.listdir(folder)) == ["2024", "a.txt"]


def test_a_loaded_or_cloned_setting_cannot_delete_a_folder(tmp_path):
    # The attack of issue 12: a model whose checkpoint_dir names the victim's folder.
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(ParameterError, match="checkpoint_dir"):
        clone(clf(folder, epochs=1)).fit(X, Y)
    assert snapshot(folder) == before


def test_a_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("data")
    with pytest.raises(ParameterError, match="is not a folder"):
        clf(path).fit(X, Y)
    assert path.read_text() == "data"


@pytest.mark.parametrize(
    "marker", ["{}", "not json", json.dumps({"format": "other"}), "symlink", "folder"]
)
def test_a_marker_mmsk_did_not_write_is_refused(tmp_path, marker):
    folder = tmp_path / "ck"
    folder.mkdir()
    if marker == "symlink":
        (tmp_path / "target").write_text(json.dumps({"format": "mmsk-checkpoint"}))
        (folder / MARKER).symlink_to(tmp_path / "target")
    elif marker == "folder":
        (folder / MARKER).mkdir()
    else:
        (folder / MARKER).write_text(marker)
    (folder / "mine.txt").write_text("keep")
    with pytest.raises(ParameterError, match=MARKER):
        clf(folder).fit(X, Y)
    assert (folder / "mine.txt").read_text() == "keep"


def test_a_new_folder_is_removed_after_fit(tmp_path):
    folder = tmp_path / "new" / "ck"
    seen = []

    class Look(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(os.listdir(folder)))

    model = clf(folder, callbacks=[Look()]).fit(X, Y)
    assert model.n_epochs_ == 4
    assert seen[0] == sorted([MARKER, BACKUP])  # the backup was really written there
    assert not folder.exists() and (tmp_path / "new").is_dir()


def test_an_empty_folder_is_kept_empty(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    clf(folder).fit(X, Y)
    assert folder.is_dir() and os.listdir(folder) == []


def test_files_added_to_mmsks_folder_during_fit_are_kept(tmp_path):
    folder = tmp_path / "ck"

    class AddFile(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            (folder / f"user-{epoch}.txt").write_text("kept")

    clf(folder, callbacks=[AddFile()]).fit(X, Y)
    assert sorted(os.listdir(folder)) == [f"user-{e}.txt" for e in range(4)]


def test_an_interrupted_fit_resumes_and_then_cleans_up(tmp_path):
    folder = tmp_path / "ck"
    first = Epochs(fail_at=1)
    with pytest.raises(ModelBuildError, match="interrupted"):
        clf(folder, callbacks=[first]).fit(X, Y)
    assert first.begun == [0, 1]
    assert sorted(os.listdir(folder)) == sorted([MARKER, BACKUP])  # kept for the resume
    assert json.loads((folder / MARKER).read_text())["created"] is True

    again = Epochs()
    model = clf(folder, callbacks=[again]).fit(X, Y)
    assert again.begun == [2, 3]  # epochs 0 and 1 were not trained again
    assert model.predict(X).shape == (60,)
    assert not folder.exists()  # mmsk created it in the first fit


def test_a_resumed_fit_in_a_users_empty_folder_keeps_the_folder(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    with pytest.raises(ModelBuildError):
        clf(folder, callbacks=[Epochs(fail_at=0)]).fit(X, Y)
    assert json.loads((folder / MARKER).read_text())["created"] is False
    again = Epochs()
    clf(folder, callbacks=[again]).fit(X, Y)
    assert again.begun == [1, 2, 3]
    assert folder.is_dir() and os.listdir(folder) == []


def test_a_refusal_comes_before_any_preprocessing(tmp_path):
    # A refused folder costs nothing: the image paths below are never opened.
    import pandas as pd

    folder = user_folder(tmp_path)
    frame = pd.DataFrame({"photo": [str(tmp_path / "missing.png")] * 4, "x": [0.0, 1, 2, 3]})
    with pytest.raises(ParameterError, match="checkpoint_dir"):
        mmsk.MultimodalClassifier(checkpoint_dir=folder, epochs=1).fit(frame, [0, 1, 0, 1])
