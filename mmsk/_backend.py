"""Load TensorFlow and Keras on first use, quietly and with a clear error when missing."""

from __future__ import annotations

import logging
import os
from types import ModuleType

from mmsk.exceptions import BackendError

_INSTALL_HINT = (
    "mmsk needs TensorFlow. Install the CPU build with `pip install 'mmsk[cpu]'` "
    "or the GPU build with `pip install 'mmsk[gpu]'`."
)


class _NoRetracingWarning(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" warning.

    Cross-validation and searches build one Keras model per fit by design; each
    model traces its own functions once, which TensorFlow reports as
    "excessive retracing" although nothing is retraced.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def tf() -> ModuleType:
    """Return the ``tensorflow`` module, importing it on first call."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(f"{_INSTALL_HINT} ({exc})") from exc
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingWarning) for f in logger.filters):
        logger.addFilter(_NoRetracingWarning())
    return tensorflow


def keras() -> ModuleType:
    """Return the ``keras`` module (Keras 3 on the TensorFlow backend)."""
    tf()
    import keras as _keras

    if _keras.backend.backend() != "tensorflow":
        raise BackendError(
            "mmsk runs on the TensorFlow backend of Keras. "
            f"Received: KERAS_BACKEND={_keras.backend.backend()!r}"
        )
    return _keras


def keras_tuner() -> ModuleType:
    """Return the ``keras_tuner`` module, with TensorFlow set up first."""
    tf()
    try:
        import keras_tuner as _kt
    except ImportError as exc:
        raise BackendError(
            "tuning needs Keras Tuner: `pip install 'mmsk[tune]'` (keras-tuner, tensorboard, "
            f"grpcio) ({exc})"
        ) from exc
    return _kt
