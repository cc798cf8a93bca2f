"""The estimator a search fits per fold: it keeps each fold's model on disk.

``KerasTunerSearchCV`` hands sklearn a ``_TrialFit`` wrapping the user's
estimator.  It knows its fold from the training rows (sklearn slices the
``ROWS`` fit parameter per fold), so it can

* save the fitted fold model in the trial's folder (a resumed or distributed
  search reads finished trials back instead of training them again),
* continue a Hyperband trial from the fold model of the trial it extends
  (``warm_start``: only the extra epochs are trained),
* record an error in the trial folder instead of raising, so a failed trial
  shows in ``cv_results_`` with its message and the search goes on.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone

from mmsk.exceptions import MmskError

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


def settings_key(params: dict[str, Any]) -> str:
    """A name for a trial's settings: a fold file is only reused for the same ones."""
    return str(joblib.hash(sorted(params.items(), key=lambda kv: kv[0])))[:12]


def final_estimator(estimator: Any) -> Any:
    """The last step of a Pipeline (recursively), or the estimator itself."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def error_text(trial_dir: str | os.PathLike, settings: str) -> str | None:
    """The first recorded fold error of a trial, if any."""
    errors = sorted(Path(trial_dir).glob(f"fold-*-{settings}.error"))
    return errors[0].read_text() if errors else None


def _dump(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(obj, tmp)
        os.replace(tmp, path)  # a kill never leaves half a model under the real name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
        model_path, error_path = folder / f"{name}.joblib", folder / f"{name}.error"
        if error_path.exists():  # finished before: read back, do not train again
            self.error_ = error_path.read_text()
            return self
        if model_path.exists():
            self.estimator_ = joblib.load(model_path)
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
        previous = Path(ctx.resume_dir or "") / f"fold-{key}-{ctx.resume_settings}.joblib"
        if ctx.resume_dir and previous.exists():
            estimator = joblib.load(previous)
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
