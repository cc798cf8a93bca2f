"""Hyperparameter search with Keras Tuner oracles behind the scikit-learn API.

:class:`KerasTunerSearchCV` is a scikit-learn search CV whose candidates come
from a Keras Tuner oracle; :func:`to_hypermodel` gives Keras Tuner users a
``HyperModel`` with mmsk's preprocessing.  ``Int``, ``Float``, ``Choice``,
``Boolean`` and ``Fixed`` declare a search space.  Keras Tuner is imported
only when a search runs (``pip install "mmsk[tune]"``).
"""

from mmsk.tuning._callbacks import SearchCallback, TrialRecord
from mmsk.tuning._hypermodel import to_hypermodel
from mmsk.tuning._search import KerasTunerSearchCV, SearchError
from mmsk.tuning._space import Boolean, Choice, Fixed, Float, Int
from mmsk.tuning._trial_fit import TrialFailedError

__all__ = [
    "Boolean",
    "Choice",
    "Fixed",
    "Float",
    "Int",
    "KerasTunerSearchCV",
    "SearchCallback",
    "SearchError",
    "TrialFailedError",
    "TrialRecord",
    "to_hypermodel",
]
