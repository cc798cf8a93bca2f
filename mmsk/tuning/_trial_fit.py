"""The estimator a search fits per fold: it keeps each fold's model on disk.

With a ``directory``, ``KerasTunerSearchCV`` hands sklearn a ``_TrialFit``
wrapping the user's estimator (without one, sklearn fits the user's estimator
itself and nothing is written).  It names each fold by a fingerprint of its
training data (rows and content, hashed with joblib) and the trial's
settings, so it can

* save the fitted fold model in the trial's folder (a resumed or distributed
  search reads finished trials back instead of training them again),
  with ``mmsk.save`` (a zip of JSON, npz and ``.keras``: no pickle, as the
  folder may be shared between machines),
* continue a Hyperband trial from the fold model of the trial it extends
  (``warm_start``: only the extra epochs are trained),
* record a fit error in the trial folder (and raise it, so sklearn records
  it with ``error_score`` exactly as ``GridSearchCV`` does); a resumed
  search raises the recorded error again instead of training again.

The folder is not trusted: a fold file that ``mmsk.load`` refuses (damaged,
an untrusted type, not mmsk's format) or that holds another estimator is
trained again, with a warning.  An estimator that ``mmsk.load`` would not
read back without ``trusted=`` (a user-defined class) is not kept: it is
trained again on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.metaestimators import available_if

from mmsk.exceptions import MmskError, PersistenceError


class TrialFailedError(MmskError, RuntimeError):
    """A trial's fit raised; the message carries the original error."""


@dataclass
class TrialContext:
    """Where the current trial keeps its fold models; shared by all clones."""

    trial_dir: str | None = None
    resume_dir: str | None = None  # Hyperband: the trial this one continues
    resume_epochs: int | None = None  # ... and its epochs
    refit: bool = False

    def __deepcopy__(self, memo: dict) -> TrialContext:
        return self  # sklearn's clone deep-copies parameters; all clones share one context


def fold_key(X: Any, y: Any, fit_params: dict[str, Any]) -> str:
    """A name for the fold trained on this data: its rows and content.

    New data of the same size gets another name, so it never reuses a fold
    model trained on other data.  joblib hashes arrays and frames by their
    bytes (cheap next to training).
    """
    import joblib

    return str(joblib.hash((X, y, sorted(fit_params.items())), hash_name="sha1"))[:16]


def _canonical(value: Any) -> Any:
    """``value`` as JSON data that is equal for equal settings, in any process."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}  # json sorts the keys
    if isinstance(value, type):
        return {"type": f"{value.__module__}:{value.__qualname__}"}
    name = f"{type(value).__module__}:{type(value).__qualname__}"
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if hasattr(value, "get_params"):
        return {"object": name, "params": _canonical(value.get_params(deep=False))}
    return {"object": name, "repr": re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))}


def settings_key(params: dict[str, Any]) -> str:
    """A name for a trial's settings: a fold file is only reused for the same ones."""
    text = json.dumps(_canonical(params), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def final_estimator(estimator: Any) -> Any:
    """The last step of a Pipeline (recursively), or the estimator itself."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def _read_error(path: Path) -> str | None:
    """A recorded fold error; None if it cannot be read (a FIFO, a huge file...)."""
    from mmsk.preprocessing._files import read_checked

    try:
        return read_checked(path, "error record", limit=2**16).decode("utf-8", "replace")
    except MmskError:
        return None


def _dump(obj: Any, path: Path) -> None:
    """Keep a fold model with ``mmsk.save``, if ``mmsk.load`` will read it back.

    One that cannot be written, or that names types ``load`` does not trust
    by default (a user-defined class), is not kept: it is trained again on
    resume, as the cache never passes ``trusted=``.
    """
    from mmsk import get_untrusted_types, save

    tmp = tempfile.mkdtemp(dir=path.parent, suffix=".tmp")
    written = os.path.join(tmp, "fold.zip")
    try:
        save(obj, written)
        if not get_untrusted_types(written):
            os.replace(written, path)  # never half a model under its name
    except PersistenceError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _settings(estimator: Any) -> Any:
    """What must match between a kept fold model and the estimator it stands for."""
    params = estimator.get_params(deep=True)
    return _canonical({k: v for k, v in params.items() if not k.endswith("checkpoint_dir")})


def _settings_name(estimator: Any) -> str:
    """The settings part of a fold file's name: all of the estimator's parameters."""
    text = json.dumps(_settings(estimator), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _load(path: Path, expected: Any, continued: bool = False) -> Any | None:
    """A kept fold model, or None (with a warning) when it cannot be trusted.

    ``continued``: the model of the Hyperband trial this one extends, which
    differs from ``expected`` only in its ``epochs``.
    """
    from mmsk import load

    try:
        estimator = load(path)
        if type(estimator) is not type(expected):
            raise PersistenceError(
                f"it holds a {type(estimator).__name__}; expected a {type(expected).__name__}"
            )
        if continued:
            expected = clone(expected)
            final_estimator(expected).set_params(epochs=final_estimator(estimator).epochs)
        if _settings(estimator) != _settings(expected):
            raise PersistenceError("its settings differ from the trial's")
    except Exception as exc:
        warnings.warn(
            f"the kept fold model {os.fspath(path)!r} cannot be used and is trained again: "
            f"{type(exc).__name__}: {exc}",
            stacklevel=3,
        )
        return None
    return estimator


def _fitted(estimator: Any, X: Any, y: Any, fit_params: dict[str, Any]) -> Any:
    """``estimator`` fitted (whatever its ``fit`` returns, as sklearn does)."""
    if y is None:
        estimator.fit(X, **fit_params)
    else:
        estimator.fit(X, y, **fit_params)
    return estimator


class _TrialFit(MetaEstimatorMixin, BaseEstimator):
    """Fit ``estimator`` for one fold of the current trial (see module docstring)."""

    def __init__(self, estimator: Any, context: TrialContext) -> None:
        self.estimator = estimator
        self.context = context

    # set_params/get_params reach the wrapped estimator without a prefix, so the
    # search's candidates use the user's names.
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = {"estimator": self.estimator, "context": self.context}
        if deep:
            params.update(self.estimator.get_params(deep=True))
        return params

    def set_params(self, **params: Any) -> _TrialFit:
        for key in ("estimator", "context"):
            if key in params:
                setattr(self, key, params.pop(key))
        if params:
            self.estimator.set_params(**params)
        return self

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> _TrialFit:
        ctx = self.context
        if ctx.refit or ctx.trial_dir is None:
            self.estimator_ = _fitted(clone(self.estimator), X, y, fit_params)
            return self
        key = fold_key(X, y, fit_params)
        folder = Path(ctx.trial_dir)
        name = f"fold-{key}-{_settings_name(self.estimator)}"
        model_path, error_path = folder / f"{name}.zip", folder / f"{name}.error"
        if os.path.lexists(error_path):  # failed before: the same error, no training
            error = _read_error(error_path)
            if error is not None:
                raise TrialFailedError(error)
        if os.path.lexists(model_path):
            kept = _load(model_path, self.estimator)
            if kept is not None:
                self.estimator_ = kept
                return self
        try:
            self.estimator_ = self._fit_fold(key, X, y, fit_params)
        except Exception as exc:
            folder.mkdir(parents=True, exist_ok=True)
            error_path.write_text(f"{type(exc).__name__}: {exc}")
            raise
        folder.mkdir(parents=True, exist_ok=True)
        _dump(self.estimator_, model_path)
        return self

    def _fit_fold(self, key: str, X: Any, y: Any, fit_params: dict) -> Any:
        ctx = self.context
        estimator = None
        if ctx.resume_dir and ctx.resume_epochs is not None:
            parent = clone(self.estimator)
            final_estimator(parent).set_params(epochs=ctx.resume_epochs)
            previous = Path(ctx.resume_dir) / f"fold-{key}-{_settings_name(parent)}.zip"
            if os.path.lexists(previous):
                estimator = _load(previous, self.estimator, continued=True)
        if estimator is not None:
            final = final_estimator(estimator)
            final.set_params(warm_start=True, epochs=final_estimator(self.estimator).epochs)
            estimator = _fitted(estimator, X, y, fit_params)
            final_estimator(estimator).set_params(warm_start=False)
            return estimator
        return _fitted(clone(self.estimator), X, y, fit_params)

    # ---- what scoring needs: the fitted estimator's own methods ----------------
    def _inner(self) -> Any:
        return self.__dict__.get("estimator_", self.estimator)

    @available_if(lambda self: hasattr(self._inner(), "predict"))
    def predict(self, X: Any) -> Any:
        return self.estimator_.predict(X)

    @available_if(lambda self: hasattr(self._inner(), "predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)

    @available_if(lambda self: hasattr(self._inner(), "decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self.estimator_.decision_function(X)

    @available_if(lambda self: hasattr(self._inner(), "transform"))
    def transform(self, X: Any) -> Any:
        return self.estimator_.transform(X)

    @available_if(lambda self: hasattr(self._inner(), "score"))
    def score(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return self.estimator_.score(X, y, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Fitted attributes (classes_, coef_...) read by scorers are the estimator's.
        fitted = self.__dict__.get("estimator_")
        if fitted is None or not name.endswith("_") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(fitted, name)

    def __sklearn_tags__(self) -> Any:
        return self.estimator.__sklearn_tags__()

    def get_metadata_routing(self) -> Any:
        """The wrapped estimator's metadata requests (``sample_weight``...)."""
        from sklearn.utils.metadata_routing import get_routing_for_object

        return get_routing_for_object(self.estimator)
