"""TransformerBlock: softmax(QK^T / sqrt(d)) V attention plus a feed-forward network."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mmsk.layers._masking import _check_rate
from mmsk.layers._tokens import _check_positive


@keras.saving.register_keras_serializable(package="mmsk")
class TransformerBlock(keras.layers.Layer):
    """One pre-norm Transformer encoder block with a key padding mask.

    ``y = x + MHA(LN(x))`` then ``y + FFN(LN(y))``, where multi-head
    attention computes softmax(QK^T / sqrt(d_head)) V per head
    (:class:`keras.layers.MultiHeadAttention`).  Positions whose ``mask`` is
    False are never attended to.

    Parameters
    ----------
    num_heads : int
        Attention heads.
    ff_dim : int
        Hidden width of the feed-forward network.
    dropout : float, default=0.0
        Dropout on attention weights and sub-layer outputs.

    Examples
    --------
    >>> import numpy as np
    >>> block = TransformerBlock(num_heads=2, ff_dim=16)
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    >>> block(x, mask=np.array([[True] * 5, [True, True, False, False, False]])).shape
    TensorShape([2, 5, 8])
    """

    def __init__(self, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = _check_positive(num_heads, "num_heads")
        self.ff_dim = _check_positive(ff_dim, "ff_dim")
        self.dropout = _check_rate(dropout, "dropout")
        self.supports_masking = True

    def build(self, input_shape: Any) -> None:
        d = input_shape[-1]
        if d % self.num_heads:
            raise ValueError(
                f"Expected the model width to be divisible by num_heads. "
                f"Received: width={d}, num_heads={self.num_heads}"
            )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, d // self.num_heads, dropout=self.dropout
        )
        self.attention.build(input_shape, input_shape)
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm1.build(input_shape)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.norm2.build(input_shape)
        self.ff1 = keras.layers.Dense(self.ff_dim, activation="gelu")
        self.ff1.build(input_shape)
        self.ff2 = keras.layers.Dense(d)
        self.ff2.build((*input_shape[:-1], self.ff_dim))
        self.drop = keras.layers.Dropout(self.dropout)

    def call(self, x: Any, mask: Any = None, training: bool | None = None) -> Any:
        attention_mask = None
        if mask is not None:
            m = ops.cast(mask, "bool")
            attention_mask = ops.logical_and(m[:, :, None], m[:, None, :])
        h = self.norm1(x)
        h = self.attention(h, h, attention_mask=attention_mask, training=training)
        x = x + self.drop(h, training=training)
        h = self.ff2(self.ff1(self.norm2(x)))
        return x + self.drop(h, training=training)

    def compute_mask(self, x: Any, mask: Any = None) -> None:
        return None  # mmsk passes masks explicitly

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }
