"""The estimator a search fits per fold: it keeps each fold's model on disk.

``KerasTunerSearchCV`` hands sklearn a ``_TrialFit`` wrapping the user's
estimator.  It knows its fold from the training rows (sklearn slices the
``ROWS`` fit parameter per fold), so it can

* save the fitted fold model in the trial's folder (a resumed or distributed
  search reads finished trials back instead of training them again),
  with ``mmsk.save`` (a zip of JSON, npz and ``.keras``: no pickle, as the
  folder may be shared between machines),
* continue a Hyperband trial from the fold model of the trial it extends
  (``warm_start``: only the extra epochs are trained),
* record an error in the trial folder instead of raising, so a failed trial
  shows in ``cv_results_`` with its message and the search goes on.

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

from mmsk.exceptions import MmskError, PersistenceError

ROWS = "mmsk_rows"  # fit parameter: the positions of the training rows


class TrialFailedError(MmskError, RuntimeError):
    """A trial's fit raised; the message carries the original error."""


@dataclass
class TrialContext:
    """Where the current trial keeps its fold models; shared by all clones."""

    trial_dir: str | None = None
    settings: str = ""  # a hash of the trial's settings, part of each fold file's name
    resume_dir: str | None = None  # Hyperband: the trial this one continues
    resume_settings: str = ""
    refit: bool = False
    raise_errors: bool = False

    def __deepcopy__(self, memo: dict) -> TrialContext:
        return self  # sklearn's clone deep-copies parameters; all clones share one context


def fold_key(rows: np.ndarray) -> str:
    """A name for the fold trained on ``rows``."""
    return hashlib.sha1(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]


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


def error_text(trial_dir: str | os.PathLike, settings: str) -> str | None:
    """The first recorded fold error of a trial, if any."""
    errors = sorted(Path(trial_dir).glob(f"fold-*-{settings}.error"))
    return _read_error(errors[0]) if errors else None


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
        rows = fit_params.pop(ROWS, None)
        ctx = self.context
        self.error_ = None
        if ctx.refit or rows is None or ctx.trial_dir is None:
            self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
            return self
        key = fold_key(rows)
        folder, name = Path(ctx.trial_dir), f"fold-{key}-{ctx.settings}"
        model_path, error_path = folder / f"{name}.zip", folder / f"{name}.error"
        if os.path.lexists(error_path):  # finished before: read back, do not train again
            self.error_ = _read_error(error_path)
            if self.error_ is not None:
                return self
        if os.path.lexists(model_path):
            kept = _load(model_path, self.estimator)
            if kept is not None:
                self.estimator_ = kept
                return self
        try:
            self.estimator_ = self._fit_fold(key, X, y, fit_params)
        except Exception as exc:
            if ctx.raise_errors:
                raise
            self.error_ = f"{type(exc).__name__}: {exc}"
            folder.mkdir(parents=True, exist_ok=True)
            error_path.write_text(self.error_)
            return self
        folder.mkdir(parents=True, exist_ok=True)
        _dump(self.estimator_, model_path)
        return self

    def _fit_fold(self, key: str, X: Any, y: Any, fit_params: dict) -> Any:
        ctx = self.context
        previous = Path(ctx.resume_dir or "") / f"fold-{key}-{ctx.resume_settings}.zip"
        estimator = None
        if ctx.resume_dir and os.path.lexists(previous):
            estimator = _load(previous, self.estimator, continued=True)
        if estimator is not None:
            final = final_estimator(estimator)
            final.set_params(warm_start=True, epochs=final_estimator(self.estimator).epochs)
            estimator.fit(X, y, **fit_params)
            final.set_params(warm_start=False)
            return estimator
        return clone(self.estimator).fit(X, y, **fit_params)

    # ---- what scoring needs --------------------------------------------------
    def _fitted(self) -> Any:
        if self.error_ is not None:
            raise TrialFailedError(self.error_)
        return self.estimator_

    def predict(self, X: Any) -> Any:
        return self._fitted().predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self._fitted().predict_proba(X)

    def decision_function(self, X: Any) -> Any:
        return self._fitted().decision_function(X)

    def transform(self, X: Any) -> Any:
        return self._fitted().transform(X)

    def score(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return self._fitted().score(X, y, **kwargs)

    @property
    def classes_(self) -> Any:
        return self._fitted().classes_

    def __sklearn_tags__(self) -> Any:
        return self.estimator.__sklearn_tags__()
