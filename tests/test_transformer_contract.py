"""Transformers and estimators write no state when they transform or predict.

scikit-learn's contract: only ``fit`` changes an object.  A cache written in
``transform`` (as ``TextVectorizer`` once kept its compiled layer) makes an
object differ after use, races across threads and leaks into pickles.  Each
object here is fitted, its ``__dict__`` is snapshotted deeply (arrays copied,
Keras weights read, nested estimators walked), then every method that only
reads runs, and the ``__dict__`` must hold the same keys bound to the same
objects with the same contents.
"""

import copy

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

import mmsk
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
    TextVectorizer,
)


def snapshot(value):
    """A deep, comparable copy of ``value`` (Keras models by their weights)."""
    if isinstance(value, keras.Model):
        return ("keras", [np.array(w) for w in value.get_weights()])
    if isinstance(value, BaseEstimator):
        return ("estimator", type(value), {k: snapshot(v) for k, v in vars(value).items()})
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def differences(a, b, where="obj"):
    """Paths at which two snapshots differ."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        ok = isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
        return [] if ok and np.array_equal(a, b, equal_nan=a.dtype.kind == "f") else [where]
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return [where]
        return [d for k in a for d in differences(a[k], b[k], f"{where}[{k!r}]")]
    if isinstance(a, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return [where]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a is b or a == b else [where]  # `is`: a NaN setting is itself


def assert_reads_only(obj, calls):
    before_ids = {k: id(v) for k, v in vars(obj).items()}
    before = snapshot(obj)
    for call in calls:
        call(obj)
    assert {k: id(v) for k, v in vars(obj).items()} == before_ids, "attributes added or rebound"
    assert differences(before, snapshot(obj)) == [], "an attribute's contents changed"


rng = np.random.default_rng(0)
IMAGES = pd.Series([*rng.integers(0, 256, (6, 9, 9, 3), dtype=np.uint8), None], name="p")
TEXTS = pd.Series(["a red bus", "two dogs", None, "a red dog", "bus", "dogs run", ""], name="t")
CLIPS = pd.Series([rng.normal(0, 0.1, 800) for _ in range(6)] + [None], name="a")
TABLE = pd.DataFrame({"t": TEXTS, "n": rng.normal(size=7), "c": list("xyxyxyx")})


@pytest.mark.parametrize(
    "transformer, X",
    [
        (ImagePreprocessor(size=4, normalization="standardize"), IMAGES),
        (ImagePreprocessor(), IMAGES.tolist()),
        (TextVectorizer(ngrams=2), TEXTS),
        (TextVectorizer(split="character", sequence_length=5), TEXTS.tolist()),
        (AudioFeaturizer(sample_rate=800, n_mels=8, frame_length=0.05), CLIPS),
        (AudioFeaturizer(sample_rate=800, features="waveform"), CLIPS.tolist()),
        (ModalityPreprocessor(), TABLE),
        (ModalityPreprocessor(text=TextVectorizer(sequence_length=3)), TABLE.to_numpy()),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseEstimator) else None,
)
def test_transform_writes_no_state(transformer, X):
    transformer.fit(X)
    calls = [
        lambda t: t.transform(X),
        lambda t: t.transform(X),  # a second call, after any first-call set-up
        lambda t: t.get_feature_names_out(),
    ]
    if hasattr(transformer, "iter_transform"):
        calls.append(lambda t: list(t.iter_transform(X, batch_size=2)))
    assert_reads_only(transformer, calls)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [mmsk.MultimodalClassifier, mmsk.MultimodalRegressor])
def test_predict_writes_no_state(cls):
    y = np.array([0, 1, 0, 1, 0, 1, 1])
    est = cls(epochs=1, batch_size=4, validation_split=0.0, random_state=0).fit(TABLE, y)
    methods = ["predict", "predict_proba", "transform"]
    calls = [lambda e, m=m: getattr(e, m)(TABLE) for m in methods if hasattr(est, m)]
    calls += [lambda e: e.predict(TABLE.iloc[:2]), lambda e: e.score(TABLE, y)]
    assert_reads_only(est, calls)
