"""BaseMultimodal: the scikit-learn face of MultimodalClassifier and MultimodalRegressor.

Settings, parameter checks, ``fit`` (through the training core,
:mod:`mmsk.models._training`), ``transform`` (the fused embeddings), pickling
(through the ``.keras`` helper of :mod:`mmsk._persist._keras`) and the
convenience methods ``export`` and ``to_hypermodel``.  Subclasses define the
target encoding (the three hooks the core calls) and ``predict``/``score``.
"""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mmsk._persist._keras import keras_from_bytes, save_keras
from mmsk._validation import ParamValidation, check_param_names
from mmsk.components import Fusion
from mmsk.exceptions import MmskError, ParameterError
from mmsk.models import _own as own
from mmsk.models import _training as training
from mmsk.models._checks import check_score_weight
from mmsk.models._params import NestedComponentsMixin
from mmsk.models._predict import embedding_width, forward
from mmsk.preprocessing import ModalityPreprocessor

if TYPE_CHECKING:
    from typing_extensions import Self


def _monitor(value: Any) -> Any:
    """``fit(..., monitor=True)``: a TrainingMonitor (or the callback given)."""
    if value is True:
        from mmsk.widgets import TrainingMonitor  # upward on purpose: allow-listed

        return TrainingMonitor()
    return value


def _import_named_components(state: dict[str, Any]) -> None:
    """Import plugins named in the settings, so their Keras layers are registered."""
    from mmsk.plugins import load

    encoders = state.get("encoders")
    for value in (encoders or {}).values() if isinstance(encoders, dict) else ():
        if isinstance(value, str):
            load("encoder", value)
    if isinstance(state.get("fusion"), str):
        load("fusion", state["fusion"])


class BaseMultimodal(
    ParamValidation,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    own.RoutedParamsMixin,
    NestedComponentsMixin,
):
    """Fit/transform machinery; subclasses define the target encoding and the loss."""

    _parameter_constraints: dict = {
        "encoders": [dict, None],
        "fusion": [str, Fusion, type],
        "modalities": [dict, None],
        "preprocessor": [ModalityPreprocessor, None],
        "head_units": [Interval(Integral, 1, None, closed="left")],
        "head_layers": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
        "word_dropout": [Interval(Real, 0, None, closed="left")],
        "wide": ["boolean"],
        "optimizer": [StrOptions({"adam", "adamw", "sgd", "rmsprop", "nadam"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_split": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "callbacks": [list, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "warm_start": ["boolean"],
        "distribution": "no_validation",  # checked by resolve_strategy
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "model": "no_validation",  # a build function or a keras.Model: checked in fit
        "loss": [str, callable, None],
        "metrics": [list, None],
    }

    def __init__(
        self,
        encoders: dict[str, Any] | None = None,
        fusion: Any = "concat",
        *,
        modalities: dict[str, str] | None = None,
        preprocessor: ModalityPreprocessor | None = None,
        head_units: int = 64,
        head_layers: int = 1,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
        word_dropout: float = 0.25,
        wide: bool = True,
        optimizer: str = "adamw",
        learning_rate: float = 1e-3,
        epochs: int = 100,
        batch_size: int = 32,
        validation_split: float | str = "auto",
        early_stopping: bool = True,
        patience: int = 5,
        callbacks: list[Any] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        warm_start: bool = False,
        distribution: Any = None,
        random_state: Any = None,
        verbose: int = 0,
        model: Any = None,
        loss: Any = None,
        metrics: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoders = encoders
        self.fusion = fusion
        self.modalities = modalities
        self.preprocessor = preprocessor
        self.head_units = head_units
        self.head_layers = head_layers
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.word_dropout = word_dropout
        self.wide = wide
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.early_stopping = early_stopping
        self.patience = patience
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.warm_start = warm_start
        self.distribution = distribution
        self.random_state = random_state
        self.verbose = verbose
        self.model = model
        self.loss = loss
        self.metrics = metrics
        own.check_route_names(kwargs, type(self).__name__)
        self.__dict__.update(kwargs)  # routed: model__*, optimizer__*, compile__*, fit__*

    # ---- hooks of the training core (see mmsk.models._training) ----------
    def _encode_target(self, y: Any) -> tuple[Any, training.Target]:
        """Learn the target encoding; return (encoded y, what the network predicts)."""
        raise NotImplementedError

    def _encode_known_target(self, y: Any) -> np.ndarray:
        """Encode ``y`` with the encoding learned in the first fit."""
        raise NotImplementedError

    def _class_sample_weight(self, y: Any, sample_weight: Any) -> Any:
        return sample_weight

    # ---- settings ----------------------------------------------------------
    def set_params(self, **params: Any) -> Self:
        """Set parameters, nested ones too (``encoders__text__units``, ``fusion__num_heads``,
        ``preprocessor__text__max_tokens``); an unknown name is a ParameterError."""
        check_param_names(self, [k for k in params if not k.startswith(own.ROUTES)])
        nested = sorted(k for k in params if k.startswith("preprocessor__"))
        if nested and self.preprocessor is None and params.get("preprocessor") is None:
            raise ParameterError(
                f"set_params({nested[0]}=...): preprocessor is None, so it has no settings. "
                "Expected preprocessor=ModalityPreprocessor(...) first (in the same call or "
                "the constructor)"
            )
        try:
            return super().set_params(**params)
        except MmskError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise ParameterError(f"set_params: {exc}") from exc

    # ---- fit ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)  # preprocessor/components: check them
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **fit_params: Any) -> Self:
        """Build the Keras model and train it.

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array of shape (N, D)
            A raw table (one column per input; modalities inferred unless
            ``modalities`` or ``preprocessor`` says otherwise), preprocessed
            data from a :class:`~mmsk.preprocessing.ModalityPreprocessor`,
            or plain numbers.
        y : array-like of shape (N,) or (N, n_outputs)
            Targets.
        sample_weight : array-like of shape (N,), optional
            Per-row weights of the loss.
        **fit_params
            Passed on to ``keras.Model.fit`` (for example ``steps_per_epoch`` or
            extra ``callbacks``); validation data comes from ``validation_split``.
            ``monitor=True`` adds a :class:`mmsk.widgets.TrainingMonitor` (a live
            plot in Jupyter, a text bar elsewhere).

        Returns
        -------
        self

        Notes
        -----
        With ``warm_start=True`` a fitted estimator keeps its model and
        preprocessing and trains on from epoch ``n_epochs_`` until ``epochs``
        in total (the meaning of Keras' ``initial_epoch``).
        """
        monitor = fit_params.pop("monitor", None)
        if monitor:
            fit_params["callbacks"] = [*fit_params.get("callbacks", []), _monitor(monitor)]
        training.fit(self, X, y, sample_weight, fit_params)
        return self

    def _score_target(self, X: Any, y: Any, sample_weight: Any) -> np.ndarray:
        """Check ``score``'s y (encodable as in fit, one per row) and weights."""
        check_is_fitted(self, "model_")
        y = training.check_target(y, len(X))
        self._encode_known_target(y)
        check_score_weight(sample_weight, len(y))
        return y

    # ---- embeddings --------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Return the fused embeddings (N, d) of rows, e.g. for nearest-neighbour retrieval.

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array
            Rows in the form given to ``fit``.

        Returns
        -------
        ndarray of shape (N, d), float32
            Columns named by :meth:`get_feature_names_out`, so
            ``set_output(transform="pandas")`` gives a DataFrame.
        """
        return forward(self, X, embedding=True)

    @property
    def _n_features_out(self) -> int:
        """Width of the fused embedding (for ``get_feature_names_out``)."""
        if "model_" not in self.__dict__:
            raise AttributeError("_n_features_out: not fitted")
        return embedding_width(self.model_)

    # ---- persistence -------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        if "model_" in state:
            own.check_savable(state["model_"], type(self).__name__)
            state["model_"] = {"keras_bytes": save_keras(state["model_"])}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Estimators saved before word_dropout existed trained without it
        state = {"word_dropout": 0.0, **state}
        saved = state.get("model_")
        if isinstance(saved, dict) and "keras_bytes" in saved:
            _import_named_components(state)
            state = {**state, "model_": keras_from_bytes(saved["keras_bytes"])}
        super().__setstate__(state)

    # ---- convenience -------------------------------------------------------
    def export(self, path: str | os.PathLike, **kwargs: Any) -> Any:
        """Write a serving artifact that loads and runs without mmsk.

        See :func:`mmsk.export` for the format and the keyword arguments.
        """
        from mmsk._export import export

        return export(self, path, **kwargs)

    def to_hypermodel(self, search_space: dict[str, Any], X: Any, y: Any) -> Any:
        """A ``keras_tuner.HyperModel`` that builds this estimator's model per trial.

        See :func:`mmsk.tuning.to_hypermodel`.
        """
        from mmsk.tuning import to_hypermodel  # upward on purpose: allow-listed

        return to_hypermodel(self, search_space, X, y)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # transform gives float32 embeddings
        tags.non_deterministic = self.random_state is None
        return tags

    def _sk_visual_block_(self) -> Any:
        """sklearn's HTML diagram: preprocessor -> encoders -> fusion (see ``_diagram``)."""
        from mmsk.models._diagram import visual_block

        return visual_block(self)
