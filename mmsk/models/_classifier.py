"""MultimodalClassifier."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from mmsk.exceptions import InputError
from mmsk.models._base import BaseMultimodal
from mmsk.models._checks import check_score_weight, check_target
from mmsk.models._predict import forward
from mmsk.models._training import Target


class MultimodalClassifier(ClassifierMixin, BaseMultimodal):
    """A multimodal neural-network classifier (Keras 3) with the scikit-learn API.

    ``fit`` takes a raw DataFrame (one column per input: image paths or
    arrays, text, audio, numbers), infers each column's modality, builds the
    default preprocessing, one encoder per modality, a fusion and a head, and
    trains the Keras model (``model_``).  Binary, multiclass and multilabel
    targets are supported; labels may be strings.

    Parameters
    ----------
    encoders : dict, optional
        Encoder per modality name or per kind, as a registered name
        (``"cnn"``, ``"bag"``, ``"rnn"``, ``"transformer"``, ``"audio_cnn"``,
        ``"mlp"``, or a plugin's) or a component object.  Defaults: image
        ``cnn``, text ``"auto"`` (a bag of word n-grams, ``bag``, for texts of
        up to 256 tokens, a ``transformer`` for longer ones; chosen in ``fit``
        from the column, see ``encoders_``), audio ``audio_cnn``,
        numeric/categorical ``mlp``.  Settings are reachable as
        ``encoders__<key>__<param>``.
    fusion : str or Fusion, default="concat"
        ``"concat"``, ``"sum"``, ``"attention"``, ``"gated"``, ``"late"``, a
        plugin's name, or a component object (``fusion__<param>``).
    modalities : dict, optional
        Kinds for some columns, overriding inference.
    preprocessor : ModalityPreprocessor, optional
        Preprocessing of DataFrame input (default: inferred); settings
        reachable as ``preprocessor__<name>__<param>``.
    head_units : int, default=64
        Width of the dense head's layers on the fused embedding.
    head_layers : int, default=1
        Number of dense layers in the head (0: the output layer alone).
    dropout : float, default=0.1
        Dropout in the head.
    modality_dropout : float, default=0.0
        Probability of hiding each modality of a training row, so the model
        copes with modalities missing at predict time.
    word_dropout : float, default=0.25
        Unknown-word dropout for text (:class:`~mmsk.layers.UnknownWordDropout`):
        at each training step a word seen ``c`` times in the training texts is
        replaced by the out-of-vocabulary id with probability
        ``word_dropout / (word_dropout + c)`` (0.2 for a word seen once), so
        the network learns what a word it never saw means; a text's
        vocabulary holds every training word, so it would not learn that
        otherwise.  0 turns it off.
    wide : bool, default=True
        Add a linear model of each modality's raw input to the output, beside
        the deep network (wide and deep): a bag of words for text, pixels
        average-pooled to at most 16x16 and an 8-bin colour histogram per
        channel for images, the mean spectrum for audio, the features
        themselves for numbers and categories.  After training, where rows
        were held out, the best linear model on those features
        (``LogisticRegression`` or ``LinearSVC``, chosen by 3-fold
        cross-validation and refitted on every row) is blended in, with the
        weights of lowest validation loss; ``linear_blend_`` says what was
        chosen.  The result is one Keras model.
    optimizer : {"adam", "adamw", "sgd", "rmsprop", "nadam"}, default="adamw"
    learning_rate : float, default=1e-3
    epochs : int, default=100
        The most epochs to train; early stopping usually ends sooner.
    batch_size : int, default=32
    validation_split : float or "auto", default="auto"
        Fraction of rows held out (stratified) to report ``val_loss`` and to
        stop early on.  ``"auto"`` holds out 10 % when there are at least 200
        rows, and none below (then early stopping watches the training loss).
    early_stopping : bool, default=True
        Stop when the (validation) loss has not improved for ``patience``
        epochs, and keep the weights of the best epoch.
    patience : int, default=5
    callbacks : list of keras.callbacks.Callback, optional
    checkpoint_dir : str or path-like, optional
        Save the training state there after every epoch
        (``keras.callbacks.BackupAndRestore``); a ``fit`` that was killed
        resumes from its last finished epoch when run again with the same
        settings and data.  The folder must be new, empty, or one an earlier
        mmsk fit used (marked by a ``.mmsk-checkpoint`` file); a folder holding
        other files is refused with a ``ParameterError``.  When a fit
        completes, mmsk removes only what it wrote (and the folder, if it
        created it).  ``mmsk.load`` resets this path to None.
    warm_start : bool, default=False
        When fitted already, ``fit`` keeps the model and preprocessing and
        trains on from epoch ``n_epochs_`` until ``epochs`` in total (Keras'
        ``initial_epoch``); Hyperband uses this to continue short trials.
    distribution : None, "mirrored", "multi_worker" or tf.distribute.Strategy
        Build and train the model under this ``tf.distribute`` strategy;
        ``"multi_worker"`` reads the cluster from ``TF_CONFIG``
        (docs/scale-out.md).
    class_weight : dict, "balanced" or None, default=None
        Weights of classes in the loss.
    random_state : int, RandomState or None, default=None
        Seed of weights, shuffling and dropout; same seed, same model on CPU.
    verbose : int, default=0
        Keras' progress output.
    model : callable, keras.Model or None, default=None
        Your own network instead of mmsk's encoders, fusion and head: a build
        function ``(inputs, specs, n_outputs, **kwargs) -> keras.Model`` or a
        ``keras.Model`` whose inputs are named like the modalities (cloned at
        each fit).  An output ``n_outputs`` wide is the prediction (logits get
        the task's activation); any other width is an embedding and mmsk adds
        the head.  See docs/own-model.md.
    loss : str, optional
        The Keras loss (default: the task's).
    metrics : list of str, optional
        Keras metrics, reported per epoch in ``history_`` (and plotted by the
        training monitor). None (the default) means ``["accuracy"]``; ``[]``
        means none.
    **kwargs
        Routed settings, as in scikeras: ``model__<name>`` (a keyword argument of
        the build function), ``optimizer__<name>``, ``compile__<name>`` and
        ``fit__<name>`` (arguments of the optimizer, ``Model.compile``, ``Model.fit``).

    Attributes
    ----------
    classes_ : ndarray
        Class labels (label indices for multilabel targets).
    model_ : keras.Model
        The trained network.
    encoders_ : dict of str to Encoder
        The encoder used for each modality (the automatic text choice resolved).
    preprocessor_ : ModalityPreprocessor or None
        The fitted preprocessing of DataFrame/array input.
    specs_ : dict of str to ModalitySpec
    history_ : dict of str to list of float
        Loss (and validation loss) per epoch.
    linear_blend_ : dict or None
        The linear model blended into the network (``wide=True``):
        ``linear_model`` (``"logistic"``, ``"svm"``; ``"ridge"`` for a
        regressor), its ``C`` and ``temperature`` (``alpha``), ``dense_weight``
        (of numbers and pixels against words), the weights ``network`` and
        ``linear`` of the blend, and the validation losses of the blend
        (``val_loss``) and of the network alone (``val_loss_network``).
        None where nothing was blended: ``wide=False``, no rows held out, a
        loss or network of one's own, a multilabel target, a class with
        fewer than 3 rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({
    ...     "review": ["great product", "awful, broke fast", "love it", "terrible"] * 10,
    ...     "stars": rng.normal(size=40),
    ... })
    >>> y = ["pos", "neg", "pos", "neg"] * 10
    >>> clf = MultimodalClassifier(epochs=20, random_state=0).fit(df, y)
    >>> clf.predict(df.head(2)).tolist()
    ['pos', 'neg']
    >>> clf.predict_proba(df.head(2)).shape, clf.transform(df.head(2)).shape[0]
    ((2, 2), 2)
    """

    _parameter_constraints: dict = {
        **BaseMultimodal._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        encoders: dict[str, Any] | None = None,
        fusion: Any = "concat",
        *,
        modalities: dict[str, str] | None = None,
        preprocessor: Any = None,
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
        class_weight: Any = None,
        random_state: Any = None,
        verbose: int = 0,
        model: Any = None,
        loss: Any = None,
        metrics: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            encoders, fusion, modalities=modalities, preprocessor=preprocessor,
            head_units=head_units, head_layers=head_layers, dropout=dropout,
            modality_dropout=modality_dropout, word_dropout=word_dropout, wide=wide,
            optimizer=optimizer,
            learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
            validation_split=validation_split, early_stopping=early_stopping,
            patience=patience, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
            warm_start=warm_start, distribution=distribution, random_state=random_state,
            verbose=verbose, model=model, loss=loss, metrics=metrics, **kwargs,
        )  # fmt: skip
        self.class_weight = class_weight

    def _encode_target(self, y: Any) -> tuple[np.ndarray, Target]:
        try:
            check_classification_targets(y)
            target = type_of_target(y)
        except ValueError as exc:  # continuous, mixed or unhashable labels
            raise InputError(f"y: {exc}") from exc
        if target == "multilabel-indicator":
            y = np.asarray(y)
            self.target_type_ = "multilabel"
            self.classes_ = np.arange(y.shape[1])
            return y.astype("float32"), Target(y.shape[1], "sigmoid", "binary_crossentropy")
        y = _labels_1d(y)
        try:
            self._label_encoder = LabelEncoder().fit(y)
        except TypeError as exc:  # e.g. str and None mixed
            raise InputError(
                f"y: labels cannot be sorted ({exc}); expected labels of one type, none missing"
            ) from exc
        self.classes_ = self._label_encoder.classes_
        if len(self.classes_) < 2:
            raise InputError(
                f"y has only one class {self.classes_.tolist()}; a classifier needs at least "
                "2 classes"
            )
        codes = self._label_encoder.transform(y)
        if len(self.classes_) == 2:
            self.target_type_ = "binary"
            return codes.astype("float32"), Target(1, "sigmoid", "binary_crossentropy")
        self.target_type_ = "multiclass"
        n = len(self.classes_)
        return codes.astype("int32"), Target(n, "softmax", "sparse_categorical_crossentropy")

    def _encode_known_target(self, y: Any) -> np.ndarray:
        if self.target_type_ == "multilabel":
            return self._check_indicator(y).astype("float32")
        y = _labels_1d(y)
        unseen = self._unseen_labels(y)
        if len(unseen):
            raise InputError(
                f"y has labels {unseen[:10].tolist()} not seen in fit; expected labels "
                f"among {self.classes_.tolist()}"
            )
        codes = self._label_encoder.transform(y)
        return codes.astype("float32" if self.target_type_ == "binary" else "int32")

    def _check_indicator(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != len(self.classes_):
            raise InputError(
                f"y has shape {y.shape}; expected a label indicator matrix with "
                f"{len(self.classes_)} columns as seen in fit"
            )
        return y

    def _unseen_labels(self, y: np.ndarray) -> np.ndarray:
        """Labels of ``y`` not among ``classes_`` (an InputError if they cannot be compared)."""
        try:
            return np.setdiff1d(np.unique(y), self.classes_)
        except TypeError as exc:
            raise InputError(
                f"y: labels cannot be compared with those seen in fit ({exc}); expected labels "
                f"among {self.classes_.tolist()}"
            ) from exc

    def _class_sample_weight(self, y: np.ndarray, sample_weight: Any) -> Any:
        if self.class_weight is None:
            return sample_weight
        if self.target_type_ == "multilabel":
            raise InputError("class_weight is not supported for multilabel targets")
        weights = compute_sample_weight(self.class_weight, column_or_1d(y)).astype("float32")
        return weights if sample_weight is None else weights * sample_weight

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (N, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        out = forward(self, X).astype(np.float64)
        if self.target_type_ == "binary":
            return np.hstack([1.0 - out, out])
        return out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of ``predict(X)`` against ``y`` (subset accuracy for multilabel).

        As scikit-learn's ``ClassifierMixin.score``: labels not seen in ``fit``
        count as wrong predictions (the model cannot predict them), with a
        ``UserWarning`` that names them.  So cross-validation works where a
        rare class is missing from a training fold.

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array
            Rows in the form given to ``fit``.
        y : array-like of shape (N,) or (N, n_labels)
            True labels.
        sample_weight : array-like of shape (N,), optional

        Returns
        -------
        float
        """
        check_is_fitted(self, "model_")
        y = check_target(y, len(X))
        check_score_weight(sample_weight, len(y))
        if self.target_type_ == "multilabel":
            y = self._check_indicator(y)
        else:
            y = _labels_1d(y)
            unseen = self._unseen_labels(y)
            if len(unseen):
                warnings.warn(
                    f"y has labels {unseen[:10].tolist()} not seen in fit (classes_ are "
                    f"{self.classes_.tolist()}); their {int(np.isin(y, unseen).sum())} rows "
                    "count as wrong predictions",
                    UserWarning,
                    stacklevel=2,
                )
                pred = self.predict(X)
                return float(np.average(pred == y, weights=sample_weight))
        return float(super().score(X, y, sample_weight=sample_weight))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multilabel targets)."""
        proba = self.predict_proba(X)
        if self.target_type_ == "multilabel":
            return (proba >= 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _labels_1d(y: Any) -> np.ndarray:
    """``y`` as a 1-D array of labels, or an InputError naming the shape."""
    try:
        return column_or_1d(y, warn=True)
    except ValueError as exc:
        raise InputError(
            f"Expected y as one label per row, shape (N,) (or an (N, n_labels) 0/1 indicator "
            f"matrix for multilabel targets). Received: shape {np.shape(y)}"
        ) from exc
