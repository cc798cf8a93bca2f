"""Hyperparameter search with Keras Tuner oracles behind the scikit-learn API."""

from mmsk.tuning._callbacks import SearchCallback, TrialRecord

__all__ = ["SearchCallback", "TrialRecord"]
