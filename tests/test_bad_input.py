"""A catalogue of bad input across mmsk's public API.

Every bad input raises a class of :mod:`mmsk.exceptions` (each also a ValueError or
TypeError) whose message names the column, row, path or parameter and says what was
expected; none surfaces as a TensorFlow/Keras/PIL/NumPy traceback or hangs.  Some
inputs look odd but are valid (grey/RGBA/16-bit images, stereo audio at odd rates,
empty or huge texts, unseen categories): those must work, with the right output.
"""

import io
import os
import resource
import subprocess
import sys
import wave

import numpy as np
import pandas as pd
import pytest
from conftest import png_header
from PIL import Image

import mmsk
from mmsk import plugins
from mmsk.exceptions import (
    ColumnMismatchError,
    DecodeError,
    InputError,
    InputTypeError,
    MmskError,
    ParameterError,
    UnknownComponentError,
)
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
    TextVectorizer,
)

# ---- files ---------------------------------------------------------------------------------


def _png_bytes(array, **kw):
    buffer = io.BytesIO()
    Image.fromarray(array, **kw).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(path, samples, rate=8000, channels=1):
    data = np.asarray(samples * 32767, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return str(path)


def _tone(rate, seconds=0.25, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    good = _png_bytes(np.full((6, 6, 3), 200, np.uint8))
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2)
    big = _png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (d / "truncated.png").write_bytes(big[: len(big) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "folder.png").mkdir()
    (d / "huge.png").write_bytes(png_header(100_000, 100_000))
    (d / "good.png").write_bytes(good)
    wav = _wav(d / "tone.wav", _tone(8000))
    data = open(wav, "rb").read()
    (d / "truncated.wav").write_bytes(data[: len(data) // 2])
    (d / "garbage.wav").write_bytes(bytes(range(100, 200)))
    (d / "empty.wav").write_bytes(b"")
    _wav(d / "silent.wav", np.zeros(0))
    (d / "folder.wav").mkdir()
    return d


def _raises(error, pattern, fn, *args, **kwargs):
    with pytest.raises(error, match=pattern) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, MmskError)
    assert isinstance(info.value, (ValueError, TypeError))
    return info.value


# ---- images -----------------------------------------------------------------------------------

IMAGE_CASES = [
    ("corrupt.png", DecodeError, r"row 0: '.*corrupt\.png' is not a readable image.*expected PNG"),
    ("truncated.png", DecodeError, r"row 0: '.*truncated\.png' is not a readable image"),
    ("empty.png", InputError, r"row 0: '.*empty\.png' is empty \(0 bytes\); expected a non-empty"),
    (
        "folder.png",
        InputError,
        r"row 0: '.*folder\.png' is a directory; expected a path to an image",
    ),
    ("missing.png", InputError, r"row 0: file not found: '.*missing\.png'; expected a path to an"),
    ("huge.png", InputError, r"row 0: '.*huge\.png': image too large to decode safely.*pixels"),
]


@pytest.mark.parametrize("name, error, pattern", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_image_files(files, name, error, pattern):
    column = pd.Series([str(files / name), str(files / "good.png")], name="photo")
    _raises(error, rf"column 'photo', {pattern}", ImagePreprocessor(size=4).fit_transform, column)


def test_a_huge_image_header_is_refused_before_decoding(files):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"100000x100000|10000000000 pixels"):
        ImagePreprocessor(size=4).fit_transform([str(files / "huge.png")])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100  # 10^10 pixels were never allocated (30 GB)


@pytest.mark.parametrize(
    "cell, error, pattern",
    [
        (np.zeros((4, 4, 7), np.uint8), InputError, r"shape \(4, 4, 7\).*expected \(H, W\)"),
        ([[1, 2], [3, 4]], InputTypeError, r"cell of type list; expected an image path"),
        (np.full((4, 4), np.nan), InputError, r"NaN or inf; expected finite pixel values"),
        (np.full((4, 4), 300), InputError, r"values in \[300, 300\]; expected 8-bit values"),
    ],
    ids=["seven-channels", "list-cell", "nan-pixels", "int-out-of-range"],
)
def test_bad_image_cells(cell, error, pattern):
    column = pd.Series([np.zeros((4, 4), np.uint8), cell], index=[10, 11], name="photo")
    prep = ImagePreprocessor(size=4)
    _raises(error, rf"column 'photo', row 11: .*{pattern}", prep.fit_transform, column)


def test_grey_rgba_palette_and_16_bit_images_work():
    grey = _png_bytes(np.full((4, 4), 51, np.uint8))
    rgba = _png_bytes(np.dstack([np.full((4, 4, 3), 102, np.uint8), np.zeros((4, 4), np.uint8)]))
    sixteen = _png_bytes(np.full((4, 4), 65535, np.uint16))
    palette = Image.fromarray(np.full((4, 4, 3), 153, np.uint8)).convert("P")
    out = ImagePreprocessor(size=4).fit_transform([grey, rgba, sixteen, palette])
    assert out.shape == (4, 4, 4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(
        out[:, 0, 0], [[0.2] * 3, [0.4] * 3, [1.0] * 3, [0.6] * 3], atol=0.01
    )
    rgba_out = ImagePreprocessor(size=2, color_mode="rgba").fit_transform([rgba, grey])
    np.testing.assert_allclose(rgba_out[:, 0, 0, 3], [0.0, 1.0])  # alpha kept, or opaque added
    grey_out = ImagePreprocessor(size=2, color_mode="grayscale").fit_transform([sixteen])
    assert grey_out.shape == (1, 2, 2, 1) and grey_out.max() == 1.0


# ---- audio ------------------------------------------------------------------------------------

AUDIO_CASES = [
    ("truncated.wav", DecodeError, r"'.*truncated\.wav': truncated WAV file"),
    ("garbage.wav", DecodeError, r"'.*garbage\.wav': not an audio file.*expected a WAV file"),
    ("empty.wav", InputError, r"'.*empty\.wav' is empty \(0 bytes\)"),
    ("silent.wav", InputError, r"'.*silent\.wav' holds 0 audio frames; expected at least one"),
    ("folder.wav", InputError, r"'.*folder\.wav' is a directory; expected a path to an audio"),
]


@pytest.mark.parametrize("name, error, pattern", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_bad_audio_files(files, name, error, pattern):
    column = pd.Series([str(files / "tone.wav"), str(files / name)], name="clip")
    featurizer = AudioFeaturizer(sample_rate=8000, n_mels=8)
    _raises(error, rf"column 'clip', row 1: {pattern}", featurizer.fit_transform, column)


@pytest.mark.parametrize(
    "cell, error, pattern",
    [
        (np.zeros(0), InputError, r"the waveform is empty; expected at least one sample"),
        (np.array([0.1, np.nan, 0.2]), InputError, r"waveform contains NaN or inf values"),
        (np.zeros((2, 4000)), InputError, r"array of shape \(2, 4000\) \(channels first\?"),
        (b"", InputError, r"empty bytes \(0 bytes\); expected the bytes of an audio file"),
        (3.5, InputTypeError, r"expected a path to an audio file.*Received: float"),
    ],
    ids=["zero-length", "nan", "channels-first", "empty-bytes", "a-number"],
)
def test_bad_audio_cells(cell, error, pattern):
    column = pd.Series([_tone(8000), cell], name="clip")
    featurizer = AudioFeaturizer(sample_rate=8000, n_mels=8)
    _raises(error, rf"column 'clip', row 1: .*{pattern}", featurizer.fit, column)


def test_stereo_and_unusual_sample_rates_work(files):
    featurizer = AudioFeaturizer(sample_rate=8000, duration=0.25, n_mels=16, normalize=False)
    mono = featurizer.fit_transform([str(files / "tone.wav")])
    stereo = _wav(files / "stereo.wav", np.repeat(_tone(8000), 2), channels=2)
    odd = _wav(files / "odd.wav", _tone(7919), rate=7919)  # a prime rate, resampled
    fast = _wav(files / "fast.wav", _tone(44100), rate=44100)
    out = featurizer.transform([stereo, odd, fast])
    assert out.shape == (3, *featurizer.spec_.shape) and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], mono[0], atol=1e-4)  # both channels averaged
    # resampled tones keep the 440 Hz band as the loudest
    assert (out[1:, 2:-2].argmax(-1) == mono[0, 2:-2].argmax(-1)).mean() > 0.9


# ---- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, error, pattern",
    [
        (b"caf\xe9 au lait", DecodeError, r"bytes are not valid UTF-8.*expected UTF-8 text"),
        ("SURROGATE", InputError, r"text holds '\\ud800' at position 5, which is not valid"),
        (42, InputTypeError, r"expected a str \(or UTF-8 bytes\).*Received: int 42"),
        (["a", "list"], InputTypeError, r"expected a str.*Received: list \['a', 'list'\]"),
    ],
    ids=["latin-1-bytes", "lone-surrogate", "a-number", "a-list"],
)
def test_bad_text_cells(cell, error, pattern):
    if cell == "SURROGATE":  # built here: xdist cannot send a lone surrogate in a report
        cell = "half " + chr(0xD800) + " surrogate"
    column = pd.Series(["fine text", cell], index=["r1", "r2"], name="review")
    _raises(error, rf"column 'review', row 'r2': {pattern}", TextVectorizer().fit, column)


def test_empty_unicode_and_extremely_long_text_work():
    vec = TextVectorizer(sequence_length=4).fit(["naïve café", "", "日本語 テキスト", None])
    huge = "naïve " * 2_000_000  # 12 MB in one cell
    out = vec.transform(["", huge, "日本語", None])
    assert out.dtype == np.int32 and out.shape == (4, 4)
    assert out[0].tolist() == [0, 0, 0, 0] and out[3].tolist() == [0, 0, 0, 0]
    assert out[1].tolist() == [vec.vocabulary_.index("naïve")] * 4
    assert out[2, 0] == vec.vocabulary_.index("日本語")


# ---- tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, modalities, error, pattern",
    [
        (
            pd.DataFrame({"a": ["x.png", 3.0, "y.png"]}),
            None,
            InputTypeError,
            r"column 'a' mixes cell types: image \(row 0\), number \(row 1\); expected every",
        ),
        (
            pd.DataFrame({"a": [[1, 2], [3, 4]]}),
            None,
            InputTypeError,
            r"column 'a', row 0: cannot infer a modality from a list cell",
        ),
        (
            pd.DataFrame({"a": [1.0, [3, 4]]}),
            {"a": "numeric"},
            InputTypeError,
            r"column 'a', row 1: expected a number .* Received: list \[3, 4\]",
        ),
        (
            pd.DataFrame({"a": ["S", np.zeros(3)]}),
            {"a": "categorical"},
            InputTypeError,
            r"column 'a', row 1: expected a category \(a str, number or bool",
        ),
        (
            pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["a", "a"]),
            {},
            InputError,
            r"Expected unique column names.*'a' at positions \[0, 1\]",
        ),
        (
            pd.DataFrame({"price": [1.0, np.inf, -np.inf]}),
            None,
            InputError,
            r"column 'price' holds inf at rows \[1, 2\]; expected finite numbers",
        ),
        (
            pd.DataFrame({"a": [None, np.nan]}),
            None,
            InputError,
            r"column 'a': every cell is missing.*pass it in `modalities`",
        ),
        (
            pd.DataFrame({"a": [1.0]}),
            {"a": "video"},
            InputError,
            r"column 'a': expected a kind in \('image'.*Received: 'video'",
        ),
    ],
    ids=[
        "mixed-types",
        "object-column-of-lists",
        "list-in-numeric",
        "array-in-categorical",
        "duplicate-columns",
        "inf-in-numeric",
        "all-missing",
        "unknown-kind",
    ],
)
def test_bad_tables(frame, modalities, error, pattern):
    prep = ModalityPreprocessor(modalities=modalities or None)
    _raises(error, pattern, prep.fit_transform, frame)


def test_object_column_of_lists_in_infer_modalities():
    frame = pd.DataFrame({"tags": [["a"], ["b", "c"]]}, index=[7, 8])
    _raises(InputTypeError, r"column 'tags', row 7: .*list cell", mmsk.infer_modalities, frame)


# ---- estimators -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    y = np.array(["red", "blue"] * 15)
    X = pd.DataFrame(
        {
            "caption": [f"a {c} thing" for c in y],
            "price": rng.normal(size=30) + (y == "red"),
            "size": pd.Categorical(rng.choice(["S", "M"], 30)),
        }
    )
    return X, y


@pytest.fixture(scope="module")
def fitted(table):
    X, y = table
    return mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, y)


def test_labels_unseen_in_fit_are_named_by_score(fitted, table):
    X, y = table
    y = y.astype(object)
    y[:2] = ["purple", "green"]
    # as sklearn's ClassifierMixin.score: counted as wrong, with a warning that names them
    with pytest.warns(UserWarning, match=r"labels \['green', 'purple'\] not seen in fit"):
        score = fitted.score(X, y)
    assert score == pytest.approx(np.mean(fitted.predict(X) == y))


def test_sample_weight_of_the_wrong_length(fitted, table):
    X, y = table
    _raises(InputError, r"Expected sample_weight of shape \(30,\).*Received: shape \(3,\)",
            fitted.score, X, y, np.ones(3))  # fmt: skip
    clf = mmsk.MultimodalClassifier(epochs=1)
    _raises(InputError, r"sample_weight.*\(5,\), expected \(30,\)", clf.fit, X, y, np.ones(5))


def test_validation_split_leaving_no_row_to_train_on(table):
    X, y = table
    clf = mmsk.MultimodalClassifier(epochs=1, validation_split=0.99)
    _raises(InputError, r"validation_split=0.99 of 30 rows leaves 0 to train on", clf.fit, X, y)


def test_columns_at_predict_differ_from_fit(fitted, table):
    X, _ = table
    pattern = (
        r"(?s)X lacks the columns \['price'\] seen in fit.*"
        r"Expected the columns seen in fit: \['caption', 'pr"
    )
    _raises(ColumnMismatchError, pattern, fitted.predict, X.drop(columns="price"))


def test_columns_at_predict_are_selected_by_name(fitted, table):
    X, _ = table
    expected = fitted.predict_proba(X)
    moved = X[["size", "caption", "price"]].assign(note="ignored")  # reordered, one extra
    np.testing.assert_array_equal(fitted.predict_proba(moved), expected)


def test_unseen_categories_and_texts_at_predict_work(fitted, table):
    X, _ = table
    odd = X.head(2).copy()
    odd["size"] = pd.Categorical(["XXL", "S"])  # never seen in fit: one-hot all zeros
    odd["caption"] = ["a purple zebra", "a red thing"]  # unknown words: out-of-vocabulary ids
    batch = fitted.preprocessor_.transform(odd)
    assert batch["categorical"][0].tolist() == [0.0, 0.0] and batch.masks["categorical"].all()
    proba = fitted.predict_proba(odd)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"epochs": 0}, r"'epochs' parameter of MultimodalClassifier must be an int in the range"),
        ({"epochs": -3}, r"'epochs' parameter .* Got -3 instead"),
        ({"batch_size": 0}, r"'batch_size' parameter .* Got 0 instead"),
        ({"validation_split": 1.0}, r"'validation_split' parameter .* Got 1\.0 instead"),
        ({"optimizer": "adamx"}, r"'optimizer' parameter .* among .*'adam'"),
    ],
    ids=["epochs=0", "epochs=-3", "batch_size=0", "validation_split=1", "optimizer"],
)
def test_bad_estimator_parameters(table, params, pattern):
    X, y = table
    _raises(ParameterError, pattern, mmsk.MultimodalClassifier(**params).fit, X, y)


@pytest.mark.parametrize(
    "params, pattern",
    [
        (
            {"epoch": 3},
            r"Invalid parameter 'epoch' for MultimodalClassifier \(did you mean "
            r"'epochs'\?\)\. Expected one of \[",
        ),
        (
            {"encoders__image__filter": 3},
            r"Invalid parameter 'filter' for CNNEncoder \(did you mean 'filters'\?\)",
        ),
        ({"preprocessor__image__size": 8}, r"preprocessor is None.*Expected preprocessor="),
    ],
    ids=["typo", "nested-typo", "nested-in-none"],
)
def test_unknown_parameters_in_set_params(params, pattern):
    _raises(ParameterError, pattern, mmsk.MultimodalClassifier().set_params, **params)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: ImagePreprocessor().set_params(szie=3), r"'szie' for ImagePreprocessor.*'size'"),
        (lambda: ImagePreprocessor(color_mode="cmyk").fit([np.zeros((2, 2))]), r"'color_mode'"),
        (lambda: TextVectorizer(max_tokens=1).fit(["a"]), r"'max_tokens' parameter"),
        (
            lambda: AudioFeaturizer(duration=0.01).fit([np.zeros(100)]),
            r"Expected duration >= frame_length\. Received: duration=0\.01",
        ),
        (lambda: ModalityPreprocessor().set_params(imge=None), r"'imge'.*did you mean 'image'"),
    ],
    ids=["image-typo", "color-mode", "max-tokens", "audio-duration", "modality-typo"],
)
def test_bad_preprocessor_parameters(make, pattern):
    _raises(ParameterError, pattern, make)


def test_bad_targets_and_containers(table):
    X, y = table
    clf = mmsk.MultimodalClassifier(epochs=1)
    _raises(InputError, r"y: Unknown label type: continuous", clf.fit, X, np.linspace(0, 1, 30))
    _raises(InputError, r"Expected y as one label per row.*Received: shape \(30, 2\)",
            clf.fit, X, np.stack([y, y], 1))  # fmt: skip
    _raises(InputTypeError, r"Received: a Series named 'price'; pass X\.to_frame\(\)",
            clf.fit, X["price"], y)  # fmt: skip
    numbers = np.arange(12, dtype=float).reshape(4, 3)
    numbers[2, 1] = np.nan
    _raises(InputError, r"column 'x1', row 2: X holds NaN; expected finite numbers",
            clf.fit, numbers, [0, 1, 0, 1])  # fmt: skip


# ---- search CV, plugins, data sets ------------------------------------------------------------


@pytest.mark.parametrize(
    "space, kw, pattern",
    [
        ("epoch", {}, r"search_space key 'epoch' is not a parameter of the estimator"),
        ("empty", {}, r"search_space\['fusion'\]: Expected at least one value\. Received: \[\]"),
        ("ok", {"tuner": "nope"}, r"'tuner' parameter of KerasTunerSearchCV .* Got 'nope'"),
    ],
    ids=["unknown-key", "empty-choice", "unknown-tuner"],
)
def test_bad_search_cv_settings(table, space, kw, pattern):
    from mmsk.tuning import Choice, Int

    X, y = table
    spaces = {
        "epoch": {"epoch": Int(1, 3)},
        "empty": {"fusion": Choice([])},
        "ok": {"fusion": Choice(["concat"])},
    }
    search = mmsk.KerasTunerSearchCV(
        mmsk.MultimodalClassifier(epochs=1), spaces[space], max_trials=1, cv=2, **kw
    )
    _raises(ParameterError, pattern, search.fit, X, y)


def test_bad_plugin_names_and_groups(table):
    X, y = table
    clf = mmsk.MultimodalClassifier(encoders={"text": "trnsformer"}, epochs=1)
    _raises(UnknownComponentError, r"Unknown encoder 'trnsformer'\. Available: \[.*'transformer'",
            clf.fit, X, y)  # fmt: skip
    _raises(ParameterError, r"Expected a group in \['encoder', 'fusion'\]\. Received: group='enc'",
            plugins.load, "enc", "cnn")  # fmt: skip
    _raises(ParameterError, r"Python identifier.*Received: name='my encoder'",
            plugins.register, "encoder", "my encoder", object)  # fmt: skip


def test_data_home_that_is_a_file(tmp_path):
    from mmsk.datasets import load_icons

    (tmp_path / "home").write_text("not a folder")
    _raises(ParameterError, r"Expected data_home to be a folder.*'.*home', which is a file",
            load_icons, as_paths=True, data_home=tmp_path / "home")  # fmt: skip


# ---- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plugins", "--group", "decoders"], "invalid choice: 'decoders'"),
        (["demo", "--test-size", "0"], "expected a number between 0 and 1; got '0'"),
        (["demo", "--fusion", ""], "expected a comma-separated list"),
        (["train"], "invalid choice: 'train'"),
    ],
    ids=["plugins-group", "demo-test-size", "demo-no-fusion", "unknown-command"],
)
def test_cli_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    from mmsk.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_cli_in_a_subprocess_prints_no_traceback():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-m", "mmsk", "plugins", "--group", "decoders"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2
    assert "invalid choice: 'decoders'" in run.stderr and "Traceback" not in run.stderr
