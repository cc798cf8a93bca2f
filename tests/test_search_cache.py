"""The search's fold cache holds no pickle, and trusts nothing it reads (issue 12, item 7).

A search folder may be shared between machines, so anyone who can write there
could plant a file.  Fold models are kept with ``mmsk.save``; a kept file that
``mmsk.load`` refuses, or that holds other settings, is trained again.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import warnings
import zipfile

import numpy as np
import pytest

from mmsk import KerasTunerSearchCV, MultimodalClassifier, load

pytest.importorskip("keras_tuner")
pytestmark = pytest.mark.slow  # every test runs or reads a search of several models

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 3))
Y = (X[:, 0] > 0).astype(int)


class Payload:
    """Unpickling it creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class Mine(MultimodalClassifier):
    """A user-defined class: ``mmsk.load`` does not trust it by default."""


def search(directory, estimator=None, units=(4, 8)):
    """A grid search over ``units`` that keeps its fold models; no refit (not cached)."""
    estimator = estimator or MultimodalClassifier(epochs=1, head_units=4, random_state=0)
    return KerasTunerSearchCV(
        estimator, {"head_units": list(units)}, tuner="grid", cv=2, refit=False,
        directory=directory, project_name="p", progress=False,
    )  # fmt: skip


@pytest.fixture
def fits(monkeypatch):
    """Counts MultimodalClassifier fits (the search's folds)."""
    count = {"n": 0}
    fit = MultimodalClassifier.fit

    def counted(self, *args, **kwargs):
        count["n"] += 1
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(MultimodalClassifier, "fit", counted)
    return count


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished search's folder: two trials of two folds."""
    folder = tmp_path_factory.mktemp("finished")
    search(folder).fit(X, Y)
    return folder


def folds(folder):
    """The kept fold models (a grid search keeps them in ``<project>/grid``)."""
    return sorted(p for p in folder.glob("p/**/fold-*") if p.suffix != ".error")


def rerun(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = search(folder).fit(X, Y)
    kept = [str(w.message) for w in caught if "kept fold model" in str(w.message)]
    assert np.isfinite(result.cv_results_["mean_test_score"]).all()
    return kept


def test_fold_models_are_mmsk_saves_and_are_read_back(finished, tmp_path, fits):
    assert [p.suffix for p in folds(finished)] == [".zip"] * 4
    for path in folds(finished):
        assert zipfile.is_zipfile(path)
        assert isinstance(load(path), MultimodalClassifier)
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    assert rerun(folder) == []
    assert fits["n"] == 0  # every fold was read back


def test_a_planted_pickle_is_never_unpickled(finished, tmp_path, fits):
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(Payload(marker))
    paths = folds(folder)
    for path in paths:
        path.with_suffix(".joblib").write_bytes(payload)  # a pickle under the old name
    paths[1].write_bytes(payload)  # a pickle under the real name
    with zipfile.ZipFile(paths[0], "w") as archive:  # a zip that holds a pickle
        archive.writestr("config.json", "{}")
        archive.writestr("model.pkl", payload)
    kept = rerun(folder)
    assert not marker.exists()
    assert len(kept) == 2 and all("trained again" in message for message in kept)
    assert fits["n"] == 2  # the two planted folds trained again; the others read back
    for path in folds(folder):  # the planted files were replaced by real saves
        if path.suffix == ".zip":
            assert isinstance(load(path), MultimodalClassifier)
    assert not marker.exists()


def test_garbage_and_swapped_cache_files_are_trained_again(finished, tmp_path, fits):
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    by_units = sorted(folds(folder), key=lambda p: (load(p).head_units, p.name))
    a0, a1, b0, _ = by_units  # the folds of head_units 4, then those of 8
    a0.write_bytes(os.urandom(2000))  # damaged
    shutil.copyfile(b0, a1)  # another trial's model (head_units 8) under trial 0's name
    kept = rerun(folder)
    assert len(kept) == 2
    assert any("settings differ" in message for message in kept)
    assert fits["n"] == 2
    assert load(a1).head_units == 4


def test_an_estimator_mmsk_load_would_not_trust_is_not_kept(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = search(tmp_path, Mine(epochs=1, head_units=4, random_state=0), units=[4]).fit(
            X, Y
        )
    assert not [w for w in caught if "fold" in str(w.message)]
    assert np.isfinite(result.cv_results_["mean_test_score"]).all()
    assert folds(tmp_path) == []
    assert not list(tmp_path.glob("p/**/*.tmp"))  # no leftovers of the attempt


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_planted_fifo_or_huge_error_record_does_not_hang_the_search(finished, tmp_path, fits):
    folder = tmp_path / "copy"
    shutil.copytree(finished, folder)
    first, second = folds(folder)[:2]
    os.mkfifo(first.with_suffix(".error"))  # reading it would wait for a writer forever
    with open(second.with_suffix(".error"), "wb") as fh:
        fh.truncate(20 * 2**30)  # 20 GB that take no disk

    def hung(signum, frame):
        raise TimeoutError("the search hung on a planted error record")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        assert rerun(folder) == []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert fits["n"] == 0  # the records were ignored and the kept models read back
