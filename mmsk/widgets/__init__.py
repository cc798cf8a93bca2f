"""Jupyter widgets (ipywidgets) for what a person watches: training, a search, predictions.

- :class:`TrainingMonitor`: progress bars and a live loss plot of a fit
  (``fit(X, y, monitor=True)``); a text bar outside Jupyter.
- :class:`TunerDashboard`: a live table and plot of a search's trials.
- :class:`PredictionPlayground`: upload a picture or a sound, type a text,
  see the class probabilities of a fitted estimator.

Needs the ``notebook`` extra (``pip install "mmsk[notebook]"``).  Nothing in
mmsk imports this package until it is used, and importing it does not import
TensorFlow: ``TrainingMonitor`` is a Keras callback, so Keras loads when that
name is first looked up.

Examples
--------
>>> from mmsk.widgets import TunerDashboard
>>> TunerDashboard(mode="widget").progress.value
0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsk.exceptions import BackendError

try:
    import ipywidgets  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise BackendError(
        "mmsk.widgets needs ipywidgets (and matplotlib for its plots). Install them with "
        f'`pip install "mmsk[notebook]"`. ({exc})'
    ) from exc

from mmsk.widgets._dashboard import TunerDashboard
from mmsk.widgets._playground import PredictionPlayground

if TYPE_CHECKING:
    from mmsk.widgets._monitor import TrainingMonitor

__all__ = ["PredictionPlayground", "TrainingMonitor", "TunerDashboard"]


def __getattr__(name: str) -> Any:
    # TrainingMonitor subclasses keras.callbacks.Callback: build it (and import
    # Keras) only when it is asked for.
    if name == "TrainingMonitor":
        from mmsk.widgets._monitor import TrainingMonitor

        globals()[name] = TrainingMonitor
        return TrainingMonitor
    raise AttributeError(f"module 'mmsk.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
