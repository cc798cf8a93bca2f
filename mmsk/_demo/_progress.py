"""Text progress bars for the demo, and Ctrl-C that survives TensorFlow."""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """A one-line text bar per model on ``stream``; redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, n_models: int, verbose: bool) -> None:
        self.stream = stream
        self.n_models = n_models
        self.verbose = verbose
        self.tty = stream.isatty()
        self.index = 0
        self.label = ""
        self.start = 0.0
        self._open = False
        self._drawn = 0.0
        self._loss: float | None = None

    def begin(self, label: str) -> None:
        self.index += 1
        self.label = label
        self.start = time.perf_counter()
        self._loss = None
        if not self.tty:
            self._line(f"{self._prefix()} training ...")

    def _prefix(self) -> str:
        return f"[{self.index}/{self.n_models}] {self.label:<17}"

    def draw(self, epoch: int, epochs: int, fraction: float, loss: float | None) -> None:
        now = time.perf_counter()
        if not self.tty or (fraction not in (0.0, 1.0) and now - self._drawn < 0.1):
            return  # at most ten redraws a second
        self._drawn = now
        width = 24
        filled = int(width * min(1.0, (epoch + fraction) / epochs))
        bar = "#" * filled + "-" * (width - filled)
        text = f"{self._prefix()} epoch {min(epoch + 1, epochs):>3}/{epochs} [{bar}]"
        loss = self._loss = loss if loss is not None else self._loss  # keep the last one shown
        if loss is not None:
            text += f" loss {loss:.3f}"
        text += f" {now - self.start:5.1f}s"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._open = True

    def epoch_done(self, epoch: int, epochs: int, loss: float | None) -> None:
        if self.verbose:
            shown = "-" if loss is None else f"{loss:.4f}"
            self._line(f"{self._prefix()} epoch {epoch + 1:>3}/{epochs} loss {shown}")

    def end(self, summary: str) -> None:
        self._line(f"{self._prefix()} done in {time.perf_counter() - self.start:.1f}s: {summary}")

    def _line(self, text: str) -> None:
        self.stream.write(("\r\x1b[K" if self._open else "") + text + "\n")
        self.stream.flush()
        self._open = False

    def close(self) -> None:
        """End a bar left open (after an interrupt)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def progress_callback(progress: Progress) -> Any:
    """A Keras callback that drives ``progress`` (passed through ``callbacks=``)."""
    from mmsk import _backend

    keras = _backend.keras()

    class TextProgress(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            Interrupt.check()
            self.epoch = epoch
            progress.draw(epoch, self.params["epochs"], 0.0, None)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            Interrupt.check()
            steps = self.params.get("steps") or 1
            loss = (logs or {}).get("loss")
            progress.draw(
                self.epoch,
                self.params["epochs"],
                (batch + 1) / steps,
                None if loss is None else float(loss),
            )

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            progress.epoch_done(
                epoch, self.params["epochs"], None if loss is None else float(loss)
            )

    return TextProgress()


class Interrupt:
    """Remembers a Ctrl-C, so one that a library swallows is raised again at the next check.

    Python raises KeyboardInterrupt wherever the main thread happens to be;
    inside a ``__del__`` or a callback run from C (TensorFlow has many) it is
    printed as "Exception ignored" and lost.  The flag survives that.
    """

    requested = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.requested = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.requested:
            raise KeyboardInterrupt
