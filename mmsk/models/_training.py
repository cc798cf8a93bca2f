"""The training core: prepare data, build the Keras model, train, convert input.

Internal use.  Every estimator that trains an mmsk network calls these
functions: :class:`~mmsk.MultimodalClassifier` and
:class:`~mmsk.MultimodalRegressor` (through ``BaseMultimodal.fit``), the Keras
Tuner hypermodel (``mmsk/tuning/_hypermodel.py``), and estimators to come (a
contrastive embedder, a streaming fit), so none of them reaches into another's
private methods::

    fit(estimator, X, y)                      the whole fit, warm start included
      prepare(estimator, X, y, w)  -> Prepared    preprocessing, specs, target encoding
      build(estimator, target, seed) -> model     compiled Keras model
        build_network(inputs, specs, head, estimator, seed)   <- the seam (see below)
      train(estimator, batch, y, w, seed, kw)     validation split, callbacks, Model.fit
        create_training_state(model, batch, y)    optimizer and metric variables, so
                                                  Keras traces the train step once
    convert(estimator, X, y) -> (batch, y)    rows (and targets) for a fitted estimator
    to_batch / check_batch / check_target     input conversion (``_checks``)
    forward(estimator, X)                     prediction, streamed (``_predict``)
    seeded(seed), draw_seed(random_state)     reproducible fits (``mmsk._backend``)

**The estimator.**  The functions take the estimator as the holder of the
settings (its ``__init__`` parameters) and write its learned state (names
ending in ``_``).  The target encoding is the estimator's own; the core calls
exactly three methods of it:

- ``_encode_target(y) -> (y_encoded, Target)`` learns the encoding (``classes_``,
  the scaling of a regression target, ...) and says what the network predicts;
  ``y`` is None only for an estimator whose tags do not require a target;
- ``_encode_known_target(y) -> y_encoded`` applies the learned encoding;
- ``_class_sample_weight(y, sample_weight) -> sample_weight`` adds class weights.

**The seam for a user's own network** (``model=``, issue 16) is
:func:`build_network`: it receives the Keras inputs mmsk's preprocessing feeds
(one per modality and ``mmsk_present``), the specs, the :class:`Head` (with
``n_outputs`` and the activation) and the estimator, and returns the
uncompiled network.  A ``model=`` setting is one branch at its top; compiling,
seeding, training, prediction, pickling and export stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from mmsk import _backend
from mmsk._backend import seeded
from mmsk._batch import ModalityBatch, ModalitySpec
from mmsk.components import Fusion
from mmsk.exceptions import InputError, MmskError, ModelBuildError
from mmsk.models import _linear as linear
from mmsk.models._build import Head, adapt_to_data, build_model, model_inputs
from mmsk.models._checkpoint import CheckpointFolder, backup_callback
from mmsk.models._checks import (
    check_batch,
    check_sample_weight,
    check_target,
    to_batch,
)
from mmsk.models._distribute import patch_for_multi_worker, resolve_strategy, strategy_scope
from mmsk.models._own import (
    build_own,
    check_own,
    compile_model,
    fit_settings,
    hyperparameters,
    routed,
)
from mmsk.models._params import make_component, resolve_encoders
from mmsk.models._predict import forward

__all__ = [
    "Head",
    "Prepared",
    "Target",
    "build",
    "build_network",
    "check_batch",
    "check_target",
    "convert",
    "create_training_state",
    "draw_seed",
    "fit",
    "forward",
    "hyperparameters",
    "prepare",
    "seeded",
    "to_batch",
    "train",
    "validation_share",
]

AUTO_VALIDATION = 0.1  # share of rows validation_split="auto" holds out ...
AUTO_VALIDATION_MIN_ROWS = 200  # ... when there are at least this many rows
# Written by build and train, not by prepare:
TRAINING_STATE = ("model_", "history_", "n_epochs_", "encoders_", "linear_blend_")


@dataclass(frozen=True)
class Target:
    """What the network predicts: ``n_outputs`` values through ``activation``, with ``loss``."""

    n_outputs: int
    activation: str
    loss: str


@dataclass
class Prepared:
    """Training data made by :func:`prepare`, and the learned state it wrote."""

    batch: ModalityBatch
    y: Any  # the encoded target (None for an estimator without one)
    sample_weight: np.ndarray | None
    target: Target
    state: dict[str, Any] = field(default_factory=dict)

    def adopt(self, estimator: Any) -> None:
        """Give ``estimator`` (an unfitted clone with the same preprocessing and
        target settings) the learned state, instead of preparing again."""
        for name, value in self.state.items():
            setattr(estimator, name, value)


def draw_seed(random_state: Any) -> int:
    """The seed of one fit, drawn from ``random_state`` as scikit-learn draws seeds."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _require_target(estimator: Any, y: Any) -> None:
    if y is None and estimator.__sklearn_tags__().target_tags.required:
        raise InputError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None"
        )


def prepare(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> Prepared:
    """Fit the preprocessing and the target encoding; return the training data.

    Writes ``preprocessor_``, ``n_features_in_`` (and ``feature_names_in_``),
    ``specs_``, ``modalities_`` and the target encoding's state on
    ``estimator``; :attr:`Prepared.state` records all of it.
    """
    _require_target(estimator, y)
    batch = to_batch(estimator, X, fit=True)
    y = None if y is None else check_target(y, len(batch))
    weight = check_sample_weight(sample_weight, batch)
    y_enc, target = estimator._encode_target(y)
    weight = estimator._class_sample_weight(y, weight)
    estimator.specs_ = batch.specs
    estimator.modalities_ = list(batch.keys())
    params = estimator.get_params(deep=False)
    state = {k: v for k, v in vars(estimator).items()
             if k not in params and k not in TRAINING_STATE}  # fmt: skip
    return Prepared(batch, y_enc, weight, target, state)


def convert(estimator: Any, X: Any, y: Any = None) -> tuple[ModalityBatch, Any]:
    """Rows (and targets) for a fitted estimator, checked against what ``fit`` saw.

    Returns the batch and the encoded target (None when ``y`` is None).
    """
    batch = to_batch(estimator, X, fit=False)
    check_batch(estimator, batch)
    if y is None:
        return batch, None
    return batch, estimator._encode_known_target(check_target(y, len(batch)))


def build_network(
    inputs: dict[str, Any],
    specs: dict[str, ModalitySpec],
    head: Head,
    estimator: Any,
    seed: int,
) -> Any:
    """The uncompiled network: inputs -> one encoder per modality -> fusion -> head.

    This is where a user's own network plugs in (see the module docstring).

    Parameters
    ----------
    inputs : dict of str to KerasTensor
        From :func:`~mmsk.models._build.model_inputs`: one per modality and
        ``mmsk_present`` (N, K), 1 where a row has the modality.
    specs : dict of str to ModalitySpec
        Kind, shape and dtype of each modality.
    head : Head
        ``n_outputs`` and ``activation`` of the prediction, and the dense
        head's settings.
    estimator : BaseMultimodal
        Its ``encoders``, ``fusion``, ``modality_dropout`` and ``word_dropout`` settings; the
        encoders used are written to ``encoders_``.
    seed : int
        Seed of the dropout layers.

    Returns
    -------
    keras.Model
        Its output is the prediction; the layer ``fused`` is the embedding.
    """
    if getattr(estimator, "model", None) is not None:  # the user's own network (model=)
        return build_own(estimator.model, inputs, specs, head.n_outputs, head.activation,
                         routed(estimator, "model__"))  # fmt: skip
    fusion = make_component("fusion", estimator.fusion, Fusion)
    encoders = resolve_encoders(estimator.encoders, specs)
    estimator.encoders_ = encoders
    return build_model(inputs, specs, encoders, fusion, head, estimator.modality_dropout, seed,
                       estimator.word_dropout)  # fmt: skip


def build(estimator: Any, target: Target, seed: int, batch: ModalityBatch | None = None) -> Any:
    """Build and compile the Keras model for ``estimator.specs_`` (call under :func:`seeded`).

    ``batch``, the training rows, sets what the network learns from data
    before training (:func:`~mmsk.models._build.adapt_to_data`): the bins of
    the wide path's colour histograms and the word counts of unknown-word
    dropout.
    """
    check_own(estimator)  # model= and its settings, before any work
    head = Head(target.n_outputs, target.activation, estimator.head_units,
                estimator.head_layers, estimator.dropout, estimator.wide)  # fmt: skip
    specs = estimator.specs_
    model = build_network(model_inputs(specs), specs, head, estimator, seed)
    if batch is not None:
        adapt_to_data(model, batch)
    compile_model(model, estimator, target.loss)  # optimizer__*, loss, metrics, compile__*
    return model


def validation_share(validation_split: float | str, n_rows: int) -> float:
    """The share of rows held out: ``validation_split``, or the ``"auto"`` choice."""
    if isinstance(validation_split, str):  # "auto": only where rows are plenty
        return AUTO_VALIDATION if n_rows >= AUTO_VALIDATION_MIN_ROWS else 0.0
    return float(validation_split)


def _split(y: Any, share: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and rows to validate on (stratified by class where it can be)."""
    rows = np.arange(len(y))
    n_val = int(np.ceil(share * len(rows)))
    if n_val < 1 or n_val >= len(rows):
        raise InputError(
            f"validation_split={share} of {len(rows)} rows leaves {len(rows) - n_val} to "
            f"train on and {n_val} to validate; expected at least one row in each"
        )
    by = y if stratify and y.ndim == 1 else None
    try:
        return train_test_split(rows, test_size=share, random_state=seed, stratify=by)
    except ValueError:  # a class with a single row cannot be stratified
        return train_test_split(rows, test_size=share, random_state=seed)


def create_training_state(model: Any, batch: ModalityBatch, y: Any, names: list[str]) -> None:
    """Create the optimizer's, loss's and metrics' variables of a compiled ``model``.

    Without a distribution strategy Keras creates them while it first traces the
    train step, and a ``tf.function`` that creates variables is traced a second
    time: a third to a half of a small fit.  Keras builds them the same way
    (``Model._symbolic_build``, symbolic shapes only) when a strategy is set.
    ``batch`` and ``y`` are the training rows (the inputs ``names``); two of them
    give the shapes and dtypes.
    """
    if model.optimizer is None or model.optimizer.built:
        return  # built already (warm start, a strategy's fit, an earlier call)
    head = np.arange(min(2, len(batch)))
    x, y = batch[head].to_inputs(names), None if y is None else y[head]
    symbolic_build = getattr(model, "_symbolic_build", None)
    with model.distribute_strategy.scope():
        try:
            if symbolic_build is not None:
                symbolic_build(data_batch=(x, y, None))
            else:  # a Keras without it: the optimizer at least
                model.optimizer.build(model.trainable_variables)
        except Exception:  # a model of one's own that cannot run symbolically:
            pass  # Keras creates what is left while tracing, as it would anyway


def train(
    estimator: Any, batch: ModalityBatch, y: np.ndarray, sample_weight: np.ndarray | None,
    seed: int, fit_params: dict[str, Any], target: Target | None = None,
) -> None:  # fmt: skip
    """Train ``estimator.model_`` from epoch ``n_epochs_`` to ``epochs``.

    Holds out the validation rows, adds the checkpoint backup (first) and early
    stopping (last) to the callbacks, runs ``Model.fit`` and extends
    ``history_`` and ``n_epochs_``.  ``fit_params`` go to ``Model.fit``.
    After a fresh fit (given its ``target``), a network with a wide path is
    blended with the best linear model on its wide features
    (:mod:`mmsk.models._linear`); ``linear_blend_`` says what was chosen.
    """
    keras = _backend.keras()
    kw = {**fit_settings(estimator), **fit_params}  # fit__* settings, then fit's own
    shuffle = kw.pop("shuffle", True)
    callbacks = [*(estimator.callbacks or []), *kw.pop("callbacks", [])]
    if estimator.checkpoint_dir is not None:
        # First, so the epoch is saved before any user callback runs.
        callbacks.insert(0, backup_callback(estimator.checkpoint_dir))
    names = estimator.modalities_
    rows, val, validation = np.arange(len(batch)), np.arange(0), None
    share = validation_share(estimator.validation_split, len(rows))
    if share:
        rows, val = _split(y, share, seed, is_classifier(estimator))
        validation = (batch[val].to_inputs(names), y[val]) + (
            (sample_weight[val],) if sample_weight is not None else ()
        )
    full, batch = batch, batch[rows]
    create_training_state(estimator.model_, batch, y[rows], names)
    if estimator.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss" if validation else "loss", patience=estimator.patience,
            restore_best_weights=True))  # fmt: skip
    try:
        history = estimator.model_.fit(
            batch.to_inputs(names), y[rows],
            sample_weight=None if sample_weight is None else sample_weight[rows],
            validation_data=validation, epochs=estimator.epochs,
            initial_epoch=estimator.n_epochs_, batch_size=estimator.batch_size,
            verbose=estimator.verbose, callbacks=callbacks, shuffle=shuffle, **kw,
        )  # fmt: skip
    except MmskError:
        raise
    except Exception as exc:
        raise ModelBuildError(
            f"training failed for modalities "
            f"{ {k: (s.kind, s.shape) for k, s in estimator.specs_.items()} }: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for key, values in history.history.items():
        estimator.history_.setdefault(key, []).extend(float(v) for v in values)
    estimator.n_epochs_ += len(history.epoch)
    if target is not None:  # a fresh fit: blend in the best linear model
        estimator.linear_blend_ = None
        if linear.supports(estimator.model_, estimator, target):
            x_all = full.to_inputs(names)
            estimator.linear_blend_ = linear.blend(
                estimator, x_all, y, sample_weight, (rows, val), target.activation, seed
            )


def fit(
    estimator: Any, X: Any, y: Any, sample_weight: Any = None,
    fit_params: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """The whole fit of an estimator whose parameters are validated: returns it.

    Builds a new model, or, with ``warm_start=True`` on a fitted estimator,
    keeps model and preprocessing and trains on from epoch ``n_epochs_``.
    """
    fit_params = dict(fit_params or {})
    if estimator.checkpoint_dir is not None:
        CheckpointFolder(estimator.checkpoint_dir)  # refuse a user's folder before any work
    strategy = resolve_strategy(estimator.distribution)  # before TensorFlow runs anything
    if estimator.warm_start and hasattr(estimator, "model_"):
        return _continue(estimator, X, y, sample_weight, fit_params)
    data = prepare(estimator, X, y, sample_weight)
    seed = draw_seed(estimator.random_state)
    with seeded(seed):
        with strategy_scope(strategy):
            estimator.model_ = build(estimator, data.target, seed, data.batch)
        if strategy is not None:
            head = data.batch[np.arange(min(len(data.batch), estimator.batch_size))]
            x_head = head.to_inputs(estimator.modalities_)
            patch_for_multi_worker(estimator.model_, strategy, x_head, data.y[: len(head)])
        estimator.history_ = {}
        estimator.n_epochs_ = 0
        train(estimator, data.batch, data.y, data.sample_weight, seed, fit_params, data.target)
    return estimator


def _continue(estimator: Any, X: Any, y: Any, sample_weight: Any, fit_params: dict) -> Any:
    """``warm_start``: train the fitted model on from epoch ``n_epochs_`` to ``epochs``."""
    _require_target(estimator, y)
    batch, y_enc = convert(estimator, X, y)  # the fitted preprocessing is kept
    weight = check_sample_weight(sample_weight, batch)
    weight = estimator._class_sample_weight(np.asarray(y), weight)
    if estimator.epochs > estimator.n_epochs_:
        seed = draw_seed(estimator.random_state)
        with seeded(seed):
            train(estimator, batch, y_enc, weight, seed, fit_params)
    return estimator
