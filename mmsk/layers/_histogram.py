"""Colour histograms of images: a position-free summary for the linear path."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mmsk")
class ColourHistogram(keras.layers.Layer):
    """Per channel, the share of pixels in each of ``bins`` equal-width bins.

    Takes images (N, H, W, C) and returns (N, C * bins).  The bins of a
    channel span ``[low, high]`` (values outside fall in the end bins);
    :meth:`adapt` sets them from data, so the layer suits any pixel scaling.
    The bounds are weights: they are saved with the model.

    Parameters
    ----------
    bins : int, default=8
        Bins per channel.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.zeros((1, 2, 2, 1), "float32")
    >>> images[0, 0, 0, 0] = 1.0
    >>> layer = ColourHistogram(bins=2)
    >>> layer.adapt(images)
    >>> layer(images).numpy().tolist()
    [[0.75, 0.25]]
    """

    def __init__(self, bins: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"Expected a positive integer. Received: bins={bins!r}")
        self.bins = bins

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[-1])
        self.low = self.add_weight(shape=(channels,), initializer="zeros", trainable=False,
                                   name="low")  # fmt: skip
        self.high = self.add_weight(shape=(channels,), initializer="ones", trainable=False,
                                    name="high")  # fmt: skip

    def adapt(self, images: Any) -> None:
        """Set each channel's bounds to the lowest and highest value in ``images``."""
        images = np.asarray(images, dtype="float32")
        if not self.built:
            self.build(images.shape)
        flat = images.reshape(-1, images.shape[-1])
        if len(flat):
            self.low.assign(flat.min(axis=0))
            self.high.assign(flat.max(axis=0))

    def call(self, images: Any) -> Any:
        span = ops.maximum(self.high - self.low, 1e-6)
        position = ops.floor((ops.cast(images, "float32") - self.low) / span * self.bins)
        index = ops.cast(ops.clip(position, 0, self.bins - 1), "int32")
        channels = images.shape[-1]
        index = index + ops.arange(channels, dtype="int32") * self.bins  # channel c: c*bins+
        pixels = images.shape[1] * images.shape[2]
        flat = ops.reshape(index, (-1, pixels * channels))
        counts = ops.bincount(flat, minlength=channels * self.bins)  # per row
        return ops.cast(counts, "float32") / float(pixels)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], int(input_shape[-1]) * self.bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bins": self.bins}
