"""A text progress bar of a search's trials (the widget dashboard is in mmsk.widgets)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from mmsk.tuning._callbacks import SearchCallback, TrialRecord


class TextProgress(SearchCallback):
    """One line per trial on ``stream`` (redrawn in place on a terminal).

    Examples
    --------
    >>> import io
    >>> from mmsk.tuning import TrialRecord
    >>> from mmsk.tuning._progress import TextProgress
    >>> out = io.StringIO()
    >>> bar = TextProgress(out)
    >>> bar.on_trial_end(None, TrialRecord("0", status="COMPLETED", score=0.5))
    >>> "best 0.5000" in out.getvalue()
    True
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.best: float | None = None
        self.done = 0
        self.start = time.perf_counter()

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def on_search_begin(self, search: Any) -> None:
        self.best, self.done, self.start = None, 0, time.perf_counter()

    def on_trial_begin(self, search: Any, trial: TrialRecord) -> None:
        out = self._out()
        if out.isatty():
            out.write(f"\r{self._prefix(search)} trial {trial.trial_id} running ...\x1b[K")
            out.flush()

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        self.done += 1
        if trial.score is not None and (self.best is None or trial.score > self.best):
            self.best = trial.score
        shown = f"{trial.score:.4f}" if trial.score is not None else trial.status.lower()
        best = "-" if self.best is None else f"{self.best:.4f}"
        text = (
            f"{self._prefix(search)} trial {trial.trial_id}: {shown}  best {best}  "
            f"({trial.duration:.1f}s)"
        )
        out = self._out()
        out.write(f"\r{text}\x1b[K\n" if out.isatty() else f"{text}\n")
        out.flush()

    def _prefix(self, search: Any) -> str:
        total = getattr(search, "max_trials", None)
        if getattr(search, "tuner", None) == "hyperband":
            total = None
        width = 20
        if total:
            filled = int(width * min(1.0, self.done / total))
            return f"[{'#' * filled}{'-' * (width - filled)}] {self.done}/{total}"
        return f"[{self.done} trials, {time.perf_counter() - self.start:.0f}s]"
