"""Classical baselines of ``bench/quality.py``: one small ``GridSearchCV`` per feature set.

Every baseline is a scikit-learn pipeline on the task's raw DataFrame,
tuned by a 3-fold ``GridSearchCV`` (``n_jobs=1``, a few settings) on the
training split only, refitted on all of it, then scored on the test split:

* ``text``: TF-IDF of word 1-2-grams and of ``char_wb`` 2-5-grams of every
  text column, then ``LogisticRegression`` or ``LinearSVC`` (``Ridge`` for
  regression);
* ``image``: the picture shrunk to at most 16x16 pixels (colour kept) plus
  an 8-bin histogram per channel, then ``LogisticRegression`` (``Ridge``) or
  ``HistGradientBoosting``;
* ``audio``: mean and standard deviation over time of 20 MFCCs (40 mel bins,
  25 ms frames every 10 ms, computed with ``tf.signal`` at the task's sample
  rate), then ``LogisticRegression`` (``Ridge``);
* ``tabular``: numbers and categories, ``HistGradientBoosting`` with native
  categorical features;
* ``concat``: all of the above features side by side (sparse; each dense
  block standardised, then scaled to a mean row norm of 1 like a TF-IDF
  row) into one linear model;
* ``boosted``: the same features, the text's TF-IDF reduced to 100
  dimensions by ``TruncatedSVD`` and the categories ordinal-encoded, into
  one ``HistGradientBoosting`` model (the non-linear counterpart of
  ``concat``).

The first four are the single-modality baselines (numbers and categories
count as one, "tabular").  :func:`run_baselines` returns, per baseline, the
test metrics, the best grid setting and the seconds the search took.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import FunctionTransformer, Pipeline, make_pipeline, make_union
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

IMAGE_SIDE = 16
N_MFCC = 20
SINGLE = ("text", "image", "audio", "tabular")
COMBINED = ("concat", "boosted")
SVD_COMPONENTS = 100


def metrics(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (classification) or R² and MAE (regression)."""
    if kind == "classification":
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        }
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


# ---------------------------------------------------------------- features
def _columns(modalities: dict[str, str], *kinds: str) -> list[str]:
    return [c for c, k in modalities.items() if k in kinds]


def _text_features(cols: list[str]) -> ColumnTransformer:
    parts = []
    for c in cols:
        parts.append((f"{c}_word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), c))
        parts.append(
            (
                f"{c}_char",
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                c,
            )
        )
    return ColumnTransformer(parts)


def _image_array(cell: Any) -> np.ndarray:
    from PIL import Image

    img = np.asarray(cell)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    pil = Image.fromarray(img.astype(np.uint8))
    if max(pil.size) > IMAGE_SIDE:
        pil = pil.resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
    small = np.asarray(pil, np.float32) / 255.0
    channels = img.reshape(img.shape[0], img.shape[1], -1)
    hist = [
        np.histogram(channels[..., i], bins=8, range=(0, 256))[0] / channels[..., i].size
        for i in range(channels.shape[-1])
    ]
    return np.concatenate([small.ravel(), *hist]).astype(np.float32)


def _images_to_features(X: pd.DataFrame) -> np.ndarray:
    return np.hstack([np.stack([_image_array(c) for c in X[col]]) for col in X.columns])


def _mfcc_stats(waves: np.ndarray, sample_rate: int) -> np.ndarray:
    import tensorflow as tf

    win, hop = round(0.025 * sample_rate), round(0.010 * sample_rate)
    fft = 1 << (win - 1).bit_length()
    stft = tf.signal.stft(tf.constant(waves, tf.float32), win, hop, fft_length=fft)
    mel = tf.tensordot(
        tf.abs(stft),
        tf.signal.linear_to_mel_weight_matrix(40, fft // 2 + 1, sample_rate, 0.0, sample_rate / 2),
        1,
    )
    mfcc = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :N_MFCC]
    out = np.asarray(mfcc.numpy())
    return np.hstack([out.mean(axis=1), out.std(axis=1)])


def _audio_to_features(X: pd.DataFrame, sample_rate: int) -> np.ndarray:
    blocks = []
    for col in X.columns:
        cells = [np.asarray(c, np.float32) for c in X[col]]
        n = max(len(c) for c in cells)
        waves = np.stack([np.pad(c, (0, n - len(c))) for c in cells])
        blocks.append(_mfcc_stats(waves, sample_rate))
    return np.hstack(blocks)


def _dense(featurize: Callable[..., np.ndarray], cols: list[str], **kw: Any) -> Pipeline:
    """Columns -> dense features, standardised."""
    function = FunctionTransformer(featurize, kw_args=kw or None)
    return make_pipeline(ColumnTransformer([("f", function, cols)]), StandardScaler())


class UnitBlock(TransformerMixin, BaseEstimator):
    """Scale a block of standardised or one-hot features to a mean squared row norm of 1.

    TF-IDF rows have norm 1; without this, a block of hundreds of
    standardised pixels would outweigh the text in one linear model.
    """

    def fit(self, X: Any, y: Any = None) -> UnitBlock:
        sq = X.multiply(X).sum(axis=1) if sparse.issparse(X) else np.square(X).sum(axis=1)
        self.scale_ = 1.0 / max(float(np.sqrt(np.mean(sq))), 1e-12)
        return self

    def transform(self, X: Any) -> Any:
        return X * self.scale_


def _tabular_linear(modalities: dict[str, str]) -> ColumnTransformer:
    """Numbers standardised and categories one-hot (for the linear models), each block unit."""
    parts: list[tuple[str, Any, list[str]]] = []
    if num := _columns(modalities, "numeric"):
        parts.append(("num", make_pipeline(StandardScaler(), UnitBlock()), num))
    if cat := _columns(modalities, "categorical"):
        parts.append(
            ("cat", make_pipeline(OneHotEncoder(handle_unknown="ignore"), UnitBlock()), cat)
        )
    return ColumnTransformer(parts)


# ---------------------------------------------------------------- models
def _linear_grid(kind: str, svm: bool = True) -> list[dict[str, Any]]:
    if kind == "regression":
        return [{"model": [Ridge()], "model__alpha": [0.3, 3.0, 30.0]}]
    grid: list[dict[str, Any]] = [
        {"model": [LogisticRegression(max_iter=1000)], "model__C": [1.0, 10.0]}
    ]
    if svm:
        grid.append({"model": [LinearSVC()], "model__C": [0.3, 1.0]})
    return grid


def _hgb(kind: str, cat: list[str] | None = None, **kw: Any) -> Any:
    """Gradient boosting; ``cat``: the categorical columns, which come first in its input."""
    cls = (
        HistGradientBoostingClassifier
        if kind == "classification"
        else HistGradientBoostingRegressor
    )
    if cat:
        kw["categorical_features"] = list(range(len(cat)))
    return cls(early_stopping=True, random_state=0, **kw)


def _plans(task: Any, memory: Any = None) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    """Baseline name -> (pipeline with a ``model`` step, grid)."""
    mods, kind = task.modalities, task.kind
    text = _columns(mods, "text")
    image = _columns(mods, "image")
    audio = _columns(mods, "audio")
    num = _columns(mods, "numeric")
    cat = _columns(mods, "categorical")
    rate = int(task.info.get("sample_rate", 16000))
    plans: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    placeholder = _hgb(kind)
    if text:
        plans["text"] = (
            Pipeline([("features", _text_features(text)), ("model", placeholder)], memory=memory),
            _linear_grid(kind),
        )
    if image:
        grid = _linear_grid(kind, svm=False)
        grid.append({"model": [_hgb(kind, max_iter=100)], "model__learning_rate": [0.1]})
        plans["image"] = (
            Pipeline(
                [("features", _dense(_images_to_features, image)), ("model", placeholder)],
                memory=memory,
            ),
            grid,
        )
    if audio:
        plans["audio"] = (
            Pipeline(
                [
                    ("features", _dense(_audio_to_features, audio, sample_rate=rate)),
                    ("model", placeholder),
                ],
                memory=memory,
            ),
            _linear_grid(kind, svm=False),
        )
    if num or cat:
        plans["tabular"] = (
            Pipeline(
                [("features", _tabular_ordinal(cat, num)), ("model", _hgb(kind, cat))],
                memory=memory,
            ),
            [{"model__learning_rate": [0.05, 0.1], "model__max_leaf_nodes": [15, 31]}],
        )
    parts: list[Any] = []
    if text:
        parts.append(_text_features(text))
    if image:
        parts.append(make_pipeline(_dense(_images_to_features, image), UnitBlock()))
    if audio:
        parts.append(
            make_pipeline(_dense(_audio_to_features, audio, sample_rate=rate), UnitBlock())
        )
    if num or cat:
        parts.append(_tabular_linear(mods))
    if len(parts) > 1:
        plans["concat"] = (
            Pipeline([("features", make_union(*parts)), ("model", placeholder)], memory=memory),
            _linear_grid(kind),
        )
    if len(parts) > 1 or text:  # the same features, non-linear: the text via SVD
        trees: list[Any] = []
        if num or cat:  # first: the categories are columns 0..len(cat)-1
            trees.append(_tabular_ordinal(cat, num))
        if text:
            svd = TruncatedSVD(SVD_COMPONENTS, random_state=0)
            trees.append(make_pipeline(_text_features(text), svd))
        if image:
            trees.append(_dense(_images_to_features, image))
        if audio:
            trees.append(_dense(_audio_to_features, audio, sample_rate=rate))
        boosted = [("features", make_union(*trees)), ("model", _hgb(kind, cat))]
        plans["boosted"] = (
            Pipeline(boosted, memory=memory),
            [{"model__learning_rate": [0.05, 0.1]}],
        )
    return plans


def _tabular_ordinal(cat: list[str], num: list[str]) -> ColumnTransformer:
    """Categories as ordinal codes (first), numbers as they are: for gradient boosting."""
    unknown = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return ColumnTransformer([("cat", unknown, cat), ("num", "passthrough", num)])


def baseline_names(task: Any) -> list[str]:
    """The baselines that apply to ``task``, in the order :func:`run_baselines` fits them."""
    return list(_plans(task))


def run_baselines(
    task: Any, *, only: list[str] | None = None, log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Tune, fit and score every baseline that applies to ``task``.

    Parameters
    ----------
    task : _quality_tasks.Task
    only : list of str, optional
        Names to run (of text, image, audio, tabular, concat, boosted); default all.
    log : callable
        Gets one line per finished baseline.

    Returns
    -------
    dict
        ``{name: {"accuracy"/"macro_f1" or "r2"/"mae": float, "fit_s": float,
        "best": str (the chosen setting)}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    cv = (
        StratifiedKFold(3, shuffle=True, random_state=0)
        if task.kind == "classification"
        else KFold(3, shuffle=True, random_state=0)
    )
    scoring = "accuracy" if task.kind == "classification" else "r2"
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as cache:
        plans = _plans(task, memory=joblib.Memory(cache, verbose=0))
        for name, (pipe, grid) in plans.items():
            if only is not None and name not in only:
                continue
            start = time.perf_counter()
            search = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, n_jobs=1)
            with threadpool_limits(1), warnings.catch_warnings():
                # one thread for OpenMP/BLAS too (the cores are shared); LinearSVC at
                # large C may stop at its iteration cap, which the search then judges
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.filterwarnings("ignore", message="Persisting input arguments")
                search.fit(task.X_train, task.y_train)
            seconds = time.perf_counter() - start
            out[name] = _score(task, search, seconds)
            score = ", ".join(f"{k} {v:.3f}" for k, v in out[name].items() if k != "best")
            log(f"  {task.name} {name:8s} {score}  {out[name]['best']}")
    return out


def _score(task: Any, search: GridSearchCV, seconds: float) -> dict[str, Any]:
    with threadpool_limits(1):
        pred = search.predict(task.X_test)
    best = {k: (type(v).__name__ if k == "model" else v) for k, v in search.best_params_.items()}
    return {**metrics(task.kind, task.y_test, pred), "fit_s": seconds, "best": str(best)}
