"""Encoder and fusion components: scikit-learn-style settings that build Keras layers.

Components are found by name through :mod:`mmsk.plugins` (entry points
``mmsk.encoders`` and ``mmsk.fusions``); built-ins take the same path.
"""

from mmsk.components._bag import BagEncoder
from mmsk.components._base import Encoded, Encoder, Fusion
from mmsk.components._encoders import (
    AudioCNNEncoder,
    CNNEncoder,
    MLPEncoder,
    RNNEncoder,
    TransformerEncoder,
)
from mmsk.components._fusions import (
    AttentionFusion,
    ConcatFusion,
    GatedFusion,
    LateFusion,
    SumFusion,
)

__all__ = [
    "AttentionFusion",
    "AudioCNNEncoder",
    "BagEncoder",
    "CNNEncoder",
    "ConcatFusion",
    "Encoded",
    "Encoder",
    "Fusion",
    "GatedFusion",
    "LateFusion",
    "MLPEncoder",
    "RNNEncoder",
    "SumFusion",
    "TransformerEncoder",
]
