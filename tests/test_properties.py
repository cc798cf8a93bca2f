"""Property tests: random cells never raise anything but mmsk's errors, and outputs keep shape.

Each transformer is fitted once and reused across examples (the Keras-backed ones are
slow to fit); ``derandomize`` keeps CI runs reproducible.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import mmsk
from mmsk._batch import KINDS
from mmsk.exceptions import MmskError
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
    TextVectorizer,
)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MISSING = st.sampled_from([None, np.nan, pd.NA])


def _transform_or_mmsk_error(transformer, cells):
    """transform(cells), or None when it raised one of mmsk's errors (anything else fails)."""
    try:
        return transformer.transform(cells)
    except MmskError as exc:
        assert isinstance(exc, (ValueError, TypeError))
        assert str(exc)  # a message, naming what went wrong
        return None


# ---- images ---------------------------------------------------------------------------------

IMAGES = {
    "rgb": ImagePreprocessor(size=(5, 3)).fit([np.zeros((2, 2))]),
    "grayscale": ImagePreprocessor(size=4, color_mode="grayscale", normalization="symmetric")
    .fit([np.zeros((2, 2))]),
    "rgba": ImagePreprocessor(size=(2, 6), color_mode="rgba", crop_to_aspect_ratio=True)
    .fit([np.zeros((2, 2))]),
}  # fmt: skip


@st.composite
def image_cells(draw):
    """(cell, valid): a cell and whether ImagePreprocessor must accept it."""
    kind = draw(st.sampled_from(["array"] * 6 + ["pil", "bytes", "missing", "other"]))
    if kind == "missing":
        return draw(MISSING), True
    if kind == "other":
        return draw(st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers()))), False
    if kind == "bytes":  # random bytes are no image format
        return draw(st.binary(max_size=40)), False
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_]))
    channels = draw(st.sampled_from([(), (1,), (3,), (4,), (), (1,), (3,), (4,), (2,)]))
    shape = (draw(st.integers(0, 9)) or 1, draw(st.integers(0, 9)) or 1, *channels)
    if draw(st.integers(0, 9)) == 9:  # now and then, an image with no pixels
        shape = (0, *shape[1:])
    if dtype in (np.float32, np.float64):
        elements = st.floats(0, 1, width=32)
    else:
        elements = None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    valid = channels != (2,) and shape[0] > 0
    if kind == "pil" and array.size and array.dtype == np.uint8 and len(channels) < 2:
        return Image.fromarray(array if not channels or channels[0] != 1 else array[..., 0]), True
    return array, valid


@pytest.mark.parametrize("mode", sorted(IMAGES))
@SETTINGS
@given(drawn=st.lists(image_cells(), min_size=1, max_size=4))
def test_image_preprocessor_on_random_cells(mode, drawn):
    prep = IMAGES[mode]
    cells = [cell for cell, _ in drawn]
    bad = [i for i, (_, valid) in enumerate(drawn) if not valid]
    out = _transform_or_mmsk_error(prep, pd.Series(cells, dtype=object))
    if out is None:  # an error only for a bad cell, naming the first one
        assert bad, "a valid column was refused"
        return
    assert not bad, f"rows {bad} hold no image, yet transform accepted them"
    assert out.shape == (len(cells), *prep.spec_.shape) and out.dtype == np.float32
    assert np.isfinite(out).all()
    low = -1.0 if prep.normalization == "symmetric" else 0.0
    assert out.min() >= low - 1e-6 and out.max() <= 1.0 + 1e-6
    for i, cell in enumerate(cells):
        if cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
            assert not out[i].any()


# ---- text -----------------------------------------------------------------------------------

TEXT = TextVectorizer(max_tokens=50).fit(
    ["a red bus", "two dogs playing", "naïve café", "日本語のテキスト", ""]
)
TEXT_NGRAMS = TextVectorizer(sequence_length=3, split="character", ngrams=2).fit(["abc", "xyz"])

text_cells = st.one_of(
    st.text(max_size=30),
    st.text(max_size=30),
    st.text(max_size=30).map(lambda t: t.encode("utf-8")),
    MISSING,
)
# at most one a list, each an error: lone surrogates, bytes that are not UTF-8, numbers
bad_text_cells = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), min_size=1),
    st.binary(min_size=1, max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
)


@pytest.mark.parametrize("vec", [TEXT, TEXT_NGRAMS], ids=["words", "char-ngrams"])
@SETTINGS
@given(
    cells=st.lists(text_cells, min_size=1, max_size=6),
    bad=st.lists(bad_text_cells, max_size=1),
)
def test_text_vectorizer_on_random_cells(vec, cells, bad):
    cells = cells + bad
    out = _transform_or_mmsk_error(vec, pd.Series(cells, dtype=object))
    if out is None:
        assert any(not isinstance(c, str) or not c.isascii() for c in cells if c is not None)
        return
    assert out.shape == (len(cells), vec.sequence_length_) and out.dtype == np.int32
    assert out.min() >= 0 and out.max() < vec.vocabulary_size_
    for i, cell in enumerate(cells):
        if not isinstance(cell, (str, bytes)):  # missing
            assert not out[i].any()


@SETTINGS
@given(texts=st.lists(st.one_of(st.text(max_size=20), st.none()), min_size=1, max_size=5))
def test_text_vectorizer_fits_on_any_texts(texts):
    vec = TextVectorizer(max_sequence_length=8).fit(texts)
    assert 1 <= vec.sequence_length_ <= 8
    assert vec.vocabulary_[:2] == ["", "[UNK]"]
    assert vec.transform(texts).shape == (len(texts), vec.sequence_length_)


# ---- audio ----------------------------------------------------------------------------------

SMALL = {"sample_rate": 100, "duration": 0.2, "frame_length": 0.05, "frame_step": 0.02}
AUDIO = {
    "log_mel": AudioFeaturizer(n_mels=4, **SMALL).fit([np.sin(np.arange(30.0))]),
    "waveform": AudioFeaturizer(features="waveform", **SMALL).fit([np.zeros(5)]),
}


@st.composite
def audio_cells(draw):
    """(cell, valid): a cell and whether AudioFeaturizer must accept it."""
    kind = draw(st.sampled_from(["array"] * 6 + ["missing", "other"]))
    if kind == "missing":
        return draw(MISSING), True
    if kind == "other":
        return draw(st.one_of(st.binary(max_size=30), st.integers(), st.text(max_size=4))), False
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.int32]))
    length = 0 if draw(st.integers(0, 9)) == 9 else draw(st.integers(1, 60))
    shape = draw(st.sampled_from([(length,), (length, 2), (length, 1)]))
    elements = st.floats(-1, 1, width=32) if dtype in (np.float32, np.float64) else None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.integers(0, 5)) == 5 and array.dtype.kind == "f" and array.size:
        array[0] = np.nan
    return array, bool(array.size) and bool(np.isfinite(array).all())


@pytest.mark.parametrize("features", sorted(AUDIO))
@SETTINGS
@given(drawn=st.lists(audio_cells(), min_size=1, max_size=4))
def test_audio_featurizer_on_random_cells(features, drawn):
    featurizer = AUDIO[features]
    cells = [cell for cell, _ in drawn]
    bad = [i for i, (_, valid) in enumerate(drawn) if not valid]
    out = _transform_or_mmsk_error(featurizer, pd.Series(cells, dtype=object))
    if out is None:  # an error only for a bad cell
        assert bad, "a valid column was refused"
        return
    assert not bad, f"rows {bad} hold no waveform, yet transform accepted them"
    assert out.shape == (len(cells), *featurizer.spec_.shape) and out.dtype == np.float32
    assert np.isfinite(out).all()


# ---- tables: infer_modalities and ModalityPreprocessor ---------------------------------------

GOOD_KINDS = ["float", "int", "short", "sentence", "image"]
BAD_KINDS = ["mixed", "lists", "missing"]
WORDS = ["red", "blue", "big", "small", "dog"]


def _column(draw, kind, n):
    if kind == "float":
        return draw(st.lists(st.floats(-1e6, 1e6) | st.just(np.nan), min_size=n, max_size=n))
    if kind == "int":
        return draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n))
    if kind == "short":
        return draw(st.lists(st.sampled_from(["S", "M", None]), min_size=n, max_size=n))
    if kind == "sentence":
        words = st.lists(st.sampled_from(WORDS), min_size=3, max_size=5).map(" ".join)
        return draw(st.lists(words | st.none(), min_size=n, max_size=n))
    if kind == "image":
        arrays = hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5)))
        return draw(st.lists(arrays | st.none(), min_size=n, max_size=n))
    if kind == "mixed":
        cells = st.one_of(st.integers(), st.text(min_size=1, max_size=3))
        return draw(st.lists(cells, min_size=n, max_size=n))
    if kind == "lists":
        return draw(st.lists(st.lists(st.integers(), max_size=2), min_size=n, max_size=n))
    return [None] * n


@st.composite
def frames(draw, kinds=GOOD_KINDS + BAD_KINDS):
    """(frame, unknowable, drawn): 1-3 columns of the given kinds with missing cells, the
    columns whose cells may not tell their kind (a bad kind, or all missing), and the
    kind drawn for each column."""
    n = draw(st.integers(1, 6))
    data, unknowable, drawn = {}, [], {}
    for name in draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(kinds))
        values = _column(draw, kind, n)
        if kind in ("float", "int"):
            data[name] = pd.Series(values)
        else:
            data[name] = pd.Series(values, dtype=object)
        drawn[name] = kind
        if kind in BAD_KINDS or data[name].isna().all():
            unknowable.append(name)
    return pd.DataFrame(data), unknowable, drawn


EXPECTED_KIND = {"float": "numeric", "int": "numeric", "short": "categorical",
                 "sentence": "text", "image": "image"}  # fmt: skip


@SETTINGS
@given(drawn=frames())
def test_infer_modalities_gives_a_kind_or_an_mmsk_error(drawn):
    frame, unknowable, column_kinds = drawn
    try:
        kinds = mmsk.infer_modalities(frame)
    except MmskError as exc:
        assert unknowable, f"refused a frame of good columns: {exc}"
        assert any(f"column {name!r}" in str(exc) for name in unknowable), str(exc)
        return
    assert list(kinds) == list(frame.columns) and set(kinds.values()) <= set(KINDS)
    for name, kind in column_kinds.items():
        if name not in unknowable:
            assert kinds[name] == EXPECTED_KIND[kind], (name, kind, kinds)


@settings(SETTINGS, max_examples=25)
@given(drawn=frames(GOOD_KINDS))
def test_modality_preprocessor_keeps_rows_shapes_and_dtypes(drawn):
    frame, unknowable, _ = drawn
    prep = ModalityPreprocessor(image=ImagePreprocessor(size=2), text=TextVectorizer())
    try:
        batch = prep.fit_transform(frame)
    except MmskError as exc:
        assert isinstance(exc, (ValueError, TypeError)) and str(exc)
        assert unknowable, f"refused a frame of good columns: {exc}"
        return
    again = prep.transform(frame)
    for name in batch:
        spec = batch.specs[name]
        array = batch[name]
        assert array.shape == (len(frame), *spec.shape) and array.dtype == np.dtype(spec.dtype)
        assert np.isfinite(array).all() if array.dtype.kind == "f" else array.min() >= 0
        assert batch.masks[name].dtype == bool and batch.masks[name].shape == (len(frame),)
        assert not array[~batch.masks[name]].any()  # missing rows hold zeros
        np.testing.assert_array_equal(again[name], array)
