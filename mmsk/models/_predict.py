"""Prediction: the fitted network's output (or fused embedding) for rows, streamed.

Small batches skip ``Model.predict``'s per-call set-up through one cached
``tf.function`` per model; raw rows are decoded and predicted a chunk at a
time, so memory stays flat however many files a column names.  The caches
live off the estimator (its ``__dict__`` must not change in predict).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from mmsk import _backend
from mmsk._batch import ModalityBatch
from mmsk.models._build import FUSED
from mmsk.models._checks import check_batch, to_batch

SMALL_BATCH = 2048  # rows up to which predict calls the compiled model directly
STREAM = 256  # rows decoded at a time: 256 RGB images of 64x64 are 12 MB of float32

# Per-model caches kept off the estimator.
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EMBEDDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_call(model: Any) -> Any:
    """``model(x, training=False)`` as a cached tf.function.

    Thread-safe: threads that miss the cache at once each make a function, but
    ``setdefault`` (atomic) hands them all the first one stored, so the model is
    traced once and every thread runs the same graph.
    """
    fn = _CALLS.get(model)
    if fn is None:
        tf = _backend.tf()
        ref = weakref.ref(model)  # a strong reference would keep the cache entry alive forever

        def call(x: Any) -> Any:
            return ref()(x, training=False)  # type: ignore[misc]

        fn = _CALLS.setdefault(model, tf.function(call, reduce_retracing=True))
    return fn


def embedding_model(model: Any) -> Any:
    """A model sharing ``model``'s layers that outputs the fused embedding (layer ``fused``)."""
    embedder = _EMBEDDERS.get(model)
    if embedder is None:
        keras = _backend.keras()
        embedder = keras.Model(model.inputs, model.get_layer(FUSED).output)
        embedder = _EMBEDDERS.setdefault(model, embedder)
    return embedder


def embedding_width(model: Any) -> int:
    """The number of columns of the fused embedding ``transform`` returns."""
    return int(model.get_layer(FUSED).output.shape[-1])


def forward(estimator: Any, X: Any, *, embedding: bool = False) -> np.ndarray:
    """The fitted network's output (or fused embedding) for rows of ``X``.

    Parameters
    ----------
    estimator : BaseMultimodal
        A fitted estimator (``model_``, ``modalities_``, ``specs_``,
        ``preprocessor_``).
    X : DataFrame, ModalityBatch or 2-D array
        Rows in the form given to ``fit``.  Raw rows (a DataFrame or a 2-D
        array) are preprocessed and predicted ``STREAM`` rows at a time.
    embedding : bool, default=False
        Return the fused embedding instead of the prediction.

    Returns
    -------
    ndarray of shape (N, n_outputs) or (N, d)

    Notes
    -----
    Nothing here writes to the estimator or the model, so threads may
    predict at once.
    """
    check_is_fitted(estimator, "model_")
    model = embedding_model(estimator.model_) if embedding else estimator.model_

    def run(batch: ModalityBatch) -> np.ndarray:
        check_batch(estimator, batch)
        inputs = batch.to_inputs(estimator.modalities_)
        if len(batch) > SMALL_BATCH:
            return np.asarray(model.predict(inputs, batch_size=256, verbose=0))
        # Small batches: one compiled call, without Model.predict's per-call set-up.
        return np.asarray(compiled_call(model)(inputs))

    raw = isinstance(X, pd.DataFrame) or (isinstance(X, np.ndarray) and X.ndim == 2)
    if not raw or len(X) <= STREAM or getattr(estimator, "preprocessor_", None) is None:
        return run(to_batch(estimator, X, fit=False))
    rows = X.iloc if isinstance(X, pd.DataFrame) else X
    parts = [
        run(to_batch(estimator, rows[start : start + STREAM], fit=False))
        for start in range(0, len(X), STREAM)
    ]
    return np.concatenate(parts)
