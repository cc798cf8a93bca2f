"""mmsk.datasets: the bundled data sets load as promised, and fusing their modalities pays."""

import os
import subprocess
import sys
import wave
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.model_selection import train_test_split

import mmsk
from mmsk.datasets import clear_data_home, get_data_home, load_av_digits, load_icons

DATA = resources.files("mmsk.datasets") / "data"
DESCR = resources.files("mmsk.datasets") / "descr"


@pytest.fixture(scope="module")
def digits():
    return load_av_digits()


@pytest.fixture(scope="module")
def icons():
    return load_icons()


def test_import_and_load_do_not_import_tensorflow():
    code = (
        "import sys, mmsk.datasets as d; d.load_icons(); d.load_av_digits(as_frame=False); "
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_shipped_files_exist_and_are_small():
    names = {p.name for p in DATA.iterdir()}
    assert {"av_digits.npz", "icons.npz"} <= names
    total = sum(p.stat().st_size for p in Path(str(DATA)).iterdir())
    assert total <= 8_000_000, f"bundled data is {total / 1e6:.1f} MB; the budget is 8 MB"
    for name in ("av_digits.rst", "icons.rst", "LICENSES.md"):
        assert (DESCR / name).read_text(encoding="utf-8").strip()
    licences = (DESCR / "LICENSES.md").read_text(encoding="utf-8")
    for needle in ("av_digits.npz", "icons.npz", "CC BY 4.0", "GPL-3.0", "eSpeak NG", "Papirus"):
        assert needle in licences


def test_docstring_examples_run():
    import doctest

    from mmsk.datasets import _av_digits, _base, _icons

    for module in (_av_digits, _icons, _base):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# ---- audio-visual digits -------------------------------------------------------------------


def test_av_digits_bunch(digits):
    assert list(digits.data.columns) == ["image", "audio"] == digits.feature_names
    assert digits.data.shape == (1797, 2)
    assert list(digits.frame.columns) == ["image", "audio", "digit"]
    assert digits.target.name == "digit" and digits.target.dtype == np.int64
    assert digits.target_names.tolist() == list(range(10))
    assert digits.words.tolist()[:3] == ["zero", "one", "two"]
    counts = np.bincount(digits.target, minlength=10)
    assert counts.min() >= 170, counts
    assert digits.images.shape == (1797, 8, 8) and digits.images.dtype == np.uint8
    assert digits.audio.shape == (1797, 8000) and digits.audio.dtype == np.float32
    assert digits.sample_rate == 8000
    assert np.abs(digits.audio).max() <= 1.0
    assert (np.abs(digits.audio).max(axis=1) > 0.1).all()  # every clip holds sound
    assert digits.data["image"][5] is not None
    np.testing.assert_array_equal(digits.data["image"][5], digits.images[5])
    np.testing.assert_array_equal(digits.data["audio"][5], digits.audio[5])
    assert list(digits.speakers.columns) == ["accent", "variant", "speed_wpm", "pitch"]
    assert len(digits.speakers) == 1797 and digits.speakers["variant"].nunique() > 50
    assert not digits.data.isna().any().any()


def test_av_digits_descr_names_sources_and_licences(digits):
    for needle in ("scikit-learn", "UCI", "CC BY 4.0", "eSpeak NG", "GPL-3.0", "noise"):
        assert needle in digits.DESCR, needle


def test_av_digits_is_deterministic_and_noise_is_optional(digits):
    again = load_av_digits(as_frame=False)
    np.testing.assert_array_equal(again.images, digits.images)
    np.testing.assert_array_equal(again.audio, digits.audio)
    clean = load_av_digits(noisy=False)
    np.testing.assert_array_equal(clean.target, digits.target)
    assert not np.array_equal(clean.images, digits.images)
    # clean words start at time 0 and are zero-padded; noisy clips hold noise throughout
    assert (np.abs(clean.audio[:, :80]).max(axis=1) > 0).all()
    assert (clean.audio[:, -400:] == 0).mean() > 0.9
    assert (digits.audio[:, -400:] != 0).mean() > 0.9
    # the clean images are scikit-learn's digits, rescaled
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(clean.images, np.round(load_digits().images * 255 / 16))


def test_as_frame_false_and_return_X_y(digits):
    bunch = load_av_digits(as_frame=False)
    assert bunch.frame is None
    assert isinstance(bunch.data, np.ndarray) and bunch.data.dtype == object
    assert bunch.data.shape == (1797, 2) and isinstance(bunch.target, np.ndarray)
    np.testing.assert_array_equal(bunch.data[3, 0], digits.images[3])
    X, y = load_av_digits(return_X_y=True)
    assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series) and len(X) == len(y)
    X, y = load_icons(return_X_y=True, as_frame=False)
    assert X.shape == (1381, 2) and y.shape == (1381,)


def test_mmsk_infers_the_modalities(digits, icons):
    assert mmsk.infer_modalities(digits.data) == {"image": "image", "audio": "audio"}
    assert mmsk.infer_modalities(icons.data) == {"icon": "image", "name": "text"}


def test_av_digits_as_paths_gives_decodable_files(tmp_path, digits):
    home = tmp_path / "home"
    bunch = load_av_digits(as_paths=True, data_home=home)
    images, audio = bunch.data["image"], bunch.data["audio"]
    assert all(isinstance(p, str) for p in images) and len(set(images)) == 1797
    assert all(Path(p).is_file() for p in [*images, *audio])
    for i in (0, 1000, 1796):
        with Image.open(images[i]) as img:
            np.testing.assert_array_equal(np.asarray(img), digits.images[i])
        with wave.open(audio[i], "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767
        np.testing.assert_allclose(pcm, digits.audio[i], atol=1e-4)
    assert mmsk.infer_modalities(bunch.data) == {"image": "image", "audio": "audio"}
    # extracted once: a second call reuses the files; no temporary folders are left
    before = os.stat(images[0]).st_mtime_ns
    assert load_av_digits(as_paths=True, data_home=home).data["image"][0] == images[0]
    assert os.stat(images[0]).st_mtime_ns == before
    assert [p.name for p in home.iterdir() if p.name.startswith(".")] == []
    clean = load_av_digits(as_paths=True, noisy=False, data_home=home)
    assert clean.data["image"][0] != images[0]  # a folder of its own


def test_mmsk_reads_the_files_as_it_reads_the_arrays(tmp_path):
    from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor, ModalityPreprocessor

    arrays = load_av_digits().data.iloc[:16]
    paths = load_av_digits(as_paths=True, data_home=tmp_path).data.iloc[:16]

    def features(frame):
        return ModalityPreprocessor(
            [
                ("image", ImagePreprocessor(size=8, color_mode="grayscale"), "image"),
                ("audio", AudioFeaturizer(sample_rate=8000, normalize=False), "audio"),
            ]
        ).fit_transform(frame)

    a, p = features(arrays), features(paths)
    np.testing.assert_array_equal(a["image"], p["image"])
    np.testing.assert_allclose(a["audio"], p["audio"], atol=0.01)  # 16-bit WAV rounding


def test_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSK_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env" and (tmp_path / "env").is_dir()
    bunch = load_icons(as_paths=True)
    assert bunch.data["icon"][0].startswith(str(tmp_path / "env"))
    assert get_data_home(tmp_path / "given") == tmp_path / "given"
    clear_data_home()
    assert not (tmp_path / "env").exists()


# ---- icons ---------------------------------------------------------------------------------


def test_icons_bunch(icons):
    assert list(icons.data.columns) == ["icon", "name"]
    assert icons.data.shape == (1381, 2)
    assert icons.target.name == "context"
    assert icons.target_names.tolist() == [
        "actions",
        "apps",
        "devices",
        "emblems",
        "mimetypes",
        "places",
        "status",
    ]
    counts = np.bincount(icons.target, minlength=7)
    assert counts.sum() == 1381 and counts.min() >= 40 and counts.max() <= 300
    assert icons.images.shape == (1381, 32, 32, 3) and icons.images.dtype == np.uint8
    assert icons.data["icon"][0].shape == (32, 32, 3)
    names = icons.data["name"]
    assert all(isinstance(n, str) and n.strip() and "-" not in n for n in names)
    assert len(icons.icon_names) == len(icons.source_files) == 1381
    assert all(s.endswith(".svg") for s in icons.source_files)
    # every picture is distinct
    assert len({img.tobytes() for img in icons.images}) == 1381
    for needle in ("Papirus", "GPL-3.0", "rsvg-convert", "20230104"):
        assert needle in icons.DESCR, needle


def test_icons_as_paths(tmp_path, icons):
    bunch = load_icons(as_paths=True, data_home=tmp_path)
    paths = bunch.data["icon"]
    assert all(Path(p).is_file() and p.endswith(".png") for p in paths)
    for i in (0, 700, 1380):
        with Image.open(paths[i]) as img:
            assert img.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(img), icons.images[i])
    assert bunch.data["name"].tolist() == icons.data["name"].tolist()


def test_a_half_written_folder_is_replaced(tmp_path):
    from mmsk.datasets._base import data_version

    stale = tmp_path / f"icons-{data_version('icons.npz')}"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "0000.png").write_bytes(b"not a png")  # no completion marker
    path = load_icons(as_paths=True, data_home=tmp_path).data["icon"][0]
    with Image.open(path) as img:
        assert img.size == (32, 32)


# ---- fusion beats either modality ----------------------------------------------------------


@pytest.mark.slow
def test_fusion_beats_the_best_single_modality(digits):
    from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor, ModalityPreprocessor

    X, y = digits.data, digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    steps = {
        "image": ImagePreprocessor(size=8, color_mode="grayscale"),
        "audio": AudioFeaturizer(sample_rate=8000, n_mels=32),
    }

    def score(columns, fusion="concat"):
        prep = ModalityPreprocessor([(c, steps[c], c) for c in columns])
        clf = mmsk.MultimodalClassifier(
            preprocessor=prep, fusion=fusion, epochs=10, learning_rate=3e-3, random_state=0
        )
        return clf.fit(X_train[columns], y_train).score(X_test[columns], y_test)

    image, audio, fused = score(["image"]), score(["audio"]), score(["image", "audio"])
    assert max(image, audio) < 0.9  # neither modality alone is enough ...
    assert fused > max(image, audio) + 0.04, (image, audio, fused)  # ... together they are
