"""Hashed n-gram ids for bag-of-n-grams text encoders."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

_PRIME = 1_000_003  # multiplier of the n-gram hash


@keras.saving.register_keras_serializable(package="mmsk")
class HashedNgrams(keras.layers.Layer):
    """Append hashed n-gram ids to a sequence of token ids (fastText's bigram trick).

    Input: token ids (N, L), 0 is padding.  Output: (N, L + (L-1) + ... ) ids:
    the tokens themselves, then for every n in ``2..ngrams`` one id per run of
    n adjacent tokens, ``vocabulary_size + hash(run) % buckets``.  A run that
    touches padding gets id 0 (padding) too, so an embedding of
    ``vocabulary_size + buckets`` rows and a mean over non-zero ids gives a
    bag of n-grams.

    Parameters
    ----------
    vocabulary_size : int
        Number of token ids (the first id of the n-gram buckets).
    buckets : int
        Number of hash buckets of the n-grams.
    ngrams : int, default=2
        Longest n-gram (1: the tokens alone).

    Examples
    --------
    >>> import numpy as np
    >>> out = HashedNgrams(10, 5)(np.array([[2, 3, 0]])).numpy()
    >>> out.shape, out[0, :3].tolist(), bool(10 <= out[0, 3] < 15), int(out[0, 4])
    ((1, 5), [2, 3, 0], True, 0)
    """

    def __init__(self, vocabulary_size: int, buckets: int, ngrams: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("vocabulary_size", vocabulary_size), ("buckets", buckets),
                            ("ngrams", ngrams)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Expected a positive integer. Received: {name}={value!r}")
        self.vocabulary_size = vocabulary_size
        self.buckets = buckets
        self.ngrams = ngrams

    def call(self, ids: Any) -> Any:
        ids = ops.cast(ids, "int64")
        parts = [ids]
        run, valid = ids, ops.not_equal(ids, 0)
        for n in range(2, self.ngrams + 1):
            if ids.shape[1] is not None and ids.shape[1] < n:
                break
            run = ops.mod(run[:, :-1] * _PRIME + ids[:, n - 1 :], 2**40)
            valid = ops.logical_and(valid[:, :-1], ops.not_equal(ids[:, n - 1 :], 0))
            hashed = ops.mod(run * (n + 1), self.buckets) + self.vocabulary_size
            parts.append(ops.where(valid, hashed, ops.zeros_like(hashed)))
        return ops.concatenate(parts, axis=1) if len(parts) > 1 else ids

    def compute_output_shape(self, input_shape: Any) -> Any:
        length = input_shape[1]
        if length is None:
            return (input_shape[0], None)
        total = sum(max(length - n + 1, 0) for n in range(1, self.ngrams + 1))
        return (input_shape[0], total)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "buckets": self.buckets, "ngrams": self.ngrams}  # fmt: skip
