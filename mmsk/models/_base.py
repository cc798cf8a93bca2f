"""Shared machinery of MultimodalClassifier and MultimodalRegressor."""

from __future__ import annotations

import importlib
import os
import random
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mmsk import _backend
from mmsk._batch import ModalityBatch
from mmsk._validation import ParamValidation
from mmsk.components import Fusion
from mmsk.exceptions import (
    ColumnMismatchError,
    InputError,
    MmskError,
    ModelBuildError,
)
from mmsk.models._build import FUSED, Head, build_model
from mmsk.models._checkpoint import CheckpointFolder, backup_callback
from mmsk.models._checks import check_score_weight
from mmsk.models._distribute import patch_for_multi_worker, resolve_strategy, strategy_scope
from mmsk.models._params import NestedComponentsMixin, make_component, resolve_encoders
from mmsk.preprocessing import ModalityPreprocessor

SMALL_BATCH = 2048  # rows up to which predict calls the compiled model directly
AUTO_VALIDATION = 0.1  # share of rows validation_split="auto" holds out ...
AUTO_VALIDATION_MIN_ROWS = 200  # ... when there are at least this many rows

# Per-model caches kept off the estimator (its __dict__ must not change in predict).
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EMBEDDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_call(model: Any) -> Any:
    """``model(x, training=False)`` as a cached tf.function.

    Thread-safe: threads that miss the cache at once each make a function, but
    ``setdefault`` (atomic) hands them all the first one stored, so the model is
    traced once and every thread runs the same graph.
    """
    fn = _CALLS.get(model)
    if fn is None:
        tf = _backend.tf()
        ref = weakref.ref(model)  # a strong reference would keep the cache entry alive forever

        def call(x: Any) -> Any:
            return ref()(x, training=False)  # type: ignore[misc]

        fn = _CALLS.setdefault(model, tf.function(call, reduce_retracing=True))
    return fn


def _embedding_model(model: Any) -> Any:
    """A model sharing ``model``'s layers that outputs the fused embedding."""
    embedder = _EMBEDDERS.get(model)
    if embedder is None:
        keras = _backend.keras()
        embedder = keras.Model(model.inputs, model.get_layer(FUSED).output)
        _EMBEDDERS[model] = embedder
    return embedder


def _monitor(value: Any) -> Any:
    """``fit(..., monitor=True)``: a TrainingMonitor (or the callback given)."""
    if value is True:
        return importlib.import_module("mmsk.widgets").TrainingMonitor()
    return value


@contextmanager
def _seeded(keras: Any, seed: int) -> Iterator[None]:
    """Seed Keras, TensorFlow, NumPy and ``random`` for a fit; restore the user's
    NumPy and ``random`` global state afterwards (Keras draws from them while it
    builds and trains, so they stay seeded until the fit ends)."""
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)


def _import_named_components(state: dict[str, Any]) -> None:
    """Import plugins named in the settings, so their Keras layers are registered."""
    from mmsk.plugins import load

    encoders = state.get("encoders")
    for value in (encoders or {}).values() if isinstance(encoders, dict) else ():
        if isinstance(value, str):
            load("encoder", value)
    if isinstance(state.get("fusion"), str):
        load("fusion", state["fusion"])


class BaseMultimodal(ParamValidation, TransformerMixin, NestedComponentsMixin):
    """Fit/predict machinery; subclasses define the target encoding and the loss."""

    _parameter_constraints: dict = {
        "encoders": [dict, None],
        "fusion": [str, Fusion, type],
        "modalities": [dict, None],
        "preprocessor": [ModalityPreprocessor, None],
        "head_units": [Interval(Integral, 1, None, closed="left")],
        "head_layers": [Interval(Integral, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
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
    ) -> None:
        self.encoders = encoders
        self.fusion = fusion
        self.modalities = modalities
        self.preprocessor = preprocessor
        self.head_units = head_units
        self.head_layers = head_layers
        self.dropout = dropout
        self.modality_dropout = modality_dropout
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

    # ---- subclass hooks ----------------------------------------------------
    def _encode_target(self, y: Any) -> tuple[np.ndarray, int, str, str]:
        """Learn the target encoding; return (encoded y, n_outputs, activation, loss)."""
        raise NotImplementedError

    # ---- validation --------------------------------------------------------
    def _to_batch(self, X: Any, *, fit: bool) -> ModalityBatch:
        """DataFrame / ModalityBatch / 2-D numeric array -> ModalityBatch."""
        if isinstance(X, ModalityBatch):
            if fit:
                self.preprocessor_ = None
                self.n_features_in_ = X.n_modalities
            elif self.preprocessor_ is not None:
                raise InputError(
                    "this estimator was fitted on a DataFrame; pass a DataFrame with the "
                    f"columns {list(self.feature_names_in_)}, not a ModalityBatch"
                )
            return X
        if not fit and self.preprocessor_ is None:
            raise InputError(
                "this estimator was fitted on a ModalityBatch; pass a ModalityBatch with "
                f"modalities {self.modalities_}"
            )
        if not isinstance(X, pd.DataFrame):
            X = validate_data(self, X, reset=fit, dtype=np.float64)
            X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        elif fit or not hasattr(self, "feature_names_in_"):
            # fitted on a DataFrame: the preprocessor selects its columns by name
            try:
                validate_data(self, X, reset=fit, skip_check_array=True)
            except ValueError as exc:
                raise ColumnMismatchError(str(exc)) from exc
        if fit:
            base = self.preprocessor or ModalityPreprocessor(modalities=self.modalities)
            self.preprocessor_ = clone(base)
            return self.preprocessor_.fit_transform(X)
        return self.preprocessor_.transform(X)

    def _check_batch(self, batch: ModalityBatch) -> None:
        names = list(batch.keys())
        if names != self.modalities_:
            raise ColumnMismatchError(
                f"Expected modalities {self.modalities_} as seen in fit. Received: {names}"
            )
        for name in names:
            if batch.specs[name].shape != self.specs_[name].shape:
                raise InputError(
                    f"modality {name!r}: rows of shape {batch.specs[name].shape}; "
                    f"expected {self.specs_[name].shape} as seen in fit"
                )

    # ---- fit ---------------------------------------------------------------
    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **fit_params: Any) -> Any:
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
        self._validate_params()
        if self.checkpoint_dir is not None:
            CheckpointFolder(self.checkpoint_dir)  # refuse a user's folder before any work
        monitor = fit_params.pop("monitor", None)
        if monitor:
            fit_params["callbacks"] = [*fit_params.get("callbacks", []), _monitor(monitor)]
        strategy = resolve_strategy(self.distribution)  # before TensorFlow runs anything
        if self.warm_start and hasattr(self, "model_"):
            return self._continue(X, y, sample_weight, fit_params)
        batch, y_enc, sample_weight, (n_outputs, activation, loss) = self._prepare(
            X, y, sample_weight
        )
        seed = self._seed()
        keras = _backend.keras()
        with _seeded(keras, seed):
            with strategy_scope(strategy):
                self.model_ = self._build(n_outputs, activation, loss, seed)
            if strategy is not None:
                head = batch[np.arange(min(len(batch), self.batch_size))]
                patch_for_multi_worker(self.model_, strategy, head.to_inputs(self.modalities_),
                                       y_enc[: len(head)])  # fmt: skip
            self.history_: dict[str, list[float]] = {}
            self.n_epochs_ = 0
            self._train(batch, y_enc, sample_weight, seed, fit_params)
        return self

    def _prepare(
        self, X: Any, y: Any, sample_weight: Any
    ) -> tuple[ModalityBatch, np.ndarray, Any, tuple[int, str, str]]:
        """Fit the preprocessing and target encoding; return the training data."""
        if y is None:
            raise InputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        batch = self._to_batch(X, fit=True)
        y = self._check_y(y, len(batch))
        sample_weight = self._check_sample_weight(sample_weight, batch)
        y_enc, n_outputs, activation, loss = self._encode_target(y)
        sample_weight = self._class_sample_weight(y, sample_weight)
        self.specs_ = batch.specs
        self.modalities_ = list(batch.keys())
        return batch, y_enc, sample_weight, (n_outputs, activation, loss)

    @staticmethod
    def _check_y(y: Any, n_rows: int) -> np.ndarray:
        y = np.asarray(y) if not hasattr(y, "iloc") else y.to_numpy()
        if len(y) != n_rows:
            raise InputError(
                f"X has {n_rows} rows but y has {len(y)}; expected one target per row"
            )
        return y

    @staticmethod
    def _check_sample_weight(sample_weight: Any, batch: ModalityBatch) -> Any:
        if sample_weight is None:
            return None
        try:
            return _check_sample_weight(sample_weight, batch, dtype=np.float32)
        except ValueError as exc:
            raise InputError(f"sample_weight: {exc}") from exc

    def _build(self, n_outputs: int, activation: str, loss: str, seed: int) -> Any:
        """Build and compile the Keras model for ``specs_`` (call under ``_seeded``)."""
        keras = _backend.keras()
        fusion = make_component("fusion", self.fusion, Fusion)
        encoders = resolve_encoders(self.encoders, self.specs_)
        self.encoders_ = encoders
        head = Head(n_outputs, activation, self.head_units, self.head_layers, self.dropout,
                    self.wide)  # fmt: skip
        model = build_model(self.specs_, encoders, fusion, head, self.modality_dropout, seed)
        optimizer = keras.optimizers.get(
            {"class_name": self.optimizer, "config": {"learning_rate": self.learning_rate}}
        )
        model.compile(optimizer=optimizer, loss=loss)
        return model

    def _continue(self, X: Any, y: Any, sample_weight: Any, fit_params: dict) -> Any:
        """``warm_start``: train the fitted model on from epoch ``n_epochs_`` to ``epochs``."""
        batch = self._to_batch(X, fit=False)  # the fitted preprocessing is kept
        self._check_batch(batch)
        y_enc = self._encode_known_target(self._check_y(y, len(batch)))
        sample_weight = self._check_sample_weight(sample_weight, batch)
        sample_weight = self._class_sample_weight(np.asarray(y), sample_weight)
        if self.epochs > self.n_epochs_:
            seed = self._seed()
            with _seeded(_backend.keras(), seed):
                self._train(batch, y_enc, sample_weight, seed, fit_params)
        return self

    def _score_target(self, X: Any, y: Any, sample_weight: Any) -> np.ndarray:
        """Check ``score``'s y (labels seen in fit, one per row) and weights."""
        check_is_fitted(self, "model_")
        y = self._check_y(y, len(X))
        self._encode_known_target(y)
        check_score_weight(sample_weight, len(y))
        return y

    def _encode_known_target(self, y: np.ndarray) -> np.ndarray:
        """Encode ``y`` with the encoding learned in the first fit."""
        raise NotImplementedError

    def _class_sample_weight(self, y: np.ndarray, sample_weight: Any) -> Any:
        return sample_weight

    def _train(self, batch: ModalityBatch, y: np.ndarray, sw: Any, seed: int, kw: dict) -> None:
        keras = _backend.keras()
        callbacks = [*(self.callbacks or []), *kw.pop("callbacks", [])]
        if self.checkpoint_dir is not None:
            # First, so the epoch is saved before any user callback runs.
            callbacks.insert(0, backup_callback(self.checkpoint_dir))
        validation = None
        rows = np.arange(len(batch))
        split = self._validation_share(len(rows))
        if split:
            stratify = y if y.ndim == 1 and self._stratify() else None
            n_val = int(np.ceil(split * len(rows)))
            if n_val < 1 or n_val >= len(rows):
                raise InputError(
                    f"validation_split={split} of {len(rows)} rows leaves "
                    f"{len(rows) - n_val} to train on and {n_val} to validate; expected at "
                    "least one row in each"
                )
            try:
                rows, val = train_test_split(rows, test_size=split, random_state=seed,
                                             stratify=stratify)  # fmt: skip
            except ValueError:
                rows, val = train_test_split(rows, test_size=split, random_state=seed)
            v = batch[val]
            validation = (v.to_inputs(self.modalities_), y[val]) + (
                (sw[val],) if sw is not None else ()
            )
            batch = batch[rows]
        if self.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss" if validation else "loss", patience=self.patience,
                restore_best_weights=True))  # fmt: skip
        try:
            history = self.model_.fit(
                batch.to_inputs(self.modalities_), y[rows],
                sample_weight=None if sw is None else sw[rows], validation_data=validation,
                epochs=self.epochs, initial_epoch=self.n_epochs_, batch_size=self.batch_size,
                verbose=self.verbose, callbacks=callbacks, shuffle=True, **kw,
            )  # fmt: skip
        except MmskError:
            raise
        except Exception as exc:
            raise ModelBuildError(
                f"training failed for modalities "
                f"{ {k: (s.kind, s.shape) for k, s in self.specs_.items()} }: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for key, values in history.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        self.n_epochs_ += len(history.epoch)

    def _validation_share(self, n_rows: int) -> float:
        """The share of rows held out: ``validation_split``, or the ``"auto"`` choice."""
        if isinstance(self.validation_split, str):  # "auto": only where rows are plenty
            return AUTO_VALIDATION if n_rows >= AUTO_VALIDATION_MIN_ROWS else 0.0
        return float(self.validation_split)

    def _stratify(self) -> bool:
        return False

    # ---- predict -----------------------------------------------------------
    def _forward(self, X: Any, embedding: bool = False) -> np.ndarray:
        """The model's output (or fused embedding) for rows of X.

        Raw rows (a DataFrame, or a 2-D array) are preprocessed and predicted
        ``stream`` rows at a time, so memory stays flat however many image or
        audio files a column names: only one chunk is ever decoded.  Nothing
        here writes to ``self`` or the model, so threads may predict at once.
        """
        check_is_fitted(self, "model_")
        model = self.model_ if not embedding else _embedding_model(self.model_)

        def run(batch: ModalityBatch) -> np.ndarray:
            self._check_batch(batch)
            inputs = batch.to_inputs(self.modalities_)
            if len(batch) > SMALL_BATCH:
                return np.asarray(model.predict(inputs, batch_size=256, verbose=0))
            # Small batches: one compiled call, without Model.predict's per-call set-up.
            return np.asarray(_compiled_call(model)(inputs))

        stream = 256  # rows decoded at a time: 256 RGB images of 64x64 are 12 MB of float32
        raw = isinstance(X, pd.DataFrame) or (isinstance(X, np.ndarray) and X.ndim == 2)
        if not raw or len(X) <= stream or getattr(self, "preprocessor_", None) is None:
            return run(self._to_batch(X, fit=False))
        rows = X.iloc if isinstance(X, pd.DataFrame) else X
        parts = [
            run(self._to_batch(rows[start : start + stream], fit=False))
            for start in range(0, len(X), stream)
        ]
        return np.concatenate(parts)

    def transform(self, X: Any) -> np.ndarray:
        """Return the fused embeddings (N, d) of rows, e.g. for nearest-neighbour retrieval.

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array
            Rows in the form given to ``fit``.

        Returns
        -------
        ndarray of shape (N, d), float32
        """
        return self._forward(X, embedding=True)

    # ---- persistence -------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        if "model_" in state:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                state["model_"].save(path)
                with open(path, "rb") as fh:
                    state["model_"] = {"keras_bytes": fh.read()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.get("model_")
        if isinstance(saved, dict) and "keras_bytes" in saved:
            keras = _backend.keras()
            import mmsk.layers  # noqa: F401  (registers mmsk's layers)

            _import_named_components(state)

            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                with open(path, "wb") as fh:
                    fh.write(saved["keras_bytes"])
                state = {**state, "model_": keras.saving.load_model(path, safe_mode=True)}
        super().__setstate__(state)

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
        from mmsk.tuning import to_hypermodel

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
