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
    in the process that drives the search, between trials.

    Examples
    --------
    >>> from mmsk.tuning import SearchCallback
    >>> class Printer(SearchCallback):
    ...     def on_trial_end(self, search, trial):
    ...         print(trial.trial_id, trial.status, trial.score)
    """

    def on_search_begin(self, search: Any) -> None:
        """Called once before the first trial."""

    def on_trial_begin(self, search: Any, trial: TrialRecord) -> None:
        """Called when a trial starts; ``trial.status`` is ``"RUNNING"``."""

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Called when a trial has finished (``"COMPLETED"``) or failed."""

    def on_search_end(self, search: Any) -> None:
        """Called once after the last trial, before the refit."""
