"""Layers that carry padding and missing-modality masks."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _check_rate(rate: float, name: str) -> float:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"Expected a float in [0, 1). Received: {name}={rate}")
    return float(rate)


@keras.saving.register_keras_serializable(package="mmsk")
class TokenMask(keras.layers.Layer):
    """Boolean mask of non-padding token ids (id 0 is padding).

    The first position is always kept so that an empty text still has one
    position to attend to; a missing text is handled by the presence mask.

    Examples
    --------
    >>> import numpy as np
    >>> TokenMask()(np.array([[5, 2, 0], [0, 0, 0]])).numpy().tolist()
    [[True, True, False], [True, False, False]]
    """

    def call(self, ids: Any) -> Any:
        mask = ops.not_equal(ids, 0)
        first = ops.concatenate([ops.ones_like(mask[:, :1]), ops.zeros_like(mask[:, 1:])], axis=1)
        return ops.logical_or(mask, ops.cast(first, "bool"))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="mmsk")
class MaskedMeanPool(keras.layers.Layer):
    """Mean of a sequence (N, T, d) over the positions where ``mask`` (N, T) is True.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> MaskedMeanPool()(x, np.array([[True, True, False]])).numpy().tolist()
    [[2.0]]
    """

    def call(self, x: Any, mask: Any = None) -> Any:
        if mask is None:
            return ops.mean(x, axis=1)
        m = ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

    def compute_mask(self, x: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="mmsk")
class ApplyPresence(keras.layers.Layer):
    """Zero the encoding of rows whose modality ``index`` is missing.

    Takes ``x`` (N, d) or (N, T, d) and the presence matrix (N, K); returns
    ``x * present[:, index]``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[1.0, 0.0], [1.0, 1.0]], "float32")
    >>> ApplyPresence(index=1)(np.ones((2, 3), "float32"), p).numpy()
    array([[0., 0., 0.],
           [1., 1., 1.]], dtype=float32)
    """

    def __init__(self, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"Expected a non-negative integer. Received: index={index!r}")
        self.index = index
        self.supports_masking = True  # masks are explicit in mmsk; implicit ones are dropped

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def call(self, x: Any, present: Any) -> Any:
        p = ops.cast(present[:, self.index], x.dtype)
        return x * ops.reshape(p, (-1,) + (1,) * (len(x.shape) - 1))

    def compute_output_shape(self, x_shape: Any, present_shape: Any = None) -> Any:
        return x_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="mmsk")
class SequenceMask(ApplyPresence):
    """Key mask (N, T) of a modality's tokens: its token mask AND its presence.

    Takes the token sequence (N, T, d), the presence matrix (N, K) and
    optionally a token mask (N, T).

    Examples
    --------
    >>> import numpy as np
    >>> seq, p = np.zeros((2, 3, 4), "float32"), np.array([[1.0], [0.0]], "float32")
    >>> SequenceMask(index=0)(seq, p, np.array([[1, 1, 0], [1, 0, 0]], bool)).numpy().tolist()
    [[True, True, False], [False, False, False]]
    """

    def call(self, seq: Any, present: Any, token_mask: Any = None) -> Any:
        keep = ops.greater(present[:, self.index : self.index + 1], 0.0)
        full = ops.ones(ops.shape(seq)[:2], dtype="bool")
        mask = full if token_mask is None else ops.cast(token_mask, "bool")
        return ops.logical_and(mask, keep)

    def compute_output_shape(
        self, seq_shape: Any, present_shape: Any = None, token_mask_shape: Any = None
    ) -> Any:
        return tuple(seq_shape[:2])


@keras.saving.register_keras_serializable(package="mmsk")
class ModalityDropout(keras.layers.Layer):
    """Hide whole modalities at random while training.

    Takes the presence matrix (N, K) of K modalities and, in training only,
    drops each present modality with probability ``rate``; a row never loses
    all of them (if every one was dropped it keeps what it had).  The model
    thereby learns to predict from any subset, as it must when a modality is
    missing at predict time.

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of hiding a modality of a row.
    seed : int, optional
        Seed of the random draws.

    Examples
    --------
    >>> import numpy as np
    >>> layer = ModalityDropout(0.5, seed=0)
    >>> p = np.ones((4, 3), "float32")
    >>> bool((layer(p, training=False).numpy() == p).all())
    True
    >>> bool((layer(p, training=True).numpy().sum(axis=1) >= 1).all())
    True
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = _check_rate(rate, "rate")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, present: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0.0:
            return present
        keep = keras.random.uniform(ops.shape(present), seed=self.seed_generator) >= self.rate
        dropped = present * ops.cast(keep, present.dtype)
        empty = ops.sum(dropped, axis=1, keepdims=True) == 0
        return ops.where(empty, present, dropped)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
