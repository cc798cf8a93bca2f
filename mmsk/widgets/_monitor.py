"""TrainingMonitor: progress bars and a live plot of a Keras fit (a text bar outside Jupyter).

Importing this module imports Keras (the class derives from
``keras.callbacks.Callback``); ``mmsk.widgets`` imports it on first access to
``TrainingMonitor``, so ``import mmsk.widgets`` alone stays free of TensorFlow.
"""

from __future__ import annotations

import time
from numbers import Real
from typing import Any, TextIO

import ipywidgets as w

from mmsk import _backend
from mmsk.exceptions import ParameterError
from mmsk.widgets._common import (
    THEME_CSS,
    Static,
    check_mode,
    duration,
    figure_png,
    figure_width,
    fmt,
    freeze,
    in_kernel,
    is_tty,
    new_figure,
    plot_img,
    resolve_mode,
    show,
    style_axes,
    write_line,
)

_Callback: Any = _backend.keras().callbacks.Callback

_BAR_WIDTH = 24


def _restore(settings: dict[str, Any]) -> TrainingMonitor:
    """Unpickle: a fresh monitor with the same settings (widgets do not pickle)."""
    return TrainingMonitor(**settings)


class TrainingMonitor(_Callback):
    """Watch a Keras fit: a progress bar per epoch and per batch and a live plot.

    In a Jupyter kernel (a notebook, JupyterLab, Voila) the monitor shows
    ipywidgets: an epoch bar and a batch bar with their counts, speed and
    time left (as Keras' progress bar and tqdm show them), a status line and
    a plot of the loss and of every compiled metric per epoch (training and
    validation on the same axes), redrawn after every epoch.  The colours
    follow JupyterLab's theme.  When training ends, the live display is
    replaced by a static copy (the final curves as an inline PNG and the last
    values), which a saved notebook, nbviewer and ``jupyter nbconvert`` show
    without a kernel.  Elsewhere (a script, a terminal, a test run)
    it writes a text progress bar to standard error: redrawn in place on a
    terminal, one line per epoch when the stream is a log file.

    Use it through the estimators, ``fit(X, y, monitor=True)``, or as any
    Keras callback: ``fit(X, y, callbacks=[TrainingMonitor()])``.  It is shown
    when training begins, or earlier where the monitor is displayed (the last
    expression of a cell); a monitor reused for several fits (as in
    cross-validation, where scikit-learn's ``clone`` keeps the same monitor)
    shows each fit in turn.

    Parameters
    ----------
    mode : {"auto", "widget", "text"}, default="auto"
        ``"auto"`` shows widgets in a Jupyter kernel and text elsewhere.
        ``"widget"`` updates the widgets (and displays them in a kernel) with
        no text; ``"text"`` writes the text bar only.
    plot : bool, default=True
        Draw the plot of loss/metrics per epoch (widget mode; needs matplotlib).
    min_interval : float, default=0.1
        Seconds between two redraws of the batch bar (the last batch of an
        epoch is always drawn), so fast batches do not flood the notebook.
    stream : file-like, optional
        Where the text bar goes; standard error when None.

    Attributes
    ----------
    epoch_bar : ipywidgets.IntProgress
        Epochs finished out of ``epochs`` (starts at ``initial_epoch``).
    epoch_info : ipywidgets.HTML
        Beside the epoch bar: "3/20 · 0:04 elapsed · ETA 0:21".
    batch_bar : ipywidgets.IntProgress
        Batches finished in the current epoch.
    batch_info : ipywidgets.HTML
        Beside the batch bar: "12/19 · 48.2 batch/s · ETA 0:01".
    status : ipywidgets.HTML
        "Epoch e/E · loss ..." and the time taken.
    placeholder : ipywidgets.HTML
        Shown instead of the plot until the first epoch ends.
    plot_image : ipywidgets.Image
        The plot as PNG (drawn at its display size, saved at twice the
        resolution), redrawn after each epoch.
    figure : matplotlib.figure.Figure or None
        The figure behind ``plot_image`` (None before the first epoch, in text
        mode, or without matplotlib).
    history : dict of str to list of float
        Loss and metrics per epoch of the current fit, as in Keras' History.
    epochs : list of int
        The epoch numbers (1-based) those values belong to.
    widget : ipywidgets.VBox
        Everything above, as one widget.
    n_fits : int
        Fits watched so far.

    Examples
    --------
    >>> import numpy as np
    >>> from mmsk import MultimodalRegressor
    >>> from mmsk.widgets import TrainingMonitor
    >>> X = np.random.default_rng(0).normal(size=(32, 3))
    >>> monitor = TrainingMonitor(mode="widget")
    >>> reg = MultimodalRegressor(epochs=3, batch_size=8, random_state=0)
    >>> reg = reg.fit(X, X.sum(axis=1), callbacks=[monitor])
    >>> monitor.epoch_bar.value, monitor.batch_bar.value, len(monitor.history["loss"])
    (3, 4, 3)
    >>> monitor.batch_info.value.startswith("4/4")
    True
    """

    mode: str
    plot: bool
    min_interval: float
    stream: TextIO | None
    history: dict[str, list[float]]
    epochs: list[int]
    n_fits: int
    figure: Any
    epoch_bar: Any
    epoch_info: Any
    batch_bar: Any
    batch_info: Any
    status: Any
    placeholder: Any
    plot_image: Any
    widget: Any
    _shown: bool
    _handle: Any
    _active: str
    _epoch: int
    _batches: int
    _drawn: float
    _start: float
    _epoch_start: float
    _first_batch: float | None
    _epoch_times: list[float]
    _loss: float | None
    _text_open: bool

    def __init__(
        self,
        mode: str = "auto",
        *,
        plot: bool = True,
        min_interval: float = 0.1,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__()
        self.mode = check_mode(mode)
        if not isinstance(min_interval, Real) or min_interval < 0:
            raise ParameterError(
                "Expected a non-negative number of seconds. "
                f"Received: min_interval={min_interval!r}"
            )
        self.plot = bool(plot)
        self.min_interval = float(min_interval)
        self.stream = stream
        self.history = {}
        self.epochs = []
        self.n_fits = 0
        self.figure = None
        self._shown = False
        self._handle = None
        self._active = resolve_mode(self.mode) if self.mode != "auto" else ""
        self._epoch = 0
        self._batches = 0
        self._drawn = 0.0
        self._start = self._epoch_start = 0.0
        self._first_batch = None
        self._epoch_times = []
        self._loss = None
        self._text_open = False
        self.title = w.HTML(value=THEME_CSS + "<b>Training</b>")
        self.epoch_bar = w.IntProgress(value=0, min=0, max=1, description="Epoch",
                                       bar_style="info")  # fmt: skip
        self.epoch_info = w.HTML(value="")
        self.batch_bar = w.IntProgress(value=0, min=0, max=1, description="Batch")
        self.batch_info = w.HTML(value="")
        self.status = w.HTML(value="waiting for fit")
        self.placeholder = w.HTML(
            value='<span class="mmsk-muted">The curves appear when the first epoch ends.</span>'
        )
        self.plot_image = w.Image(format="png", layout=w.Layout(width="640px", display="none"))
        self.plot_image.add_class("mmsk-plot")
        self.widget = w.VBox(
            [self.title, w.HBox([self.epoch_bar, self.epoch_info]),
             w.HBox([self.batch_bar, self.batch_info]), self.status, self.placeholder,
             self.plot_image],
        )  # fmt: skip
        self.widget.add_class("mmsk-widget")
        self.widget.add_class("mmsk-training-monitor")

    # ---- display and copies ------------------------------------------------
    @property
    def active_mode(self) -> str:
        """``"widget"`` or ``"text"``: what this monitor does (``"auto"`` resolved)."""
        return self._active or resolve_mode(self.mode)

    def _ipython_display_(self) -> None:
        self._handle = show(self.widget)
        self._shown = True

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._shown = True
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"TrainingMonitor(mode={self.mode!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> TrainingMonitor:
        # scikit-learn's clone deep-copies the estimator's ``callbacks``; the copy
        # is this monitor, so one display follows every fit of a search or CV.
        return self

    def __reduce__(self) -> Any:
        settings = {"mode": self.mode, "plot": self.plot, "min_interval": self.min_interval}
        return (_restore, (settings,))

    def to_static(self) -> Static:
        """A static copy of the monitor: its last status and the curves as inline PNG.

        Returns
        -------
        Static
            Shown as ``text/html`` (and ``text/plain``) by any notebook viewer.
        """
        plot = plot_img(self.figure, self.plot_image, "loss and metrics per epoch")
        body = (
            f'{THEME_CSS}<div class="mmsk-widget mmsk-training-monitor mmsk-static">'
            f"<b>Training</b><div>{self.status.value}</div>{plot}</div>"
        )
        return Static(body, f"TrainingMonitor: {self.summary()}")

    # ---- Keras hooks -------------------------------------------------------
    def on_train_begin(self, logs: Any = None) -> None:
        self._active = resolve_mode(self.mode)
        self.n_fits += 1
        self.history, self.epochs, self._epoch_times = {}, [], []
        self._start = time.perf_counter()
        self._loss = None
        params = self.params or {}
        self.epoch_bar.max = max(1, int(params.get("epochs") or 1))
        self.epoch_bar.value = 0
        self.epoch_bar.bar_style = "info"
        steps = params.get("steps")
        self.batch_bar.max = max(1, int(steps)) if steps else 1
        self.batch_bar.value = 0
        self.epoch_info.value = f"0/{self.epoch_bar.max}"
        self.batch_info.value = ""
        self.status.value = "building the model (the first batch compiles it) ..."
        self.placeholder.layout.display = ""
        self.plot_image.layout.display = "none"
        if self._active == "widget" and in_kernel():
            if not self._shown:
                self._ipython_display_()
            elif self._handle is not None:
                self._handle.update(self.widget)  # live again where the last copy is

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch
        self._batches = 0
        self._epoch_start = time.perf_counter()
        self._first_batch = None
        self.epoch_bar.value = min(epoch, self.epoch_bar.max)
        self.batch_bar.value = 0
        self._draw(force=True)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._batches = batch + 1
        if self._first_batch is None:
            self._first_batch = time.perf_counter()  # the speed leaves out graph building
        loss = (logs or {}).get("loss")
        if loss is not None:
            self._loss = float(loss)
        if self._batches > self.batch_bar.max and not (self.params or {}).get("steps"):
            self.batch_bar.max = self._batches  # unknown number of steps: grow as we go
        last = self._batches == self.batch_bar.max
        if last or time.perf_counter() - self._drawn >= self.min_interval:
            self.batch_bar.value = min(self._batches, self.batch_bar.max)
            self._draw(force=last)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for key, value in (logs or {}).items():
            try:
                self.history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue  # not a number (a learning-rate schedule object, ...)
        self.epochs.append(epoch + 1)
        self._epoch_times.append(time.perf_counter() - self._epoch_start)
        self.epoch_bar.value = min(epoch + 1, self.epoch_bar.max)
        self.batch_bar.value = min(max(self._batches, 1), self.batch_bar.max)
        self.epoch_info.value = self._epoch_text(epoch + 1)
        self.status.value = self._status_text(epoch + 1, logs)
        if self._active == "text":
            self._text_epoch(epoch + 1, logs)
        elif self.plot:
            self._redraw_plot()

    def on_train_end(self, logs: Any = None) -> None:
        took = time.perf_counter() - self._start
        done = self.epochs[-1] if self.epochs else self.epoch_bar.value
        stopped = " (early stopping)" if done < self.epoch_bar.max else ""
        self.epoch_bar.bar_style = "success"
        self.epoch_info.value = f"{done}/{self.epoch_bar.max}{stopped} &middot; {duration(took)}"
        self.status.value = (
            f"done: {done}/{self.epoch_bar.max} epochs{stopped} in {took:.1f} s"
            + (f" &middot; {self._metrics_text(self._last_logs())}" if self.history else "")
        )
        if self._active == "text":
            self._close_text()
        elif self._handle is not None:
            freeze(self._handle, self.to_static())

    # ---- progress text -----------------------------------------------------
    def _rate(self) -> float | None:
        """Batches a second in this epoch, after the first batch (None before two)."""
        if self._first_batch is None or self._batches < 2:
            return None
        spent = time.perf_counter() - self._first_batch
        return (self._batches - 1) / spent if spent > 0 else None

    def _batch_text(self) -> str:
        known = bool((self.params or {}).get("steps"))
        text = f"{self._batches}/{self.batch_bar.max}" if known else f"{self._batches}"
        rate = self._rate()
        if rate is not None:
            text += (
                f" &middot; {rate:.1f} batch/s"
                if rate >= 1
                else f" &middot; {1 / rate:.2f} s/batch"
            )
            if known:
                left = (self.batch_bar.max - self._batches) / rate
                text += f" &middot; ETA {duration(left)}"
        return text

    def _epoch_text(self, done: int) -> str:
        took = time.perf_counter() - self._start
        text = f"{done}/{self.epoch_bar.max} &middot; {duration(took)} elapsed"
        if self._epoch_times and done < self.epoch_bar.max:
            recent = self._epoch_times[-3:]
            left = (self.epoch_bar.max - done) * sum(recent) / len(recent)
            text += f" &middot; ETA {duration(left)}"
        return text

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._drawn < self.min_interval:
            return
        self._drawn = now
        epoch = self._epoch + 1
        self.batch_info.value = self._batch_text()
        if self._batches:
            status = f"Epoch {epoch}/{self.epoch_bar.max} &middot; batch {self._batches}"
            status += f"/{self.batch_bar.max}" if (self.params or {}).get("steps") else ""
            if self._loss is not None:
                status += f" &middot; loss {self._loss:.4f}"
            self.status.value = status
        if self._active != "text" or not is_tty(self.stream):
            return  # a log file gets one line per epoch, not a redraw per batch
        steps = self.batch_bar.max
        filled = int(_BAR_WIDTH * min(1.0, self._batches / steps))
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        text = f"\rEpoch {epoch}/{self.epoch_bar.max} [{bar}] {self._batches}/{steps}"
        rate = self._rate()
        if rate is not None:
            text += f" {rate:.1f} batch/s ETA {duration((steps - self._batches) / rate)}"
        if self._loss is not None:
            text += f" loss {self._loss:.4f}"
        write_line(self.stream, text + "\x1b[K", newline=False)
        self._text_open = True

    def _text_epoch(self, epoch: int, logs: Any) -> None:
        took = time.perf_counter() - self._start
        line = (
            f"Epoch {epoch}/{self.epoch_bar.max} - {self._batches} batches - "
            f"{self._metrics_text(logs)} - {took:.1f}s"
        )
        write_line(self.stream, ("\r\x1b[K" if self._text_open else "") + line)
        self._text_open = False

    def _close_text(self) -> None:
        if self._text_open:
            write_line(self.stream, "")
            self._text_open = False

    # ---- status and plot ---------------------------------------------------
    def _last_logs(self) -> dict[str, float]:
        return {key: values[-1] for key, values in self.history.items() if values}

    @staticmethod
    def _metrics_text(logs: Any) -> str:
        parts = []
        for key, value in (logs or {}).items():
            try:
                parts.append(f"{key} {float(value):.4f}")
            except (TypeError, ValueError):
                continue
        return ", ".join(parts) if parts else "no metrics"

    def _status_text(self, epoch: int, logs: Any) -> str:
        took = self._epoch_times[-1] if self._epoch_times else 0.0
        per_step = 1000 * took / max(self._batches, 1)
        return (
            f"Epoch {epoch}/{self.epoch_bar.max} &middot; {self._metrics_text(logs)} "
            f"&middot; {took:.1f} s ({per_step:.0f} ms/batch)"
        )

    def _redraw_plot(self) -> None:
        names = list(dict.fromkeys(k.removeprefix("val_") for k in self.history))
        if not names:
            return
        if self.figure is None or len(self.figure.axes) != len(names):
            # 6.4 in at 100 dpi: drawn at the 640 px it is shown at.
            self.figure = new_figure(6.4, 2.4 if len(names) < 3 else 2.0)
            if self.figure is None:
                return
        fig = self.figure
        fig.clear()
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        for ax, name in zip(axes, names, strict=True):
            for key, label in ((name, "train"), (f"val_{name}", "validation")):
                if key in self.history:
                    ax.plot(self.epochs, self.history[key], marker="o", markersize=3,
                            label=label)  # fmt: skip
            ax.set_title(name, fontsize="medium")
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            style_axes(ax)
            if len(ax.lines) > 1:
                ax.legend(fontsize="small", framealpha=0.0, labelcolor="#333333")
        self.plot_image.layout.width = f"{figure_width(fig)}px"
        self.plot_image.value = figure_png(fig)
        self.plot_image.layout.display = ""
        self.placeholder.layout.display = "none"

    def summary(self) -> str:
        """One line: epochs done and the last value of every metric.

        Examples
        --------
        >>> from mmsk.widgets import TrainingMonitor
        >>> TrainingMonitor().summary()
        '0 epochs'
        """
        if not self.epochs:
            return "0 epochs"
        keys = sorted(self.history, key=lambda k: k not in ("loss", "val_loss"))  # loss first
        return f"{len(self.epochs)} epochs: " + ", ".join(
            f"{key} {fmt(self.history[key][-1])}" for key in keys
        )
