"""Piecewise-linear encoding of numbers: a linear model on it bends at quantiles."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mmsk")
class PiecewiseLinear(keras.layers.Layer):
    """Each number as ``bins`` values, one per interval between its quantiles.

    Takes rows of numbers (N, d) and returns (N, d * bins).  Column ``j``'s
    edges ``e_0 < e_1 < ... `` are quantiles of the column (set by
    :meth:`adapt`); its value ``x`` gives, for each interval ``t``, how far
    ``x`` has crossed it: ``clip((x - e_{t-1}) / (e_t - e_{t-1}), 0, 1)``
    (the piecewise-linear encoding of Gorishniy et al., 2022).  A linear model
    on these values is a continuous function of each number that bends at the
    quantiles (an additive model, as a tree ensemble fits one shape per
    number), and is flat beyond the edges seen in training.  Where quantiles
    tie (counts that are mostly 0, a 0/1 column) the column has fewer
    intervals and the rest of its values are 0.  The edges are weights: they
    are saved with the model.

    Parameters
    ----------
    bins : int, default=8
        Intervals per column (at most).

    Examples
    --------
    >>> import numpy as np
    >>> layer = PiecewiseLinear(bins=2)
    >>> layer.adapt(np.array([[0.0], [1.0], [2.0], [4.0]]))  # edges 0, 1.5, 4
    >>> np.asarray(layer(np.array([[0.75], [3.0], [9.0]]))).astype(float).round(3).tolist()
    [[0.5, 0.0], [1.0, 0.6], [1.0, 1.0]]
    """

    def __init__(self, bins: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"Expected a positive integer. Received: bins={bins!r}")
        self.bins = bins

    def build(self, input_shape: Any) -> None:
        columns = int(input_shape[-1])
        start = np.tile(np.arange(self.bins + 1, dtype="float32"), (columns, 1))
        self.edges = self.add_weight(shape=(columns, self.bins + 1), trainable=False,
                                     initializer=keras.initializers.Constant(start),
                                     name="edges")  # fmt: skip

    def adapt(self, x: Any) -> None:
        """Set each column's edges to its quantiles in ``x`` (non-finite values left out)."""
        x = np.asarray(x, dtype="float64").reshape(len(x), -1)
        if not self.built:
            self.build(x.shape)
        levels = np.linspace(0.0, 1.0, self.bins + 1)
        edges = np.asarray(self.edges.numpy(), dtype="float64")
        for j in range(x.shape[1]):
            seen = x[:, j][np.isfinite(x[:, j])]
            if not len(seen):
                continue
            unique = np.unique(np.quantile(seen, levels))
            edges[j] = np.concatenate([unique, np.full(self.bins + 1 - len(unique), unique[-1])])
        self.edges.assign(edges.astype("float32"))

    def call(self, x: Any) -> Any:
        x = ops.expand_dims(ops.cast(x, "float32"), -1)  # (N, d, 1)
        low, high = self.edges[:, :-1], self.edges[:, 1:]  # (d, bins)
        width = high - low
        real = ops.cast(width > 0, "float32")
        share = ops.clip((x - low) / ops.where(width > 0, width, 1.0), 0.0, 1.0) * real
        return ops.reshape(share, (-1, self.edges.shape[0] * self.bins))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], int(input_shape[-1]) * self.bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bins": self.bins}
