"""``estimator.to_hypermodel``: an mmsk estimator as a Keras Tuner HyperModel."""

from __future__ import annotations

from typing import Any

from sklearn.base import clone

from mmsk.exceptions import ParameterError
from mmsk.tuning._space import SearchSpace

_CLASS: list[type] = []


def to_hypermodel(estimator: Any, search_space: dict[str, Any], X: Any, y: Any) -> Any:
    """A ``keras_tuner.HyperModel`` building ``estimator``'s Keras model per trial.

    For users who drive Keras Tuner directly.  ``X`` and ``y`` are the
    training data: the hypermodel fits mmsk's preprocessing and target
    encoding on them (once per preprocessing setting) so that ``build(hp)``
    knows the model's inputs.  ``tuner.search`` then takes raw data, like
    the estimator: ``tuner.search(X, y, validation_data=(X_val, y_val),
    epochs=5)`` (``tuner.search(epochs=5)`` trains on ``X``, ``y``).

    Parameters
    ----------
    estimator : MultimodalClassifier or MultimodalRegressor
        Settings not in the search space are taken from it.
    search_space : dict
        As for :class:`~mmsk.tuning.KerasTunerSearchCV`: ``set_params`` names
        of the estimator (e.g. ``"fusion"``, ``"learning_rate"``,
        ``"preprocessor__text__max_tokens"``) mapped to declarations.
    X, y
        Training data, as the estimator's ``fit`` takes them.

    Returns
    -------
    keras_tuner.HyperModel
        With ``estimator(hp)``, which returns the estimator configured with a
        trial's settings (unfitted), e.g. to refit the best on all data.

    Examples
    --------
    >>> import numpy as np, keras_tuner as kt
    >>> from mmsk import MultimodalClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> hm = MultimodalClassifier(random_state=0).to_hypermodel(
    ...     {"head_units": [8, 16]}, X, y)
    >>> model = hm.build(kt.HyperParameters())
    >>> model.output_shape
    (None, 1)
    """
    if not _CLASS:
        _CLASS.append(_define())
    return _CLASS[0](estimator, search_space, X, y)


def _define() -> type:
    from mmsk import _backend
    from mmsk.models import _training as training
    from mmsk.models._base import BaseMultimodal

    kt = _backend.keras_tuner()

    class MmskHyperModel(kt.HyperModel):  # type: ignore[name-defined]
        """See :func:`mmsk.tuning.to_hypermodel`."""

        def __init__(self, estimator: Any, search_space: dict[str, Any], X: Any, y: Any):
            if not isinstance(estimator, BaseMultimodal):
                raise ParameterError(
                    "to_hypermodel needs an mmsk estimator (MultimodalClassifier or "
                    f"MultimodalRegressor). Received: {type(estimator).__name__}"
                )
            super().__init__(name=type(estimator).__name__, tunable=True)
            self.space = SearchSpace(search_space)
            self.space.check(set(estimator.get_params(deep=True)))
            self.base, self.X, self.y = estimator, X, y
            self._prepared: dict[str, Any] = {}  # preprocessing setting -> training.Prepared
            self._built: dict[int, Any] = {}  # id(model) -> its estimator

        def estimator(self, hp: Any) -> Any:
            """The estimator with the settings of ``hp`` (unfitted)."""
            self.space.register(hp)
            return clone(self.base).set_params(**self.space.params(hp))

        def declare_hyperparameters(self, hp: Any) -> None:
            self.space.register(hp)

        def build(self, hp: Any) -> Any:
            est = self.estimator(hp)
            data = self._data(est)
            seed = training.draw_seed(est.random_state)
            with training.seeded(seed), training.hyperparameters(hp):  # hp: define-by-run
                model = training.build(est, data.target, seed, data.batch)
            self._built = {id(model): est}  # only the latest model is trained
            return model

        def _data(self, est: Any) -> Any:
            """Preprocessing and target encoding, fitted once per preprocessing setting;
            ``est`` takes the learned state."""
            from joblib import hash as joblib_hash

            key = joblib_hash((est.preprocessor, est.modalities))
            if key not in self._prepared:
                self._prepared[key] = training.prepare(est, self.X, self.y)
            data = self._prepared[key]
            data.adopt(est)
            return data

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            est = self._built.get(id(model))
            if est is None:
                est = self.estimator(hp)
            data = self._data(est)
            batch, y_enc = data.batch, data.y
            if args:
                x_raw, y_raw = [*args, None][:2]
                batch, y_enc = training.convert(est, x_raw, y_raw)
            for key in ("x", "y"):
                if key in kwargs:
                    raise ParameterError(
                        "pass training data to tuner.search positionally: tuner.search(X, y, ...)"
                    )
            validation = kwargs.pop("validation_data", None)
            if validation is not None:
                v_batch, v_y = training.convert(est, validation[0], validation[1])
                kwargs["validation_data"] = (v_batch.to_inputs(est.modalities_), v_y)
            kwargs.setdefault("batch_size", est.batch_size)
            kwargs.setdefault("epochs", est.epochs)
            kwargs.setdefault("verbose", 0)
            est.model_ = model
            training.create_training_state(model, batch, y_enc, est.modalities_)
            return model.fit(batch.to_inputs(est.modalities_), y_enc, **kwargs)

    return MmskHyperModel
