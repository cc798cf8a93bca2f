"""KerasTunerSearchCV: scikit-learn's search CV with a Keras Tuner oracle choosing."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import warnings
from contextlib import nullcontext
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.metrics._scorer import _MultimetricScorer
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import (
    _insert_error_scores,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils import check_random_state, indexable
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.parallel import Parallel
from sklearn.utils.validation import _check_method_params, check_is_fitted

from mmsk import _backend
from mmsk._validation import ParamValidation
from mmsk.exceptions import MmskError, ParameterError
from mmsk.tuning._callbacks import SearchCallback, TrialRecord, replaces_progress
from mmsk.tuning._evaluate import FoldHooks, FoldRunner
from mmsk.tuning._progress import TrialProgress
from mmsk.tuning._space import (
    TUNER_PREFIX,
    SearchSpace,
    example,
    has_declarations,
    nested_ok,
)
from mmsk.tuning._trial_fit import final_estimator, settings_key

TUNERS = ("bayesian", "random", "hyperband", "grid")
_RUNNING = ("_runner", "_out", "_params", "_progress", "_known", "_fatal")  # not pickled


class SearchError(MmskError, RuntimeError):
    """The search could not go on (e.g. too many trials failed in a row)."""


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
        ``epochs`` per trial and continues a promising short trial's fold
        models (``warm_start``) instead of training them again.
    objective : str, optional
        With several ``scoring`` metrics, the one the oracle maximises
        (default: ``refit`` when it names one, else the first metric of
        ``scoring``).
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
        written (the oracle works in a temporary folder; Hyperband keeps the
        fold models it may continue in memory).
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
    progress : bool or "auto", default="auto"
        Print a progress bar of the trials (``keras.utils.Progbar``, on
        standard output).  ``"auto"``: unless a callback shows progress
        itself (a :class:`~mmsk.widgets.TunerDashboard` in a notebook).

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
        "progress": ["boolean", StrOptions({"auto"})],
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
        progress: bool | str = "auto",
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

    def __getstate__(self) -> dict[str, Any]:
        # sklearn pickles the search into each fold's task (``caller``): without
        # the state of a running search (the workers, fold models in memory).
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k not in _RUNNING}

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

    def _objective(self, scores: Any) -> str:
        """The metric the oracle maximises, given one fold's test scores.

        One metric: ``"score"``.  Several: ``objective``, else ``refit`` when
        it names one, else the first metric of ``scoring`` (in its order).
        """
        if not isinstance(scores, dict):
            if self.objective not in (None, "score"):
                raise ParameterError(
                    f"objective={self.objective!r} names a metric, but scoring gives one "
                    "score; remove objective or pass several metrics as scoring"
                )
            return "score"
        names = list(scores)
        if self.objective is not None:
            if self.objective not in names:
                raise ParameterError(
                    f"objective must be one of the scoring metrics {names}. "
                    f"Received: objective={self.objective!r}"
                )
            return self.objective
        return self.refit if isinstance(self.refit, str) and self.refit in names else names[0]

    def _check_distributed(self) -> None:
        """A ParameterGrid runs in one process: refuse Keras Tuner's distributed mode."""
        if self._grid_mode() and os.environ.get("KERASTUNER_TUNER_ID"):
            raise ParameterError(
                "tuner='grid' over a param_grid runs in one process, as GridSearchCV does, "
                "and cannot be shared by Keras Tuner's chief and workers "
                "(KERASTUNER_TUNER_ID is set). Declare the values with "
                "mmsk.tuning.Choice([...]) to search the grid with Keras Tuner's "
                "GridSearchOracle, which can."
            )

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
        self._check_distributed()
        self._space = space
        self._metric_name = "score"
        self.trials_: list[TrialRecord] = []
        self._fatal: BaseException | None = None
        self._known: dict[str, Any] = {}  # finished trials by id, read back from the folder
        self._where: tuple[str, str] | None = None
        if self.directory is not None:
            self._where = (os.fspath(self.directory), self.project_name or "mmsk_search")
            self._check_folder()
        try:
            self._fit(X, y, params)
        finally:
            self._runner: FoldRunner | None = None  # drops the fold models kept in memory
        return self

    def _fit(self, X: Any, y: Any, params: dict[str, Any]) -> None:
        """sklearn's ``BaseSearchCV.fit``, with the folds run by a FoldRunner."""
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        weight = params.get("sample_weight")
        meta = None if weight is None else {"sample_weight": weight}
        root = None
        if hasattr(self, "_init_callback_context"):  # sklearn >= 1.9
            root = self._init_callback_context(
                max_subtasks=1 + (self.refit is not False)
            ).call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=meta)
        cv = self._checked_cv_orig = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        split = routed.splitter.split
        if hasattr(self, "_check_input_parameters"):
            self._check_input_parameters(X=X, y=y, split_params=split)
        self.n_splits_ = cv.get_n_splits(X, y, **split)
        splits = list(cv.split(X, y, **split))  # once per search: every trial, same folds
        if len(splits) != self.n_splits_:
            raise ValueError(
                "cv.split and cv.get_n_splits return inconsistent results. "
                f"Expected {self.n_splits_} splits, got {len(splits)}"
            )
        self._params: list[dict] = []
        self._out: list[dict] = []
        memory: dict[str, Any] | None = {} if self.tuner == "hyperband" else None
        # Results as they come: each fold's model is kept as soon as it is fitted, so a
        # killed search loses at most the folds being fitted.
        parallel = Parallel(n_jobs=self.n_jobs, pre_dispatch=self.pre_dispatch,
                            return_as="generator")  # fmt: skip
        with parallel:
            self._runner = FoldRunner(
                self, X, y, routed, scorers, splits, parallel,
                cache=self._where is not None or memory is not None, memory=memory,
            )  # fmt: skip
            self._runner.max_epochs = getattr(self, "_max_epochs", None)
            if root is not None:
                self._run_search(self._evaluate_candidates, callback_ctx=root)
            else:
                self._run_search(self._evaluate_candidates)
        out = self._out
        if not out:
            raise ValueError(
                "No fits were performed. Was the CV iterator empty? Were there no candidates?"
            )
        _warn_or_raise_about_fit_failures(out, self.error_score)  # once per search
        if callable(self.scoring):
            _insert_error_scores(out, self.error_score)
        first = next((o["test_scores"] for o in out if o["fit_error"] is None), None)
        self._metric_name = self._objective(first)
        results = self._format_results(self._params, self.n_splits_, out)
        self.multimetric_ = isinstance(out[0]["test_scores"], dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(out[0]["test_scores"])
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self._refit(X, y, routed.estimator.fit, root, meta)
        self.scorer_ = scorers._scorers if isinstance(scorers, _MultimetricScorer) else scorers
        self.cv_results_ = results
        if root is not None:
            root.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=meta)

    def _refit(self, X: Any, y: Any, fit_params: dict, root: Any, meta: Any) -> None:
        """The best settings on all of ``X`` (the estimator and parameters cloned)."""
        best = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
        self.best_estimator_: Any = best
        ctx = root.subcontext(task_name="refit-with-best-params") if root is not None else None
        with ctx.propagate_callback_context(best) if ctx is not None else nullcontext():
            if ctx is not None:
                ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=meta)
            start = time.time()
            if y is not None:
                best.fit(X, y, **fit_params)
            else:
                best.fit(X, **fit_params)
            self.refit_time_ = time.time() - start
        if hasattr(best, "feature_names_in_"):
            self.feature_names_in_ = best.feature_names_in_
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=meta)

    def _evaluate_candidates(
        self, candidate_params: Any, cv: Any = None, more_results: Any = None,
        callback_ctx: Any = None, *, folder: str | None = None,
        parent: tuple[str | None, int] | None = None, record: TrialRecord | None = None,
        first: int = 0, n_candidates: int | None = None,
    ) -> list[dict]:  # fmt: skip
        """Cross-validate candidates (sklearn's ``evaluate_candidates``); their fold results.

        With ``record`` (one candidate), the callbacks' fold and epoch hooks are
        called for it while its folds run in this process.
        """
        assert self._runner is not None
        candidates = list(candidate_params)
        hooks = FoldHooks(self._notify, record) if record is not None else None
        out = self._runner.run(
            candidates, folder=folder, parent=parent, callback_ctx=callback_ctx,
            hooks=hooks, first=first, n_candidates=n_candidates,
        )  # fmt: skip
        self._params.extend(candidates)
        self._out.extend(out)
        return out

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
        # Atomic: the chief and the workers of a distributed search start together, and
        # one must never read the file half-written by another (an empty key).
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(key)
        os.replace(partial, path)

    def _run_search(self, evaluate_candidates: Any, *, callback_ctx: Any = None) -> None:
        self._progress = self._text_progress()
        if self._grid_mode():
            self._run_grid(evaluate_candidates, callback_ctx)
        else:
            self._run_oracle(evaluate_candidates, callback_ctx)

    def _text_progress(self) -> TrialProgress | None:
        """The text progress bar, unless ``progress=False`` or a widget shows progress."""
        if self.progress == "auto":
            shown = any(replaces_progress(c) for c in self.callbacks or [])
            return None if shown else TrialProgress()
        return TrialProgress() if self.progress else None

    def _total(self) -> int | None:
        """Candidates the search will try, when known."""
        if self._grid_mode():
            return len(self._candidates)
        return None if self.tuner == "hyperband" else self.max_trials

    def _say_fitting(self) -> None:
        """sklearn's verbose line, once per search."""
        if self.verbose > 0:
            n, k = self._total(), self.n_splits_
            if n is None:
                print(f"Fitting {k} folds for each candidate the {self.tuner} oracle picks")
            else:
                print(f"Fitting {k} folds for each of {n} candidates, totalling {n * k} fits")

    def _run_grid(self, evaluate_candidates: Any, callback_ctx: Any) -> None:
        """Every ParameterGrid candidate in one call, in its order, as GridSearchCV."""
        candidates = self._candidates
        self._notify("on_search_begin")
        self._say_fitting()
        folder = os.path.join(*self._where, "grid") if self._where is not None else None
        k, n = self.n_splits_, len(candidates)
        search_ctx = _subcontext(callback_ctx, self, n * k, False)
        records = [TrialRecord(str(index), params, "RUNNING") for index, params in
                   enumerate(candidates)]  # fmt: skip
        assert self._runner is not None
        if self._runner.sequential:  # one trial at a time, its fold and epoch hooks called
            for index, record in enumerate(records):
                self._notify("on_trial_begin", record)
                folds = evaluate_candidates(
                    [record.params], callback_ctx=search_ctx, folder=folder,
                    record=record, first=index, n_candidates=n,
                )  # fmt: skip
                self._grid_trial(record, folds, notify_begin=False)
        else:  # every fold of every candidate in parallel, the trials reported after
            out = evaluate_candidates(candidates, callback_ctx=search_ctx, folder=folder)
            epochs = self._runner.epochs
            for index, record in enumerate(records):
                self._runner.epochs = epochs[index * k : (index + 1) * k]
                self._grid_trial(record, out[index * k : (index + 1) * k], notify_begin=True)
        if search_ctx is not None:
            search_ctx.call_on_fit_task_end(estimator=self)
        self._notify("on_search_end")

    def _grid_trial(self, record: TrialRecord, folds: list[dict], notify_begin: bool) -> None:
        """A grid candidate's record from its folds' results, reported."""
        if notify_begin:
            self._notify("on_trial_begin", record)
        record.duration = float(sum(o["fit_time"] + o["score_time"] for o in folds))
        self._finish(record, folds)
        self.trials_.append(record)
        self._notify("on_trial_end", record)

    def _finish(self, record: TrialRecord, folds: list[dict]) -> None:
        """A trial's status, score, error and epochs trained from its folds' results."""
        assert self._runner is not None
        trained = [e for e in self._runner.epochs if e is not None]
        if trained:  # the most a fold trained (early stopping may end some sooner)
            record.epochs = max(trained)
        errors = [o["fit_error"] for o in folds if o["fit_error"] is not None]
        record.error = _last_line(errors[0]) if errors else None
        record.status = "FAILED" if errors else "COMPLETED"
        scores = [o["test_scores"] for o in folds]
        if errors or not folds:
            return
        metric = self._objective(scores[0])
        values = np.array([s[metric] if isinstance(s, dict) else s for s in scores], float)
        if np.isfinite(values).all():
            record.score, record.std = float(values.mean()), float(values.std())

    def _format_results(
        self, candidate_params: Any, n_splits: int, out: Any, more_results: Any = None
    ) -> dict:
        results = super()._format_results(candidate_params, n_splits, out, more_results)
        if self._grid_mode():
            return results  # exactly GridSearchCV's; trials_ and results_frame() add the rest
        # The oracle's columns, seen by a refit callable too.
        trials = self.trials_
        results["trial_id"] = np.array([r.trial_id for r in trials], dtype=object)
        results["status"] = np.array([r.status for r in trials], dtype=object)
        results["error"] = np.array([r.error for r in trials], dtype=object)
        if self.tuner == "hyperband":
            results["epochs"] = np.array([r.epochs for r in trials], dtype=object)
        return results

    def _run_oracle(self, evaluate_candidates: Any, callback_ctx: Any) -> None:
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
            self._evaluate(evaluate_candidates, search_ctx, tuner, trial, record)

        self._notify("on_search_begin")
        self._say_fitting()
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
            except RuntimeError as exc:  # Keras Tuner's limit on failures in a row?
                failed = list(itertools.takewhile(lambda r: r.status == "FAILED",
                                                  reversed(self.trials_)))  # fmt: skip
                if len(failed) < self.max_consecutive_failed_trials:
                    raise
                raise SearchError(
                    f"the search stopped: {len(failed)} trials failed in a row "
                    f"(max_consecutive_failed_trials). Last error: {failed[0].error}"
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

    def _describe(self, trial: Any) -> TrialRecord:
        assert self._space is not None
        params = self._space.params(trial.hyperparameters)
        values = trial.hyperparameters.values
        epochs = values.get(f"{TUNER_PREFIX}epochs")
        if epochs is not None:
            params[self._budget] = int(epochs)
        return TrialRecord(trial.trial_id, params, "RUNNING", epochs=epochs)

    def _evaluate(
        self, evaluate_candidates: Any, search_ctx: Any, tuner: Any, trial: Any,
        record: TrialRecord,
    ) -> None:  # fmt: skip
        values = trial.hyperparameters.values
        folder = tuner.get_trial_dir(trial.trial_id) if self._where is not None else None
        parent = None
        resume = values.get(f"{TUNER_PREFIX}trial_id")
        if resume:  # Hyperband: continue the fold models of this shorter trial
            shorter = self._known.get(resume) or tuner.oracle.get_trial(resume)
            epochs = self._describe(shorter).epochs
            if epochs is not None:
                where = tuner.get_trial_dir(resume) if self._where is not None else None
                parent = (where, int(epochs))
        trial_ctx = None
        if search_ctx is not None:  # one task per trial, its folds below it
            trial_ctx = search_ctx.subcontext(
                task_name="trial", max_subtasks=self.n_splits_, sequential_subtasks=False
            ).call_on_fit_task_begin(estimator=self)
        try:
            folds = evaluate_candidates(
                [record.params], callback_ctx=trial_ctx, folder=folder, parent=parent,
                record=record,
            )  # fmt: skip
            self._finish(record, folds)
        except Exception as exc:  # outside a fit, or error_score="raise": the search ends
            raise self._stop(exc) from exc
        if trial_ctx is not None:
            trial_ctx.call_on_fit_task_end(estimator=self)
        self.trials_.append(record)

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
