"""What a search tells its watchers: one record per trial, and the callback hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrialRecord:
    """One trial of a :class:`~mmsk.tuning.KerasTunerSearchCV` search.

    Attributes
    ----------
    trial_id : str
        Keras Tuner's trial id.
    params : dict
        The ``set_params`` settings tried.
    status : {"RUNNING", "COMPLETED", "FAILED"}
    score : float or None
        Mean cross-validated score of the objective (higher is better).
    std : float or None
        Its standard deviation over the folds.
    error : str or None
        Why the trial failed.
    epochs : int or None
        Epochs trained (Hyperband's budget), when the search sets them.
    duration : float
        Seconds the trial took.

    Examples
    --------
    >>> from mmsk.tuning import TrialRecord
    >>> TrialRecord("00", {"learning_rate": 0.01}, "COMPLETED", score=0.9).score
    0.9
    """

    trial_id: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "RUNNING"
    score: float | None = None
    std: float | None = None
    error: str | None = None
    epochs: int | None = None
    duration: float = 0.0


class SearchCallback:
    """Base class of objects that watch a search; every hook is optional.

    Pass instances as ``KerasTunerSearchCV(..., callbacks=[...])``.  Hooks run
    in the process that drives the search.  The search calls a hook only on
    callbacks that define it, so any object with some of these methods works.

    Inside a trial, while its folds are fitted in this process (``n_jobs=1``,
    the default), the search also reports their progress:

    - ``on_fold_begin(search, trial, fold, n_folds)`` and
      ``on_fold_end(search, trial, fold, n_folds)`` around each fold's fit
      (``fold`` counts from 0), for any estimator;
    - ``on_epoch_end(search, trial, epoch, epochs, logs)`` after each epoch of
      the running fold, when the estimator is an mmsk estimator (or a
      Pipeline ending in one): ``epoch`` counts from 0 (a continued Hyperband
      fold goes on from its parent's epochs), ``epochs`` is the fit's last
      epoch and ``logs`` Keras' logs.  The search passes a Keras callback in
      the fit's ``callbacks``.

    These run during the trial, between ``on_trial_begin`` and
    ``on_trial_end``.  With ``n_jobs`` other than 1 the folds run in other
    processes and these hooks are not called; nor for folds read back from a
    ``directory`` (nothing is trained).  ``trial.epochs`` is set at the end of
    a trial to the most epochs a fold model trained (``n_epochs_``), when
    the fold models are at hand (``n_jobs=1``, a ``directory``, or Hyperband).

    What a callback can rely on: ``search`` is the search itself, and
    ``search.estimator`` is the user's estimator at every hook (the search
    never wraps or swaps it); ``search.n_splits_`` is the number of folds of
    each trial; ``search.max_trials`` and ``search.tuner`` say how many trials
    to expect (Hyperband decides its own number).  A trial's metric is
    ``search.scoring`` (the oracle maximises ``trial.score``, the mean over
    the folds).

    Attributes
    ----------
    replaces_progress : bool
        True when the callback shows the search's progress itself (a widget):
        the search's text progress bar is then off by default
        (``progress="auto"``).

    Examples
    --------
    >>> from mmsk.tuning import SearchCallback
    >>> class Printer(SearchCallback):
    ...     def on_trial_end(self, search, trial):
    ...         print(trial.trial_id, trial.status, trial.score)
    ...
    ...     def on_fold_end(self, search, trial, fold, n_folds):
    ...         print(f"trial {trial.trial_id}: fold {fold + 1}/{n_folds} done")
    """

    replaces_progress: bool = False

    def on_search_begin(self, search: Any) -> None:
        """Called once before the first trial."""

    def on_trial_begin(self, search: Any, trial: TrialRecord) -> None:
        """Called when a trial starts; ``trial.status`` is ``"RUNNING"``."""

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Called when a trial has finished (``"COMPLETED"``) or failed."""

    def on_search_end(self, search: Any) -> None:
        """Called once after the last trial, before the refit."""

    def on_fold_begin(self, search: Any, trial: TrialRecord, fold: int, n_folds: int) -> None:
        """Called before fold ``fold`` (from 0) of ``n_folds`` of the running trial is fitted."""

    def on_fold_end(self, search: Any, trial: TrialRecord, fold: int, n_folds: int) -> None:
        """Called after that fold's fit and scoring (also when the fit failed)."""

    def on_epoch_end(
        self, search: Any, trial: TrialRecord, epoch: int, epochs: int | None, logs: Any
    ) -> None:
        """Called after epoch ``epoch`` (from 0) of ``epochs`` of the running fold."""


def replaces_progress(callback: Any) -> bool:
    """Whether ``callback`` shows progress itself, so the text bar stays off.

    Its ``replaces_progress`` attribute says so; a callback that draws widgets
    (``active_mode == "widget"``, as ``TunerDashboard`` in a notebook) does too.
    """
    if getattr(callback, "active_mode", None) == "widget":
        return True
    return bool(getattr(callback, "replaces_progress", False))
