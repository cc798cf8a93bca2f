"""Pooling over modalities, weighted by which modalities are present."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmsk")
class PresenceSoftmaxPool(keras.layers.Layer):
    """Gate K modality vectors: softmax of learned scores over present modalities.

    Inputs are ``vectors`` (N, K, d) and ``present`` (N, K); a Dense layer
    scores each vector, missing modalities get no weight, and the output is
    the weighted sum (N, d).  Rows with no modality present give zeros.

    Examples
    --------
    >>> import numpy as np
    >>> pool = PresenceSoftmaxPool()
    >>> v = np.stack([np.ones((2, 4)), 3 * np.ones((2, 4))], axis=1).astype("float32")
    >>> out = pool(v, np.array([[1, 1], [0, 1]], "float32")).numpy()
    >>> out.shape, out[1].tolist()
    ((2, 4), [3.0, 3.0, 3.0, 3.0])
    """

    def build(self, vectors_shape: Any, present_shape: Any = None) -> None:
        self.score = keras.layers.Dense(1)
        self.score.build(vectors_shape)

    def call(self, vectors: Any, present: Any) -> Any:
        scores = ops.squeeze(self.score(vectors), -1)
        p = ops.cast(present, scores.dtype)
        scores = ops.where(p > 0, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1) * p
        weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-9)
        return ops.sum(vectors * weights[..., None], axis=1)

    def compute_output_shape(self, vectors_shape: Any, present_shape: Any = None) -> Any:
        return (vectors_shape[0], vectors_shape[-1])


@keras.saving.register_keras_serializable(package="mmsk")
class PresenceWeightedMean(keras.layers.Layer):
    """Mean of K modality outputs (N, K, d) over the present ones (N, K).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[[1.0], [5.0]]], "float32")
    >>> PresenceWeightedMean()(v, np.array([[0.0, 1.0]], "float32")).numpy().tolist()
    [[5.0]]
    """

    def call(self, vectors: Any, present: Any) -> Any:
        p = ops.cast(present, vectors.dtype)[..., None]
        return ops.sum(vectors * p, axis=1) / ops.maximum(ops.sum(p, axis=1), 1.0)

    def compute_output_shape(self, vectors_shape: Any, present_shape: Any = None) -> Any:
        return (vectors_shape[0], vectors_shape[-1])


@keras.saving.register_keras_serializable(package="mmsk")
class SplitHeads(keras.layers.Layer):
    """Late fusion: one linear head per modality slice of ``x``, averaged over present ones.

    ``x`` (N, sum(sizes)) is the concatenation of K modality vectors of widths
    ``sizes``; ``present`` is (N, K).  Each slice gets its own Dense head of
    ``n_outputs`` units and the heads' outputs are averaged over the present
    modalities.

    Parameters
    ----------
    sizes : list of int
        Width of each modality's slice.
    n_outputs : int
        Outputs of each head.

    Examples
    --------
    >>> import numpy as np
    >>> heads = SplitHeads([2, 3], 4)
    >>> heads(np.ones((5, 5), "float32"), np.ones((5, 2), "float32")).shape
    TensorShape([5, 4])
    """

    def __init__(self, sizes: list[int], n_outputs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not sizes or any(int(s) <= 0 for s in sizes):
            raise ValueError(f"Expected a list of positive widths. Received: sizes={sizes!r}")
        if int(n_outputs) <= 0:
            raise ValueError(f"Expected a positive integer. Received: n_outputs={n_outputs!r}")
        self.sizes = [int(s) for s in sizes]
        self.n_outputs = int(n_outputs)
        self.heads = [keras.layers.Dense(self.n_outputs) for _ in self.sizes]
        self.mean = PresenceWeightedMean()

    def build(self, x_shape: Any, present_shape: Any = None) -> None:
        for head, size in zip(self.heads, self.sizes, strict=True):
            head.build((None, size))

    def call(self, x: Any, present: Any) -> Any:
        outputs, start = [], 0
        for head, size in zip(self.heads, self.sizes, strict=True):
            outputs.append(head(x[:, start : start + size]))
            start += size
        return self.mean(ops.stack(outputs, axis=1), present)

    def compute_output_shape(self, x_shape: Any, present_shape: Any = None) -> Any:
        return (x_shape[0], self.n_outputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sizes": self.sizes, "n_outputs": self.n_outputs}
