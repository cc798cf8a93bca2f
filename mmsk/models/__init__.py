"""Multimodal estimators.  Importing this package does not import TensorFlow."""

from mmsk.models._classifier import MultimodalClassifier
from mmsk.models._regressor import MultimodalRegressor

__all__ = ["MultimodalClassifier", "MultimodalRegressor"]
