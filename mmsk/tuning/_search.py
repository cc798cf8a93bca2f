"""KerasTunerSearchCV: scikit-learn's search CV with a Keras Tuner oracle choosing."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import ParameterGrid
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import check_random_state, indexable
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_method_params, check_is_fitted

from mmsk import _backend
from mmsk._validation import ParamValidation
from mmsk.exceptions import MmskError, ParameterError
from mmsk.tuning._callbacks import SearchCallback, TrialRecord
from mmsk.tuning._progress import TextProgress
from mmsk.tuning._space import (
    TUNER_PREFIX,
    SearchSpace,
    example,
    has_declarations,
    nested_ok,
)
from mmsk.tuning._trial_fit import TrialContext, _TrialFit, final_estimator, settings_key

TUNERS = ("bayesian", "random", "hyperband", "grid")


class SearchError(MmskError, RuntimeError):
    """The search could not go on (e.g. too many trials failed in a row)."""


class FixedSplits:
    """CV splits made once: every trial of a search scores on the same folds."""

    def __init__(self, splits: list[tuple[Any, Any]]) -> None:
        self.splits = splits

    def split(self, X: Any = None, y: Any = None, groups: Any = None) -> Any:
        return iter(self.splits)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return len(self.splits)


def _subcontext(callback_ctx: Any, search: Any, n_tasks: int | None, sequential: bool) -> Any:
    """sklearn 1.9's callback context of the search task (None without one)."""
    if callback_ctx is None:
        return None
    return callback_ctx.subcontext(
        task_name="search", max_subtasks=n_tasks, sequential_subtasks=sequential
    ).call_on_fit_task_begin(estimator=search)


def _last_line(error: str) -> str:
    """The last non-empty line of a traceback or an error message."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else str(error)


class KerasTunerSearchCV(ParamValidation, BaseSearchCV):
    """Cross-validated search whose candidates come from a Keras Tuner oracle.

    An sklearn search CV (``cv_results_``, ``best_params_``,
    ``best_estimator_`` refit on all data, ``predict``/``score``) for mmsk
    estimators and Pipelines ending in one.  Keras Tuner picks each next
    candidate (random, Bayesian optimisation, Hyperband or grid), records the
    search in ``directory/project_name`` so a killed search resumes where it
    stopped, and runs it on several machines with its chief/worker mode
    (docs/scale-out.md).

    Parameters
    ----------
    estimator : estimator
        An mmsk estimator, a Pipeline ending in one, or any sklearn estimator.
    search_space : dict or list of dict
        ``set_params`` names mapped to what to try: ``mmsk.tuning.Int``,
        ``Float`` (``sampling="log"``), ``Choice``, ``Boolean``, ``Fixed`` (or
        Keras Tuner's own hyperparameter objects); a list, range or array is
        shorthand for ``Choice`` and a single value for ``Fixed``.
        ``when={"fusion": "attention"}`` on a declaration makes it
        conditional.  With ``tuner="grid"`` and no declarations it is a
        ``param_grid`` of ``GridSearchCV`` (a dict or a list of dicts).
    tuner : {"bayesian", "random", "hyperband", "grid"}, default="bayesian"
        The Keras Tuner oracle.  ``"grid"`` over a ``param_grid`` evaluates
        ``ParameterGrid`` exactly as ``GridSearchCV`` does, in one call.
        Hyperband spends epochs as its budget: it sets the estimator's
        ``epochs`` per trial and, with a ``directory``, continues a promising
        short trial's fold models (``warm_start``) instead of training them
        again.
    objective : str, optional
        With several ``scoring`` metrics, the one the oracle maximises
        (default: ``refit`` when it names one).
    max_trials : int or None, default=10
        Trials to run (``None``: the whole grid); not used by Hyperband.
    max_epochs : int, optional
        Hyperband: most epochs a trial trains (default: the estimator's
        ``epochs``).
    factor : int, default=3
        Hyperband: reduction factor between rounds.
    hyperband_iterations : int, default=1
        Hyperband: times to run the whole algorithm.
    cv, scoring, refit, n_jobs, verbose, pre_dispatch, error_score, return_train_score
        As in :class:`sklearn.model_selection.GridSearchCV`; ``n_jobs`` runs a
        trial's folds in parallel.  ``error_score`` applies to failed trials.
    directory : str or path-like, optional
        Where the search (oracle state, trials, each fold's fitted model) is
        kept, so a killed search resumes.  Fold models are named by a
        fingerprint of their training data and settings.  Default: nothing is
        kept (fold models stay in memory; the oracle works in a temporary
        folder).
    project_name : str, default="mmsk_search"
        Sub-folder of ``directory`` for this search.
    overwrite : bool, default=False
        Start afresh instead of resuming the search found in the folder.  A
        folder holding a search with another ``search_space`` or ``tuner`` is
        refused unless ``overwrite=True``.
    max_consecutive_failed_trials : int, default=3
        Stop with :class:`SearchError` after this many failed trials in a row.
        A failed trial is recorded with its error and the search goes on.
    random_state : int, RandomState or None, default=None
        Seed of the oracle.
    callbacks : list of SearchCallback, optional
        Watchers of the trials (e.g. :class:`mmsk.widgets.TunerDashboard`).
    progress : bool, default=True
        Print a progress bar of the trials on stderr.

    Attributes
    ----------
    cv_results_ : dict of arrays
        As in sklearn; with an oracle, plus ``trial_id``, ``status`` and
        ``error`` per trial (and ``epochs`` with Hyperband).  ``results_frame()`` shows it sorted.
    best_estimator_, best_params_, best_score_, best_index_, scorer_, n_splits_, refit_time_
        As in sklearn.
    trials_ : list of TrialRecord
        Every trial, in order.

    Examples
    --------
    >>> import numpy as np
    >>> from mmsk import KerasTunerSearchCV, MultimodalClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> search = KerasTunerSearchCV(
    ...     MultimodalClassifier(epochs=2, random_state=0),
    ...     {"learning_rate": [1e-3, 1e-2], "head_units": [8, 16]},
    ...     tuner="random", max_trials=2, cv=2, random_state=0, progress=False,
    ... ).fit(X, y)
    >>> len(search.cv_results_["params"]), sorted(search.best_params_)
    (2, ['head_units', 'learning_rate'])
    """

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        "search_space": [dict, list],
        "tuner": [StrOptions(set(TUNERS))],
        "objective": [str, None],
        "max_trials": [Interval(Integral, 1, None, closed="left"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "factor": [Interval(Integral, 2, None, closed="left")],
        "hyperband_iterations": [Interval(Integral, 1, None, closed="left")],
        "directory": [str, os.PathLike, None],
        "project_name": [str, None],
        "overwrite": ["boolean"],
        "max_consecutive_failed_trials": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "callbacks": [list, None],
        "progress": ["boolean"],
    }

    def __init__(
        self,
        estimator: Any,
        search_space: dict[str, Any],
        *,
        tuner: str = "bayesian",
        objective: str | None = None,
        max_trials: int | None = 10,
        max_epochs: int | None = None,
        factor: int = 3,
        hyperband_iterations: int = 1,
        cv: Any = None,
        scoring: Any = None,
        refit: Any = True,
        directory: str | os.PathLike | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        max_consecutive_failed_trials: int = 3,
        n_jobs: int | None = None,
        random_state: Any = None,
        callbacks: list[SearchCallback] | None = None,
        progress: bool = True,
        verbose: int = 0,
        pre_dispatch: Any = "2*n_jobs",
        error_score: Any = np.nan,
        return_train_score: bool = False,
    ) -> None:
        super().__init__(
            estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
            verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
            return_train_score=return_train_score,
        )  # fmt: skip
        self.estimator: Any = estimator
        self.search_space = search_space
        self.tuner = tuner
        self.objective = objective
        self.max_trials = max_trials
        self.max_epochs = max_epochs
        self.factor = factor
        self.hyperband_iterations = hyperband_iterations
        self.directory = directory
        self.project_name = project_name
        self.overwrite = overwrite
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.random_state = random_state
        self.callbacks = callbacks
        self.progress = progress

    # ---- set-up ------------------------------------------------------------
    def _grid_mode(self) -> bool:
        """``tuner="grid"`` over a ParameterGrid (no mmsk declarations in it)."""
        return self.tuner == "grid" and not has_declarations(self.search_space)

    def _check_setup(self) -> SearchSpace | None:
        self._validate_params()
        self._budget: str = ""
        if self._grid_mode():
            # sklearn's own checks and messages; set_params checks the names per candidate
            self._candidates = list(ParameterGrid(self.search_space))
            return None
        if not isinstance(self.search_space, dict):
            raise ParameterError(
                f"tuner={self.tuner!r} takes a dict as search_space (a list of dicts is "
                f"for tuner='grid'). Received: {type(self.search_space).__name__}"
            )
        space = SearchSpace(self.search_space)
        self._check_names(space)
        if self.tuner == "hyperband":
            self._budget = self._budget_param()
            if self._budget in space.names:
                raise ParameterError(
                    f"search_space sets {self._budget!r}, which Hyperband sets per trial as "
                    "its budget; remove it and use max_epochs=..."
                )
            final = final_estimator(self.estimator)
            self._max_epochs = self.max_epochs or int(final.get_params()["epochs"])
        return space

    def _check_names(self, space: SearchSpace) -> None:
        """Raise ParameterError for names ``set_params`` would not take.

        ``get_params`` does not list every name (a step the space swaps, an
        estimator without deep parameters): those are tried with ``set_params``.
        """
        valid = set(self.estimator.get_params(deep=True))
        try:
            space.check(valid)
        except ParameterError as error:
            for name in space.names:
                parts = name.split("__")
                swapped = any("__".join(parts[:i]) in space.names for i in range(1, len(parts)))
                if swapped or name in valid or nested_ok(name, valid):
                    continue
                try:
                    clone(self.estimator).set_params(**{name: example(space.declarations[name])})
                except Exception:
                    raise error from None

    def _budget_param(self) -> str:
        """The ``set_params`` name of the epochs Hyperband sets per trial."""
        prefix, estimator = "", self.estimator
        while hasattr(estimator, "steps"):
            name, estimator = estimator.steps[-1]
            prefix += f"{name}__"
        params = estimator.get_params(deep=False)
        if "epochs" not in params or "warm_start" not in params:
            raise ParameterError(
                "tuner='hyperband' needs an estimator with `epochs` and `warm_start` "
                f"parameters (an mmsk estimator, or a Pipeline ending in one). Received: "
                f"{type(estimator).__name__}"
            )
        return f"{prefix}epochs"

    def _metric(self) -> str:
        if self.objective is not None:
            return self.objective
        if isinstance(self.scoring, (list, tuple, set, dict)):
            if isinstance(self.refit, str):
                return self.refit
            if self._grid_mode():
                return "score"  # no oracle to steer; sklearn picks by refit
            raise ParameterError(
                "with several scoring metrics, name the one the oracle maximises: "
                f"objective='...' (one of {sorted(self.scoring)})"
            )
        return "score"

    # ---- fit ---------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, **params: Any) -> KerasTunerSearchCV:
        """Run the search, then refit the best settings on all of ``X``.

        Parameters
        ----------
        X : DataFrame, ModalityBatch or array-like
            Training data, as the estimator takes it.
        y : array-like, optional
            Targets.
        **params
            Routed as ``GridSearchCV`` routes them: to the estimator's
            ``fit``, the scorer and the splitter (``groups``).

        Returns
        -------
        self
        """
        space = self._check_setup()
        self._space, self._metric_name = space, self._metric()
        self._data: tuple[Any, Any, dict[str, Any]] | None = (X, y, params)
        self.trials_: list[TrialRecord] = []
        self._failed: dict[str, str] = {}  # trials whose every fit failed: their error
        self._real: tuple | None = None  # sklearn's own candidates and fold results
        self._warned: set[str] = set()
        self._fatal: BaseException | None = None
        self._known: dict[str, Any] = {}  # finished trials by id, read back from the folder
        self._context = TrialContext()
        if self.directory is None:
            self._where: tuple[str, str] | None = None
            try:
                super().fit(X, y, **params)
            finally:
                self._data = None
            self._refresh_failed()
            return self
        # Fold models are kept in the folder: sklearn fits a caching wrapper.
        self._where = (os.fspath(self.directory), self.project_name or "mmsk_search")
        self._check_folder()
        user = self.estimator
        self.estimator = _TrialFit(user, self._context)
        try:
            super().fit(X, y, **params)
        finally:
            self.estimator = user
            self._data = None
        self._refresh_failed()
        if hasattr(self, "best_estimator_"):
            self.best_estimator_: Any = self.best_estimator_.estimator_
        return self

    def _check_folder(self) -> None:
        """Refuse to resume a search made with another search space."""
        assert self._where is not None
        folder = os.path.join(*self._where)
        path = os.path.join(folder, "mmsk_search_space.json")
        key = settings_key({"tuner": self.tuner, "space": self.search_space})
        if os.path.exists(path) and not self.overwrite:
            with open(path, encoding="utf-8") as handle:
                kept = handle.read().strip()
            if kept != key:
                raise ParameterError(
                    f"{folder!r} holds a search with another search_space or tuner; it "
                    "cannot be resumed with this one. Use another project_name, or "
                    "overwrite=True to start afresh there."
                )
        if self.overwrite and os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(key)

    def _fixed_splits(self) -> FixedSplits:
        """The CV splits, made once per search (sklearn's routing of ``groups``)."""
        assert self._data is not None
        X, y, params = self._data
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        return FixedSplits(list(self._checked_cv_orig.split(X, y, **routed.splitter.split)))

    def _run_search(self, evaluate_candidates: Any, *, callback_ctx: Any = None) -> None:
        cv = self._cv = self._fixed_splits()
        self._progress = TextProgress() if self.progress else None
        if self._grid_mode():
            self._run_grid(evaluate_candidates, cv, callback_ctx)
        else:
            self._run_oracle(evaluate_candidates, cv, callback_ctx)
        # What sklearn fits next is the refit on all rows: not a fold of any trial.
        self._context.refit, self._context.trial_dir = True, None

    def _run_grid(self, evaluate_candidates: Any, cv: FixedSplits, callback_ctx: Any) -> None:
        """Every ParameterGrid candidate in one call, in its order, as GridSearchCV."""
        candidates = self._candidates
        self._notify("on_search_begin")
        if self._where is not None:
            self._context.trial_dir = os.path.join(*self._where, "grid")
        search_ctx = _subcontext(callback_ctx, self, len(candidates) * cv.get_n_splits(), False)
        results = evaluate_candidates(candidates, cv=cv, callback_ctx=search_ctx)
        if search_ctx is not None:
            search_ctx.call_on_fit_task_end(estimator=self)
        for index, params in enumerate(candidates):
            record = TrialRecord(str(index), params, "RUNNING")
            self._notify("on_trial_begin", record)
            self._finish(record, results, index)
            self.trials_.append(record)
            self._notify("on_trial_end", record)
        self._notify("on_search_end")

    def _finish(self, record: TrialRecord, results: dict, index: int) -> None:
        record.error = self._errors[index]
        record.status = "FAILED" if record.error else "COMPLETED"
        record.duration = float(
            results["mean_fit_time"][index] + results["mean_score_time"][index]
        )
        if f"mean_test_{self._metric_name}" not in results:  # several metrics, none named
            self._metric_name = next(k for k in results if k.startswith("mean_test_"))[10:]
        score = float(results[f"mean_test_{self._metric_name}"][index])
        if record.status == "COMPLETED" and not math.isnan(score):
            record.score = score
            record.std = float(results[f"std_test_{self._metric_name}"][index])

    def _format_results(
        self, candidate_params: Any, n_splits: int, out: Any, more_results: Any = None
    ) -> dict:
        if not self._grid_mode():
            self._real = (list(candidate_params), list(out), more_results)
            candidate_params, out = self._with_failed(candidate_params, n_splits, out)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = super()._format_results(candidate_params, n_splits, out, more_results)
        for warning in caught:  # sklearn warns once per call; a search is one call
            kind = str(warning.message).split(":")[0]
            if kind not in self._warned:
                self._warned.add(kind)
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)  # fmt: skip
        errors = [
            next((o["fit_error"] for o in out[i * n_splits : (i + 1) * n_splits]
                  if o.get("fit_error")), None)
            for i in range(len(candidate_params))
        ]  # fmt: skip
        self._errors = [_last_line(e) if e else None for e in errors]
        if self._grid_mode():
            return results  # exactly GridSearchCV's; trials_ and results_frame() add the rest
        # The oracle's columns, seen by a refit callable too.
        running = len(candidate_params) > len(self.trials_)  # the trial being evaluated
        ids = [r.trial_id for r in self.trials_] + ([self._running] if running else [])
        results["trial_id"] = np.array(ids, dtype=object)
        results["status"] = np.array(
            ["FAILED" if e else "COMPLETED" for e in errors], dtype=object
        )
        results["error"] = np.array(self._errors, dtype=object)
        if self.tuner == "hyperband":
            epochs = [r.epochs for r in self.trials_] + ([self._running_epochs] if running else [])
            results["epochs"] = np.array(epochs, dtype=object)
        return results

    def _with_failed(self, candidate_params: list, n_splits: int, out: list) -> tuple:
        """Insert rows for trials whose every fit failed, in trial order.

        sklearn raises "All the N fits failed" for such a one-candidate call
        and keeps no row; GridSearchCV would show the candidate with
        ``error_score``, so the row is made here from the recorded error.
        """
        if not self._failed or not out:
            return candidate_params, out
        real = iter(range(len(candidate_params)))
        params: list = []
        entries: list = []
        for record in self.trials_:
            if record.trial_id in self._failed:
                error = self._failed[record.trial_id]
                params.append(record.params)
                entries += [self._failed_entry(out[0], error, test) for _, test in self._cv.splits]
                continue
            i = next(real)
            params.append(candidate_params[i])
            entries += out[i * n_splits : (i + 1) * n_splits]
        for i in real:  # the trial being evaluated now
            params.append(candidate_params[i])
            entries += out[i * n_splits : (i + 1) * n_splits]
        return params, entries

    def _failed_entry(self, template: dict, error: str, test: Any) -> dict:
        """A fold result like sklearn's for a failed fit (``error_score`` scores)."""
        entry = dict(template)
        for key in ("test_scores", "train_scores"):
            if key in entry:
                scores = entry[key]
                keys = scores if isinstance(scores, dict) else None
                entry[key] = (
                    self.error_score if keys is None else dict.fromkeys(keys, self.error_score)
                )
        entry.update(fit_error=error, fit_time=0.0, score_time=0.0, n_test_samples=len(test))
        return entry

    def _refresh_failed(self) -> None:
        """Add the rows of trials that failed after the last successful one."""
        if self._grid_mode() or not self._failed or self._real is None:
            return
        params, out, more = self._real
        results = self._format_results(params, self.n_splits_, out, more)
        self.cv_results_ = results
        if self.refit or not self.multimetric_:
            metric = self.refit if self.multimetric_ else "score"
            self.best_index_ = self._select_best_index(self.refit, metric, results)

    def _run_oracle(self, evaluate_candidates: Any, cv: FixedSplits, callback_ctx: Any) -> None:
        _backend.keras_tuner()  # a clear error when Keras Tuner is missing
        from mmsk.tuning._tuner import FatalError, SearchTuner, is_chief, make_oracle

        seed = None
        if self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        assert self._space is not None
        oracle = make_oracle(self, self._space.hyperparameters(), seed)
        oracle.verbose = 1 if self.verbose >= 2 else 0
        temporary = self._where is None
        directory, project = self._where or (tempfile.mkdtemp(prefix="mmsk-search-"), "oracle")
        # The folder was checked (or is new): Keras Tuner resumes what is there.
        tuner = SearchTuner(oracle, directory, project, False, quiet=self.verbose < 2)
        tuner.describe = self._describe
        tuner.on_begin = lambda record: self._notify("on_trial_begin", record)
        tuner.on_end = lambda record: self._notify("on_trial_end", record)
        search_ctx = _subcontext(callback_ctx, self, None, True)

        def evaluate(trial: Any, record: TrialRecord) -> None:
            self._evaluate(evaluate_candidates, cv, search_ctx, tuner, trial, record)

        self._notify("on_search_begin")
        with warnings.catch_warnings():
            # Keras Tuner's own deprecated calls (threading.currentThread) on every trial.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="keras_tuner")
            try:
                if not tuner.is_worker:
                    self._replay(tuner, evaluate)  # trials a killed run finished
                tuner.search(evaluate)
            except FatalError:
                if self._fatal is not None:
                    raise self._fatal from None
                raise
            except RuntimeError as exc:  # Keras Tuner's limit on failures in a row
                if not str(exc).startswith("Number of consecutive failures"):
                    raise
                failed = [r for r in self.trials_ if r.status == "FAILED"]
                last = failed[-1].error if failed else str(exc)
                raise SearchError(
                    f"the search stopped: {self.max_consecutive_failed_trials} trials failed in "
                    f"a row (max_consecutive_failed_trials). Last error: {last}"
                ) from exc
            finally:
                if temporary:
                    shutil.rmtree(directory, ignore_errors=True)
        if is_chief() or tuner.is_worker:
            self._replay(tuner, evaluate)  # trials the other processes ran
        if search_ctx is not None:
            search_ctx.call_on_fit_task_end(estimator=self)
        self._notify("on_search_end")
        if not self.trials_:
            raise SearchError(
                "no trial finished: the oracle had no trials left to run and none were "
                "recorded in " + os.path.join(directory, project)
            )
        if not any(r.status == "COMPLETED" for r in self.trials_):
            n_fits = len(self.trials_) * cv.get_n_splits()
            raise ValueError(
                f"All the {n_fits} fits failed. It is very likely that your model is "
                f"misconfigured. Last error: {self.trials_[-1].error}"
            )

    def _describe(self, trial: Any) -> TrialRecord:
        assert self._space is not None
        params = self._space.params(trial.hyperparameters)
        values = trial.hyperparameters.values
        epochs = values.get(f"{TUNER_PREFIX}epochs")
        if epochs is not None:
            params[self._budget] = int(epochs)
        return TrialRecord(trial.trial_id, params, "RUNNING", epochs=epochs)

    def _evaluate(
        self, evaluate_candidates: Any, cv: FixedSplits, search_ctx: Any, tuner: Any,
        trial: Any, record: TrialRecord,
    ) -> None:  # fmt: skip
        values = trial.hyperparameters.values
        ctx = self._context
        if self._where is not None:
            ctx.trial_dir = tuner.get_trial_dir(trial.trial_id)
        resume = values.get(f"{TUNER_PREFIX}trial_id")
        ctx.resume_dir = tuner.get_trial_dir(resume) if resume and self._where else None
        ctx.resume_epochs = None
        if resume:
            parent = self._known.get(resume) or tuner.oracle.get_trial(resume)
            ctx.resume_epochs = self._describe(parent).epochs
        self._running, self._running_epochs = record.trial_id, record.epochs
        trial_ctx = None
        if search_ctx is not None:  # one task per trial, its folds below it
            trial_ctx = search_ctx.subcontext(
                task_name="trial", max_subtasks=cv.get_n_splits(), sequential_subtasks=False
            ).call_on_fit_task_begin(estimator=self)
        try:
            results = evaluate_candidates([record.params], cv=cv, callback_ctx=trial_ctx)
        except ValueError as exc:
            if not str(exc).strip().startswith("All the "):
                raise self._stop(exc) from exc
            # Every fold of this candidate failed: a failed trial, the search goes on.
            warnings.warn(f"trial {record.trial_id} failed: {exc}", FitFailedWarning, 2)
            record.status, record.error = "FAILED", _last_line(str(exc))
            self._failed[record.trial_id] = str(exc)
            self.trials_.append(record)
            return
        except Exception as exc:
            raise self._stop(exc) from exc
        if trial_ctx is not None:
            trial_ctx.call_on_fit_task_end(estimator=self)
        self.trials_.append(record)
        self._finish(record, results, len(results["params"]) - 1)

    def _stop(self, exc: Exception) -> Exception:
        """An error outside a fit (or error_score='raise'): it ends the search."""
        from mmsk.tuning._tuner import FatalError

        self._fatal = exc
        return FatalError(str(exc))

    def _replay(self, tuner: Any, evaluate: Any) -> None:
        """Read finished trials back from their saved fold models (no training)."""
        seen = {r.trial_id for r in self.trials_}
        finished = tuner.finished_trials()
        self._known = {t.trial_id: t for t in finished}
        for trial in finished:
            if trial.trial_id in seen:
                continue
            record = self._describe(trial)
            evaluate(trial, record)
            self._notify("on_trial_end", record)

    def _notify(self, hook: str, *args: Any) -> None:
        # self.callbacks is read at each call: a dashboard may attach mid-search.
        for callback in [*(self.callbacks or []), self._progress]:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, *args)

    # ---- results -------------------------------------------------------------
    def results_frame(self) -> pd.DataFrame:
        """``cv_results_`` as a DataFrame, best first (failed trials last).

        Returns
        -------
        DataFrame
            One row per trial: ``trial_id``, ``status``, rank, mean and std of
            the test score(s), the settings (``param_*``), times and ``error``.
        """
        check_is_fitted(self, "cv_results_")
        frame = pd.DataFrame(self.cv_results_)
        if "status" not in frame:  # tuner="grid": one trial per row, in order
            for column in ("trial_id", "status", "error"):
                frame[column] = [getattr(r, column) for r in self.trials_]
        rank = f"rank_test_{self._metric_name}"
        first = ["trial_id", "status", rank, f"mean_test_{self._metric_name}",
                 f"std_test_{self._metric_name}"]  # fmt: skip
        params = [c for c in frame.columns if c.startswith("param_")]
        rest = [c for c in frame.columns if c not in first and c not in params and c != "params"]
        frame = frame[[*first, *params, *rest]]
        return frame.sort_values([rank, "trial_id"], kind="stable").reset_index(drop=True)
