"""Tests of :func:`mmsk.infer_modalities`: every kind, explicit mappings, missing cells, errors."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsk import infer_modalities
from mmsk.exceptions import InputError, InputTypeError, MmskError


def image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, fmt)
    return buf.getvalue()


def wav_bytes() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(80, "<i2").tobytes())
    return buf.getvalue()


def kinds_of(**columns: list) -> dict[str, str]:
    return infer_modalities(pd.DataFrame(columns))


def test_image_cells_of_every_form():
    kinds = kinds_of(
        grey=[np.zeros((5, 4), np.uint8), np.ones((3, 3))],
        rgb=[np.zeros((5, 4, 3), np.uint8), np.zeros((2, 2, 4), np.float32)],
        pil=[Image.new("L", (3, 3)), Image.new("RGBA", (2, 5))],
        png_jpeg=[image_bytes("PNG"), image_bytes("JPEG")],
        gif_bmp=[image_bytes("GIF"), image_bytes("BMP")],
        webp_tiff=[image_bytes("WEBP"), image_bytes("TIFF")],
        bytearrays=[bytearray(image_bytes("PNG")), memoryview(image_bytes("JPEG"))],
        paths=["a/b.png", "C.JPG"],
        more_paths=["x.jpeg", "y.Gif"],
        other_paths=["z.bmp", "w.webp"],
        tiff_paths=["t.tif", "u.TIFF"],
        pathlib=[Path("a.png"), Path("dir/b.jpg")],
    )
    assert set(kinds.values()) == {"image"}, kinds


def test_audio_cells_of_every_form():
    kinds = kinds_of(
        floats=[np.zeros(100), np.linspace(-1, 1, 7, dtype=np.float32)],
        ints=[np.zeros(10, np.int16), np.ones(3, np.uint8)],
        wav_paths=["a.wav", "b.WAV"],
        other_paths=["c.flac", "d.ogg"],
        pathlib=[Path("e.wav"), Path("f.mp3")],
        wav=[wav_bytes(), wav_bytes()],
        flac_ogg=[b"fLaC" + bytes(20), b"OggS" + bytes(20)],
    )
    assert set(kinds.values()) == {"audio"}, kinds


def test_text_numeric_and_categorical():
    words = [f"word{i}" for i in range(60)]
    kinds = kinds_of(
        review=["a great fit and colour", "too small for me", "fine"] * 20,
        many_single_words=words,  # 60 distinct values in 60 rows: free text
        price=np.linspace(1, 2, 60),
        count=np.arange(60),
        with_nan=[1.5, np.nan] * 30,
        object_numbers=pd.Series([1, 2.5, None] * 20, dtype=object),
        nullable_int=pd.array([1, None, 3] * 20, dtype="Int64"),
        category=pd.Categorical(["a", "b", "c"] * 20),
        flag=[True, False] * 30,
        nullable_bool=pd.array([True, None, False] * 20, dtype="boolean"),
        object_bool=[True, None, False] * 20,
        size=["S", "M", "XL"] * 20,
    )
    assert kinds == {
        "review": "text",
        "many_single_words": "text",
        "price": "numeric",
        "count": "numeric",
        "with_nan": "numeric",
        "object_numbers": "numeric",
        "nullable_int": "numeric",
        "category": "categorical",
        "flag": "categorical",
        "nullable_bool": "categorical",
        "object_bool": "categorical",
        "size": "categorical",
    }


def test_result_follows_column_order_and_keeps_non_string_names():
    df = pd.DataFrame({2: [1.0], 0: ["a long piece of text"], "p": ["x.png"]})
    kinds = infer_modalities(df)
    assert list(kinds.items()) == [(2, "numeric"), (0, "text"), ("p", "image")]


def test_missing_cells_are_ignored():
    kinds = kinds_of(
        photo=[None, "a.png", np.nan, "b.jpg"],
        voice=[np.zeros(5), None, pd.NA, np.zeros(3)],
        review=[np.nan, "so good I bought two", None, "nope"],
        picture=[pd.NaT, Image.new("RGB", (2, 2)), None, None],
        n=pd.Series([None, 1, None, 2], dtype=object),
    )
    assert kinds == {
        "photo": "image",
        "voice": "audio",
        "review": "text",
        "picture": "image",
        "n": "numeric",
    }


def test_explicit_mapping_overrides_inference():
    df = pd.DataFrame(
        {
            "size": ["S", "M", "S"],
            "rating": [1, 2, 3],
            "empty": [None, None, None],
            "photo": ["a.png", "b.png", "c.png"],
        }
    )
    kinds = infer_modalities(df, {"size": "text", "rating": "categorical", "empty": "audio"})
    assert kinds == {"size": "text", "rating": "categorical", "empty": "audio", "photo": "image"}
    # the mapping may even contradict the cells; the caller knows best
    assert infer_modalities(df[["photo"]], {"photo": "text"}) == {"photo": "text"}
    assert infer_modalities(df[["rating"]], {}) == {"rating": "numeric"}


ERRORS = {
    "not a DataFrame (list)": (lambda: [["a.png"]], None, InputTypeError, ["DataFrame", "list"]),
    "not a DataFrame (array)": (lambda: np.zeros((2, 2)), None, InputTypeError, ["ndarray"]),
    "not a DataFrame (Series)": (lambda: pd.Series([1.0]), None, InputTypeError, ["Series"]),
    "duplicate names": (
        lambda: pd.DataFrame([[1, "x", 2]], columns=["price", "name", "price"]),
        None,
        InputError,
        ["unique", "'price'"],
    ),
    "all missing": (
        lambda: pd.DataFrame({"ok": [1, 2], "blank": [None, "x"]}).iloc[:1],
        None,
        InputError,
        ["column 'blank'", "every cell is missing", "{'blank': 'text'}"],
    ),
    "all NaN floats": (
        lambda: pd.DataFrame({"ok": [1, 2], "blank": [np.nan, np.nan]}),
        None,
        InputError,
        ["column 'blank'", "every cell is missing"],
    ),
    "all missing category": (
        lambda: pd.DataFrame({"size": pd.Categorical([None, None], categories=["S"])}),
        None,
        InputError,
        ["column 'size'", "every cell is missing"],
    ),
    "mixed cells": (
        lambda: pd.DataFrame({"mixed": [1.5, "a cat", None]}, index=[10, 11, 12]),
        None,
        InputTypeError,
        ["column 'mixed'", "number (row 10)", "text (row 11)"],
    ),
    "image and text": (
        lambda: pd.DataFrame({"photo": ["a.png", "just words here"]}, index=["r1", "r2"]),
        None,
        InputTypeError,
        ["column 'photo'", "image (row 'r1')", "text (row 'r2')"],
    ),
    "list cells": (
        lambda: pd.DataFrame({"emb": [None, [0.1, 0.2], [0.3]]}, index=[5, 6, 7]),
        None,
        InputTypeError,
        ["column 'emb', row 6", "list", "numpy arrays"],
    ),
    "dict cells": (
        lambda: pd.DataFrame({"meta": [{"a": 1}]}),
        None,
        InputTypeError,
        ["column 'meta', row 0", "dict"],
    ),
    "4-D array cells": (
        lambda: pd.DataFrame({"vol": [np.zeros((2, 2, 2, 2))]}),
        None,
        InputTypeError,
        ["column 'vol', row 0", "4-D array"],
    ),
    "unknown bytes": (
        lambda: pd.DataFrame({"blob": [b"\x00\x01garbage"]}),
        None,
        InputTypeError,
        ["column 'blob', row 0", "bytes"],
    ),
    "unknown kind in mapping": (
        lambda: pd.DataFrame({"clip": ["a.mp4"]}),
        {"clip": "video"},
        InputError,
        ["column 'clip'", "'video'", "image"],
    ),
    "mapping names absent column": (
        lambda: pd.DataFrame({"a": [1.0]}),
        {"a": "numeric", "b": "text"},
        InputError,
        ["['b']", "not in X", "['a']"],
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_column_and_row(case):
    make, mapping, error, fragments = ERRORS[case]
    with pytest.raises(error) as info:
        infer_modalities(make(), mapping)
    assert isinstance(info.value, MmskError)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_cells_past_the_sample_are_not_inspected():
    # Inference looks at the first 200 present cells; a bad cell later is found by
    # the transformer, with its row, rather than making inference scan everything.
    df = pd.DataFrame({"photo": [f"{i}.png" for i in range(250)] + [5]})
    assert infer_modalities(df) == {"photo": "image"}
