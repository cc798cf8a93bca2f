"""Layers that make or label token sequences."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _check_positive(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Expected a positive integer. Received: {name}={value!r}")
    return value


@keras.saving.register_keras_serializable(package="mmsk")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned position embedding.

    Parameters
    ----------
    vocabulary_size : int
        Number of token ids.
    sequence_length : int
        Maximum sequence length.
    embedding_dim : int
        Width of the embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> TokenAndPositionEmbedding(10, 4, 8)(np.array([[1, 2, 0, 0]])).shape
    TensorShape([1, 4, 8])
    """

    def __init__(
        self, vocabulary_size: int, sequence_length: int, embedding_dim: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = _check_positive(vocabulary_size, "vocabulary_size")
        self.sequence_length = _check_positive(sequence_length, "sequence_length")
        self.embedding_dim = _check_positive(embedding_dim, "embedding_dim")
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim)
        self.position_embedding = keras.layers.Embedding(sequence_length, embedding_dim)

    def build(self, input_shape: Any) -> None:
        self.token_embedding.build(input_shape)
        self.position_embedding.build((self.sequence_length,))

    def call(self, ids: Any) -> Any:
        positions = ops.arange(ops.shape(ids)[-1])
        return self.token_embedding(ids) + self.position_embedding(positions)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape, self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "embedding_dim": self.embedding_dim,
        }


@keras.saving.register_keras_serializable(package="mmsk")
class ModalityTypeEmbedding(keras.layers.Layer):
    """Add a learned vector to every token, marking which modality it came from.

    Examples
    --------
    >>> import numpy as np
    >>> ModalityTypeEmbedding()(np.zeros((2, 5, 3), "float32")).shape
    TensorShape([2, 5, 3])
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, x: Any, mask: Any = None) -> None:
        return None

    def build(self, input_shape: Any) -> None:
        self.type_vector = self.add_weight(
            shape=(input_shape[-1],), initializer="random_normal", name="type_vector"
        )

    def call(self, x: Any) -> Any:
        return x + self.type_vector

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="mmsk")
class JoinTokens(keras.layers.Layer):
    """Join token sequences of several modalities behind one learned [CLS] token.

    Takes a list of sequences (N, T_i, d) and a list of their key masks
    (N, T_i); returns the joined sequence (N, 1 + sum T_i, d) and its mask,
    where the [CLS] position is always attended to (so a row with every
    modality missing still has one valid key).

    Examples
    --------
    >>> import numpy as np
    >>> seqs = [np.zeros((2, 3, 4), "float32"), np.zeros((2, 1, 4), "float32")]
    >>> masks = [np.ones((2, 3), bool), np.zeros((2, 1), bool)]
    >>> x, m = JoinTokens()(seqs, masks)
    >>> tuple(x.shape), m.numpy()[0].tolist()
    ((2, 5, 4), [True, True, True, True, False])
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, *args: Any, **kwargs: Any) -> None:
        return None

    def build(self, sequences_shape: Any, masks_shape: Any = None) -> None:
        self.token = self.add_weight(
            shape=(1, 1, sequences_shape[0][-1]), initializer="random_normal", name="cls_token"
        )

    def call(self, sequences: Any, masks: Any) -> Any:
        first = sequences[0]
        batch = ops.shape(first)[0]
        cls = ops.broadcast_to(ops.cast(self.token, first.dtype), (batch, 1, first.shape[-1]))
        joined = ops.concatenate([cls, *sequences], axis=1)
        cls_mask = ops.ones((batch, 1), dtype="bool")
        mask = ops.concatenate([cls_mask, *[ops.cast(m, "bool") for m in masks]], axis=1)
        return joined, mask

    def compute_output_shape(self, sequences_shape: Any, masks_shape: Any = None) -> Any:
        lengths = [s[1] for s in sequences_shape]
        total = None if None in lengths else 1 + sum(lengths)
        batch, width = sequences_shape[0][0], sequences_shape[0][-1]
        return (batch, total, width), (batch, total)
