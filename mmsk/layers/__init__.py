"""Keras layers mmsk models are made of, registered for ``.keras`` saving under ``mmsk>``.

Importing this package imports Keras (and TensorFlow).
"""

from mmsk.layers._bag import HashedNgrams
from mmsk.layers._histogram import ColourHistogram
from mmsk.layers._masking import (
    ApplyPresence,
    MaskedMeanPool,
    ModalityDropout,
    SequenceMask,
    TokenMask,
)
from mmsk.layers._numeric import PiecewiseLinear
from mmsk.layers._pooling import PresenceSoftmaxPool, PresenceWeightedMean, SplitHeads
from mmsk.layers._tfidf import ColumnSlice, TfidfBag
from mmsk.layers._tokens import JoinTokens, ModalityTypeEmbedding, TokenAndPositionEmbedding
from mmsk.layers._transformer import TransformerBlock
from mmsk.layers._words import UnknownWordDropout

__all__ = [
    "ApplyPresence",
    "ColourHistogram",
    "ColumnSlice",
    "HashedNgrams",
    "JoinTokens",
    "MaskedMeanPool",
    "ModalityDropout",
    "ModalityTypeEmbedding",
    "PiecewiseLinear",
    "PresenceSoftmaxPool",
    "PresenceWeightedMean",
    "SequenceMask",
    "SplitHeads",
    "TfidfBag",
    "TokenAndPositionEmbedding",
    "TokenMask",
    "TransformerBlock",
    "UnknownWordDropout",
]
