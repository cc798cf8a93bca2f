"""mmsk.save / mmsk.load: round trips without pickle, refusals of code, damaged files."""

import json
import pickle
import shutil
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import mmsk
from mmsk.exceptions import PersistenceError, UnsafeFileError
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
    TextVectorizer,
)


def _frame(n=24, seed=0):
    """Image, text, audio, numeric and categorical columns, with a few missing cells."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(800) / 8000
    X = pd.DataFrame(
        {
            "photo": [rng.integers(0, 80, (8, 8, 3), dtype=np.uint8) + 150 * c for c in y],
            "caption": [f"a {'bright' if c else 'dark'} photo of a thing" for c in y],
            "clip": [np.sin(2 * np.pi * (300 + 400 * c) * t).astype("float32") for c in y],
            "price": rng.normal(size=n) + y,
            "shape": pd.Categorical(rng.choice(["round", "square"], n)),
        }
    )
    X.loc[2, "photo"] = None
    X.loc[3, "caption"] = None
    X.loc[4, "price"] = np.nan
    return X, np.array(["dark", "bright"])[y]


def _prep():
    return ModalityPreprocessor(
        image=ImagePreprocessor(size=8, normalization="standardize"),
        audio=AudioFeaturizer(sample_rate=8000, duration=0.1, n_mels=8),
    )


@pytest.fixture(scope="module")
def frame():
    return _frame()


@pytest.fixture(scope="module")
def fitted(frame):
    X, y = frame
    return mmsk.MultimodalClassifier(preprocessor=_prep(), epochs=2, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A quick numeric classifier and its save folder, for the crafted-file tests."""
    X = np.random.default_rng(1).normal(size=(30, 3))
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, X[:, 0] > 0)
    path = tmp_path_factory.mktemp("small") / "clf"
    mmsk.save(clf, path)
    return clf, X, path


def _copy(src, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _edit_config(path, edit):
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


# ---- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_classifier_on_a_dataframe_round_trips_with_identical_predictions(
    fitted, frame, tmp_path, suffix
):
    X, _ = frame
    path = mmsk.save(fitted, tmp_path / f"clf{suffix}")
    assert path.is_dir() == (suffix == "")
    loaded = mmsk.load(path)
    assert type(loaded) is mmsk.MultimodalClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert list(loaded.classes_) == list(fitted.classes_)
    assert loaded.get_params()["preprocessor__image__size"] == 8
    assert loaded.history_ == fitted.history_ and loaded.specs_ == fitted.specs_
    text = loaded.preprocessor_.transformers_[1][1]
    assert text.vocabulary_ == fitted.preprocessor_.transformers_[1][1].vocabulary_
    np.testing.assert_array_equal(
        loaded.preprocessor_.transformers_[0][1].mean_,
        fitted.preprocessor_.transformers_[0][1].mean_,
    )


def test_the_save_holds_json_npz_and_keras_only(fitted, tmp_path, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, name, no_pickle)
    path = mmsk.save(fitted, tmp_path / "clf.zip")
    mmsk.load(path)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == [".mmsk-save", "arrays.npz", "config.json", "models/0.keras"]
        config = json.loads(archive.read("config.json"))
    assert config["format"] == "mmsk" and config["format_version"] == 1
    assert config["written_by"]["mmsk"] == mmsk.__version__
    assert config["root"]["class"] == "mmsk.models._classifier:MultimodalClassifier"


def test_regressor_and_warm_start_after_loading(frame, tmp_path):
    X = frame[0][["caption", "price"]]
    target = np.stack([X["price"].fillna(0).to_numpy(), np.arange(len(X), dtype=float)], 1)
    reg = mmsk.MultimodalRegressor(epochs=1, random_state=0).fit(X, target)
    loaded = mmsk.load(mmsk.save(reg, tmp_path / "reg.zip"))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    np.testing.assert_array_equal(loaded.y_mean_, reg.y_mean_)
    loaded.set_params(warm_start=True, epochs=2).fit(X, target)  # the optimizer state came too
    assert loaded.n_epochs_ == 2


def test_pipeline_with_a_scaler_round_trips(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3)) * [1, 10, 100]
    y = (X[:, 0] > 0).astype(int)
    pipe = Pipeline(
        [
            ("log", FunctionTransformer(np.abs)),
            ("scale", StandardScaler()),
            ("clf", mmsk.MultimodalClassifier(epochs=1, random_state=0)),
        ]
    ).fit(X, y)
    loaded = mmsk.load(mmsk.save(pipe, tmp_path / "pipe"))
    assert isinstance(loaded, Pipeline) and loaded.named_steps["log"].func is np.abs
    np.testing.assert_array_equal(
        loaded.named_steps["scale"].mean_, pipe.named_steps["scale"].mean_
    )
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_preprocessors_and_unfitted_estimators_round_trip(frame, tmp_path):
    X, _ = frame
    prep = _prep().fit(X)
    loaded = mmsk.load(mmsk.save(prep, tmp_path / "prep"))
    a, b = prep.transform(X), loaded.transform(X)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a.masks[name], b.masks[name])
    vec = TextVectorizer(ngrams=(1, 2)).fit(X["caption"])
    loaded_vec = mmsk.load(mmsk.save(vec, tmp_path / "vec.zip"))
    np.testing.assert_array_equal(loaded_vec.transform(X["caption"]), vec.transform(X["caption"]))
    clf = mmsk.MultimodalClassifier(
        encoders={"text": "transformer"},
        fusion="attention",
        class_weight={"a": 2.0},
        checkpoint_dir=tmp_path / "ck",
    )
    clf.set_params(encoders__text__num_heads=1, fusion__num_heads=1)
    same = mmsk.load(mmsk.save(clf, tmp_path / "unfitted.zip"))
    assert same.get_params(deep=True).keys() == clf.get_params(deep=True).keys()
    assert same.get_params()["encoders__text__num_heads"] == 1
    assert same.class_weight == {"a": 2.0}
    assert same.checkpoint_dir is None  # a folder to write is never taken from a file
    assert not hasattr(same, "model_")


def test_saving_again_replaces_an_earlier_save_but_not_other_folders(small, tmp_path):
    clf, _, _ = small
    path = mmsk.save(clf, tmp_path / "clf")
    mmsk.save(clf, path)  # replaces the earlier save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.png").write_bytes(b"x")
    with pytest.raises(PersistenceError, match=r"'.*photos'.*does not replace it"):
        mmsk.save(clf, other)
    assert (other / "a.png").read_bytes() == b"x"


def test_what_cannot_be_data_is_refused_at_save_time(tmp_path):
    from mmsk import _backend

    keras = _backend.keras()
    clf = mmsk.MultimodalClassifier(callbacks=[keras.callbacks.TerminateOnNaN()])
    with pytest.raises(
        PersistenceError, match=r"MultimodalClassifier\.callbacks\[0\].*TerminateOnNaN"
    ):
        mmsk.save(clf, tmp_path / "x")
    with pytest.raises(PersistenceError, match=r"steps\[0\].*function"):
        mmsk.save(Pipeline([("f", FunctionTransformer(lambda v: v))]), tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ---- refusing code --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "place, name",
    [
        ("root", "os:system"),
        ("param", "subprocess:Popen"),
        ("type", "builtins:eval"),
    ],
)
def test_a_class_outside_the_allow_list_is_refused(small, tmp_path, place, name):
    _, _, saved = small
    path = _copy(saved, tmp_path)

    def edit(config):
        node = {"$": "type", "class": name}
        if place == "root":
            config["root"]["class"] = name
        elif place == "param":
            config["root"]["params"]["fusion"] = {"$": "estimator", "class": name, "params": {},
                                                  "state": {}}  # fmt: skip
        else:
            config["root"]["params"]["fusion"] = node

    _edit_config(path, edit)
    with pytest.raises(UnsafeFileError, match=rf"Python class '{name}'.*refuses"):
        mmsk.load(path)


def test_a_refused_module_is_never_imported(small, tmp_path, monkeypatch):
    _, _, saved = small
    (tmp_path / "mmsk_evil_probe.py").write_text(
        "import sys\nsys.EVIL_RAN = True\nclass X: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _copy(saved, tmp_path)
    _edit_config(path, lambda c: c["root"].update({"class": "mmsk_evil_probe:X"}))
    with pytest.raises(UnsafeFileError, match="mmsk_evil_probe:X"):
        mmsk.load(path)
    assert "mmsk_evil_probe" not in sys.modules and not hasattr(sys, "EVIL_RAN")


def test_only_numpy_ufuncs_are_accepted_as_functions(small, tmp_path):
    _, _, saved = small
    path = _copy(saved, tmp_path)
    node = {"$": "ufunc", "name": "load"}  # np.load: a function, not a ufunc
    _edit_config(path, lambda c: c["root"]["params"].update({"fusion": node}))
    with pytest.raises(UnsafeFileError, match=r"function 'load'.*ufuncs"):
        mmsk.load(path)


def _keras_file(tmp_path, layer):
    from mmsk import _backend

    keras = _backend.keras()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "crafted.keras")
    return (tmp_path / "crafted.keras").read_bytes()


def test_a_lambda_layer_is_refused(small, tmp_path):
    from mmsk import _backend

    keras = _backend.keras()
    _, _, saved = small
    path = _copy(saved, tmp_path)
    data = _keras_file(tmp_path, keras.layers.Lambda(lambda v: v * 2, name="payload"))
    (path / "models" / "0.keras").write_bytes(data)
    with pytest.raises(UnsafeFileError, match=r"'Lambda' \(layer 'payload'\).*Python code"):
        mmsk.load(path)


def test_an_unknown_keras_class_is_refused(small, tmp_path):
    from mmsk import _backend

    keras = _backend.keras()
    _, _, saved = small
    path = _copy(saved, tmp_path)
    data = _keras_file(tmp_path, keras.layers.Dense(2, name="dense"))
    with zipfile.ZipFile(tmp_path / "crafted.keras") as src:
        config = json.loads(src.read("config.json"))
        others = {n: src.read(n) for n in src.namelist() if n != "config.json"}
    layer = next(lay for lay in config["config"]["layers"] if lay["class_name"] == "Dense")
    layer.update({"module": "shutil", "class_name": "rmtree", "registered_name": "x>rmtree"})
    with zipfile.ZipFile(path / "models" / "0.keras", "w") as dst:
        dst.writestr("config.json", json.dumps(config))
        for name, member in others.items():
            dst.writestr(name, member)
    assert data  # the unedited file was a valid model
    with pytest.raises(UnsafeFileError, match=r"class 'rmtree'.*module 'shutil'.*refuses"):
        mmsk.load(path)


# ---- damaged and newer files ----------------------------------------------------------------


def test_a_file_from_a_newer_mmsk_is_a_clear_error(small, tmp_path):
    _, _, saved = small
    path = _copy(saved, tmp_path)

    def newer(config):
        config["format_version"] = 2
        config["written_by"]["mmsk"] = "9.0.0"

    _edit_config(path, newer)
    with pytest.raises(
        PersistenceError, match=r"mmsk 9\.0\.0 in format version 2.*up to 1.*upgrade"
    ):
        mmsk.load(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", r"not a readable mmsk save.*truncated or damaged"),
        ("empty", r"Received: an empty file"),
        ("no_model", r"models/0\.keras is missing"),
        ("no_config", r"config\.json is missing"),
        ("bad_json", r"config\.json is not valid JSON"),
        ("not_mmsk", r"Expected a save written by mmsk\.save"),
        ("bad_node", r"MultimodalClassifier\.epochs: Expected a value or a tagged object"),
        ("bad_array", r"array 'a999' is missing from arrays\.npz"),
    ],
)
def test_a_damaged_file_is_a_clear_error(small, tmp_path, damage, message):
    _, _, saved = small
    path = _copy(saved, tmp_path)
    if damage == "truncate":
        path = mmsk.save(mmsk.load(saved), tmp_path / "clf.zip")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path = tmp_path / "empty.zip"
        path.write_bytes(b"")
    elif damage == "no_model":
        (path / "models" / "0.keras").unlink()
    elif damage == "no_config":
        (path / "config.json").unlink()
    elif damage == "bad_json":
        text = (path / "config.json").read_text()
        (path / "config.json").write_text(text[: len(text) // 2])
    elif damage == "not_mmsk":
        (path / "config.json").write_text('{"hello": 1}')
    elif damage == "bad_node":
        _edit_config(path, lambda c: c["root"]["params"].update({"epochs": {"x": 1}}))
    else:
        _edit_config(
            path, lambda c: c["root"]["state"].update({"classes_": {"$": "array", "key": "a999"}})
        )
    with pytest.raises(PersistenceError, match=message):
        mmsk.load(path)


def test_a_path_that_does_not_exist():
    with pytest.raises(PersistenceError, match="does not exist"):
        mmsk.load("no/such/save.zip")


def test_docstring_examples_run():
    import doctest

    import mmsk._persist

    result = doctest.testmod(mmsk._persist, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# ---- trust, limits and saves (issue 12) ----------------------------------------------------


def test_the_quick_scikit_learn_list_is_part_of_all_estimators():
    from mmsk._persist import _trust

    assert _trust._sklearn_common() <= _trust._sklearn_all()
    assert "sklearn.pipeline:Pipeline" in _trust._sklearn_all()
    assert "mmsk.models._classifier:MultimodalClassifier" in _trust._base_names()
    assert "numpy:float64" in _trust._base_names()
    assert not _trust.trusted_by_default("sklearn.utils._bunch:Bunch")  # not an estimator


def test_a_limit_names_the_member_and_can_be_raised(small, tmp_path):
    clf, X, saved = small
    size = (saved / "models" / "0.keras").stat().st_size
    with pytest.raises(PersistenceError, match=r"models/0\.keras.*max_member_bytes"):
        mmsk.load(saved, max_member_bytes=size // 2)
    with pytest.raises(PersistenceError, match=r"config\.json"):
        mmsk.load(saved, max_config_bytes=100)
    same = mmsk.load(saved, max_member_bytes=size + 1)
    np.testing.assert_array_equal(same.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(PersistenceError, match=r"positive integer.*max_total_bytes"):
        mmsk.load(saved, max_total_bytes=0)


def test_save_keeps_files_added_to_an_earlier_save(small, tmp_path):
    clf, _, _ = small
    path = mmsk.save(clf, tmp_path / "clf")
    (path / "notes.txt").write_text("mine")
    with pytest.raises(PersistenceError, match=r"also holds other files \(notes\.txt\)"):
        mmsk.save(clf, path)
    assert (path / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mmsk.load(mmsk.save(clf, empty)).classes_.tolist() == clf.classes_.tolist()


def test_a_trusted_name_must_still_be_a_class_under_that_exact_name(small, tmp_path):
    _, _, saved = small
    path = _copy(saved, tmp_path)
    node = {"$": "type", "class": "mmsk._persist._trust:np.ndarray"}  # a walk through np
    _edit_config(path, lambda c: c["root"]["params"].update({"fusion": node}))
    assert mmsk.get_untrusted_types(path) == ["mmsk._persist._trust:np.ndarray"]
    with pytest.raises(UnsafeFileError, match=r"does not name a class defined under"):
        mmsk.load(path, trusted=["mmsk._persist._trust:np.ndarray"])
    with pytest.raises(PersistenceError, match=r"Expected trusted= to hold exact class names"):
        mmsk.load(path, trusted=["numpy.ndarray"])


def test_a_keras_function_outside_the_allow_list_is_refused_by_name(small, tmp_path):
    _, _, saved = small
    path = _copy(saved, tmp_path)
    with zipfile.ZipFile(path / "models" / "0.keras") as src:
        members = {n: src.read(n) for n in src.namelist()}
    config = json.loads(members["config.json"])
    dense = next(lay for lay in config["config"]["layers"] if lay["class_name"] == "Dense")
    dense["config"]["activation"] = {"module": "keras.saving", "class_name": "function",
                                     "config": "load_model", "registered_name": None}  # fmt: skip
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path / "models" / "0.keras", "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    with pytest.raises(UnsafeFileError, match=r"function 'load_model' of module 'keras\.saving'"):
        mmsk.load(path)


@pytest.mark.parametrize("trick", ["external_link", "external_storage"])
def test_weights_that_read_other_files_are_refused(small, tmp_path, trick):
    import h5py

    _, _, saved = small
    path = _copy(saved, tmp_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x01\x02\x03\x04")
    with zipfile.ZipFile(path / "models" / "0.keras") as src:
        members = {n: src.read(n) for n in src.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as h5:
        if trick == "external_link":
            h5["stolen"] = h5py.ExternalLink(str(secret), "/")
        else:
            h5.create_dataset("stolen", shape=(4,), dtype="u1", external=[(str(secret), 0, 4)])
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path / "models" / "0.keras", "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    with pytest.raises(UnsafeFileError, match=r"model\.weights\.h5.*stolen"):
        mmsk.load(path)


def test_settings_that_name_files_or_folders_are_not_restored(tmp_path):
    from sklearn.feature_extraction.text import CountVectorizer

    pipe = Pipeline(
        [("words", CountVectorizer(input="filename")), ("scale", StandardScaler(with_mean=False))],
        memory=str(tmp_path / "cache"),
    )
    loaded = mmsk.load(mmsk.save(pipe, tmp_path / "pipe.zip"))
    assert loaded.memory is None
    assert loaded.named_steps["words"].input == "content"
    assert loaded.named_steps["scale"].with_mean is False  # other settings come back
    assert not (tmp_path / "cache").exists()


def test_per_class_feature_statistics_load(tmp_path):
    """GaussianNB keeps var_ per class, (n_classes, n_features): not a damaged file."""
    from sklearn.naive_bayes import GaussianNB

    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    nb = GaussianNB().fit(X, y)
    same = mmsk.load(mmsk.save(nb, tmp_path / "nb.zip"))
    np.testing.assert_array_equal(same.predict_proba(X), nb.predict_proba(X))
