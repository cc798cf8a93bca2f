"""Load TensorFlow and Keras on first use, quietly and with a clear error when missing."""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from mmsk.exceptions import BackendError

THREADS_ENV = "MMSK_NUM_THREADS"  # TensorFlow's thread pools per process; unset: TF decides
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
    _limit_threads(tensorflow)
    return tensorflow


_threads_done = False


def _limit_threads(tensorflow: ModuleType) -> None:
    """Honour ``MMSK_NUM_THREADS``: TensorFlow's thread pools (intra- and inter-op)
    get that many threads.  TensorFlow's own ``TF_NUM_*_THREADS`` variables are
    not read by its eager runtime; this is for a machine shared by several
    processes (``n_jobs``, ``pytest -n``), where small models train faster on
    one thread each than on oversubscribed pools.
    """
    global _threads_done
    raw = os.environ.get(THREADS_ENV)
    if _threads_done or raw is None or not raw.strip():
        return
    _threads_done = True
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise BackendError(f"Expected a positive integer in {THREADS_ENV}. Received: {raw!r}")
    try:
        tensorflow.config.threading.set_intra_op_parallelism_threads(n)
        tensorflow.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow ran an operation before mmsk first loaded it
        warnings.warn(
            f"{THREADS_ENV}={raw} was not applied: TensorFlow was already running in this "
            "process; set it before TensorFlow's first operation",
            RuntimeWarning,
            stacklevel=3,
        )


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


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Keras, TensorFlow, NumPy and ``random`` for one fit, then give NumPy's
    and ``random``'s global state back.

    Keras draws from those generators while it builds and trains, so they stay
    seeded until the block ends; the user's own draws afterwards continue
    where they left off.

    Parameters
    ----------
    seed : int
        Passed to ``keras.utils.set_random_seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmsk import _backend
    >>> with _backend.seeded(0):
    ...     a = np.random.rand()
    >>> with _backend.seeded(0):
    ...     b = np.random.rand()
    >>> a == b
    True
    """
    import numpy as np

    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    keras().utils.set_random_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
