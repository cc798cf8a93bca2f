"""A text progress bar of a search's trials (the widget dashboard is in mmsk.widgets)."""

from __future__ import annotations

from typing import Any

from mmsk import _backend
from mmsk.tuning._callbacks import SearchCallback, TrialRecord


class TrialProgress(SearchCallback):
    """``keras.utils.Progbar`` over the trials: done, the last score and the best.

    The bar counts trials out of ``max_trials`` (or the grid's size); with
    Hyperband, which decides its own number, it counts without a total.

    Examples
    --------
    >>> from mmsk.tuning import TrialRecord
    >>> from mmsk.tuning._progress import TrialProgress
    >>> bar = TrialProgress(verbose=0)
    >>> bar.on_search_begin(None)
    >>> bar.on_trial_end(None, TrialRecord("0", status="COMPLETED", score=0.5))
    >>> bar.done, bar.best
    (1, 0.5)
    """

    def __init__(self, verbose: int = 1) -> None:
        self.verbose = verbose
        self.best: float | None = None
        self.done = 0
        self.bar: Any = None

    def on_search_begin(self, search: Any) -> None:
        total = getattr(search, "_total", lambda: None)() if search is not None else None
        keras = _backend.keras()
        self.best, self.done = None, 0
        self.bar = keras.utils.Progbar(
            total, verbose=self.verbose, unit_name="trial", stateful_metrics=["score", "best"]
        )

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        self.done += 1
        if trial.score is not None and (self.best is None or trial.score > self.best):
            self.best = trial.score
        values = [("score", trial.score)] if trial.score is not None else []
        values += [("best", self.best)] if self.best is not None else []
        if self.bar is not None:
            self.bar.update(self.done, values=values)

    def on_search_end(self, search: Any) -> None:
        if self.bar is not None and self.bar.target is None:
            self.bar.update(self.done, finalize=True)
