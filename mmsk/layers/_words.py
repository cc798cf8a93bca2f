"""Word dropout by frequency: the network learns what an unseen word means."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

UNKNOWN = 1  # the out-of-vocabulary id of mmsk's TextVectorizer (0 is padding)


@keras.saving.register_keras_serializable(package="mmsk")
class UnknownWordDropout(keras.layers.Layer):
    """In training, replace word ids by the out-of-vocabulary id, rare words most often.

    A vocabulary learned from the training texts holds every training word,
    so without this the network never sees the out-of-vocabulary id 1 in
    training, and at prediction time an unseen word gets an untrained
    embedding and weight.  Here, at each training step, a word seen ``c``
    times in the training texts is replaced by id 1 with probability
    ``alpha / (alpha + c)`` (0.2 for a word seen once with ``alpha=0.25``,
    0.024 for one seen ten times), so the out-of-vocabulary id learns what a
    rare word means.  Outside training the ids pass unchanged.  :meth:`adapt`
    counts the words; the rates are weights, saved with the model.

    Parameters
    ----------
    vocabulary_size : int
        Number of token ids (padding 0 and out-of-vocabulary 1 included).
    alpha : float, default=0.25
        The smoothing count: larger drops more.
    seed : int, optional
        Seed of the draws.

    Examples
    --------
    >>> import numpy as np
    >>> layer = UnknownWordDropout(5, alpha=1.0, seed=0)
    >>> layer.adapt(np.array([[2, 3, 3, 0], [3, 4, 1, 0]]))
    >>> layer.rates.numpy().round(3).tolist()  # ids 2 and 4 seen once, 3 three times
    [0.0, 0.0, 0.5, 0.25, 0.5]
    >>> layer(np.array([[2, 3, 4]])).numpy().tolist()  # outside training: unchanged
    [[2, 3, 4]]
    """

    def __init__(self, vocabulary_size: int, alpha: float = 0.25, seed: int | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        if not isinstance(vocabulary_size, int) or vocabulary_size < 2:
            raise ValueError(
                f"Expected an integer >= 2. Received: vocabulary_size={vocabulary_size!r}"
            )
        if not float(alpha) >= 0.0:
            raise ValueError(f"Expected a number >= 0. Received: alpha={alpha!r}")
        self.vocabulary_size = vocabulary_size
        self.alpha = float(alpha)
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)
        self.rates = self.add_weight(shape=(vocabulary_size,), initializer="zeros",
                                     trainable=False, name="rates")  # fmt: skip

    def adapt(self, ids: Any) -> None:
        """Set each word's rate ``alpha / (alpha + count)`` from the ids of the training
        texts (rows of ids; padding and the out-of-vocabulary id are never replaced)."""
        ids = np.asarray(ids).ravel()
        ids = ids[(ids > UNKNOWN) & (ids < self.vocabulary_size)]
        counts = np.bincount(ids, minlength=self.vocabulary_size).astype("float64")
        rates = np.zeros(self.vocabulary_size)
        seen = counts > 0
        rates[seen] = self.alpha / (self.alpha + counts[seen])
        self.rates.assign(rates.astype("float32"))

    def call(self, ids: Any, training: Any = None) -> Any:
        if not training:
            return ids
        index = ops.clip(ops.cast(ids, "int32"), 0, self.vocabulary_size - 1)
        chance = ops.take(self.rates, index)
        drop = keras.random.uniform(ops.shape(ids), seed=self._generator) < chance
        return ops.where(drop, ops.full_like(ids, UNKNOWN), ids)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "alpha": self.alpha, "seed": self.seed}  # fmt: skip
