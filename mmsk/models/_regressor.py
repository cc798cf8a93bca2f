"""MultimodalRegressor."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_array

from mmsk.exceptions import InputError
from mmsk.models._base import BaseMultimodal
from mmsk.models._predict import forward
from mmsk.models._training import Target


class MultimodalRegressor(RegressorMixin, BaseMultimodal):
    """A multimodal neural-network regressor (Keras 3) with the scikit-learn API.

    Same parameters as :class:`MultimodalClassifier` (without
    ``class_weight``).  Targets are standardised for training and predictions
    are returned on the original scale; single and multi-output targets are
    supported.  As there, ``checkpoint_dir`` must be a new or empty folder (or
    one mmsk marked), and ``mmsk.load`` resets it to None.  With ``wide=True``
    the linear model blended in is ``Ridge`` on the standardised target
    (``linear_blend_``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = 3 * X[:, 0] - X[:, 1] + 10
    >>> reg = MultimodalRegressor(epochs=40, learning_rate=0.01, random_state=0).fit(X, y)
    >>> bool(reg.score(X, y) > 0.9), reg.predict(X[:2]).shape
    (True, (2,))
    """

    def _encode_target(self, y: Any) -> tuple[np.ndarray, Target]:
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        except ValueError as exc:
            raise InputError(f"y: {exc}; expected finite numbers") from exc
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        self.y_scale_ = np.where(y2.std(axis=0) > 0, y2.std(axis=0), 1.0)
        scaled = ((y2 - self.y_mean_) / self.y_scale_).astype("float32")
        return scaled, Target(self.n_outputs_, "linear", "mean_squared_error")

    def _encode_known_target(self, y: Any) -> np.ndarray:
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        except ValueError as exc:
            raise InputError(f"y: {exc}; expected finite numbers") from exc
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise InputError(f"y has {y2.shape[1]} outputs; expected {self.n_outputs_} as in fit")
        return ((y2 - self.y_mean_) / self.y_scale_).astype("float32")

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of ``predict(X)`` against ``y`` (averaged over outputs).

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array
            Rows in the form given to ``fit``.
        y : array-like of shape (N,) or (N, n_outputs)
            True targets: finite numbers, as many outputs as in ``fit``.
        sample_weight : array-like of shape (N,), optional

        Returns
        -------
        float
        """
        y = self._score_target(X, y, sample_weight)
        return float(super().score(X, y, sample_weight=sample_weight))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (N,) or (N, n_outputs)."""
        out = forward(self, X).astype(np.float64) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
