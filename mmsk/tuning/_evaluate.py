"""Cross-validating candidates for a search: sklearn's ``_fit_and_score`` per fold.

A :class:`FoldRunner` is what ``evaluate_candidates`` is in sklearn's
``BaseSearchCV.fit``: it fits a clone of the user's estimator per candidate
and fold (in parallel with ``n_jobs``) and scores it with sklearn's own
function, so fit failures, ``error_score``, verbose lines, scorers and
metadata routing are sklearn's.  What it adds is the fold models of
:mod:`mmsk.tuning._trial_fit`: a fold whose model is kept is scored without
training, a fold whose error is recorded fails again, and a Hyperband trial
starts each fold from the model of the trial it extends.  The estimator is
never wrapped: scorers, sklearn callbacks and the kept files see the user's
class.
"""

from __future__ import annotations

import inspect
import numbers
import time
from itertools import product
from typing import Any

from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.model_selection._validation import _fit_and_score, _score
from sklearn.utils._metadata_requests import _routing_enabled
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.parallel import delayed
from sklearn.utils.validation import _check_method_params, _num_samples

from mmsk.tuning._trial_fit import (
    TrialFailedError,
    data_fingerprint,
    final_estimator,
    fold_name,
    keep,
    kept,
    read_error,
    record_error,
)

_CALLBACKS = "callback_ctx" in inspect.signature(_fit_and_score).parameters  # sklearn >= 1.9


def _fold_fit(hooks: Any, fold: int, n_folds: int, *args: Any, **kwargs: Any) -> dict:
    """``_fit_and_score`` between the fold hooks (sequential runs only)."""
    hooks.notify("on_fold_begin", fold, n_folds)
    try:
        return _fit_and_score(*args, **kwargs)
    finally:
        hooks.notify("on_fold_end", fold, n_folds)


class FoldHooks:
    """The search's fold and epoch hooks for the folds of one trial.

    Parameters
    ----------
    notify : callable
        ``notify(hook, *args)`` calls ``hook(search, *args)`` on the callbacks.
    record : TrialRecord
        The running trial, passed to every hook.
    """

    def __init__(self, notify: Any, record: Any) -> None:
        self._notify, self.record = notify, record

    def notify(self, hook: str, *args: Any) -> None:
        self._notify(hook, self.record, *args)

    def keras_callback(self) -> Any:
        """A Keras callback that reports each epoch as ``on_epoch_end``."""
        import keras

        hooks = self

        class _EpochHook(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                hooks.notify("on_epoch_end", epoch, self.params.get("epochs"), logs)

        return _EpochHook()


def _is_mmsk(estimator: Any) -> bool:
    return type(estimator).__module__.startswith("mmsk.")


def _callbacks_param(estimator: Any) -> str | None:
    """The fit parameter that takes Keras callbacks (an mmsk estimator, or a Pipeline
    ending in one), or None."""
    if _is_mmsk(estimator) and "epochs" in estimator.get_params(deep=False):
        return "callbacks"
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps and not _routing_enabled():
        name, last = steps[-1]
        if _is_mmsk(last) and "epochs" in last.get_params(deep=False):
            return f"{name}__callbacks"
    return None


def _epochs_trained(model: Any) -> int | None:
    """``n_epochs_`` of a fitted fold model (its final step), or None."""
    if model is None:
        return None
    epochs = getattr(final_estimator(model), "n_epochs_", None)
    return int(epochs) if isinstance(epochs, numbers.Integral) else None


class FoldRunner:
    """Fits and scores candidates on fixed splits for one search.

    Parameters
    ----------
    search : KerasTunerSearchCV
        The search (its ``error_score``, ``return_train_score``, ``verbose``).
    X, y, routed : the data and sklearn's routed parameters
    scorers : scorer or _MultimetricScorer
    splits : list of (train, test)
    parallel : sklearn.utils.parallel.Parallel
    cache : bool
        Name folds (and keep models) at all: with a directory or for Hyperband.
    memory : dict or None
        Fold models kept in memory for Hyperband to continue, by fold name.

    Attributes
    ----------
    sequential : bool
        The folds run one by one in this process (``n_jobs`` is 1): only then
        does :meth:`run` call the fold and epoch hooks and read the epochs trained.
    epochs : list of int or None
        Epochs each fold model of the last :meth:`run` trained (``n_epochs_``).
    """

    def __init__(
        self, search: Any, X: Any, y: Any, routed: Any, scorers: Any, splits: list,
        parallel: Any, cache: bool, memory: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        self.search, self.X, self.y = search, X, y
        self.base = clone(search.estimator)
        self.splits, self.parallel, self.scorers = splits, parallel, scorers
        self.fit_params, self.score_params = routed.estimator.fit, routed.scorer.score
        self.cache, self.memory = cache, memory
        self.max_epochs: int | None = None  # Hyperband: a model at these epochs is not continued
        self.fingerprint = data_fingerprint(X, y, self.fit_params) if cache else ""
        self.sequential = effective_n_jobs(search.n_jobs) == 1
        self.epochs: list[int | None] = []
        self.kwargs = dict(
            scorer=scorers, fit_params=self.fit_params, score_params=self.score_params,
            return_train_score=search.return_train_score, return_n_test_samples=True,
            return_times=True, return_parameters=False, error_score=search.error_score,
            verbose=search.verbose, return_estimator=cache or self.sequential,
        )  # fmt: skip

    def run(
        self, candidates: list[dict], *, folder: str | None = None,
        parent: tuple[str | None, int] | None = None, callback_ctx: Any = None,
        hooks: FoldHooks | None = None, first: int = 0, n_candidates: int | None = None,
    ) -> list[dict]:  # fmt: skip
        """One result per (candidate, split), in sklearn's order (candidates outer).

        ``folder``: where this trial's fold models are kept; ``parent``: the
        folder and epochs of the Hyperband trial this one continues; ``hooks``:
        the trial's fold and epoch hooks, called when the folds run in this
        process; ``first`` and ``n_candidates``: the index of the first
        candidate among all of the search's (for sklearn's verbose lines and
        callback tasks) and their number.
        """
        n_splits = len(self.splits)
        n_candidates = n_candidates or len(candidates)
        pairs = list(product(enumerate(candidates, first), enumerate(self.splits)))
        contexts = [None] * len(pairs)
        if callback_ctx is not None:
            contexts = [
                callback_ctx.subcontext(
                    task_name="candidate-split-evaluation", task_id=first * n_splits + i
                )
                for i in range(len(pairs))
            ]
        hooks = hooks if self.sequential else None
        fit_params = self.kwargs["fit_params"]
        param = _callbacks_param(self.base) if hooks is not None else None
        if param is not None and hooks is not None:
            given = list(fit_params.get(param) or [])
            fit_params = {**fit_params, param: [*given, hooks.keras_callback()]}
        results: list[Any] = [None] * len(pairs)
        names: list[str] = [""] * len(pairs)
        jobs = []
        for i, (pair, ctx) in enumerate(zip(pairs, contexts, strict=True)):
            (c, params), (s, (train, test)) = pair
            estimator, parameters = clone(self.base), params
            if self.cache:
                trial = clone(self.base).set_params(**clone(params, safe=False))
                names[i] = fold_name(self.fingerprint, train, trial)
                if folder is not None:
                    done = self._done(folder, names[i], trial, train, test, ctx)
                    if done is not None:
                        results[i] = done
                        continue
                start = self._continued(parent, train, trial)
                if start is not None:  # already holds the settings; set_params would refit steps
                    estimator, parameters = start, None
            extra = {"caller": self.search, "callback_ctx": ctx} if _CALLBACKS else {}
            task = dict(train=train, test=test, parameters=parameters,
                        split_progress=(s, n_splits), candidate_progress=(c, n_candidates),
                        **{**self.kwargs, "fit_params": fit_params}, **extra)  # fmt: skip
            if hooks is None:
                job = delayed(_fit_and_score)(estimator, self.X, self.y, **task)
            else:
                job = delayed(_fold_fit)(hooks, s, n_splits, estimator, self.X, self.y, **task)
            jobs.append((i, job))
        outs = self.parallel(job for _, job in jobs) if jobs else []
        epochs: list[int | None] = [None] * len(pairs)
        for i, result in enumerate(results):  # kept folds, scored without training
            if result is not None:
                epochs[i] = result.pop("epochs", None)
        for (i, _), out in zip(jobs, outs, strict=True):
            results[i] = out
            if out["fit_error"] is None:
                epochs[i] = _epochs_trained(out.get("estimator"))
            if self.cache:
                self._keep(out, folder, names[i])
            out.pop("estimator", None)
        self.epochs = epochs
        return results

    # ---- kept folds ------------------------------------------------------------
    def _done(
        self, folder: str, name: str, trial: Any, train: Any, test: Any, ctx: Any
    ) -> dict | None:
        """The result of a fold finished in an earlier run, or None to train it."""
        error = read_error(folder, name)
        if error is not None:
            if self.search.error_score == "raise":
                raise TrialFailedError(error)
            return self._failed(error, test)
        model = kept(folder, name, trial)
        if model is None:
            return None
        if ctx is not None:
            ctx.call_on_fit_task_begin(estimator=self.search)
        try:
            return {**self._scored(model, train, test), "epochs": _epochs_trained(model)}
        finally:
            if ctx is not None:
                ctx.call_on_fit_task_end(estimator=self.search)

    def _scored(self, model: Any, train: Any, test: Any) -> dict:
        """A kept model's result, as ``_fit_and_score`` gives it (no fit time)."""
        error_score = self.search.error_score
        start = time.time()
        X_test, y_test = _safe_split(model, self.X, self.y, test, train)
        params = _check_method_params(self.X, params=self.score_params, indices=test)
        result: dict[str, Any] = {"fit_error": None}
        result["test_scores"] = _score(model, X_test, y_test, self.scorers, params, error_score)
        if self.search.return_train_score:
            X_train, y_train = _safe_split(model, self.X, self.y, train)
            params = _check_method_params(self.X, params=self.score_params, indices=train)
            result["train_scores"] = _score(
                model, X_train, y_train, self.scorers, params, error_score
            )
        result.update(n_test_samples=_num_samples(X_test), fit_time=0.0,
                      score_time=time.time() - start)  # fmt: skip
        return result

    def _failed(self, error: str, test: Any) -> dict:
        """A recorded failure's result, as ``_fit_and_score`` gives it."""
        error_score = self.search.error_score
        assert isinstance(error_score, numbers.Number)
        scores: Any = error_score
        if isinstance(self.scorers, _MultimetricScorer):
            scores = dict.fromkeys(self.scorers._scorers, error_score)
        result = {"fit_error": error, "test_scores": scores, "n_test_samples": len(test),
                  "fit_time": 0.0, "score_time": 0.0}  # fmt: skip
        if self.search.return_train_score:
            result["train_scores"] = scores.copy() if isinstance(scores, dict) else scores
        return result

    def _continued(self, parent: tuple[str | None, int] | None, train: Any, trial: Any) -> Any:
        """Hyperband: the fold model of the shorter trial, set to train the added epochs."""
        if parent is None:
            return None
        folder, epochs = parent
        shorter = clone(trial)
        final_estimator(shorter).set_params(epochs=epochs)
        name = fold_name(self.fingerprint, train, shorter)
        model = self.memory.pop(name, None) if self.memory is not None else None
        if model is None and folder is not None:
            model = kept(folder, name, trial, continued=True)
        if model is None:
            return None
        final_estimator(model).set_params(warm_start=True, epochs=final_estimator(trial).epochs)
        return model

    def _keep(self, out: dict, folder: str | None, name: str) -> None:
        model = out.pop("estimator", None)
        if out["fit_error"] is not None:
            if folder is not None:
                record_error(folder, name, out["fit_error"])
            return
        final = final_estimator(model)
        if "warm_start" in final.get_params(deep=False):
            final.set_params(warm_start=False)
        if folder is not None:
            keep(folder, name, model)
        epochs = final.get_params(deep=False).get("epochs")
        if self.memory is not None and (self.max_epochs is None or epochs < self.max_epochs):
            self.memory[name] = model
