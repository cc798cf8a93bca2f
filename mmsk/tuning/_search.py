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
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from mmsk import _backend
from mmsk.exceptions import MmskError, ParameterError
from mmsk.tuning._callbacks import SearchCallback, TrialRecord
from mmsk.tuning._progress import TextProgress
from mmsk.tuning._space import TUNER_PREFIX, SearchSpace
from mmsk.tuning._trial_fit import (
    ROWS,
    TrialContext,
    _TrialFit,
    error_text,
    final_estimator,
    settings_key,
)

TUNERS = ("bayesian", "random", "hyperband", "grid")


class SearchError(MmskError, RuntimeError):
    """The search could not go on (e.g. too many trials failed in a row)."""


class KerasTunerSearchCV(BaseSearchCV):
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
    search_space : dict
        ``set_params`` names mapped to what to try: ``mmsk.tuning.Int``,
        ``Float`` (``sampling="log"``), ``Choice``, ``Boolean``, ``Fixed`` (or
        Keras Tuner's own hyperparameter objects); a list is shorthand for
        ``Choice`` and a single value for ``Fixed``.  ``when={"fusion":
        "attention"}`` on a declaration makes it conditional.
    tuner : {"bayesian", "random", "hyperband", "grid"}, default="bayesian"
        The Keras Tuner oracle.  Hyperband spends epochs as its budget: it sets
        the estimator's ``epochs`` per trial and continues a promising short
        trial's fold models (``warm_start``) instead of training them again.
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
        kept.  Default: a temporary folder removed after ``fit`` (the search
        then cannot resume).
    project_name : str, default="mmsk_search"
        Sub-folder of ``directory`` for this search.
    overwrite : bool, default=False
        Start afresh instead of resuming the search found in the folder.
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
        As in sklearn, plus ``trial_id``, ``status`` and ``error`` per trial
        (and ``epochs`` with Hyperband).  ``results_frame()`` shows it sorted.
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
        "search_space": [dict],
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
    def _check_setup(self) -> SearchSpace:
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise ParameterError(str(exc)) from exc
        space = SearchSpace(self.search_space)
        space.check(set(self.estimator.get_params(deep=True)))
        self._budget: str = ""
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
            raise ParameterError(
                "with several scoring metrics, name the one to maximise: objective='...' "
                f"(one of {sorted(self.scoring)})"
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
            Passed to the estimator's ``fit`` (``groups`` goes to the splitter).

        Returns
        -------
        self
        """
        space = self._check_setup()
        self._space, self._metric_name = space, self._metric()
        temporary = self.directory is None
        directory = os.fspath(self.directory or tempfile.mkdtemp(prefix="mmsk-search-"))
        self._where = (directory, self.project_name or "mmsk_search")
        self._context = TrialContext(raise_errors=self.error_score == "raise")
        self.trials_: list[TrialRecord] = []
        self._fatal: BaseException | None = None
        self._known: dict[str, Any] = {}  # finished trials by id, read back from the folder
        user = self.estimator
        self.estimator = _TrialFit(user, self._context)
        try:
            with warnings.catch_warnings():
                # Failed trials are reported by status and error, not by warnings.
                for message in ("Scoring failed", "One or more of the test scores"):
                    warnings.filterwarnings("ignore", message=message, category=UserWarning)
                super().fit(X, y, **{ROWS: np.arange(_num_samples(X))}, **params)
        finally:
            self.estimator = user
            if temporary:
                shutil.rmtree(directory, ignore_errors=True)
        self._add_trial_columns()
        if hasattr(self, "best_estimator_"):
            self.best_estimator_: Any = self.best_estimator_.estimator_
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        return self

    def _run_search(self, evaluate_candidates: Any) -> None:
        _backend.keras_tuner()  # a clear error when Keras Tuner is missing
        from mmsk.tuning._tuner import FatalError, SearchTuner, is_chief, make_oracle

        seed = None
        if self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        oracle = make_oracle(self, self._space.hyperparameters(), seed)
        oracle.verbose = 1 if self.verbose >= 2 else 0
        directory, project = self._where
        tuner = SearchTuner(oracle, directory, project, self.overwrite, quiet=self.verbose < 2)
        self._progress = TextProgress() if self.progress else None
        tuner.describe = self._describe
        tuner.on_begin = lambda record: self._notify("on_trial_begin", record)
        tuner.on_end = lambda record: self._notify("on_trial_end", record)

        def evaluate(trial: Any, record: TrialRecord) -> None:
            self._evaluate(evaluate_candidates, tuner, trial, record)

        self._notify("on_search_begin")
        if not tuner.is_worker:
            self._replay(tuner, evaluate)  # trials a killed run finished
        try:
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
        if is_chief() or tuner.is_worker:
            self._replay(tuner, evaluate)  # trials the other processes ran
        self._notify("on_search_end")
        # What sklearn fits next is the refit on all rows: not a fold of any trial.
        self._context.refit, self._context.trial_dir = True, None
        if not self.trials_:
            raise SearchError(
                "no trial finished: the oracle had no trials left to run and none were "
                "recorded in " + os.path.join(directory, project)
            )

    def _describe(self, trial: Any) -> TrialRecord:
        params = self._space.params(trial.hyperparameters)
        values = trial.hyperparameters.values
        epochs = values.get(f"{TUNER_PREFIX}epochs")
        if epochs is not None:
            params[self._budget] = int(epochs)
        return TrialRecord(trial.trial_id, params, "RUNNING", epochs=epochs)

    def _evaluate(
        self, evaluate_candidates: Any, tuner: Any, trial: Any, record: TrialRecord
    ) -> None:
        values = trial.hyperparameters.values
        ctx = self._context
        ctx.trial_dir = trial_dir = tuner.get_trial_dir(trial.trial_id)
        ctx.settings = settings_key(record.params)
        resume = values.get(f"{TUNER_PREFIX}trial_id")
        ctx.resume_dir = tuner.get_trial_dir(resume) if resume else None
        if resume:
            parent = self._known.get(resume) or tuner.oracle.get_trial(resume)
            ctx.resume_settings = settings_key(self._describe(parent).params)
        try:
            results = evaluate_candidates([record.params])
        except Exception as exc:
            if ctx.raise_errors:
                self._fatal = exc
                from mmsk.tuning._tuner import FatalError

                raise FatalError(str(exc)) from exc
            raise
        self.trials_.append(record)
        index = len(results["params"]) - 1
        score = float(results[f"mean_test_{self._metric_name}"][index])
        if math.isnan(score):
            record.status = "FAILED"
            record.error = error_text(trial_dir, ctx.settings) or "the score is NaN"
        else:
            record.status, record.score = "COMPLETED", score
            record.std = float(results[f"std_test_{self._metric_name}"][index])

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

    def _add_trial_columns(self) -> None:
        self.cv_results_["trial_id"] = np.array([r.trial_id for r in self.trials_], dtype=object)
        self.cv_results_["status"] = np.array([r.status for r in self.trials_], dtype=object)
        self.cv_results_["error"] = np.array([r.error for r in self.trials_], dtype=object)
        if self.tuner == "hyperband":
            self.cv_results_["epochs"] = np.array([r.epochs for r in self.trials_], dtype=object)

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
        rank = f"rank_test_{self._metric_name}"
        first = ["trial_id", "status", rank, f"mean_test_{self._metric_name}",
                 f"std_test_{self._metric_name}"]  # fmt: skip
        params = [c for c in frame.columns if c.startswith("param_")]
        rest = [c for c in frame.columns if c not in first and c not in params and c != "params"]
        frame = frame[[*first, *params, *rest]]
        return frame.sort_values([rank, "trial_id"], kind="stable").reset_index(drop=True)
