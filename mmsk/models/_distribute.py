"""``distribution=``: train under a ``tf.distribute`` strategy."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from mmsk import _backend
from mmsk.exceptions import ParameterError

STRATEGIES = ("mirrored", "multi_worker")

# One strategy per name and process: TensorFlow configures collective ops once,
# so a second MultiWorkerMirroredStrategy in the same process would fail.
_CACHE: dict[str, Any] = {}


def resolve_strategy(value: Any) -> Any:
    """Return the ``tf.distribute.Strategy`` for ``distribution``, or None.

    Parameters
    ----------
    value : None, "mirrored", "multi_worker" or tf.distribute.Strategy
        ``"mirrored"`` uses every local GPU (or the CPU); ``"multi_worker"``
        reads the cluster from the ``TF_CONFIG`` environment variable.

    Returns
    -------
    tf.distribute.Strategy or None
    """
    if value is None:
        return None
    tf = _backend.tf()
    if isinstance(value, tf.distribute.Strategy):
        return value
    if not isinstance(value, str) or value not in STRATEGIES:
        raise ParameterError(
            f"Expected distribution to be None, one of {list(STRATEGIES)} or a "
            f"tf.distribute.Strategy instance. Received: distribution={value!r}"
        )
    if value not in _CACHE:
        try:
            if value == "mirrored":
                _CACHE[value] = tf.distribute.MirroredStrategy()
            else:
                _CACHE[value] = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as exc:
            raise ParameterError(
                f"distribution={value!r}: TensorFlow could not create the strategy ({exc}). "
                "A multi-worker strategy must be created before TensorFlow runs anything "
                "else in the process, with TF_CONFIG naming this worker; create it at the "
                "top of the script and pass the instance as distribution=strategy."
            ) from exc
    return _CACHE[value]


def strategy_scope(strategy: Any) -> Any:
    """``strategy.scope()``, or a no-op context without a strategy."""
    return nullcontext() if strategy is None else strategy.scope()


def patch_for_multi_worker(model: Any, strategy: Any, x: Any, y: Any) -> None:
    """Let ``model.fit`` run under a multi-worker ``MultiWorkerMirroredStrategy``.

    Keras 3's TensorFlow trainer cannot yet (keras-team/keras#20585): it
    all-reduces a whole input batch to build the compiled metrics, and
    all-reduces the scalar logs of each step along an axis they lack.  This
    builds the metrics from a local batch (``x``, ``y``) instead and gives the
    step's logs that axis; gradients are still all-reduced by the strategy.
    Only this model instance is changed, and nothing of it is saved.
    """
    extended = getattr(strategy, "extended", None)
    if not getattr(extended, "_in_multi_worker_mode", lambda: False)():
        return
    tf = _backend.tf()
    batch = (tf.nest.map_structure(tf.constant, x), tf.constant(y))

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        with strategy.scope():
            model._symbolic_build(data_batch=batch)

    def with_axis(step: Any) -> Any:
        def run(data: Any) -> Any:
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        return run

    model._maybe_symbolic_build = symbolic_build
    model.train_step = with_axis(model.train_step)
    model.test_step = with_axis(model.test_step)
