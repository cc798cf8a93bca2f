"""TunerDashboard: a live table and plot of a hyperparameter search's trials."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, TextIO

import ipywidgets as w
import pandas as pd

from mmsk.tuning import SearchCallback, TrialRecord
from mmsk.widgets._common import (
    THEME_CSS,
    Static,
    check_mode,
    duration,
    esc,
    figure_png,
    figure_width,
    fmt,
    freeze,
    in_kernel,
    new_figure,
    plot_img,
    show,
    style_axes,
    write_line,
)

_FAILED_COLOUR = "#c0392b"


class TunerDashboard(SearchCallback):
    """Watch a :class:`~mmsk.tuning.KerasTunerSearchCV`: trials, best so far, score per trial.

    A :class:`~mmsk.tuning.SearchCallback`: the search calls its hooks before
    and after every trial, and around each fold and after each epoch of the
    running trial (with ``n_jobs=1``).  In a Jupyter kernel it shows, under a title
    naming the search, the estimator searched and the metric, a progress bar
    of trials, a line with the running trial (its folds, epochs and time so
    far) and the best trial so far, a table of every trial (settings, mean CV
    score ± std, status, epochs, seconds) and a plot of the score per trial
    (the std as error bars, failed trials marked) with the best so far.
    The colours follow JupyterLab's theme.  When the search ends, the live
    display is replaced by a static copy (the table and the plot as inline
    PNG), which a saved notebook, nbviewer and ``jupyter nbconvert`` show
    without a kernel.

    Attach it with ``KerasTunerSearchCV(..., callbacks=[dashboard])``, or
    ``TunerDashboard(search)`` / ``dashboard.attach(search)``, which add it to
    ``search.callbacks``; a dashboard attached to a search that has already
    begun picks the search up at its next trial.

    Parameters
    ----------
    search : KerasTunerSearchCV, optional
        Attach to this search right away (see :meth:`attach`).
    mode : {"auto", "widget", "text"}, default="auto"
        ``"auto"``: widgets in a Jupyter kernel; elsewhere the dashboard only
        keeps its state (the search prints its own progress).  ``"widget"``
        updates the widgets (and the plot) wherever it runs; ``"text"`` writes
        one line per finished trial.
    plot : bool, default=True
        Draw the plot of the score per trial (needs matplotlib).
    stream : file-like, optional
        Where text mode writes; standard error when None.

    Attributes
    ----------
    trials : list of TrialRecord
        Every trial seen, in the order they began (updated in place).
    progress : ipywidgets.IntProgress
        Finished trials out of ``max_trials`` (out of the trials seen when the
        search has no limit).
    summary : ipywidgets.HTML
        Trials done and failed, the running trial (fold, epoch, seconds so
        far), the best so far.
    metric : str
        The name of the score maximised ("accuracy", "f1_macro", ...).
    table : ipywidgets.HTML
        The table of trials; the best row is highlighted.
    plot_image : ipywidgets.Image
        Score per trial (points) and best so far (a step line), as PNG.
    figure : matplotlib.figure.Figure or None
        The figure behind ``plot_image``.
    widget : ipywidgets.VBox
        Everything above, as one widget.

    Examples
    --------
    >>> from mmsk.tuning import TrialRecord
    >>> from mmsk.widgets import TunerDashboard
    >>> dash = TunerDashboard(mode="widget")
    >>> for i, (lr, score) in enumerate([(1e-3, 0.71), (1e-2, 0.83)]):
    ...     trial = TrialRecord(f"{i:02d}", {"learning_rate": lr})
    ...     dash.on_trial_begin(None, trial)
    ...     trial.status, trial.score = "COMPLETED", score
    ...     dash.on_trial_end(None, trial)
    >>> dash.best.trial_id, dash.progress.value
    ('01', 2)
    >>> dash.to_frame()[["trial_id", "param_learning_rate", "score"]]
      trial_id  param_learning_rate  score
    0       00                0.001   0.71
    1       01                0.010   0.83
    """

    def __init__(
        self,
        search: Any = None,
        *,
        mode: str = "auto",
        plot: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.mode = check_mode(mode)
        self.plot = bool(plot)
        self.stream = stream
        self.trials: list[TrialRecord] = []
        self.max_trials: int | None = None
        self.metric = "score"
        self.figure: Any = None
        self._title = "Search"
        self._shown = False
        self._begun = False
        self._handle: Any = None
        self._started: dict[str, float] = {}  # trial id -> time it began
        self._fold: tuple[int, int] | None = None  # running trial: (folds done, folds)
        self._epoch: tuple[int, int | None] | None = None  # (epoch, epochs) of its fit
        self._epochs_seen: dict[str, int] = {}  # trial id -> most epochs a fold trained
        self._epochs_cap: int | None = None  # the estimator's ``epochs`` setting
        self._ticker: threading.Event | None = None
        self.title = w.HTML(value=THEME_CSS + "<b>Search</b>: waiting for the first trial")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Trials")
        self.summary = w.HTML(value="")
        self.table = w.HTML(value="")
        self.plot_image = w.Image(format="png", layout=w.Layout(width="560px", display="none"))
        self.plot_image.add_class("mmsk-plot")
        self.widget = w.VBox(
            [self.title, w.HBox([self.progress, self.summary]), self.table, self.plot_image]
        )
        self.widget.add_class("mmsk-widget")
        self.widget.add_class("mmsk-tuner-dashboard")
        if search is not None:
            self.attach(search)

    # ---- attaching, display and copies -------------------------------------
    def attach(self, search: Any) -> TunerDashboard:
        """Add this dashboard to ``search.callbacks`` (once) and return it.

        Parameters
        ----------
        search : KerasTunerSearchCV
            A search whose ``callbacks`` is a list or None.

        Returns
        -------
        self
        """
        callbacks = getattr(search, "callbacks", None)
        if callbacks is None:
            search.callbacks = [self]
        elif not any(cb is self for cb in callbacks):
            callbacks.append(self)
        self._read_search(search)
        return self

    def _ipython_display_(self) -> None:
        self._handle = show(self.widget)
        self._shown = True

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._shown = True
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"TunerDashboard(mode={self.mode!r}, trials={len(self.trials)})"

    def __deepcopy__(self, memo: dict[int, Any]) -> TunerDashboard:
        # ``clone(search)`` deep-copies its callbacks: keep watching with this one.
        return self

    def __getstate__(self) -> dict[str, Any]:
        # Widgets and figures do not pickle; the trials do.
        return {
            "mode": self.mode,
            "plot": self.plot,
            "trials": [copy.copy(t) for t in self.trials],
            "max_trials": self.max_trials,
            "title": self._title,
            "metric": self.metric,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(mode=state["mode"], plot=state["plot"])  # type: ignore[misc]
        self.trials = list(state["trials"])
        self.max_trials = state["max_trials"]
        self._title = state["title"]
        self.metric = state.get("metric", "score")
        self._refresh()

    def to_static(self) -> Static:
        """A static copy of the dashboard: title, summary, table and plot (inline PNG).

        Returns
        -------
        Static
            Shown as ``text/html`` (and ``text/plain``) by any notebook viewer.
        """
        plot = plot_img(self.figure, self.plot_image, f"mean CV {self.metric} per trial")
        done = self.progress.value
        body = (
            f'{THEME_CSS}<div class="mmsk-widget mmsk-tuner-dashboard mmsk-static">'
            f"<div>{self._title_html(True)}</div>"
            f"<div>Trials {done}/{self.progress.max} &middot; {self.summary.value}</div>"
            f"{self.table.value}{plot}</div>"
        )
        best = self.best
        text = f"{self._title}: {len(self.trials)} trials" + (
            f", best {self.metric} {fmt(best.score)} (trial {best.trial_id})" if best else ""
        )
        return Static(body, text)

    # ---- SearchCallback hooks ----------------------------------------------
    def on_search_begin(self, search: Any) -> None:
        self.trials = []
        self._epochs_seen = {}
        self._begun = True
        self._read_search(search)
        self._display()
        self._refresh()

    def on_trial_begin(self, search: Any, trial: TrialRecord) -> None:
        self._ensure_begun(search)
        self._started[trial.trial_id] = time.perf_counter()
        self._fold, self._epoch = None, None
        self._record(trial)
        self._refresh()
        self._start_ticker()

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        self._ensure_begun(search)
        self._stop_ticker()
        self._fold, self._epoch = None, None
        self._record(trial)
        self._refresh()
        if self.plot and self.active_mode == "widget":
            self._redraw_plot()
        if self.active_mode == "text":
            self._text_line(trial)

    def on_search_end(self, search: Any) -> None:
        self._stop_ticker()
        self._refresh(finished=True)
        if self.plot and self.active_mode == "widget":
            self._redraw_plot()
        if self._handle is not None:
            freeze(self._handle, self.to_static())

    # Progress inside the running trial, where the search reports it.
    def on_fold_begin(self, search: Any, trial: Any, fold: int, n_folds: int) -> None:
        """Fold ``fold`` (0-based) of ``n_folds`` of the running trial begins."""
        self._fold, self._epoch = (fold, n_folds), None
        self._refresh()

    def on_fold_end(self, search: Any, trial: Any, fold: int, n_folds: int) -> None:
        """Fold ``fold`` (0-based) of ``n_folds`` of the running trial has ended."""
        self._fold = (fold + 1, n_folds)
        self._refresh()

    def on_epoch_end(
        self, search: Any, trial: Any, epoch: int, epochs: int | None = None, logs: Any = None
    ) -> None:
        """Epoch ``epoch`` (0-based) of ``epochs`` of the running fit has ended."""
        self._epoch = (epoch + 1, epochs)
        trial_id = getattr(trial, "trial_id", None) or self._running_id()
        if trial_id is not None:
            self._epochs_seen[trial_id] = max(self._epochs_seen.get(trial_id, 0), epoch + 1)
        self._refresh()

    # ---- state -------------------------------------------------------------
    @property
    def replaces_progress(self) -> bool:  # type: ignore[override]
        """True when the dashboard shows the progress (widgets or text lines): the
        search's text bar is then off by default (``progress="auto"``)."""
        return self.active_mode != "quiet"

    @property
    def active_mode(self) -> str:
        """``"widget"``, ``"text"`` or ``"quiet"``: ``"auto"`` resolved for this process.

        Outside Jupyter, ``"auto"`` is quiet (the state is kept, nothing is
        written): the search prints its own progress there.
        """
        if self.mode == "auto":
            return "widget" if in_kernel() else "quiet"
        return self.mode

    @property
    def completed(self) -> list[TrialRecord]:
        """Trials that finished with a score."""
        return [t for t in self.trials if t.status == "COMPLETED" and t.score is not None]

    @property
    def best(self) -> TrialRecord | None:
        """The completed trial with the highest score so far (the first on ties), or None."""
        done = self.completed
        return max(done, key=lambda t: t.score) if done else None  # type: ignore[arg-type,return-value]

    def to_frame(self) -> pd.DataFrame:
        """The trials as a DataFrame: ``trial_id``, ``param_<name>`` per setting,
        ``score``, ``std``, ``status``, ``epochs``, ``duration``, ``error``."""
        names = self._param_names()
        rows = [
            {
                "trial_id": t.trial_id,
                **{f"param_{n}": t.params.get(n) for n in names},
                "score": t.score,
                "std": t.std,
                "status": t.status,
                "epochs": self._epochs_of(t),
                "duration": self._seconds(t),
                "error": t.error,
            }
            for t in self.trials
        ]
        columns = ["trial_id", *(f"param_{n}" for n in names), "score", "std", "status",
                   "epochs", "duration", "error"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def _param_names(self) -> list[str]:
        return list(dict.fromkeys(name for t in self.trials for name in t.params))

    def _running_id(self) -> str | None:
        return next((t.trial_id for t in self.trials if t.status == "RUNNING"), None)

    def _epochs_of(self, trial: TrialRecord) -> int | None:
        """Epochs the trial trained: the search's record, else the most a fold trained."""
        if trial.epochs is not None:
            return int(trial.epochs)
        return self._epochs_seen.get(trial.trial_id)

    def _epochs_cell(self, trial: TrialRecord) -> str:
        """The table's epochs: as trained, else at most the ``epochs`` setting ("≤ 20",
        a cap when early stopping is on)."""
        epochs = self._epochs_of(trial)
        if epochs is not None:
            return str(epochs)
        cap = next((v for k, v in trial.params.items() if k.split("__")[-1] == "epochs"), None)
        cap = cap if cap is not None else self._epochs_cap
        return f"&le; {cap}" if isinstance(cap, int) else "-"

    def _seconds(self, trial: TrialRecord) -> float:
        """The trial's time: as recorded once it ended, so far while it runs."""
        if trial.status == "RUNNING" and trial.trial_id in self._started:
            return time.perf_counter() - self._started[trial.trial_id]
        return float(trial.duration)

    def _read_search(self, search: Any) -> None:
        if search is None:
            return
        limit = getattr(search, "max_trials", None)
        self.max_trials = limit if isinstance(limit, int) and limit > 0 else None
        estimator = _users_estimator(getattr(search, "estimator", None))
        name = type(search).__name__
        if estimator is not None:
            name += f" of {_estimator_name(estimator)}"
        self._title = name
        self.metric = _metric_name(search, estimator)
        try:
            params = estimator.get_params()
        except Exception:  # not an estimator; nothing to read
            params = {}
        caps = [v for k, v in params.items() if k.split("__")[-1] == "epochs"]
        self._epochs_cap = caps[-1] if caps and isinstance(caps[-1], int) else None

    def _ensure_begun(self, search: Any) -> None:
        if not self._begun:  # attached to a search already running
            self._begun = True
            self._read_search(search)
            self._display()

    def _display(self) -> None:
        if self.active_mode == "widget" and not self._shown and in_kernel():
            self._ipython_display_()
        elif self.active_mode == "widget" and self._handle is not None:
            self._handle.update(self.widget)  # a second search: live again

    def _record(self, trial: TrialRecord) -> None:
        for i, seen in enumerate(self.trials):
            if seen.trial_id == trial.trial_id:
                self.trials[i] = copy.copy(trial)
                return
        self.trials.append(copy.copy(trial))

    # ---- a clock for the running trial ---------------------------------------
    def _start_ticker(self) -> None:
        """Redraw the running trial's time every second (live widgets in a kernel)."""
        if self.active_mode != "widget" or not in_kernel() or self._ticker is not None:
            return
        stop = self._ticker = threading.Event()

        def tick() -> None:
            while not stop.wait(1.0):
                self._refresh()

        threading.Thread(target=tick, name="mmsk-dashboard-clock", daemon=True).start()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.set()
            self._ticker = None

    # ---- drawing -----------------------------------------------------------
    def _title_html(self, finished: bool) -> str:
        ended = " &middot; finished" if finished else ""
        return (
            f"<b>{esc(self._title)}</b> &middot; metric: <b>{esc(self.metric)}</b> "
            f'<span class="mmsk-muted">(mean over CV folds, higher is better)</span>{ended}'
        )

    def _running_text(self, trial: TrialRecord) -> str:
        text = f"running: trial {esc(trial.trial_id)}"
        if self._fold is not None:
            done, total = self._fold
            text += f" &middot; fold {min(done + 1, total)}/{total}"
        if self._epoch is not None:
            epoch, epochs = self._epoch
            text += f" &middot; epoch {epoch}" + (f"/{epochs}" if epochs else "")
        return text + f" &middot; {duration(self._seconds(trial))}"

    def _refresh(self, finished: bool = False) -> None:
        done = sum(t.status != "RUNNING" for t in self.trials)
        failed = sum(t.status == "FAILED" for t in self.trials)
        running = [t for t in self.trials if t.status == "RUNNING"]
        total = self.max_trials or max(len(self.trials), 1)
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.bar_style = "success" if finished else "info"
        self.title.value = THEME_CSS + self._title_html(finished)
        parts = [f"{done} of {self.max_trials or len(self.trials)} trials done"]
        if failed:
            parts.append(f"{failed} failed")
        parts += [self._running_text(t) for t in running]
        best = self.best
        if best is not None:
            std = f" &plusmn; {esc(best.std)}" if best.std is not None else ""
            settings = ", ".join(f"{esc(k)}={esc(v)}" for k, v in best.params.items())
            parts.append(
                f"best {esc(self.metric)}: <b>{esc(best.score)}</b>{std} "
                f"(trial {esc(best.trial_id)}" + (f": {settings}" if settings else "") + ")"
            )
        self.summary.value = " &middot; ".join(parts)
        self.table.value = self._table_html(best)

    def _table_html(self, best: TrialRecord | None) -> str:
        if not self.trials:
            return ""
        names = self._param_names()
        head = "".join(
            f"<th>{esc(h)}</th>"
            for h in ["trial", *names, self.metric, "std", "status", "epochs", "seconds"]
        )
        rows = []
        for t in self.trials:
            css = ' class="mmsk-best"' if t is best else ""
            status = f'<span class="mmsk-{esc(t.status)}">{esc(t.status)}</span>'
            if t.error:
                status += f' <abbr title="{esc(t.error)}">(why?)</abbr>'
            cells = [esc(t.trial_id), *(esc(t.params.get(n)) for n in names), esc(t.score),
                     esc(t.std), status, self._epochs_cell(t),
                     f"{self._seconds(t):.1f}"]  # fmt: skip
            rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (
            '<table class="mmsk-trials">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _redraw_plot(self) -> None:
        if self.figure is None:
            self.figure = new_figure(5.6, 2.6)
            if self.figure is None:
                return
        fig = self.figure
        fig.clear()
        ax = fig.subplots()
        points = [(i + 1, t.score, t.std or 0.0) for i, t in enumerate(self.trials)
                  if t.status == "COMPLETED" and t.score is not None]  # fmt: skip
        if points:
            xs, ys, errs = zip(*points, strict=True)
            ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, label="trial (± std over folds)")
            best_so_far, best = [], float("-inf")
            for y in ys:
                best = max(best, float(y))
                best_so_far.append(best)
            ax.step(xs, best_so_far, where="post", label="best so far")
        failed = [i + 1 for i, t in enumerate(self.trials) if t.status == "FAILED"]
        for k, x in enumerate(failed):
            ax.axvline(x, color=_FAILED_COLOUR, alpha=0.6, linestyle="--",
                       label="failed trial" if k == 0 else None)  # fmt: skip
        if points or failed:
            ax.legend(fontsize="small", framealpha=0.0, labelcolor="#333333")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"mean CV {self.metric}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        style_axes(ax)
        self.plot_image.layout.width = f"{figure_width(fig)}px"
        self.plot_image.value = figure_png(fig)
        self.plot_image.layout.display = ""

    def _text_line(self, trial: TrialRecord) -> None:
        best = self.best
        settings = ", ".join(f"{k}={fmt(v)}" for k, v in trial.params.items())
        score = fmt(trial.score) if trial.status == "COMPLETED" else (trial.error or "-")
        line = (
            f"trial {trial.trial_id} {trial.status} {self.metric} {score} ({settings}) "
            f"{trial.duration:.1f}s; best {fmt(best.score) if best else '-'}"
        )
        write_line(self.stream, line)


def _users_estimator(estimator: Any) -> Any:
    """The estimator the user gave: a search's private fitting wrapper is looked through."""
    while type(estimator).__name__.startswith("_") and hasattr(estimator, "estimator"):
        estimator = estimator.estimator
    return estimator


def _estimator_name(estimator: Any) -> str:
    """``MultimodalClassifier``, or ``Pipeline (… → MultimodalClassifier)``."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return f"{type(estimator).__name__} ({' → '.join(type(s).__name__ for _, s in steps)})"
    return type(estimator).__name__


def _metric_name(search: Any, estimator: Any) -> str:
    """The name of the score the search maximises, as a person reads it."""
    objective = getattr(search, "objective", None)
    if isinstance(objective, str):
        return objective
    scoring = getattr(search, "scoring", None)
    if isinstance(scoring, str):
        return scoring
    if isinstance(scoring, (list, tuple, set, dict)):
        refit = getattr(search, "refit", None)
        return refit if isinstance(refit, str) else "score"
    if callable(scoring):
        return str(getattr(scoring, "__name__", "score"))
    from sklearn.base import is_classifier, is_regressor

    if estimator is not None:
        if is_classifier(estimator):
            return "accuracy"  # the classifier's own score
        if is_regressor(estimator):
            return "r2"
    return "score"
