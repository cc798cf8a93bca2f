"""Tests of :class:`mmsk.ModalityBatch` and :class:`mmsk.ModalitySpec`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils import _safe_indexing

from mmsk import ModalityBatch, ModalitySpec
from mmsk._batch import PRESENT
from mmsk.exceptions import InputError

N = 6


def make_batch() -> ModalityBatch:
    """Rows are recognisable: image row i is filled with i, token row i starts at 10 * i."""
    image = np.repeat(np.arange(N, dtype="float32"), 2 * 2 * 3).reshape(N, 2, 2, 3)
    tokens = (10 * np.arange(N)[:, None] + np.arange(4)).astype("int32")
    numbers = np.arange(N * 2, dtype="float32").reshape(N, 2)
    return ModalityBatch(
        {"photo": image, "review": tokens, "numeric": numbers},
        {
            "photo": ModalitySpec("image", (2, 2, 3), columns=("photo",)),
            "review": ModalitySpec("text", (4,), "int32", vocabulary_size=60),
            "numeric": ModalitySpec("numeric", (2,), columns=("a", "b")),
        },
        masks={"review": np.array([1, 0, 1, 1, 0, 1], bool)},
    )


def rows_of(batch: ModalityBatch) -> list[int]:
    """The original row numbers a batch holds, read from the image values."""
    return [int(v) for v in batch["photo"][:, 0, 0, 0]]


def test_mapping_len_and_shape():
    batch = make_batch()
    assert len(batch) == N and batch.n_modalities == 3
    assert batch.shape == (N, 12 + 4 + 2 + 3) == np.asarray(batch).shape  # as sklearn reads it
    assert list(batch) == list(batch.keys()) == ["photo", "review", "numeric"]
    assert "review" in batch and "video" not in batch
    assert batch["review"].dtype == np.int32 and batch["review"].shape == (N, 4)
    assert batch.specs["review"].vocabulary_size == 60
    assert batch.masks["photo"].all() and batch.masks["review"].tolist() == [
        True,
        False,
        True,
        True,
        False,
        True,
    ]
    assert "review: text (4,) int32 (2 missing)" in repr(batch)
    with pytest.raises(KeyError):
        batch["video"]


@pytest.mark.parametrize(
    "rows, expected",
    [
        (0, [0]),
        (-1, [5]),
        (np.int64(2), [2]),
        (slice(1, 4), [1, 2, 3]),
        (slice(None, None, -2), [5, 3, 1]),
        (np.array([4, 0, 4]), [4, 0, 4]),
        ([3, 1], [3, 1]),
        (np.array([True, False, True, False, False, True]), [0, 2, 5]),
        ([], []),
        ((np.array([2, 3]), Ellipsis), [2, 3]),  # how scikit-learn indexes arrays
    ],
)
def test_row_selection_carries_arrays_and_masks(rows, expected):
    batch = make_batch()
    part = batch[rows]
    assert isinstance(part, ModalityBatch) and len(part) == len(expected)
    assert rows_of(part) == expected
    np.testing.assert_array_equal(part["review"][:, 0], [10 * i for i in expected])
    assert part.masks["review"].tolist() == batch.masks["review"][expected].tolist()
    assert part.specs == batch.specs
    assert part.take(slice(None)).shape == part.shape


def test_out_of_range_row():
    with pytest.raises(IndexError):
        make_batch()[N]


def test_sklearn_safe_indexing_and_kfold_split_a_batch():
    batch = make_batch()
    part = _safe_indexing(batch, [5, 1])
    assert rows_of(part) == [5, 1] and part.masks["review"].tolist() == [True, False]
    part = _safe_indexing(batch, np.array([False, True, True, False, False, False]))
    assert rows_of(part) == [1, 2]
    seen = []
    for train, test in KFold(n_splits=3).split(batch):
        tr, te = _safe_indexing(batch, train), _safe_indexing(batch, test)
        assert rows_of(tr) == train.tolist() and rows_of(te) == test.tolist()
        assert te.masks["review"].tolist() == batch.masks["review"][test].tolist()
        seen += rows_of(te)
    assert sorted(seen) == list(range(N))
    train_b, test_b, train_y, test_y = train_test_split(
        batch, np.arange(N) * 100, test_size=2, random_state=0
    )
    assert [100 * r for r in rows_of(train_b)] == train_y.tolist()
    assert [100 * r for r in rows_of(test_b)] == test_y.tolist()


def test_with_masks_zeroes_rows_it_marks_missing():
    batch = make_batch()
    new = batch.with_masks({"photo": np.array([1, 0, 0, 1, 1, 1], bool)})
    assert new.masks["photo"].tolist() == [True, False, False, True, True, True]
    assert (new["photo"][[1, 2]] == 0).all()
    np.testing.assert_array_equal(new["photo"][[0, 3, 4, 5]], batch["photo"][[0, 3, 4, 5]])
    # the original is untouched and other modalities are shared, not copied
    assert (batch["photo"][1] == 1).all() and batch.masks["photo"].all()
    assert new["review"] is batch["review"]
    assert new.masks["review"].tolist() == batch.masks["review"].tolist()
    with pytest.raises(InputError, match="'video'"):
        batch.with_masks({"video": np.ones(N, bool)})
    with pytest.raises(InputError, match=r"mask of modality 'photo'.*\(6,\)"):
        batch.with_masks({"photo": np.ones(2, bool)})


def test_to_inputs_order_and_mask_matrix():
    batch = make_batch()
    inputs = batch.to_inputs(["review", "photo", "numeric"])
    assert list(inputs) == ["review", "photo", "numeric", PRESENT]
    assert inputs["review"] is batch["review"]
    present = inputs[PRESENT]
    assert present.dtype == np.float32 and present.shape == (N, 3)
    np.testing.assert_array_equal(present[:, 0], batch.masks["review"].astype("float32"))
    np.testing.assert_array_equal(present[:, 1:], 1.0)
    assert list(batch.to_inputs()) == ["photo", "review", "numeric", PRESENT]
    np.testing.assert_array_equal(batch.to_inputs()[PRESENT][:, 1], present[:, 0])
    with pytest.raises(InputError, match="video"):
        batch.to_inputs(["photo", "video"])


def test_flat_array_and_feature_names_agree():
    batch = make_batch()
    flat = np.asarray(batch)
    names = batch.feature_names()
    assert flat.shape == (N, 12 + 4 + 2 + 3) == (N, len(names))
    assert flat.dtype == np.float64 and np.asarray(batch, dtype="float32").dtype == np.float32
    assert names[0] == "photo_0" and names[12] == "review_0" and names[16] == "numeric_0"
    assert names[-3:].tolist() == ["photo_present", "review_present", "numeric_present"]
    # every value lands in the column its name says
    np.testing.assert_array_equal(flat[:, 12], batch["review"][:, 0])
    np.testing.assert_array_equal(flat[:, 17], batch["numeric"][:, 1])
    np.testing.assert_array_equal(flat[:, -2], batch.masks["review"])
    np.testing.assert_array_equal(np.asarray(batch[[2, 4]]), flat[[2, 4]])
    with pytest.raises(ValueError, match="copy"):
        np.asarray(batch, copy=False)


def test_pickle_round_trip_and_equality_is_identity():
    batch = make_batch()
    back = pickle.loads(pickle.dumps(batch))
    assert back.specs == batch.specs and list(back) == list(batch)
    for name in batch:
        np.testing.assert_array_equal(back[name], batch[name])
        np.testing.assert_array_equal(back.masks[name], batch.masks[name])
    assert batch == batch and batch != back  # arrays are not compared element-wise


def one(n: int = 3, shape: tuple = (2,)) -> np.ndarray:
    return np.zeros((n, *shape), "float32")


BAD = {
    "no modalities": (lambda: ModalityBatch({}, {}), "at least one modality"),
    "lengths differ": (
        lambda: ModalityBatch(
            {"a": one(3), "b": one(4)},
            {"a": ModalitySpec("numeric", (2,)), "b": ModalitySpec("numeric", (2,))},
        ),
        r"same rows.*'a': 3, 'b': 4",
    ),
    "spec missing": (
        lambda: ModalityBatch({"a": one(), "b": one()}, {"a": ModalitySpec("numeric", (2,))}),
        r"one spec per array.*\['a', 'b'\].*\['a'\]",
    ),
    "extra spec": (
        lambda: ModalityBatch(
            {"a": one()},
            {"a": ModalitySpec("numeric", (2,)), "z": ModalitySpec("numeric", (2,))},
        ),
        "one spec per array",
    ),
    "mask of wrong length": (
        lambda: ModalityBatch(
            {"a": one()}, {"a": ModalitySpec("numeric", (2,))}, {"a": np.ones(4, bool)}
        ),
        r"mask of modality 'a' to have shape \(3,\). Received: \(4,\)",
    ),
    "2-D mask": (
        lambda: ModalityBatch(
            {"a": one()}, {"a": ModalitySpec("numeric", (2,))}, {"a": np.ones((3, 1), bool)}
        ),
        r"mask of modality 'a'",
    ),
    "row shape differs from spec": (
        lambda: ModalityBatch({"a": one(3, (2, 2))}, {"a": ModalitySpec("numeric", (4,))}),
        r"modality 'a'.*\(4,\).*\(3, 2, 2\)",
    ),
    "unknown kind": (lambda: ModalitySpec("video", (2,)), "kind='video'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_construction(case):
    make, match = BAD[case]
    with pytest.raises(InputError, match=match):
        make()


def test_spec_normalises_and_round_trips_to_dict():
    spec = ModalitySpec("text", [np.int64(12)], "int32", vocabulary_size=500, columns=["r"])
    assert spec.shape == (12,) and isinstance(spec.shape[0], int) and spec.columns == ("r",)
    assert ModalitySpec(**{**spec.to_dict(), "shape": (12,)}) == spec
    assert spec.to_dict() == {
        "kind": "text",
        "shape": [12],
        "dtype": "int32",
        "vocabulary_size": 500,
        "columns": ["r"],
        "char_columns": 0,
        "char_vocabulary_size": 0,
    }
    chars = ModalitySpec("text", (12,), "int32", 500, char_columns=4, char_vocabulary_size=90)
    assert ModalitySpec(**{**chars.to_dict(), "shape": (12,)}) == chars
    assert chars.words() == ModalitySpec("text", (8,), "int32", 500)
    with pytest.raises(InputError, match="char_columns"):
        ModalitySpec("image", (12,), "float32", char_columns=4, char_vocabulary_size=90)


def test_spec_repr_shows_character_fields_only_when_there_are_ngrams():
    plain = ModalitySpec("numeric", (3,), columns=["a", "b", "c"])
    chars = ModalitySpec("text", (12,), "int32", 500, ("name",), 4, 90)
    assert "char_" not in repr(plain)
    assert "char_columns=4, char_vocabulary_size=90" in repr(chars)
    for spec in (plain, chars, chars.words()):
        assert eval(repr(spec), {"ModalitySpec": ModalitySpec}) == spec
