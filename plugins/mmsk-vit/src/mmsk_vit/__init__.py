"""mmsk-vit: a Vision-Transformer image encoder (``vit``) and a FiLM fusion (``film``) for mmsk.

Installing this package is all it takes: mmsk finds both through the
``mmsk.encoders`` and ``mmsk.fusions`` entry points, so
``MultimodalClassifier(encoders={"image": "vit"}, fusion="film")`` works.
Importing this package imports Keras (its layers register for saving).
"""

from mmsk_vit._encoder import ViTEncoder
from mmsk_vit._film import FiLMFusion
from mmsk_vit._layers import FeatureModulation, PositionEmbedding

__version__ = "0.1.0"

__all__ = ["FeatureModulation", "FiLMFusion", "PositionEmbedding", "ViTEncoder", "__version__"]
