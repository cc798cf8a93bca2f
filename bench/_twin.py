"""The hand-written Keras twin of mmsk's default network, for ``bench/quality.py``.

What ``MultimodalClassifier(random_state=seed)`` / ``MultimodalRegressor``
build with every default (as of issue 13: ``mmsk/models/_base.py``,
``_build.py``, ``_params.py`` ``DEFAULT_ENCODERS``, ``mmsk/components/_bag.py``,
``_encoders.py``, ``_fusions.py``, ``mmsk/preprocessing/_modality.py``
``default_transformer``), written in plain Keras with simple preprocessing:

* image column: PIL bilinear resize to the median training image, at most 64 a
  side and never up, RGB, pixels / 255; Conv2D(16, 3, relu, same) + MaxPool(2) +
  Conv2D(32) + MaxPool(2) + global average pool;
* text column: lower case, punctuation to spaces, ``keras.layers.TextVectorization``
  (20,000 tokens, padded to the 95th percentile of the training texts' token
  counts), then the ids of hashed word bigrams appended (NumPy, mmsk's hash);
  Embedding(64) averaged over the non-padding ids (a bag of n-grams);
* audio column: log-mel spectrogram (40 bins, 25 ms frames every 10 ms, one
  second) at the task's own sample rate (mmsk's default featurizer assumes
  16 kHz for arrays), standardised per bin; Conv1D(32, 3) + MaxPool(2) +
  Conv1D(64) + MaxPool(2) + global average pool;
* all numeric columns together: median imputation + standardisation;
  Dense(32, relu); all categorical columns together: one-hot; Dense(32, relu);
* fusion: concatenation (mmsk also concatenates a presence flag per
  modality; with no missing cells they are constant and left out here);
* head: Dense(64, relu) + Dropout(0.1) + Dense(outputs), plus the wide path: a
  linear model per column of its raw input (bag of n-grams, pixels pooled to at
  most 16x16, mean spectrum, the numbers beside a one-hot of each one's quantile
  bin (8 bins; mmsk reads them piecewise-linear between the same quantiles), or
  one-hot categories), added to the logits; softmax with sparse categorical
  cross-entropy, or the standardised target with mean squared error;
* AdamW(1e-3), at most 100 epochs, batch 32, shuffled, a stratified 10 % held out
  for early stopping (patience 5, best weights restored),
  ``keras.utils.set_random_seed``.

When mmsk's defaults change, change :func:`fit_predict_twin` to match them
(and say so in bench/README.md): it is one function on purpose.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

IMAGE_SIZE = 64
MAX_TOKENS = 20000
N_MELS = 40


def _image_size(cells: pd.Series) -> tuple[int, int]:
    """The median image's size, scaled down to at most IMAGE_SIZE a side (never up)."""
    h = float(np.median([np.asarray(c).shape[0] for c in cells]))
    w = float(np.median([np.asarray(c).shape[1] for c in cells]))
    scale = min(1.0, IMAGE_SIZE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _images(cells: pd.Series, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    out = []
    for cell in cells:
        pil = Image.fromarray(np.asarray(cell, np.uint8)).convert("RGB")
        out.append(np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR)))
    return np.stack(out).astype(np.float32) / 255.0


def _bigram_ids(ids: np.ndarray, vocab: int, buckets: int) -> np.ndarray:
    """Token ids followed by hashed ids of adjacent pairs (0 where a pair touches padding)."""
    a, b = ids[:, :-1].astype(np.int64), ids[:, 1:].astype(np.int64)
    pair = (((a * 1_000_003 + b) % 2**40) * 3) % buckets + vocab
    pair = np.where((a > 0) & (b > 0), pair, 0)
    return np.concatenate([ids, pair], axis=1).astype(np.int32)


def _log_mel(cells: pd.Series, rate: int) -> np.ndarray:
    import tensorflow as tf

    waves = np.zeros((len(cells), rate), np.float32)
    for i, cell in enumerate(cells):
        clip = np.asarray(cell, np.float32)[:rate]
        waves[i, : len(clip)] = clip
    win, hop = round(0.025 * rate), round(0.010 * rate)
    fft = 1 << (win - 1).bit_length()
    stft = tf.signal.stft(waves, win, hop, fft_length=fft)
    mel = tf.signal.linear_to_mel_weight_matrix(N_MELS, fft // 2 + 1, rate, 0.0, rate / 2)
    return np.asarray(tf.math.log(tf.tensordot(tf.abs(stft), mel, 1) + 1e-6).numpy())


def fit_predict_twin(task: Any, seed: int = 0, *, epochs: int = 100) -> tuple[np.ndarray, float]:
    """Preprocess, build, train the twin on ``task``'s training split; predict its test split.

    Parameters
    ----------
    task : _quality_tasks.Task
        ``X_train``, ``y_train``, ``X_test``, ``modalities``, ``kind``, ``info``.
    seed : int, default=0
        Seed of Keras (weights, shuffling, dropout).
    epochs : int, default=100
        Most training epochs (mmsk's default); early stopping on a 10 % hold-out
        with patience 5 restores the best epoch's weights.

    Returns
    -------
    (ndarray, float)
        Predictions for ``task.X_test`` (class labels, or values on the
        target's scale) and the seconds spent preprocessing and training.
    """
    import keras
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (
        KBinsDiscretizer,
        LabelEncoder,
        OneHotEncoder,
        StandardScaler,
    )

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    mods, train, test = task.modalities, task.X_train, task.X_test
    rate = int(task.info.get("sample_rate", 16000))
    x_tr: dict[str, np.ndarray] = {}
    x_te: dict[str, np.ndarray] = {}
    inputs, vectors, wide = [], [], []
    n_out = len(np.unique(task.y_train)) if task.kind == "classification" else 1

    def add_input(name: str, a: np.ndarray, b: np.ndarray, dtype: str = "float32") -> Any:
        x_tr[name], x_te[name] = a, b
        inp = keras.Input(shape=a.shape[1:], dtype=dtype, name=name)
        inputs.append(inp)
        return inp

    for col, kind in mods.items():
        if kind == "image":
            size = _image_size(train[col])
            inp = x = add_input(col, _images(train[col], size), _images(test[col], size))
            for width in (16, 32):
                x = L.Conv2D(width, 3, padding="same", activation="relu")(x)
                if x.shape[1] >= 2:
                    x = L.MaxPooling2D(2)(x)
            vectors.append(L.GlobalAveragePooling2D()(x))
            pool = max(1, -(-max(size) // 16))  # wide: pixels pooled to at most 16x16
            w = L.AveragePooling2D(pool, padding="same")(inp) if pool > 1 else inp
            wide.append(L.Dense(n_out, kernel_initializer="zeros")(L.Flatten()(w)))
        elif kind == "text":
            texts_tr, texts_te = train[col].astype(str), test[col].astype(str)
            texts_tr = texts_tr.str.lower().str.replace(r"[^\w\s]|_", " ", regex=True)
            texts_te = texts_te.str.lower().str.replace(r"[^\w\s]|_", " ", regex=True)
            counts = [len(t.split()) for t in texts_tr]
            length = max(1, math.ceil(np.percentile(counts, 95)))
            vec = L.TextVectorization(max_tokens=MAX_TOKENS, output_sequence_length=length)
            vec.adapt(texts_tr.to_numpy())
            vocab = vec.vocabulary_size()
            buckets = min(max(2 * vocab, 1024), 65536)
            a = _bigram_ids(np.asarray(vec(texts_tr.to_numpy())), vocab, buckets)
            b = _bigram_ids(np.asarray(vec(texts_te.to_numpy())), vocab, buckets)
            x = add_input(col, a, b, dtype="int32")
            # bag of words and bigrams: the mean embedding over non-padding ids
            vectors.append(
                L.GlobalAveragePooling1D()(L.Embedding(vocab + buckets, 64, mask_zero=True)(x))
            )
            wide.append(
                L.GlobalAveragePooling1D()(
                    L.Embedding(
                        vocab + buckets, n_out, mask_zero=True, embeddings_initializer="zeros"
                    )(x)
                )
            )
        elif kind == "audio":
            a, b = _log_mel(train[col], rate), _log_mel(test[col], rate)
            mean, std = a.mean(axis=(0, 1)), a.std(axis=(0, 1)) + 1e-6
            inp = x = add_input(col, (a - mean) / std, (b - mean) / std)
            wide.append(
                L.Dense(n_out, kernel_initializer="zeros")(L.GlobalAveragePooling1D()(inp))
            )
            for width in (32, 64):
                x = L.Conv1D(width, 3, padding="same", activation="relu")(x)
                x = L.MaxPooling1D(2)(x)
            vectors.append(L.GlobalAveragePooling1D()(x))
    num = [c for c, k in mods.items() if k == "numeric"]
    cat = [c for c, k in mods.items() if k == "categorical"]
    for name, cols, prep in (
        ("numeric", num, make_pipeline(SimpleImputer(strategy="median"), StandardScaler())),
        ("categorical", cat, OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ):
        if cols:
            a = np.asarray(prep.fit_transform(train[cols]), np.float32)
            b = np.asarray(prep.transform(test[cols]), np.float32)
            x = add_input(name, a, b)
            vectors.append(L.Dense(32, activation="relu")(x))
            if name == "numeric":  # the wide path also reads each number's quantile bin
                bins = KBinsDiscretizer(8, encode="onehot-dense", strategy="quantile",
                                        subsample=None)  # fmt: skip
                with warnings.catch_warnings():  # tied quantiles: fewer bins, said in a warning
                    warnings.simplefilter("ignore", UserWarning)
                    a, b = bins.fit_transform(a), bins.transform(b)
                x = L.Concatenate()([x, add_input("numeric_bins", a, b.astype(np.float32))])
            wide.append(L.Dense(n_out, kernel_initializer="zeros")(x))

    fused = vectors[0] if len(vectors) == 1 else L.Concatenate()(vectors)
    h = L.Dropout(0.1, seed=seed)(L.Dense(64, activation="relu")(fused))
    if task.kind == "classification":
        labels = LabelEncoder().fit(task.y_train)
        y = labels.transform(task.y_train)
        out = L.Activation("softmax")(L.Add()([L.Dense(n_out)(h), *wide]))
        loss = "sparse_categorical_crossentropy"
    else:
        mu, sd = float(np.mean(task.y_train)), float(np.std(task.y_train)) or 1.0
        y = ((np.asarray(task.y_train, np.float64) - mu) / sd).astype(np.float32)
        out = L.Add()([L.Dense(1)(h), *wide])
        loss = "mean_squared_error"
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss)
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    strat = y if task.kind == "classification" else None
    fit_rows, val = train_test_split(rows, test_size=0.1, random_state=seed, stratify=strat)
    stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    model.fit({k: v[fit_rows] for k, v in x_tr.items()}, y[fit_rows],
              validation_data=({k: v[val] for k, v in x_tr.items()}, y[val]),
              epochs=epochs, batch_size=32, shuffle=True, verbose=0, callbacks=[stop])  # fmt: skip
    raw = model.predict(x_te, batch_size=256, verbose=0)
    seconds = time.perf_counter() - start
    if task.kind == "classification":
        return labels.inverse_transform(raw.argmax(axis=1)), seconds
    return raw[:, 0] * sd + mu, seconds
