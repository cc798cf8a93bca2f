"""Tests of :class:`mmsk.preprocessing.ImagePreprocessor` on real image files and arrays."""

from __future__ import annotations

import io
import pickle
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from conftest import png_header
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)

from mmsk import ModalitySpec
from mmsk.exceptions import DecodeError, InputError, InputTypeError, ParameterError
from mmsk.preprocessing import ImagePreprocessor
from mmsk.preprocessing._column import Column, parallel_map

FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF"}


def half_white(h: int = 8, w: int = 8, channels: int | None = 3) -> np.ndarray:
    """uint8 image whose left half is white and right half black."""
    img = np.zeros((h, w) if channels is None else (h, w, channels), np.uint8)
    img[:, : w // 2] = 255
    return img


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG") -> bytes:
    pil = Image.fromarray(img) if isinstance(img, np.ndarray) else img
    buf = io.BytesIO()
    pil.save(buf, fmt)
    return buf.getvalue()


def left_white_right_black(out: np.ndarray, low: float = 0.25, high: float = 0.75) -> bool:
    w = out.shape[2]
    return bool((out[:, :, : w // 2] > high).all() and (out[:, :, w - w // 2 :] < low).all())


# --- decoding -------------------------------------------------------------------


def test_decodes_every_file_format_from_paths_and_bytes(tmp_path):
    src = half_white(16, 16)
    paths = []
    for ext, fmt in FORMATS.items():
        Image.fromarray(src).save(tmp_path / f"img.{ext}", fmt)
        paths.append(tmp_path / f"img.{ext}")
    prep = ImagePreprocessor(size=8)
    from_paths = prep.fit_transform([str(p) if i % 2 else p for i, p in enumerate(paths)])
    assert from_paths.shape == (6, 8, 8, 3) and from_paths.dtype == np.float32
    assert prep.spec_ == ModalitySpec("image", (8, 8, 3), "float32")
    assert left_white_right_black(from_paths)
    lossless = [i for i, ext in enumerate(FORMATS) if ext not in ("jpg", "webp")]
    for i in lossless[1:]:
        np.testing.assert_array_equal(from_paths[i], from_paths[lossless[0]])
    from_bytes = prep.transform([p.read_bytes() for p in paths])
    np.testing.assert_array_equal(from_bytes, from_paths)


def test_cells_of_every_type_give_the_same_image(tmp_path):
    src = np.random.default_rng(0).integers(0, 256, (10, 6, 3), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(encode(src))
    cells = [
        tmp_path / "a.png",
        str(tmp_path / "a.png"),
        encode(src),
        bytearray(encode(src)),
        memoryview(encode(src)),
        src,
        Image.fromarray(src),
        src.astype(np.float32) / 255,
    ]
    out = ImagePreprocessor(size=(10, 6)).fit_transform(pd.Series(cells, name="photo"))
    for row in out[1:]:
        np.testing.assert_allclose(row, out[0], atol=1e-6)
    np.testing.assert_allclose(out[0], src / 255, atol=1e-6)  # no resize: exact pixels


def test_array_dtypes_are_scaled_by_their_depth():
    cells = [
        np.full((2, 2), 255, np.uint8),
        np.full((2, 2), 257, np.uint16),
        np.full((2, 2), 0.25, np.float64),
        np.full((2, 2), 0.5, np.float16),
        np.ones((2, 2), bool),
        np.full((2, 2), 51, np.int64),  # np.array([[51]]) style: 8-bit values
        np.full((2, 2, 1), 102, np.int32),
    ]
    out = ImagePreprocessor(size=2, color_mode="grayscale").fit_transform(cells)
    np.testing.assert_allclose(
        out[:, 0, 0, 0], [1.0, 257 / 65535, 0.25, 0.5, 1.0, 0.2, 0.4], rtol=1e-6
    )


def test_whole_arrays_and_one_column_frames_are_accepted():
    images = np.random.default_rng(1).integers(0, 256, (4, 5, 5, 3), dtype=np.uint8)
    prep = ImagePreprocessor(size=5).fit(images)
    np.testing.assert_allclose(prep.transform(images), images / 255, atol=1e-6)
    grey = images[..., 0]
    np.testing.assert_allclose(
        ImagePreprocessor(size=5, color_mode="grayscale").fit_transform(grey)[..., 0],
        grey / 255,
        atol=1e-6,
    )
    frame = pd.DataFrame({"photo": list(images)})
    prep = ImagePreprocessor(size=5).fit(frame)
    assert prep.feature_names_in_.tolist() == ["photo"] and prep.n_features_in_ == 1
    assert prep.get_feature_names_out()[0] == "photo_0_0_0"
    np.testing.assert_allclose(prep.transform(frame), images / 255, atol=1e-6)
    with pytest.raises(InputError, match=r"one column.*\['a', 'b'\]"):
        ImagePreprocessor().fit(pd.DataFrame({"a": [images[0]], "b": [images[1]]}))


def pil_modes() -> dict[str, tuple[Image.Image, list[float]]]:
    """PIL images of every common mode, with the RGBA value of their first pixel."""
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    palette = Image.new("P", (4, 4))
    palette.putpalette([10, 20, 30, 255, 255, 255] + [0] * 762)
    palette.info["transparency"] = 0  # index 0 is transparent
    grey16 = Image.fromarray(np.full((4, 4), 1000, np.uint16))
    return {
        "L": (Image.new("L", (4, 4), 51), [0.2, 0.2, 0.2, 1.0]),
        "RGB": (Image.fromarray(red), [1.0, 0.0, 0.0, 1.0]),
        "RGBA": (Image.new("RGBA", (4, 4), (0, 102, 255, 51)), [0.0, 0.4, 1.0, 0.2]),
        "P+transparency": (palette, [10 / 255, 20 / 255, 30 / 255, 0.0]),
        "I;16": (grey16, [1000 / 65535] * 3 + [1.0]),
        "LA": (Image.new("LA", (4, 4), (204, 102)), [0.8, 0.8, 0.8, 0.4]),
        "CMYK": (Image.new("CMYK", (4, 4), (0, 255, 255, 0)), [1.0, 0.0, 0.0, 1.0]),
        "1": (Image.new("1", (4, 4), 1), [1.0, 1.0, 1.0, 1.0]),
    }


@pytest.mark.parametrize("mode", list(pil_modes()))
def test_pil_modes_convert_to_every_color_mode(mode):
    img, (r, g, b, a) = pil_modes()[mode]
    assert img.mode == mode.split("+")[0]
    rgba = ImagePreprocessor(size=4, color_mode="rgba").fit_transform([img])[0, 0, 0]
    np.testing.assert_allclose(rgba, [r, g, b, a], atol=1e-3)
    rgb = ImagePreprocessor(size=4, color_mode="rgb").fit_transform([img])[0, 0, 0]
    np.testing.assert_allclose(rgb, [r, g, b], atol=1e-3)
    grey = ImagePreprocessor(size=4, color_mode="grayscale").fit_transform([img])[0, 0, 0]
    np.testing.assert_allclose(grey, [0.299 * r + 0.587 * g + 0.114 * b], atol=2.5 / 255)


def test_16_bit_files_scale_by_65535_even_when_dark(tmp_path):
    dark = np.full((3, 3), 200, np.uint16)  # every value fits in 8 bits
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert Image.open(tmp_path / "dark16.png").mode == "I;16"
    out = ImagePreprocessor(size=3, color_mode="grayscale").fit_transform(
        [tmp_path / "dark16.png"]
    )
    np.testing.assert_allclose(out[0, ..., 0], 200 / 65535, rtol=1e-5)
    np.testing.assert_allclose(ImagePreprocessor(size=3).fit_transform([dark])[0], 200 / 65535)


def test_color_modes_from_arrays():
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((2, 2), 102, np.uint8)
    rgba = np.dstack([red, np.full((2, 2), 51, np.uint8)])
    cells = [red, grey, rgba, grey[..., None]]
    g = ImagePreprocessor(size=2, color_mode="grayscale").fit_transform(cells)[:, 0, 0, 0]
    np.testing.assert_allclose(g, [0.299, 0.4, 0.299, 0.4], atol=1e-6)
    c = ImagePreprocessor(size=2, color_mode="rgb").fit_transform(cells)[:, 0, 0]
    np.testing.assert_allclose(c, [[1, 0, 0], [0.4] * 3, [1, 0, 0], [0.4] * 3], atol=1e-6)
    a = ImagePreprocessor(size=2, color_mode="rgba").fit_transform(cells)[:, 0, 0]
    np.testing.assert_allclose(
        a, [[1, 0, 0, 1], [0.4, 0.4, 0.4, 1], [1, 0, 0, 0.2], [0.4, 0.4, 0.4, 1]], atol=1e-6
    )


# --- geometry ---------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic", "lanczos", "area"])
@pytest.mark.parametrize("source", ["array", "float array", "png"])
def test_resize_keeps_the_picture(interpolation, source):
    src = half_white(12, 20)  # left half white
    src[:6, 10:, 1] = 255  # top-right quarter green: catches swapped height/width
    cell = {"array": src, "float array": src / 255.0, "png": encode(src)}[source]
    out = ImagePreprocessor(size=(6, 4), interpolation=interpolation).fit_transform([cell])
    assert out.shape == (1, 6, 4, 3)
    assert (out[0, :, :2] > 0.7).all()  # left half stays white
    assert (out[0, :, 2:, 0] < 0.3).all() and (out[0, :, 2:, 2] < 0.3).all()
    assert (out[0, :2, 2:, 1] > 0.7).all() and (out[0, 4:, 2:, 1] < 0.3).all()


@pytest.mark.parametrize("source", ["array", "png"])
def test_crop_to_aspect_ratio_keeps_the_centre(source):
    wide = np.zeros((4, 12), np.uint8)
    wide[:, 4:8] = 255  # a white band in the middle third
    tall = wide.T.copy()
    cells = [wide, tall] if source == "array" else [encode(wide), encode(tall)]
    kw = {"size": 4, "color_mode": "grayscale", "interpolation": "nearest"}
    cropped = ImagePreprocessor(crop_to_aspect_ratio=True, **kw).fit_transform(cells)
    np.testing.assert_array_equal(cropped, 1.0)  # the square centre is all band
    stretched = ImagePreprocessor(**kw).fit_transform(cells)[..., 0]
    np.testing.assert_array_equal(stretched[0], np.tile([0, 1, 1, 0], (4, 1)))
    np.testing.assert_array_equal(stretched[1], np.tile([0, 1, 1, 0], (4, 1)).T)
    # a 2:1 output crops a square source to its middle rows
    square = np.zeros((8, 8), np.uint8)
    square[2:6] = 255
    out = ImagePreprocessor(crop_to_aspect_ratio=True, **kw | {"size": (2, 4)})
    np.testing.assert_array_equal(out.fit_transform([square]), 1.0)


# --- normalisation and missing rows ---------------------------------------------


def test_normalizations():
    rng = np.random.default_rng(2)
    train = list(rng.integers(0, 256, (4, 3, 3, 3), dtype=np.uint8))
    test = [rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)]
    unit = ImagePreprocessor(size=3).fit(train).transform(test)
    np.testing.assert_allclose(unit[0], test[0] / 255, atol=1e-6)
    sym = ImagePreprocessor(size=3, normalization="symmetric").fit(train).transform(test)
    np.testing.assert_allclose(sym, unit * 2 - 1, atol=1e-6)
    none = ImagePreprocessor(size=3, normalization="none").fit(train).transform(test)
    np.testing.assert_allclose(none[0], test[0], atol=1e-4)
    std = ImagePreprocessor(size=3, normalization="standardize").fit([*train, None])
    pixels = np.stack(train).reshape(-1, 3) / 255  # the missing row is not counted
    np.testing.assert_allclose(std.mean_, pixels.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std.std_, pixels.std(axis=0), rtol=1e-5)
    assert std.mean_.shape == (3,) and std.std_.dtype == np.float32
    np.testing.assert_allclose(
        std.transform(test)[0], (test[0] / 255 - std.mean_) / std.std_, rtol=1e-5, atol=1e-5
    )
    on_train = std.transform(train)
    np.testing.assert_allclose(on_train.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(on_train.std(axis=(0, 1, 2)), 1, rtol=1e-4)
    flat = ImagePreprocessor(size=2, normalization="standardize").fit([np.zeros((2, 2))])
    assert np.isfinite(flat.transform([np.ones((2, 2))])).all()  # constant channel: no 0/0


@pytest.mark.parametrize("normalization", ["unit", "symmetric", "standardize", "none"])
def test_missing_rows_are_exact_zeros(normalization):
    img = half_white(4, 4)
    cells = pd.Series([img, None, np.nan, img, pd.NA, pd.NaT], name="photo")
    prep = ImagePreprocessor(size=4, normalization=normalization).fit(cells)
    out = prep.transform(cells)
    assert (out[[1, 2, 4, 5]] == 0).all()
    assert (out[[0, 3]] != 0).any(axis=(1, 2, 3)).all()
    assert (prep.transform([None])[0] == 0).all()


def test_all_missing_column():
    assert (ImagePreprocessor(size=2).fit_transform([None, np.nan]) == 0).all()
    with pytest.raises(InputError, match="column 'photo': every image is missing"):
        ImagePreprocessor(normalization="standardize").fit(pd.Series([None], name="photo"))


def test_standardize_statistics_are_chunked(monkeypatch):
    from mmsk.preprocessing import _image

    rng = np.random.default_rng(3)
    cells = [*rng.integers(0, 256, (7, 3, 3, 3), dtype=np.uint8), None]
    whole = ImagePreprocessor(size=3, normalization="standardize").fit(cells)
    monkeypatch.setattr(_image, "_CHUNK", 3)
    chunked = ImagePreprocessor(size=3, normalization="standardize").fit(cells)
    np.testing.assert_allclose(chunked.mean_, whole.mean_, rtol=1e-6)
    np.testing.assert_allclose(chunked.std_, whole.std_, rtol=1e-6)
    np.testing.assert_array_equal(chunked.transform(cells), whole.transform(cells))


def test_iter_transform_equals_transform():
    rng = np.random.default_rng(4)
    cells = pd.Series([*rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), None], name="p")
    prep = ImagePreprocessor(size=3, normalization="standardize").fit(cells)
    parts = list(prep.iter_transform(cells, batch_size=4))
    assert [p.shape for p in parts] == [(4, 3, 3, 3), (2, 3, 3, 3)]
    np.testing.assert_array_equal(np.concatenate(parts), prep.transform(cells))
    assert (parts[1][1] == 0).all()
    with pytest.raises(InputError, match="batch_size=0"):
        next(prep.iter_transform(cells, batch_size=0))


def test_feature_names_follow_the_flattened_output():
    img = np.random.default_rng(5).integers(0, 256, (3, 2, 4), dtype=np.uint8)
    prep = ImagePreprocessor(size=(3, 2), color_mode="rgba").fit(pd.Series([img], name="ph"))
    names = prep.get_feature_names_out()
    flat = prep.transform([img]).reshape(-1)
    assert names.dtype == object and len(names) == flat.size == 3 * 2 * 4
    assert names[0] == "ph_0_0_0" and names[-1] == "ph_2_1_3"
    index = {name: i for i, name in enumerate(names)}
    assert flat[index["ph_1_0_2"]] == pytest.approx(img[1, 0, 2] / 255)
    assert ImagePreprocessor(size=1).fit([img]).get_feature_names_out().tolist() == [
        "X_0_0_0",
        "X_0_0_1",
        "X_0_0_2",
    ]


def test_clone_pickle_and_params_round_trip():
    rng = np.random.default_rng(6)
    cells = list(rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8))
    prep = ImagePreprocessor(size=(4, 3), normalization="standardize", interpolation="area")
    prep.fit(cells)
    expected = prep.transform(cells)
    back = pickle.loads(pickle.dumps(prep))
    np.testing.assert_array_equal(back.transform(cells), expected)
    np.testing.assert_array_equal(back.mean_, prep.mean_)
    fresh = clone(prep)
    assert fresh.get_params() == prep.get_params() and not hasattr(fresh, "mean_")
    np.testing.assert_array_equal(fresh.fit(cells).transform(cells), expected)
    fresh.set_params(size=2, color_mode="grayscale")
    assert fresh.fit_transform(cells).shape == (3, 2, 2, 1)


def test_not_fitted():
    prep = ImagePreprocessor()
    for call in (
        lambda: prep.transform([np.zeros((2, 2))]),
        lambda: next(prep.iter_transform([np.zeros((2, 2))])),
        prep.get_feature_names_out,
    ):
        with pytest.raises(NotFittedError):
            call()


def test_bad_parameters():
    img = [np.zeros((2, 2))]
    for params in ({"size": 0}, {"size": "big"}, {"color_mode": "cmyk"}, {"n_jobs": 0}):
        with pytest.raises(ParameterError):
            ImagePreprocessor(**params).fit(img)
    for size in ((0, 3), (3.5, 3), (1, 2, 3)):
        with pytest.raises(ParameterError, match=r"Received: size="):
            ImagePreprocessor(size=size).fit(img)


def test_sklearn_output_config_does_not_wrap_the_4d_output():
    with sklearn.config_context(transform_output="pandas"):
        out = ImagePreprocessor(size=2).fit_transform([np.zeros((2, 2))])
    assert isinstance(out, np.ndarray) and out.shape == (1, 2, 2, 3)


# --- bad cells ----------------------------------------------------------------------


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _good(d: Path, fmt: str = "PNG") -> bytes:
    return encode(np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8), fmt)


BAD_CELLS = {
    "missing file": (lambda d: str(d / "nope.png"), InputError, "file not found"),
    "missing Path": (lambda d: d / "gone.jpg", InputError, "file not found"),
    "directory": (lambda d: d, InputError, "is a directory"),
    "zero bytes": (lambda d: _file(d / "e.png", b""), InputError, r"empty \(0 bytes\)"),
    "text named .png": (
        lambda d: _file(d / "t.png", b"hello, I am text"),
        DecodeError,
        "not a readable image",
    ),
    "truncated png": (
        lambda d: _file(d / "c.png", _good(d)[:300]),
        DecodeError,
        "truncated",
    ),
    "truncated jpeg": (
        lambda d: _file(d / "c.jpg", _good(d, "JPEG")[:400]),
        DecodeError,
        "not a readable image",
    ),
    "garbage bytes": (lambda d: b"\x00\x01\x02 not an image", DecodeError, "bytes is not"),
    "two channels": (lambda d: np.zeros((4, 4, 2)), InputError, r"\(4, 4, 2\).*C = 1"),
    "five channels": (lambda d: np.zeros((4, 4, 5), np.uint8), InputError, "channels"),
    "1-D array": (lambda d: np.zeros(16), InputError, r"shape \(16,\)"),
    "4-D array": (lambda d: np.zeros((1, 4, 4, 3)), InputError, r"shape \(1, 4, 4, 3\)"),
    "no pixels": (lambda d: np.zeros((0, 4), np.uint8), InputError, "no pixels"),
    "NaN pixels": (lambda d: np.full((4, 4), np.nan), InputError, "NaN or inf"),
    "inf pixels": (lambda d: np.full((4, 4, 3), np.inf), InputError, "NaN or inf"),
    "int64 over 255": (lambda d: np.full((4, 4), 300), InputError, r"\[300, 300\]"),
    "negative int8": (lambda d: np.full((4, 4), -1, np.int8), InputError, "int8"),
    "complex array": (lambda d: np.zeros((4, 4), complex), InputTypeError, "complex128"),
    "object array": (lambda d: np.zeros((4, 4), object), InputTypeError, "object"),
    "number": (lambda d: 5, InputTypeError, "cell of type int"),
    "list": (lambda d: [[0, 1], [1, 0]], InputTypeError, "cell of type list"),
    "dict": (lambda d: {"path": "a.png"}, InputTypeError, "cell of type dict"),
    "huge header": (lambda d: png_header(100_000, 100_000), InputError, "too large"),
    "over MAX_IMAGE_PIXELS": (
        lambda d: _file(d / "big.png", png_header(10_000, 10_000)),  # 1e8 > 89.5e6 pixels
        InputError,
        "too large to decode safely: 10000x10000",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_bad_cells_name_column_row_and_path(tmp_path, case):
    make, error, match = BAD_CELLS[case]
    bad = make(tmp_path)
    X = pd.Series([half_white(4, 4), bad], index=[10, 11], name="photo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning, no other noise
        start = time.perf_counter()
        with pytest.raises(error, match=match) as info:
            ImagePreprocessor(size=4).fit(X).transform(X)
        assert time.perf_counter() - start < 2
    assert "column 'photo', row 11" in str(info.value)
    if isinstance(bad, (str, Path)) and case != "directory":
        assert str(bad) in str(info.value)


@pytest.mark.parametrize(
    "empty", [[], np.zeros((0, 4, 4, 3), np.uint8), pd.Series([], dtype=object, name="photo")]
)
def test_empty_input(empty):
    with pytest.raises(InputError, match="0 rows"):
        ImagePreprocessor().fit(empty)
    prep = ImagePreprocessor(size=2).fit([np.zeros((2, 2))])
    with pytest.raises(InputError, match="0 rows"):
        prep.transform(empty)


@pytest.mark.parametrize("X", [np.zeros((5, 3)), {"photo": ["a.png"]}, "a.png"])
def test_inputs_that_are_not_a_column_of_images(X):
    with pytest.raises(InputTypeError, match="expected a Series"):
        ImagePreprocessor().fit(X)


# --- parallel decoding ------------------------------------------------------------


def test_many_files_decode_the_same_on_one_or_many_threads(tmp_path):
    rng = np.random.default_rng(8)
    paths = []
    for i in range(40):
        ext, fmt = [("png", "PNG"), ("bmp", "BMP"), ("tiff", "TIFF")][i % 3]
        img = rng.integers(0, 256, (6 + i % 5, 7, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.{ext}", fmt)
        paths.append(tmp_path / f"{i}.{ext}")
    cells = pd.Series(paths, name="photo")
    serial = ImagePreprocessor(size=5, n_jobs=1).fit_transform(cells)
    threaded = ImagePreprocessor(size=5, n_jobs=4).fit_transform(cells)
    np.testing.assert_array_equal(serial, threaded)
    assert len({row.tobytes() for row in serial}) == 40  # each row its own image
    cells[23] = tmp_path / "missing.png"
    with pytest.raises(InputError, match=r"column 'photo', row 23: file not found"):
        ImagePreprocessor(size=5, n_jobs=4).fit_transform(cells)


def test_parallel_map_runs_cells_concurrently():
    # Each call waits for a second thread to arrive: a serial loop would time out.
    barrier = threading.Barrier(2, timeout=10)
    threads: set[int] = set()

    def work(cell: int) -> int:
        threads.add(threading.get_ident())
        barrier.wait()
        return cell * 2

    column = Column(list(range(10)), "x", range(10))
    assert parallel_map(work, column, list(range(10)), n_jobs=2) == [2 * i for i in range(10)]
    assert len(threads) == 2


# --- scikit-learn API -------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        check_do_not_raise_errors_in_init_or_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
        check_get_params_invariance,
        check_mixin_order,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
        check_valid_tag_types,
    ],
)
def test_sklearn_api_checks(check):
    check("ImagePreprocessor", ImagePreprocessor())


# ImagePreprocessor takes one column of image cells (tags: two_d_array=False), so
# scikit-learn's common checks, which feed 2-D numeric tables, are skipped for it and
# none is expected to fail; the data-free API checks above run explicitly.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

with warnings.catch_warnings():  # silence the SkipTestWarning raised while collecting
    warnings.simplefilter("ignore")
    _COMMON = parametrize_with_checks(
        [ImagePreprocessor(size=4), ImagePreprocessor(size=(3, 2), normalization="standardize")],
        expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    )


@_COMMON
def test_sklearn_compatible(estimator, check):
    check(estimator)
