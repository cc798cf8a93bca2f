"""TunerDashboard: a live table and plot of a hyperparameter search's trials."""

from __future__ import annotations

import copy
from typing import Any, TextIO

import ipywidgets as w
import pandas as pd

from mmsk.tuning import SearchCallback, TrialRecord
from mmsk.widgets._common import (
    check_mode,
    esc,
    figure_png,
    fmt,
    in_kernel,
    new_figure,
    show,
    write_line,
)

_COLOURS = {"RUNNING": "#1f77b4", "COMPLETED": "#2a7d2a", "FAILED": "#c0392b"}


class TunerDashboard(SearchCallback):
    """Watch a :class:`~mmsk.tuning.KerasTunerSearchCV`: trials, best so far, score per trial.

    A :class:`~mmsk.tuning.SearchCallback`: the search calls its hooks before
    and after every trial.  In a Jupyter kernel it shows a progress bar of
    trials, a line with the best trial so far, a table of every trial
    (settings, mean CV score ± std, status, epochs, seconds) and a plot of
    the score per trial with the best so far.

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
        Trials done and failed, the running trial, the best so far.
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
        self.figure: Any = None
        self._title = "Search"
        self._shown = False
        self._begun = False
        self.title = w.HTML(value="<b>Search</b>: waiting for the first trial")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Trials")
        self.summary = w.HTML(value="")
        self.table = w.HTML(value="")
        self.plot_image = w.Image(format="png", layout=w.Layout(max_width="560px"))
        self.widget = w.VBox(
            [self.title, w.HBox([self.progress, self.summary]), self.table, self.plot_image],
            layout=w.Layout(border="1px solid #ddd", padding="4px"),
        )
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
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(mode=state["mode"], plot=state["plot"])  # type: ignore[misc]
        self.trials = list(state["trials"])
        self.max_trials = state["max_trials"]
        self._title = state["title"]
        self._refresh()

    # ---- SearchCallback hooks ----------------------------------------------
    def on_search_begin(self, search: Any) -> None:
        self.trials = []
        self._begun = True
        self._read_search(search)
        self._display()
        self._refresh()

    def on_trial_begin(self, search: Any, trial: TrialRecord) -> None:
        self._ensure_begun(search)
        self._record(trial)
        self._refresh()

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        self._ensure_begun(search)
        self._record(trial)
        self._refresh()
        if self.plot and self.active_mode == "widget":
            self._redraw_plot()
        if self.active_mode == "text":
            self._text_line(trial)

    def on_search_end(self, search: Any) -> None:
        self._refresh(finished=True)
        if self.plot and self.active_mode == "widget":
            self._redraw_plot()

    # ---- state -------------------------------------------------------------
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
                "epochs": t.epochs,
                "duration": t.duration,
                "error": t.error,
            }
            for t in self.trials
        ]
        columns = ["trial_id", *(f"param_{n}" for n in names), "score", "std", "status",
                   "epochs", "duration", "error"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def _param_names(self) -> list[str]:
        return list(dict.fromkeys(name for t in self.trials for name in t.params))

    def _read_search(self, search: Any) -> None:
        if search is None:
            return
        limit = getattr(search, "max_trials", None)
        self.max_trials = limit if isinstance(limit, int) and limit > 0 else None
        from mmsk.tuning._trial_fit import _TrialFit

        estimator = getattr(search, "estimator", None)
        if isinstance(estimator, _TrialFit):  # fitting with a directory: the user's one
            estimator = estimator.estimator
        self._title = type(search).__name__ + (
            f" of {type(estimator).__name__}" if estimator is not None else ""
        )

    def _ensure_begun(self, search: Any) -> None:
        if not self._begun:  # attached to a search already running
            self._begun = True
            self._read_search(search)
            self._display()

    def _display(self) -> None:
        if self.active_mode == "widget" and not self._shown and in_kernel():
            show(self.widget)
            self._shown = True

    def _record(self, trial: TrialRecord) -> None:
        for i, seen in enumerate(self.trials):
            if seen.trial_id == trial.trial_id:
                self.trials[i] = copy.copy(trial)
                return
        self.trials.append(copy.copy(trial))

    # ---- drawing -----------------------------------------------------------
    def _refresh(self, finished: bool = False) -> None:
        done = sum(t.status != "RUNNING" for t in self.trials)
        failed = sum(t.status == "FAILED" for t in self.trials)
        running = [t.trial_id for t in self.trials if t.status == "RUNNING"]
        total = self.max_trials or max(len(self.trials), 1)
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.bar_style = "success" if finished else "info"
        ended = " &middot; finished" if finished else ""
        self.title.value = f"<b>{esc(self._title)}</b>{ended}"
        parts = [f"{done} of {self.max_trials or len(self.trials)} trials done"]
        if failed:
            parts.append(f"{failed} failed")
        if running:
            parts.append("running: trial " + ", ".join(esc(r) for r in running))
        best = self.best
        if best is not None:
            std = f" &plusmn; {esc(best.std)}" if best.std is not None else ""
            settings = ", ".join(f"{esc(k)}={esc(v)}" for k, v in best.params.items())
            parts.append(
                f"best: <b>{esc(best.score)}</b>{std} (trial {esc(best.trial_id)}"
                + (f": {settings}" if settings else "")
                + ")"
            )
        self.summary.value = " &middot; ".join(parts)
        self.table.value = self._table_html(best)

    def _table_html(self, best: TrialRecord | None) -> str:
        if not self.trials:
            return ""
        names = self._param_names()
        head = "".join(
            f"<th>{esc(h)}</th>"
            for h in ["trial", *names, "score", "std", "status", "epochs", "seconds"]
        )
        rows = []
        for t in self.trials:
            style = ' style="background:#e8f5e9;font-weight:bold"' if t is best else ""
            status = f'<span style="color:{_COLOURS.get(t.status, "#000")}">{esc(t.status)}</span>'
            if t.error:
                status += f' <abbr title="{esc(t.error)}">(why?)</abbr>'
            cells = [esc(t.trial_id), *(esc(t.params.get(n)) for n in names), esc(t.score),
                     esc(t.std), status, esc(t.epochs), f"{t.duration:.1f}"]  # fmt: skip
            rows.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return (
            "<style>.mmsk-trials th, .mmsk-trials td {padding: 2px 8px; text-align: left}</style>"
            '<table class="mmsk-trials" style="border-collapse:collapse;font-size:90%">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _redraw_plot(self) -> None:
        if self.figure is None:
            self.figure = new_figure(5.0, 2.6)
            if self.figure is None:
                return
        fig = self.figure
        fig.clear()
        ax = fig.subplots()
        points = [(i + 1, t.score) for i, t in enumerate(self.trials)
                  if t.status == "COMPLETED" and t.score is not None]  # fmt: skip
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "o", label="trial score")
            best_so_far, best = [], float("-inf")
            for y in ys:
                best = max(best, float(y))
                best_so_far.append(best)
            ax.step(xs, best_so_far, where="post", label="best so far")
            ax.legend(fontsize="small")
        failed = [i + 1 for i, t in enumerate(self.trials) if t.status == "FAILED"]
        for x in failed:
            ax.axvline(x, color=_COLOURS["FAILED"], alpha=0.3)
        ax.set_xlabel("trial")
        ax.set_ylabel("mean CV score")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        self.plot_image.value = figure_png(fig)

    def _text_line(self, trial: TrialRecord) -> None:
        best = self.best
        settings = ", ".join(f"{k}={fmt(v)}" for k, v in trial.params.items())
        score = fmt(trial.score) if trial.status == "COMPLETED" else (trial.error or "-")
        line = (
            f"trial {trial.trial_id} {trial.status} score {score} ({settings}) "
            f"{trial.duration:.1f}s; best {fmt(best.score) if best else '-'}"
        )
        write_line(self.stream, line)
