"""A linear model on a bag of ids weighted as TF-IDF: the wide path of text."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mmsk")
class TfidfBag(keras.layers.Layer):
    """``units`` linear outputs of a row of ids, read as a TF-IDF vector.

    Each row of ids (0 is padding) is the vector scikit-learn's
    ``TfidfVectorizer(sublinear_tf=True)`` makes of a text: an id seen ``c``
    times in the row weighs ``(1 + log c) * idf[id]``, and the row is scaled
    to unit L2 norm.  The output is that vector times a ``(vocabulary_size,
    units)`` kernel (started at zero), so a linear model solved by
    scikit-learn on the same vectors can be written into it exactly
    (:meth:`tfidf` gives them).  :meth:`adapt` sets the smooth inverse
    document frequencies ``log((1 + n) / (1 + df)) + 1`` from training rows;
    they are weights, saved with the model.

    Parameters
    ----------
    vocabulary_size : int
        Number of ids (padding 0 included).
    units : int
        Number of outputs.

    Examples
    --------
    >>> import numpy as np
    >>> bag = TfidfBag(4, 1)
    >>> bag.adapt(np.array([[2, 3], [2, 0]]))  # id 2 in both rows, id 3 in one
    >>> w = np.asarray(bag.tfidf(np.array([[2, 3, 3]]))).astype(float)  # each position's share
    >>> w.round(3).tolist(), round(float(w[0, 0] ** 2 + (2 * w[0, 1]) ** 2), 6)  # unit norm
    ([[0.387, 0.461, 0.461]], 1.0)
    """

    def __init__(self, vocabulary_size: int, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("vocabulary_size", vocabulary_size), ("units", units)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Expected a positive integer. Received: {name}={value!r}")
        self.vocabulary_size = vocabulary_size
        self.units = units
        self.kernel = self.add_weight(shape=(vocabulary_size, units), initializer="zeros",
                                      name="kernel")  # fmt: skip
        self.idf = self.add_weight(shape=(vocabulary_size,), initializer="ones",
                                   trainable=False, name="idf")  # fmt: skip

    def adapt(self, ids: Any) -> None:
        """Set the inverse document frequencies from rows of ids (the training texts)."""
        ids = np.asarray(ids).reshape(len(ids), -1)
        n = len(ids)
        df = np.zeros(self.vocabulary_size)
        for start in range(0, n, 4096):  # each id once per row
            part = ids[start : start + 4096]
            rows = np.repeat(np.arange(len(part)), part.shape[1])
            pairs = np.unique(rows * self.vocabulary_size + part.ravel().clip(0, None))
            df += np.bincount(pairs % self.vocabulary_size, minlength=self.vocabulary_size)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        idf[0] = 0.0  # padding
        self.idf.assign(idf.astype("float32"))

    def tfidf(self, ids: Any) -> Any:
        """Each position's share of its row's TF-IDF vector, (N, L): summed over the
        positions of one id it is that id's entry; padding gets 0."""
        ids = ops.clip(ops.cast(ids, "int32"), 0, self.vocabulary_size - 1)
        counts = ops.bincount(ids, minlength=self.vocabulary_size)  # (N, V) per row
        count = ops.cast(ops.take_along_axis(counts, ids, axis=1), "float32")  # per position
        real = ops.cast(ops.not_equal(ids, 0), "float32")
        count = ops.maximum(count, 1.0)
        value = (1.0 + ops.log(count)) * ops.take(self.idf, ids) * real  # the id's entry
        norm = ops.sqrt(ops.sum(value * value / count, axis=1, keepdims=True))
        return value / count / ops.maximum(norm, 1e-12)

    def call(self, ids: Any) -> Any:
        weights = self.tfidf(ids)
        rows = ops.take(self.kernel, ops.clip(ops.cast(ids, "int32"), 0, self.vocabulary_size - 1),
                        axis=0)  # fmt: skip
        return ops.einsum("nl,nlu->nu", weights, rows)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "units": self.units}  # fmt: skip


@keras.saving.register_keras_serializable(package="mmsk")
class ColumnSlice(keras.layers.Layer):
    """Columns ``start`` to ``stop`` of a batch of rows: ``x[:, start:stop]``.

    Examples
    --------
    >>> import numpy as np
    >>> ColumnSlice(1, 3)(np.array([[5, 6, 7, 8]])).numpy().tolist()
    [[6, 7]]
    """

    def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= start < stop:
            raise ValueError(f"Expected 0 <= start < stop. Received: start={start}, stop={stop}")
        self.start, self.stop = int(start), int(stop)

    def call(self, x: Any) -> Any:
        return x[:, self.start : self.stop]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], self.stop - self.start, *input_shape[2:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}
