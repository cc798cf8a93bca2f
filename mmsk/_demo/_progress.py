"""Progress of the demo's models (Keras' own progress bar on a terminal), and Ctrl-C that
survives TensorFlow."""

from __future__ import annotations

import contextlib
import time
from typing import Any, TextIO


class Progress:
    """Progress of each model on ``stream``: on a terminal a :class:`keras.utils.Progbar`
    over its epochs (redrawn in place), in a log one line when it starts and when it ends.
    """

    def __init__(self, stream: TextIO, n_models: int, verbose: bool) -> None:
        self.stream = stream
        self.n_models = n_models
        self.verbose = verbose
        self.tty = stream.isatty()
        self.index = 0
        self.label = ""
        self.start = 0.0
        self._bar: Any = None
        self._open = False  # a bar is on the screen without its final newline

    def begin(self, label: str) -> None:
        self.index += 1
        self.label = label
        self.start = time.perf_counter()
        self._bar = None
        self._line(f"{self._prefix()} training" + ("" if self.tty else " ..."))

    def _prefix(self) -> str:
        return f"[{self.index}/{self.n_models}] {self.label:<17}"

    def draw(self, epoch: int, epochs: int, fraction: float, loss: float | None) -> None:
        """Show ``epoch + fraction`` of ``epochs`` done (a terminal only)."""
        if not self.tty:
            return
        if self._bar is None:
            from mmsk import _backend

            self._bar = _backend.keras().utils.Progbar(
                epochs, stateful_metrics=["loss"], unit_name="epoch"
            )
        done = min(epoch + fraction, epochs)
        values = None if loss is None else [("loss", loss)]
        with contextlib.redirect_stdout(self.stream):  # Progbar writes to sys.stdout
            self._bar.update(done, values=values)
        self._open = done < epochs  # at the target, Progbar ends its line itself

    def epoch_done(self, epoch: int, epochs: int, loss: float | None) -> None:
        if self.verbose:
            shown = "-" if loss is None else f"{loss:.4f}"
            self._line(f"{self._prefix()} epoch {epoch + 1:>3}/{epochs} loss {shown}")

    def end(self, summary: str) -> None:
        self._line(f"{self._prefix()} done in {time.perf_counter() - self.start:.1f}s: {summary}")

    def _line(self, text: str) -> None:
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left open (finished early, or after an interrupt)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
        self._bar, self._open = None, False


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
