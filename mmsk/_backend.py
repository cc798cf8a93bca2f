"""Load TensorFlow and Keras on first use, quietly and with a clear error when missing."""

from __future__ import annotations

import os
from types import ModuleType

from mmsk.exceptions import BackendError

_INSTALL_HINT = (
    "mmsk needs TensorFlow. Install the CPU build with `pip install 'mmsk[cpu]'` "
    "or the GPU build with `pip install 'mmsk[gpu]'`."
)


def tf() -> ModuleType:
    """Return the ``tensorflow`` module, importing it on first call."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(f"{_INSTALL_HINT} ({exc})") from exc
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
