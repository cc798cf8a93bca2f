"""Keras layers of mmsk-vit, registered for ``.keras`` saving under the package ``mmsk_vit``.

Importing this module imports Keras.  The encoder and fusion modules import it
at their top, so loading the plugin through its entry point registers the
layers before mmsk loads a saved model that uses them.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmsk_vit")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned embedding per position to a token sequence (N, T, d).

    The table (T, d) is sized from the input when the layer is built, so the
    layer fits the patch grid of the images it is first called on.

    Parameters
    ----------
    stddev : float, default=0.02
        Standard deviation of the truncated-normal initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> layer = PositionEmbedding()
    >>> layer(np.zeros((2, 5, 8), "float32")).shape
    TensorShape([2, 5, 8])
    >>> tuple(layer.embedding.shape)
    (5, 8)
    """

    def __init__(self, stddev: float = 0.02, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not float(stddev) > 0:
            raise ValueError(f"Expected a positive float. Received: stddev={stddev!r}")
        self.stddev = float(stddev)

    def build(self, input_shape: Any) -> None:
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                f"Expected a token sequence (N, T, d) with known T and d. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.embedding = self.add_weight(
            shape=(input_shape[1], input_shape[2]),
            initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
            name="embedding",
        )

    def call(self, x: Any) -> Any:
        return x + ops.cast(self.embedding, x.dtype)[None, :, :]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="mmsk_vit")
class FeatureModulation(keras.layers.Layer):
    """FiLM: ``x * (1 + gamma) + beta``, applied only where the conditioning modality is present.

    Takes ``x``, ``gamma`` and ``beta`` (N, d) and the presence matrix
    (N, K).  Rows whose conditioning modality ``index`` is missing pass
    through unchanged (``gamma`` and ``beta`` are ignored for them).

    Parameters
    ----------
    index : int
        Column of the conditioning modality in the presence matrix.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((2, 3), "float32")
    >>> gamma, beta = np.full((2, 3), 1.0, "float32"), np.full((2, 3), 0.5, "float32")
    >>> present = np.array([[1.0], [0.0]], "float32")
    >>> FeatureModulation(index=0)(x, gamma, beta, present).numpy().tolist()
    [[2.5, 2.5, 2.5], [1.0, 1.0, 1.0]]
    """

    def __init__(self, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"Expected a non-negative integer. Received: index={index!r}")
        self.index = index

    def call(self, x: Any, gamma: Any, beta: Any, present: Any) -> Any:
        p = ops.cast(present[:, self.index : self.index + 1], x.dtype)
        return x * (1.0 + p * gamma) + p * beta

    def compute_output_shape(self, x_shape: Any, *shapes: Any) -> Any:
        return x_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index}
